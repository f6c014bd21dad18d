//! One route to each checksum database (issue 22): on a network whose only way out is an upstream proxy that
//! relays the database at `/sumdb/NAME/` (the database's own name resolves nowhere), Ferry's relay and its
//! fills reach it through that upstream; `supported` says 404 when no route works; private module paths are
//! never looked up; a tampering relay never passes for the database (Ferry proves what it relays when it
//! knows the database's key); toolchains, always verified, download and run. The client is the real `go` command, with `GOSUMDB` set to the fixture database's key.

use std::collections::BTreeMap;
use std::path::Path;

use ferry::config::{self, Flags};
use ferry_testkit::{
    Behaviour, FixtureModule, GoHome, SumDbFixture, Upstream, eventually, write_goproxy_tree,
};

use crate::harness::{Ferry, app_module, ferry_env, go_get_verifying, save};

/// The database's name: it resolves nowhere, so only the upstream's relay reaches it.
const NAME: &str = "sum.fixture.example";

/// The fixture database over `modules`, and an upstream proxy serving them that relays the database (when
/// `relays`).
async fn closed_network(
    dir: &Path,
    modules: &[FixtureModule],
    relays: bool,
) -> (SumDbFixture, Upstream) {
    write_goproxy_tree(&dir.join("tree"), modules);
    let sumdb = SumDbFixture::start(NAME, &dir.join("tree"), 0);
    let upstream = Upstream::start(modules.to_vec()).await;
    if relays {
        upstream.relay_sumdb(NAME, &sumdb.url);
    }
    (sumdb, upstream)
}

/// A Ferry in `mode` whose go command's `GOPROXY` is `upstream` and `GOSUMDB` the fixture's key (so it
/// knows the key, and the route is its own to find), relaying `NAME`.
async fn ferry_behind(
    dir: &Path,
    upstream: &Upstream,
    sumdb: &SumDbFixture,
    mode: &str,
    vars: &[(&str, &str)],
) -> Ferry {
    let mut all = vec![
        ("GOSUMDB", sumdb.key.as_str()),
        ("FERRY_SUMDBS", NAME),
        ("FERRY_DOWNLOAD_MODE", mode),
    ];
    all.extend_from_slice(vars);
    let env = ferry_env(dir, Some(&upstream.url()), &all);
    Ferry::from_env(&env, &Flags::default()).await
}

/// The upstream saw a request whose path starts with `prefix`.
fn asked(upstream: &Upstream, prefix: &str) -> bool {
    upstream
        .requests()
        .iter()
        .any(|path| path.starts_with(prefix))
}

