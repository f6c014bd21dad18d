//! Which modules the checksum database applies to: `GOSUMDB`, `GONOSUMDB` and `GOPRIVATE`, with Go's
//! `module.MatchPrefixPatterns` (comma-separated `path.Match` globs matched against leading path elements),
//! which `ferry-module` implements once for the download policy and for this.

pub use ferry_module::match_prefix_patterns;

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

#[cfg(test)]
mod tests {
    use super::*;

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
