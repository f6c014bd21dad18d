//! Air-gapped networks (issue 22, item 5): `ferry mirror` fills store A with a fixture project's whole graph
//! from the fixture upstream (the fixture checksum database relayed by it); `ferry export` writes it with
//! its records and proofs; `ferry import` checks and stores it in store B of a Ferry with no upstream at
//! all; the real go command builds the project through Ferry B alone. A bundle with one byte changed, a
//! record or tile that does not verify, or one cut short is refused, naming what failed, and store B then
//! holds nothing of it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ferry::airgap::{ExportRequest, ImportRequest, MirrorRequest};
use ferry::config::{self, Flags};
use ferry_testkit::{FixtureModule, GoHome, SumDbFixture, Upstream, write_goproxy_tree};
use futures::StreamExt;
use sha2::Digest;

use crate::harness::{Ferry, ferry_env, write_file};

/// The fixture database's name: it resolves nowhere; on the connected side only the upstream relays it.
const NAME: &str = "sum.airgap.example";

/// The project's graph: lib v1.0.0 needs dep v1.1.0; old v1.0.0 needs dep v1.0.0, whose go.mod the go
/// command reads (and whose zip it never needs).
fn modules() -> Vec<FixtureModule> {
    let lib = FixtureModule::package("example.com/lib", "v1.0.0")
        .with_go_mod("module example.com/lib\n\ngo 1.21\n\nrequire example.com/dep v1.1.0\n");
    let old = FixtureModule::package("example.com/old", "v1.0.0")
        .with_go_mod("module example.com/old\n\ngo 1.21\n\nrequire example.com/dep v1.0.0\n");
    vec![
        lib,
        old,
        FixtureModule::package("example.com/dep", "v1.0.0"),
        FixtureModule::package("example.com/dep", "v1.1.0"),
    ]
}

/// The project: it builds with lib and old (no go.sum: the go command asks the checksum database).
fn project(dir: &Path) -> PathBuf {
    let app = dir.join("project");
    std::fs::create_dir_all(&app).unwrap();
    write_file(
        &app,
        "go.mod",
        "module app\n\ngo 1.21\n\nrequire (\n\texample.com/lib v1.0.0\n\texample.com/old v1.0.0\n)\n",
    );
    write_file(
        &app,
        "main.go",
        "package main\n\nimport (\n\t\"example.com/lib\"\n\t\"example.com/old\"\n)\n\nfunc main() { println(lib.Version(), old.Version()) }\n",
    );
    app
}

/// A Ferry configuration on the file store `dir/NAME`, its go command's GOSUMDB the fixture's key.
fn configuration(
    dir: &Path,
    store: &str,
    goproxy: Option<&str>,
    key: &str,
    mode: &str,
) -> BTreeMap<String, String> {
    let url = format!("file://{}", dir.join(store).display());
    let work = dir.join(format!("work-{store}"));
    let mut env = ferry_env(
        dir,
        goproxy,
        &[
            ("FERRY_STORAGE", &url),
            ("GOSUMDB", key),
            ("FERRY_SUMDBS", NAME),
            ("FERRY_DOWNLOAD_MODE", mode),
        ],
    );
    env.insert("FERRY_WORK_DIR".into(), work.display().to_string());
    env
}

/// The connected side: the project's graph mirrored into store A and exported to `dir/bundle.tar.gz`; the
/// upstream and the database are gone when this returns. The key of the database.
async fn mirrored_and_exported(dir: &Path) -> (PathBuf, String) {
    let connected = connected(dir).await;
    (connected.bundle, connected.key)
}

/// The connected side, still connected: the upstream, the database, store A's configuration.
struct Connected {
    upstream: Upstream,
    /// Running while this lives.
    _sumdb: SumDbFixture,
    config: ferry::Config,
    bundle: PathBuf,
    key: String,
}