#[tokio::test]
async fn go_get_and_go_mod_download_verify_through_ferry_when_only_the_upstream_reaches_the_database()
 {
    let dir = tempfile::tempdir().unwrap();
    let got = FixtureModule::package("example.com/routed", "v1.0.0");
    let downloaded = FixtureModule::package("example.com/downloaded", "v1.2.0");
    let modules = [got.clone(), downloaded.clone()];
    let (sumdb, upstream) = closed_network(dir.path(), &modules, true).await;
    let ferry = ferry_behind(dir.path(), &upstream, &sumdb, "sync", &[]).await;

    let supported = ferry.get(&format!("sumdb/{NAME}/supported")).await;
    assert_eq!(supported.status, 200, "{}", supported.text());
    let (_home, app, output) =
        go_get_verifying(dir.path(), &ferry, &sumdb.key, "example.com/routed@v1.0.0").await;
    assert!(
        output.status.success(),
        "go get failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap();
    assert!(
        go_sum.contains("example.com/routed v1.0.0 h1:")
            && go_sum.contains("example.com/routed v1.0.0/go.mod h1:"),
        "{go_sum}"
    );

    let home = GoHome::new(dir.path(), &ferry.url());
    let mut download = home.command(
        dir.path(),
        &["mod", "download", "-json", "example.com/downloaded@v1.2.0"],
    );
    download.env("GOSUMDB", &sumdb.key);
    let output = tokio::process::Command::from(download)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "go mod download failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Both were looked up through the upstream's relay: the database's own name resolves nowhere.
    for module in ["example.com/routed@v1.0.0", "example.com/downloaded@v1.2.0"] {
        assert!(
            asked(&upstream, &format!("sumdb/{NAME}/lookup/{module}")),
            "{module}: {:?}",
            upstream.requests()
        );
    }
    // One route, shared by the relay and Ferry's fills (which verified both versions before storing
    // them): the upstream was asked `supported` once.
    assert_eq!(
        upstream.request_count(&format!("sumdb/{NAME}/supported")),
        1,
        "{:?}",
        upstream.requests()
    );
    for module in ["example.com/routed", "example.com/downloaded"] {
        let stored = ferry
            .store()
            .list(&ferry_module::ModulePath::new(module).unwrap())
            .await;
        assert!(
            matches!(&stored, Ok(versions) if versions.len() == 1),
            "{module}: {stored:?}"
        );
    }
    eventually("the database saw the lookups", async || {
        sumdb
            .requests()
            .contains(&"/lookup/example.com/downloaded@v1.2.0".to_string())
    })
    .await;
    ferry.stop().await;
}

#[tokio::test]
async fn supported_is_404_when_no_route_reaches_the_database_and_a_route_that_fails_is_probed_again()
 {
    let dir = tempfile::tempdir().unwrap();
    let module = FixtureModule::package("example.com/unroutable", "v1.0.0");
    // The upstream does not relay the database, and its own name resolves nowhere: no route.
    let (sumdb, upstream) = closed_network(dir.path(), std::slice::from_ref(&module), false).await;
    // (Stored: Ferry's own fill could not verify it either.)
    let ferry = ferry_behind(dir.path(), &upstream, &sumdb, "none", &[]).await;
    save(ferry.store().as_ref(), &module).await;
    let supported = ferry.get(&format!("sumdb/{NAME}/supported")).await;
    assert_eq!(supported.status, 404, "{}", supported.text());
    let text = supported.text();
    assert!(
        text.starts_with(&format!(
            "not found: checksum database {NAME} cannot be reached from this Ferry now"
        )) && text.contains("through the upstream proxy")
            && text.contains("directly"),
        "{text}"
    );
    // The go command takes its own next route (the database itself), instead of failing through Ferry.
    let (_home, _app, output) = go_get_verifying(
        dir.path(),
        &ferry,
        &sumdb.key,
        "example.com/unroutable@v1.0.0",
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "go get verified with no route");
    assert!(
        stderr.contains(&format!(
            "https://{NAME}/lookup/example.com/unroutable@v1.0.0"
        )),
        "{stderr}"
    );
    ferry.stop().await;

    // Now the upstream relays it: a new Ferry takes that route; when the upstream breaks, the request that
    // meets it fails, and the next `supported` asks again instead of trusting the old choice.
    upstream.relay_sumdb(NAME, &sumdb.url);
    let ferry = ferry_behind(dir.path(), &upstream, &sumdb, "none", &[]).await;
    assert_eq!(
        ferry.get(&format!("sumdb/{NAME}/supported")).await.status,
        200
    );
    upstream.set_behaviour(Behaviour::Fail500);
    let latest = ferry.get(&format!("sumdb/{NAME}/latest")).await;
    assert_eq!(latest.status, 502, "{}", latest.text());
    let supported = ferry.get(&format!("sumdb/{NAME}/supported")).await;
    assert_eq!(supported.status, 404, "{}", supported.text());
    assert!(supported.text().contains("500"), "{}", supported.text());
    ferry.stop().await;
}

#[tokio::test]
async fn a_private_module_path_is_refused_with_the_gonosumdb_hint_and_no_one_hears_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let secret = FixtureModule::package("corp.example/secret", "v1.0.0");
    let listed = FixtureModule::package("hidden.example/tool", "v1.0.0");
    let public = FixtureModule::package("example.com/public", "v1.0.0");
    let modules = [secret.clone(), listed.clone(), public.clone()];
    let (sumdb, upstream) = closed_network(dir.path(), &modules, true).await;
    // Ferry's own go keeps corp.example (and every path under it) from the database; `sumdb_private` adds
    // hidden.example.
    let ferry = ferry_behind(
        dir.path(),
        &upstream,
        &sumdb,
        "sync",
        &[
            ("GONOSUMDB", "corp.example"),
            ("FERRY_SUMDB_PRIVATE", "hidden.example"),
        ],
    )
    .await;

    let refused = ferry
        .get(&format!("sumdb/{NAME}/lookup/corp.example/secret@v1.0.0"))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused
            .text()
            .starts_with("forbidden: corp.example/secret is a private module path")
            && refused
                .text()
                .contains("\"corp.example\" in this Ferry's GONOSUMDB")
            && refused.text().contains("set GONOSUMDB=corp.example"),
        "{}",
        refused.text()
    );
    let refused = ferry
        .get(&format!("sumdb/{NAME}/lookup/hidden.example/tool@v1.0.0"))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("\"hidden.example\" in this Ferry's sumdb_private")
            && refused.text().contains("set GONOSUMDB=hidden.example"),
        "{}",
        refused.text()
    );

    // A builder without GONOSUMDB: the go command stops at the 403 and shows why.
    let (_home, _app, output) =
        go_get_verifying(dir.path(), &ferry, &sumdb.key, "corp.example/secret@v1.0.0").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the private path was verified");
    assert!(
        stderr.contains("403 Forbidden") && stderr.contains("set GONOSUMDB=corp.example"),
        "{stderr}"
    );
    // With it, the module comes through Ferry, unverified as the builder asked.
    let home = GoHome::new(dir.path(), &ferry.url());
    let app = app_module(&dir.path().join("with-gonosumdb"));
    let mut get = home.command(&app, &["get", "corp.example/secret@v1.0.0"]);
    get.env("GOSUMDB", &sumdb.key)
        .env("GONOSUMDB", "corp.example");
    let output = tokio::process::Command::from(get).output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A public path is looked up as ever.
    let public = ferry
        .get(&format!("sumdb/{NAME}/lookup/example.com/public@v1.0.0"))
        .await;
    assert_eq!(public.status, 200, "{}", public.text());

    // Neither the upstream nor the database ever heard the private names: not from the relay, not from
    // Ferry's fill of corp.example/secret.
    eventually("the database logged the public lookup", async || {
        sumdb
            .requests()
            .contains(&"/lookup/example.com/public@v1.0.0".to_string())
    })
    .await;
    let heard: Vec<String> = upstream
        .requests()
        .into_iter()
        .chain(sumdb.requests())
        .filter(|path| path.contains("sumdb") || path.contains("lookup"))
        .filter(|path| path.contains("corp.example") || path.contains("hidden.example"))
        .collect();
    assert!(heard.is_empty(), "{heard:?}");
    ferry.stop().await;
}

