//! Module path patterns: Go's `path.Match` globs, held against a module path's leading elements
//! the way `GOPRIVATE` patterns are (`module.MatchPrefixPatterns`), and the way Athens matches its
//! download file. The one implementation of both: the download policy compiles its patterns once, when
//! it loads, so that matching allocates nothing; the checksum database's `GONOSUMDB`/`GOPRIVATE` lists
//! use [`match_prefix_patterns`]. [`Elements`], [`AsciiSet`] and the `literal`/`host` accessors are for
//! an index over many patterns (the policy's), which rules most patterns out without matching them.

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
    /// The ASCII characters the pattern matches literally; a matching path contains them all.
    required_ascii: AsciiSet,
}

/// The characters with a meaning in a glob; an element without them is literal.
const GLOB_SYNTAX: [char; 4] = ['*', '?', '[', '\\'];

/// A pattern as its elements (see [`Pattern::elements`]).
#[derive(Debug, Clone)]
pub struct Elements(Vec<Element>);

#[derive(Debug, Clone)]
struct Element {
    text: Box<str>,
    /// No glob syntax: the element matches only itself.
    literal: bool,
    /// Only `*`: the element matches any path element.
    all_stars: bool,
    glob: Pattern,
}

impl Elements {
    /// Whether every module path `later` matches, these elements match (see
    /// [`Pattern::is_covered_by`]).
    pub fn covers(&self, later: &Elements) -> bool {
        self.0.len() <= later.0.len()
            && self.0.iter().zip(&later.0).all(|(earlier, this)| {
                earlier.all_stars
                    || earlier.text == this.text
                    || (this.literal && !earlier.literal && earlier.glob.matches_whole(&this.text))
            })
    }

    /// Whether some module path may match both (see [`Pattern::may_overlap`]).
    pub fn may_overlap(&self, other: &Elements) -> bool {
        !self
            .0
            .iter()
            .zip(&other.0)
            .any(|(a, b)| match (a.literal, b.literal) {
                (true, true) => a.text != b.text,
                (true, false) => !b.glob.matches_whole(&a.text),
                (false, true) => !a.glob.matches_whole(&b.text),
                (false, false) => false,
            })
    }
}

/// A set of ASCII characters, one bit each: a cheap test that rules a pattern out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AsciiSet(u128);

impl AsciiSet {
    /// The ASCII characters of `text` (others are left out).
    pub fn of(text: &str) -> AsciiSet {
        let mut set = 0u128;
        for byte in text.bytes().filter(u8::is_ascii) {
            set |= 1 << byte;
        }
        AsciiSet(set)
    }

    fn contains_all(self, other: AsciiSet) -> bool {
        other.0 & !self.0 == 0
    }
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
}