async fn connected(dir: &Path) -> Connected {
    let modules = modules();
    write_goproxy_tree(&dir.join("tree"), &modules);
    let sumdb = SumDbFixture::start(NAME, &dir.join("tree"), 0);
    let upstream = Upstream::start(modules).await;
    upstream.relay_sumdb(NAME, &sumdb.url);
    let env = configuration(dir, "a", Some(&upstream.url()), &sumdb.key, "sync");
    let config = config::load(&Flags::default(), &env).unwrap();
    let app = project(dir);
    let request = MirrorRequest {
        inputs: vec![app.join("go.mod").display().to_string()],
        jobs: 4,
        ..MirrorRequest::default()
    };
    let done = ferry::airgap::mirror(&config, &request).await.unwrap();
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    // The build list's zips (lib, old, dep v1.1.0) and dep v1.0.0's go.mod.
    assert_eq!(
        (done.versions, done.filled, done.already),
        (4, 4, 0),
        "{done:?}"
    );
    // Resumable: a second run finds every version stored.
    let again = ferry::airgap::mirror(&config, &request).await.unwrap();
    assert_eq!((again.filled, again.already), (0, 4), "{again:?}");

    // A module's `all`, from a query: lib's latest and what it builds with, in a store of its own.
    let env = configuration(dir, "c", Some(&upstream.url()), &sumdb.key, "sync");
    let all = MirrorRequest {
        inputs: vec!["example.com/lib@latest".into()],
        all: true,
        jobs: 2,
        ..MirrorRequest::default()
    };
    let config_c = config::load(&Flags::default(), &env).unwrap();
    let done = ferry::airgap::mirror(&config_c, &all).await.unwrap();
    // (Ferry fills a query's version whole when it resolves it: lib may be stored before it is asked.)
    assert_eq!(
        (done.versions, done.filled + done.already),
        (2, 2),
        "{done:?}"
    );
    assert!(done.failed.is_empty(), "{:?}", done.failed);

    let bundle = dir.join("bundle.tar.gz");
    let export = ExportRequest {
        output: bundle.clone(),
        fetch_missing: true,
        ..ExportRequest::default()
    };
    // Named versions, or those stored since a time (none yet an hour from now).
    let named = ExportRequest {
        output: dir.join("one.tar.gz"),
        versions: vec!["example.com/lib@v1.0.0".into()],
        fetch_missing: true,
        ..ExportRequest::default()
    };
    let one = ferry::airgap::export(&config, &named).await.unwrap();
    assert_eq!((one.versions, one.zips), (1, 1), "{one:?}");
    let later = ExportRequest {
        output: dir.join("none.tar.gz"),
        since: Some(std::time::SystemTime::now() + std::time::Duration::from_secs(3600)),
        ..ExportRequest::default()
    };
    let none = ferry::airgap::export(&config, &later).await.unwrap_err();
    assert!(none.to_string().contains("nothing to export"), "{none}");
    let exported = ferry::airgap::export(&config, &export).await.unwrap();
    assert_eq!((exported.versions, exported.zips), (4, 3), "{exported:?}");
    assert_eq!(exported.database, NAME);
    let key = sumdb.key.clone();
    Connected {
        upstream,
        _sumdb: sumdb,
        config,
        bundle,
        key,
    }
}

/// The air-gapped side's configuration: store B, no upstream (GOPROXY=off for its go), nothing fetched.
fn air_gapped(dir: &Path, key: &str) -> BTreeMap<String, String> {
    configuration(dir, "b", Some("off"), key, "none")
}

async fn import(
    dir: &Path,
    key: &str,
    bundle: &Path,
) -> Result<ferry::airgap::ImportSummary, String> {
    let config = config::load(&Flags::default(), &air_gapped(dir, key)).unwrap();
    std::fs::create_dir_all(dir.join("staging")).unwrap();
    let request = ImportRequest {
        file: bundle.to_path_buf(),
        staging: dir.join("staging"),
        keys: Vec::new(),
    };
    ferry::airgap::import(&config, &request)
        .await
        .map_err(|e| e.to_string())
}

