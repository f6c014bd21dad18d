//! Property tests: the loader never panics on any input, the prefix index always agrees with
//! trying every block in order, and the unreachable-block check never claims too much.

use ferry_policy::{Pattern, PolicySources, load, load_file, pattern_matches};
use proptest::prelude::*;

use crate::support::load_custom;

/// Pieces of download files, so generated texts get past the HCL parser and reach validation.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "mode",
        "downloadURL",
        "download",
        " = ",
        "\n",
        " ",
        "{",
        "}",
        "\"sync\"",
        "\"async\"",
        "\"none\"",
        "\"redirect\"",
        "\"async_redirect\"",
        "\"bogus\"",
        "\"https://mirror.example\"",
        "\"https://mirror.example/p?q\"",
        "\"ftp://x\"",
        "\"a/*\"",
        "\"a/[b\"",
        "\"\"",
        "\"*\"",
        "\"a/\\\\\"",
        "\"a/b\"",
        "x",
        "3",
        "[",
        "]",
        "#",
        "/*",
        "*/",
        "\"",
        "é",
        "\u{feff}",
        "${x}",
        "<<EOF\nhi\nEOF\n",
        "download \"a/*\" {\n mode = \"sync\"\n}\n",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let result = load_custom(&bytes);
        if let Err(error) = result {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        if let Err(error) = load_custom(text.as_bytes()) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn hcl_like_text_never_panics(pieces in prop::collection::vec(fragment(), 0..60)) {
        let text: String = pieces.concat();
        match load_custom(text.as_bytes()) {
            Ok(policy) => {
                let _ = policy.decide("a/b/c");
                let _ = policy.check_report(&["a", "a/b"]);
            }
            Err(error) => {
                // Every problem is located and says what to do.
                for problem in error.problems() {
                    prop_assert!(!problem.message.is_empty() && !problem.fix.is_empty());
                }
            }
        }
    }

    #[test]
    fn arbitrary_source_values_never_panic(
        ferry in proptest::option::of("\\PC{0,40}"),
        athens in proptest::option::of("(file:|custom:)?\\PC{0,40}"),
        url in proptest::option::of("\\PC{0,40}"),
        athens_url in proptest::option::of("\\PC{0,40}"),
    ) {
        let _ = load(&PolicySources {
            ferry_download_mode: ferry.as_deref(),
            athens_download_mode: athens.as_deref(),
            ferry_download_url: url.as_deref(),
            athens_download_url: athens_url.as_deref(),
            ..PolicySources::default()
        });
    }

    #[test]
    fn arbitrary_patterns_never_panic(pattern in "\\PC{0,30}", path in "\\PC{0,30}") {
        let _ = pattern_matches(&pattern, &path);
        if let Ok(compiled) = Pattern::new(&pattern) {
            let _ = compiled.matches(&path);
        }
    }

    #[test]
    fn index_agrees_with_scanning(
        patterns in prop::collection::vec("(a|b|\\.|\\*|\\*\\.|\\?|/|\\[ab\\]|\\[\\^a\\]|\\\\a){1,8}", 1..30),
        modes in prop::collection::vec(0usize..3, 30),
        paths in prop::collection::vec("[ab./]{0,10}", 1..40),
    ) {
        let names = ["sync", "async", "none"];
        let mut text = String::from("mode = \"none\"\n");
        let mut seen = std::collections::HashSet::new();
        for (index, pattern) in patterns.iter().enumerate() {
            if Pattern::new(pattern).is_err() || !seen.insert(pattern.clone()) {
                continue;
            }
            let escaped = pattern.replace('\\', "\\\\");
            text.push_str(&format!("download \"{escaped}\" {{\n  mode = \"{}\"\n}}\n", names[modes[index]]));
        }
        let policy = match load_custom(text.as_bytes()) {
            Ok(policy) => policy,
            Err(error) => return Err(TestCaseError::fail(format!("{error}\n{text}"))),
        };
        for path in &paths {
            prop_assert_eq!(policy.decide(path), policy.decide_by_scan(path), "{}", path);
        }
    }

    /// The checks comparing blocks are sound: when a pattern is said to be covered by an
    /// earlier one, every path the later one matches, the earlier one matches too; when two are
    /// said not to overlap, no path matches both.
    #[test]
    fn covers_and_overlaps_are_never_claimed_wrongly(
        earlier in "(a|b|\\.|\\*|\\?|/|\\[ab\\]|\\[\\^a\\]|\\[/\\]|\\\\a){1,6}",
        later in "(a|b|\\.|\\*|\\?|/|\\[ab\\]|\\[/\\]|\\\\a){1,8}",
        paths in prop::collection::vec("[ab.]{1,3}(/[ab.]{1,3}){0,4}", 1..60),
    ) {
        let (Ok(earlier), Ok(later)) = (Pattern::new(&earlier), Pattern::new(&later)) else {
            return Ok(());
        };
        // Module paths have no empty element; the checks are about module paths.
        let paths: Vec<&String> = paths
            .iter()
            .filter(|path| !path.split('/').any(str::is_empty))
            .collect();
        if !later.may_overlap(&earlier) {
            for path in &paths {
                prop_assert!(
                    !(later.matches(path) && earlier.matches(path)),
                    "{} and {} are said not to overlap, but both match {}", earlier, later, path
                );
            }
        }
        if later.is_covered_by(&earlier) {
            for path in &paths {
                prop_assert!(
                    !later.matches(path) || earlier.matches(path),
                    "{} is said to cover {}, but only the latter matches {}", earlier, later, path
                );
            }
        }
    }
}

#[test]
fn a_directory_is_unreadable_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_file(dir.path()).is_err());
}
