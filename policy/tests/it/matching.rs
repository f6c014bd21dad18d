//! Table-driven tests of pattern matching and of decisions on the issue's example file.

use ferry_policy::{Mode, Pattern, PatternError, Policy, PolicySources, load, pattern_matches};

use crate::support::{encode, policy_from_text};

/// (pattern, module path, matches)
const MATCH_TABLE: &[(&str, &str, bool)] = &[
    // Leading elements, as GOPRIVATE: n slashes match the first n + 1 elements.
    ("github.com/pkg/*", "github.com/pkg/errors", true),
    ("github.com/pkg/*", "github.com/pkg/errors/v2", true),
    ("github.com/pkg/*", "github.com/pkg/errors/v2/sub", true),
    ("github.com/pkg/*", "github.com/pkg", false),
    ("github.com/pkg/*", "github.com/pkgx/errors", false),
    ("github.com/pkg/*", "github.com/pk/errors", false),
    ("github.com/pkg/*", "gitlab.com/pkg/errors", false),
    ("github.com", "github.com/anything/at/all", true),
    ("github.com", "github.com", true),
    ("github.com", "github.co", false),
    ("github.com", "github.com.evil.example/x", false),
    ("github.com/pkg/errors", "github.com/pkg/errors", true),
    ("github.com/pkg/errors", "github.com/pkg/errors/v2", true),
    ("github.com/pkg/errors", "github.com/pkg/errorsx", false),
    // `*` never crosses `/`.
    ("*", "github.com", true),
    ("*", "github.com/x/y", true),
    ("github.com/*", "github.com/a", true),
    ("github.com/*", "github.com/a/b", true),
    ("*/pkg/*", "github.com/pkg/errors", true),
    ("*/pkg/*", "github.com/other/pkg", false),
    ("github.com*", "github.com/x", true),
    ("github.*", "github.com/x", true),
    ("github.*", "github/x", false),
    ("*.corp.example", "git.corp.example/team/x", true),
    ("*.corp.example", "corp.example/team/x", false),
    ("*.corp.example", "a.b.corp.example/x", true),
    ("github.com/*s", "github.com/pkgs/x", true),
    ("github.com/*s", "github.com/pkg/s", false),
    ("github.com/a*c", "github.com/abc/d", true),
    ("github.com/a*c", "github.com/ab/c", false),
    ("github.com/a*b*c", "github.com/abc", true),
    ("github.com/a*b*c", "github.com/aXbYc", true),
    ("github.com/a*b*c", "github.com/aXbYcZ", false),
    ("github.com/a*b*c", "github.com/acb", false),
    ("**", "github.com/x", true),
    // `?` is one character, never `/`.
    ("github.com/?", "github.com/a/b", true),
    ("github.com/?", "github.com/ab", false),
    ("github.com/??", "github.com/ab", true),
    ("github.com?x", "github.com/x", false),
    ("gith?b.com/x", "github.com/x", true),
    // Classes, ranges, negation.
    ("github.com/[abc]*", "github.com/bob", true),
    ("github.com/[abc]*", "github.com/dan", false),
    ("github.com/[a-c]x", "github.com/bx", true),
    ("github.com/[a-c]x", "github.com/dx", false),
    ("github.com/[^a-c]x", "github.com/dx", true),
    ("github.com/[^a-c]x", "github.com/ax", false),
    ("github.com/[a-cx-z0-9]", "github.com/7", true),
    ("github.com/[a-cx-z0-9]", "github.com/m", false),
    ("github.com/[*]", "github.com/*", true),
    ("github.com/[*]", "github.com/a", false),
    ("github.com/x[\\]]", "github.com/x]", true),
    ("github.com/x[\\-]", "github.com/x-", true),
    ("github.com/x[\\-]", "github.com/xa", false),
    ("github.com/x]", "github.com/x]", true),
    // Escapes.
    ("github.com/\\*", "github.com/*", true),
    ("github.com/\\*", "github.com/a", false),
    ("github.com/a\\?", "github.com/a?", true),
    ("github.com/a\\?", "github.com/ab", false),
    ("github.com/\\[x]", "github.com/[x]", true),
    ("git\\hub.com", "github.com", true),
    // Patterns with more elements than the path never match.
    ("github.com/pkg/errors/v2", "github.com/pkg/errors", false),
    ("*/*/*/*", "a/b/c", false),
    ("*/*/*/*", "a/b/c/d", true),
    ("a/*", "a", false),
    ("a/*", "a/", true),
    // Case-sensitive, like module paths.
    ("github.com/Azure/*", "github.com/Azure/go", true),
    ("github.com/Azure/*", "github.com/azure/go", false),
    ("github.com/azure/*", "github.com/Azure/go", false),
    // Non-ASCII is matched by character.
    ("example.com/?", "example.com/é", true),
    ("example.com/[é]", "example.com/é", true),
];