/// Everything store B holds: module files and checksum-database records.
async fn store_b(dir: &Path) -> (usize, usize) {
    let store =
        ferry_storage::StorageConfig::from_url(&format!("file://{}", dir.join("b").display()))
            .unwrap()
            .open()
            .unwrap();
    let files = store.files().collect::<Vec<_>>().await.len();
    let records = store.records().list("sumdb", None).await.unwrap().len();
    (files, records)
}

/// `go build` of the project through `ferry` alone, with `vars` (GOSUMDB, GONOSUMDB...).
async fn build(dir: &Path, ferry: &Ferry, vars: &[(&str, &str)]) -> std::process::Output {
    let app = project(&dir.join("builder"));
    let home = GoHome::new(dir, &ferry.url());
    let mut command = home.command(&app, &["build", "-o", "app", "."]);
    command.envs(vars.iter().copied());
    tokio::process::Command::from(command)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_mirrored_graph_exported_and_imported_builds_through_a_ferry_with_no_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, key) = mirrored_and_exported(dir.path()).await;
    let imported = import(dir.path(), &key, &bundle).await.unwrap();
    assert_eq!(
        (imported.versions, imported.written),
        (4, 4),
        "{imported:?}"
    );
    let (files, records) = store_b(dir.path()).await;
    // 3 versions with .info, .mod and zip, 1 with .info and .mod; 4 lookups, the tiles and the note.
    assert_eq!(files, 11);
    assert!(records >= 6, "{records} records");
    // Imported twice: nothing new, nothing broken.
    let again = import(dir.path(), &key, &bundle).await.unwrap();
    assert_eq!((again.written, again.already), (0, 4), "{again:?}");

    let ferry = Ferry::from_env(&air_gapped(dir.path(), &key), &Flags::default()).await;
    // Every module the build needs is in store B (the database left out of this build: see the next test).
    let output = build(
        dir.path(),
        &ferry,
        &[("GONOSUMDB", "example.com"), ("GOSUMDB", &key)],
    )
    .await;
    assert!(
        output.status.success(),
        "go build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    ferry.stop().await;
}

/// Ferry B answers `/sumdb/NAME/` from the records import kept in its store (see "Kept in the store"): the
/// go command checks every module against the fixture database, which nothing but Ferry B stands for.
#[tokio::test]
async fn the_project_builds_on_the_air_gapped_side_with_the_checksum_database_on() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, key) = mirrored_and_exported(dir.path()).await;
    import(dir.path(), &key, &bundle).await.unwrap();
    let ferry = Ferry::from_env(&air_gapped(dir.path(), &key), &Flags::default()).await;
    let output = build(dir.path(), &ferry, &[("GOSUMDB", &key)]).await;
    assert!(
        output.status.success(),
        "go build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    ferry.stop().await;
}

