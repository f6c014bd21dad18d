//! Lookups against a real checksum database (golang.org/x/mod/sumdb serving over loopback HTTP, see
//! testdata/tlogdb): what verifies, and each way a misbehaving database is caught.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ferry_sumdb::{Client, SumdbError, VerifierKey, hash_go_mod, hash_zip};
use ferry_testkit::FixtureModule;
use support::{Database, LoopbackTransport, fixture_modules, goproxy_tree};

/// Records in the test databases: two levels of tiles (a full level-0 tile, partial ones above it).
const RECORDS: usize = 330;
/// The size of the smaller honest tree, a prefix of the full one.
const EARLIER: usize = 300;

fn client(db: &Database) -> (Client<Arc<LoopbackTransport>>, Arc<LoopbackTransport>) {
    let transport = Arc::new(LoopbackTransport::new(db));
    let key = VerifierKey::parse(&db.key).expect("the key tlogdb printed parses");
    (Client::new(key, transport.clone()), transport)
}

/// The go.sum lines of a fixture, hashed by this crate from the files the database was built from.
fn expected_lines(tree: &std::path::Path, module: &FixtureModule) -> Vec<String> {
    let dir = tree.join(ferry_testkit::escape(module.path())).join("@v");
    let version = ferry_testkit::escape(module.version());
    let zip = hash_zip(
        &dir.join(format!("{version}.zip")),
        module.path(),
        module.version(),
    )
    .expect("hash fixture zip");
    let go_mod = hash_go_mod(&std::fs::read(dir.join(format!("{version}.mod"))).unwrap());
    let (path, version) = (module.path(), module.version());
    vec![
        format!("{path} {version} {zip}"),
        format!("{path} {version}/go.mod {go_mod}"),
    ]
}

