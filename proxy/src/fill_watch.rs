//! What the fills let an operator watch: the fills running now (read from the `Filler`'s single-flight
//! map when the status page asks), the last fill failures with their reasons (a small ring), and whether
//! the upstream answered the last fill that reached it. Written only when a fill ends, never on a request
//! served from the store.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ferry_module::ModulePath;

use crate::metrics::metrics;

/// How many failures the ring keeps: the page shows them all; the log has the rest.
pub const FAILURES_KEPT: usize = 20;

/// A fill running now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flight {
    pub module: ModulePath,
    /// The version or query asked for.
    pub query: String,
    /// Only the `.info` and `.mod` (the zip comes when asked).
    pub metadata_only: bool,
    pub elapsed: Duration,
    /// Requests waiting on it now (0: a background fetch, or one every client left).
    pub waiting: usize,
}

/// A fill that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillFailure {
    pub module: ModulePath,
    pub query: String,
    pub at: SystemTime,
    /// The fill's result label (`not_found`, `upstream_error`, `timeout`, …), as `ferry_fills_total` has it.
    pub result: &'static str,
    /// What a client was told: go's reason, never a local path or the upstream's address.
    pub reason: String,
}

/// The last answer of the upstream to a fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamSeen {
    /// It answered (the version, or that there is none); false: it failed or timed out.
    pub up: bool,
    pub at: SystemTime,
}

/// The failures ring and the upstream's last answer, shared by every fill.
#[derive(Debug, Default)]
pub struct FillWatch {
    failures: Mutex<VecDeque<FillFailure>>,
    upstream: Mutex<Option<UpstreamSeen>>,
}

impl FillWatch {
    /// Records a fill's end: its failure (if it failed) and what it says of the upstream.
    pub fn ended(&self, failure: Option<FillFailure>, result: &'static str) {
        let up = match result {
            "stored" | "not_found" => Some(true),
            "upstream_error" | "timeout" => Some(false),
            // Local faults, a busy Ferry, a cancelled fill: nothing learnt of the upstream.
            _ => None,
        };
        if let Some(up) = up {
            *self.upstream.lock().unwrap() = Some(UpstreamSeen {
                up,
                at: SystemTime::now(),
            });
            metrics().default_upstream(up);
        }
        if let Some(failure) = failure {
            let mut failures = self.failures.lock().unwrap();
            if failures.len() == FAILURES_KEPT {
                failures.pop_front();
            }
            failures.push_back(failure);
        }
    }

    /// The failures kept, newest first.
    pub fn failures(&self) -> Vec<FillFailure> {
        self.failures
            .lock()
            .unwrap()
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    pub fn upstream(&self) -> Option<UpstreamSeen> {
        *self.upstream.lock().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(n: usize) -> FillFailure {
        FillFailure {
            module: ModulePath::new("example.com/m").unwrap(),
            query: format!("v1.0.{n}"),
            at: SystemTime::now(),
            result: "upstream_error",
            reason: format!("reason {n}"),
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_failures_and_the_upstreams_last_word() {
        let watch = FillWatch::default();
        assert_eq!(watch.upstream(), None);
        for n in 0..FAILURES_KEPT + 5 {
            watch.ended(Some(failure(n)), "upstream_error");
        }
        let kept = watch.failures();
        assert_eq!(kept.len(), FAILURES_KEPT);
        assert_eq!(kept[0].query, format!("v1.0.{}", FAILURES_KEPT + 4));
        assert_eq!(kept.last().unwrap().query, "v1.0.5");
        assert!(!watch.upstream().unwrap().up);
        watch.ended(None, "stored");
        assert!(watch.upstream().unwrap().up);
        // A busy Ferry says nothing of the upstream.
        watch.ended(None, "busy");
        assert!(watch.upstream().unwrap().up);
    }
}
