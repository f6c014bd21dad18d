//! The storage conformance suite: plain functions every backend must pass. A backend's module makes a
//! fresh, empty store and runs them all with `conformance_suite!(async { store })`.

use std::sync::Arc;

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{
    ByteRange, ModuleStore, ModuleStoreExt, Saved, StorageError, StoredFile, VersionFile,
    VersionFiles, VisibilityGuard, ZipPart, ZipSource,
};
use ferry_testkit::FixtureModule;
use futures::{StreamExt, TryStreamExt};

pub fn module(path: &str) -> ModulePath {
    ModulePath::new(path).unwrap()
}

pub fn version(v: &str) -> Version {
    Version::new(v).unwrap()
}

pub fn files_of(fixture: &FixtureModule) -> VersionFiles {
    let zip = Bytes::from(fixture.zip_bytes());
    VersionFiles {
        info: Bytes::from(fixture.info_json()),
        go_mod: Bytes::from(fixture.go_mod()),
        zip: Some(ZipSource::Stream(futures::stream::iter([Ok(zip)]).boxed())),
    }
}

pub async fn save_fixture(store: &dyn ModuleStore, fixture: &FixtureModule) -> Saved {
    store
        .save(
            &module(fixture.path()),
            &version(fixture.version()),
            files_of(fixture),
        )
        .await
        .expect("save")
}

pub async fn read_zip(store: &dyn ModuleStore, m: &ModulePath, v: &Version) -> Vec<u8> {
    let zip = store.zip(m, v).await.expect("zip");
    let bytes: Vec<Bytes> = zip.stream.try_collect().await.expect("zip stream");
    let bytes = bytes.concat();
    assert_eq!(
        bytes.len() as u64,
        zip.len,
        "the announced length is the streamed length"
    );
    bytes
}

fn is_not_found<T>(result: Result<T, StorageError>) -> bool {
    matches!(result, Err(StorageError::NotFound(_)))
}

pub async fn not_found_for_each_read(store: &dyn ModuleStore) {
    let (m, v) = (module("example.com/missing"), version("v1.0.0"));
    assert!(is_not_found(store.info(&m, &v).await));
    assert!(is_not_found(store.go_mod(&m, &v).await));
    assert!(is_not_found(store.zip(&m, &v).await.map(|_| ())));
    assert!(!store.exists(&m, &v).await.unwrap());
    assert!(store.list(&m).await.unwrap().is_empty());
}

pub async fn round_trip_is_byte_exact(store: &dyn ModuleStore) {
    let fixture = FixtureModule::package("example.com/RoundTrip/Pkg", "v1.2.3-Beta.1").file(
        "data.bin",
        (0..=255u8).cycle().take(100_000).collect::<Vec<u8>>(),
    );
    assert_eq!(save_fixture(store, &fixture).await, Saved::Written);
    let (m, v) = (module(fixture.path()), version(fixture.version()));
    assert_eq!(
        store.info(&m, &v).await.unwrap(),
        fixture.info_json().as_bytes()
    );
    assert_eq!(
        store.go_mod(&m, &v).await.unwrap(),
        fixture.go_mod().as_bytes()
    );
    assert_eq!(read_zip(store, &m, &v).await, fixture.zip_bytes());
    assert!(store.exists(&m, &v).await.unwrap());
}

/// A zip handed over as a file on disk (what the fetcher leaves) is stored byte for byte, and the stored
/// copy does not depend on the file: it may be removed after the save.
pub async fn a_zip_file_is_stored_and_outlives_its_source(store: &dyn ModuleStore) {
    let fixture = FixtureModule::package("example.com/from/disk", "v1.0.0")
        .file("data.bin", vec![3u8; 300_000]);
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("v1.0.0.zip");
    std::fs::write(&source, fixture.zip_bytes()).unwrap();
    let files = VersionFiles {
        info: Bytes::from(fixture.info_json()),
        go_mod: Bytes::from(fixture.go_mod()),
        zip: Some(ZipSource::File(source.clone())),
    };
    let (m, v) = (module(fixture.path()), version(fixture.version()));
    assert_eq!(store.save(&m, &v, files).await.unwrap(), Saved::Written);
    drop(dir);
    assert!(!source.exists());
    assert_eq!(read_zip(store, &m, &v).await, fixture.zip_bytes());
    assert_eq!(store.list(&m).await.unwrap(), [v]);
}

