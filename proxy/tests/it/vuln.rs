//! The Go vulnerability database under `/vuln/`: a fixture database served on 127.0.0.1 is synced into the
//! store, `govulncheck -db` (built from its Go module at a pinned version by `scripts/deploy-tools.sh`)
//! reads it through Ferry and reports the fixture module's advisory; 503 before the first sync, a changed
//! `modified` picks up a new entry (and reads only it), a failing source keeps the last copy and `/readyz`
//! says so; a `vulndb.zip` is imported by `ferry vuln import`, and a cut one is refused.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use ferry::config::Flags;
use ferry_testkit::{Behaviour, FixtureModule, GoHome, Upstream, eventually};

use crate::harness::{Ferry, ferry, ferry_env, get, request, run_async, write_file};

/// The fixture module the advisories are about, and its fixed version.
const AFFECTED: &str = "vulnfix.example/affected";
const FIXED: &str = "1.0.1";

/// A fixture vulnerability database: advisories by ID, each with its `modified`.
struct FixtureDb {
    modified: String,
    advisories: BTreeMap<String, String>,
}

impl FixtureDb {
    fn new(modified: &str, ids: &[&str]) -> FixtureDb {
        FixtureDb {
            modified: modified.to_string(),
            advisories: ids
                .iter()
                .map(|id| (id.to_string(), modified.to_string()))
                .collect(),
        }
    }

    /// Every file of the database, by path (`index/db.json`, `ID/<id>.json`, ...).
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let db = serde_json::json!({ "modified": self.modified });
        let vulns: Vec<_> = self
            .advisories
            .iter()
            .map(|(id, modified)| serde_json::json!({ "id": id, "modified": modified, "aliases": [] }))
            .collect();
        let module_vulns: Vec<_> = self
            .advisories
            .iter()
            .map(|(id, modified)| serde_json::json!({ "id": id, "modified": modified, "fixed": FIXED }))
            .collect();
        let modules = serde_json::json!([{ "path": AFFECTED, "vulns": module_vulns }]);
        files.insert("index/db.json".into(), db.to_string().into_bytes());
        files.insert(
            "index/vulns.json".into(),
            serde_json::to_vec(&vulns).unwrap(),
        );
        files.insert(
            "index/modules.json".into(),
            modules.to_string().into_bytes(),
        );
        for (id, modified) in &self.advisories {
            files.insert(format!("ID/{id}.json"), osv(id, modified).into_bytes());
        }
        files
    }

    /// Serves the database on `source`, each file also as `.json.gz`.
    fn serve_on(&self, source: &Upstream) {
        for (path, body) in self.files() {
            source.replace_file_bytes(&format!("{path}.gz"), gzip(&body));
            source.replace_file_bytes(&path, body);
        }
    }

    /// The database as a `vulndb.zip`, its files under `root`, without the files named in `leave_out`.
    fn zip(&self, root: &str, leave_out: &[&str]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (path, body) in self.files() {
            if !leave_out.contains(&path.as_str()) {
                zip.start_file(
                    format!("{root}{path}"),
                    zip::write::SimpleFileOptions::default(),
                )
                .unwrap();
                zip.write_all(&body).unwrap();
            }
        }
        zip.finish().unwrap().into_inner()
    }
}