/// The database's genuine answer to a lookup, fetched from the fixture itself.
async fn genuine_lookup(sumdb: &SumDbFixture, module: &str) -> String {
    let reply = ferry_testkit::http::get(&format!("{}/lookup/{module}", sumdb.url)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

#[tokio::test]
async fn a_relayed_lookup_that_does_not_verify_never_reaches_the_builder_as_the_databases() {
    let dir = tempfile::tempdir().unwrap();
    let forged = FixtureModule::package("example.com/forged", "v1.0.0");
    let altered = FixtureModule::package("example.com/altered", "v1.0.0");
    let modules = [forged.clone(), altered.clone()];
    let (sumdb, upstream) = closed_network(dir.path(), &modules, true).await;

    // A tree note whose signature does not verify (its root hash changed): Ferry knows the key (its go's
    // GOSUMDB), refuses the answer, and the builder sees why.
    let genuine = genuine_lookup(&sumdb, "example.com/forged@v1.0.0").await;
    let (record, note) = genuine.split_once("go.sum database tree\n").unwrap();
    let mut lines: Vec<&str> = note.split('\n').collect();
    let other_root = format!("{}=", "A".repeat(43));
    lines[1] = &other_root;
    let tampered = format!("{record}go.sum database tree\n{}", lines.join("\n"));
    assert_ne!(tampered, genuine);
    upstream.replace_file(
        &format!("sumdb/{NAME}/lookup/example.com/forged@v1.0.0"),
        &tampered,
    );
    let ferry = ferry_behind(dir.path(), &upstream, &sumdb, "none", &[]).await;
    save(ferry.store().as_ref(), &forged).await;
    save(ferry.store().as_ref(), &altered).await;
    let (_home, app, output) =
        go_get_verifying(dir.path(), &ferry, &sumdb.key, "example.com/forged@v1.0.0").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "go get accepted a forged note");
    assert!(
        stderr.contains("502 Bad Gateway")
            && stderr.contains("SECURITY ERROR: the answer does not verify")
            && stderr.contains("invalid signature"),
        "{stderr}"
    );
    assert!(
        !std::fs::read_to_string(app.join("go.mod"))
            .unwrap()
            .contains("example.com/forged")
    );
    ferry.stop().await;

    // A record whose hash changed under a genuine note: Ferry proves the record against the tiles (its
    // verifier knows the key) and refuses the answer, saying why; nothing of it is kept.
    let genuine = genuine_lookup(&sumdb, "example.com/altered@v1.0.0").await;
    let zip_line = genuine
        .lines()
        .find(|line| line.starts_with("example.com/altered v1.0.0 h1:"))
        .unwrap();
    let other_hash = format!("example.com/altered v1.0.0 h1:{}=", "B".repeat(43));
    let tampered = genuine.replace(zip_line, &other_hash);
    upstream.replace_file(
        &format!("sumdb/{NAME}/lookup/example.com/altered@v1.0.0"),
        &tampered,
    );
    let ferry = ferry_behind(dir.path(), &upstream, &sumdb, "none", &[]).await;
    save(ferry.store().as_ref(), &altered).await;
    let (_home, app, output) =
        go_get_verifying(dir.path(), &ferry, &sumdb.key, "example.com/altered@v1.0.0").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "go get accepted an altered record"
    );
    assert!(
        stderr.contains("502 Bad Gateway")
            && stderr.contains("cannot authenticate record data in server response"),
        "{stderr}"
    );
    let kept = ferry
        .store()
        .records()
        .list(&format!("sumdb/{NAME}/lookup"), None)
        .await
        .unwrap();
    assert!(kept.is_empty(), "{kept:?}");
    assert!(
        !std::fs::read_to_string(app.join("go.mod"))
            .unwrap()
            .contains("example.com/altered")
    );
    ferry.stop().await;
}

