//! Go's module zip rules (`CheckZip` of `golang.org/x/mod/zip`) on every fill: a lying upstream serves zips
//! that break each rule where no checksum database applies (`GOSUMDB=off`, as for a private module), and
//! Ferry refuses each with a 502 naming the rule, storing nothing of it, as the go command through Ferry
//! sees. `ferry check-store` finds and removes such a zip stored before these checks.

use std::path::Path;

use ferry::config::Flags;
use ferry_module::{ModulePath, Version};
use ferry_storage::ModuleStoreExt;
use ferry_testkit::{FixtureModule, Upstream, capture_logs, entries, write_goproxy_tree};

use crate::harness::{Ferry, ferry, ferry_env, go_said, go_with};

/// One module per rule, each of example.com/rules/NAME@v1.0.0 with a go.mod and the files given, and
/// what Ferry's refusal (and so the go command's report of it) must say.
fn rule_breakers() -> Vec<(FixtureModule, &'static str)> {
    let m = |name: &str| FixtureModule::new(&format!("example.com/rules/{name}"), "v1.0.0");
    vec![
        (
            m("dotdot").file("../../../../x", "escaped"),
            r#"example.com/rules/dotdot@v1.0.0/../../../../x: malformed file path "../../../../x": invalid path element "..""#,
        ),
        (
            m("backslash").file("a\\..\\b", "x"),
            r#"malformed file path "a\\..\\b": invalid char '\\'"#,
        ),
        (
            m("windows").file("con.go", "package windows\n"),
            r#"malformed file path "con.go": "con" disallowed as path element component on Windows"#,
        ),
        (
            m("reserved").file("x/LPT1.tar.gz", "x"),
            r#"malformed file path "x/LPT1.tar.gz": "LPT1" disallowed as path element component on Windows"#,
        ),
        (
            m("submodule").file("sub/go.mod", "module example.com/rules/submodule/sub\n"),
            "example.com/rules/submodule@v1.0.0/sub/go.mod: go.mod file not in module root directory",
        ),
        (
            m("vendored").file("vendor/example.com/x/go.mod", "module example.com/x\n"),
            "vendor/example.com/x/go.mod: go.mod file not in module root directory",
        ),
        (
            FixtureModule::new("example.com/rules/upper", "v1.0.0")
                .without_go_mod()
                .file("GO.MOD", "module example.com/rules/upper\n"),
            "GO.MOD: go.mod files must have lowercase names",
        ),
        (
            m("casefold").file("README", "a").file("readme", "b"),
            r#"case-insensitive file name collision: "README" and "readme""#,
        ),
        (
            // U+212A KELVIN SIGN folds to k: Unicode folding, as Go's strings.EqualFold.
            m("kelvin")
                .file("k.go", "package kelvin\n")
                .file("\u{212A}.go", "package kelvin\n"),
            "case-insensitive file name collision: \"k.go\" and \"\u{212A}.go\"",
        ),
        (
            m("filedir")
                .file("a.go", "package filedir\n")
                .file("a.go/b.go", "package b\n"),
            r#"entry "a.go" is both a file and a directory"#,
        ),
        (
            m("outside").raw_entry("example.com/other@v1.0.0/x.go", "package x\n"),
            r#"example.com/other@v1.0.0/x.go: path does not have prefix "example.com/rules/outside@v1.0.0/""#,
        ),
        (
            m("doubleslash").file("a//b.go", "package b\n"),
            "example.com/rules/doubleslash@v1.0.0/a//b.go: file path is not clean",
        ),
        (
            m("dotslash").file("./a.go", "package a\n"),
            "example.com/rules/dotslash@v1.0.0/./a.go: file path is not clean",
        ),
        (
            m("char").file("what?.go", "package char\n"),
            r#"malformed file path "what?.go": invalid char '?'"#,
        ),
        (
            m("trailingdot").file("dir./x.go", "package x\n"),
            r#"malformed file path "dir./x.go": trailing dot in path element"#,
        ),
        (
            // Zeros compress to a few KiB: the upstream serves a small zip that unpacks too large.
            m("license").file("LICENSE", vec![0u8; (16 << 20) + 1]),
            "LICENSE: LICENSE file too large (max size is 16777216 bytes)",
        ),
    ]
}

