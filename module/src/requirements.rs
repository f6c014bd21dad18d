//! The `require` directives of a go.mod file: which module versions a module needs, as the go command
//! reads them for its module graph. Used to fetch a module's requirements before a client asks for them.
//!
//! Tolerant by design: a line that is not a well-formed requirement (a directive this reader does not
//! know, a path or version that is not canonical) is skipped, never an error; the go command is the judge
//! of a go.mod, this only guesses what it will ask for next.

use crate::{ModulePath, Version};

/// The module versions a go.mod requires, in file order (`// indirect` ones included: the go command reads
/// their go.mod files too). Paths may be quoted, as Go allows.
pub fn requirements(go_mod: &str) -> Vec<(ModulePath, Version)> {
    let mut found = Vec::new();
    let mut in_block = false;
    for line in go_mod.lines() {
        let line = strip_comment(line).trim();
        if in_block {
            if line == ")" {
                in_block = false;
            } else {
                found.extend(requirement(line));
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("require") else {
            continue;
        };
        // `requirements …` is no `require` directive.
        if !(rest.starts_with(char::is_whitespace) || rest.starts_with('(')) {
            continue;
        }
        let rest = rest.trim_start();
        if rest == "(" {
            in_block = true;
        } else {
            found.extend(requirement(rest));
        }
    }
    found
}

/// Whether the go command prunes the module graph below a module with this go.mod: its `go` directive
/// says 1.17 or later. Then a build reads the go.mod files of its requirements only where they are
/// requirements of the main module too (or of an unpruned module); below an unpruned module (no `go`
/// directive, or an older one) it reads every requirement's go.mod, level after level.
pub fn prunes_graph(go_mod: &str) -> bool {
    go_mod.lines().any(|line| {
        let line = strip_comment(line).trim();
        let Some(version) = line
            .strip_prefix("go")
            .filter(|rest| rest.starts_with([' ', '\t']))
        else {
            return false;
        };
        let mut parts = version.trim().split('.');
        let major = parts.next().and_then(|p| p.parse::<u32>().ok());
        let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
        matches!((major, minor), (Some(major), Some(minor)) if major > 1 || minor >= 17)
    })
}

/// `PATH VERSION` (the path possibly quoted).
fn requirement(line: &str) -> Option<(ModulePath, Version)> {
    let mut fields = line.split_whitespace();
    let path = fields.next()?;
    let version = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    let path = path
        .strip_prefix('"')
        .and_then(|p| p.strip_suffix('"'))
        .unwrap_or(path);
    Some((ModulePath::new(path).ok()?, Version::new(version).ok()?))
}

fn strip_comment(line: &str) -> &str {
    line.find("//").map_or(line, |at| &line[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(go_mod: &str) -> Vec<String> {
        requirements(go_mod)
            .into_iter()
            .map(|(m, v)| format!("{m}@{v}"))
            .collect()
    }

    #[test]
    fn single_lines_and_blocks_are_read_and_everything_else_skipped() {
        let go_mod = r#"module example.com/app // the app

go 1.22

require example.com/a v1.2.3
require (
	example.com/b v0.1.0 // indirect
	"example.com/c" v2.0.0+incompatible
	// example.com/commented v1.0.0
	example.com/bad 1.0.0
	example.com/pseudo v0.0.0-20240102030405-abcdefabcdef

)
requirements example.com/nope v1.0.0
replace example.com/a => example.com/fork v1.2.4
exclude example.com/b v0.0.9
retract v0.9.0
require example.com/d v1.0.0 // indirect
"#;
        assert_eq!(
            pairs(go_mod),
            [
                "example.com/a@v1.2.3",
                "example.com/b@v0.1.0",
                "example.com/c@v2.0.0+incompatible",
                "example.com/pseudo@v0.0.0-20240102030405-abcdefabcdef",
                "example.com/d@v1.0.0",
            ]
        );
        assert!(requirements("").is_empty());
        assert!(prunes_graph(go_mod), "go 1.22 prunes");
        for (text, prunes) in [
            ("module m\n", false),
            ("module m\ngo 1.16\n", false),
            ("module m\ngo 1.17\n", true),
            ("module m\ngo 1.21.0\n", true),
            ("module m\n// go 1.22\n", false),
            ("module m\ngodebug x=1\n", false),
        ] {
            assert_eq!(prunes_graph(text), prunes, "{text:?}");
        }
        assert!(requirements("require (\nexample.com/x v1.0.0").len() == 1);
    }
}