/// Store B's checksum-database records written out as files, for a second GOPROXY entry (`file://`, which
/// the go command asks for `/sumdb/NAME/supported` once Ferry B, which has no route to the database, says
/// 404 there): what the go command then verifies with is exactly what import stored.
async fn serve_records_as_files(dir: &Path) -> PathBuf {
    let store =
        ferry_storage::StorageConfig::from_url(&format!("file://{}", dir.join("b").display()))
            .unwrap()
            .open()
            .unwrap();
    let records = store.records();
    let served = dir.join("served");
    let _ = std::fs::remove_dir_all(&served);
    for record in records.list(&format!("sumdb/{NAME}"), None).await.unwrap() {
        let data = records.get(&record.key).await.unwrap().unwrap();
        let path = served.join(&record.key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    write_file(&served.join(format!("sumdb/{NAME}")), "supported", "");
    served
}

/// `go build` in `app` with `home`, GOSUMDB on: sums verified against what `served` holds.
async fn build_verifying(home: &GoHome, app: &Path, key: &str) {
    let mut command = home.command(app, &["build", "-o", "app", "."]);
    command.env("GOSUMDB", key);
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "go build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What import stored is all a go command needs to verify the build, across two bundles: the second
/// (one new module, exported after the database's tree grew) is accepted by a go command that remembers the
/// first one's tree, and by a fresh one that reads lookups of both bundles.
#[tokio::test]
async fn the_records_imported_are_all_the_go_command_needs_to_verify_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let connected = connected(dir.path()).await;
    let key = connected.key.clone();
    import(dir.path(), &key, &connected.bundle).await.unwrap();
    let ferry = Ferry::from_env(&air_gapped(dir.path(), &key), &Flags::default()).await;
    let served = serve_records_as_files(dir.path()).await;
    let goproxy = format!("{},file://{}", ferry.url(), served.display());
    let remembering = GoHome::new(dir.path(), &goproxy);
    let app = project(&dir.path().join("builder"));
    build_verifying(&remembering, &app, &key).await;
    let go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap();
    assert!(go_sum.contains("example.com/lib v1.0.0 h1:"), "{go_sum}");

    // A new module on the connected side: its lookup grows the database's tree; exported alone.
    let later = FixtureModule::package("example.com/later", "v1.0.0");
    write_goproxy_tree(&dir.path().join("tree"), std::slice::from_ref(&later));
    connected.upstream.add(later);
    let request = MirrorRequest {
        inputs: vec!["example.com/later@v1.0.0".into()],
        jobs: 1,
        ..MirrorRequest::default()
    };
    ferry::airgap::mirror(&connected.config, &request)
        .await
        .unwrap();
    let second = dir.path().join("second.tar.gz");
    let export = ExportRequest {
        output: second.clone(),
        versions: vec!["example.com/later@v1.0.0".into()],
        fetch_missing: true,
        ..ExportRequest::default()
    };
    ferry::airgap::export(&connected.config, &export)
        .await
        .unwrap();
    assert!(
        tree_of(&second) > tree_of(&connected.bundle),
        "the database's tree grew"
    );
    drop(connected);
    import(dir.path(), &key, &second).await.unwrap();
    let served = serve_records_as_files(dir.path()).await;
    assert!(served.exists());
    let main_go = "package main\n\nimport (\n\t\"example.com/lib\"\n\t\"example.com/later\"\n\t\"example.com/old\"\n)\n\nfunc main() { println(lib.Version(), old.Version(), later.Version()) }\n";
    write_file(&app, "main.go", main_go);
    write_file(
        &app,
        "go.mod",
        "module app\n\ngo 1.21\n\nrequire (\n\texample.com/later v1.0.0\n\texample.com/lib v1.0.0\n\texample.com/old v1.0.0\n)\n",
    );
    build_verifying(&remembering, &app, &key).await;
    let fresh_app = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh_app).unwrap();
    for file in ["go.mod", "main.go"] {
        std::fs::copy(app.join(file), fresh_app.join(file)).unwrap();
    }
    build_verifying(&GoHome::new(dir.path(), &goproxy), &fresh_app, &key).await;
    ferry.stop().await;
}

/// The size of the tree a bundle's records are proven in (its manifest's `tree`).
fn tree_of(bundle: &Path) -> i64 {
    let reader = flate2::read::GzDecoder::new(std::fs::File::open(bundle).unwrap());
    let mut archive = tar::Archive::new(reader);
    let manifest: serde_json::Value =
        serde_json::from_reader(archive.entries().unwrap().next().unwrap().unwrap()).unwrap();
    manifest["tree"].as_i64().unwrap()
}

/// The bundle with each entry's content passed through `change` (`None` leaves it out), the end entry
/// written anew when `end` (as a tamperer who knows the format would): what is left to catch a change is the proofs.
fn repack(bundle: &Path, out: &Path, end: bool, change: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) {
    let reader = flate2::read::GzDecoder::new(std::fs::File::open(bundle).unwrap());
    let mut archive = tar::Archive::new(reader);
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(out).unwrap(),
        flate2::Compression::fast(),
    ));
    let (mut lines, mut entries) = (sha2::Sha256::new(), 0u64);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name == "ferry-bundle.end" {
            break;
        }
        let Some(data) = change(&name, data) else {
            continue;
        };
        let hash: String = sha2::Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        lines.update(format!("{name}\0{}\0{hash}\n", data.len()).as_bytes());
        entries += 1;
        append(&mut builder, &name, &data);
    }
    let digest: String = lines
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if end {
        let end = format!("{{\"entries\":{entries},\"digest\":\"{digest}\"}}");
        append(&mut builder, "ferry-bundle.end", end.as_bytes());
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
}