/// A zip of `module` (which holds `a.go` and `b.go`) that lists `a.go` twice: zip writers refuse to
/// write that, so the second name is renamed in the zip's bytes (local header and central directory).
fn with_a_go_twice(module: &FixtureModule) -> Vec<u8> {
    let mut bytes = module.zip_bytes();
    let prefix = format!("{}@{}/", module.path(), module.version());
    let (from, to) = (format!("{prefix}b.go"), format!("{prefix}a.go"));
    let spots: Vec<usize> = (0..bytes.len() - from.len())
        .filter(|&at| bytes[at..].starts_with(from.as_bytes()))
        .collect();
    assert_eq!(spots.len(), 2, "b.go is named twice in a zip");
    for at in spots {
        bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    }
    bytes
}

/// The go command through `ferry` (`GOSUMDB=off`): `go mod download -json` of each module, and the error
/// it reports for each, by module path.
async fn go_download(
    dir: &Path,
    ferry: &Ferry,
    modules: &[&FixtureModule],
) -> Vec<(String, String)> {
    let args = ferry_testkit::mod_download_args(modules.iter().copied());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = go_with(dir, &ferry.url(), &[], &args).await;
    serde_json::Deserializer::from_slice(&output.stdout)
        .into_iter::<serde_json::Value>()
        .map(|value| {
            let value = value.unwrap_or_else(|e| panic!("{e}: {}", go_said(&output)));
            let field = |name: &str| value[name].as_str().unwrap_or_default().to_string();
            (field("Path"), field("Error"))
        })
        .collect()
}

