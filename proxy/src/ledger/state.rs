//! What the ledger knows of every version the store holds or held: folded from events, in any order, to the
//! same state on every replica. Each version is a last-writer-wins register on its status (present,
//! deleted, blocked) keyed by the event's time, so a replica that reads the log late, twice, or out of
//! order ends where the others are.
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use ferry_module::{ModulePath, Version};

pub use super::log::Nanos;
use super::log::{Change, Event};

/// A version's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Stored (its `.info` at least).
    Present,
    /// Deleted (by an admin, a collection, or an unblock): refilled on the next request under the policy.
    Deleted,
    /// Blocked with this reason: answered 403, never filled, listed nowhere.
    Blocked(Arc<str>),
}

/// What the ledger keeps of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: Status,
    /// When the status last changed (the event's time): later events win.
    pub status_at: Nanos,
    /// When the version was first stored (its place in the index), while present.
    pub stored_at: Nanos,
    /// Its stored bytes (`.info`, `.mod` and zip), as last reported.
    pub bytes: u64,
    /// When it was last deleted (or unblocked), if ever: a store older than that is of a former life.
    pub deleted_at: Nanos,
    /// When it was last served, as flushed by any replica (0: never). An access before the version was
    /// stored again is older than `stored_at`, so `used_at` is right either way.
    pub accessed_at: Nanos,
    /// When it was first seen: asked for, listed by an upstream, or stored, whichever came first, by any
    /// replica (0: not known). Never reset: a version deleted and refilled was still seen then.
    pub first_seen: Nanos,
}

impl Entry {
    /// When it was last used: served, or else stored.
    pub fn used_at(&self) -> Nanos {
        self.accessed_at.max(self.stored_at)
    }
}

/// Totals of the present versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub modules: u64,
    pub versions: u64,
    pub bytes: u64,
}

/// Every version the ledger knows, by module, then version (semver order).
#[derive(Debug, Default)]
pub struct State {
    modules: BTreeMap<ModulePath, BTreeMap<Version, Entry>>,
    /// The present versions in the order they were first stored: the index.
    by_time: BTreeSet<(Nanos, ModulePath, Version)>,
    /// Present versions per module, for the module count.
    present: BTreeMap<ModulePath, u64>,
    bytes: u64,
}

impl State {
    /// Folds one event in. Returns whether the version's status changed (a version first heard of counts).
    pub fn apply(&mut self, event: &Event) -> bool {
        let Some((module, version)) = event.version() else {
            return false;
        };
        let versions = self.modules.entry(module.clone()).or_default();
        let Some(entry) = versions.get_mut(&version) else {
            // First word of this version.
            let (status, status_at, stored_at, bytes) = match &event.change {
                Change::Stored { bytes } => (Status::Present, event.at, event.at, *bytes),
                // An access or a sighting says nothing of the status: any stored event may still make it
                // present.
                Change::Accessed | Change::Seen => (Status::Deleted, 0, 0, 0),
                Change::Deleted | Change::Unblocked => (Status::Deleted, event.at, 0, 0),
                Change::Blocked { reason } => {
                    (Status::Blocked(reason.as_str().into()), event.at, 0, 0)
                }
            };
            let deleted_at = match event.change {
                Change::Deleted | Change::Unblocked => event.at,
                _ => 0,
            };
            let entry = Entry {
                deleted_at,
                status,
                status_at,
                stored_at,
                bytes,
                accessed_at: if matches!(event.change, Change::Accessed) {
                    event.at
                } else {
                    0
                },
                first_seen: if matches!(event.change, Change::Seen | Change::Stored { .. }) {
                    event.at
                } else {
                    0
                },
            };
            let present = entry.status == Status::Present;
            versions.insert(version.clone(), entry);
            if present {
                self.enter(&module, &version, stored_at, bytes);
            }
            // A version only seen has no status to tell anyone of (it is neither stored nor removed).
            return !matches!(event.change, Change::Seen);
        };
        let before = entry.clone();
        let after = next(&before, event);
        if after == before {
            return false;
        }
        *entry = after.clone();
        let (was, is) = (
            before.status == Status::Present,
            after.status == Status::Present,
        );
        if was {
            self.leave(&module, &version, before.stored_at, before.bytes);
        }
        if is {
            self.enter(&module, &version, after.stored_at, after.bytes);
        }
        before.status != after.status
    }