#[test]
fn pattern_table() {
    for &(pattern, path, expected) in MATCH_TABLE {
        let compiled = Pattern::new(pattern).unwrap_or_else(|error| panic!("{pattern}: {error}"));
        assert_eq!(
            compiled.matches(path),
            expected,
            "pattern {pattern:?} against {path:?}"
        );
        assert_eq!(pattern_matches(pattern, path), expected);
        assert_eq!(compiled.as_str(), pattern);
    }
}

#[test]
fn malformed_patterns() {
    let table: &[(&str, PatternError)] = &[
        (
            "github.com/x\\",
            PatternError::TrailingEscape { position: 12 },
        ),
        (
            "github.com/[ab",
            PatternError::UnclosedClass { position: 11 },
        ),
        ("github.com/[", PatternError::UnclosedClass { position: 11 }),
        (
            "github.com/[a-",
            PatternError::UnclosedClass { position: 11 },
        ),
        (
            "github.com/[a\\",
            PatternError::UnclosedClass { position: 11 },
        ),
        ("[]", PatternError::BadClass { position: 0 }),
        ("[^]", PatternError::BadClass { position: 0 }),
        ("[]a]", PatternError::BadClass { position: 0 }),
        ("x[-a]", PatternError::BadClass { position: 1 }),
        ("x[a-]", PatternError::BadClass { position: 1 }),
    ];
    for (pattern, expected) in table {
        assert_eq!(
            Pattern::new(pattern).as_ref(),
            Err(expected),
            "pattern {pattern:?}"
        );
        assert!(!pattern_matches(pattern, "github.com/x"));
    }
}

const EXAMPLE: &str = r#"downloadURL = "https://upstream.example"
mode = "async_redirect"
download "github.com/gomods/*" {
    mode = "sync"
}
download "golang.org/x/*" {
    mode = "none"
}
download "github.com/pkg/*" {
    mode = "redirect"
    downloadURL = "https://mirror.example/prefix"
}
"#;

fn example() -> Policy {
    let encoded = encode(EXAMPLE.as_bytes());
    let value = format!("custom:{encoded}");
    load(&PolicySources {
        ferry_download_mode: Some(&value),
        ..PolicySources::default()
    })
    .expect("the example is valid")
}

#[test]
fn example_decisions() {
    let policy = example();
    let origin = "FERRY_DOWNLOAD_MODE (custom:)";
    // (module, mode, redirect URL, rule)
    let table: &[(&str, Mode, Option<&str>, String)] = &[
        (
            "github.com/gomods/athens",
            Mode::Sync,
            None,
            format!("download \"github.com/gomods/*\" at {origin}:3"),
        ),
        (
            "golang.org/x/mod",
            Mode::None,
            None,
            format!("download \"golang.org/x/*\" at {origin}:6"),
        ),
        (
            "golang.org/x/tools/gopls",
            Mode::None,
            None,
            format!("download \"golang.org/x/*\" at {origin}:6"),
        ),
        (
            "github.com/pkg/errors",
            Mode::Redirect,
            Some("https://mirror.example/prefix"),
            format!("download \"github.com/pkg/*\" at {origin}:9"),
        ),
        (
            "github.com/gomods",
            Mode::AsyncRedirect,
            Some("https://upstream.example/"),
            format!("top-level mode at {origin}:2"),
        ),
        (
            "golang.org/x",
            Mode::AsyncRedirect,
            Some("https://upstream.example/"),
            format!("top-level mode at {origin}:2"),
        ),
        (
            "github.com/Pkg/errors",
            Mode::AsyncRedirect,
            Some("https://upstream.example/"),
            format!("top-level mode at {origin}:2"),
        ),
    ];
    for (module, mode, url, rule) in table {
        let decision = policy.decide(module);
        assert_eq!(decision.mode, *mode, "{module}");
        assert_eq!(
            decision.download_url.map(|url| url.as_str()),
            *url,
            "{module}"
        );
        assert_eq!(decision.rule.to_string(), *rule, "{module}");
        assert_eq!(policy.decide_by_scan(module), decision, "{module}");
    }
}