/// The requests the upstream had for the module's zip.
fn zip_requests(upstream: &Upstream, module: &FixtureModule) -> usize {
    let zip = format!("{}/@v/{}.zip", module.path(), module.version());
    upstream
        .requests()
        .iter()
        .filter(|r| r.contains(&zip))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_that_breaks_any_of_gos_rules_is_refused_with_the_rule_and_nothing_of_it_is_stored() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut cases = rule_breakers();
    // What Go allows beside them: short names (refused in import paths only), Unicode letters, spaces.
    let allowed = FixtureModule::package("example.com/rules/allowed", "v1.0.0")
        .file("docs/FOO~1.txt", "x")
        .file("über/a b.txt", "x");
    let mut modules: Vec<FixtureModule> = cases.iter().map(|(m, _)| m.clone()).collect();
    modules.push(allowed.clone());
    let upstream = Upstream::start(modules).await;
    // A file listed twice (which the zip crate Ferry reads with would show once).
    let twice = FixtureModule::new("example.com/rules/twice", "v1.0.0")
        .file("a.go", "package twice\n")
        .file("b.go", "package twice\n");
    upstream.add(twice.clone());
    upstream.replace_file_bytes(
        "example.com/rules/twice/@v/v1.0.0.zip",
        with_a_go_twice(&twice),
    );
    cases.push((
        twice,
        r#"example.com/rules/twice@v1.0.0/a.go: multiple entries for file "a.go""#,
    ));
    let ferry = Ferry::from_env(
        &ferry_env(dir.path(), Some(&upstream.url()), &[]),
        &Flags::default(),
    )
    .await;

    // A client asks for each zip first: refused, naming the rule; the version is not stored at all.
    for (module, rule) in &cases {
        let (m, v) = (
            ModulePath::new(module.path()).unwrap(),
            Version::new(module.version()).unwrap(),
        );
        let reply = ferry
            .get(&format!("{}/@v/{}.zip", module.path(), module.version()))
            .await;
        assert_eq!(reply.status, 502, "{}: {}", module.path(), reply.text());
        assert!(
            reply.text().contains(rule),
            "{}: {}",
            module.path(),
            reply.text()
        );
        assert!(
            !reply.text().contains(&upstream.url())
                && !reply.text().contains(&*dir.path().to_string_lossy()),
            "{}",
            reply.text()
        );
        assert!(
            !ferry.store().exists(&m, &v).await.unwrap(),
            "{} listed",
            module.path()
        );
        assert!(
            !ferry.store().has_zip(&m, &v).await.unwrap(),
            "{} zip stored",
            module.path()
        );
    }

    // The go command through Ferry: each bad version fails with Ferry's 502 and its rule; the good one
    // downloads. Its .info and .mod pass their own checks and may be kept; its zip is not.
    let mut all: Vec<&FixtureModule> = cases.iter().map(|(m, _)| m).collect();
    all.push(&allowed);
    let reports = go_download(dir.path(), &ferry, &all).await;
    for (module, rule) in &cases {
        let (_, error) = reports
            .iter()
            .find(|(path, _)| path == module.path())
            .unwrap_or_else(|| panic!("go said nothing of {}: {reports:?}", module.path()));
        assert!(
            error.contains("502 Bad Gateway"),
            "{}: {error}",
            module.path()
        );
        assert!(error.contains(rule), "{}: {error}", module.path());
        let (m, v) = (
            ModulePath::new(module.path()).unwrap(),
            Version::new(module.version()).unwrap(),
        );
        assert!(
            !ferry.store().has_zip(&m, &v).await.unwrap(),
            "{} zip stored",
            module.path()
        );
        // Nothing refused is kept in place of the zip: each request fetches it again.
        assert_eq!(zip_requests(&upstream, module), 2, "{}", module.path());
    }
    let (_, error) = reports
        .iter()
        .find(|(path, _)| path == allowed.path())
        .expect("go reports the allowed module");
    assert_eq!(error, "", "Go allows these file names");
    assert!(ferry.stored(allowed.path(), "v1.0.0").await);
    ferry.stop().await;
}

