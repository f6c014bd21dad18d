//! The module zip rules held to Go's own cases: `checkFilePathTests` and `checkTests` of
//! `golang.org/x/mod/module` (module/module_test.go), the txtar cases of `TestUnzip` and `TestCheckZip`
//! (testdata/x-mod, copied unchanged) and `sizeLimitTests` of `golang.org/x/mod/zip` (zip/zip_test.go).
//! The tables below are Copyright 2018-2019 The Go Authors, used under the BSD-style licence in
//! testdata/x-mod/LICENSE.

use std::path::{Path, PathBuf};

use ferry_module::{
    MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE, ModulePath, Version, ZipEntry, ZipRuleError, ZipRules,
    check_file_path, check_file_path_bytes,
};

/// `checkPathTests` of module/module_test.go: the path and whether `CheckFilePath` accepts it (its
/// `fileOK` column).
const CHECK_FILE_PATH_TESTS: &[(&[u8], bool)] = &[
    (b"x.y/z", true),
    (b"x.y", true),
    (b"", false),
    (b"x.y/\xFFz", false),
    (b"/x.y/z", false),
    (b"x./z", false),
    (b".x/z", true),
    (b"-x/z", true),
    (b"x..y/z", true),
    (b"x.y/z/../../w", false),
    (b"x.y//z", false),
    (b"x.y/z//w", false),
    (b"x.y/z/", false),
    (b"x.y/z/v0", true),
    (b"x.y/z/v1", true),
    (b"x.y/z/v2", true),
    (b"x.y/z/v2.0", true),
    (b"X.y/z", true),
    (b"!x.y/z", true),
    (b"_x.y/z", true),
    (b"x.y!/z", true),
    (b"x.y\"/z", false),
    (b"x.y#/z", true),
    (b"x.y$/z", true),
    (b"x.y%/z", true),
    (b"x.y&/z", true),
    (b"x.y'/z", false),
    (b"x.y(/z", true),
    (b"x.y)/z", true),
    (b"x.y*/z", false),
    (b"x.y+/z", true),
    (b"x.y,/z", true),
    (b"x.y-/z", true),
    (b"x.y./zt", false),
    (b"x.y:/z", false),
    (b"x.y;/z", false),
    (b"x.y</z", false),
    (b"x.y=/z", true),
    (b"x.y>/z", false),
    (b"x.y?/z", false),
    (b"x.y@/z", true),
    (b"x.y[/z", true),
    (b"x.y\\/z", false),
    (b"x.y]/z", true),
    (b"x.y^/z", true),
    (b"x.y_/z", true),
    (b"x.y`/z", false),
    (b"x.y{/z", true),
    (b"x.y}/z", true),
    (b"x.y~/z", true),
    (b"x.y/z!", true),
    (b"x.y/z\"", false),
    (b"x.y/z#", true),
    (b"x.y/z$", true),
    (b"x.y/z%", true),
    (b"x.y/z&", true),
    (b"x.y/z'", false),
    (b"x.y/z(", true),
    (b"x.y/z)", true),
    (b"x.y/z*", false),
    (b"x.y/z++", true),
    (b"x.y/z,", true),
    (b"x.y/z-", true),
    (b"x.y/z.t", true),
    (b"x.y/z/t", true),
    (b"x.y/z:", false),
    (b"x.y/z;", false),
    (b"x.y/z<", false),
    (b"x.y/z=", true),
    (b"x.y/z>", false),
    (b"x.y/z?", false),
    (b"x.y/z@", true),
    (b"x.y/z[", true),
    (b"x.y/z\\", false),
    (b"x.y/z]", true),
    (b"x.y/z^", true),
    (b"x.y/z_", true),
    (b"x.y/z`", false),
    (b"x.y/z{", true),
    (b"x.y/z}", true),
    (b"x.y/z~", true),
    (b"x.y/x.foo", true),
    (b"x.y/aux.foo", false),
    (b"x.y/prn", false),
    (b"x.y/prn2", true),
    (b"x.y/com", true),
    (b"x.y/com1", false),
    (b"x.y/com1.txt", false),
    (b"x.y/calm1", true),
    (b"x.y/z~", true),
    (b"x.y/z~0", true),
    (b"x.y/z~09", true),
    (b"x.y/z09", true),
    (b"x.y/z09~", true),
    (b"x.y/z09~09z", true),
    (b"x.y/z09~09z~09", true),
    (b"github.com/!123/logrus", true),
    ("github.com/user/unicode/испытание".as_bytes(), true),
    (b"../x", false),
    (b"./y", false),
    (b"x:y", false),
    (b"\\temp\\foo", false),
    (b".gitignore", true),
    (b".github/ISSUE_TEMPLATE", true),
    ("x☺y".as_bytes(), false),
];