pub async fn list_is_exact_and_semver_sorted(store: &dyn ModuleStore) {
    let path = "example.com/sorted";
    let versions = [
        "v1.10.0",
        "v1.2.0",
        "v1.2.0-rc.1",
        "v0.0.0-20240102030405-abcdefabcdef",
        "v2.0.0+incompatible",
        "v1.9.9",
    ];
    for v in versions {
        save_fixture(store, &FixtureModule::package(path, v)).await;
    }
    let listed: Vec<String> = store
        .list(&module(path))
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        listed,
        [
            "v0.0.0-20240102030405-abcdefabcdef",
            "v1.2.0-rc.1",
            "v1.2.0",
            "v1.9.9",
            "v1.10.0",
            "v2.0.0+incompatible"
        ]
    );
}

pub async fn lists_are_isolated_between_neighbours(store: &dyn ModuleStore) {
    let neighbours = [
        ("example.com/a", "v1.0.0"),
        ("example.com/a/b", "v1.1.0"),
        ("example.com/a-b", "v1.2.0"),
        ("example.com/A", "v1.3.0"),
        ("example.com/a/b/c", "v1.4.0"),
    ];
    for (path, v) in neighbours {
        save_fixture(store, &FixtureModule::package(path, v)).await;
    }
    for (path, v) in neighbours {
        let listed: Vec<String> = store
            .list(&module(path))
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(listed, [v], "list of {path}");
    }
}

pub async fn delete_unlists_and_removes(store: &dyn ModuleStore) {
    let fixture = FixtureModule::package("example.com/deleted", "v1.0.0");
    let keep = FixtureModule::package("example.com/deleted", "v1.1.0");
    save_fixture(store, &fixture).await;
    save_fixture(store, &keep).await;
    let (m, v) = (module(fixture.path()), version(fixture.version()));
    store.delete(&m, &v).await.unwrap();
    assert!(!store.exists(&m, &v).await.unwrap());
    assert!(is_not_found(store.info(&m, &v).await));
    assert!(is_not_found(store.go_mod(&m, &v).await));
    assert!(is_not_found(store.zip(&m, &v).await.map(|_| ())));
    assert_eq!(store.list(&m).await.unwrap(), [version("v1.1.0")]);
    store
        .delete(&m, &v)
        .await
        .expect("deleting nothing is not an error");
}

/// `files` walks the whole store and finds each stored file once, by its real module path and version (the
/// keys are case-encoded), with its size: not the files of a deleted version, not Ferry's own records.
pub async fn files_finds_every_stored_file(store: &dyn ModuleStore) {
    for fixture in [
        FixtureModule::package("example.com/walked", "v1.0.0"),
        FixtureModule::package("example.com/walked", "v1.1.0-Pre"),
        FixtureModule::package("example.com/Walked/v2", "v2.0.0+incompatible"),
        FixtureModule::package("example.com/gone", "v1.0.0"),
    ] {
        save_fixture(store, &fixture).await;
    }
    let without_zip = FixtureModule::package("example.com/walked", "v1.2.0");
    let mut files = files_of(&without_zip);
    files.zip = None;
    let go_mod_len = files.go_mod.len() as u64;
    store
        .save(&module("example.com/walked"), &version("v1.2.0"), files)
        .await
        .unwrap();
    store
        .delete(&module("example.com/gone"), &version("v1.0.0"))
        .await
        .unwrap();
    store
        .records()
        .put("walked/record", Bytes::from_static(b"not a module"))
        .await
        .unwrap();
    let found: Vec<StoredFile> = store.files().try_collect().await.expect("walk the store");
    let mut zips: Vec<(String, String)> = found
        .iter()
        .filter(|f| f.file == VersionFile::Zip)
        .map(|f| (f.module.to_string(), f.version.to_string()))
        .collect();
    zips.sort();
    assert_eq!(
        zips,
        [
            ("example.com/Walked/v2", "v2.0.0+incompatible"),
            ("example.com/walked", "v1.0.0"),
            ("example.com/walked", "v1.1.0-Pre"),
        ]
        .map(|(m, v)| (m.to_string(), v.to_string()))
    );
    assert_eq!(
        found.len(),
        3 * 3 + 2,
        "every file but the deleted version's: {found:?}"
    );
    let go_mod = found
        .iter()
        .find(|f| f.version.as_str() == "v1.2.0" && f.file == VersionFile::Mod)
        .expect("the .mod of the version stored without its zip");
    assert_eq!(go_mod.size, go_mod_len);
    let age = std::time::SystemTime::now().duration_since(go_mod.modified);
    assert!(
        age.is_ok_and(|age| age < std::time::Duration::from_secs(300)),
        "written just now: {:?}",
        go_mod.modified
    );
}