fn append(builder: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data).unwrap();
}

/// `data` with the byte at `at` changed.
fn flipped(mut data: Vec<u8>, at: usize) -> Vec<u8> {
    data[at] ^= 0x20;
    data
}

#[tokio::test]
async fn a_tampered_or_cut_bundle_is_refused_naming_what_failed_and_nothing_of_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, key) = mirrored_and_exported(dir.path()).await;
    let len = std::fs::metadata(&bundle).unwrap().len() as usize;
    let bytes = std::fs::read(&bundle).unwrap();
    let tampered = dir.path().join("tampered.tar.gz");
    let refused = async |what: &str, says: &[&str]| {
        let error = import(dir.path(), &key, &tampered).await.expect_err(what);
        for said in says {
            assert!(error.contains(said), "{what}: {error}");
        }
        assert_eq!(
            store_b(dir.path()).await,
            (0, 0),
            "{what}: something was stored"
        );
    };

    // One byte of the file changed: gzip's check or the end entry's digest catches it.
    std::fs::write(&tampered, flipped(bytes.clone(), len / 2)).unwrap();
    refused("one byte changed", &["nothing was stored"]).await;
    // Cut short: in the middle of an entry, and between two entries (its end entry gone).
    std::fs::write(&tampered, &bytes[..len * 2 / 3]).unwrap();
    refused("cut in the middle", &["cut short", "nothing was stored"]).await;
    repack(&bundle, &tampered, false, |_, data| Some(data));
    refused(
        "cut between two entries",
        &["cut short", "nothing was stored"],
    )
    .await;
    // A zip changed, a record changed, a tile changed, each with the bundle's digest made to match.
    repack(&bundle, &tampered, true, |name, data| {
        Some(if name.ends_with("lib/@v/v1.0.0.zip") {
            flipped(data.clone(), data.len() / 2)
        } else {
            data
        })
    });
    refused(
        "a zip changed",
        &["example.com/lib@v1.0.0", "nothing was stored"],
    )
    .await;
    repack(&bundle, &tampered, true, |name, data| {
        Some(if name.contains("/lookup/example.com/dep@v1.1.0") {
            String::from_utf8(data)
                .unwrap()
                .replacen("h1:", "h1:A", 1)
                .into_bytes()
        } else {
            data
        })
    });
    refused(
        "a record changed",
        &["example.com/dep@v1.1.0", "nothing was stored"],
    )
    .await;
    repack(&bundle, &tampered, true, |name, data| {
        Some(if name.contains("/tile/") {
            flipped(data, 3)
        } else {
            data
        })
    });
    refused("a tile changed", &["nothing was stored"]).await;
    repack(&bundle, &tampered, true, |name, data| {
        (name != "sumdb/sum.airgap.example/latest").then_some(data)
    });
    refused("the note left out", &["latest", "nothing was stored"]).await;

    // The genuine bundle still imports.
    import(dir.path(), &key, &bundle).await.unwrap();
}

