//! The documentation's links: every relative link in every `*.md` of the repository leads to a file that
//! exists, and every `#anchor` to a heading of the Markdown file it names (by GitHub's slug of the heading),
//! so that moving or renaming a section cannot silently strand a reader who follows a link to it. Links
//! inside code (fenced blocks, `inline code`) are not links and are not checked; absolute URLs are not
//! fetched.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `*.md` under `dir`, but not in build output (`target/`) or git's own directory.
fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && name != ".git" {
                markdown_files(&path, found);
            }
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

/// The text with what is code blanked out (fenced blocks and inline code spans become spaces), line
/// breaks kept, so that a byte offset in it is on the same line as in the file.
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<(char, usize)> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match (fence, marker) {
            (None, Some(c)) if run >= 3 => {
                fence = Some((c, run));
                out.push_str(&blank(line));
            }
            (Some((c, n)), Some(m)) if m == c && run >= n && trimmed.trim_end().len() == run => {
                fence = None;
                out.push_str(&blank(line));
            }
            (Some(_), _) => out.push_str(&blank(line)),
            (None, _) => out.push_str(line),
        }
    }
    blank_code_spans(&out)
}

fn blank(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect()
}

/// Inline code: a run of N backticks up to the next run of exactly N (which may be on a later line).
fn blank_code_spans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let close = loop {
            if j >= chars.len() {
                break None;
            }
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    break Some(j);
                }
                j += m;
            } else {
                j += 1;
            }
        };
        match close {
            Some(j) => {
                let span: String = chars[i..j + n].iter().collect();
                out.push_str(&blank(&span));
                i = j + n;
            }
            None => {
                // An unmatched run is literal backticks.
                out.extend(&chars[i..i + n]);
                i += n;
            }
        }
    }
    out
}

/// GitHub's anchor for a heading: the text without Markdown markup, lower-cased, every character but
/// letters, digits, `-`, `_` and spaces dropped, spaces turned into `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](target)` shows as its text.
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find("](").zip(after.find(')')) {
            Some((mid, close)) if mid < close => {
                text.push_str(&after[..mid]);
                rest = &after[close + 1..];
            }
            _ => {
                text.push('[');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors a Markdown file offers: its headings' slugs (a repeated one numbered `-1`, `-2`, ... as
/// GitHub does) and explicit `<a id="...">` / `<a name="...">` anchors.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let prose = prose(text);
    for (line, original) in prose.lines().zip(text.lines()) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            // The slug is made from the heading as written, code spans included.
            let heading = original[hashes..].trim().trim_end_matches('#').trim();
            let base = slug(heading);
            let count = seen.entry(base.clone()).or_insert(0);
            found.insert(if *count == 0 {
                base.clone()
            } else {
                format!("{base}-{count}")
            });
            *count += 1;
        }
        for attribute in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(at) = rest.find("<a ") {
                rest = &rest[at + 3..];
                let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
                if let Some(start) = tag.find(attribute) {
                    let value = &tag[start + attribute.len()..];
                    if let Some(end) = value.find('"') {
                        found.insert(value[..end].to_string());
                    }
                }
            }
        }
    }
    found
}

/// Every link target in a file's prose with its line: inline `[text](target)` and `![alt](target)`, and
/// reference definitions `[label]: target`.
fn links(text: &str) -> Vec<(usize, String)> {
    let prose = prose(text);
    let line_of = |offset: usize| prose[..offset].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = prose[from..].find("](") {
        let start = from + at + 2;
        let rest = &prose[start..];
        let target = if let Some(angled) = rest.strip_prefix('<') {
            angled.split('>').next().unwrap_or("").to_string()
        } else {
            // Up to the `)` that closes the link, allowing balanced parentheses inside it.
            let mut depth = 0;
            let end = rest
                .char_indices()
                .find(|(_, c)| match c {
                    '(' => {
                        depth += 1;
                        false
                    }
                    ')' if depth == 0 => true,
                    ')' => {
                        depth -= 1;
                        false
                    }
                    '\n' => true,
                    _ => false,
                })
                .map_or(rest.len(), |(i, _)| i);
            // A title (`[text](target "title")`) follows a space.
            rest[..end]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        };
        found.push((line_of(start), target));
        from = start;
    }
    let mut offset = 0;
    for line in prose.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(label_end) = trimmed.strip_prefix('[').and_then(|r| r.find("]:")) {
            let target = trimmed[1 + label_end + 2..].split_whitespace().next();
            if let Some(target) = target {
                found.push((line_of(offset), target.to_string()));
            }
        }
        offset += line.len();
    }
    found
}