/// The go command's name for this machine's platform, as toolchain versions spell it (`linux-amd64`).
fn go_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}-{arch}", std::env::consts::OS)
}

#[tokio::test]
async fn a_toolchain_downloads_verified_and_runs_through_ferry_when_only_the_upstream_reaches_the_database()
 {
    let dir = tempfile::tempdir().unwrap();
    // A toolchain module as `GOTOOLCHAIN` fetches it (`golang.org/toolchain@v0.0.1-goVERSION.GOOS-GOARCH`),
    // whose `bin/go` is a script: the go command downloads it through GOPROXY, verifies it against GOSUMDB
    // whatever GONOSUMDB says, makes bin/ executable and runs it.
    let version = format!("v0.0.1-go1.99.0.{}", go_platform());
    // (It makes the files of bin/, pkg/tool/ and lib/ executable first: they must be there.)
    let toolchain = FixtureModule::new("golang.org/toolchain", &version)
        .file(
            "bin/go",
            "#!/bin/sh\necho \"go version go1.99.0 fixture toolchain\"\n",
        )
        .file("bin/gofmt", "#!/bin/sh\n")
        .file("pkg/tool/README", "fixture\n")
        .file("lib/README", "fixture\n");
    let (sumdb, upstream) =
        closed_network(dir.path(), std::slice::from_ref(&toolchain), true).await;
    // Ferry's GONOSUMDB covers golang.org, but not toolchains: the go command verifies them all the same,
    // so their lookups are relayed (and Ferry's fill verifies them too).
    let ferry = ferry_behind(
        dir.path(),
        &upstream,
        &sumdb,
        "sync",
        &[("GONOSUMDB", "golang.org")],
    )
    .await;

    let home = GoHome::new(dir.path(), &ferry.url());
    let mut version_command = home.command(dir.path(), &["version"]);
    version_command
        .env("GOTOOLCHAIN", "go1.99.0")
        .env("GOSUMDB", &sumdb.key)
        // GONOSUMDB does not apply to toolchains: they are verified all the same.
        .env("GONOSUMDB", "golang.org");
    let output = tokio::process::Command::from(version_command)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the toolchain did not run:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "go version go1.99.0 fixture toolchain"
    );
    assert!(
        asked(
            &upstream,
            &format!("sumdb/{NAME}/lookup/golang.org/toolchain@{version}")
        ),
        "{:?}",
        upstream.requests()
    );
    ferry.stop().await;
}

