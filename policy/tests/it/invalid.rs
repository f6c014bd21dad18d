//! Every invalid case gives its located message: `WHERE:LINE:COL: problem; fix`.

use std::path::Path;

use ferry_policy::{PolicyError, PolicySources, ProblemKind, load, load_file};

use crate::support::load_text;

/// Asserts the file gives exactly these problems: (kind, "LINE:COL", message and fix).
fn assert_problems(text: &str, expected: &[(ProblemKind, &str, &str)]) {
    let (error, path) = load_text(text);
    let problems = error.problems();
    let described: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), expected.len(), "{described:#?}");
    for (problem, (kind, line_column, rest)) in problems.iter().zip(expected) {
        assert_eq!(problem.kind, *kind, "{problem}");
        assert_eq!(problem.to_string(), format!("{path}:{line_column}: {rest}"));
    }
    // Display lists every problem, one per line.
    assert_eq!(error.to_string(), described.join("\n"));
}

#[test]
fn syntax_error() {
    assert_problems(
        "mode = \"sync\"\ndownload \"a\" { mode = \n",
        &[(
            ProblemKind::Syntax,
            "2:23",
            "HCL syntax error: invalid expression; expected `\"`, `[`, `{`, `-`, `!`, `(`, `_`, `<`, letter or digit; write one key = \"value\" per line, and blocks as download \"PATTERN\" { ... } with each key on its own line inside",
        )],
    );
    let (error, _) = load_text("mode = \"sync\"\ndownload \"a\" {\n  mode = \"sync\"\n");
    assert_eq!(error.problems()[0].kind, ProblemKind::Syntax);
    let (error, _) = load_text("mode = \"sync\" download");
    assert_eq!(error.problems()[0].kind, ProblemKind::Syntax);
}

#[test]
fn repeated_key() {
    assert_problems(
        "mode = \"sync\"\nmode = \"async\"\n",
        &[(
            ProblemKind::DuplicateKey,
            "2:1",
            "this key is already set earlier in the same body; keep one of the two",
        )],
    );
}

#[test]
fn unknown_keys_and_blocks() {
    assert_problems(
        r#"mode = "sync"
foo = "bar"
download_url = "https://upstream.example"
Mode = "sync"
downlaod "x" { mode = "sync" }
upstream { }
download "a/*" {
    mode = "sync"
    downloadUrl = "https://mirror.example"
    timeout = 3
    download "b" { mode = "sync" }
}
"#,
        &[
            (
                ProblemKind::UnknownKey,
                "2:1",
                "unknown key \"foo\"; the top level holds only mode, downloadURL and download blocks; remove it",
            ),
            (
                ProblemKind::UnknownKey,
                "3:1",
                "unknown key \"download_url\"; write downloadURL",
            ),
            (
                ProblemKind::UnknownKey,
                "4:1",
                "unknown key \"Mode\"; write mode",
            ),
            (
                ProblemKind::UnknownBlock,
                "5:1",
                "unknown block \"downlaod\"; write download \"PATTERN\" { ... }",
            ),
            (
                ProblemKind::UnknownBlock,
                "6:1",
                "unknown block \"upstream\"; the blocks are download \"PATTERN\" { mode = \"...\" } and versions \"PATTERN\" { min_age = \"...\" }; remove this block",
            ),
            (
                ProblemKind::UnknownKey,
                "9:5",
                "unknown key \"downloadUrl\"; write downloadURL",
            ),
            (
                ProblemKind::UnknownKey,
                "10:5",
                "unknown key \"timeout\"; a download block holds only mode and downloadURL; remove it",
            ),
            (
                ProblemKind::UnknownBlock,
                "11:5",
                "unknown block \"download\" inside a download block; a download block holds only mode and downloadURL; download blocks cannot nest",
            ),
        ],
    );
}

#[test]
fn unknown_modes_and_non_strings() {
    assert_problems(
        r#"mode = "Sync"
download "a/*" { mode = "fast" }
download "b/*" {
  mode = sync
}
download "c/*" { mode = "async-redirect" }
download "d/*" {
  downloadURL = 3
  mode = "none"
}
"#,
        &[
            (
                ProblemKind::UnknownMode,
                "1:8",
                "unknown mode \"Sync\"; write mode = \"sync\"",
            ),
            (
                ProblemKind::UnknownMode,
                "2:25",
                "unknown mode \"fast\"; write one of sync, async, none, redirect, async_redirect",
            ),
            (
                ProblemKind::NotAString,
                "4:10",
                "the value of mode must be a quoted string; write mode = \"sync\"",
            ),
            (
                ProblemKind::UnknownMode,
                "6:25",
                "unknown mode \"async-redirect\"; write mode = \"async_redirect\"",
            ),
            (
                ProblemKind::NotAString,
                "8:17",
                "the value of downloadURL must be a quoted string; write downloadURL = \"https://mirror.example/prefix\"",
            ),
        ],
    );
}