    fn enter(&mut self, module: &ModulePath, version: &Version, at: Nanos, bytes: u64) {
        self.by_time.insert((at, module.clone(), version.clone()));
        *self.present.entry(module.clone()).or_default() += 1;
        self.bytes += bytes;
    }

    fn leave(&mut self, module: &ModulePath, version: &Version, at: Nanos, bytes: u64) {
        self.by_time.remove(&(at, module.clone(), version.clone()));
        if let Some(count) = self.present.get_mut(module) {
            *count -= 1;
            if *count == 0 {
                self.present.remove(module);
            }
        }
        self.bytes -= bytes;
    }

    pub fn entry(&self, module: &ModulePath, version: &Version) -> Option<&Entry> {
        self.modules.get(module)?.get(version)
    }

    /// The blocked versions of a module.
    pub fn blocked_of(&self, module: &ModulePath) -> Vec<(Version, Arc<str>)> {
        let Some(versions) = self.modules.get(module) else {
            return Vec::new();
        };
        versions
            .iter()
            .filter_map(|(v, e)| match &e.status {
                Status::Blocked(reason) => Some((v.clone(), reason.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn totals(&self) -> Totals {
        Totals {
            modules: self.present.len() as u64,
            versions: self.by_time.len() as u64,
            bytes: self.bytes,
        }
    }

    /// Present versions in (module, version) order, starting after `after`, at most `limit`.
    pub fn catalog(
        &self,
        after: Option<&(ModulePath, Version)>,
        limit: usize,
    ) -> Vec<(ModulePath, Version)> {
        self.catalog_where(after, limit, |_| true)
    }

    /// As [`State::catalog`], of the modules `keep` keeps (the ones a caller may read): the page is
    /// filled from the versions after the ones left out.
    pub fn catalog_where(
        &self,
        after: Option<&(ModulePath, Version)>,
        limit: usize,
        keep: impl Fn(&ModulePath) -> bool,
    ) -> Vec<(ModulePath, Version)> {
        let mut page = Vec::with_capacity(limit.min(4096));
        let start = match after {
            Some((module, _)) => Bound::Included(module),
            None => Bound::Unbounded,
        };
        for (module, versions) in self
            .modules
            .range::<ModulePath, _>((start, Bound::Unbounded))
        {
            if !keep(module) {
                continue;
            }
            let from = match after {
                Some((m, v)) if m == module => Bound::Excluded(v),
                _ => Bound::Unbounded,
            };
            for (version, entry) in versions.range::<Version, _>((from, Bound::Unbounded)) {
                if entry.status != Status::Present {
                    continue;
                }
                if page.len() == limit {
                    return page;
                }
                page.push((module.clone(), version.clone()));
            }
        }
        page
    }

    /// Present versions first stored at or after `since`, in that order, at most `limit`.
    pub fn index(&self, since: Nanos, limit: usize) -> Vec<(Nanos, ModulePath, Version)> {
        self.index_where(since, limit, |_| true)
    }

    /// As [`State::index`], of the modules `keep` keeps (the ones a caller may read).
    pub fn index_where(
        &self,
        since: Nanos,
        limit: usize,
        keep: impl Fn(&ModulePath) -> bool,
    ) -> Vec<(Nanos, ModulePath, Version)> {
        self.by_time
            .iter()
            .skip_while(|(at, ..)| *at < since)
            .filter(|(_, module, _)| keep(module))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Every version whose module path starts with `prefix` (a whole path element: `example.com/a`
    /// covers `example.com/a` and `example.com/a/b`, not `example.com/ab`), with its entry.
    pub fn under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a ModulePath, &'a Version, &'a Entry)> + 'a {
        self.modules
            .iter()
            .filter(move |(module, _)| covers(prefix, module.as_str()))
            .flat_map(|(module, versions)| versions.iter().map(move |(v, e)| (module, v, e)))
    }

    /// The `limit` present versions stored last, newest first (the end of the index: no walk).
    pub fn newest(&self, limit: usize) -> Vec<(Nanos, ModulePath, Version)> {
        self.by_time.iter().rev().take(limit).cloned().collect()
    }

    /// Every version of `module` the ledger knows, in semver order, with its entry.
    pub fn versions_of(&self, module: &ModulePath) -> Vec<(Version, Entry)> {
        self.modules.get(module).map_or_else(Vec::new, |versions| {
            versions
                .iter()
                .map(|(v, e)| (v.clone(), e.clone()))
                .collect()
        })
    }

    /// The modules with a version stored whose path starts with `prefix` (as text: `example.com/li`
    /// finds `example.com/lib`), in path order, with their stored version count; those `keep` refuses are
    /// passed over, and at most `limit` are returned.
    pub fn modules_starting(
        &self,
        prefix: &str,
        limit: usize,
        mut keep: impl FnMut(&ModulePath) -> bool,
    ) -> Vec<(ModulePath, u64)> {
        self.present
            .iter()
            .skip_while(|(module, _)| module.as_str() < prefix)
            .take_while(|(module, _)| module.as_str().starts_with(prefix))
            .filter(|(module, _)| keep(module))
            .take(limit)
            .map(|(module, count)| (module.clone(), *count))
            .collect()
    }

    /// The `limit` versions served last (as flushed), newest first, with when: one pass over the entries.
    pub fn last_used(&self, limit: usize) -> Vec<(Nanos, ModulePath, Version)> {
        let mut used: Vec<(Nanos, &ModulePath, &Version)> = Vec::new();
        for (module, versions) in &self.modules {
            for (version, entry) in versions {
                if entry.accessed_at > 0 && entry.status == Status::Present {
                    used.push((entry.accessed_at, module, version));
                }
            }
        }
        let limit = limit.min(used.len());
        if limit == 0 {
            return Vec::new();
        }
        used.select_nth_unstable_by(limit - 1, |a, b| b.0.cmp(&a.0));
        used.truncate(limit);
        used.sort_by_key(|u| std::cmp::Reverse(u.0));
        used.into_iter()
            .map(|(at, m, v)| (at, m.clone(), v.clone()))
            .collect()
    }

    /// Every entry, as events that rebuild it (the snapshot's lines).
    pub fn as_events(&self) -> Vec<Event> {
        let mut events = Vec::with_capacity(self.by_time.len());
        for (module, versions) in &self.modules {
            for (version, entry) in versions {
                events.extend(events_of(module, version, entry));
            }
        }
        events
    }
}

/// The events that rebuild `entry` in an empty state (a snapshot's lines).
fn events_of(module: &ModulePath, version: &Version, entry: &Entry) -> Vec<Event> {
    let mut events = Vec::with_capacity(3);
    if entry.deleted_at > 0 && entry.status == Status::Present {
        events.push(Event::new(
            entry.deleted_at,
            module,
            version,
            Change::Deleted,
        ));
    }
    let status = match &entry.status {
        Status::Present => Change::Stored { bytes: entry.bytes },
        Status::Deleted => Change::Deleted,
        Status::Blocked(reason) => Change::Blocked {
            reason: reason.to_string(),
        },
    };
    let at = match entry.status {
        Status::Present => entry.stored_at,
        _ => entry.status_at,
    };
    events.push(Event::new(at, module, version, status));
    if entry.accessed_at > 0 {
        events.push(Event::new(
            entry.accessed_at,
            module,
            version,
            Change::Accessed,
        ));
    }
    if entry.first_seen > 0 {
        events.push(Event::new(entry.first_seen, module, version, Change::Seen));
    }
    events
}

/// Whether `prefix` (empty: everything) covers `module` at a path-element boundary.
pub fn covers(prefix: &str, module: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || module == prefix
        || module
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The entry after `event`: the status register keeps the latest status change; a blocked version stays
/// blocked until an unblock (a fill that raced the block does not lift it); accesses and sizes only grow.
fn next(entry: &Entry, event: &Event) -> Entry {
    let mut next = entry.clone();
    if matches!(event.change, Change::Seen | Change::Stored { .. }) {
        next.first_seen = match entry.first_seen {
            0 => event.at,
            seen => seen.min(event.at),
        };
    }
    let later = event.at >= entry.status_at;
    match (&event.change, &entry.status) {
        (Change::Accessed, _) => next.accessed_at = entry.accessed_at.max(event.at),
        (Change::Stored { bytes }, Status::Present) => {
            if event.at > entry.deleted_at {
                next.stored_at = entry.stored_at.min(event.at);
            }
            next.bytes = entry.bytes.max(*bytes);
        }
        (Change::Stored { bytes }, Status::Deleted) if event.at > entry.status_at => {
            next.status = Status::Present;
            next.status_at = event.at;
            next.stored_at = event.at;
            next.bytes = *bytes;
        }
        (Change::Deleted, Status::Present) if later => {
            next.status = Status::Deleted;
            next.status_at = event.at;
            next.deleted_at = event.at;
        }
        (Change::Blocked { reason }, _) if later => {
            next.status = Status::Blocked(reason.as_str().into());
            next.status_at = event.at;
        }
        (Change::Unblocked, Status::Blocked(_)) if later => {
            next.status = Status::Deleted;
            next.status_at = event.at;
            next.deleted_at = event.at;
        }
        (Change::Deleted | Change::Unblocked, _) => {
            next.deleted_at = entry.deleted_at.max(event.at);
        }
        _ => {}
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: Nanos, version: &str, change: Change) -> Event {
        Event::new(
            at,
            &ModulePath::new("example.com/a").unwrap(),
            &Version::new(version).unwrap(),
            change,
        )
    }

    fn fold(events: &[Event]) -> State {
        let mut state = State::default();
        for e in events {
            state.apply(e);
        }
        state
    }

    #[test]
    fn the_pages_queries_newest_last_used_and_modules_by_text_prefix() {
        let of = |module: &str, at: Nanos, version: &str, change: Change| {
            Event::new(
                at,
                &ModulePath::new(module).unwrap(),
                &Version::new(version).unwrap(),
                change,
            )
        };
        let state = fold(&[
            of("example.com/lib", 10, "v1.0.0", Change::Stored { bytes: 1 }),
            of("example.com/lib", 20, "v1.1.0", Change::Stored { bytes: 1 }),
            of(
                "example.com/libx",
                30,
                "v0.1.0",
                Change::Stored { bytes: 1 },
            ),
            of(
                "example.com/other",
                40,
                "v2.0.0",
                Change::Stored { bytes: 1 },
            ),
            of("example.com/lib", 50, "v1.0.0", Change::Accessed),
            of("example.com/other", 60, "v2.0.0", Change::Accessed),
            of("example.com/other", 70, "v2.0.0", Change::Deleted),
        ]);
        let newest: Vec<String> = state
            .newest(2)
            .iter()
            .map(|(at, m, v)| format!("{at} {m}@{v}"))
            .collect();
        assert_eq!(
            newest,
            ["30 example.com/libx@v0.1.0", "20 example.com/lib@v1.1.0"]
        );
        // A deleted version's use is not listed.
        let used: Vec<String> = state
            .last_used(5)
            .iter()
            .map(|(at, m, v)| format!("{at} {m}@{v}"))
            .collect();
        assert_eq!(used, ["50 example.com/lib@v1.0.0"]);
        let found = state.modules_starting("example.com/li", 10, |_| true);
        let found: Vec<String> = found.iter().map(|(m, n)| format!("{m} {n}")).collect();
        assert_eq!(found, ["example.com/lib 2", "example.com/libx 1"]);
        assert_eq!(
            state.modules_starting("example.com/li", 1, |_| true).len(),
            1
        );
        let kept = state.modules_starting("", 10, |m| m.as_str().ends_with('x'));
        assert_eq!(kept.len(), 1);
        assert_eq!(
            state
                .versions_of(&ModulePath::new("example.com/lib").unwrap())
                .len(),
            2
        );
    }

    #[test]
    fn any_order_of_the_same_events_folds_to_the_same_state() {
        let events = [
            event(10, "v1.0.0", Change::Stored { bytes: 100 }),
            event(20, "v1.1.0", Change::Stored { bytes: 50 }),
            event(30, "v1.0.0", Change::Deleted),
            event(
                40,
                "v1.1.0",
                Change::Blocked {
                    reason: "bad".into(),
                },
            ),
            event(45, "v1.0.0", Change::Accessed),
            event(50, "v1.0.0", Change::Stored { bytes: 120 }),
            event(60, "v1.2.0", Change::Stored { bytes: 7 }),
        ];
        let forward = fold(&events);
        let mut reversed = events.clone();
        reversed.reverse();
        let backward = fold(&reversed);
        let twice = fold(&[&events[..], &events[..]].concat());
        for state in [&backward, &twice] {
            assert_eq!(state.totals(), forward.totals());
            assert_eq!(state.index(0, 10), forward.index(0, 10));
            assert_eq!(state.catalog(None, 10), forward.catalog(None, 10));
        }
        assert_eq!(
            forward.totals(),
            Totals {
                modules: 1,
                versions: 2,
                bytes: 127
            }
        );
        let index: Vec<String> = forward
            .index(0, 10)
            .into_iter()
            .map(|(at, _, v)| format!("{at} {v}"))
            .collect();
        assert_eq!(index, ["50 v1.0.0", "60 v1.2.0"]);
        let m = ModulePath::new("example.com/a").unwrap();
        assert!(matches!(
            forward
                .entry(&m, &Version::new("v1.1.0").unwrap())
                .unwrap()
                .status,
            Status::Blocked(_)
        ));
    }

    #[test]
    fn the_first_sighting_is_kept_through_deletes_refills_and_snapshots() {
        let events = [
            event(30, "v1.0.0", Change::Seen),
            event(20, "v1.0.0", Change::Seen),
            event(40, "v1.0.0", Change::Stored { bytes: 5 }),
            event(50, "v1.0.0", Change::Deleted),
            event(60, "v1.0.0", Change::Stored { bytes: 5 }),
            event(70, "v1.1.0", Change::Seen),
        ];
        let m = ModulePath::new("example.com/a").unwrap();
        let first_seen = |state: &State, v: &str| {
            state
                .entry(&m, &Version::new(v).unwrap())
                .map(|e| e.first_seen)
        };
        let mut reversed = events.clone();
        reversed.reverse();
        for state in [fold(&events), fold(&reversed)] {
            assert_eq!(first_seen(&state, "v1.0.0"), Some(20));
            assert_eq!(first_seen(&state, "v1.1.0"), Some(70));
            // Only seen: neither stored nor counted.
            assert_eq!(state.totals().versions, 1);
            let again = fold(&state.as_events());
            assert_eq!(first_seen(&again, "v1.0.0"), Some(20));
            assert_eq!(first_seen(&again, "v1.1.0"), Some(70));
            assert_eq!(again.totals(), state.totals());
        }
        // A sighting is no status change.
        let mut state = State::default();
        assert!(!state.apply(&event(1, "v2.0.0", Change::Seen)));
    }

    #[test]
    fn a_block_outlives_a_racing_fill_until_unblocked() {
        let state = fold(&[
            event(
                10,
                "v1.0.0",
                Change::Blocked {
                    reason: "cve".into(),
                },
            ),
            event(20, "v1.0.0", Change::Stored { bytes: 1 }),
        ]);
        assert_eq!(state.totals().versions, 0);
        let state = fold(&[
            event(
                10,
                "v1.0.0",
                Change::Blocked {
                    reason: "cve".into(),
                },
            ),
            event(20, "v1.0.0", Change::Unblocked),
            event(30, "v1.0.0", Change::Stored { bytes: 1 }),
        ]);
        assert_eq!(state.totals().versions, 1);
    }

    #[test]
    fn catalog_pages_follow_each_other_and_prefixes_match_whole_elements() {
        let mut state = State::default();
        for (i, m) in ["a.com/x", "a.com/x/y", "a.com/xy", "b.com/z"]
            .iter()
            .enumerate()
        {
            for v in ["v1.0.0", "v1.10.0", "v1.2.0"] {
                state.apply(&Event::new(
                    i as u64,
                    &ModulePath::new(m).unwrap(),
                    &Version::new(v).unwrap(),
                    Change::Stored { bytes: 1 },
                ));
            }
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = state.catalog(after.as_ref(), 5);
            if page.is_empty() {
                break;
            }
            after = page.last().cloned();
            seen.extend(page);
        }
        assert_eq!(seen.len(), 12);
        assert_eq!(seen[1].1.as_str(), "v1.2.0", "semver order within a module");
        assert_eq!(state.under("a.com/x").count(), 6);
        assert_eq!(state.under("").count(), 12);
    }
}