impl Pattern {
    /// Compiles a pattern, checking the whole of it: a malformed glob is an error here, where
    /// Go's `path.Match` returns `ErrBadPattern` at match time (and Athens ignores that error, so
    /// its block silently never matches). An empty pattern, or one with an empty element such
    /// as a trailing `/`, compiles (it is well formed) but never matches a module path: see
    /// [`Pattern::never_matches`].
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        let chunks = compile(text)?;
        let mut required_ascii = 0u128;
        for item in chunks.iter().flat_map(|chunk| chunk.items.iter()) {
            if let Item::Literal(c) = item
                && c.is_ascii()
            {
                required_ascii |= 1 << u32::from(*c);
            }
        }
        Ok(Pattern {
            text: text.into(),
            slashes: text.bytes().filter(|&b| b == b'/').count(),
            chunks,
            required_ascii: AsciiSet(required_ascii),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Why this pattern never matches a module path, as `(problem, fix)`, if it never does:
    /// it is empty, or has an empty element (a trailing `/`, or `//`), which a module path never
    /// has. Such a pattern is well formed; its block is dead, in Athens as in Ferry.
    pub fn never_matches(&self) -> Option<(String, String)> {
        let text = self.as_str();
        if text.is_empty() {
            return Some((
                "the pattern is empty, so it never matches a module path and this block never applies".to_owned(),
                "write a module path pattern such as \"github.com/org/*\", or delete the block".to_owned(),
            ));
        }
        if !text.split('/').any(str::is_empty) {
            return None;
        }
        let meant: Vec<&str> = text
            .split('/')
            .filter(|element| !element.is_empty())
            .collect();
        let what = if text.ends_with('/') {
            "ends with `/`"
        } else {
            "has an empty path element (`//` or a leading `/`)"
        };
        Some((
            format!(
                "pattern {text:?} {what}, so it never matches a module path and this block never applies (Athens never applies it either)"
            ),
            format!(
                "write {:?} (a pattern matches the path's leading elements, so \"github.com/org\" also matches github.com/org/x)",
                meant.join("/")
            ),
        ))
    }

    /// Reports whether every module path this pattern matches is also matched by `earlier`, so
    /// that a block with this pattern after a block with `earlier` never applies.
    ///
    /// Conservative: `false` when unsure. It answers `true` only when both patterns match element
    /// by element (every `/` in them is a separator: none is escaped or inside a class, so each
    /// `/` of the pattern must meet one of the path's), `earlier` has no more elements than this
    /// one, and each element of `earlier` is all `*`, is the same text as this one's element, or
    /// glob-matches this one's element when that is a literal.
    pub fn is_covered_by(&self, earlier: &Pattern) -> bool {
        match (earlier.elements(), self.elements()) {
            (Some(earlier), Some(this)) => earlier.covers(&this),
            _ => false,
        }
    }

    /// Reports whether some module path may match both patterns. Conservative: `true` when
    /// unsure; `false` only when both split cleanly into elements (as for
    /// [`Pattern::is_covered_by`]) and at some position both elements are literal and differ, or
    /// one is literal and the other's glob does not match it. A pattern that never matches
    /// overlaps nothing.
    pub fn may_overlap(&self, other: &Pattern) -> bool {
        if self.never_matches().is_some() || other.never_matches().is_some() {
            return false;
        }
        match (self.elements(), other.elements()) {
            (Some(this), Some(other)) => this.may_overlap(&other),
            _ => true,
        }
    }

    /// The pattern split into elements that each match one path element, when it can be: it
    /// matches some module path, and every `/` in it is a separator (each element compiles on
    /// its own: no `/` is escaped or inside a class), so that matching the pattern is matching
    /// each element against the path's element at the same position. Computed once per block
    /// when a file loads, for the checks that compare blocks.
    pub fn elements(&self) -> Option<Elements> {
        if self.never_matches().is_some() {
            return None;
        }
        let elements = self
            .text
            .split('/')
            .map(|text| {
                let glob = Pattern::new(text).ok()?;
                Some(Element {
                    literal: !text.contains(GLOB_SYNTAX),
                    all_stars: text.chars().all(|c| c == '*'),
                    text: text.into(),
                    glob,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Elements(elements))
    }

    /// Reports whether the module path's first `n + 1` elements match this pattern of `n`
    /// slashes. Never allocates.
    pub fn matches(&self, module_path: &str) -> bool {
        match leading_elements(module_path, self.slashes) {
            Some(prefix) => self.matches_whole(prefix),
            None => false,
        }
    }

    /// Like [`Pattern::matches`], given the [`AsciiSet`] of the whole path so that patterns
    /// needing a character the path lacks are ruled out at once.
    pub fn matches_with(&self, module_path: &str, path_ascii: AsciiSet) -> bool {
        path_ascii.contains_all(self.required_ascii) && self.matches(module_path)
    }

    /// The leading elements of the pattern that contain no glob syntax, e.g. `github.com` and
    /// `pkg` for `github.com/pkg/*`. Used to index rules by literal prefix.
    pub fn literal_elements(&self) -> impl Iterator<Item = &str> {
        self.text
            .split('/')
            .take_while(|element| !element.contains(['*', '?', '[', '\\']))
    }

    /// For a pattern whose first element is `*` then a literal starting with `.`, such as
    /// `*.corp.example/*`, that literal (`.corp.example`): a matching path's first element ends
    /// with it. Used to index wildcard-host rules.
    pub fn host_suffix(&self) -> Option<&str> {
        let first = self.text.split('/').next()?;
        let suffix = first.strip_prefix('*')?;
        (suffix.starts_with('.') && !suffix.contains(['*', '?', '[', '\\'])).then_some(suffix)
    }

    /// The first element free of glob syntax and its position, e.g. `(1, "org")` for
    /// `*/org/*`, when elements are sure to line up with the path's: with no class or escape in
    /// the pattern, every `/` in it must meet a `/` of the path (`*` and `?` never match one),
    /// so a matching path's element at that position equals it. Used to index rules.
    pub fn aligned_literal_element(&self) -> Option<(usize, &str)> {
        if self.text.contains(['[', '\\']) {
            return None;
        }
        self.text
            .split('/')
            .enumerate()
            .find(|(_, element)| !element.contains(['*', '?']))
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

/// Go's `module.MatchPrefixPatterns`: whether any glob in the comma-separated list matches a prefix of
/// `target` made of as many path elements as the glob has (`*.corp.example` matches
/// `git.corp.example/team/repo`). Empty globs and a trailing `/` are ignored; a malformed glob matches
/// nothing (Go's `path.Match` reports it as `ErrBadPattern`, which the go command treats as no match).
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    globs.split(',').any(|glob| {
        let glob = glob.strip_suffix('/').unwrap_or(glob);
        !glob.is_empty() && pattern_matches(glob, target)
    })
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

    /// The table of Go's `TestMatchPrefixPatterns` (module/module_test.go).
    #[test]
    fn prefix_patterns_match_as_the_go_command_matches_them() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "rsc.io/quote", false),
            ("/", "rsc.io/quote", false),
            ("*/quote", "rsc.io/quote", true),
            ("*/quo", "rsc.io/quote", false),
            ("*/quo??", "rsc.io/quote", true),
            ("*/quo*", "rsc.io/quote", true),
            ("*quo*", "rsc.io/quote", false),
            ("rsc.io", "rsc.io/quote", true),
            ("*.io", "rsc.io/quote", true),
            ("rsc.io/", "rsc.io/quote", true),
            ("rsc", "rsc.io/quote", false),
            ("rsc*", "rsc.io/quote", true),
            ("rsc.io", "rsc.io/quote/v3", true),
            ("*/quote", "rsc.io/quote/v3", true),
            ("*/quote/", "rsc.io/quote/v3", true),
            ("*/quote/*", "rsc.io/quote/v3", true),
            ("*/quote/*/", "rsc.io/quote/v3", true),
            ("*/v3", "rsc.io/quote/v3", false),
            ("*/*/v3", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote/v3", true),
            ("*/*/*/", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote", false),
            ("*/*/*/", "rsc.io/quote", false),
            ("*/*/*,,", "rsc.io/quote", false),
            ("*/*/*,,*/quote", "rsc.io/quote", true),
            (",,*/quote", "rsc.io/quote", true),
        ];
        for &(globs, target, want) in cases {
            assert_eq!(
                match_prefix_patterns(globs, target),
                want,
                "MatchPrefixPatterns({globs:?}, {target:?})"
            );
        }
    }

    #[test]
    fn leading_elements_counts_slashes() {
        assert_eq!(leading_elements("a/b/c", 0), Some("a"));
        assert_eq!(leading_elements("a/b/c", 1), Some("a/b"));
        assert_eq!(leading_elements("a/b/c", 2), Some("a/b/c"));
        assert_eq!(leading_elements("a/b/c", 3), None);
        assert_eq!(leading_elements("", 0), Some(""));
    }

    #[test]
    fn aligned_literal_elements() {
        let element = |text: &str| {
            Pattern::new(text)
                .unwrap()
                .aligned_literal_element()
                .map(|(at, element)| (at, element.to_owned()))
        };
        assert_eq!(element("*/org/*"), Some((1, "org".to_owned())));
        assert_eq!(element("*/*/x/*"), Some((2, "x".to_owned())));
        assert_eq!(element("github.com/*"), Some((0, "github.com".to_owned())));
        assert_eq!(element("*/o?g/*"), None);
        assert_eq!(element("*/[o]/x"), None);
        assert_eq!(element("*/\\o/x"), None);
    }

    #[test]
    fn host_suffixes() {
        let suffix = |text: &str| Pattern::new(text).unwrap().host_suffix().map(str::to_owned);
        assert_eq!(suffix("*.corp.example"), Some(".corp.example".to_owned()));
        assert_eq!(
            suffix("*.corp.example/team/*"),
            Some(".corp.example".to_owned())
        );
        assert_eq!(suffix("*corp.example"), None);
        assert_eq!(suffix("*.corp.*"), None);
        assert_eq!(suffix("**.corp.example"), None);
        assert_eq!(suffix("github.com/*.x"), None);
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
