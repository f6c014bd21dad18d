//! Module path patterns: Go's `path.Match` globs, held against a module path's leading elements
//! the way `GOPRIVATE` patterns are (and the way Athens matches its download file).
//!
//! Patterns are compiled once, when the policy loads, so that matching allocates nothing.

use std::fmt;

/// A compiled module path pattern, such as `github.com/pkg/*`.
///
/// Syntax (Go's `path.Match`): `*` matches any run of characters except `/`; `?` matches one
/// character except `/`; `[abc]`, `[a-z]` and `[^a-z]` match one character of (or not of) a class;
/// `\x` matches `x` literally, also inside a class. Every other character matches itself.
///
/// A pattern with `n` slashes is matched against the module path's first `n + 1` elements, so
/// `github.com/pkg/*` matches `github.com/pkg/errors` and `github.com/pkg/errors/v2`, but not
/// `github.com/pkg` (the path has fewer elements than the pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: Box<str>,
    /// Number of `/` in the text, counted the way Go counts them (escaped or in a class too).
    slashes: usize,
    chunks: Box<[Chunk]>,
}

/// A run of pattern items, optionally preceded by a `*` (Go's `scanChunk`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chunk {
    after_star: bool,
    items: Box<[Item]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(char),
    /// `?`: any one character except `/`.
    AnyChar,
    Class {
        negated: bool,
        /// Inclusive ranges; a single character `c` is `(c, c)`.
        ranges: Box<[(char, char)]>,
    },
}

/// Why a pattern is malformed. `position` is the character index in the pattern (0-based)
/// where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is empty.
    #[error("the pattern is empty; write a module path pattern such as \"github.com/org/*\"")]
    Empty,
    /// The pattern ends with `\`, which escapes nothing.
    #[error(
        "the pattern ends with a `\\` that escapes nothing (character {position}); remove it, or write `\\\\` for a literal backslash"
    )]
    TrailingEscape {
        /// Character index of the backslash.
        position: usize,
    },
    /// A `[` opens a character class that is never closed.
    #[error(
        "the character class opened at character {position} is never closed; close it with `]`, or write `\\[` for a literal bracket"
    )]
    UnclosedClass {
        /// Character index of the `[`.
        position: usize,
    },
    /// A character class lists nothing (`[]`, `[^]`) or a range misses an end (`[-a]`, `[a-]`).
    #[error(
        "the character class at character {position} is empty or has a range without an end; list characters or full ranges such as `[a-z0-9]`, and write `\\-` or `\\]` for a literal `-` or `]`"
    )]
    BadClass {
        /// Character index of the `[`.
        position: usize,
    },
    /// The pattern ends with `/` or has an empty element (`//`), so it can never match a
    /// module path; Athens would silently never use such a block.
    #[error(
        "the pattern has an empty path element (a trailing `/` or `//`), so it never matches a module path; remove the extra `/` (e.g. write \"github.com/org\" or \"github.com/org/*\")"
    )]
    EmptyElement,
}