/// Ferry's records: a create-only write wins once, a put replaces, a listing is in key order and starts
/// after a key when asked, a delete removes (and deleting nothing is no error); none of it is a module.
pub async fn records_are_kept_listed_in_order_and_removed(store: &dyn ModuleStore) {
    let records = store.records();
    assert_eq!(records.get("log/none").await.unwrap(), None);
    assert!(records.list("log", None).await.unwrap().is_empty());
    for key in ["log/0003-b", "log/0001-a", "log/0002-a"] {
        assert!(
            records
                .create(key, Bytes::from(key.to_string()))
                .await
                .unwrap()
        );
    }
    assert!(
        !records
            .create("log/0001-a", Bytes::from_static(b"again"))
            .await
            .unwrap(),
        "a create-only write of an existing record loses"
    );
    assert_eq!(
        records.get("log/0001-a").await.unwrap().as_deref(),
        Some(&b"log/0001-a"[..])
    );
    records
        .put("other/x", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let keys = |listed: Vec<ferry_storage::Record>| -> Vec<String> {
        listed.into_iter().map(|r| r.key).collect()
    };
    assert_eq!(
        keys(records.list("log", None).await.unwrap()),
        ["log/0001-a", "log/0002-a", "log/0003-b"]
    );
    assert_eq!(
        keys(records.list("log", Some("log/0001-a")).await.unwrap()),
        ["log/0002-a", "log/0003-b"]
    );
    records
        .put("log/0002-a", Bytes::from_static(b"replaced"))
        .await
        .unwrap();
    assert_eq!(
        records.get("log/0002-a").await.unwrap().as_deref(),
        Some(&b"replaced"[..])
    );
    records.delete("log/0002-a").await.unwrap();
    records.delete("log/0002-a").await.unwrap();
    assert_eq!(
        keys(records.list("log", None).await.unwrap()),
        ["log/0001-a", "log/0003-b"]
    );
    let walked: Vec<StoredFile> = store.files().try_collect().await.unwrap();
    assert!(
        walked.is_empty(),
        "records are not module files: {walked:?}"
    );
}

/// A working store takes writes, and the probe leaves nothing behind: saving and listing afterwards see
/// only what was saved.
pub async fn the_write_check_passes_and_leaves_nothing(store: &dyn ModuleStore) {
    store
        .check_writable()
        .await
        .expect("a working store takes writes");
    store
        .check_writable()
        .await
        .expect("and again: the probe was removed");
    let fixture = FixtureModule::package("example.com/probed", "v1.0.0");
    assert_eq!(save_fixture(store, &fixture).await, Saved::Written);
    store.check().await.expect("still answers");
    assert_eq!(
        store.list(&module("example.com/probed")).await.unwrap(),
        [version("v1.0.0")]
    );
}

pub async fn failed_save_leaves_nothing_visible(store: &dyn ModuleStore) {
    let (m, v) = (module("example.com/broken"), version("v1.0.0"));
    let chunks = vec![
        Ok(Bytes::from(vec![1u8; 1024 * 1024])),
        Err(std::io::Error::other("disk went away")),
    ];
    let files = VersionFiles {
        info: Bytes::from_static(b"{\"Version\":\"v1.0.0\"}"),
        go_mod: Bytes::from_static(b"module example.com/broken\n"),
        zip: Some(ZipSource::Stream(futures::stream::iter(chunks).boxed())),
    };
    let error = store
        .save(&m, &v, files)
        .await
        .expect_err("a failing zip fails the save");
    assert!(matches!(error, StorageError::Source(_)), "{error}");
    assert!(!store.exists(&m, &v).await.unwrap());
    assert!(store.list(&m).await.unwrap().is_empty());
    assert!(is_not_found(store.zip(&m, &v).await.map(|_| ())));
    assert!(is_not_found(store.go_mod(&m, &v).await));
}

/// A guard that refuses, counting how often it was asked.
struct Refuse(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl VisibilityGuard for Refuse {
    async fn before_visible(&self) -> Result<(), StorageError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(StorageError::NotFound("the lease, taken over".into()))
    }
}

pub async fn a_refusing_guard_keeps_the_version_invisible_until_a_later_save(
    store: &dyn ModuleStore,
) {
    let fixture = FixtureModule::package("example.com/fenced", "v1.0.0");
    let (m, v) = (module(fixture.path()), version(fixture.version()));
    let guard = Refuse(Default::default());
    let refused = store.save_guarded(&m, &v, files_of(&fixture), &guard).await;
    assert!(
        matches!(refused, Err(StorageError::NotFound(_))),
        "{refused:?}"
    );
    assert_eq!(guard.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(!store.exists(&m, &v).await.unwrap(), "not visible");
    assert!(store.list(&m).await.unwrap().is_empty());
    assert!(is_not_found(store.info(&m, &v).await));
    // The next holder's save publishes over whatever the refused one left.
    assert_eq!(save_fixture(store, &fixture).await, Saved::Written);
    assert_eq!(read_zip(store, &m, &v).await, fixture.zip_bytes());
}

pub async fn concurrent_saves_agree(store: Arc<dyn ModuleStore>) {
    let fixture = FixtureModule::package("example.com/racy", "v1.0.0");
    let saves = (0..4).map(|_| {
        let (store, fixture) = (store.clone(), fixture.clone());
        tokio::spawn(async move { save_fixture(&*store, &fixture).await })
    });
    for save in futures::future::join_all(saves).await {
        save.expect("save task");
    }
    let (m, v) = (module(fixture.path()), version(fixture.version()));
    assert_eq!(read_zip(&*store, &m, &v).await, fixture.zip_bytes());
    assert_eq!(store.list(&m).await.unwrap(), [v]);
}

pub async fn resave_is_idempotent(store: &dyn ModuleStore) {
    let fixture = FixtureModule::package("example.com/again", "v1.0.0");
    assert_eq!(save_fixture(store, &fixture).await, Saved::Written);
    let different =
        FixtureModule::package("example.com/again", "v1.0.0").file("extra.go", "package again\n");
    assert_eq!(save_fixture(store, &different).await, Saved::AlreadyStored);
    let (m, v) = (module(fixture.path()), version(fixture.version()));
    assert_eq!(
        read_zip(store, &m, &v).await,
        fixture.zip_bytes(),
        "a stored version never changes"
    );
}

/// A version saved without its zip is listed, serves its `.info` and `.mod`, and has no zip; the zip saved
/// later completes it, and neither save changes what the other stored.
pub async fn a_version_stored_without_its_zip_takes_it_later(store: &dyn ModuleStore) {
    let fixture = FixtureModule::package("example.com/later", "v1.2.0");
    let (m, v) = (module(fixture.path()), version(fixture.version()));
    let mut first = files_of(&fixture);
    first.zip = None;
    assert_eq!(store.save(&m, &v, first).await.unwrap(), Saved::Written);
    assert_eq!(store.list(&m).await.unwrap(), std::slice::from_ref(&v));
    assert!(store.exists(&m, &v).await.unwrap());
    assert!(!store.has_zip(&m, &v).await.unwrap());
    assert!(is_not_found(store.zip(&m, &v).await));
    assert_eq!(
        store.go_mod(&m, &v).await.unwrap(),
        fixture.go_mod().as_bytes()
    );

    // Saving it again without a zip adds nothing.
    let mut again = files_of(&fixture);
    again.zip = None;
    assert_eq!(
        store.save(&m, &v, again).await.unwrap(),
        Saved::AlreadyStored
    );

    // The zip arrives; a `.info` and `.mod` that differ do not replace the stored ones.
    let mut later = files_of(&fixture);
    later.info = Bytes::from_static(b"{\"Version\":\"v1.2.0\",\"Time\":\"2001-01-01T00:00:00Z\"}");
    assert_eq!(store.save(&m, &v, later).await.unwrap(), Saved::Written);
    assert!(store.has_zip(&m, &v).await.unwrap());
    assert_eq!(read_zip(store, &m, &v).await, fixture.zip_bytes());
    assert_eq!(
        store.info(&m, &v).await.unwrap(),
        fixture.info_json().as_bytes()
    );

    // Complete now: a further save with a zip is AlreadyStored and changes nothing.
    let different =
        FixtureModule::package("example.com/later", "v1.2.0").file("x.go", "package later\n");
    assert_eq!(save_fixture(store, &different).await, Saved::AlreadyStored);
    assert_eq!(read_zip(store, &m, &v).await, fixture.zip_bytes());
    assert_eq!(store.list(&m).await.unwrap(), [v]);
}

/// A 100 MB zip goes in as a stream of 1 MiB chunks and comes out as a stream of bounded chunks: neither
/// side holds it whole (the memory backend, which holds everything by nature, skips this one).
pub async fn large_zip_streams_both_ways(store: &dyn ModuleStore) {
    const CHUNK: usize = 1024 * 1024;
    const CHUNKS: usize = 100;
    let (m, v) = (module("example.com/large"), version("v1.0.0"));
    let chunk = |i: usize| Bytes::from(vec![(i % 251) as u8; CHUNK]);
    let files = VersionFiles {
        info: Bytes::from_static(b"{\"Version\":\"v1.0.0\",\"Time\":\"2024-01-02T03:04:05Z\"}"),
        go_mod: Bytes::from_static(b"module example.com/large\n"),
        zip: Some(ZipSource::Stream(
            futures::stream::iter((0..CHUNKS).map(move |i| Ok(chunk(i)))).boxed(),
        )),
    };
    store.save(&m, &v, files).await.unwrap();
    let zip = store.zip(&m, &v).await.unwrap();
    assert_eq!(zip.len, (CHUNK * CHUNKS) as u64);
    let mut stream = zip.stream;
    let (mut total, mut largest_chunk, mut offset_ok) = (0usize, 0usize, true);
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.unwrap();
        // Every byte is checked against the pattern written, without keeping the zip.
        for (i, b) in bytes.iter().enumerate() {
            offset_ok &= *b == (((total + i) / CHUNK) % 251) as u8;
        }
        total += bytes.len();
        largest_chunk = largest_chunk.max(bytes.len());
    }
    assert_eq!(total, CHUNK * CHUNKS);
    assert!(offset_ok, "the zip read back differs from the zip written");
    assert!(
        largest_chunk <= 16 * CHUNK,
        "a read chunk of {largest_chunk} bytes is not streaming"
    );
    store.delete(&m, &v).await.unwrap();
}

pub async fn a_part_of_a_zip_is_its_bytes_in_that_range(store: &dyn ModuleStore) {
    let fixture = FixtureModule::package("example.com/ranged", "v1.0.0")
        .file("data.bin", ferry_testkit::incompressible(20_000));
    save_fixture(store, &fixture).await;
    let (m, v) = (module(fixture.path()), version(fixture.version()));
    let zip = fixture.zip_bytes();
    let len = zip.len() as u64;
    let from = |first, last| ByteRange::From { first, last };
    for (range, expected) in [
        (from(0, Some(0)), 0..1),
        (from(10, Some(999)), 10..1000),
        (from(len - 5, Some(len + 100)), len - 5..len),
        (from(1234, None), 1234..len),
        (ByteRange::Last(300), len - 300..len),
        (ByteRange::Last(len + 1), 0..len),
    ] {
        let ZipPart::Bytes {
            len: total,
            range: picked,
            stream,
        } = store.zip_part(&m, &v, range).await.expect("zip part")
        else {
            panic!("{range:?} picks bytes of {len}");
        };
        assert_eq!(
            (total, picked.clone()),
            (len, expected.clone()),
            "{range:?}"
        );
        let bytes: Vec<Bytes> = stream.try_collect().await.expect("part stream");
        assert_eq!(
            bytes.concat(),
            &zip[expected.start as usize..expected.end as usize],
            "{range:?}"
        );
    }
    for range in [
        from(len, None),
        from(len + 10, Some(len + 20)),
        ByteRange::Last(0),
    ] {
        assert!(
            matches!(
                store.zip_part(&m, &v, range).await,
                Ok(ZipPart::Unsatisfiable { len: total }) if total == len
            ),
            "{range:?}"
        );
    }
    let missing = version("v9.0.0");
    assert!(is_not_found(
        store
            .zip_part(&m, &missing, from(0, None))
            .await
            .map(|_| ())
    ));
}

pub async fn check_reports_ready(store: &dyn ModuleStore) {
    store.check().await.expect("a working backend is ready");
}

/// How long a store over a backend that is down may take to say so (a few quick retries, with backoff).
pub const UNAVAILABLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(20);

/// For a store whose backend is down (not a suite test: a backend's module makes such a store and calls
/// this): every read and `check` answers `Unavailable` within bounded time, never `NotFound`, never a hang.
pub async fn down_backend_is_unavailable(store: &dyn ModuleStore) {
    let (m, v) = (module("example.com/down"), version("v1.0.0"));
    let started = std::time::Instant::now();
    unavailable_within("check", store.check()).await;
    unavailable_within("info", store.info(&m, &v)).await;
    unavailable_within("go_mod", store.go_mod(&m, &v)).await;
    unavailable_within("zip", store.zip(&m, &v)).await;
    unavailable_within("exists", store.exists(&m, &v)).await;
    unavailable_within("list", store.list(&m)).await;
    let fixture = FixtureModule::package("example.com/down", "v1.0.0");
    unavailable_within("save", store.save(&m, &v, files_of(&fixture))).await;
    eprintln!(
        "a down backend was reported by 7 calls in {:?}",
        started.elapsed()
    );
}

async fn unavailable_within<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StorageError>>,
) {
    match tokio::time::timeout(UNAVAILABLE_WITHIN, call).await {
        Ok(Err(StorageError::Unavailable(_))) => {}
        Ok(Err(other)) => panic!("{what} on a down backend: want Unavailable, got {other:?}"),
        Ok(Ok(_)) => panic!("{what} on a down backend succeeded"),
        Err(_) => panic!("{what} on a down backend hangs past {UNAVAILABLE_WITHIN:?}"),
    }
}