#[test]
fn missing_modes() {
    assert_problems(
        "download \"a/*\" {\n}\n",
        &[
            (
                ProblemKind::MissingMode,
                "1:1",
                "the file sets no top-level mode; add mode = \"sync\" (or another of sync, async, none, redirect, async_redirect) at the top: it applies to modules no download block matches",
            ),
            (
                ProblemKind::MissingMode,
                "1:1",
                "this download block sets no mode; add mode = \"sync\" (or another of sync, async, none, redirect, async_redirect) inside the block",
            ),
        ],
    );
    // An empty file has no top-level mode either.
    let (error, _) = load_text("");
    assert_eq!(error.problems()[0].kind, ProblemKind::MissingMode);
}

#[test]
fn malformed_globs() {
    assert_problems(
        r#"mode = "sync"
download "github.com/[abc" { mode = "sync" }
download "github.com/x\\" { mode = "sync" }
download "github.com/[]" { mode = "sync" }
"#,
        &[
            (
                ProblemKind::BadPattern,
                "2:10",
                "malformed pattern \"github.com/[abc\"; the character class opened at character 11 is never closed; close it with `]`, or write `\\[` for a literal bracket",
            ),
            (
                ProblemKind::BadPattern,
                "3:10",
                "malformed pattern \"github.com/x\\\\\"; the pattern ends with a `\\` that escapes nothing (character 12); remove it, or write `\\\\` for a literal backslash",
            ),
            (
                ProblemKind::BadPattern,
                "4:10",
                "malformed pattern \"github.com/[]\"; the character class at character 11 is empty or has a range without an end; list characters or full ranges such as `[a-z0-9]`, and write `\\-` or `\\]` for a literal `-` or `]`",
            ),
        ],
    );
}

#[test]
fn labels() {
    assert_problems(
        "mode = \"sync\"\ndownload { mode = \"sync\" }\ndownload \"a\" \"b\" { mode = \"sync\" }\n",
        &[
            (
                ProblemKind::BadLabel,
                "2:1",
                "a download block needs exactly one pattern, found 0; write download \"github.com/org/*\" { ... }: one quoted pattern per block",
            ),
            (
                ProblemKind::BadLabel,
                "3:1",
                "a download block needs exactly one pattern, found 2; write download \"github.com/org/*\" { ... }: one quoted pattern per block",
            ),
        ],
    );
}

#[test]
fn redirect_without_a_reachable_download_url() {
    assert_problems(
        r#"mode = "async_redirect"
download "a/*" {
  mode = "redirect"
}
download "b/*" {
  mode = "redirect"
  downloadURL = "https://mirror.example"
}
download "c/*" {
  mode = "async_redirect"
  downloadURL = ""
}
"#,
        &[
            (
                ProblemKind::MissingDownloadUrl,
                "1:8",
                "top-level mode async_redirect redirects but the file sets no top-level downloadURL (an empty one counts as none); add downloadURL = \"https://mirror.example/prefix\" at the top of the file",
            ),
            (
                ProblemKind::MissingDownloadUrl,
                "3:10",
                "mode redirect redirects but neither this block nor the top level sets a downloadURL (an empty one counts as none); add downloadURL = \"https://mirror.example/prefix\" inside the block or at the top of the file",
            ),
            (
                ProblemKind::MissingDownloadUrl,
                "10:10",
                "mode async_redirect redirects but neither this block nor the top level sets a downloadURL (an empty one counts as none); add downloadURL = \"https://mirror.example/prefix\" inside the block or at the top of the file",
            ),
        ],
    );
}

