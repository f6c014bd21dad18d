//! The workspace's shape: no crate has an import cycle between its files. A cycle (`a.rs` uses `b.rs`,
//! which uses `a.rs`) means neither file can be read, tested or moved without the other; each one found
//! was broken by moving one type to a leaf (issue 20). Read from the source text: every `crate::…`
//! path, `use crate::{…}` group and `super::…` path names the module it reaches (test modules left out).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Each module of the crate whose sources are under `src` (`a::b` for `a/b.rs` or `a/b/mod.rs`; `""` for
/// `lib.rs`/`main.rs`), with its text up to its `#[cfg(test)]` module.
fn modules(src: &Path, dir: &Path, found: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            modules(src, &path, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).unwrap().with_extension("");
        let mut name = relative.to_string_lossy().replace('/', "::");
        if let Some(parent) = name.strip_suffix("::mod") {
            name = parent.to_string();
        }
        if name == "lib" || name == "main" || name.starts_with("bin::") {
            name = String::new();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(at) => &text[..at],
            None => &text[..],
        };
        // Comments (an intra-doc link such as [`super::given`]) name a module without using it.
        let text: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .flat_map(|line| [line, "\n"])
            .collect();
        found.entry(name).or_default().push_str(&text);
    }
}

/// The longest known module that `path` (`a::b::Item`) starts with.
fn module_of(path: &[&str], known: &BTreeMap<String, String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|candidate| known.contains_key(candidate))
}

fn identifier_paths(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path: Vec<String> = rest[..end]
            .split("::")
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if rest[end..].starts_with('{') {
            // `use crate::{a, b::C}` or `use crate::x::{…}`: each item of the group.
            let close = rest[end..].find('}').map_or(rest.len(), |c| end + c);
            for item in rest[end + 1..close].split(',') {
                let mut full = path.clone();
                full.extend(item.trim().split("::").map(str::to_string));
                paths.push(full);
            }
        } else {
            paths.push(path);
        }
    }
    paths
}

/// Which modules each module of the crate reaches.
fn edges(known: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (module, text) in known {
        let mut reached = BTreeSet::new();
        let parent: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
        let parent = &parent[..parent.len().saturating_sub(1)];
        for (prefix, base) in [("crate::", &[][..]), ("super::", parent)] {
            for path in identifier_paths(text, prefix) {
                let mut full: Vec<&str> = base.to_vec();
                full.extend(path.iter().map(String::as_str));
                if let Some(target) = module_of(&full, known)
                    && target != *module
                    && !target.is_empty()
                {
                    reached.insert(target);
                }
            }
        }
        edges.insert(module.clone(), reached);
    }
    edges
}

/// Each pair of modules that reach each other, directly or through others (one line per cycle found).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(next) = todo.pop() {
            for target in &edges[&next] {
                if seen.insert(target.clone()) {
                    todo.push(target.clone());
                }
            }
        }
        seen
    };
    let mut found = BTreeSet::new();
    for module in edges.keys() {
        let from_here = reach(module);
        let members: BTreeSet<String> = from_here
            .iter()
            .filter(|other| *other != module && reach(other).contains(module))
            .cloned()
            .chain([module.clone()])
            .collect();
        if members.len() > 1 {
            found.insert(members.into_iter().collect::<Vec<_>>().join(" <-> "));
        }
    }
    found.into_iter().collect()
}

#[test]
fn no_crate_has_an_import_cycle_between_its_files() {
    let repo = repo();
    let mut problems = Vec::new();
    let mut crates = 0;
    for entry in std::fs::read_dir(&repo).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.join("lib.rs").is_file() && !src.join("main.rs").is_file() {
            continue;
        }
        crates += 1;
        let mut known = BTreeMap::new();
        modules(&src, &src, &mut known);
        for cycle in cycles(&edges(&known)) {
            let name = src.parent().unwrap().file_name().unwrap().to_string_lossy();
            problems.push(format!("{name}/src: {cycle}"));
        }
    }
    assert!(
        crates >= 8,
        "found only {crates} crates under {}",
        repo.display()
    );
    assert!(
        problems.is_empty(),
        "import cycles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_cycle_check_finds_a_cycle_through_a_use_group_and_super() {
    let known: BTreeMap<String, String> = [
        ("", "mod a; mod b; mod c;"),
        ("a", "use crate::{b::Thing, c};"),
        ("b", "pub struct Thing; fn f() { super::a::g() }"),
        // `c` is reached but reaches nothing back: no cycle through it.
        ("c", "pub fn h() {}"),
    ]
    .into_iter()
    .map(|(m, t)| (m.to_string(), t.to_string()))
    .collect();
    assert_eq!(cycles(&edges(&known)), vec!["a <-> b".to_string()]);
}