#[test]
fn check_file_path_accepts_what_go_accepts() {
    for &(path, ok) in CHECK_FILE_PATH_TESTS {
        let got = check_file_path_bytes(path);
        assert_eq!(
            got.is_ok(),
            ok,
            "CheckFilePath({:?}) = {got:?}",
            String::from_utf8_lossy(path)
        );
    }
}

#[test]
fn check_file_path_words_each_rule_as_go() {
    // Messages as go1.26's `module.CheckFilePath` prints them.
    for (path, want) in [
        (
            "../x",
            r#"malformed file path "../x": invalid path element "..""#,
        ),
        (
            "a/./b",
            r#"malformed file path "a/./b": invalid path element ".""#,
        ),
        (
            "a\\..\\b",
            r#"malformed file path "a\\..\\b": invalid char '\\'"#,
        ),
        (
            "con.go",
            r#"malformed file path "con.go": "con" disallowed as path element component on Windows"#,
        ),
        (
            "x/LPT9.tar.gz",
            r#"malformed file path "x/LPT9.tar.gz": "LPT9" disallowed as path element component on Windows"#,
        ),
        (
            "/etc/passwd",
            r#"malformed file path "/etc/passwd": empty path element"#,
        ),
        ("a//b", r#"malformed file path "a//b": double slash"#),
        ("a/", r#"malformed file path "a/": trailing slash"#),
        ("", r#"malformed file path "": empty string"#),
        (
            "a./b",
            r#"malformed file path "a./b": trailing dot in path element"#,
        ),
        (
            "it's.go",
            r#"malformed file path "it's.go": invalid char '\''"#,
        ),
        ("a\"b", r#"malformed file path "a\"b": invalid char '"'"#),
        ("c:x", r#"malformed file path "c:x": invalid char ':'"#),
        (
            "tab\there",
            r#"malformed file path "tab\there": invalid char '\t'"#,
        ),
        ("x☺y", r#"malformed file path "x☺y": invalid char '☺'"#),
    ] {
        assert_eq!(check_file_path(path).unwrap_err().to_string(), want);
    }
    assert_eq!(
        check_file_path_bytes(b"a/\xffz").unwrap_err().to_string(),
        r#"malformed file path "a/\xffz": invalid UTF-8"#
    );
    // Windows short names are refused in import paths only.
    assert!(check_file_path("FOO~1/x.go").is_ok());
}

/// `checkTests` of module/module_test.go: `module.Check(path, version)`, which `CheckZip` runs first. A
/// path or version that is not even valid cannot be a `ModulePath` or `Version`.
#[test]
fn zip_rules_check_the_path_and_version_as_go() {
    for (path, version, ok) in [
        ("rsc.io/quote", "0.1.0", false),
        ("rsc io/quote", "v1.0.0", false),
        ("github.com/go-yaml/yaml", "v0.8.0", true),
        ("github.com/go-yaml/yaml", "v1.0.0", true),
        ("github.com/go-yaml/yaml", "v2.0.0", false),
        ("github.com/go-yaml/yaml", "v2.1.5", false),
        ("github.com/go-yaml/yaml", "v3.0.0", false),
        ("github.com/go-yaml/yaml/v2", "v1.0.0", false),
        ("github.com/go-yaml/yaml/v2", "v2.0.0", true),
        ("github.com/go-yaml/yaml/v2", "v2.1.5", true),
        ("github.com/go-yaml/yaml/v2", "v3.0.0", false),
        ("gopkg.in/yaml.v0", "v0.8.0", true),
        ("gopkg.in/yaml.v0", "v1.0.0", false),
        ("gopkg.in/yaml.v0", "v2.0.0", false),
        ("gopkg.in/yaml.v0", "v2.1.5", false),
        ("gopkg.in/yaml.v0", "v3.0.0", false),
        ("gopkg.in/yaml.v1", "v0.8.0", false),
        ("gopkg.in/yaml.v1", "v1.0.0", true),
        ("gopkg.in/yaml.v1", "v2.0.0", false),
        ("gopkg.in/yaml.v1", "v2.1.5", false),
        ("gopkg.in/yaml.v1", "v3.0.0", false),
        ("gopkg.in/check.v1", "v0.0.0", false),
        (
            "gopkg.in/check.v1",
            "v0.0.0-20160102150405-abcdef123456",
            true,
        ),
        ("gopkg.in/yaml.v2", "v1.0.0", false),
        ("gopkg.in/yaml.v2", "v2.0.0", true),
        ("gopkg.in/yaml.v2", "v2.1.5", true),
        ("gopkg.in/yaml.v2", "v3.0.0", false),
        ("rsc.io/quote", "v17.0.0", false),
        ("rsc.io/quote", "v17.0.0+incompatible", true),
    ] {
        let got = match (ModulePath::new(path), Version::new(version)) {
            (Ok(m), Ok(v)) => ZipRules::new(&m, &v).map(drop).map_err(|e| e.to_string()),
            (m, v) => Err(format!("{m:?} {v:?}")),
        };
        assert_eq!(got.is_ok(), ok, "Check({path:?}, {version:?}) = {got:?}");
    }
}

/// A txtar archive of Go's test data: the key=value lines of its comment and its files.
struct Txtar {
    keys: Vec<(String, Vec<u8>)>,
    files: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Txtar {
    fn read(path: &Path) -> Txtar {
        let data = std::fs::read(path).unwrap();
        let (mut keys, mut files) = (Vec::new(), Vec::<(Vec<u8>, Vec<u8>)>::new());
        for line in data.split_inclusive(|&b| b == b'\n') {
            let bare = line.strip_suffix(b"\n").unwrap_or(line);
            if let Some(name) = bare
                .strip_prefix(b"-- ")
                .and_then(|rest| rest.strip_suffix(b" --"))
            {
                files.push((name.to_vec(), Vec::new()));
            } else if let Some((_, content)) = files.last_mut() {
                content.extend_from_slice(line);
            } else {
                // readTest: `#` starts a comment; `key=value`, both trimmed.
                let bare = bare.split(|&b| b == b'#').next().unwrap();
                if let Some(eq) = bare.iter().position(|&b| b == b'=') {
                    let key = String::from_utf8(bare[..eq].to_vec()).unwrap();
                    keys.push((key.trim().to_string(), bare[eq + 1..].trim_ascii().to_vec()));
                }
            }
        }
        Txtar { keys, files }
    }

    fn key(&self, key: &str) -> Option<String> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata/x-mod/zip")
        .join(dir);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    cases
}

/// The rules for a case's module, or why its path or version cannot even be named.
fn rules_of(case: &Txtar) -> Result<ZipRules, String> {
    let path = case.key("path").unwrap();
    let version = case.key("version").unwrap();
    let module = ModulePath::new(&path).map_err(|e| e.to_string())?;
    let version = Version::new(&version).map_err(|e| e.to_string())?;
    ZipRules::new(&module, &version).map_err(|e| e.to_string())
}

#[test]
fn go_unzip_cases_are_refused_or_accepted_as_go_does() {
    for path in cases("unzip") {
        let case = Txtar::read(&path);
        let name = path.file_name().unwrap().to_string_lossy();
        let outcome = rules_of(&case).and_then(|mut rules| {
            case.files.iter().try_for_each(|(entry, content)| {
                rules
                    .check_entry(entry, content.len() as u64)
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
        });
        match (case.key("wantErr"), outcome) {
            (None, Ok(())) => {}
            (None, Err(e)) => panic!("{name}: refused: {e}"),
            (Some(want), Ok(())) => panic!("{name}: accepted, Go refuses it with {want:?}"),
            // Three cases name a module or version Go's `Check` refuses, in its words; `ModulePath` and
            // `Version` refuse them before any zip rule, in theirs.
            (Some(_), Err(e))
                if name.starts_with("bad_mod_path.")
                    || name.starts_with("bad_version")
                    || name.starts_with("invalid_utf8") =>
            {
                assert!(
                    e.starts_with("module path")
                        || e.starts_with("version")
                        || e.contains("Utf8Error"),
                    "{name}: {e}"
                );
            }
            (Some(want), Err(e)) => assert!(e.contains(&want), "{name}: got {e:?}, want {want:?}"),
        }
    }
}

#[test]
fn go_check_zip_cases_list_the_entries_go_lists() {
    for path in cases("check_zip") {
        let mut case = Txtar::read(&path);
        let name = path.file_name().unwrap().to_string_lossy();
        let want = case.files.iter().position(|(n, _)| n == b"want").unwrap();
        let want = String::from_utf8(case.files.remove(want).1).unwrap();
        let mut rules = rules_of(&case).unwrap();
        let (mut valid, mut invalid) = (String::new(), String::new());
        for (entry, content) in &case.files {
            match rules.check_entry(entry, content.len() as u64) {
                Ok(ZipEntry::Directory) => {}
                Ok(_) => valid.push_str(&format!("{}\n", String::from_utf8_lossy(entry))),
                Err(e) => invalid.push_str(&format!("{e}\n")),
            }
        }
        // formatCheckedFiles of zip/zip_test.go.
        let got = format!("valid:\n{valid}\nomitted:\n\ninvalid:\n{invalid}");
        assert_eq!(got, want, "{name}");
    }
}

/// `sizeLimitTests` of zip/zip_test.go, with `CheckZip`'s expected error (`wantCheckZipErr`, else
/// `wantErr`); entries are (name, declared size).
#[test]
fn go_size_limit_cases() {
    /// A case: its name, its files (name, declared size) and the error it gets, if any.
    type Case<'a> = (&'a str, &'a [(&'a str, u64)], Option<&'a str>);
    let cases: &[Case] = &[
        ("total_large", &[("large.go", MAX_ZIP_FILE)], None),
        (
            "one_too_large",
            &[("large.go", MAX_ZIP_FILE + 1)],
            Some("total uncompressed size of module contents too large"),
        ),
        (
            "total_large",
            &[("small.go", 10), ("large.go", MAX_ZIP_FILE - 10)],
            None,
        ),
        (
            "total_too_large",
            &[("small.go", 10), ("large.go", MAX_ZIP_FILE - 9)],
            Some("total uncompressed size of module contents too large"),
        ),
        ("large_gomod", &[("go.mod", MAX_GO_MOD)], None),
        (
            "too_large_gomod",
            &[("go.mod", MAX_GO_MOD + 1)],
            Some("go.mod file too large"),
        ),
        ("large_license", &[("LICENSE", MAX_LICENSE)], None),
        (
            "too_large_license",
            &[("LICENSE", MAX_LICENSE + 1)],
            Some("LICENSE file too large"),
        ),
        // A size that is not an int64 in Go.
        (
            "size_overflows",
            &[("a.go", u64::MAX)],
            Some("total uncompressed size of module contents too large"),
        ),
    ];
    let (module, version) = (
        ModulePath::new("example.com/large").unwrap(),
        Version::new("v1.0.0").unwrap(),
    );
    for (desc, files, want) in cases {
        let mut rules = ZipRules::new(&module, &version).unwrap();
        let outcome = files.iter().try_for_each(|(file, size)| {
            let entry = format!("example.com/large@v1.0.0/{file}");
            rules.check_entry(entry.as_bytes(), *size).map(drop)
        });
        match (want, outcome) {
            (None, Ok(())) => {}
            (Some(want), Err(e)) => assert!(e.to_string().contains(want), "{desc}: {e}"),
            (want, got) => panic!("{desc}: got {got:?}, want {want:?}"),
        }
    }
    assert!(ZipRules::check_zip_size(MAX_ZIP_FILE).is_ok());
    assert_eq!(
        ZipRules::check_zip_size(MAX_ZIP_FILE + 1)
            .unwrap_err()
            .to_string(),
        "module zip file is too large (524288001 bytes; limit is 524288000 bytes)"
    );
}

/// The first broken rule of a zip of example.com/m@v1.0.0 holding these entries (empty files).
fn first_error(entries: &[&[u8]]) -> Option<ZipRuleError> {
    let mut rules = ZipRules::new(
        &ModulePath::new("example.com/m").unwrap(),
        &Version::new("v1.0.0").unwrap(),
    )
    .unwrap();
    entries
        .iter()
        .find_map(|entry| rules.check_entry(entry, 0).err())
}

#[test]
fn each_rule_is_named_as_go_names_it() {
    let p = |s: &str| format!("example.com/m@v1.0.0/{s}").into_bytes();
    for (entries, want) in [
        (
            vec![p("../../../../x")],
            r#"example.com/m@v1.0.0/../../../../x: malformed file path "../../../../x": invalid path element "..""#,
        ),
        (
            vec![p("a\\..\\b")],
            r#"example.com/m@v1.0.0/a\..\b: malformed file path "a\\..\\b": invalid char '\\'"#,
        ),
        (
            vec![p("con.go")],
            r#"example.com/m@v1.0.0/con.go: malformed file path "con.go": "con" disallowed as path element component on Windows"#,
        ),
        (
            vec![p("go.mod"), p("sub/go.mod")],
            "example.com/m@v1.0.0/sub/go.mod: go.mod file not in module root directory",
        ),
        // vendor/ is no exception in a zip (only `Create` leaves vendored go.mod files out).
        (
            vec![p("vendor/example.com/x/go.mod")],
            "example.com/m@v1.0.0/vendor/example.com/x/go.mod: go.mod file not in module root directory",
        ),
        (
            vec![p("Go.Mod")],
            "example.com/m@v1.0.0/Go.Mod: go.mod files must have lowercase names",
        ),
        (
            vec![p("a/b.go"), p("A/c.go")],
            r#"example.com/m@v1.0.0/A/c.go: case-insensitive file name collision: "a" and "A""#,
        ),
        // Unicode folding: U+212A KELVIN SIGN folds with k.
        (
            vec![p("k.go"), p("\u{212A}.go")],
            "example.com/m@v1.0.0/\u{212A}.go: case-insensitive file name collision: \"k.go\" and \"\u{212A}.go\"",
        ),
        (
            vec![p("x/"), p("x")],
            r#"example.com/m@v1.0.0/x: entry "x" is both a file and a directory"#,
        ),
        (
            vec![b"example.com/m@v1.0.1/a.go".to_vec()],
            r#"example.com/m@v1.0.1/a.go: path does not have prefix "example.com/m@v1.0.0/""#,
        ),
        (
            vec![b"a.go".to_vec()],
            r#"a.go: path does not have prefix "example.com/m@v1.0.0/""#,
        ),
        (
            vec![p("a//b")],
            "example.com/m@v1.0.0/a//b: file path is not clean",
        ),
        (
            vec![p("./a")],
            "example.com/m@v1.0.0/./a: file path is not clean",
        ),
        (
            vec![p("/abs")],
            r#"example.com/m@v1.0.0//abs: malformed file path "/abs": empty path element"#,
        ),
        (
            vec![p("dir./a.go")],
            r#"example.com/m@v1.0.0/dir./a.go: malformed file path "dir./a.go": trailing dot in path element"#,
        ),
        (
            vec![p("a*.go")],
            r#"example.com/m@v1.0.0/a*.go: malformed file path "a*.go": invalid char '*'"#,
        ),
        (
            vec![b"example.com/m@v1.0.0/\xff.go".to_vec()],
            "example.com/m@v1.0.0/\u{FFFD}.go: malformed file path \"\\xff.go\": invalid UTF-8",
        ),
    ] {
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        assert_eq!(
            first_error(&refs).map(|e| e.to_string()).as_deref(),
            Some(want)
        );
    }
    // What Go accepts: directories, a bare prefix, a repeated directory, short names, Unicode letters.
    assert_eq!(
        first_error(&[
            &p(""),
            &p("d/"),
            &p("d/"),
            &p("d/FOO~1.go"),
            &p("über/x.go"),
            &p("go.mod")
        ]),
        None
    );
}

#[test]
fn the_root_go_mod_is_pointed_out() {
    let mut rules = ZipRules::new(
        &ModulePath::new("example.com/m/v2").unwrap(),
        &Version::new("v2.0.0").unwrap(),
    )
    .unwrap();
    assert_eq!(
        rules.check_entry(b"example.com/m/v2@v2.0.0/", 0),
        Ok(ZipEntry::Directory)
    );
    assert_eq!(
        rules.check_entry(b"example.com/m/v2@v2.0.0/go.mod", 9),
        Ok(ZipEntry::GoMod)
    );
    assert_eq!(
        rules.check_entry(b"example.com/m/v2@v2.0.0/a/go.mod/b.go", 9),
        Ok(ZipEntry::File)
    );
}

/// The Unicode tables are what the installed go prints (`module/gen/unicode_tables.go`).
#[test]
fn unicode_tables_are_the_go_commands() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let home = ferry_testkit::GoHome::new(scratch.path(), "off");
    let mut go = home.command(root, &["run", "module/gen/unicode_tables.go"]);
    // Building the generator needs the standard library built once; keep that across runs.
    go.env(
        "GOCACHE",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build-cache"),
    );
    let output = go.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read_to_string(root.join("module/src/unicode_tables.rs")).unwrap();
    assert!(
        String::from_utf8(output.stdout).unwrap() == committed,
        "module/src/unicode_tables.rs differs from what the installed go prints: run `go run module/gen/unicode_tables.go > module/src/unicode_tables.rs`"
    );
}