/// An OSV entry: every version of [`AFFECTED`] before [`FIXED`] is affected through its `Version` function.
fn osv(id: &str, modified: &str) -> String {
    serde_json::json!({
        "schema_version": "1.3.1",
        "id": id,
        "modified": modified,
        "published": "2026-01-01T00:00:00Z",
        "summary": format!("Fixture advisory {id}"),
        "details": "A vulnerability in the fixture module, for Ferry's tests.",
        "affected": [{
            "package": { "name": AFFECTED, "ecosystem": "Go" },
            "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "0" }, { "fixed": FIXED }] }],
            "ecosystem_specific": { "imports": [{ "path": AFFECTED, "symbols": ["Version"] }] }
        }],
        // govulncheck's text output reads it unchecked.
        "database_specific": { "url": format!("https://vulndb.example/{id}") }
    })
    .to_string()
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A Ferry fetching modules from `goproxy` and syncing the vulnerability database from `source` every
/// second.
async fn ferry_syncing(dir: &std::path::Path, goproxy: &str, source: &str) -> Ferry {
    let vars = [("FERRY_VULN_URL", source), ("FERRY_VULN_EVERY", "1s")];
    Ferry::from_env(&ferry_env(dir, Some(goproxy), &vars), &Flags::default()).await
}

#[tokio::test]
async fn a_synced_copy_is_served_to_govulncheck_updated_on_a_change_and_kept_when_the_source_fails()
{
    let Some(govulncheck) = ferry_testkit::tool_path("govulncheck", "FERRY_TEST_GOVULNCHECK")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let modules = Upstream::start(vec![FixtureModule::package(AFFECTED, "v1.0.0")]).await;
    let source = Upstream::start(Vec::new()).await;
    source.set_behaviour(Behaviour::Fail500);
    let ferry = ferry_syncing(dir.path(), &modules.url(), &source.url()).await;

    // Before the first sync: 503 with the reason; Ferry itself is ready, and says why.
    eventually("the first sync fails", async || {
        ferry
            .get("readyz")
            .await
            .text()
            .contains("last sync failed")
    })
    .await;
    let before = ferry.get("vuln/index/db.json.gz").await;
    assert_eq!(before.status, 503, "{}", before.text());
    assert!(
        before.text().contains(
            "the vulnerability database has not been synced yet: the source could not be read (index/db.json)"
        ),
        "{}",
        before.text()
    );
    assert!(!before.text().contains(&source.url()), "{}", before.text());
    let ready = ferry.get("readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());

    let db = FixtureDb::new("2026-01-01T00:00:00Z", &["GO-2026-0001", "GO-2026-0002"]);
    db.serve_on(&source);
    source.set_behaviour(Behaviour::Serve);
    eventually("the first copy is published", async || {
        ferry.get("vuln/index/db.json").await.status == 200
    })
    .await;
    check_files(&ferry, &db).await;

    // govulncheck, on a program built through Ferry that calls the affected function.
    let db_url = format!("{}/vuln", ferry.url());
    let said =
        govulncheck_on_fixture_program(&govulncheck, dir.path(), &ferry.url(), &db_url).await;
    assert!(said.contains("GO-2026-0001"), "govulncheck said:\n{said}");
    assert!(
        said.contains(&format!("Fixed in: {AFFECTED}@v{FIXED}")),
        "govulncheck said:\n{said}"
    );

    // A new advisory and a new `modified`: only the new entry is read.
    let mut newer = FixtureDb::new("2026-02-01T00:00:00Z", &["GO-2026-0001", "GO-2026-0002"]);
    newer
        .advisories
        .insert("GO-2026-0003".into(), "2026-02-01T00:00:00Z".into());
    newer
        .advisories
        .insert("GO-2026-0001".into(), "2026-01-01T00:00:00Z".into());
    newer
        .advisories
        .insert("GO-2026-0002".into(), "2026-01-01T00:00:00Z".into());
    newer.serve_on(&source);
    eventually("the new advisory is served", async || {
        ferry.get("vuln/ID/GO-2026-0003.json").await.status == 200
    })
    .await;
    check_files(&ferry, &newer).await;
    assert_eq!(source.request_count("ID/GO-2026-0001.json"), 1);
    assert_eq!(source.request_count("ID/GO-2026-0003.json"), 1);

    // The source fails: the copy stays, readyz says so (still ready), and the metrics count it.
    source.set_behaviour(Behaviour::Fail500);
    eventually("readyz reports the failed sync", async || {
        ferry
            .get("readyz")
            .await
            .text()
            .contains("last sync failed")
    })
    .await;
    let ready = ferry.get("readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(
        ready
            .text()
            .contains("serving the copy modified 2026-02-01T00:00:00Z"),
        "{}",
        ready.text()
    );
    check_files(&ferry, &newer).await;
    let metrics = ferry.get("metrics").await.text();
    // The registry is the process's, shared by the tests running beside this one: only the series are
    // checked, not their values.
    for series in [
        "ferry_vuln_sync_total{result=\"failed\"}",
        "ferry_vuln_sync_total{result=\"updated\"}",
        "ferry_vuln_modified_seconds ",
        "ferry_vuln_entries ",
    ] {
        assert!(metrics.contains(series), "{series}: {metrics}");
    }
    ferry.stop().await;
}

/// Every file of `db` is served as the source has it, `.json.gz` as gzip of the same JSON, with its
/// caching headers; a client holding a file gets 304.
async fn check_files(ferry: &Ferry, db: &FixtureDb) {
    for (path, body) in db.files() {
        let plain = ferry.get(&format!("vuln/{path}")).await;
        assert_eq!(plain.status, 200, "{path}: {}", plain.text());
        assert_eq!(plain.body, body, "{path}");
        assert_eq!(plain.header("content-type"), "application/json");
        assert_eq!(plain.header("cache-control"), "public, max-age=300");
        let gz = ferry.get(&format!("vuln/{path}.gz")).await;
        assert_eq!(gz.status, 200, "{path}.gz");
        assert_eq!(gz.header("content-type"), "application/gzip");
        assert_eq!(gunzip(&gz.body), body, "{path}.gz");
        let etag = plain.header("etag").to_string();
        assert_ne!(etag, gz.header("etag"));
        let url = format!("{}/vuln/{path}", ferry.url());
        let again = request("GET", &url, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, 304, "{path}");
    }
    let db_json = ferry.get("vuln/index/db.json").await;
    let modified = humantime::parse_rfc3339(&db.modified).unwrap();
    assert_eq!(
        db_json.header("last-modified"),
        httpdate::fmt_http_date(modified)
    );
    let missing = ferry.get("vuln/ID/GO-1999-0001.json").await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(
        missing
            .text()
            .starts_with("not found: GO-1999-0001 is not in the vulnerability database")
    );
}

/// `govulncheck -mode source -db DB` on a program that calls [`AFFECTED`]'s `Version`, its module fetched
/// from `goproxy`: what it said.
async fn govulncheck_on_fixture_program(
    govulncheck: &std::path::Path,
    dir: &std::path::Path,
    goproxy: &str,
    db: &str,
) -> String {
    let home = GoHome::new(dir, goproxy);
    let app = dir.join("scanned");
    std::fs::create_dir_all(&app).unwrap();
    write_file(
        &app,
        "go.mod",
        &format!("module scanned\n\ngo 1.21\n\nrequire {AFFECTED} v1.0.0\n"),
    );
    write_file(
        &app,
        "main.go",
        &format!(
            "package main\n\nimport \"{AFFECTED}\"\n\nfunc main() {{ println(affected.Version()) }}\n"
        ),
    );
    let built = home.run_async(&app, &["build", "./..."]).await;
    assert_eq!(built, "");
    let mut scan = std::process::Command::new(govulncheck);
    scan.current_dir(&app)
        .env_clear()
        .envs(ferry_testkit::go_env(home.dir(), goproxy))
        .args(["-mode", "source", "-db", db, "./..."]);
    let (found, said) = run_async(scan).await;
    // govulncheck exits 3 when it finds vulnerabilities.
    assert!(!found, "govulncheck found nothing:\n{said}");
    said
}

#[tokio::test]
async fn a_vulndb_zip_is_imported_for_an_air_gapped_ferry_and_a_cut_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}", dir.path().join("store").display());
    let db = FixtureDb::new("2026-03-01T00:00:00Z", &["GO-2026-0001", "GO-2026-0002"]);
    let import = |zip: &[u8], name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, zip).unwrap();
        let mut command = ferry();
        command
            .args(["vuln", "import"])
            .arg(&path)
            .env("FERRY_STORAGE", &storage)
            .env("FERRY_VULN_URL", "none");
        run_async(command)
    };

    let (ok, said) = import(&db.zip("", &["ID/GO-2026-0002.json"]), "cut.zip").await;
    assert!(!ok, "{said}");
    assert!(
        said.contains("not a complete vulnerability database: 1 listed entries are missing: ID/GO-2026-0002.json; nothing was stored"),
        "{said}"
    );
    let (ok, said) = import(&db.zip("", &["index/modules.json"]), "noindex.zip").await;
    assert!(!ok && said.contains("index/modules.json missing"), "{said}");

    // Nothing stored: an air-gapped Ferry (no source) says how to fill it.
    let vars = [
        ("FERRY_STORAGE", storage.as_str()),
        ("FERRY_VULN_URL", "none"),
    ];
    let env = ferry_env(dir.path(), None, &vars);
    let ferry = Ferry::from_env(&env, &Flags::default()).await;
    let empty = ferry.get("vuln/index/db.json.gz").await;
    assert_eq!(empty.status, 503);
    assert!(
        empty.text().contains("ferry vuln import"),
        "{}",
        empty.text()
    );
    ferry.stop().await;

    // The database's files in a directory of their own, as a zip of the directory holds them.
    let (ok, said) = import(&db.zip("vulndb/", &[]), "vulndb.zip").await;
    assert!(ok, "{said}");
    assert!(
        said.contains("imported the vulnerability database of 2026-03-01T00:00:00Z (2 advisories)"),
        "{said}"
    );
    // A Ferry started on the store serves the copy from its first request.
    let ferry = Ferry::from_env(&env, &Flags::default()).await;
    check_files(&ferry, &db).await;
    ferry.stop().await;
}