#[test]
fn first_block_in_file_order_wins() {
    let text = r#"mode = "none"
download "github.com/*" { mode = "async" }
download "github.com/pkg/*" { mode = "sync" }
download "*" { mode = "sync" }
"#;
    let policy = policy_from_text(text);
    assert_eq!(policy.decide("github.com/pkg/errors").mode, Mode::Async);
    assert_eq!(policy.decide("gitlab.com/x").mode, Mode::Sync);
    assert_eq!(policy.decide("gitlab.com/x").rule.file_line().unwrap().1, 4);

    // Reversed, the more specific block wins because it comes first.
    let text = r#"mode = "none"
download "github.com/pkg/*" { mode = "sync" }
download "github.com/*" { mode = "async" }
"#;
    let policy = policy_from_text(text);
    assert_eq!(policy.decide("github.com/pkg/errors").mode, Mode::Sync);
    assert_eq!(policy.decide("github.com/other/x").mode, Mode::Async);
    assert_eq!(policy.decide("example.com/x").mode, Mode::None);
}

#[test]
fn block_without_download_url_uses_the_top_level_one() {
    let text = r#"mode = "sync"
downloadURL = "https://upstream.example/base/"
download "example.com/*" { mode = "redirect" }
download "other.example/*" {
    mode = "async_redirect"
    downloadURL = "http://mirror.example"
}
"#;
    let policy = policy_from_text(text);
    let decision = policy.decide("example.com/a");
    assert_eq!(
        decision.download_url.map(|url| url.as_str()),
        Some("https://upstream.example/base/")
    );
    assert_eq!(
        decision.redirect_target("example.com/a/@v/list").as_deref(),
        Some("https://upstream.example/base/example.com/a/@v/list")
    );
    let decision = policy.decide("other.example/!azure/x");
    assert_eq!(
        decision
            .redirect_target("/other.example/!azure/x/@v/v1.0.0.zip")
            .as_deref(),
        Some("http://mirror.example/other.example/!azure/x/@v/v1.0.0.zip")
    );
    // A mode that does not redirect carries no URL, even though the top level has one.
    let decision = policy.decide("unmatched.example/a");
    assert_eq!(decision.mode, Mode::Sync);
    assert_eq!(decision.download_url, None);
    assert_eq!(
        decision.redirect_target("unmatched.example/a/@latest"),
        None
    );
}

#[test]
fn redirect_keeps_the_url_path_prefix() {
    let url = url::Url::parse("https://mirror.example/prefix").unwrap();
    let policy = Policy::single(Mode::Redirect, Some(url)).unwrap();
    let decision = policy.decide("github.com/x/y");
    assert_eq!(
        decision
            .redirect_target("github.com/x/y/@v/v1.2.3.mod")
            .as_deref(),
        Some("https://mirror.example/prefix/github.com/x/y/@v/v1.2.3.mod")
    );
}