#[test]
fn start_up_says_when_toolchains_are_fetched_without_a_checksum_database() {
    let load = |vars: &[(&str, &str)]| {
        let env: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        config::load(&Flags::default(), &env).unwrap()
    };
    let warnings =
        ferry::sumdb::toolchain_warnings(&load(&[("FERRY_SUMDBS", "off"), ("GOSUMDB", "off")]));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("Ferry does not relay sum.golang.org (it relays: none (sumdbs = []))")
            && warnings[0].contains("cannot download toolchains"),
        "{}",
        warnings[0]
    );
    assert!(warnings[1].contains("GOSUMDB=off"), "{}", warnings[1]);
    // The defaults relay sum.golang.org; a Ferry that never fetches fetches no toolchain either.
    assert!(ferry::sumdb::toolchain_warnings(&load(&[])).is_empty());
    let none = load(&[("FERRY_SUMDBS", "off"), ("FERRY_DOWNLOAD_MODE", "none")]);
    assert!(ferry::sumdb::toolchain_warnings(&none).is_empty());
}

#[test]
fn a_bad_sumdb_private_pattern_stops_start_up_naming_where_it_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let load = |vars: &[(&str, &str)], file: Option<&str>| {
        let env: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let flags = Flags {
            config: file.map(|text| crate::harness::write_file(dir.path(), "ferry.toml", text)),
            ..Flags::default()
        };
        config::load(&flags, &env)
    };
    let message = load(&[("FERRY_SUMDB_PRIVATE", "corp.example/*,bad[")], None)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(
            "environment variable FERRY_SUMDB_PRIVATE: sumdb_private: pattern \"bad[\""
        ) && message.contains("sumdb_private = [\"corp.example/*\"]"),
        "{message}"
    );
    let message = load(&[], Some("sumdb_private = [\"corp.example\", \"a//b\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("ferry.toml:1:35: sumdb_private: pattern \"a//b\" never matches"),
        "{message}"
    );
    // A trailing comma or slash is no mistake, as in GONOSUMDB.
    let config = load(&[], Some("sumdb_private = \"corp.example/, \"\n")).unwrap();
    let private: Vec<&str> = config
        .sumdb
        .private
        .iter()
        .map(|p| p.pattern.as_str())
        .collect();
    assert_eq!(private, ["corp.example"]);
}
