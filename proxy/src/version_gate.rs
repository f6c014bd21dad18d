//! Whether a version may be served: not blocked by an admin (the ledger), and not refused by the policy's
//! version rules (`versions` blocks of the download file: `min_age`, `deny`, `allow`). One place every
//! endpoint asks: a file of a version (`.info`, `.mod`, `.zip`) and a resolved query are answered 403
//! naming the rule; `list` leaves refused versions out; `@latest` picks the newest version not refused.
//!
//! Ages are judged by when this proxy (or a replica on the same store) first saw the version: asked for,
//! listed by an upstream, or stored. The ledger records that sighting (`Change::Seen`) the first time a
//! rule with `min_age` looks at a version; never `.info`'s `Time`, which the author chooses.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_module::{ModulePath, Version};
use ferry_policy::{Policy, Refusal};

use crate::answer::Answer;
use crate::clock::Clock;
use crate::ledger::{Ledger, Nanos, Status, nanos};
use crate::metrics::metrics;

/// What decides whether versions may be served, for one request.
pub(crate) struct Gate<'a> {
    pub policy: &'a Policy,
    pub ledger: &'a Ledger,
    pub clock: &'a Clock,
}

/// Why a version is not served.
pub(crate) enum Refused<'p> {
    /// Blocked by an admin, with the reason given.
    Blocked(std::sync::Arc<str>),
    /// Refused by a version rule.
    Rule(Refusal<'p>),
}

impl<'p> Gate<'p> {
    /// Why `version` of `module` may not be served, if it may not. Cheap when nothing is blocked and no
    /// rule matches the module (one atomic load and a check of an empty list): the check every request for
    /// a version's file makes.
    pub fn refusal(&self, module: &ModulePath, version: &Version) -> Option<Refused<'p>> {
        if let Some(Status::Blocked(reason)) = self.ledger.removal(module, version) {
            return Some(Refused::Blocked(reason));
        }
        self.rule_refusal(module, version).map(Refused::Rule)
    }

    /// The answer for a version that may not be served (403), if it may not.
    pub fn answer(&self, module: &ModulePath, version: &Version) -> Option<Answer> {
        Some(match self.refusal(module, version)? {
            Refused::Blocked(reason) => Answer::blocked(module, version, &reason),
            Refused::Rule(refusal) => Answer::refused_by_rule(module, version, &refusal),
        })
    }

    /// Whether `version` (as an upstream named it) may not be served.
    pub fn is_refused(&self, module: &ModulePath, version: &str) -> bool {
        Version::new(version).is_ok_and(|v| self.refusal(module, &v).is_some())
    }

    /// Leaves the versions that may not be served out of `versions`.
    pub fn drop_refused(&self, module: &ModulePath, versions: &mut Vec<Version>) {
        let blocked = self.ledger.read(|state| state.blocked_of(module));
        if !blocked.is_empty() {
            versions.retain(|v| !blocked.iter().any(|(b, _)| b == v));
        }
        if self.policy.versions(module.as_str()).is_some() {
            versions.retain(|v| self.rule_refusal(module, v).is_none());
        }
    }

    /// The version rule's refusal, counted and logged; `None` when the rule is a dry run (logged as what it
    /// would refuse).
    fn rule_refusal(&self, module: &ModulePath, version: &Version) -> Option<Refusal<'p>> {
        let rule = self.policy.versions(module.as_str())?;
        let now = self.clock.now();
        let first_seen = rule
            .has_min_age()
            .then(|| system_time(self.ledger.seen(module, version, nanos(now))));
        let why = rule.judge(version, first_seen, now)?;
        let refusal = Refusal { rule, why };
        let kind = refusal.why.kind();
        if rule.dry_run() {
            metrics().version_refused(kind, true);
            tracing::info!(%module, %version, rule = %rule, would = %refusal, "a dry-run version rule would refuse this version");
            return None;
        }
        metrics().version_refused(kind, false);
        Some(refusal)
    }
}

fn system_time(at: Nanos) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(at)
}