fn security_message(result: Result<impl std::fmt::Debug, SumdbError>) -> String {
    match result {
        Err(SumdbError::Security(message)) => message,
        other => panic!("want a security error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_record_of_a_330_record_database_verifies_with_the_hashes_go_computed() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &[]);
    let (client, transport) = client(&db);
    for module in &modules {
        let lines = client
            .lookup(module.path(), module.version())
            .await
            .unwrap_or_else(|e| panic!("{}@{}: {e}", module.path(), module.version()));
        assert_eq!(lines, expected_lines(tree.path(), module));
    }
    let requests = transport.take_requests();
    assert!(
        requests
            .iter()
            .any(|p| p.starts_with("lookup/example.com/!upper/!m007@v1.2.3-!r!c.1")),
        "upper case is escaped in lookups: {requests:?}"
    );
    assert!(
        !requests.iter().any(|p| p == "latest"),
        "the tree comes with each lookup"
    );
}

#[tokio::test]
async fn a_tile_is_read_once_for_each_width_a_lookup_needs() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &[]);
    let (client, transport) = client(&db);
    // Records 0 and 1 sit in the first full level-0 tile; record 329 in the partial one after it.
    for module in [&modules[0], &modules[1], &modules[RECORDS - 1], &modules[2]] {
        client
            .lookup(module.path(), module.version())
            .await
            .unwrap();
    }
    let requests = transport.take_requests();
    let count = |path: &str| requests.iter().filter(|p| *p == path).count();
    // The tree did not grow between the lookups: every tile, partial ones included, was read once.
    assert_eq!(count("tile/8/0/000"), 1, "{requests:?}");
    assert_eq!(count("tile/8/0/001.p/74"), 1, "{requests:?}");
    assert_eq!(count("tile/8/1/000.p/1"), 1, "{requests:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_proven_at_the_same_moment_ask_the_database_for_each_tile_once() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &[]);
    let (client, transport) = client(&db);
    // Tiles 100 ms away: every proof wants the tree's tiles while the first request for them is on its way.
    transport.delay_tiles(Duration::from_millis(100));
    let looked_up: Vec<&FixtureModule> = modules.iter().step_by(30).collect();
    let lookups = looked_up
        .iter()
        .map(|module| client.lookup(module.path(), module.version()));
    for (module, lines) in looked_up
        .iter()
        .zip(futures::future::join_all(lookups).await)
    {
        let lines = lines.unwrap_or_else(|e| panic!("{}: {e}", module.path()));
        assert_eq!(lines, expected_lines(tree.path(), module));
    }
    let requests = transport.take_requests();
    let lookups = requests.iter().filter(|p| p.starts_with("lookup/")).count();
    assert_eq!(lookups, looked_up.len(), "{requests:?}");
    let mut tiles: Vec<&String> = requests.iter().filter(|p| p.starts_with("tile/")).collect();
    tiles.sort();
    let asked = tiles.len();
    tiles.dedup();
    // The three tiles of a 330-record tree (a full level-0 tile, the partial one after it and the partial
    // level-1 tile), each asked once for the 11 proofs.
    assert_eq!(asked, tiles.len(), "a tile asked twice: {requests:?}");
    assert_eq!(
        tiles,
        ["tile/8/0/000", "tile/8/0/001.p/74", "tile/8/1/000.p/1"],
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_tile_that_did_not_authenticate_is_asked_again_and_the_honest_one_verifies() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let tampering = Database::start(tree.path(), &["-tamper", "tile"]);
    let honest = Database::start(tree.path(), &[]);
    let (client, transport) = client(&tampering);
    let module = &modules[0];
    let message = security_message(client.lookup(module.path(), module.version()).await);
    assert!(
        message.contains("downloaded inconsistent tile"),
        "{message}"
    );
    // The altered tile is not answered again: the next proof asks the database, which is honest now.
    transport.take_requests();
    transport.point_at(&honest);
    let lines = client
        .lookup(module.path(), module.version())
        .await
        .unwrap();
    assert_eq!(lines, expected_lines(tree.path(), module));
    let requests = transport.take_requests();
    assert!(
        requests.iter().any(|p| p == "tile/8/0/000"),
        "the tile that failed is read again: {requests:?}"
    );
}

#[tokio::test]
async fn verify_accepts_the_database_hashes_and_refuses_another_naming_module_and_both_hashes() {
    let modules = fixture_modules(60);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &[]);
    let (client, _) = client(&db);
    let module = &modules[7];
    let lines = expected_lines(tree.path(), module);
    let zip = lines[0].rsplit(' ').next().unwrap();
    let go_mod = lines[1].rsplit(' ').next().unwrap();
    let (path, version) = (module.path(), module.version());
    client
        .verify(path, version, Some(zip), Some(go_mod))
        .await
        .unwrap();
    client
        .verify(path, version, None, Some(go_mod))
        .await
        .unwrap();

    let other = hash_go_mod(b"module tampered\n");
    let message = security_message(client.verify(path, version, Some(&other), None).await);
    assert!(
        message.contains(&format!("{path}@{version}: checksum mismatch")),
        "{message}"
    );
    assert!(
        message.contains(&other) && message.contains(zip),
        "{message}"
    );
    let message = security_message(client.verify(path, version, Some(zip), Some(&other)).await);
    assert!(
        message.contains(&format!("{path}@{version}/go.mod")),
        "{message}"
    );
    assert!(
        message.contains(&other) && message.contains(go_mod),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_version_is_not_found_and_an_invalid_one_is_refused_before_any_request() {
    let modules = fixture_modules(20);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &[]);
    let (client, transport) = client(&db);
    match client.lookup(modules[0].path(), "v9.9.9").await {
        Err(SumdbError::NotFound {
            module, version, ..
        }) => {
            assert_eq!(
                (module.as_str(), version.as_str()),
                (modules[0].path(), "v9.9.9")
            );
        }
        other => panic!("want NotFound, got {other:?}"),
    }
    transport.take_requests();
    for (module, version) in [("example.com/m000", "latest"), ("../etc", "v1.0.0")] {
        let result = client.lookup(module, version).await;
        assert!(
            matches!(result, Err(SumdbError::InvalidInput(_))),
            "{result:?}"
        );
    }
    assert_eq!(transport.take_requests(), Vec::<String>::new());
}

#[tokio::test]
async fn a_record_changed_in_the_lookup_answer_is_a_security_error() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &["-tamper", "record"]);
    let (client, _) = client(&db);
    let message = security_message(client.lookup(modules[3].path(), modules[3].version()).await);
    assert!(
        message.contains("cannot authenticate record data"),
        "{message}"
    );
    assert!(message.contains(modules[3].path()), "{message}");
}