/// What a backend's module hands to `conformance_suite!`: a store, or `None` when the backend's test
/// server is not there and the test is skipped (with a loud message, printed by whoever returned `None`).
pub trait MaybeStore {
    fn into_store(self) -> Option<Arc<dyn ModuleStore>>;
}

impl MaybeStore for Arc<dyn ModuleStore> {
    fn into_store(self) -> Option<Arc<dyn ModuleStore>> {
        Some(self)
    }
}

impl MaybeStore for Option<Arc<dyn ModuleStore>> {
    fn into_store(self) -> Option<Arc<dyn ModuleStore>> {
        self
    }
}

/// One `#[tokio::test]` per conformance function, each on a fresh store made by `$make` (a future of a
/// store, or of `Option<store>` for a backend whose server may be missing).
macro_rules! conformance_suite {
    ($make:expr) => {
        conformance_suite!($make, large_zip: true);
    };
    ($make:expr, large_zip: $large:expr) => {
        #[tokio::test]
        async fn not_found_for_each_read() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::not_found_for_each_read(&*store).await
        }
        #[tokio::test]
        async fn round_trip_is_byte_exact() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::round_trip_is_byte_exact(&*store).await
        }
        #[tokio::test]
        async fn a_zip_file_is_stored_and_outlives_its_source() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::a_zip_file_is_stored_and_outlives_its_source(&*store).await
        }
        #[tokio::test]
        async fn list_is_exact_and_semver_sorted() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::list_is_exact_and_semver_sorted(&*store).await
        }
        #[tokio::test]
        async fn lists_are_isolated_between_neighbours() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::lists_are_isolated_between_neighbours(&*store).await
        }
        #[tokio::test]
        async fn delete_unlists_and_removes() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::delete_unlists_and_removes(&*store).await
        }
        #[tokio::test]
        async fn files_finds_every_stored_file() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::files_finds_every_stored_file(&*store).await
        }
        #[tokio::test]
        async fn records_are_kept_listed_in_order_and_removed() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::records_are_kept_listed_in_order_and_removed(&*store).await
        }
        #[tokio::test]
        async fn the_write_check_passes_and_leaves_nothing() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::the_write_check_passes_and_leaves_nothing(&*store).await
        }
        #[tokio::test]
        async fn failed_save_leaves_nothing_visible() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::failed_save_leaves_nothing_visible(&*store).await
        }
        #[tokio::test]
        async fn a_refusing_guard_keeps_the_version_invisible_until_a_later_save() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::a_refusing_guard_keeps_the_version_invisible_until_a_later_save(&*store).await
        }
        #[tokio::test]
        async fn concurrent_saves_agree() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::concurrent_saves_agree(store).await
        }
        #[tokio::test]
        async fn a_version_stored_without_its_zip_takes_it_later() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::a_version_stored_without_its_zip_takes_it_later(&*store).await
        }
        #[tokio::test]
        async fn resave_is_idempotent() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::resave_is_idempotent(&*store).await
        }
        #[tokio::test]
        async fn large_zip_streams_both_ways() {
            if $large {
                let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::large_zip_streams_both_ways(&*store).await
            }
        }
        #[tokio::test]
        async fn a_part_of_a_zip_is_its_bytes_in_that_range() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::a_part_of_a_zip_is_its_bytes_in_that_range(&*store).await
        }
        #[tokio::test]
        async fn check_reports_ready() {
            let Some(store) = $crate::conformance::MaybeStore::into_store($make.await) else { return };
            $crate::conformance::check_reports_ready(&*store).await
        }
    };
}