#[test]
fn bad_download_urls() {
    let fix = "write an absolute http(s) URL such as \"https://mirror.example/prefix\"";
    assert_problems(
        r#"mode = "sync"
downloadURL = "mirror.example/prefix"
download "a/*" {
  mode = "redirect"
  downloadURL = "ftp://mirror.example"
}
download "b/*" {
  mode = "redirect"
  downloadURL = "https://mirror.example/p?x=1"
}
download "c/*" {
  mode = "redirect"
  downloadURL = "file:///srv/mirror"
}
"#,
        &[
            (
                ProblemKind::BadDownloadUrl,
                "2:15",
                &format!(
                    "downloadURL \"mirror.example/prefix\" is not a URL (relative URL without a base); {fix}"
                ),
            ),
            (
                ProblemKind::BadDownloadUrl,
                "5:17",
                &format!(
                    "downloadURL \"ftp://mirror.example\" has scheme \"ftp\", not http or https; {fix}"
                ),
            ),
            (
                ProblemKind::BadDownloadUrl,
                "9:17",
                "downloadURL \"https://mirror.example/p?x=1\" has a query or fragment; remove the ?... or #... part: redirects append the request path to the URL's path",
            ),
            (
                ProblemKind::BadDownloadUrl,
                "13:17",
                &format!(
                    "downloadURL \"file:///srv/mirror\" has scheme \"file\", not http or https; {fix}"
                ),
            ),
        ],
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_problems(
        "# é\nmode = \"sync\" # ü\n/* ö */ foo = 1\n",
        &[(
            ProblemKind::UnknownKey,
            "3:9",
            "unknown key \"foo\"; the top level holds only mode, downloadURL and download blocks; remove it",
        )],
    );
}

#[test]
fn not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("download.hcl");
    std::fs::write(&path, b"mode = \"sync\"\n# \xff\n").unwrap();
    let error = load_file(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:2:3: the file is not UTF-8 text; save the download file as UTF-8",
            path.display()
        )
    );
    assert_eq!(error.problems()[0].kind, ProblemKind::NotText);
}

