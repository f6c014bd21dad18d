//! Garbage collection: which versions a retention policy removes ([`plan`], pure, from the ledger), and the
//! settings of the `[gc]` table.
//!
//! A plan never touches a protected module or a module's newest `keep_latest` versions; it takes every
//! other version unused for `unused_for`, then, while the store is above `max_bytes`, the least recently
//! used of the rest. "Used" is the later of its last access (flushed by any replica) and when it was stored.
use std::collections::BTreeMap;
use std::time::Duration;

use ferry_module::{ModulePath, Version};
use serde::{Deserialize, Serialize};

use crate::ledger::{Nanos, State, Status};

/// The `[gc]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcSettings {
    /// Collect the least recently used versions while the store holds more than this.
    pub max_bytes: Option<u64>,
    /// Collect versions unused for this long.
    pub unused_for: Option<Duration>,
    /// The newest versions of each module kept whatever else says (1 by default: a module never loses
    /// its newest version to a collection).
    pub keep_latest: usize,
    /// Module path patterns (GOPRIVATE syntax, comma-separated) never collected.
    pub protect: Vec<String>,
    /// Run a collection this often (on one replica at a time); `None`: only when asked.
    pub every: Option<Duration>,
}

impl GcSettings {
    /// The defaults: nothing collected until `max_bytes` or `unused_for` says so.
    pub fn new() -> GcSettings {
        GcSettings {
            keep_latest: 1,
            ..GcSettings::default()
        }
    }

    /// Whether the policy can collect anything.
    pub fn collects(&self) -> bool {
        self.max_bytes.is_some() || self.unused_for.is_some()
    }

    fn protects(&self, module: &ModulePath) -> bool {
        !self.protect.is_empty()
            && ferry_module::match_prefix_patterns(&self.protect.join(","), module.as_str())
    }
}

/// One version a plan removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Victim {
    pub module: String,
    pub version: String,
    pub bytes: u64,
    /// When it was last used, as the plan saw it: a version used since is spared.
    pub used_at: Nanos,
    /// `unused_for` or `max_bytes`: which rule takes it.
    pub rule: String,
}

/// What a collection removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub victims: Vec<Victim>,
    /// The bytes they hold.
    pub bytes: u64,
    /// The store's bytes before.
    pub stored_bytes: u64,
}

/// The versions `settings` removes from what `state` holds, at time `now`, least recently used first.
pub fn plan(state: &State, settings: &GcSettings, now: Nanos) -> Plan {
    let mut by_module: BTreeMap<&ModulePath, Vec<(&Version, Nanos, u64)>> = BTreeMap::new();
    for (module, version, entry) in state.under("") {
        if entry.status == Status::Present {
            by_module
                .entry(module)
                .or_default()
                .push((version, entry.used_at(), entry.bytes));
        }
    }
    let mut candidates: Vec<(&ModulePath, &Version, Nanos, u64)> = Vec::new();
    for (module, mut versions) in by_module {
        if settings.protects(module) {
            continue;
        }
        // Newest first by the go command's order: releases above pre-releases above pseudo-versions.
        versions.sort_by(|a, b| rank(b.0).cmp(&rank(a.0)));
        candidates.extend(
            versions
                .into_iter()
                .skip(settings.keep_latest)
                .map(|(v, used, bytes)| (module, v, used, bytes)),
        );
    }
    candidates.sort_by_key(|(m, v, used, _)| (*used, (*m).clone(), (*v).clone()));
    let stored_bytes = state.totals().bytes;
    let mut plan = Plan {
        stored_bytes,
        ..Plan::default()
    };
    let unused_before = settings
        .unused_for
        .map(|d| now.saturating_sub(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)));
    for (module, version, used_at, bytes) in candidates {
        let rule = if unused_before.is_some_and(|before| used_at < before) {
            "unused_for"
        } else if settings
            .max_bytes
            .is_some_and(|max| stored_bytes - plan.bytes > max)
        {
            "max_bytes"
        } else {
            // Sorted by use: nothing later is older, and the store is under its cap.
            break;
        };
        plan.bytes += bytes;
        plan.victims.push(Victim {
            module: module.to_string(),
            version: version.to_string(),
            bytes,
            used_at,
            rule: rule.to_string(),
        });
    }
    plan
}

/// A version's place in the go command's preference: releases, then pre-releases, then pseudo-versions,
/// each in semver order.
fn rank(version: &Version) -> (u8, &Version) {
    let class = if version.is_pseudo() {
        0
    } else if version.is_prerelease() {
        1
    } else {
        2
    };
    (class, version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Change, Event};

    const HOUR: Nanos = 3_600_000_000_000;

    fn state(versions: &[(&str, &str, Nanos, u64)]) -> State {
        let mut state = State::default();
        for (m, v, at, bytes) in versions {
            state.apply(&Event::new(
                *at,
                &ModulePath::new(m).unwrap(),
                &Version::new(v).unwrap(),
                Change::Stored { bytes: *bytes },
            ));
        }
        state
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.victims
            .iter()
            .map(|v| format!("{}@{} {}", v.module, v.version, v.rule))
            .collect()
    }

    #[test]
    fn unused_versions_go_but_each_modules_newest_and_protected_ones_stay() {
        let state = state(&[
            ("a.com/x", "v1.0.0", HOUR, 10),
            ("a.com/x", "v1.1.0", 2 * HOUR, 10),
            ("a.com/x", "v1.2.0-pre", 3 * HOUR, 10),
            ("corp.example/y", "v1.0.0", HOUR, 10),
            ("corp.example/y", "v1.1.0", HOUR, 10),
            ("b.com/z", "v0.1.0", 100 * HOUR, 10),
            ("b.com/z", "v0.2.0", 100 * HOUR, 10),
        ]);
        let settings = GcSettings {
            unused_for: Some(Duration::from_secs(24 * 3600)),
            protect: vec!["corp.example".into()],
            ..GcSettings::new()
        };
        let plan = plan(&state, &settings, 101 * HOUR);
        // v1.1.0 is a.com/x's newest release (a pre-release ranks below it).
        assert_eq!(
            names(&plan),
            ["a.com/x@v1.0.0 unused_for", "a.com/x@v1.2.0-pre unused_for"]
        );
        assert_eq!(plan.bytes, 20);
    }

    #[test]
    fn above_the_cap_the_least_recently_used_go_until_under_it() {
        let state = state(&[
            ("a.com/x", "v1.0.0", 1, 40),
            ("a.com/x", "v1.1.0", 3, 40),
            ("a.com/x", "v1.2.0", 5, 40),
            ("a.com/y", "v1.0.0", 2, 40),
            ("a.com/y", "v1.1.0", 4, 40),
        ]);
        let settings = GcSettings {
            max_bytes: Some(100),
            ..GcSettings::new()
        };
        let plan = plan(&state, &settings, 10);
        assert_eq!(
            names(&plan),
            [
                "a.com/x@v1.0.0 max_bytes",
                "a.com/y@v1.0.0 max_bytes",
                "a.com/x@v1.1.0 max_bytes"
            ]
        );
        assert!(plan.stored_bytes - plan.bytes <= 100);
    }
}
