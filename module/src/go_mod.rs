//! What a person browsing a module wants from its newest go.mod: the `// Deprecated:` comment of its
//! `module` directive and its `retract` directives, read as `golang.org/x/mod/modfile` reads them. A small
//! reader of those two directives only (the rest of the file is skipped, never refused): a go.mod the
//! go command accepted is taken as it is, and a line this reader does not understand is passed over.

use std::cmp::Ordering;

use crate::compare_semver;

/// What the go.mod says of its module and its versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoModNotes {
    /// The text after `Deprecated:` in the `module` directive's comments, when the module is deprecated.
    pub deprecated: Option<String>,
    /// The retracted versions and ranges, in file order.
    pub retracts: Vec<Retract>,
}

/// One `retract` directive: a version (`low == high`) or a closed range, and its rationale (its comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retract {
    pub low: String,
    pub high: String,
    pub rationale: String,
}

impl Retract {
    /// Whether `version` is in the retracted range (semver order, both ends included).
    pub fn covers(&self, version: &str) -> bool {
        compare_semver(&self.low, version) != Ordering::Greater
            && compare_semver(version, &self.high) != Ordering::Greater
    }
}

impl GoModNotes {
    /// The rationale of the retraction covering `version`, if one does (an empty rationale is `""`).
    pub fn retraction(&self, version: &str) -> Option<&str> {
        self.retracts
            .iter()
            .find(|r| r.covers(version))
            .map(|r| r.rationale.as_str())
    }
}

/// A line split into its code and its `//` comment (a `//` inside a quoted string is code).
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut quoted = false;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b'/' if !quoted && bytes.get(i + 1) == Some(&b'/') => {
                let comment = line[i + 2..].strip_prefix(' ').unwrap_or(&line[i + 2..]);
                return (line[..i].trim(), Some(comment.trim_end()));
            }
            _ => {}
        }
    }
    (line.trim(), None)
}

/// Reads the `module` directive's deprecation and the `retract` directives of a go.mod.
pub fn read_go_mod(text: &str) -> GoModNotes {
    let mut notes = GoModNotes::default();
    // The comment lines just before the current line (a blank line or code ends a block).
    let mut before: Vec<&str> = Vec::new();
    // Inside `retract ( … )`: the comments before the block, the rationale of entries without their own.
    let mut in_block: Option<Vec<&str>> = None;
    for line in text.lines() {
        let (code, comment) = split_comment(line);
        if code.is_empty() {
            match comment {
                Some(comment) => before.push(comment),
                None => before.clear(),
            }
            continue;
        }
        let own: Vec<&str> = before.drain(..).chain(comment).collect();
        if let Some(block) = &in_block {
            if code == ")" {
                in_block = None;
            } else if let Some((low, high)) = retracted(code) {
                let rationale = if own.is_empty() { block } else { &own };
                notes.retracts.push(retract(low, high, rationale));
            }
            continue;
        }
        let mut words = code.splitn(2, char::is_whitespace);
        match (words.next(), words.next().map(str::trim)) {
            (Some("module"), Some(_)) => notes.deprecated = deprecation(&own),
            (Some("retract"), Some("(")) => in_block = Some(own),
            (Some("retract"), Some(rest)) => {
                if let Some((low, high)) = retracted(rest) {
                    notes.retracts.push(retract(low, high, &own));
                }
            }
            _ => {}
        }
    }
    notes
}

fn retract(low: String, high: String, comments: &[&str]) -> Retract {
    Retract {
        low,
        high,
        rationale: comments.join("\n").trim().to_string(),
    }
}

/// `v1.0.0` or `[v1.0.0, v1.9.9]` (quoted or not): the range's ends.
fn retracted(text: &str) -> Option<(String, String)> {
    let unquote = |s: &str| s.trim().trim_matches('"').to_string();
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let (low, high) = inner.split_once(',')?;
        let (low, high) = (unquote(low), unquote(high));
        return (low.starts_with('v') && high.starts_with('v')).then_some((low, high));
    }
    let version = unquote(text);
    (version.starts_with('v') && !version.contains(char::is_whitespace))
        .then(|| (version.clone(), version))
}

/// The paragraph of `comments` that starts with `Deprecated:`, without those words (as `modfile` finds it).
fn deprecation(comments: &[&str]) -> Option<String> {
    let text = comments.join("\n");
    text.split("\n\n")
        .map(str::trim)
        .find_map(|paragraph| paragraph.strip_prefix("Deprecated:"))
        .map(|message| message.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deprecation_comment_before_or_after_the_module_directive() {
        let before =
            "// Deprecated: use example.com/new instead.\nmodule example.com/old\n\ngo 1.21\n";
        assert_eq!(
            read_go_mod(before).deprecated.as_deref(),
            Some("use example.com/new instead.")
        );
        let after = "module example.com/old // Deprecated: gone.\n";
        assert_eq!(read_go_mod(after).deprecated.as_deref(), Some("gone."));
        // A later paragraph of the comment block counts; a mention mid-paragraph does not.
        let later = "// Package old does things.\n//\n// Deprecated: do not use\n// it any more.\nmodule example.com/old\n";
        assert_eq!(
            read_go_mod(later).deprecated.as_deref(),
            Some("do not use it any more.")
        );
        let mention = "// This is not Deprecated: really.\nmodule example.com/x\n";
        assert_eq!(read_go_mod(mention).deprecated, None);
        // A comment separated by a blank line belongs to nothing.
        let detached = "// Deprecated: detached.\n\nmodule example.com/x\n";
        assert_eq!(read_go_mod(detached).deprecated, None);
    }

    #[test]
    fn retract_directives_single_ranges_and_blocks_with_their_rationales() {
        let text = r#"module example.com/m

go 1.21

// Published by mistake.
retract v1.0.0

retract [v1.1.0, v1.2.5] // Broken builds.

// Block comment.
retract (
	v1.3.0 // Own reason.
	"v1.4.0"
	[v2.0.0, v2.0.1]
)
require example.com/dep v1.0.0 // indirect
"#;
        let notes = read_go_mod(text);
        let found: Vec<(&str, &str, &str)> = notes
            .retracts
            .iter()
            .map(|r| (r.low.as_str(), r.high.as_str(), r.rationale.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("v1.0.0", "v1.0.0", "Published by mistake."),
                ("v1.1.0", "v1.2.5", "Broken builds."),
                ("v1.3.0", "v1.3.0", "Own reason."),
                ("v1.4.0", "v1.4.0", "Block comment."),
                ("v2.0.0", "v2.0.1", "Block comment."),
            ]
        );
        assert_eq!(notes.retraction("v1.2.0"), Some("Broken builds."));
        assert_eq!(notes.retraction("v1.2.6"), None);
        assert_eq!(notes.retraction("v1.0.0"), Some("Published by mistake."));
        assert_eq!(notes.deprecated, None);
    }

    #[test]
    fn what_it_does_not_understand_is_passed_over() {
        let text = "module example.com/m\nretract\nretract nonsense words\nretract [v1.0.0]\nretract v1.0.1 // ok\n";
        let notes = read_go_mod(text);
        assert_eq!(notes.retracts.len(), 1);
        assert_eq!(notes.retracts[0].low, "v1.0.1");
        assert_eq!(read_go_mod(""), GoModNotes::default());
    }
}