/// Disk full during import: the versions before the one that did not fit are stored whole, it and those
/// after are not visible at all, and the message names it.
#[tokio::test]
async fn a_disk_that_fills_during_import_leaves_every_version_whole_or_invisible() {
    let Some(tmpfs) = ferry_testkit::Tmpfs::mount("size=2m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let big = FixtureModule::package("example.com/zbig", "v1.0.0")
        .file("blob.bin", ferry_testkit::incompressible(3 << 20));
    let modules = vec![FixtureModule::package("example.com/dep", "v1.0.0"), big];
    write_goproxy_tree(&dir.path().join("tree"), &modules);
    let sumdb = SumDbFixture::start(NAME, &dir.path().join("tree"), 0);
    let upstream = Upstream::start(modules).await;
    upstream.relay_sumdb(NAME, &sumdb.url);
    let env = configuration(dir.path(), "a", Some(&upstream.url()), &sumdb.key, "sync");
    let config = config::load(&Flags::default(), &env).unwrap();
    let request = MirrorRequest {
        inputs: vec![
            "example.com/dep@v1.0.0".into(),
            "example.com/zbig@v1.0.0".into(),
        ],
        jobs: 2,
        ..MirrorRequest::default()
    };
    let done = ferry::airgap::mirror(&config, &request).await.unwrap();
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    let bundle = dir.path().join("bundle.tar.gz");
    let export = ExportRequest {
        output: bundle.clone(),
        fetch_missing: true,
        ..ExportRequest::default()
    };
    ferry::airgap::export(&config, &export).await.unwrap();
    drop(upstream);

    let url = format!("file://{}", tmpfs.path().display());
    let mut env = air_gapped(dir.path(), &sumdb.key);
    env.insert("FERRY_STORAGE".into(), url.clone());
    let config = config::load(&Flags::default(), &env).unwrap();
    std::fs::create_dir_all(dir.path().join("staging")).unwrap();
    let request = ImportRequest {
        file: bundle,
        staging: dir.path().join("staging"),
        keys: Vec::new(),
    };
    let error = ferry::airgap::import(&config, &request)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("example.com/zbig@v1.0.0: storing it failed"),
        "{error}"
    );
    let store = ferry_storage::StorageConfig::from_url(&url)
        .unwrap()
        .open()
        .unwrap();
    let files: Vec<String> = store
        .files()
        .map(|file| {
            let file = file.unwrap();
            format!("{}@{}.{}", file.module, file.version, file.file.extension())
        })
        .collect()
        .await;
    let mut files = files;
    files.sort();
    assert_eq!(
        files,
        [
            "example.com/dep@v1.0.0.info",
            "example.com/dep@v1.0.0.mod",
            "example.com/dep@v1.0.0.zip"
        ],
        "{error}"
    );
}

/// Toolchains for the platforms listed are mirrored, exported and imported like any module (the go command
/// always verifies them, so they carry their records too).
#[tokio::test]
async fn toolchains_for_the_listed_platforms_cross_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let platforms = ["linux/amd64", "darwin/arm64"];
    let toolchains: Vec<FixtureModule> = platforms
        .iter()
        .map(|platform| {
            let version = format!("v0.0.1-go1.99.0.{}", platform.replace('/', "-"));
            FixtureModule::new("golang.org/toolchain", &version)
                .file("bin/go", "#!/bin/sh\necho fixture\n")
        })
        .collect();
    write_goproxy_tree(&dir.path().join("tree"), &toolchains);
    let sumdb = SumDbFixture::start(NAME, &dir.path().join("tree"), 0);
    let upstream = Upstream::start(toolchains).await;
    upstream.relay_sumdb(NAME, &sumdb.url);
    let env = configuration(dir.path(), "a", Some(&upstream.url()), &sumdb.key, "sync");
    let config = config::load(&Flags::default(), &env).unwrap();
    let request = MirrorRequest {
        toolchains: vec!["go1.99.0".into()],
        platforms: platforms.iter().map(ToString::to_string).collect(),
        jobs: 2,
        ..MirrorRequest::default()
    };
    let done = ferry::airgap::mirror(&config, &request).await.unwrap();
    assert_eq!((done.versions, done.filled), (2, 2), "{done:?}");
    let bundle = dir.path().join("bundle.tar.gz");
    let export = ExportRequest {
        output: bundle.clone(),
        fetch_missing: true,
        ..ExportRequest::default()
    };
    ferry::airgap::export(&config, &export).await.unwrap();
    drop(upstream);
    let imported = import(dir.path(), &sumdb.key, &bundle).await.unwrap();
    assert_eq!(imported.written, 2, "{imported:?}");
    assert_eq!(store_b(dir.path()).await.0, 6);
}