#[test]
fn unreadable_file() {
    let missing = Path::new("/nonexistent/ferry/download.hcl");
    let error = load_file(missing).unwrap_err();
    assert!(matches!(error, PolicyError::Unreadable { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/ferry/download.hcl: cannot read the download file /nonexistent/ferry/download.hcl: "),
        "{error}"
    );
    let error = load(&PolicySources {
        athens_download_mode: Some("file:/nonexistent/ferry/download.hcl"),
        ..PolicySources::default()
    })
    .unwrap_err();
    assert!(
        error.to_string().starts_with(
            "ATHENS_DOWNLOAD_MODE=file:/nonexistent/ferry/download.hcl: cannot read the download file /nonexistent/ferry/download.hcl: "
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .ends_with("; check the path and its permissions"),
        "{error}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let (error, _) = load_text(
        r#"mode = "sink"
downloadURL = "nope"
download "[" { mode = "none" }
download "a" { mode = "redirect" }
download "a" { mode = "sync" }
extra = 1
"#,
    );
    let kinds: Vec<ProblemKind> = error
        .problems()
        .iter()
        .map(|problem| problem.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ProblemKind::UnknownMode,
            ProblemKind::BadDownloadUrl,
            ProblemKind::BadPattern,
            ProblemKind::DuplicatePattern,
            ProblemKind::UnknownKey,
        ]
    );
    assert_eq!(error.to_string().lines().count(), 5);
    // The repeated pattern is a warning, listed among the errors so that one run shows all.
    assert!(
        error
            .to_string()
            .lines()
            .nth(3)
            .is_some_and(|line| line.contains(":5:10: warning: pattern \"a\" is already used")),
        "{error}"
    );
}

#[test]
fn download_urls_that_would_leak_or_break_in_a_location_header() {
    assert_problems(
        r#"mode = "sync"
downloadURL = "https://ops:hunter2@mirror.example/prefix"
download "a/*" {
  mode = "redirect"
  downloadURL = "https://mirror.example/a\r\nSet-Cookie: x=y"
}
download "b/*" {
  mode = "redirect"
  downloadURL = "https://proxy.example,direct"
}
download "c/*" {
  mode = "redirect"
  downloadURL = "https://one.example|https://tok3n@two.example"
}
download "d/*" {
  mode = "redirect"
  downloadURL = " https://mirror.example"
}
download "e/*" {
  mode = "redirect"
  downloadURL = "https://mirror.example/a,b"
}
download "f/*" {
  mode = "redirect"
  downloadURL = "https://tok3n@mirror.example"
}
"#,
        &[
            (
                ProblemKind::BadDownloadUrl,
                "2:15",
                "downloadURL \"https://***@mirror.example/prefix\" holds credentials (user:password@): every redirected client would receive them in the Location header; remove the user:password@ part; clients authenticate to the mirror with their own .netrc or GOAUTH",
            ),
            (
                ProblemKind::BadDownloadUrl,
                "5:17",
                "downloadURL \"https://mirror.example/a\\r\\nSet-Cookie: x=y\" holds a line break (CR or LF) at character 25; remove it (Ferry does not strip it: in a Location header it would break the answer), and percent-encode a space in a path as %20",
            ),
            (
                ProblemKind::BadDownloadUrl,
                "9:17",
                "downloadURL \"https://proxy.example,direct\" is a GOPROXY list, not one URL; a redirect goes to one URL: write one, e.g. \"https://proxy.example\" (a client's own GOPROXY=ferry,direct or ferry|direct gives the fallback); percent-encode a `,` or `|` that belongs to the path as %2C or %7C",
            ),
            (
                ProblemKind::BadDownloadUrl,
                "13:17",
                "downloadURL \"https://one.example|https://***@two.example\" is a GOPROXY list, not one URL; a redirect goes to one URL: write one, e.g. \"https://one.example\" (a client's own GOPROXY=ferry,direct or ferry|direct gives the fallback); percent-encode a `,` or `|` that belongs to the path as %2C or %7C",
            ),
            (
                ProblemKind::BadDownloadUrl,
                "17:17",
                "downloadURL \" https://mirror.example\" holds a space at character 1; remove it (Ferry does not strip it: in a Location header it would break the answer), and percent-encode a space in a path as %20",
            ),
            (
                ProblemKind::BadDownloadUrl,
                "21:17",
                "downloadURL \"https://mirror.example/a,b\" holds a `,`; a redirect goes to one URL: write one, e.g. \"https://mirror.example/a\" (a client's own GOPROXY=ferry,direct or ferry|direct gives the fallback); percent-encode a `,` or `|` that belongs to the path as %2C or %7C",
            ),
            (
                ProblemKind::BadDownloadUrl,
                "25:17",
                "downloadURL \"https://***@mirror.example\" holds credentials (user:password@): every redirected client would receive them in the Location header; remove the user:password@ part; clients authenticate to the mirror with their own .netrc or GOAUTH",
            ),
        ],
    );
    // No message shows a password or token, whatever else is wrong with the URL.
    let (error, _) = load_text(
        "mode = \"sync\"\ndownloadURL = \"ftp://ops:hunter2@mirror.example\"\ndownload \"a\" {\n  mode = \"sync\"\n  downloadURL = \"https://ops:hunter2@mirror.example/\\n\"\n}\n",
    );
    assert_eq!(error.problems().len(), 2, "{error}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn an_empty_download_url_means_none_set_as_in_athens() {
    // Top level and block: the file loads; the block falls back to the top-level URL.
    let (policy, _) = crate::support::load_written(
        "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"a/*\" {\n  mode = \"redirect\"\n  downloadURL = \"https://mirror.example/a\"\n}\ndownload \"b/*\" {\n  mode = \"none\"\n  downloadURL = \"\"\n}\n",
    );
    let policy = policy.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(policy.decide("x/y").download_url, None);
    assert_eq!(
        policy.decide("a/y").download_url.map(|url| url.as_str()),
        Some("https://mirror.example/a")
    );
    assert_eq!(policy.decide("b/y").mode, ferry_policy::Mode::None);
    let (policy, _) = crate::support::load_written(
        "mode = \"sync\"\ndownloadURL = \"https://top.example\"\ndownload \"b/*\" {\n  mode = \"redirect\"\n  downloadURL = \"\"\n}\n",
    );
    assert_eq!(
        policy
            .unwrap()
            .decide("b/y")
            .download_url
            .map(|url| url.as_str()),
        Some("https://top.example/")
    );
}

#[test]
fn version_rules_are_checked_with_their_place() {
    assert_problems(
        concat!(
            "mode = \"sync\"\n",
            "versions \"*\" {\n",
            "  min_age = \"soon\"\n",
            "  deny = [\"1.2.3\", \">=v1.0.0 <v1.4.0\"]\n",
            "  allow = \"v1.0.0\"\n",
            "  dry_run = \"yes\"\n",
            "  maxAge = \"1d\"\n",
            "}\n",
        ),
        &[
            (
                ProblemKind::BadVersionRule,
                "3:13",
                "min_age \"soon\" is not a duration; write an age such as \"72h\" or \"7d\"",
            ),
            (
                ProblemKind::BadVersionRule,
                "4:11",
                "deny entry \"1.2.3\" is not a version or range; version \"1.2.3\": not a semantic version; write a canonical version such as v1.2.3, optionally after one of = < <= > >=, e.g. \">=v1.0.0 <v1.4.0\"",
            ),
            (
                ProblemKind::NotAString,
                "5:11",
                "the value of allow must be a list of quoted versions or ranges; write allow = [\"v1.2.3\", \">=v2.0.0 <v2.1.0\"]",
            ),
            (
                ProblemKind::NotAString,
                "6:13",
                "the value of dry_run must be true or false; write dry_run = true",
            ),
            (
                ProblemKind::UnknownKey,
                "7:3",
                "unknown key \"maxAge\" in a versions block; a versions block holds only min_age, deny, allow, exempt and dry_run",
            ),
        ],
    );
}
