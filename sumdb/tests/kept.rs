//! What a client verified, kept in a [`Kept`] (in memory here; Ferry's is its store): what lands there,
//! lookups and tiles answered from it with the database gone, a damaged record read again, and a fork
//! caught by a new client through the kept tree note.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_sumdb::{Client, Kept, SumdbError, VerifierKey};
use support::{Database, LoopbackTransport, fixture_modules, goproxy_tree};

/// Records in the test databases: a full level-0 tile, partial ones above and after it.
const RECORDS: usize = 330;

/// Records by database and key.
#[derive(Default)]
struct Memory(Mutex<BTreeMap<String, Bytes>>);

impl Memory {
    fn keys(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }

    fn set(&self, key: &str, data: &[u8]) {
        let mut records = self.0.lock().unwrap();
        let (_, old) = records.iter().find(|(k, _)| k.ends_with(key)).unwrap();
        assert_ne!(old.as_ref(), data);
        let full = records.keys().find(|k| k.ends_with(key)).unwrap().clone();
        records.insert(full, Bytes::copy_from_slice(data));
    }

    fn get(&self, key: &str) -> Bytes {
        let records = self.0.lock().unwrap();
        records
            .iter()
            .find(|(k, _)| k.ends_with(key))
            .unwrap()
            .1
            .clone()
    }
}

#[async_trait::async_trait]
impl Kept for Memory {
    async fn get(&self, database: &str, key: &str) -> Result<Option<Bytes>, String> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&format!("{database}/{key}"))
            .cloned())
    }
    async fn put(&self, database: &str, key: &str, data: Bytes) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .insert(format!("{database}/{key}"), data);
        Ok(())
    }
    async fn list(&self, database: &str, prefix: &str) -> Result<Vec<String>, String> {
        let under = format!("{database}/{prefix}/");
        let strip = format!("{database}/");
        Ok(self
            .0
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(&under))
            .map(|k| k[strip.len()..].to_string())
            .collect())
    }
    async fn delete(&self, database: &str, key: &str) -> Result<(), String> {
        self.0.lock().unwrap().remove(&format!("{database}/{key}"));
        Ok(())
    }
}

fn keeping(db: &Database, kept: &Arc<Memory>) -> Client<Arc<LoopbackTransport>> {
    let transport = Arc::new(LoopbackTransport::new(db));
    let key = VerifierKey::parse(&db.key).unwrap();
    Client::new(key, transport).keeping(kept.clone())
}

#[tokio::test]
async fn what_a_client_verified_is_kept_and_a_new_client_answers_from_it_without_the_database() {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &[]);
    let kept = Arc::new(Memory::default());
    let client = keeping(&db, &kept);
    let looked_up = [&modules[3], &modules[7], &modules[RECORDS - 1]];
    let mut lines = Vec::new();
    for module in looked_up {
        lines.push(
            client
                .lookup(module.path(), module.version())
                .await
                .unwrap(),
        );
    }
    let keys = kept.keys();
    let name = VerifierKey::parse(&db.key).unwrap().name().to_string();
    for wanted in [
        "latest",
        "lookup/example.com/!upper/!m007@v1.2.3-!r!c.1",
        "tile/8/0/000",
    ] {
        assert!(
            keys.contains(&format!("{name}/{wanted}")),
            "{wanted}: {keys:?}"
        );
    }
    // One partial tile per position: the widest.
    let partials = |prefix: &str| keys.iter().filter(|k| k.contains(prefix)).count();
    assert_eq!(partials("/tile/8/0/001.p/"), 1, "{keys:?}");
    assert_eq!(partials("/tile/8/1/000.p/"), 1, "{keys:?}");
    assert_eq!(client.tile("tile/8/0/000").await.unwrap().len(), 256 * 32);
    let data = client.tile("tile/8/data/000").await.unwrap();
    assert!(keys.len() < kept.keys().len(), "the data tile is kept too");

    // The database gone: a new client answers what is kept (the transport here would panic if asked).
    let client = keeping(&db, &kept);
    drop(db);
    for (module, lines) in looked_up.iter().zip(&lines) {
        let again = client.lookup(module.path(), module.version()).await;
        assert_eq!(again.as_ref(), Ok(lines), "{}", module.path());
    }
    assert_eq!(client.tile("tile/8/data/000").await.unwrap(), data);
    assert_eq!(
        client.tile("tile/8/0/001.p/10").await.unwrap(),
        kept.get("/tile/8/0/001.p/74").slice(..10 * 32)
    );
    assert!(client.latest_note().await.is_some());
}

#[tokio::test]
async fn a_damaged_kept_record_is_read_again_from_the_database_and_a_fork_is_caught_after_a_restart()
 {
    let modules = fixture_modules(RECORDS);
    let tree = goproxy_tree(&modules);
    let db = Database::start(tree.path(), &[]);
    let kept = Arc::new(Memory::default());
    let module = &modules[3];
    let lines = keeping(&db, &kept)
        .lookup(module.path(), module.version())
        .await
        .unwrap();
    let (tile, lookup) = (
        kept.get("/tile/8/0/000"),
        kept.get("/lookup/example.com/m003@v1.0.0"),
    );
    kept.set("/tile/8/0/000", &[0; 256 * 32]);
    let damaged = String::from_utf8_lossy(&lookup).replacen("h1:", "h1:AAAA", 1);
    kept.set("/lookup/example.com/m003@v1.0.0", damaged.as_bytes());
    let client = keeping(&db, &kept);
    assert_eq!(
        client.lookup(module.path(), module.version()).await,
        Ok(lines)
    );
    assert_eq!(kept.get("/lookup/example.com/m003@v1.0.0"), lookup);
    assert_eq!(kept.get("/tile/8/0/000"), tile);

    // A new client starts from the kept note: a fork of the database is misbehaviour, not a fresh start.
    let forked = Database::start(tree.path(), &["-tamper", "fork"]);
    let client = keeping(&forked, &kept);
    let other = &modules[20];
    match client.lookup(other.path(), other.version()).await {
        Err(SumdbError::Security(message)) => assert!(message.contains("misbehavior"), "{message}"),
        other => panic!("a fork after a restart was accepted: {other:?}"),
    }
}