#[tokio::test]
async fn vuln_off_answers_404_and_odd_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [("FERRY_VULN_ENABLED", "false")];
    let server = Ferry::from_env(&ferry_env(dir.path(), None, &vars), &Flags::default()).await;
    let off = server.get("vuln/index/db.json").await;
    assert_eq!(off.status, 404);
    assert!(
        off.text().contains("vuln.enabled = false"),
        "{}",
        off.text()
    );
    for path in ["vuln/index/other.json", "vuln/ID/..%2Fx.json", "vuln/"] {
        let odd = server.get(path).await;
        assert_eq!(odd.status, 404, "{path}");
        assert!(
            odd.text().starts_with("not found: "),
            "{path}: {}",
            odd.text()
        );
    }
    let (ok, said) = {
        let mut command = ferry();
        command
            .args(["vuln", "sync"])
            .env("FERRY_STORAGE", "memory://")
            .env("FERRY_VULN_URL", "ftp://x");
        run_async(command).await
    };
    assert!(
        !ok && said.contains("vuln.url \"ftp://x\" is not an http(s):// URL"),
        "{said}"
    );
    server.stop().await;
}

#[tokio::test]
async fn with_refuse_affected_the_zip_of_an_affected_version_is_403_naming_the_advisory_and_the_fix()
 {
    let dir = tempfile::tempdir().unwrap();
    let modules = Upstream::start(vec![
        FixtureModule::package(AFFECTED, "v1.0.0"),
        FixtureModule::package(AFFECTED, "v1.0.1"),
    ])
    .await;
    let source = Upstream::start(Vec::new()).await;
    FixtureDb::new("2026-01-01T00:00:00Z", &["GO-2026-0001"]).serve_on(&source);
    let vars = [
        ("FERRY_VULN_URL", source.url()),
        ("FERRY_VULN_EVERY", "1h".to_string()),
        ("FERRY_VULN_REFUSE_AFFECTED", "true".to_string()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ferry = Ferry::from_env(
        &ferry_env(dir.path(), Some(&modules.url()), &vars),
        &Flags::default(),
    )
    .await;
    eventually("the copy is published", async || {
        ferry.get("vuln/index/db.json").await.status == 200
    })
    .await;

    let zip = ferry.get(&format!("{AFFECTED}/@v/v1.0.0.zip")).await;
    assert_eq!(zip.status, 403, "{}", zip.text());
    let home = GoHome::new(dir.path(), &ferry.url());
    let app = crate::harness::app_module(dir.path());
    let refused = home
        .output_async(&app, &["get", &format!("{AFFECTED}@v1.0.0")])
        .await;
    let said = crate::harness::go_said(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "{AFFECTED}@v1.0.0 is affected by GO-2026-0001, fixed in v1.0.1"
        )),
        "{said}"
    );
    assert!(said.contains("403"), "{said}");
    // The go.mod of the affected version is served: module graphs that name it still resolve.
    let module_file = ferry.get(&format!("{AFFECTED}/@v/v1.0.0.mod")).await;
    assert_eq!(module_file.status, 200, "{}", module_file.text());

    let fixed = home
        .output_async(&app, &["get", &format!("{AFFECTED}@v1.0.1")])
        .await;
    assert!(
        fixed.status.success(),
        "{}",
        crate::harness::go_said(&fixed)
    );
    ferry.stop().await;
}

