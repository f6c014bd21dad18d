//! Version rules: which versions of the modules a pattern matches may be served, by their age and by
//! lists and ranges. A `versions "PATTERN" { ... }` block of the download file (an extension Athens files
//! never need); the first block whose pattern matches a module decides, as `download` blocks do.
//!
//! ```hcl
//! versions "corp.example/*" {}            # no rules for our own modules (an earlier block wins)
//! versions "*" {
//!   min_age = "72h"                       # a version first seen less than 3 days ago is not served
//!   deny    = ["v1.4.3", ">=v2.0.0 <v2.1.0"]
//!   allow   = []                          # when not empty: only these
//!   exempt  = ["v1.4.4"]                  # served whatever its age (an urgent fix)
//!   dry_run = false                       # true: only log what would be refused
//! }
//! ```
//!
//! The age is judged by when the version was *first seen* (by this proxy, or a replica on the same store),
//! never by its `.info`'s `Time`, which is the author's commit time and can be back-dated. Judging is
//! pure: the caller passes that time and the current one.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_module::{Pattern, Version};

/// The rules of one `versions` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRule {
    pub(crate) pattern: Pattern,
    pub(crate) min_age: Option<Duration>,
    pub(crate) deny: Vec<VersionRange>,
    pub(crate) allow: Vec<VersionRange>,
    pub(crate) exempt: Vec<VersionRange>,
    pub(crate) dry_run: bool,
    /// The block's line in its file (the file's path is never shown to clients).
    pub(crate) line: usize,
    pub(crate) file: Arc<str>,
}

/// Why a version is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It matches this `deny` entry.
    Denied(String),
    /// `allow` is not empty and no entry matches it.
    NotAllowed,
    /// It was first seen too recently: it may be served from `available`.
    TooNew { available: SystemTime },
}

/// A refusal and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<'p> {
    pub rule: &'p VersionRule,
    pub why: Refused,
}

impl VersionRule {
    /// The block's pattern.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Whether the rule only logs what it would refuse.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Whether the rule looks at ages (and so needs to know when versions were first seen).
    pub fn has_min_age(&self) -> bool {
        self.min_age.is_some()
    }

    /// Why `version` may not be served, if it may not. `first_seen`: when this proxy first saw it (`None`:
    /// never before now); `now`: the current time.
    pub fn judge(
        &self,
        version: &Version,
        first_seen: Option<SystemTime>,
        now: SystemTime,
    ) -> Option<Refused> {
        if let Some(range) = self.deny.iter().find(|range| range.contains(version)) {
            return Some(Refused::Denied(range.text.clone()));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|range| range.contains(version)) {
            return Some(Refused::NotAllowed);
        }
        let min_age = self.min_age?;
        if self.exempt.iter().any(|range| range.contains(version)) {
            return None;
        }
        let available = first_seen.unwrap_or(now) + min_age;
        (now < available).then_some(Refused::TooNew { available })
    }

    /// The rule as a client may read it: the block's pattern and line, without the file's path.
    pub fn for_clients(&self) -> impl fmt::Display + '_ {
        ForClients(self)
    }
}

impl fmt::Display for VersionRule {
    /// For the log and the CLI: with the file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "versions {:?} at {}:{}",
            self.pattern.as_str(),
            self.file,
            self.line
        )
    }
}

struct ForClients<'r>(&'r VersionRule);

impl fmt::Display for ForClients<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = self.0;
        write!(
            f,
            "versions {:?} (line {} of the download file)",
            rule.pattern.as_str(),
            rule.line
        )
    }
}

impl fmt::Display for Refusal<'_> {
    /// What a client is told (in the 403): the rule, what it says, and for an age when the version becomes
    /// available.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = self.rule.for_clients();
        match &self.why {
            Refused::Denied(entry) => write!(f, "denied by {rule}: deny {entry:?}"),
            Refused::NotAllowed => write!(f, "not in the allow list of {rule}"),
            Refused::TooNew { available } => {
                let min_age = self.rule.min_age.unwrap_or_default();
                write!(
                    f,
                    "too new for {rule}: min_age {}; available from {}",
                    humantime::format_duration(min_age),
                    humantime::format_rfc3339_seconds(*available)
                )
            }
        }
    }
}

