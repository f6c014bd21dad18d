//! Reading a `versions "PATTERN" { ... }` block of the download file into a [`VersionRule`], every problem
//! located (see [`crate::versions`] for what the rules mean).

use std::ops::Range;

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, Structure};

use crate::error::ProblemKind;
use crate::parse::{Reporter, span_of};
use crate::versions::{RuleKeys, VERSION_KEYS, VERSIONS_BLOCK, VersionRule};
use ferry_module::Pattern;

impl Reporter<'_> {
    /// The rule of a `versions` block, or `None` with its problems reported.
    pub(crate) fn versions_block(&mut self, block: &Block) -> Option<VersionRule> {
        let line = self.line_column(span_of(block).start).0;
        let pattern = match block.labels.as_slice() {
            [label] => match Pattern::new(label.as_str()) {
                Ok(pattern) => Some(pattern),
                Err(error) => {
                    self.problem(
                        span_of(label),
                        ProblemKind::BadPattern,
                        format!("malformed pattern {:?}", label.as_str()),
                        error.to_string(),
                    );
                    None
                }
            },
            labels => {
                self.problem(
                    span_of(&block.ident),
                    ProblemKind::BadLabel,
                    format!("a {VERSIONS_BLOCK} block needs exactly one pattern, found {}", labels.len()),
                    format!("write {VERSIONS_BLOCK} \"github.com/org/*\" {{ min_age = \"72h\" }}: one quoted pattern per block"),
                );
                None
            }
        };
        let keys = self.version_keys(block);
        let rule = keys.build(pattern?, self.origin.clone(), line);
        match rule {
            Ok(rule) => Some(rule),
            Err(problems) => {
                for (span, message, fix) in problems {
                    self.problem(span, ProblemKind::BadVersionRule, message, fix);
                }
                None
            }
        }
    }

    fn version_keys(&mut self, block: &Block) -> RuleKeys {
        let mut keys = RuleKeys::default();
        let mut seen: Vec<&str> = Vec::new();
        for structure in block.body.iter() {
            let attribute = match structure {
                Structure::Attribute(attribute) => attribute,
                Structure::Block(nested) => {
                    self.problem(
                        span_of(&nested.ident),
                        ProblemKind::UnknownBlock,
                        format!(
                            "unknown block {:?} inside a {VERSIONS_BLOCK} block",
                            nested.ident.as_str()
                        ),
                        format!("a {VERSIONS_BLOCK} block holds only {VERSION_KEYS}"),
                    );
                    continue;
                }
            };
            let key = attribute.key.as_str();
            let value = &attribute.value;
            let span = span_of(value);
            if seen.contains(&key) {
                self.problem(
                    span_of(&attribute.key),
                    ProblemKind::DuplicateKey,
                    format!("{key} is already set in this block"),
                    "keep one of the two".to_owned(),
                );
                continue;
            }
            match key {
                "min_age" => match value {
                    Expression::String(text) => keys.min_age = Some((text.to_string(), span)),
                    _ => self.not_a(span, key, "a quoted duration", "min_age = \"72h\""),
                },
                "deny" | "allow" | "exempt" => {
                    let Some(entries) = self.strings(value, key) else {
                        continue;
                    };
                    match key {
                        "deny" => keys.deny = entries,
                        "allow" => keys.allow = entries,
                        _ => keys.exempt = entries,
                    }
                }
                "dry_run" => match value {
                    Expression::Bool(on) => keys.dry_run = *on.value(),
                    _ => self.not_a(span, key, "true or false", "dry_run = true"),
                },
                _ => {
                    self.problem(
                        span_of(&attribute.key),
                        ProblemKind::UnknownKey,
                        format!("unknown key {key:?} in a {VERSIONS_BLOCK} block"),
                        format!("a {VERSIONS_BLOCK} block holds only {VERSION_KEYS}"),
                    );
                    continue;
                }
            }
            seen.push(key);
        }
        keys
    }

    /// A list of quoted strings, each with its place.
    fn strings(&mut self, value: &Expression, key: &str) -> Option<Vec<(String, Range<usize>)>> {
        let Expression::Array(array) = value else {
            self.not_a(
                span_of(value),
                key,
                "a list of quoted versions or ranges",
                &format!("{key} = [\"v1.2.3\", \">=v2.0.0 <v2.1.0\"]"),
            );
            return None;
        };
        let mut entries = Vec::new();
        for item in array.iter() {
            match item {
                Expression::String(text) => entries.push((text.to_string(), span_of(item))),
                _ => self.not_a(
                    span_of(item),
                    key,
                    "a list of quoted versions or ranges",
                    &format!("{key} = [\"v1.2.3\"]"),
                ),
            }
        }
        Some(entries)
    }

    fn not_a(&mut self, span: Range<usize>, key: &str, what: &str, example: &str) {
        self.problem(
            span,
            ProblemKind::NotAString,
            format!("the value of {key} must be {what}"),
            format!("write {example}"),
        );
    }
}