#[test]
fn check_report_lists_mode_url_and_rule() {
    let policy = example();
    let report = policy.check_report(&["github.com/pkg/errors", "golang.org/x/mod", "a.example/b"]);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 4, "{report}");
    assert!(lines[0].starts_with("MODULE "), "{report}");
    assert!(lines[1].contains("redirect") && lines[1].contains("https://mirror.example/prefix"));
    assert!(lines[1].ends_with("download \"github.com/pkg/*\" at FERRY_DOWNLOAD_MODE (custom:):9"));
    assert!(
        lines[2].contains(" none ") && lines[2].contains(" - "),
        "{report}"
    );
    assert!(
        lines[3].contains("async_redirect")
            && lines[3].ends_with("top-level mode at FERRY_DOWNLOAD_MODE (custom:):2")
    );
    assert_eq!(
        policy.decide("golang.org/x/mod").to_string(),
        "none  -  download \"golang.org/x/*\" at FERRY_DOWNLOAD_MODE (custom:):6"
    );
    assert_eq!(
        policy.summary(),
        "3 download blocks; other modules: async_redirect https://upstream.example/ (top-level mode at FERRY_DOWNLOAD_MODE (custom:):2)"
    );
}

#[test]
fn many_rules_with_shared_and_wildcard_prefixes_agree_with_a_scan() {
    let mut text = String::from("mode = \"none\"\ndownloadURL = \"https://upstream.example\"\n");
    let modes = ["sync", "async", "none", "redirect", "async_redirect"];
    for index in 0..300 {
        let pattern = match index % 7 {
            0 => format!("github.com/org{index}/*"),
            1 => format!("github.com/org{index}"),
            2 => format!("*.host{index}.example"),
            3 => format!("gitlab.com/g{index}/sub/*"),
            4 => format!("github.com/[a-f]{index}*"),
            5 => format!("example.com/?{index}"),
            _ => format!("*/team{index}/*"),
        };
        if index % 7 == 5 && index >= 60 {
            continue;
        }
        text.push_str(&format!(
            "download \"{pattern}\" {{ mode = \"{}\" }}\n",
            modes[index % modes.len()]
        ));
    }
    let policy = policy_from_text(&text);
    let mut paths = Vec::new();
    for index in 0..320 {
        paths.push(format!("github.com/org{index}/x"));
        paths.push(format!("github.com/org{index}"));
        paths.push(format!("git.host{index}.example/x"));
        paths.push(format!("gitlab.com/g{index}/sub/y/z"));
        paths.push(format!("gitlab.com/g{index}/sub"));
        paths.push(format!("github.com/c{index}x/y"));
        paths.push(format!("example.com/a{index}"));
        paths.push(format!("git.example/team{index}/x"));
        paths.push(format!("git.example/team{index}"));
    }
    for path in &paths {
        assert_eq!(policy.decide(path), policy.decide_by_scan(path), "{path}");
    }
}

/// The README's example file and the `ferry policy check` output it shows.
#[test]
fn readme_example_check_report() {
    let readme = include_str!("../../README.md");
    let start = readme.find("```hcl\n").expect("README has an hcl example") + "```hcl\n".len();
    let end = start + readme[start..].find("```").expect("the example ends");
    let text = &readme[start..end];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("download.hcl");
    std::fs::write(&path, text).unwrap();
    let policy = ferry_policy::load_file(&path).unwrap();
    let report = policy
        .check_report(&[
            "github.com/pkg/errors",
            "golang.org/x/mod",
            "example.com/other",
        ])
        .replace(&path.display().to_string(), "download.hcl");
    for line in report.lines() {
        assert!(
            readme.contains(&format!("  {line}\n")),
            "README lacks: {line}"
        );
    }
    assert!(
        readme.contains(
            &policy
                .summary()
                .replace(&path.display().to_string(), "download.hcl")
        )
    );
}

#[test]
fn rule_lines_skip_comments_before_a_block() {
    let policy = policy_from_text(
        "# Ferry download policy\nmode = \"none\"\n\n# Our modules.\n/* fetched */\ndownload \"a.example/*\" {\n  mode = \"sync\"\n}\n",
    );
    assert_eq!(policy.decide("a.example/x").rule.file_line().unwrap().1, 6);
    assert_eq!(policy.default_rule().file_line().unwrap().1, 2);
}