impl Pattern {
    /// Compiles a pattern, checking the whole of it (Go only notices some mistakes when matching
    /// reaches them; Ferry reports them at load time).
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        let chunks = compile(text)?;
        if text.split('/').any(str::is_empty) {
            return Err(PatternError::EmptyElement);
        }
        Ok(Pattern {
            text: text.into(),
            slashes: text.bytes().filter(|&b| b == b'/').count(),
            chunks,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Reports whether the module path's first `n + 1` elements match this pattern of `n`
    /// slashes. Never allocates.
    pub fn matches(&self, module_path: &str) -> bool {
        match leading_elements(module_path, self.slashes) {
            Some(prefix) => self.matches_whole(prefix),
            None => false,
        }
    }

    /// The leading elements of the pattern that contain no glob syntax, e.g. `github.com` and
    /// `pkg` for `github.com/pkg/*`. Used to index rules by literal prefix.
    pub(crate) fn literal_elements(&self) -> impl Iterator<Item = &str> {
        self.text
            .split('/')
            .take_while(|element| !element.contains(['*', '?', '[', '\\']))
    }

    /// Go's `path.Match(pattern, name)`, over characters.
    fn matches_whole(&self, name: &str) -> bool {
        let mut name = name;
        let last_index = self.chunks.len().saturating_sub(1);
        'chunks: for (index, chunk) in self.chunks.iter().enumerate() {
            let is_last = index == last_index;
            if chunk.after_star && chunk.items.is_empty() {
                // A trailing `*` matches the rest unless the rest holds a `/`.
                return !name.contains('/');
            }
            if let Some(rest) = match_items(&chunk.items, name)
                && (rest.is_empty() || !is_last)
            {
                name = rest;
                continue;
            }
            if chunk.after_star {
                // Let the star swallow one more character at a time; it cannot swallow `/`.
                for (offset, skipped) in name.char_indices() {
                    if skipped == '/' {
                        break;
                    }
                    let after = &name[offset + skipped.len_utf8()..];
                    if let Some(rest) = match_items(&chunk.items, after) {
                        if is_last && !rest.is_empty() {
                            continue;
                        }
                        name = rest;
                        continue 'chunks;
                    }
                }
            }
            return false;
        }
        name.is_empty()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Reports whether `module_path` matches `pattern` (see [`Pattern`]). A malformed pattern
/// matches nothing. Compiles the pattern on every call: use [`Pattern`] in loops.
pub fn pattern_matches(pattern: &str, module_path: &str) -> bool {
    Pattern::new(pattern).is_ok_and(|pattern| pattern.matches(module_path))
}

/// The first `slashes + 1` elements of `path`, or `None` when it has fewer elements.
fn leading_elements(path: &str, slashes: usize) -> Option<&str> {
    let mut remaining = slashes;
    for (offset, byte) in path.bytes().enumerate() {
        if byte == b'/' {
            if remaining == 0 {
                return Some(&path[..offset]);
            }
            remaining -= 1;
        }
    }
    (remaining == 0).then_some(path)
}

/// Matches a star-free run of items at the start of `name`; returns what is left of `name`.
fn match_items<'n>(items: &[Item], name: &'n str) -> Option<&'n str> {
    let mut rest = name;
    for item in items {
        let mut chars = rest.chars();
        let c = chars.next()?;
        let accepted = match item {
            Item::Literal(expected) => c == *expected,
            Item::AnyChar => c != '/',
            Item::Class { negated, ranges } => {
                let in_class = ranges.iter().any(|&(low, high)| low <= c && c <= high);
                in_class != *negated
            }
        };
        if !accepted {
            return None;
        }
        rest = chars.as_str();
    }
    Some(rest)
}

fn compile(text: &str) -> Result<Box<[Chunk]>, PatternError> {
    let chars: Vec<char> = text.chars().collect();
    let mut chunks = Vec::new();
    let mut position = 0;
    while position < chars.len() {
        let mut after_star = false;
        while chars.get(position) == Some(&'*') {
            after_star = true;
            position += 1;
        }
        let mut items = Vec::new();
        while let Some(&c) = chars.get(position) {
            match c {
                '*' => break,
                '?' => {
                    items.push(Item::AnyChar);
                    position += 1;
                }
                '\\' => {
                    let escaped = chars
                        .get(position + 1)
                        .ok_or(PatternError::TrailingEscape { position })?;
                    items.push(Item::Literal(*escaped));
                    position += 2;
                }
                '[' => {
                    let (item, next) = compile_class(&chars, position)?;
                    items.push(item);
                    position = next;
                }
                literal => {
                    items.push(Item::Literal(literal));
                    position += 1;
                }
            }
        }
        chunks.push(Chunk {
            after_star,
            items: items.into(),
        });
    }
    Ok(chunks.into())
}

/// Compiles the class starting at `chars[open] == '['`; returns it and the index after its `]`.
fn compile_class(chars: &[char], open: usize) -> Result<(Item, usize), PatternError> {
    let unclosed = PatternError::UnclosedClass { position: open };
    let bad = PatternError::BadClass { position: open };
    let mut position = open + 1;
    let negated = chars.get(position) == Some(&'^');
    if negated {
        position += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(position) {
            None => return Err(unclosed),
            Some(']') if !ranges.is_empty() => {
                return Ok((
                    Item::Class {
                        negated,
                        ranges: ranges.into(),
                    },
                    position + 1,
                ));
            }
            Some(_) => {}
        }
        let (low, next) = class_char(chars, position, &bad, &unclosed)?;
        position = next;
        let mut high = low;
        if chars.get(position) == Some(&'-') {
            let (end, next) = class_char(chars, position + 1, &bad, &unclosed)?;
            high = end;
            position = next;
        }
        ranges.push((low, high));
    }
}

/// One possibly escaped class character (Go's `getEsc`): `-` and `]` must be escaped here.
fn class_char(
    chars: &[char],
    position: usize,
    bad: &PatternError,
    unclosed: &PatternError,
) -> Result<(char, usize), PatternError> {
    match chars.get(position) {
        None => Err(unclosed.clone()),
        Some('-' | ']') => Err(bad.clone()),
        Some('\\') => match chars.get(position + 1) {
            None => Err(unclosed.clone()),
            Some(&escaped) => Ok((escaped, position + 2)),
        },
        Some(&c) => Ok((c, position + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_elements_counts_slashes() {
        assert_eq!(leading_elements("a/b/c", 0), Some("a"));
        assert_eq!(leading_elements("a/b/c", 1), Some("a/b"));
        assert_eq!(leading_elements("a/b/c", 2), Some("a/b/c"));
        assert_eq!(leading_elements("a/b/c", 3), None);
        assert_eq!(leading_elements("", 0), Some(""));
    }

    #[test]
    fn literal_elements_stop_at_glob_syntax() {
        let pattern = Pattern::new("github.com/pkg/*").unwrap();
        assert_eq!(
            pattern.literal_elements().collect::<Vec<_>>(),
            ["github.com", "pkg"]
        );
        let pattern = Pattern::new("github.com/p\\kg/x").unwrap();
        assert_eq!(
            pattern.literal_elements().collect::<Vec<_>>(),
            ["github.com"]
        );
        let pattern = Pattern::new("*.corp.example/x").unwrap();
        assert_eq!(pattern.literal_elements().count(), 0);
    }
}
