//! Which modules the checksum database applies to: `GOSUMDB`, `GONOSUMDB` and `GOPRIVATE`, with Go's
//! `module.MatchPrefixPatterns` (comma-separated `path.Match` globs matched against leading path elements).

/// Whether the go command would check `module` against the checksum database (Go's `useSumDB`).
///
/// `gonosumdb` and `goprivate` are the variables' values (empty when unset); as in the go command, an empty
/// `GONOSUMDB` falls back to `GOPRIVATE`. `gosumdb_off` is `GOSUMDB=off`.
///
/// As in the go command, `golang.org/toolchain` (whose zips go.sum never lists) is checked whatever the
/// patterns say; with `GOSUMDB=off` nothing is, since there is no database to ask.
pub fn sumdb_applies(module: &str, gonosumdb: &str, goprivate: &str, gosumdb_off: bool) -> bool {
    if gosumdb_off {
        return false;
    }
    if module == "golang.org/toolchain" {
        return true;
    }
    let patterns = if gonosumdb.is_empty() {
        goprivate
    } else {
        gonosumdb
    };
    !match_prefix_patterns(patterns, module)
}

/// Go's `module.MatchPrefixPatterns`: whether any glob in the comma-separated list matches a prefix of
/// `target` made of as many path elements as the glob has (`*.corp.example` matches
/// `git.corp.example/team/repo`). Empty globs and a trailing `/` are ignored; a malformed glob matches nothing.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    for glob in globs.split(',') {
        let glob = glob.strip_suffix('/').unwrap_or(glob);
        if glob.is_empty() {
            continue;
        }
        // A glob with N slashes matches the target's first N+1 elements, which end before its N+1'th slash.
        let slashes = glob.matches('/').count();
        let prefix = match target.match_indices('/').nth(slashes) {
            Some((end, _)) => &target[..end],
            None if target.matches('/').count() == slashes => target,
            None => continue, // not enough elements
        };
        if path_match(glob.as_bytes(), prefix.as_bytes()) == Ok(true) {
            return true;
        }
    }
    false
}

#[derive(Debug, PartialEq, Eq)]
struct BadPattern;

/// Go's `path.Match`: `*` (any run without `/`), `?` (one character but `/`), `[...]` classes with ranges
/// and `^` negation, `\` escapes. Works on bytes as Go does, decoding UTF-8 where Go decodes runes.
fn path_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing * matches the rest of the name unless it holds a /.
            return Ok(!name.contains(&b'/'));
        }
        let matched = match_chunk(chunk, name);
        if let Ok(Some(t)) = matched
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        matched?;
        if star {
            // Look for a match skipping i+1 bytes; it cannot skip a /.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                match match_chunk(chunk, &name[i + 1..])? {
                    Some(t) if !pattern.is_empty() || t.is_empty() => {
                        name = t;
                        continue 'pattern;
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        // Before giving up, check the rest of the pattern is well formed, as Go does.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the leading stars and the chunk up to the next star outside a class.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let Some(rest) = pattern.strip_prefix(b"*") {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &pattern[..i], &pattern[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, pattern, b"")
}

/// Go's `utf8.DecodeRune`: the character and its length, U+FFFD and 1 for invalid bytes, 0 for none.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    if s.is_empty() {
        return (0xFFFD, 0);
    }
    for len in 1..=s.len().min(4) {
        if let Ok(text) = std::str::from_utf8(&s[..len]) {
            return (text.chars().next().map_or(0xFFFD, u32::from), len);
        }
    }
    (0xFFFD, 1)
}

/// Matches one star-free chunk against the start of `s`: the rest of `s` on a match.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, BadPattern> {
    // Go keeps scanning after a failure so that a malformed pattern is reported whatever the name.
    let mut failed = false;
    while let Some(&first) = chunk.first() {
        failed = failed || s.is_empty();
        match first {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    matched = matched || (lo <= r && r <= hi);
                    ranges += 1;
                }
                failed = failed || matched == negated;
            }
            b'?' => {
                if !failed {
                    failed = s[0] == b'/';
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if first == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    failed = chunk[0] != s[0];
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// One possibly escaped character of a class; a class may not end right after it.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = chunk;
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        _ => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == 0xFFFD && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
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
    fn gonosumdb_falls_back_to_goprivate_and_gosumdb_off_disables_every_lookup() {
        assert!(sumdb_applies("github.com/a/b", "", "", false));
        assert!(!sumdb_applies("github.com/a/b", "", "", true));
        assert!(!sumdb_applies("corp.example/x", "", "corp.example", false));
        // A set GONOSUMDB replaces GOPRIVATE for this decision.
        assert!(sumdb_applies(
            "corp.example/x",
            "other.example",
            "corp.example",
            false
        ));
        assert!(!sumdb_applies(
            "other.example/y",
            "other.example",
            "corp.example",
            false
        ));
        assert!(sumdb_applies(
            "golang.org/toolchain",
            "golang.org",
            "",
            false
        ));
        assert!(!sumdb_applies("golang.org/x/mod", "golang.org", "", false));
    }

    #[test]
    fn hostile_patterns_never_panic() {
        for glob in [
            "[",
            "[]",
            "[^",
            "[a-",
            "[a-]",
            "\\",
            "[\\",
            "**/*",
            "?",
            "[\u{FFFD}]",
            "\u{1F600}?",
        ] {
            for target in ["", "/", "a", "\u{1F600}", "a/b", "\u{FFFD}x"] {
                let _ = match_prefix_patterns(glob, target);
            }
        }
    }
}
