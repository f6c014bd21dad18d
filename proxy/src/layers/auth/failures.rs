//! Wrong passwords remembered for a while, so that the same wrong credentials sent again (a build fleet
//! with a stale password, a flood that repeats itself) are answered 401 without a bcrypt run. A failure is
//! remembered with the entry it was checked against (none for a name the file does not list) and counts
//! only while that entry is unchanged: a reload that changes or adds the user makes it void.
//!
//! Bounded: at most [`CAPACITY`] failures, each for [`KEEP`]; the oldest goes first. An attacker's
//! distinct guesses push out other failures, which then cost a bcrypt run again, nothing worse.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queue::Key;

/// Failures remembered at once: about 130 bytes each (the key, the entry's `Arc`, two instants and the
/// maps' overhead), so about 2 MB.
pub(super) const CAPACITY: usize = 16_384;
/// How long a failure is remembered. The answer would not change later (the entry is compared); the
/// limit only lets the memory turn over.
pub(super) const KEEP: Duration = Duration::from_secs(300);

pub(super) struct Failures {
    entries: HashMap<Key, Failure>,
    /// Keys in the order they were remembered, with the time each was to be forgotten: the oldest first.
    order: VecDeque<(Key, Instant)>,
    capacity: usize,
    keep: Duration,
}

struct Failure {
    /// The entry the password was checked against (`None`: the user was not in the file).
    entry: Option<Arc<str>>,
    until: Instant,
}

impl Failures {
    pub fn new(capacity: usize, keep: Duration) -> Failures {
        Failures {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            keep,
        }
    }

    /// Whether `key` failed against `entry`, the user's entry in force.
    pub fn contains(&mut self, key: &Key, entry: Option<&Arc<str>>, now: Instant) -> bool {
        self.forget(now);
        self.entries
            .get(key)
            .is_some_and(|failure| failure.entry.as_deref() == entry.map(|entry| &**entry))
    }

    pub fn insert(&mut self, key: Key, entry: Option<Arc<str>>, now: Instant) {
        self.forget(now);
        while self.order.len() >= self.capacity {
            self.pop_oldest();
        }
        let until = now + self.keep;
        self.entries.insert(key, Failure { entry, until });
        self.order.push_back((key, until));
    }

    /// Forgets the failures whose time is up.
    fn forget(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(_, until)| *until <= now) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        let Some((key, until)) = self.order.pop_front() else {
            return;
        };
        // The key may have been remembered again since: that later entry stays.
        if self
            .entries
            .get(&key)
            .is_some_and(|failure| failure.until == until)
        {
            self.entries.remove(&key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_counts_against_the_same_entry_until_its_time_and_the_oldest_goes_first_when_full()
    {
        let mut failures = Failures::new(3, Duration::from_secs(10));
        let start = Instant::now();
        let entry: Arc<str> = Arc::from("$2y$05$entry");
        let changed: Arc<str> = Arc::from("$2y$05$changed");
        failures.insert([1; 32], Some(entry.clone()), start);
        failures.insert([2; 32], None, start);
        assert!(failures.contains(&[1; 32], Some(&entry), start));
        assert!(!failures.contains(&[1; 32], Some(&changed), start));
        assert!(!failures.contains(&[1; 32], None, start));
        assert!(failures.contains(&[2; 32], None, start));
        assert!(!failures.contains(&[2; 32], Some(&entry), start));
        // Remembered again later: the second time counts, the first's expiry does not remove it.
        let later = start + Duration::from_secs(5);
        failures.insert([1; 32], Some(entry.clone()), later);
        let after_first = start + Duration::from_secs(11);
        assert!(failures.contains(&[1; 32], Some(&entry), after_first));
        assert!(!failures.contains(&[2; 32], None, after_first));
        // Full: the oldest goes.
        for n in 3..=5 {
            failures.insert([n; 32], None, after_first);
        }
        assert_eq!(failures.len(), 3);
        assert!(!failures.contains(&[1; 32], Some(&entry), after_first));
        assert!(failures.contains(&[5; 32], None, after_first));
    }
}
