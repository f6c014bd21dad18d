//! The download policy obeyed through the running server: every mode on every endpoint, redirects (and the
//! real `go` command following them), and where the policy comes from. Ferry is configured the way the
//! binary configures it (`config::load` over an environment map, then `build_proxy`), its `go` fetches from
//! a loopback fixture upstream, and redirects point at a second one.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ferry::config::{self, Flags};
use ferry_storage::ModuleStore;
use ferry_testkit::{FixtureModule, GoHome, Upstream};

use crate::harness::{
    Ferry, Reply, ferry_env, get, is_stored, raw_request, request, save, write_file,
};

/// How long a background (`async`, `async_redirect`) fetch may take to land in the store.
const BACKGROUND_DEADLINE: Duration = Duration::from_secs(90);

/// Configures and starts Ferry as the binary would, from `env` (and `flags`), on a loopback port.
async fn start_ferry(env: &BTreeMap<String, String>, flags: &Flags) -> Ferry {
    Ferry::from_env(env, flags).await
}

fn file_source(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// Polls the store until `module@version` is in it; fails after [`BACKGROUND_DEADLINE`].
async fn wait_until_stored(store: &dyn ModuleStore, module: &str, version: &str) {
    let started = Instant::now();
    while !is_stored(store, module, version).await {
        assert!(
            started.elapsed() < BACKGROUND_DEADLINE,
            "{module}@{version} was not stored within {BACKGROUND_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The upstream's request paths for one (escaped) module.
fn requests_for(upstream: &Upstream, escaped_module: &str) -> Vec<String> {
    let prefix = format!("{escaped_module}/");
    upstream
        .requests()
        .into_iter()
        .filter(|path| path.starts_with(&prefix))
        .collect()
}

fn info_version(reply: &Reply) -> Option<String> {
    let info: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
    info["Version"].as_str().map(str::to_string)
}

/// What one request should be answered.
#[derive(Debug, Clone)]
enum Want {
    /// 200, a `.info` naming this version.
    Info(&'static str),
    /// 200, exactly these bytes.
    Bytes(Vec<u8>),
    /// 404 whose body contains this.
    NotFound(String),
    /// 307 with exactly this `Location`.
    Redirect(String),
}

/// Compares an answer with what is wanted; `None` when it matches, else what differs.
fn mismatch(reply: &Reply, want: &Want) -> Option<String> {
    let got = format!(
        "got {} location={:?} body={:?}",
        reply.status,
        reply.header("location"),
        reply.text().chars().take(200).collect::<String>()
    );
    let matches = match want {
        Want::Info(version) => {
            reply.status == 200 && info_version(reply).as_deref() == Some(*version)
        }
        Want::Bytes(bytes) => reply.status == 200 && reply.body.as_ref() == bytes.as_slice(),
        // No 404 body names a place on the server (the download file, the store).
        Want::NotFound(text) => {
            let temp = std::env::temp_dir();
            reply.status == 404
                && reply.text().contains(text.as_str())
                && !reply.text().contains(temp.to_str().unwrap())
        }
        Want::Redirect(location) => {
            reply.status == 307
                && reply.header("location") == location
                && reply.header("cache-control") == "no-store"
        }
    };
    (!matches).then(|| {
        let want = match want {
            Want::Bytes(bytes) => format!("200 with {} bytes", bytes.len()),
            other => format!("{other:?}"),
        };
        format!("want {want}, {got}")
    })
}

const MIRROR: &str = "http://mirror.example/prefix";

/// One block per mode, each for its own host; the `async_redirect` block has a downloadURL of its own
/// (with a trailing slash), the `redirect` block uses the top-level one. Modules no block names: `none`.
const MODE_FILE: &str = r#"downloadURL = "http://mirror.example/prefix"
mode = "none"

download "sync.example" {
    mode = "sync"
}
download "async.example" {
    mode = "async"
}
download "none.example" {
    mode = "none"
}
download "redirect.example" {
    mode = "redirect"
}
download "async-redirect.example" {
    mode = "async_redirect"
    downloadURL = "http://other-mirror.example/a/b/"
}
"#;

/// Line of the `none.example` block in [`MODE_FILE`], as the 404 names it.
const NONE_BLOCK_LINE: usize = 10;

/// The requests of the table, by column: misses of `.info`/`.mod`/`.zip` (each a different version, so
/// one column's fill does not serve another's), a query `.info`, `list`, `@latest`, and a version that
/// is stored (and that the upstream does not even have).
const COLUMNS: [(&str, &str); 8] = [
    ("info", "@v/v1.0.0.info"),
    ("mod", "@v/v1.1.0.mod"),
    ("zip", "@v/v1.2.0.zip"),
    ("query info", "@v/master.info"),
    ("list", "@v/list"),
    ("latest", "@latest"),
    ("stored info", "@v/v0.1.0.info"),
    ("stored zip", "@v/v0.1.0.zip"),
];

const UPSTREAM_VERSIONS: [&str; 3] = ["v1.0.0", "v1.1.0", "v1.2.0"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mode_on_each_endpoint_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = [
        "sync.example",
        "async.example",
        "none.example",
        "redirect.example",
        "async-redirect.example",
    ];
    // The redirected module has upper case in its path, so its `Location`s show the `!` escaping. (The
    // fetched ones do not: the fixture upstream on this branch does not percent-decode the `%21` the `go`
    // command sends for `!`.)
    let module = |host: &str| match host {
        "redirect.example" => format!("{host}/Mod"),
        _ => format!("{host}/mod"),
    };
    let escaped = |host: &str| ferry_testkit::escape(&module(host));
    let fixture = |host: &str, version: &str| FixtureModule::package(&module(host), version);
    let upstream = Upstream::start(Vec::new()).await;
    for host in hosts {
        for version in UPSTREAM_VERSIONS {
            upstream.add(fixture(host, version));
        }
        upstream.alias(&module(host), "master", "v1.1.0");
    }
    let download_file = write_file(dir.path(), "download.hcl", MODE_FILE);
    let env = ferry_env(
        dir.path(),
        Some(&upstream.url()),
        &[("FERRY_DOWNLOAD_MODE", &file_source(&download_file))],
    );
    let ferry = start_ferry(&env, &Flags::default()).await;
    for host in hosts {
        save(ferry.store().as_ref(), &fixture(host, "v0.1.0")).await;
    }

    let go_mod = |host: &str, v: &str| Want::Bytes(fixture(host, v).go_mod().into_bytes());
    let zip = |host: &str, v: &str| Want::Bytes(fixture(host, v).zip_bytes());
    let merged_list = Want::Bytes(b"v0.1.0\nv1.0.0\nv1.1.0\nv1.2.0\n".to_vec());
    let being_fetched = Want::NotFound("is not stored yet; it is being fetched".into());
    let declined = Want::NotFound(format!(
        "is not stored, and the download policy does not fetch it (download \"none.example\" at line {NONE_BLOCK_LINE} of the download file)"
    ));
    let redirect = |base: &str, host: &str| -> Vec<Want> {
        COLUMNS[..6]
            .iter()
            .map(|(_, suffix)| Want::Redirect(format!("{base}/{}/{suffix}", escaped(host))))
            .collect()
    };
    let stored = |host: &str| vec![Want::Info("v0.1.0"), zip(host, "v0.1.0")];
    let table: Vec<(&str, Vec<Want>)> = vec![
        (
            "sync.example",
            vec![
                Want::Info("v1.0.0"),
                go_mod("sync.example", "v1.1.0"),
                zip("sync.example", "v1.2.0"),
                Want::Info("v1.1.0"),
                merged_list.clone(),
                Want::Info("v1.2.0"),
            ],
        ),
        (
            "async.example",
            vec![
                being_fetched.clone(),
                being_fetched.clone(),
                being_fetched.clone(),
                being_fetched.clone(),
                merged_list.clone(),
                Want::Info("v1.2.0"),
            ],
        ),
        (
            "none.example",
            vec![
                declined.clone(),
                declined.clone(),
                declined.clone(),
                declined.clone(),
                Want::Bytes(b"v0.1.0\n".to_vec()),
                Want::Info("v0.1.0"),
            ],
        ),
        ("redirect.example", redirect(MIRROR, "redirect.example")),
        (
            "async-redirect.example",
            redirect("http://other-mirror.example/a/b", "async-redirect.example"),
        ),
    ];

    let mut failures = Vec::new();
    for (host, mut wants) in table {
        wants.extend(stored(host));
        assert_eq!(wants.len(), COLUMNS.len());
        for ((column, suffix), want) in COLUMNS.iter().zip(&wants) {
            let url = format!("{}/{}/{suffix}", ferry.url(), escaped(host));
            if let Some(problem) = mismatch(&get(&url).await, want) {
                failures.push(format!("{host} {column}: {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // `none` and `redirect` never contact the upstream, not even in the background; no mode asks it for a
    // version that is stored.
    for host in ["none.example", "redirect.example"] {
        assert_eq!(
            requests_for(&upstream, &escaped(host)),
            Vec::<String>::new(),
            "{host}"
        );
        for version in UPSTREAM_VERSIONS {
            assert!(!is_stored(ferry.store().as_ref(), &module(host), version).await);
        }
    }
    assert!(
        !upstream
            .requests()
            .iter()
            .any(|path| path.contains("v0.1.0")),
        "{:?}",
        upstream.requests()
    );

    // The background modes store every version asked for shortly after; it is then served, even by
    // `async_redirect`, from the store.
    for host in ["async.example", "async-redirect.example"] {
        for version in UPSTREAM_VERSIONS {
            wait_until_stored(ferry.store().as_ref(), &module(host), version).await;
        }
        let base = format!("{}/{}", ferry.url(), escaped(host));
        let info = get(&format!("{base}/@v/v1.0.0.info")).await;
        assert_eq!(mismatch(&info, &Want::Info("v1.0.0")), None, "{host}");
        let zip_reply = get(&format!("{base}/@v/v1.2.0.zip")).await;
        assert_eq!(mismatch(&zip_reply, &zip(host, "v1.2.0")), None, "{host}");
    }
    ferry.stop().await;
}

#[tokio::test]
async fn patterns_decide_per_module_and_the_first_matching_block_wins() {
    let dir = tempfile::tempdir().unwrap();
    // No mode here fetches, so Ferry needs no upstream.
    let download_file = write_file(
        dir.path(),
        "download.hcl",
        r#"downloadURL = "http://mirror.example/top"
mode = "none"

download "corp.example/special" {
    mode = "none"
}
download "corp.example/*" {
    mode = "redirect"
}
download "*.corp.example" {
    mode = "redirect"
    downloadURL = "http://mirror.example/internal"
}
download "github.com/pkg/*" {
    mode = "redirect"
    downloadURL = "http://mirror.example/pkg"
}
download "github.com/pkg/errors" {
    mode = "none"
}
download "github.com/Azure/*" {
    mode = "redirect"
    downloadURL = "http://mirror.example/azure"
}
"#,
    );
    let env = ferry_env(
        dir.path(),
        None,
        &[("FERRY_DOWNLOAD_MODE", &file_source(&download_file))],
    );
    let ferry = start_ferry(&env, &Flags::default()).await;
    // The rule is named by its line; the download file's path on the server stays out of the body.
    let special = Want::NotFound(
        "does not fetch it (download \"corp.example/special\" at line 4 of the download file)"
            .into(),
    );
    let top_level =
        Want::NotFound("does not fetch it (top-level mode at line 2 of the download file)".into());
    let to = |prefix: &str, escaped: &str| {
        Want::Redirect(format!(
            "http://mirror.example/{prefix}/{escaped}/@v/v1.0.0.mod"
        ))
    };
    let cases = [
        // The specific block comes first, so it wins over `corp.example/*`, also for paths below it.
        ("corp.example/special", special.clone()),
        ("corp.example/special/sub", special),
        ("corp.example/other", to("top", "corp.example/other")),
        (
            "git.corp.example/team/x",
            to("internal", "git.corp.example/team/x"),
        ),
        // `github.com/pkg/errors` is decided by the earlier glob: the later block never applies.
        ("github.com/pkg/errors", to("pkg", "github.com/pkg/errors")),
        (
            "github.com/pkg/errors/v2",
            to("pkg", "github.com/pkg/errors/v2"),
        ),
        ("github.com/pkgx/errors", top_level.clone()),
        ("github.com/!azure/go", to("azure", "github.com/!azure/go")),
        // Patterns are case-sensitive on the decoded path: `azure` is not `Azure`.
        ("github.com/azure/go", top_level.clone()),
        // A pattern with one slash needs a path of at least two elements.
        ("corp.example", top_level),
    ];
    for (escaped, want) in cases {
        let reply = get(&format!("{}/{escaped}/@v/v1.0.0.mod", ferry.url())).await;
        assert_eq!(mismatch(&reply, &want), None, "{escaped}");
    }
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_follows_a_redirect_to_the_mirror_and_ferrys_own_upstream_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let module = "mirrored.example/Hello";
    let versions = ["v1.0.0", "v1.1.0"];
    let fixtures: Vec<_> = versions
        .iter()
        .map(|v| FixtureModule::package(module, v))
        .collect();
    // Both have the module: only the request logs tell which one the go command was sent to.
    let fetch_upstream = Upstream::start(fixtures.clone()).await;
    let mirror = Upstream::start(fixtures).await;
    let download_file = write_file(
        dir.path(),
        "download.hcl",
        &format!(
            "mode = \"sync\"\n\ndownload \"mirrored.example\" {{\n    mode = \"redirect\"\n    downloadURL = \"{}\"\n}}\n",
            mirror.url()
        ),
    );
    let env = ferry_env(
        dir.path(),
        Some(&fetch_upstream.url()),
        &[("FERRY_DOWNLOAD_MODE", &file_source(&download_file))],
    );
    let ferry = start_ferry(&env, &Flags::default()).await;

    let go = GoHome::new(dir.path(), &ferry.url());
    let downloaded: serde_json::Value = serde_json::from_str(
        &go.run_async(
            dir.path(),
            &["mod", "download", "-json", "mirrored.example/Hello@v1.0.0"],
        )
        .await,
    )
    .unwrap();
    let listed = go
        .run_async(dir.path(), &["list", "-m", "-versions", module])
        .await;
    assert_eq!(listed.trim(), "mirrored.example/Hello v1.0.0 v1.1.0");
    let latest: serde_json::Value = serde_json::from_str(
        &go.run_async(
            dir.path(),
            &["list", "-m", "-json", "mirrored.example/Hello@latest"],
        )
        .await,
    )
    .unwrap();
    assert_eq!(latest["Version"], "v1.1.0");

    // The go command got every file from the mirror, by way of Ferry's redirects.
    // (`list` twice: for `-versions`, and for `@latest`, which the go command resolves from the list.)
    for (file, count) in [
        ("v1.0.0.info", 1),
        ("v1.0.0.mod", 1),
        ("v1.0.0.zip", 1),
        ("list", 2),
        ("v1.1.0.info", 1),
    ] {
        assert_eq!(
            mirror.request_count(&format!("mirrored.example/!hello/@v/{file}")),
            count,
            "{file}: {:?}",
            mirror.requests()
        );
    }
    assert_eq!(fetch_upstream.requests(), Vec::<String>::new());
    for version in versions {
        assert!(!is_stored(ferry.store().as_ref(), module, version).await);
    }

    // What it downloaded is the fixture module: the same sums as from a `file://` tree of it.
    let tree = dir.path().join("tree");
    ferry_testkit::write_goproxy_tree(&tree, &[FixtureModule::package(module, "v1.0.0")]);
    let direct = GoHome::new(dir.path(), &format!("file://{}", tree.display()));
    let reference: serde_json::Value = serde_json::from_str(
        &direct
            .run_async(
                dir.path(),
                &["mod", "download", "-json", "mirrored.example/Hello@v1.0.0"],
            )
            .await,
    )
    .unwrap();
    assert!(downloaded["Sum"].as_str().unwrap().starts_with("h1:"));
    assert_eq!(
        (&downloaded["Sum"], &downloaded["GoModSum"]),
        (&reference["Sum"], &reference["GoModSum"])
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_redirect_sends_go_to_the_mirror_and_stores_the_version_from_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let module = "later.example/m";
    let fixture = FixtureModule::package(module, "v1.0.0");
    let fetch_upstream = Upstream::start(vec![fixture.clone()]).await;
    let mirror = Upstream::start(vec![fixture]).await;
    let download_file = write_file(
        dir.path(),
        "download.hcl",
        &format!(
            "mode = \"none\"\n\ndownload \"later.example\" {{\n    mode = \"async_redirect\"\n    downloadURL = \"{}\"\n}}\n",
            mirror.url()
        ),
    );
    let env = ferry_env(
        dir.path(),
        Some(&fetch_upstream.url()),
        &[("FERRY_DOWNLOAD_MODE", &file_source(&download_file))],
    );
    let ferry = start_ferry(&env, &Flags::default()).await;

    let go = GoHome::new(dir.path(), &ferry.url());
    go.run_async(
        dir.path(),
        &["mod", "download", "-json", "later.example/m@v1.0.0"],
    )
    .await;
    // The first file go asked for was not stored, so it was redirected to the mirror; the later ones may
    // already come from the store, if the background fetch was that quick.
    assert!(
        !requests_for(&mirror, "later.example/m").is_empty(),
        "the mirror was never asked"
    );

    wait_until_stored(ferry.store().as_ref(), module, "v1.0.0").await;
    assert!(
        fetch_upstream.request_count("later.example/m/@v/v1.0.0.zip") >= 1,
        "the stored copy came from Ferry's own upstream: {:?}",
        fetch_upstream.requests()
    );
    // Stored now, so served, not redirected: the mirror is not asked again.
    let mirror_requests = mirror.requests().len();
    let info = get(&format!("{}/later.example/m/@v/v1.0.0.info", ferry.url())).await;
    assert_eq!(mismatch(&info, &Want::Info("v1.0.0")), None);
    assert_eq!(mirror.requests().len(), mirror_requests);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_is_told_why_a_none_module_is_not_fetched_and_the_upstream_is_never_asked() {
    let dir = tempfile::tempdir().unwrap();
    let upstream =
        Upstream::start(vec![FixtureModule::package("private.example/x", "v1.0.0")]).await;
    let download_file = write_file(
        dir.path(),
        "download.hcl",
        "mode = \"sync\"\n\ndownload \"private.example\" {\n    mode = \"none\"\n}\n",
    );
    let env = ferry_env(
        dir.path(),
        Some(&upstream.url()),
        &[("FERRY_DOWNLOAD_MODE", &file_source(&download_file))],
    );
    let ferry = start_ferry(&env, &Flags::default()).await;
    let go = GoHome::new(dir.path(), &ferry.url());
    let output = go
        .output_async(
            dir.path(),
            &["mod", "download", "-json", "private.example/x@v1.0.0"],
        )
        .await;
    assert!(!output.status.success());
    let reported: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let error = reported["Error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "404 Not Found\n\tserver response: not found: private.example/x@v1.0.0 is not stored, and the download policy does not fetch it (download \"private.example\" at line 3 of the download file)"
        ),
        "{reported}"
    );
    let listed = go
        .output_async(
            dir.path(),
            &["list", "-m", "-versions", "private.example/x"],
        )
        .await;
    assert!(!listed.status.success(), "nothing stored, nothing listed");
    assert_eq!(upstream.requests(), Vec::<String>::new());
    ferry.stop().await;
}

#[tokio::test]
async fn redirect_location_is_rebuilt_from_the_validated_path_only() {
    let dir = tempfile::tempdir().unwrap();
    // A bare mode for every module, its target from FERRY_DOWNLOAD_URL (with a path prefix).
    let env = ferry_env(
        dir.path(),
        None,
        &[
            ("FERRY_DOWNLOAD_MODE", "redirect"),
            ("FERRY_DOWNLOAD_URL", MIRROR),
        ],
    );
    let ferry = start_ferry(&env, &Flags::default()).await;
    let redirected = [
        // Percent-encoded `!` (as the go command sends it) is decoded, validated and escaped again.
        (
            "/github.com/%21azure/go-x/@v/v1.0.0-%21r%21c.1.zip",
            "github.com/!azure/go-x/@v/v1.0.0-!r!c.1.zip",
        ),
        ("/example.com%2fa/@v/list", "example.com/a/@v/list"),
        // The query string is not part of the target.
        (
            "/example.com/a/@v/list?next=http://evil.example/",
            "example.com/a/@v/list",
        ),
        (
            "/example.com/a/@v/master.info",
            "example.com/a/@v/master.info",
        ),
        ("/example.com/a/@latest", "example.com/a/@latest"),
        (
            "/example.com/a/@v/v2.0.0+incompatible.mod",
            "example.com/a/@v/v2.0.0+incompatible.mod",
        ),
    ];
    for (path, target) in redirected {
        for method in ["GET", "HEAD"] {
            let reply = request(method, &format!("{}{path}", ferry.url()), &[]).await;
            assert_eq!(
                mismatch(&reply, &Want::Redirect(format!("{MIRROR}/{target}"))),
                None,
                "{method} {path}"
            );
        }
    }

    // Neither the Host header nor an absolute-form request target moves the redirect.
    let answer = raw_request(
        ferry.addr,
        b"GET http://evil.example/example.com/a/@v/list HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 307")
            && answer.contains(&format!("location: {MIRROR}/example.com/a/@v/list\r\n")),
        "{answer}"
    );

    // Paths that are not a valid module request are refused before any policy is consulted.
    let hostile = [
        "/example.com/a%0d%0aLocation:%20http://evil.example/@v/list",
        "/example.com/a/@v/v1.0.0%0d%0aX-Evil:%201.info",
        "/example.com/../evil.example/@v/list",
        "/example.com/%2e%2e/evil.example/@v/list",
        "//evil.example/x/@v/list",
        "/%2fevil.example/x/@v/list",
        "/%5cevil.example/x/@v/list",
        "/user@evil.example/x/@v/list",
        "/example.com/a/@v/..%2f..%2fevil.zip",
        "/example.com/a/@v/%40evil.example.info",
        "/example.com/a/@v/a%20b.info",
        "/github.com/Azure/x/@v/list",
        "/-flag.example/x/@v/list",
    ];
    for path in hostile {
        let reply = get(&format!("{}{path}", ferry.url())).await;
        assert_eq!(
            (reply.status, reply.header("location")),
            (400, ""),
            "{path}: {}",
            reply.text()
        );
    }
    ferry.stop().await;
}

/// A download file redirecting every module to `target`, as `custom:` carries it.
fn custom_source(target: &str) -> String {
    let file = format!("downloadURL = \"{target}\"\nmode = \"redirect\"\n");
    format!(
        "custom:{}",
        base64::engine::general_purpose::STANDARD.encode(file)
    )
}

/// Where Ferry, configured from `env` and `flags`, sends a request for a `.mod` it does not have: the
/// `Location` of a redirect, or the 404 text (which names the deciding rule).
async fn answer_for_mod(env: &BTreeMap<String, String>, flags: &Flags) -> String {
    // Each Ferry locks its work dir, and the one before may still be letting go of its lock (its last
    // connection task ends after `stop` returns): each gets a work dir of its own.
    let work = tempfile::tempdir().unwrap();
    let mut env = env.clone();
    env.insert(
        "FERRY_WORK_DIR".to_string(),
        work.path().display().to_string(),
    );
    let ferry = start_ferry(&env, flags).await;
    let reply = get(&format!("{}/example.com/a/@v/v1.0.0.mod", ferry.url())).await;
    ferry.stop().await;
    match reply.status {
        307 => reply.header("location").to_string(),
        404 => reply.text(),
        other => panic!("unexpected status {other}: {}", reply.text()),
    }
}

#[tokio::test]
async fn policy_sources_file_custom_athens_and_their_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "download.hcl",
        "downloadURL = \"http://mirror.example/file\"\nmode = \"redirect\"\n",
    );
    let config_file = write_file(
        dir.path(),
        "ferry.toml",
        "download_mode = \"none\"\ndownload_url = \"http://mirror.example/config\"\n",
    );
    let with_config = Flags {
        config: Some(config_file.clone()),
        ..Flags::default()
    };
    let file_mode = file_source(&file);
    let custom_mode = custom_source("http://mirror.example/custom");
    let to = |prefix: &str| format!("http://mirror.example/{prefix}/example.com/a/@v/v1.0.0.mod");
    let env = |vars: &[(&str, &str)]| ferry_env(dir.path(), None, vars);
    let no_flags = Flags::default();

    // Each source on its own. The 404 names the configuration file, not its path on the server.
    let answer = answer_for_mod(&env(&[]), &with_config).await;
    assert!(
        answer.contains(
            "does not fetch it (default mode from download mode in the configuration file)"
        ),
        "{answer}"
    );
    assert!(
        !answer.contains(&dir.path().display().to_string()),
        "{answer}"
    );
    // Each case: the environment's policy variables, the flags, and where the request is sent.
    type Variables<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Variables, &Flags, String)> = vec![
        (
            vec![("FERRY_DOWNLOAD_MODE", &file_mode)],
            &no_flags,
            to("file"),
        ),
        (
            vec![("FERRY_DOWNLOAD_MODE", &custom_mode)],
            &no_flags,
            to("custom"),
        ),
        (
            vec![("ATHENS_DOWNLOAD_MODE", &file_mode)],
            &no_flags,
            to("file"),
        ),
        (
            vec![("ATHENS_DOWNLOAD_MODE", &custom_mode)],
            &no_flags,
            to("custom"),
        ),
        // A bare mode takes its target from FERRY_DOWNLOAD_URL, else ATHENS_DOWNLOAD_URL, else the configuration's download_url.
        (
            vec![
                ("ATHENS_DOWNLOAD_MODE", "redirect"),
                ("FERRY_DOWNLOAD_URL", "http://mirror.example/env"),
            ],
            &no_flags,
            to("env"),
        ),
        (
            vec![("ATHENS_DOWNLOAD_MODE", "redirect")],
            &with_config,
            to("config"),
        ),
        // A download file has its own downloadURL: FERRY_DOWNLOAD_URL does not change it.
        (
            vec![
                ("FERRY_DOWNLOAD_MODE", &file_mode),
                ("FERRY_DOWNLOAD_URL", "http://mirror.example/env"),
            ],
            &no_flags,
            to("file"),
        ),
        // Precedence: FERRY_DOWNLOAD_MODE over ATHENS_DOWNLOAD_MODE over the configuration file.
        (
            vec![("ATHENS_DOWNLOAD_MODE", &custom_mode)],
            &with_config,
            to("custom"),
        ),
        (
            vec![
                ("FERRY_DOWNLOAD_MODE", &file_mode),
                ("ATHENS_DOWNLOAD_MODE", &custom_mode),
            ],
            &with_config,
            to("file"),
        ),
        // An empty value counts as unset.
        (
            vec![
                ("FERRY_DOWNLOAD_MODE", ""),
                ("ATHENS_DOWNLOAD_MODE", &custom_mode),
            ],
            &with_config,
            to("custom"),
        ),
    ];
    for (vars, flags, want) in cases {
        assert_eq!(
            answer_for_mod(&env(&vars), flags).await,
            want,
            "{vars:?} {flags:?}"
        );
    }
    let answer = answer_for_mod(
        &env(&[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("ATHENS_DOWNLOAD_MODE", &file_mode),
        ]),
        &with_config,
    )
    .await;
    assert!(
        answer.contains("does not fetch it (default mode from FERRY_DOWNLOAD_MODE)"),
        "{answer}"
    );
}

#[tokio::test]
async fn invalid_policy_sources_stop_the_configuration_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_file(
        dir.path(),
        "download.hcl",
        "mode = \"none\"\n\ndownload \"example.com/*\" {\n    mode = \"asyncredirect\"\n}\n",
    );
    let load = |vars: &[(&str, &str)]| {
        config::load(&Flags::default(), &ferry_env(dir.path(), None, vars))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let message = load(&[("ATHENS_DOWNLOAD_MODE", &file_source(&bad))]);
    assert!(
        message.contains(&format!(
            "{}:4:12: unknown mode \"asyncredirect\"; write mode = \"async_redirect\"",
            bad.display()
        )),
        "{message}"
    );
    let message = load(&[("FERRY_DOWNLOAD_MODE", "custom:not base64!")]);
    assert!(
        message.contains(
            "FERRY_DOWNLOAD_MODE (custom:): the value after custom: is not standard base64"
        ),
        "{message}"
    );
    let message = load(&[("FERRY_DOWNLOAD_MODE", "redirect")]);
    assert!(message.contains("set FERRY_DOWNLOAD_URL"), "{message}");
    let message = load(&[(
        "FERRY_DOWNLOAD_MODE",
        &file_source(&dir.path().join("missing.hcl")),
    )]);
    assert!(message.contains("missing.hcl"), "{message}");
}

/// Every `none`-mode 404 (`.mod`, `.info`, `.zip`, `list`, `@latest`), whichever source sets the mode (a
/// download file's block or top-level mode, a configuration file), names the rule without any path of the
/// server's: clients see the line of the download file, or "the configuration file".
#[tokio::test]
async fn none_mode_404_bodies_carry_no_path_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let download = write_file(
        dir.path(),
        "download.hcl",
        "mode = \"none\"\ndownload \"example.com/blocked\" { mode = \"none\" }\n",
    );
    let config_file = write_file(dir.path(), "ferry.toml", "download_mode = \"none\"\n");
    let from_file = file_source(&download);
    let with_config = Flags {
        config: Some(config_file),
        ..Flags::default()
    };
    let root = dir.path().display().to_string();
    for (vars, flags, rule) in [
        (
            vec![("FERRY_DOWNLOAD_MODE", from_file.as_str())],
            Flags::default(),
            "line 2 of the download file",
        ),
        (vec![], with_config, "in the configuration file"),
    ] {
        let ferry = start_ferry(&ferry_env(dir.path(), None, &vars), &flags).await;
        for path in [
            "example.com/blocked/@v/v1.0.0.mod",
            "example.com/blocked/@v/v1.0.0.info",
            "example.com/blocked/@v/v1.0.0.zip",
            "example.com/blocked/@v/list",
            "example.com/blocked/@latest",
            "example.com/other/@v/v1.0.0.mod",
        ] {
            let reply = ferry.get(path).await;
            let body = reply.text();
            assert_eq!(reply.status, 404, "{path}: {body}");
            assert!(!body.contains(&root), "{path}: a server path: {body}");
            assert!(!body.contains(".hcl") && !body.contains(".toml"), "{body}");
            if path.starts_with("example.com/blocked/") {
                assert!(body.contains(rule), "{path}: {body}");
            }
        }
        ferry.stop().await;
    }
}
