//! Dead or redundant blocks load (Athens loads them) and are reported as located warnings.

use ferry_policy::{Mode, Policy, ProblemKind, Severity};

use crate::support::{load_written, policy_from_text};

/// Loads `text` (which must be valid) from a file; returns the policy and its warnings as
/// `(kind, "LINE:COL: warning: message; fix")` with the file name taken off.
fn warnings_of(text: &str) -> (Policy, Vec<(ProblemKind, String)>) {
    let (result, path) = load_written(text);
    let policy = result.unwrap_or_else(|error| panic!("{error}"));
    let warnings = policy
        .warnings()
        .iter()
        .map(|warning| {
            assert_eq!(warning.severity, Severity::Warning, "{warning}");
            let shown = warning.to_string();
            let rest = shown
                .strip_prefix(&format!("{path}:"))
                .unwrap_or_else(|| panic!("{shown} does not start with the file"));
            (warning.kind, rest.to_owned())
        })
        .collect();
    (policy, warnings)
}

#[test]
fn a_repeated_pattern_is_a_warning_and_the_first_block_decides() {
    let (policy, warnings) = warnings_of(
        r#"mode = "sync"
download "github.com/pkg/*" { mode = "none" }
download "github.com/other/*" { mode = "none" }
  download "github.com/pkg/*" { mode = "async" }
"#,
    );
    assert_eq!(
        warnings,
        [(
            ProblemKind::DuplicatePattern,
            "4:12: warning: pattern \"github.com/pkg/*\" is already used by the block at line 2, so this block never applies; merge the two blocks or delete this one".to_owned()
        )]
    );
    assert_eq!(policy.decide("github.com/pkg/errors").mode, Mode::None);
    assert_eq!(policy.rules().len(), 3);
}

#[test]
fn a_pattern_that_never_matches_is_a_warning_and_matches_nothing_as_in_athens() {
    let (policy, warnings) = warnings_of(
        r#"mode = "sync"
download "github.com/corp/" { mode = "none" }
download "github.com//x" { mode = "none" }
download "" { mode = "none" }
"#,
    );
    assert_eq!(
        warnings,
        [
            (
                ProblemKind::DeadPattern,
                "2:10: warning: pattern \"github.com/corp/\" ends with `/`, so it never matches a module path and this block never applies (Athens never applies it either); write \"github.com/corp\" (a pattern matches the path's leading elements, so \"github.com/org\" also matches github.com/org/x)".to_owned()
            ),
            (
                ProblemKind::DeadPattern,
                "3:10: warning: pattern \"github.com//x\" has an empty path element (`//` or a leading `/`), so it never matches a module path and this block never applies (Athens never applies it either); write \"github.com/x\" (a pattern matches the path's leading elements, so \"github.com/org\" also matches github.com/org/x)".to_owned()
            ),
            (
                ProblemKind::DeadPattern,
                "4:10: warning: the pattern is empty, so it never matches a module path and this block never applies; write a module path pattern such as \"github.com/org/*\", or delete the block".to_owned()
            ),
        ]
    );
    // Athens's answer for these modules: the top-level mode.
    for module in ["github.com/corp/x", "github.com/corp", "github.com/x/y"] {
        assert_eq!(policy.decide(module).mode, Mode::Sync, "{module}");
        assert_eq!(
            policy.decide(module).rule.to_string(),
            policy.default_rule().to_string()
        );
    }
}

#[test]
fn a_block_an_earlier_broader_pattern_covers_is_a_warning() {
    let (policy, warnings) = warnings_of(
        r#"mode = "async"
downloadURL = "https://mirror.example"
download "github.com/*" { mode = "none" }
download "*.corp.example" { mode = "async" }
download "github.com/pkg/*" { mode = "async_redirect" }
download "git.corp.example/team/*" { mode = "sync" }
download "*/org/*" { mode = "none" }
download "gitlab.com/org/x" { mode = "sync" }
download "gitlab.com/p*" { mode = "none" }
download "gitlab.com/pkg/errors/v2" { mode = "sync" }
"#,
    );
    let lines: Vec<&str> = warnings.iter().map(|(_, line)| line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "5:10: warning: every module pattern \"github.com/pkg/*\" matches is already matched by \"github.com/*\" in the block at line 3 (none), so this block (async_redirect) never applies; move this block above line 3 if it is meant to win (the first matching block decides), or delete it",
            "6:10: warning: every module pattern \"git.corp.example/team/*\" matches is already matched by \"*.corp.example\" in the block at line 4 (async), so this block (sync) never applies; move this block above line 4 if it is meant to win (the first matching block decides), or delete it",
            "8:10: warning: every module pattern \"gitlab.com/org/x\" matches is already matched by \"*/org/*\" in the block at line 7 (none), so this block (sync) never applies; move this block above line 7 if it is meant to win (the first matching block decides), or delete it",
            "10:10: warning: every module pattern \"gitlab.com/pkg/errors/v2\" matches is already matched by \"gitlab.com/p*\" in the block at line 9 (none), so this block (sync) never applies; move this block above line 9 if it is meant to win (the first matching block decides), or delete it",
        ]
    );
    assert!(
        warnings
            .iter()
            .all(|(kind, _)| *kind == ProblemKind::UnreachableBlock)
    );
    // The earlier block decides, as in Athens.
    assert_eq!(policy.decide("github.com/pkg/errors").mode, Mode::None);
    assert_eq!(policy.decide("git.corp.example/team/x").mode, Mode::Async);
}