#[tokio::test]
async fn a_replica_on_the_same_store_serves_the_copy_another_synced_and_its_newer_copies() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}", dir.path().join("store").display());
    replicas_share_the_copy(dir.path(), &storage, &[]).await;
}

#[tokio::test]
async fn replicas_share_the_copy_on_s3() {
    let Some(server) = ferry_testkit::s3_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    replicas_share_the_copy(dir.path(), &server.fresh_url(), &server.env).await;
}

#[tokio::test]
async fn replicas_share_the_copy_on_gcs() {
    let Some(server) = ferry_testkit::gcs_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    replicas_share_the_copy(dir.path(), &server.fresh_url(), &server.env).await;
}

#[tokio::test]
async fn replicas_share_the_copy_on_azure() {
    let Some(server) = ferry_testkit::azure_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    replicas_share_the_copy(dir.path(), &server.fresh_url(), &server.env).await;
}

/// Two Ferrys on `storage` (with the backend's `env`): one syncs every second from a fixture source, the
/// other never reads it (`vuln.url = "none"`) and serves each copy the first one publishes; the store keeps
/// the two newest.
async fn replicas_share_the_copy(dir: &std::path::Path, storage: &str, env: &[(String, String)]) {
    let source = Upstream::start(Vec::new()).await;
    FixtureDb::new("2026-01-01T00:00:00Z", &["GO-2026-0001"]).serve_on(&source);
    let replica = |name: &str, url: &str| {
        let mut vars: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        vars.extend([
            ("FERRY_STORAGE", storage),
            ("FERRY_VULN_URL", url),
            ("FERRY_VULN_EVERY", "1s"),
        ]);
        ferry_env(&dir.join(name), None, &vars)
    };
    let a = Ferry::from_env(&replica("a", &source.url()), &Flags::default()).await;
    let b = Ferry::from_env(&replica("b", "none"), &Flags::default()).await;
    eventually("the other replica serves the first copy", async || {
        b.get("vuln/ID/GO-2026-0001.json").await.status == 200
    })
    .await;
    let mut newer = FixtureDb::new("2026-01-02T00:00:00Z", &["GO-2026-0001"]);
    newer
        .advisories
        .insert("GO-2026-0001".into(), "2026-01-01T00:00:00Z".into());
    newer
        .advisories
        .insert("GO-2026-0004".into(), "2026-01-02T00:00:00Z".into());
    newer.serve_on(&source);
    eventually("the other replica serves the newer copy", async || {
        b.get("vuln/ID/GO-2026-0004.json").await.status == 200
    })
    .await;
    check_files(&b, &newer).await;
    // A third copy: the store keeps the manifests of the two newest.
    let mut third = FixtureDb::new("2026-01-03T00:00:00Z", &["GO-2026-0001", "GO-2026-0004"]);
    third
        .advisories
        .insert("GO-2026-0001".into(), "2026-01-01T00:00:00Z".into());
    third.serve_on(&source);
    let records = a.store().records();
    eventually("two copies are kept", async || {
        let kept = records.list("vuln/generations", None).await.unwrap().len();
        b.get("vuln/index/db.json").await.body == third.files()["index/db.json"] && kept == 2
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn with_an_auth_file_vuln_needs_credentials_and_govulncheck_gives_them_in_the_db_url() {
    let Some(govulncheck) = ferry_testkit::tool_path("govulncheck", "FERRY_TEST_GOVULNCHECK")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let modules = Upstream::start(vec![FixtureModule::package(AFFECTED, "v1.0.0")]).await;
    let source = Upstream::start(Vec::new()).await;
    FixtureDb::new("2026-01-01T00:00:00Z", &["GO-2026-0001"]).serve_on(&source);
    let users = write_file(
        dir.path(),
        "users",
        &ferry_testkit::htpasswd_line("scan", "s3cret"),
    );
    let vars = [
        ("FERRY_VULN_URL", source.url()),
        ("FERRY_AUTH_FILE", users.display().to_string()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ferry = Ferry::from_env(&ferry_env(dir.path(), None, &vars), &Flags::default()).await;
    let with_credentials = format!("http://scan:s3cret@{}/vuln", ferry.addr);
    let url = format!("{}/vuln/index/db.json", ferry.url());
    let basic = {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode("scan:s3cret");
        format!("Basic {encoded}")
    };
    eventually("the copy is published", async || {
        request("GET", &url, &[("authorization", &basic)])
            .await
            .status
            == 200
    })
    .await;
    assert_eq!(get(&url).await.status, 401);
    // The go command sends credentials over HTTPS only: the module comes from the upstream itself here.
    let said =
        govulncheck_on_fixture_program(&govulncheck, dir.path(), &modules.url(), &with_credentials)
            .await;
    assert!(said.contains("GO-2026-0001"), "govulncheck said:\n{said}");
    ferry.stop().await;
}

#[tokio::test]
async fn ferry_vuln_sync_syncs_once_says_when_the_copy_is_current_and_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}", dir.path().join("store").display());
    let source = Upstream::start(Vec::new()).await;
    FixtureDb::new("2026-04-01T00:00:00Z", &["GO-2026-0001", "GO-2026-0002"]).serve_on(&source);
    let sync = || {
        let mut command = ferry();
        command
            .args(["vuln", "sync"])
            .env("FERRY_STORAGE", &storage)
            .env("FERRY_VULN_URL", source.url());
        run_async(command)
    };
    let (ok, said) = sync().await;
    assert!(ok, "{said}");
    assert!(
        said.contains(
            "synced the vulnerability database of 2026-04-01T00:00:00Z: 2 advisories, 2 read now"
        ),
        "{said}"
    );
    let (ok, said) = sync().await;
    assert!(ok, "{said}");
    assert!(
        said.contains("the vulnerability database is current (modified 2026-04-01T00:00:00Z)"),
        "{said}"
    );
    assert_eq!(source.request_count("index/modules.json"), 1);

    source.set_behaviour(Behaviour::Fail500);
    let (ok, said) = sync().await;
    assert!(!ok, "{said}");
    assert!(
        said.contains("the sync failed: the source could not be read (index/db.json)")
            && said.contains("the last copy is kept"),
        "{said}"
    );
}