#[tokio::test]
async fn a_forged_record_with_a_matching_forged_leaf_in_its_full_tile_is_a_security_error() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &["-tamper", "forge"]);
    let (client, _) = client(&db);
    // modules[0] is record 7, in the full tile 000 whose leaves the forger recomputed.
    let message = security_message(client.lookup(modules[0].path(), modules[0].version()).await);
    assert!(
        message.contains("downloaded inconsistent tile"),
        "{message}"
    );
}

#[tokio::test]
async fn a_tile_hash_altered_by_the_database_full_or_partial_is_a_security_error() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    // Record 7 (modules[0]) is in the full tile 000, record 322 in the partial tile after it.
    for (tamper, module) in [
        ("tile", &modules[0]),
        ("partial-tile", &modules[RECORDS - 1]),
    ] {
        let db = Database::start(tree.path(), &["-tamper", tamper]);
        let (client, _) = client(&db);
        let message = security_message(client.lookup(module.path(), module.version()).await);
        assert!(
            message.contains("downloaded inconsistent tile"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_tile_of_the_wrong_length_is_a_protocol_error_naming_the_tile() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &["-tamper", "short-tile"]);
    let (client, _) = client(&db);
    match client.lookup(modules[0].path(), modules[0].version()).await {
        Err(SumdbError::Protocol { message, .. }) => {
            assert!(
                message.contains("tile/8/") && message.contains("bytes, want"),
                "{message}"
            );
        }
        other => panic!("want a protocol error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_on_one_client_across_a_growing_tree_all_verify() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let earlier = Database::start(tree.path(), &["-limit", &EARLIER.to_string()]);
    let later = Database::start(tree.path(), &[]);
    let (client, transport) = client(&earlier);
    let client = Arc::new(client);
    // Lookups race while the database grows under them: each must verify, whichever tree it sees. Only
    // modules of the earlier tree are looked up: its first EARLIER records in the database's order (by
    // module path, as tlogdb sorts them), not the fixtures' (a lookup of a later record that reached the
    // earlier database before the switch was a "not found").
    let mut in_database_order = modules.clone();
    in_database_order.sort_by(|a, b| (a.path(), a.version()).cmp(&(b.path(), b.version())));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, module) in in_database_order
        .iter()
        .enumerate()
        .take(EARLIER)
        .step_by(3)
    {
        let (client, module) = (client.clone(), module.clone());
        tasks.spawn(async move {
            let lines = client.lookup(module.path(), module.version()).await;
            (module, lines)
        });
        if i == 90 {
            transport.point_at(&later);
        }
    }
    let mut verified = 0;
    while let Some(joined) = tasks.join_next().await {
        let (module, lines) = joined.unwrap();
        let lines = lines.unwrap_or_else(|e| panic!("{}: {e}", module.path()));
        assert_eq!(lines, expected_lines(tree.path(), &module));
        verified += 1;
    }
    assert_eq!(verified, EARLIER / 3);
}

#[tokio::test]
async fn a_tree_signed_by_another_key_or_with_a_forged_signature_is_a_security_error() {
    let modules = fixture_modules(40);
    let tree = goproxy_tree(&modules);
    for (tamper, reason) in [("key", "not signed by"), ("signature", "invalid signature")] {
        let db = Database::start(tree.path(), &["-tamper", tamper]);
        let (client, _) = client(&db);
        let message =
            security_message(client.lookup(modules[5].path(), modules[5].version()).await);
        assert!(message.contains(reason), "{tamper}: {message}");
    }
}

#[tokio::test]
async fn a_tree_that_grew_between_two_lookups_is_consistent_and_an_older_one_still_is() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let earlier = Database::start(tree.path(), &["-limit", &EARLIER.to_string()]);
    let later = Database::start(tree.path(), &[]);
    assert_eq!(earlier.key, later.key, "one database at two sizes");
    let (client, transport) = client(&earlier);
    let first = &modules[10];
    client.lookup(first.path(), first.version()).await.unwrap();
    transport.point_at(&later);
    let grown = &modules[RECORDS - 5];
    let lines = client.lookup(grown.path(), grown.version()).await.unwrap();
    assert_eq!(lines, expected_lines(tree.path(), grown));
    // Lookups answered with the smaller tree again (a lagging front; tiles still current): it is a prefix
    // of the latest, so it passes.
    transport.point_lookups_at(&earlier);
    client.lookup(first.path(), first.version()).await.unwrap();
}

#[tokio::test]
async fn a_forked_tree_after_the_client_saw_the_first_is_a_security_error_at_any_size() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let earlier = Database::start(tree.path(), &["-limit", &EARLIER.to_string()]);
    let forked = Database::start(tree.path(), &["-tamper", "fork"]);
    let forked_smaller = Database::start(
        tree.path(),
        &["-tamper", "fork", "-limit", &EARLIER.to_string()],
    );
    let module = &modules[20];

    // Each fork is a well-formed database on its own: a fresh client accepts it.
    for fork in [&forked, &forked_smaller] {
        let (fresh, _) = client(fork);
        fresh.lookup(module.path(), module.version()).await.unwrap();
    }

    let (client, transport) = client(&earlier);
    client
        .lookup(module.path(), module.version())
        .await
        .unwrap();
    transport.point_at(&forked);
    let message = security_message(client.lookup(module.path(), module.version()).await);
    assert!(message.contains("SECURITY ERROR"), "{message}");
    assert!(message.contains("misbehavior detected"), "{message}");
    assert!(
        message.contains(&format!("go.sum database tree\n\t{EARLIER}")),
        "{message}"
    );

    // A client that saw the full tree refuses a smaller tree that is not its prefix (lookups forged by a
    // front, tiles from the honest database), and a fork of the same size from the forking database.
    let later = Database::start(tree.path(), &[]);
    let (client, transport) = self::client(&later);
    client
        .lookup(module.path(), module.version())
        .await
        .unwrap();
    transport.point_lookups_at(&forked_smaller);
    let message = security_message(client.lookup(module.path(), module.version()).await);
    assert!(message.contains("misbehavior detected"), "{message}");
    assert!(
        message.contains(&format!(
            "old database:\n\tgo.sum database tree\n\t{EARLIER}"
        )),
        "{message}"
    );
    transport.point_at(&forked);
    let message = security_message(client.lookup(module.path(), module.version()).await);
    assert!(message.contains("SECURITY ERROR"), "{message}");
}