/// `ferry check-store` with `args`, on the file store at `store`: its exit status and output.
async fn check_store(dir: &Path, store: &Path, args: &[&str]) -> (bool, String) {
    let mut command = ferry();
    command
        .current_dir(dir)
        .env("FERRY_STORAGE", format!("file://{}", store.display()))
        .arg("check-store")
        .args(args);
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .unwrap();
    (output.status.success(), go_said(&output))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_store_finds_and_removes_a_bad_zip_stored_before_and_the_version_is_fetched_again() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // A store filled before the rules: a bad zip of v1.0.0 stored (and served) as any other, beside a
    // good v1.1.0 and another module.
    let good = FixtureModule::package("example.com/planted", "v1.0.0");
    let bad = good.clone().file("../../../../x", "escaped");
    let neighbours = [
        FixtureModule::package("example.com/planted", "v1.1.0"),
        FixtureModule::package("example.com/Other", "v1.0.0"),
    ];
    write_goproxy_tree(&store, &[vec![bad.clone()], neighbours.to_vec()].concat());
    let upstream = Upstream::start(vec![good.clone()]).await;
    let env = ferry_env(
        dir.path(),
        Some(&upstream.url()),
        &[("FERRY_STORAGE", &format!("file://{}", store.display()))],
    );
    let ferry = Ferry::from_env(&env, &Flags::default()).await;
    let download = ["mod", "download", "-json", "example.com/planted@v1.0.0"];
    let output = go_with(dir.path(), &ferry.url(), &[], &download).await;
    assert!(!output.status.success(), "go took the bad zip");
    assert!(
        go_said(&output)
            .contains(r#"malformed file path "../../../../x": invalid path element "..""#),
        "{}",
        go_said(&output)
    );

    // Asked for whole again and again, the zip is kept in memory (a hot zip): the removal below, by
    // another process, must still reach clients.
    let zip_hits = |metrics: String| {
        let series = "ferry_cache_hits_total{cache=\"zip\"} ";
        let found = metrics.lines().find_map(|line| line.strip_prefix(series));
        found.map_or(0, |n| n.trim().parse::<u64>().unwrap())
    };
    let before = zip_hits(ferry.get("metrics").await.text());
    for _ in 0..3 {
        let reply = ferry.get("example.com/planted/@v/v1.0.0.zip").await;
        assert!(reply.status == 200 && reply.body == bad.zip_bytes()[..]);
    }
    let after = zip_hits(ferry.get("metrics").await.text());
    assert!(after > before, "no answer from memory: {before} -> {after}");

    // The check names the bad version and its rule, and fails while it remains.
    let (ok, said) = check_store(dir.path(), &store, &[]).await;
    assert!(!ok, "{said}");
    assert!(
        said.contains(r#"bad example.com/planted@v1.0.0: the zip of example.com/planted@v1.0.0 is not a valid module zip: example.com/planted@v1.0.0/../../../../x: malformed file path "../../../../x": invalid path element "..""#),
        "{said}"
    );
    assert!(said.contains("checked 3 zips: 1 bad, 0 removed"), "{said}");
    assert!(said.contains("run with --remove"), "{said}");
    assert!(
        !said.contains("v1.1.0") && !said.contains("Other"),
        "{said}"
    );

    // --remove deletes that version's files, and only them.
    let (ok, said) = check_store(dir.path(), &store, &["--remove"]).await;
    assert!(ok, "{said}");
    assert!(
        said.contains("removed example.com/planted@v1.0.0"),
        "{said}"
    );
    let left: Vec<String> = entries(&store.join("example.com/planted/@v"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("v1.0.0"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(ferry.stored("example.com/planted", "v1.1.0").await);
    assert!(ferry.stored("example.com/Other", "v1.0.0").await);
    let (ok, said) = check_store(dir.path(), &store, &[]).await;
    assert!(ok, "{said}");
    assert!(said.contains("checked 2 zips: 0 bad"), "{said}");

    // The next request fetches the version again: the go command gets the upstream's good zip.
    let output = go_with(dir.path(), &ferry.url(), &[], &download).await;
    assert!(output.status.success(), "{}", go_said(&output));
    let reply = ferry.get("example.com/planted/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body == good.zip_bytes()[..],
        "not the upstream's good zip"
    );
    ferry.stop().await;
}

/// Where Ferry leaves the fetch to `go mod download`, go applies the same rules itself and Ferry passes its
/// refusal on: the same words, without the local path of the zip go refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_mod_download_fill_refuses_the_same_zips_in_the_same_words() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(FixtureModule, &str)> = rule_breakers().into_iter().take(5).collect();
    let upstream = Upstream::start(cases.iter().map(|(m, _)| m.clone()).collect()).await;
    let env = ferry_env(
        dir.path(),
        Some(&upstream.url()),
        &[("FERRY_FETCH_NATIVE", "off")],
    );
    let ferry = Ferry::from_env(&env, &Flags::default()).await;
    for (module, rule) in &cases {
        let reply = ferry
            .get(&format!("{}/@v/{}.zip", module.path(), module.version()))
            .await;
        assert_eq!(reply.status, 502, "{}: {}", module.path(), reply.text());
        assert!(
            reply.text().contains(rule),
            "{}: {}",
            module.path(),
            reply.text()
        );
        assert!(
            !reply.text().contains(&*dir.path().to_string_lossy())
                && !reply.text().contains("gomodcache"),
            "a local path: {}",
            reply.text()
        );
        let (m, v) = (
            ModulePath::new(module.path()).unwrap(),
            Version::new(module.version()).unwrap(),
        );
        assert!(
            !ferry.store().exists(&m, &v).await.unwrap(),
            "{} listed",
            module.path()
        );
    }
    ferry.stop().await;
}
