//! Access rules: who may read, and who may administer, which modules (`[[access]]` tables of the
//! configuration file). Decided once per request in `Proxy::answer`, and by the admin API for each
//! operation; [`Rules::may_read`] is the one decision other code reuses (a status page filtering its lists).
//!
//! A rule names module patterns (`modules`, Go `path.Match` prefix patterns as `GOPRIVATE` uses them) and
//! the callers that may read them (`read`) and administer them (`admin`, which implies reading). The first
//! rule whose patterns match a module decides for it, in the order the file lists them. A module no rule
//! matches is readable by every caller authentication let in (as with no rules at all), and administered
//! by nobody: a last rule for `*` changes both. With no rules, every caller reads and administers
//! everything, as before rules existed.

use ferry_module::{ModulePath, Pattern};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::layers::auth::{Credential, Identity};

/// A caller a rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// `*`: any caller that authenticated.
    Authenticated,
    /// `anonymous`: a request without an identity (authentication is off).
    Anonymous,
    /// `user:NAME`: an `auth_file` user, or a person a JWT names.
    User(Box<str>),
    /// `token:NAME`: a bearer token by its name.
    Token(Box<str>),
    /// `group:NAME`: a member of a token's or a JWT's group.
    Group(Box<str>),
}

impl Who {
    /// What the caller syntax allows, for messages.
    const SYNTAX: &'static str = "write \"user:NAME\", \"token:NAME\", \"group:NAME\", \"*\" (any authenticated caller) or \"anonymous\" (when auth is off)";

    fn parse(text: &str) -> Result<Who, String> {
        let named = |name: &str, make: fn(Box<str>) -> Who| {
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                Err(format!(
                    "{text:?} has no name (or a blank in it); {}",
                    Who::SYNTAX
                ))
            } else {
                Ok(make(name.into()))
            }
        };
        match text {
            "*" => Ok(Who::Authenticated),
            "anonymous" => Ok(Who::Anonymous),
            _ => match text.split_once(':') {
                Some(("user", name)) => named(name, Who::User),
                Some(("token", name)) => named(name, Who::Token),
                Some(("group", name)) => named(name, Who::Group),
                _ => Err(format!("{text:?} is not a caller; {}", Who::SYNTAX)),
            },
        }
    }

    /// Whether this names the caller.
    fn admits(&self, identity: Option<&Identity>) -> bool {
        match (self, identity) {
            (Who::Anonymous, None) => true,
            (Who::Authenticated, Some(_)) => true,
            (Who::User(name), Some(id)) => {
                !matches!(id.via, Credential::Token) && *id.user == **name
            }
            (Who::Token(name), Some(id)) => {
                matches!(id.via, Credential::Token) && *id.user == **name
            }
            (Who::Group(name), Some(id)) => id.groups.iter().any(|group| **group == **name),
            _ => false,
        }
    }
}

/// One `[[access]]` table.
#[derive(Debug, Clone)]
struct Rule {
    modules: Vec<Pattern>,
    /// Where each pattern is written in the configuration file (a byte offset), for messages.
    places: Vec<usize>,
    read: Vec<Who>,
    admin: Vec<Who>,
}

impl Rule {
    fn matches(&self, module: &str) -> bool {
        self.modules.iter().any(|pattern| pattern.matches(module))
    }

    fn may_admin(&self, identity: Option<&Identity>) -> bool {
        self.admin.iter().any(|who| who.admits(identity))
    }

    fn may_read(&self, identity: Option<&Identity>) -> bool {
        self.read.iter().any(|who| who.admits(identity)) || self.may_admin(identity)
    }
}

/// The access rules in force (none: every caller reads and administers everything).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

/// A rule that cannot be used: the byte offset in the configuration file where it is written, and what
/// is wrong with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub offset: usize,
    pub message: String,
}

impl Rules {
    /// No rules: what happens without any `[[access]]` table.
    pub fn none() -> Rules {
        Rules::default()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The rule that decides for `module`: the first that matches it.
    fn rule_for(&self, module: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(module))
    }

    /// Whether the caller (`None`: no identity, authentication is off) may read `module`: fetch its
    /// files, list its versions, see it in the catalog and the index.
    pub fn may_read(&self, identity: Option<&Identity>, module: &ModulePath) -> bool {
        self.rule_for(module.as_str())
            .is_none_or(|rule| rule.may_read(identity))
    }

    /// Whether the caller may delete, block and unblock versions of `module`.
    pub fn may_admin(&self, identity: Option<&Identity>, module: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rule_for(module)
            .is_some_and(|rule| rule.may_admin(identity))
    }