#[tokio::test]
async fn the_key_a_database_prints_parses_and_damaged_copies_are_refused_with_a_reason() {
    let modules = fixture_modules(3);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &[]);
    let key = VerifierKey::parse(&db.key).unwrap();
    assert_eq!(key.name(), "sumdb.ferry.test");
    let (name, rest) = db.key.split_once('+').unwrap();
    let damaged = [
        (format!("other.test+{rest}"), "does not match"),
        (db.key[..db.key.len() - 3].to_string(), "base64"),
        (db.key[..db.key.len() - 4].to_string(), "does not match"),
        (format!("{name}+{}", &rest[..8]), "want <name>"),
        (
            format!("{name}+{}", rest.replacen('+', "0+", 1)),
            "8 hexadecimal",
        ),
    ];
    for (text, reason) in damaged {
        let err = VerifierKey::parse(&text).expect_err(&text).to_string();
        assert!(err.contains(reason), "{text}: {err}");
    }
}

#[test]
fn the_go_commands_built_in_key_for_sum_golang_org_parses() {
    let goroot = std::process::Command::new(ferry_testkit::go_binary())
        .args(["env", "GOROOT"])
        .output()
        .expect("go env GOROOT");
    let goroot = String::from_utf8(goroot.stdout).unwrap();
    let source = std::path::Path::new(goroot.trim()).join("src/cmd/go/internal/modfetch/key.go");
    let source = std::fs::read_to_string(&source).expect("the go command's source ships with Go");
    let key = source
        .split('"')
        .find(|s| s.starts_with("sum.golang.org+"))
        .expect("knownGOSUMDB holds sum.golang.org's key");
    let parsed = VerifierKey::parse(key).unwrap();
    assert_eq!((parsed.name(), parsed.as_str()), ("sum.golang.org", key));
}
