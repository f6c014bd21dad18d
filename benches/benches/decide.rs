//! Policy decisions per second with 1,000 `download` blocks (`ferry_policy::Policy::decide`, no I/O).
//!
//!     cargo bench -p ferry-benches --bench decide
//!
//! `literal_hosts`: patterns that start with literal elements (the usual case:
//! `github.com/org17/*`), narrowed down by the literal-prefix index. `wildcard_hosts`:
//! `*.host17.example/*` patterns, narrowed down by the host-suffix index. `glob_first_element`:
//! `*/org17/*` patterns, narrowed down by the index of literal elements at a position.
//! `unindexed`: `*/org17?/*` patterns, with no literal element nor host suffix, so every block
//! is tried in order: the worst case.

use std::hint::black_box;

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use ferry_policy::{Policy, PolicySources, load};

const RULES: usize = 1000;
const MODES: [&str; 5] = ["sync", "async", "none", "redirect", "async_redirect"];

fn policy(pattern_for: impl Fn(usize) -> String) -> Policy {
    let mut text = String::from("mode = \"sync\"\ndownloadURL = \"https://upstream.example\"\n");
    for index in 0..RULES {
        text.push_str(&format!(
            "download \"{}\" {{\n  mode = \"{}\"\n}}\n",
            pattern_for(index),
            MODES[index % MODES.len()]
        ));
    }
    let value = format!(
        "custom:{}",
        base64::engine::general_purpose::STANDARD.encode(text)
    );
    load(&PolicySources {
        ferry_download_mode: Some(&value),
        ..PolicySources::default()
    })
    .expect("the generated policy is valid")
}

fn literal_host_pattern(index: usize) -> String {
    match index % 4 {
        0 => format!("github.com/org{index}/*"),
        1 => format!("gitlab.com/group{index}/sub/*"),
        2 => format!("github.com/org{index}/repo?"),
        _ => format!("go.corp{index}.example"),
    }
}

fn bench_decide(c: &mut Criterion) {
    let literal = policy(literal_host_pattern);
    let wildcard = policy(|index| format!("*.host{index}.example/*"));
    let glob_first = policy(|index| format!("*/org{index}/*"));
    let unindexed = policy(|index| format!("*/org{index}?/*"));
    let cases = [
        (
            "literal_hosts/first_block",
            &literal,
            "github.com/org0/x/v2",
        ),
        (
            "literal_hosts/last_block",
            &literal,
            "go.corp999.example/lib",
        ),
        (
            "literal_hosts/shared_host_late",
            &literal,
            "github.com/org996/y",
        ),
        (
            "literal_hosts/no_match",
            &literal,
            "github.com/someone/else",
        ),
        (
            "wildcard_hosts/first_block",
            &wildcard,
            "git.host0.example/a/b",
        ),
        (
            "wildcard_hosts/last_block",
            &wildcard,
            "git.host999.example/a/b",
        ),
        (
            "wildcard_hosts/no_match",
            &wildcard,
            "github.com/someone/else",
        ),
        (
            "glob_first_element/first_block",
            &glob_first,
            "github.com/org0/x",
        ),
        (
            "glob_first_element/last_block",
            &glob_first,
            "github.com/org999/x",
        ),
        (
            "glob_first_element/no_match",
            &glob_first,
            "github.com/someone/else",
        ),
        ("unindexed/first_block", &unindexed, "github.com/org0x/y"),
        ("unindexed/last_block", &unindexed, "github.com/org999x/y"),
        ("unindexed/no_match", &unindexed, "github.com/someone/else"),
    ];
    let mut group = c.benchmark_group("decide_1000_rules");
    for (name, policy, module) in cases {
        assert_eq!(policy.decide(module), policy.decide_by_scan(module));
        group.bench_function(name, |b| {
            b.iter(|| black_box(policy.decide(black_box(module))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