#[test]
fn blocks_an_earlier_pattern_only_partly_covers_give_no_warning() {
    let (_, warnings) = warnings_of(
        r#"mode = "sync"
download "github.com/pkg/*" { mode = "none" }
download "github.com/a*" { mode = "none" }
download "github.com/b/*" { mode = "none" }
download "github.com/*" { mode = "async" }
download "*/org/x" { mode = "none" }
download "*/org/*" { mode = "none" }
download "gitlab.com/[ab]*" { mode = "none" }
download "gitlab.com/[a]x" { mode = "none" }
download "a/b/c" { mode = "none" }
download "a/b" { mode = "none" }
"#,
    );
    // Later, broader patterns; patterns that differ; and a class this check does not compare.
    assert_eq!(warnings, []);
}

#[test]
fn a_valid_file_without_dead_blocks_has_no_warnings() {
    let policy = policy_from_text(
        "mode = \"sync\"\ndownload \"github.com/pkg/*\" { mode = \"none\" }\ndownload \"github.com/*\" { mode = \"async\" }\n",
    );
    assert!(policy.warnings().is_empty());
}

#[test]
fn fetches_says_whether_any_mode_fetches_from_the_upstream() {
    let cases = [
        ("mode = \"none\"\n", false),
        (
            "mode = \"redirect\"\ndownloadURL = \"https://m.example\"\ndownload \"a\" { mode = \"none\" }\n",
            false,
        ),
        (
            "mode = \"none\"\ndownload \"a\" { mode = \"sync\" }\n",
            true,
        ),
        (
            "mode = \"none\"\ndownload \"a\" { mode = \"async\" }\n",
            true,
        ),
        (
            "mode = \"async_redirect\"\ndownloadURL = \"https://m.example\"\n",
            true,
        ),
        (
            "mode = \"sync\"\ndownload \"a\" { mode = \"none\" }\n",
            true,
        ),
    ];
    for (text, fetches) in cases {
        assert_eq!(policy_from_text(text).fetches(), fetches, "{text}");
    }
}

#[test]
fn a_redirect_without_its_own_url_that_a_later_block_with_one_may_match_is_a_warning() {
    // Athens's URL() returns the first *matching block with a URL*: github.com/corp/x would go to
    // https://later.example there; Ferry sends it to the top-level URL, and says so.
    let (policy, warnings) = warnings_of(
        r#"mode = "sync"
downloadURL = "https://top.example"
download "*/corp/*" {
    mode = "redirect"
}
download "gitlab.com/other/*" {
    mode = "none"
    downloadURL = "https://disjoint.example"
}
download "github.com/*" {
    mode = "sync"
    downloadURL = "https://later.example"
}
download "*/own/*" {
    mode = "redirect"
    downloadURL = "https://own.example"
}
download "*/same/*" {
    mode = "async_redirect"
}
download "example.com/*" {
    mode = "redirect"
    downloadURL = "https://top.example"
}
"#,
    );
    assert_eq!(
        warnings,
        [(
            ProblemKind::AthensUrlDiffers,
            "3:10: warning: this redirect block has no downloadURL, and the block at line 10 (downloadURL https://later.example/) may match some of the same modules: Athens would redirect those to https://later.example/, Ferry redirects them to the top-level downloadURL (https://top.example/); write the downloadURL this block means inside it, e.g. downloadURL = \"https://later.example/\" or \"https://top.example/\"".to_owned()
        )]
    );
    assert_eq!(
        policy
            .decide("github.com/corp/x")
            .download_url
            .map(|url| url.as_str()),
        Some("https://top.example/")
    );
}
