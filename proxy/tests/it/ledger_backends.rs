//! The ledger on each of the five backends: what one replica records (stored, deleted, blocked) another
//! reads from the store alone, and a ledger lost or never written is rebuilt from a walk of the store.

use std::sync::Arc;

use ferry::admin::Admin;
use ferry::admin::gc::GcSettings;
use ferry::coordination::Coordination;
use ferry::ledger::{Ledger, LedgerSettings, Recorded, Status};
use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, StorageConfig};
use ferry_testkit::{CloudServer, FixtureModule, azure_server, gcs_server, s3_server};

use crate::harness::save;

/// A replica's view of `store`: its ledger, loaded, and the store recorded in it.
async fn replica(store: &Arc<dyn ModuleStore>) -> (Arc<Ledger>, Admin) {
    let ledger = Arc::new(Ledger::new(store.records(), LedgerSettings::default()));
    ledger.load().await.unwrap();
    let recorded: Arc<dyn ModuleStore> = Arc::new(Recorded::new(store.clone(), ledger.clone()));
    let admin = Admin::new(
        recorded,
        ledger.clone(),
        Coordination::local(),
        GcSettings::new(),
    );
    (ledger, admin)
}

fn at(module: &str, version: &str) -> (ModulePath, Version) {
    (
        ModulePath::new(module).unwrap(),
        Version::new(version).unwrap(),
    )
}

fn indexed(ledger: &Ledger) -> Vec<String> {
    ledger.read(|s| {
        s.index(0, 100)
            .into_iter()
            .map(|(_, m, v)| format!("{m}@{v}"))
            .collect()
    })
}

async fn the_ledger_is_shared_through_the_store_and_rebuilt_from_it(store: Arc<dyn ModuleStore>) {
    let (first, admin) = replica(&store).await;
    let recorded: Arc<dyn ModuleStore> = Arc::new(Recorded::new(store.clone(), first.clone()));
    for (module, version) in [
        ("example.com/L/a", "v1.0.0"),
        ("example.com/l/b", "v0.1.0"),
        ("example.com/L/a", "v1.1.0"),
    ] {
        save(recorded.as_ref(), &FixtureModule::package(module, version)).await;
    }
    first.sync().await.unwrap();
    let (second, _) = replica(&store).await;
    assert_eq!(
        indexed(&second),
        [
            "example.com/L/a@v1.0.0",
            "example.com/l/b@v0.1.0",
            "example.com/L/a@v1.1.0"
        ],
        "appended in order, read by another replica"
    );
    let (m, v) = at("example.com/L/a", "v1.0.0");
    admin.delete(&m, &v).await.unwrap();
    let (b, bv) = at("example.com/l/b", "v0.1.0");
    admin.block(&b, &bv, "bad").await.unwrap();
    second.sync().await.unwrap();
    assert_eq!(second.status(&m, &v), Some(Status::Deleted));
    assert_eq!(second.blocked(&b, &bv).as_deref(), Some("bad"));
    assert_eq!(indexed(&second), ["example.com/L/a@v1.1.0"]);
    assert!(
        store.list(&m).await.unwrap().iter().all(|x| x != &v),
        "its files are gone"
    );

    // The log lost (all but the block records): a walk of the store rebuilds the index, and the
    // block comes back from its own record.
    let records = store.records();
    for record in records.list("ledger", None).await.unwrap() {
        records.delete(&record.key).await.unwrap();
    }
    let rebuilt = Arc::new(Ledger::new(store.records(), LedgerSettings::default()));
    assert!(!rebuilt.load().await.unwrap(), "no ledger left");
    let done = rebuilt.reindex(store.as_ref(), |_| {}).await.unwrap();
    assert_eq!((done.added, done.blocks), (1, 1), "{done:?}");
    assert_eq!(indexed(&rebuilt), ["example.com/L/a@v1.1.0"]);
    assert_eq!(rebuilt.blocked(&b, &bv).as_deref(), Some("bad"));
    let (third, _) = replica(&store).await;
    assert_eq!(
        indexed(&third),
        ["example.com/L/a@v1.1.0"],
        "the rebuild is in the store"
    );
}

fn open(server: &CloudServer) -> Arc<dyn ModuleStore> {
    let env = server.env.iter().cloned().collect();
    StorageConfig::from_url_with(&server.fresh_url(), &Default::default(), &env)
        .unwrap()
        .open()
        .unwrap()
}

#[tokio::test]
async fn on_memory() {
    the_ledger_is_shared_through_the_store_and_rebuilt_from_it(
        StorageConfig::Memory.open().unwrap(),
    )
    .await;
}

#[tokio::test]
async fn on_a_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let store = StorageConfig::from_url(&url).unwrap().open().unwrap();
    the_ledger_is_shared_through_the_store_and_rebuilt_from_it(store).await;
}

#[tokio::test]
async fn on_s3() {
    let Some(server) = s3_server() else { return };
    the_ledger_is_shared_through_the_store_and_rebuilt_from_it(open(&server)).await;
}

#[tokio::test]
async fn on_gcs() {
    let Some(server) = gcs_server() else { return };
    the_ledger_is_shared_through_the_store_and_rebuilt_from_it(open(&server)).await;
}

#[tokio::test]
async fn on_azurite() {
    let Some(server) = azure_server() else { return };
    the_ledger_is_shared_through_the_store_and_rebuilt_from_it(open(&server)).await;
}