    /// Whether the caller administers every module (what `gc` and `reindex` need): every rule grants it,
    /// and one of them is for `*`, so that no module falls outside the rules.
    pub fn may_admin_all(&self, identity: Option<&Identity>) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let everything = self
            .rules
            .iter()
            .any(|rule| rule.modules.iter().any(|p| p.as_str() == "*"));
        everything && self.rules.iter().all(|rule| rule.may_admin(identity))
    }

    /// The `[[access]]` tables of a configuration file's text (already read as TOML by the loader).
    pub fn from_toml(text: &str) -> Result<Rules, RuleError> {
        let table = DeTable::parse(text).map_err(|e| RuleError {
            offset: e.span().map_or(0, |s| s.start),
            message: e.message().to_string(),
        })?;
        let Some((_, access)) = table
            .get_ref()
            .iter()
            .find(|(key, _)| key.get_ref() == "access")
        else {
            return Ok(Rules::none());
        };
        let DeValue::Array(items) = access.get_ref() else {
            return Err(at(
                access,
                "access is a list of rules: write [[access]] tables, each with modules, read and admin",
            ));
        };
        let mut rules = Vec::with_capacity(items.len());
        for item in items {
            let DeValue::Table(table) = item.get_ref() else {
                return Err(at(
                    item,
                    "an access rule is a table: write [[access]] with modules, read and admin",
                ));
            };
            rules.push(rule(item, table)?);
        }
        shadowed(text, &rules)?;
        Ok(Rules { rules })
    }
}

