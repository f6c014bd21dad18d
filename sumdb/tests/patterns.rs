//! `match_prefix_patterns` against Go's own `module.MatchPrefixPatterns` (asked of testdata/tlogdb -match)
//! over GOPRIVATE-style patterns, glob syntax and malformed globs.

mod support;

use ferry_sumdb::match_prefix_patterns;

#[test]
fn prefix_patterns_agree_with_go_module_match_prefix_patterns() {
    let globs = [
        "",
        ",",
        "/",
        "corp.example",
        "corp.example/",
        "*.corp.example",
        "corp.example/team",
        "corp.example/*/repo",
        "*/*/*",
        "github.com/Org",
        "github.com/org*",
        "git?ub.com",
        "[a-g]ithub.com",
        "[^g]ithub.com",
        "[!g]ithub.com",
        "github.com/[",
        "github.com/a\\",
        "\\g\\ithub.com",
        "[\\]]x",
        "[a-]",
        "*\u{e9}*",
        "?\u{e9}.example",
        "other.example,,corp.example",
        " corp.example",
    ];
    let targets = [
        "corp.example",
        "corp.example/team/repo",
        "git.corp.example/x",
        "github.com/org/repo",
        "github.com/Org/repo",
        "gitlab.com/x",
        "fithub.com/y",
        "]x/y",
        "-",
        "\u{e9}\u{e9}.example/z",
        "caf\u{e9}.example",
        "a",
    ];
    let cases: Vec<(&str, &str)> = globs
        .iter()
        .flat_map(|g| targets.iter().map(move |t| (*g, *t)))
        .collect();
    let go = support::go_match_prefix_patterns(&cases);
    assert_eq!(go.len(), cases.len(), "Go answered every case");
    let mut disagreements = Vec::new();
    for ((globs, target), go) in cases.iter().zip(go) {
        if match_prefix_patterns(globs, target) != go {
            disagreements.push(format!("({globs:?}, {target:?}): Go says {go}"));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    // The cases are not all one answer.
    let matched = cases
        .iter()
        .filter(|(g, t)| match_prefix_patterns(g, t))
        .count();
    assert!(
        matched > 10 && matched < cases.len() - 10,
        "{matched} of {}",
        cases.len()
    );
}

#[test]
fn random_globs_and_paths_agree_with_go() {
    // Pseudo-random but reproducible: an LCG over an alphabet of glob syntax and path characters.
    let alphabet: Vec<char> = "ab/*?[]^-\\,.\u{e9}".chars().collect();
    let mut state: u64 = 0x5eed;
    let mut next = |limit: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % limit
    };
    let mut word = |max: usize, chars: &[char]| -> String {
        let len = next(max + 1);
        (0..len).map(|_| chars[next(chars.len())]).collect()
    };
    let path_chars: Vec<char> = "ab/.-\u{e9}".chars().collect();
    let owned: Vec<(String, String)> = (0..3000)
        .map(|_| (word(8, &alphabet), word(8, &path_chars)))
        .collect();
    let cases: Vec<(&str, &str)> = owned
        .iter()
        .map(|(g, t)| (g.as_str(), t.as_str()))
        .collect();
    let go = support::go_match_prefix_patterns(&cases);
    assert_eq!(go.len(), cases.len());
    let disagreements: Vec<String> = cases
        .iter()
        .zip(&go)
        .filter(|((g, t), go)| match_prefix_patterns(g, t) != **go)
        .map(|((g, t), go)| format!("({g:?}, {t:?}): Go says {go}"))
        .collect();
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    assert!(
        go.iter().filter(|m| **m).count() > 100,
        "some random cases match"
    );
}