impl Refused {
    /// A short name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Refused::Denied(_) => "deny",
            Refused::NotAllowed => "allow",
            Refused::TooNew { .. } => "min_age",
        }
    }
}

/// One entry of `deny`, `allow` or `exempt`: a version (`v1.2.3`) or comparisons that must all hold
/// (`>=v1.0.0 <v1.4.0`; operators `=`, `<`, `<=`, `>`, `>=`), in semantic version order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange {
    text: String,
    bounds: Vec<(Op, Version)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl VersionRange {
    /// Parses an entry; the error says what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<VersionRange, String> {
        let mut bounds = Vec::new();
        for part in text.split_whitespace() {
            let (op, rest) = [
                (">=", Op::Ge),
                ("<=", Op::Le),
                (">", Op::Gt),
                ("<", Op::Lt),
                ("=", Op::Eq),
            ]
            .into_iter()
            .find_map(|(sign, op)| part.strip_prefix(sign).map(|rest| (op, rest)))
            .unwrap_or((Op::Eq, part));
            let version = Version::new(rest).map_err(|e| {
                format!("{e}; write a canonical version such as v1.2.3, optionally after one of = < <= > >=, e.g. \">=v1.0.0 <v1.4.0\"")
            })?;
            bounds.push((op, version));
        }
        if bounds.is_empty() {
            return Err(
                "an empty entry; write a version (v1.2.3) or a range (\">=v1.0.0 <v1.4.0\")".into(),
            );
        }
        Ok(VersionRange {
            text: text.trim().to_string(),
            bounds,
        })
    }

    pub fn contains(&self, version: &Version) -> bool {
        self.bounds.iter().all(|(op, bound)| {
            let order = version.cmp(bound);
            match op {
                Op::Eq => order.is_eq(),
                Op::Lt => order.is_lt(),
                Op::Le => order.is_le(),
                Op::Gt => order.is_gt(),
                Op::Ge => order.is_ge(),
            }
        })
    }
}

/// A `versions` block's keys as read, before the rule is built: each with where its value is, for the
/// parser's located messages.
#[derive(Debug, Default)]
pub(crate) struct RuleKeys {
    pub min_age: Option<(String, Range<usize>)>,
    pub deny: Vec<(String, Range<usize>)>,
    pub allow: Vec<(String, Range<usize>)>,
    pub exempt: Vec<(String, Range<usize>)>,
    pub dry_run: bool,
}

/// The block's name in the download file.
pub(crate) const VERSIONS_BLOCK: &str = "versions";

/// The keys a `versions` block holds.
pub(crate) const VERSION_KEYS: &str = "min_age, deny, allow, exempt and dry_run";