/// Refuses a pattern that can never decide: an earlier rule matches every module it matches (the first
/// matching rule decides), which is a rule written in the wrong order or a leftover.
fn shadowed(text: &str, rules: &[Rule]) -> Result<(), RuleError> {
    for (i, rule) in rules.iter().enumerate() {
        for (pattern, place) in rule.modules.iter().zip(&rule.places) {
            let earlier = rules[..i]
                .iter()
                .flat_map(|r| r.modules.iter().zip(&r.places));
            if let Some((cover, at)) = earlier
                .into_iter()
                .find(|(earlier, _)| pattern.is_covered_by(earlier))
            {
                let line = text[..*at].matches('\n').count() + 1;
                return Err(RuleError {
                    offset: *place,
                    message: format!(
                        "access: modules: pattern {:?} never decides: {:?} of an earlier rule (line {line}) matches every module it matches, and the first matching rule decides; move this rule before that one, or remove the pattern",
                        pattern.as_str(),
                        cover.as_str()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// An error at a value's place.
fn at<T>(value: &Spanned<T>, message: &str) -> RuleError {
    RuleError {
        offset: value.span().start,
        message: message.to_string(),
    }
}

/// One `[[access]]` table: `modules` (required, not empty), `read` and `admin` (lists of callers).
fn rule(item: &Spanned<DeValue<'_>>, table: &DeTable<'_>) -> Result<Rule, RuleError> {
    let mut modules = None;
    let (mut read, mut admin, mut places) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in table {
        match key.get_ref().as_ref() {
            "modules" => {
                let mut patterns = Vec::new();
                for (text, place) in strings(value, "modules")? {
                    patterns.push(pattern(&text).map_err(|message| RuleError {
                        offset: place,
                        message,
                    })?);
                    places.push(place);
                }
                if patterns.is_empty() {
                    return Err(at(
                        value,
                        "access: modules is empty; list module patterns, e.g. modules = [\"corp.example.com/*\"]",
                    ));
                }
                modules = Some(patterns);
            }
            name @ ("read" | "admin") => {
                let callers = if name == "read" {
                    &mut read
                } else {
                    &mut admin
                };
                for (text, place) in strings(value, name)? {
                    callers.push(Who::parse(&text).map_err(|why| RuleError {
                        offset: place,
                        message: format!("access: {name}: {why}"),
                    })?);
                }
            }
            other => {
                return Err(at(
                    key,
                    &format!("access: unknown key `{other}`; a rule has modules, read and admin"),
                ));
            }
        }
    }
    let modules = modules.ok_or_else(|| {
        at(
            item,
            "access: this rule has no modules; add e.g. modules = [\"corp.example.com/*\"]",
        )
    })?;
    Ok(Rule {
        modules,
        places,
        read,
        admin,
    })
}

/// A list of strings, each with its place.
fn strings(value: &Spanned<DeValue<'_>>, name: &str) -> Result<Vec<(String, usize)>, RuleError> {
    let wrong = || {
        at(
            value,
            &format!("access: {name} is a list of strings, e.g. {name} = [\"…\"]"),
        )
    };
    let DeValue::Array(items) = value.get_ref() else {
        return Err(wrong());
    };
    items
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::String(text) => Ok((text.to_string(), item.span().start)),
            _ => Err(at(item, &format!("access: {name}: each entry is a string"))),
        })
        .collect()
}

/// A module pattern that can match something.
fn pattern(text: &str) -> Result<Pattern, String> {
    let pattern =
        Pattern::new(text).map_err(|e| format!("access: modules: pattern {text:?}: {e}"))?;
    if let Some((problem, fix)) = pattern.never_matches() {
        return Err(format!(
            "access: modules: pattern {text:?} {problem}; {fix}"
        ));
    }
    Ok(pattern)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn module(path: &str) -> ModulePath {
        ModulePath::new(path).unwrap()
    }

    fn token(name: &str, groups: &[&str]) -> Identity {
        Identity {
            user: name.into(),
            via: Credential::Token,
            groups: groups.iter().map(|g| Arc::from(*g)).collect(),
        }
    }

    const RULES: &str = r#"
listen = "127.0.0.1:3000"

[[access]]
modules = ["corp.example.com/secret/*"]
read = ["user:alice", "group:sec"]
admin = ["user:root"]

[[access]]
modules = ["corp.example.com"]
read = ["*"]
admin = ["token:ci"]

[[access]]
modules = ["*"]
read = ["*", "anonymous"]
admin = ["user:root"]
"#;

    #[test]
    fn the_first_matching_rule_decides_and_names_users_tokens_groups_and_anonymous() {
        let rules = Rules::from_toml(RULES).unwrap();
        let (alice, bob, root) = (
            Identity::password("alice"),
            Identity::password("bob"),
            Identity::password("root"),
        );
        let secret = module("corp.example.com/secret/lib");
        assert!(rules.may_read(Some(&alice), &secret));
        assert!(!rules.may_read(Some(&bob), &secret));
        // admin implies read; a token is not the user of the same name.
        assert!(rules.may_read(Some(&root), &secret));
        assert!(!rules.may_read(Some(&token("alice", &[])), &secret));
        assert!(rules.may_read(Some(&token("scanner", &["sec"])), &secret));
        assert!(!rules.may_read(None, &secret));
        // The second rule: the prefix pattern covers every module under it.
        let public = module("corp.example.com/tools/v2");
        assert!(rules.may_read(Some(&bob), &public));
        assert!(rules.may_admin(Some(&token("ci", &[])), public.as_str()));
        assert!(!rules.may_admin(Some(&root), public.as_str()));
        assert!(rules.may_read(None, &module("example.org/x")));
        // gc needs every rule's admin right: nobody here has it.
        assert!(!rules.may_admin_all(Some(&root)));
    }

    #[test]
    fn without_rules_everything_is_allowed_and_an_unmatched_module_is_read_by_all_admined_by_none()
    {
        let none = Rules::none();
        assert!(none.may_read(None, &module("a.example/b")));
        assert!(none.may_admin_all(None));
        let rules = Rules::from_toml(
            "[[access]]\nmodules = [\"corp.example.com\"]\nread = [\"user:alice\"]\nadmin = [\"user:alice\"]\n",
        )
        .unwrap();
        let bob = Identity::password("bob");
        assert!(rules.may_read(Some(&bob), &module("other.example/m")));
        assert!(!rules.may_admin(Some(&bob), "other.example/m"));
        assert!(!rules.may_admin_all(Some(&Identity::password("alice"))));
        let all = Rules::from_toml(
            "[[access]]\nmodules = [\"corp.example.com\"]\nadmin = [\"user:alice\"]\n[[access]]\nmodules = [\"*\"]\nread = [\"*\"]\nadmin = [\"user:alice\"]\n",
        )
        .unwrap();
        assert!(all.may_admin_all(Some(&Identity::password("alice"))));
    }

    #[test]
    fn a_bad_rule_is_refused_at_its_place_with_the_fix() {
        for (text, expected, found) in [
            (
                "[[access]]\nmodules = [\"a.example\"]\nread = [\"bob\"]\n",
                "\"bob\" is not a caller",
                "\"bob\"",
            ),
            (
                "[[access]]\nmodules = [\"a.example/[\"]\n",
                "pattern",
                "\"a.example/[\"",
            ),
            ("[[access]]\nmodules = []\n", "modules is empty", "[]"),
            (
                "[[access]]\nmodules = [\"a\"]\nwrite = [\"*\"]\n",
                "unknown key `write`",
                "write",
            ),
            (
                "[[access]]\nmodules = [\"a\"]\nread = \"*\"\n",
                "list of strings",
                "\"*\"",
            ),
            ("access = 3\n", "[[access]] tables", "3"),
        ] {
            let error = Rules::from_toml(text).unwrap_err();
            assert!(
                error.message.contains(expected),
                "{text}: {}",
                error.message
            );
            assert!(
                text[error.offset..].starts_with(found),
                "{text}: at {}",
                error.offset
            );
        }
        let error = Rules::from_toml("[[access]]\nread = [\"*\"]\n").unwrap_err();
        assert!(error.message.contains("no modules"), "{}", error.message);
        // A rule after a broader one never decides.
        let text = "[[access]]\nmodules = [\"corp.example.com\"]\nread = [\"*\"]\n\n[[access]]\nmodules = [\"other.example\", \"corp.example.com/secret\"]\n";
        let error = Rules::from_toml(text).unwrap_err();
        assert!(
            text[error.offset..].starts_with("\"corp.example.com/secret\""),
            "{}",
            error.offset
        );
        assert!(
            error.message.contains("never decides") && error.message.contains("(line 2)"),
            "{}",
            error.message
        );
        let text = "[[access]]\nmodules = [\"*\"]\n[[access]]\nmodules = [\"a.example\"]\n";
        assert!(
            Rules::from_toml(text)
                .unwrap_err()
                .message
                .contains("never decides")
        );
    }
}
