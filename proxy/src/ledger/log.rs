//! The ledger's records in the store: events (one JSON object a line, many a record, one record per flush
//! of one replica) and snapshots (the folded state as events, written at compaction), and their keys.
//!
//! Keys sort by time: `ledger/events/<nanos, 20 digits>-<writer>-<seq>`, so a poll lists only the records
//! after the last one it read (a bucket's `start-after`), less a margin for writers whose clocks or puts
//! lag ([`LATE`]).
use std::time::Duration;

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use serde::{Deserialize, Serialize};

/// The prefix of event records.
pub const EVENTS: &str = "ledger/events";
/// The prefix of snapshot records.
pub const SNAPSHOTS: &str = "ledger/snapshots";
/// The prefix of compaction claims (one create-only record per period: one replica compacts).
pub const COMPACTIONS: &str = "ledger/compactions";

/// How late an event record may appear in a listing behind records of later keys: a writer picks its
/// key's time before its put completes, and replicas' clocks differ. Each poll lists from this much
/// before the newest key it has read, and skips the keys it has already applied.
pub const LATE: Duration = Duration::from_secs(60);

/// How long event records are kept after a snapshot covers them: a replica whose polls failed for less
/// than this catches up from the events; one that lagged longer reloads the snapshot.
pub const KEEP_AFTER_SNAPSHOT: Duration = Duration::from_secs(3600);

/// Nanoseconds since the Unix epoch: every time the ledger keeps.
pub type Nanos = u64;

/// One change to one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened, in nanoseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub at: Nanos,
    #[serde(rename = "m")]
    pub module: String,
    #[serde(rename = "v")]
    pub version: String,
    #[serde(flatten)]
    pub change: Change,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Change {
    /// Stored (or its zip added): its bytes so far.
    Stored {
        bytes: u64,
    },
    /// Served (flushed in batches: one event per version touched in an interval).
    Accessed,
    Deleted,
    Blocked {
        reason: String,
    },
    Unblocked,
    /// First seen (asked for, or listed by an upstream) before it was stored: when a version appeared, for
    /// the version rules' `min_age`. The earliest sighting wins.
    Seen,
}

impl Event {
    pub fn new(at: Nanos, module: &ModulePath, version: &Version, change: Change) -> Event {
        Event {
            at,
            module: module.as_str().to_string(),
            version: version.as_str().to_string(),
            change,
        }
    }

    /// The version it is about; `None` for a line that names none (written by a later Ferry, or damaged):
    /// skipped.
    pub fn version(&self) -> Option<(ModulePath, Version)> {
        Some((
            ModulePath::new(&self.module).ok()?,
            Version::new(&self.version).ok()?,
        ))
    }
}

/// Events as a record's body: one JSON object a line.
pub fn encode(events: &[Event]) -> Bytes {
    let mut body = Vec::with_capacity(events.len() * 96);
    for event in events {
        // Serializing these plain fields cannot fail.
        if serde_json::to_writer(&mut body, event).is_ok() {
            body.push(b'\n');
        }
    }
    Bytes::from(body)
}

/// A record's events; lines that do not parse are skipped (and counted, for a warning).
pub fn decode(body: &[u8]) -> (Vec<Event>, usize) {
    let mut skipped = 0;
    let events = body
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| match serde_json::from_slice(line) {
            Ok(event) => Some(event),
            Err(_) => {
                skipped += 1;
                None
            }
        })
        .collect();
    (events, skipped)
}

/// The key of an event record written at `at` by `writer` (its `seq`-th).
pub fn event_key(at: Nanos, writer: &str, seq: u64) -> String {
    format!("{EVENTS}/{at:020}-{writer}-{seq:08}")
}

/// The key a poll lists after: every event record written from `at` on sorts after it.
pub fn events_from(at: Nanos) -> String {
    format!("{EVENTS}/{at:020}")
}

/// The time in an event or snapshot record's key.
pub fn key_time(key: &str) -> Option<Nanos> {
    let name = key.rsplit('/').next()?;
    name.get(..20)?.parse().ok()
}

/// The writer (a replica's name) in an event record's key.
pub fn key_writer(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?;
    let rest = name.get(21..)?;
    rest.rsplit_once('-').map(|(writer, _)| writer)
}

/// The key of a snapshot covering every event record before `upto`.
pub fn snapshot_key(upto: Nanos, writer: &str) -> String {
    format!("{SNAPSHOTS}/{upto:020}-{writer}")
}

/// The key of the claim on the compaction of period `period`.
pub fn compaction_key(period: u64) -> String {
    format!("{COMPACTIONS}/{period:012}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_keys_writer_is_read_back() {
        let key = event_key(42, "a1b2c3", 7);
        assert_eq!(key_writer(&key), Some("a1b2c3"));
        assert_eq!(key_time(&key), Some(42));
        assert_eq!(key_writer("events/short"), None);
    }

    #[test]
    fn events_round_trip_and_keys_sort_by_time() {
        let m = ModulePath::new("example.com/a").unwrap();
        let v = Version::new("v1.0.0").unwrap();
        let events = vec![
            Event::new(1, &m, &v, Change::Stored { bytes: 5 }),
            Event::new(
                2,
                &m,
                &v,
                Change::Blocked {
                    reason: "a \"quoted\"\nreason".into(),
                },
            ),
            Event::new(3, &m, &v, Change::Accessed),
        ];
        let body = encode(&events);
        assert_eq!(
            std::str::from_utf8(&body).unwrap().lines().next().unwrap(),
            r#"{"t":1,"m":"example.com/a","v":"v1.0.0","op":"stored","bytes":5}"#
        );
        let mut damaged = body.to_vec();
        damaged.extend_from_slice(b"{not json\n");
        assert_eq!(decode(&damaged), (events, 1));
        assert!(event_key(10, "w", 1) < event_key(9_000_000_000, "a", 0));
        assert!(events_from(10) < event_key(10, "a", 0));
        assert_eq!(key_time(&event_key(12345, "w", 3)), Some(12345));
        assert_eq!(key_time(&snapshot_key(777, "w")), Some(777));
    }
}