impl RuleKeys {
    /// The rule, or the problems of its values (span, message, fix).
    pub(crate) fn build(
        self,
        pattern: Pattern,
        file: Arc<str>,
        line: usize,
    ) -> Result<VersionRule, Vec<(Range<usize>, String, String)>> {
        let mut problems = Vec::new();
        let min_age =
            self.min_age
                .and_then(|(text, span)| match humantime::parse_duration(&text) {
                    Ok(age) if !age.is_zero() => Some(age),
                    Ok(_) => {
                        problems.push((
                            span,
                            format!("min_age {text:?} is zero"),
                            "remove min_age, or write a positive age such as \"72h\" or \"7d\""
                                .into(),
                        ));
                        None
                    }
                    Err(_) => {
                        problems.push((
                            span,
                            format!("min_age {text:?} is not a duration"),
                            "write an age such as \"72h\" or \"7d\"".into(),
                        ));
                        None
                    }
                });
        let mut ranges = |entries: Vec<(String, Range<usize>)>, key: &str| {
            entries
                .into_iter()
                .filter_map(|(text, span)| match VersionRange::parse(&text) {
                    Ok(range) => Some(range),
                    Err(fix) => {
                        problems.push((
                            span,
                            format!("{key} entry {text:?} is not a version or range"),
                            fix,
                        ));
                        None
                    }
                })
                .collect::<Vec<_>>()
        };
        let deny = ranges(self.deny, "deny");
        let allow = ranges(self.allow, "allow");
        let exempt = ranges(self.exempt, "exempt");
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(VersionRule {
            pattern,
            min_age,
            deny,
            allow,
            exempt,
            dry_run: self.dry_run,
            line,
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::new(text).unwrap()
    }

    fn rule(keys: RuleKeys) -> VersionRule {
        keys.build(Pattern::new("*").unwrap(), "download.hcl".into(), 1)
            .unwrap()
    }

    fn entries(texts: &[&str]) -> Vec<(String, Range<usize>)> {
        texts.iter().map(|t| (t.to_string(), 0..0)).collect()
    }

    #[test]
    fn ranges_hold_every_comparison_in_semver_order() {
        let range = VersionRange::parse(">=v1.0.0 <v1.4.0").unwrap();
        assert!(range.contains(&v("v1.0.0")));
        assert!(range.contains(&v("v1.3.9")));
        assert!(!range.contains(&v("v1.10.0")));
        assert!(!range.contains(&v("v1.4.0")));
        assert!(!range.contains(&v("v0.9.0")));
        // A prerelease of the bound sorts before it.
        assert!(range.contains(&v("v1.4.0-rc.1")));
        assert!(
            VersionRange::parse("v1.2.3")
                .unwrap()
                .contains(&v("v1.2.3"))
        );
        assert!(
            !VersionRange::parse("=v1.2.3")
                .unwrap()
                .contains(&v("v1.2.4"))
        );
        assert!(
            VersionRange::parse("<=v2.0.0")
                .unwrap()
                .contains(&v("v2.0.0"))
        );
        assert!(
            VersionRange::parse(">v2.0.0")
                .unwrap()
                .contains(&v("v2.0.1"))
        );
        for bad in ["", "1.2.3", "v1.2", ">=v1.0.0 <", "~v1.0.0"] {
            assert!(VersionRange::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_rule_denies_then_allows_then_judges_the_age() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let day = Duration::from_secs(86_400);
        let rule = rule(RuleKeys {
            min_age: Some(("3d".into(), 0..0)),
            deny: entries(&["v1.4.3"]),
            allow: entries(&["<v2.0.0"]),
            exempt: entries(&["v1.4.4"]),
            dry_run: false,
        });
        let old = Some(now - 10 * day);
        assert_eq!(
            rule.judge(&v("v1.4.3"), old, now),
            Some(Refused::Denied("v1.4.3".into()))
        );
        assert_eq!(
            rule.judge(&v("v2.0.0"), old, now),
            Some(Refused::NotAllowed)
        );
        assert_eq!(rule.judge(&v("v1.4.2"), old, now), None);
        // Seen a day ago: available two days from now.
        assert_eq!(
            rule.judge(&v("v1.4.2"), Some(now - day), now),
            Some(Refused::TooNew {
                available: now + 2 * day
            })
        );
        // Never seen: it is seen now.
        assert_eq!(
            rule.judge(&v("v1.4.2"), None, now),
            Some(Refused::TooNew {
                available: now + 3 * day
            })
        );
        // Exempt from the age, not from deny.
        assert_eq!(rule.judge(&v("v1.4.4"), None, now), None);
        // Exactly at the age: served.
        assert_eq!(rule.judge(&v("v1.4.2"), Some(now - 3 * day), now), None);
    }

    #[test]
    fn bad_values_are_each_reported() {
        let keys = RuleKeys {
            min_age: Some(("soon".into(), 1..2)),
            deny: entries(&["1.0.0"]),
            allow: entries(&["v1.0.0"]),
            exempt: entries(&[">>v1.0.0"]),
            dry_run: false,
        };
        let problems = keys
            .build(Pattern::new("*").unwrap(), "f".into(), 1)
            .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].1.contains("min_age \"soon\""));
        let zero = RuleKeys {
            min_age: Some(("0s".into(), 0..0)),
            ..RuleKeys::default()
        };
        assert!(
            zero.build(Pattern::new("*").unwrap(), "f".into(), 1)
                .is_err()
        );
    }
}