/// `%20` and friends in a link's path, as the browser reads them.
fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes.get(i + 1..i + 3).filter(|_| bytes[i] == b'%');
        if let Some(byte) = escaped
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` with `.` and `..` resolved without touching the file system; `None` when it climbs above `/`.
fn normalized(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// Every broken relative link and anchor in the `*.md` files under `root`, as `FILE:LINE: problem`.
fn problems(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    markdown_files(root, &mut files);
    let mut anchors_of: HashMap<PathBuf, BTreeSet<String>> = HashMap::new();
    let mut anchors_in = |file: &Path| -> BTreeSet<String> {
        anchors_of
            .entry(file.to_path_buf())
            .or_insert_with(|| anchors(&std::fs::read_to_string(file).unwrap()))
            .clone()
    };
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(root).unwrap().display().to_string();
        for (line, target) in links(&text) {
            let at = format!("{shown}:{line}");
            if target.is_empty() {
                found.push(format!("{at}: an empty link target"));
                continue;
            }
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                Some(file.clone())
            } else if let Some(from_root) = path.strip_prefix('/') {
                normalized(&root.join(percent_decoded(from_root)))
            } else {
                normalized(&file.parent().unwrap().join(percent_decoded(path)))
            };
            let Some(resolved) = resolved.filter(|p| p.starts_with(root)) else {
                found.push(format!("{at}: {target} leads outside the repository"));
                continue;
            };
            if !resolved.exists() {
                found.push(format!("{at}: {target}: no such file"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            // Only Markdown files have headings to check; GitHub's line anchors (`#L10`) of code are
            // not checked.
            let markdown = resolved.extension().is_some_and(|e| e == "md") && resolved.is_file();
            if markdown && !anchors_in(&resolved).contains(anchor) {
                found.push(format!(
                    "{at}: {target}: no heading with the anchor #{anchor}"
                ));
            }
        }
    }
    found
}

#[test]
fn every_relative_link_and_anchor_in_the_markdown_files_leads_somewhere() {
    let root = repo();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    let names: Vec<_> = files
        .iter()
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    // The walk itself is what the check rests on: it must find the front page, a guide and a crate's README.
    for expected in ["README.md", "docs/configuration.md", "proxy/README.md"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not found among {names:?}"
        );
    }
    let found = problems(&root);
    assert!(found.is_empty(), "broken links:\n{}", found.join("\n"));
}

#[test]
fn the_link_check_names_the_file_and_line_of_each_broken_link_and_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::create_dir_all(root.join("target")).unwrap();
    std::fs::write(
        root.join("README.md"),
        "# Ferry\n\
         \n\
         See [the guide](docs/guide.md#the-go-commands-environment) and [here](#ferry).\n\
         A [missing file](docs/gone.md) and a [missing anchor](docs/guide.md#nowhere).\n\
         ```sh\n\
         # not a heading, and [not a link](nowhere.md)\n\
         ```\n\
         `[not a link either](nowhere.md)`, [outside](../elsewhere.md), [web](https://example.com/x.md).\n\
         [reference]: docs/missing-too.md\n",
    )
    .unwrap();
    std::fs::write(
        root.join("docs/guide.md"),
        "# Guide\n\n## The `go` command's environment\n\nBack to [the README](../README.md#not-a-heading).\n",
    )
    .unwrap();
    // Build output is not documentation.
    std::fs::write(root.join("target/broken.md"), "[x](nowhere.md)\n").unwrap();
    assert_eq!(
        problems(&root),
        [
            "README.md:4: docs/gone.md: no such file",
            "README.md:4: docs/guide.md#nowhere: no heading with the anchor #nowhere",
            "README.md:8: ../elsewhere.md leads outside the repository",
            "README.md:9: docs/missing-too.md: no such file",
            "docs/guide.md:5: ../README.md#not-a-heading: no heading with the anchor #not-a-heading",
        ]
    );
}

#[test]
fn anchors_are_github_slugs_numbered_when_repeated() {
    let text = "# Ferry\n## The `[storage_options]` table\n## Fetching over HTTP (`native`)\n\
                ## kill -9 during cold fills\n## Notes\n## Notes\n<a id=\"fetch-slots\"></a>**Fetch slots.**\n";
    let want: BTreeSet<String> = [
        "ferry",
        "the-storage_options-table",
        "fetching-over-http-native",
        "kill--9-during-cold-fills",
        "notes",
        "notes-1",
        "fetch-slots",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(anchors(text), want);
}
