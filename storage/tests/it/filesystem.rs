//! The conformance suite on the filesystem backend (`file://`), plus what only a directory can show:
//! hand-filled GOPROXY trees and Go module caches served as they are.
use std::sync::Arc;

use crate::conformance::{module, read_zip, version};
use ferry_storage::{
    ByteRange, HotZipSettings, ModuleStore, ModuleStoreExt, StorageConfig, StorageError, ZipPart,
};
use ferry_testkit::{FixtureModule, GoHome, write_goproxy_tree};
use futures::TryStreamExt;

/// A store in a fresh directory under cargo's per-target scratch directory (`target/tmp`), kept after the
/// test so the suite's signature stays a plain store; the large-zip test deletes what it wrote.
async fn store() -> Arc<dyn ModuleStore> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .keep();
    StorageConfig::from_url(&format!("file://{}", dir.display()))
        .unwrap()
        .open()
        .unwrap()
}

conformance_suite!(store());

/// The same suite on a store that keeps hot zips, as the server opens it.
mod with_hot_zips {
    conformance_suite!(
        async {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap()
                .keep();
            ferry_storage::StorageConfig::from_url(&format!("file://{}", dir.display()))
                .unwrap()
                .open_with(ferry_storage::HotZipSettings::default())
                .unwrap()
        },
        large_zip: false
    );
}

#[tokio::test]
async fn a_hand_filled_goproxy_tree_is_served_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = [
        FixtureModule::package("example.com/Hand/made", "v1.0.0"),
        FixtureModule::package("example.com/Hand/made", "v1.1.0"),
    ];
    write_goproxy_tree(dir.path(), &fixtures);
    let store = StorageConfig::from_url(&format!("file://{}", dir.path().display()))
        .unwrap()
        .open()
        .unwrap();
    let m = module("example.com/Hand/made");
    assert_eq!(
        store.list(&m).await.unwrap(),
        [version("v1.0.0"), version("v1.1.0")]
    );
    assert_eq!(
        read_zip(&*store, &m, &version("v1.1.0")).await,
        fixtures[1].zip_bytes()
    );
}

/// A zip of several read chunks (128 KiB each), its last one short: incompressible bytes, so the zip
/// file is as large as its content.
fn multi_chunk_module() -> FixtureModule {
    FixtureModule::package("example.com/chunks", "v1.0.0").file("noise.bin", noise())
}

/// 1,000,003 incompressible bytes.
fn noise() -> Vec<u8> {
    let mut noise = Vec::with_capacity(1_000_003);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 1_000_003 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    noise.truncate(1_000_003);
    noise
}

#[tokio::test]
async fn a_zip_is_served_whole_from_the_page_cache_and_from_the_disk() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let fixture = multi_chunk_module();
    write_goproxy_tree(dir.path(), std::slice::from_ref(&fixture));
    let store = StorageConfig::from_url(&format!("file://{}", dir.path().display()))
        .unwrap()
        .open()
        .unwrap();
    let (m, v) = (module("example.com/chunks"), version("v1.0.0"));
    let expected = fixture.zip_bytes();
    assert!(expected.len() > 7 * 128 * 1024, "{}", expected.len());
    // Just written: the page cache holds it, and it is read without the blocking pool.
    assert!(
        read_zip(&*store, &m, &v).await == expected,
        "the cached zip differs"
    );
    // Dropped from the page cache (written back first): its reads wait for the disk, on the blocking pool.
    let zip = std::fs::File::open(dir.path().join("example.com/chunks/@v/v1.0.0.zip")).unwrap();
    zip.sync_all().unwrap();
    rustix::fs::fadvise(&zip, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    assert!(
        read_zip(&*store, &m, &v).await == expected,
        "the zip read from disk differs"
    );
}

/// A zip asked for whole again and again is answered from memory, but never once its file is replaced or
/// removed behind the store's back (another process's `ferry check-store --remove`, an operator's hand).
#[tokio::test]
async fn a_hot_zip_is_never_served_from_memory_once_its_file_is_replaced_or_removed() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let first = multi_chunk_module();
    write_goproxy_tree(dir.path(), std::slice::from_ref(&first));
    let store = StorageConfig::from_url(&format!("file://{}", dir.path().display()))
        .unwrap()
        .open_with(HotZipSettings::default())
        .unwrap();
    let (m, v) = (module("example.com/chunks"), version("v1.0.0"));
    let zip = dir.path().join("example.com/chunks/@v/v1.0.0.zip");
    // Asked for three times: streamed, read whole and kept, answered from memory.
    for _ in 0..3 {
        assert!(read_zip(&*store, &m, &v).await == first.zip_bytes());
    }
    // A Range request of a kept zip is answered from the same bytes.
    let part = store
        .zip_part(
            &m,
            &v,
            ByteRange::From {
                first: 10,
                last: Some(19),
            },
        )
        .await
        .unwrap();
    let ZipPart::Bytes { range, stream, .. } = part else {
        panic!("unsatisfiable")
    };
    let bytes: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    assert_eq!(
        (range, bytes.concat()),
        (10..20, first.zip_bytes()[10..20].to_vec())
    );

    // Replaced as a store writes (a staging file renamed over it), with a zip of the same size.
    let mut changed = noise();
    changed[500_000] ^= 0xff;
    let second = FixtureModule::package("example.com/chunks", "v1.0.0").file("noise.bin", changed);
    assert_eq!(second.zip_bytes().len(), first.zip_bytes().len());
    let staged = dir.path().join("staged.zip");
    std::fs::write(&staged, second.zip_bytes()).unwrap();
    std::fs::rename(&staged, &zip).unwrap();
    assert!(
        read_zip(&*store, &m, &v).await == second.zip_bytes(),
        "the replaced zip was served from memory"
    );
    for _ in 0..2 {
        assert!(read_zip(&*store, &m, &v).await == second.zip_bytes());
    }

    // Removed: not found, though a copy was kept.
    std::fs::remove_file(&zip).unwrap();
    assert!(
        matches!(store.zip(&m, &v).await, Err(StorageError::NotFound(_))),
        "the removed zip was served from memory"
    );
}

#[tokio::test]
async fn a_go_module_cache_download_dir_is_served_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let fixture = FixtureModule::package("example.com/Cached", "v1.0.0");
    write_goproxy_tree(&tree, std::slice::from_ref(&fixture));
    // Let the real `go` fill a module cache (with its .lock, .ziphash and read-only files).
    let home = GoHome::new(dir.path(), &format!("file://{}", tree.display()));
    home.run(
        dir.path(),
        &["mod", "download", "-json", "example.com/Cached@v1.0.0"],
    );
    let cache = home.mod_cache().join("cache/download");
    assert!(
        cache.join("example.com/!cached/@v/v1.0.0.ziphash").exists(),
        "go wrote a real cache"
    );
    let store = StorageConfig::from_url(&format!("file://{}", cache.display()))
        .unwrap()
        .open()
        .unwrap();
    let (m, v) = (module("example.com/Cached"), version("v1.0.0"));
    assert_eq!(store.list(&m).await.unwrap(), std::slice::from_ref(&v));
    assert_eq!(
        store.go_mod(&m, &v).await.unwrap(),
        fixture.go_mod().as_bytes()
    );
    assert_eq!(read_zip(&*store, &m, &v).await, fixture.zip_bytes());
}

#[tokio::test]
async fn storage_urls_are_checked() {
    for bad in ["", "ferry-data", "file://", "memory://x", "ftp://host/x"] {
        let error = StorageConfig::from_url(bad).expect_err(bad).to_string();
        let names_a_fix = error.contains("write file://")
            || error.contains("use file://")
            || error.contains("write memory://");
        assert!(names_a_fix, "{bad:?}: the message names the fix: {error}");
    }
}

/// A failure of the directory store is told without the directory (the message may reach a client), and
/// the filesystem's own error, with its path, stays in the source chain for the operator.
#[tokio::test]
async fn a_failing_directory_store_keeps_its_path_out_of_the_message_and_in_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let store = StorageConfig::from_url(&format!("file://{}", root.display()))
        .unwrap()
        .open()
        .unwrap();
    // A file where the module's version directory must go: no write can succeed under it.
    std::fs::create_dir_all(root.join("example.com/blocked")).unwrap();
    std::fs::write(root.join("example.com/blocked/@v"), "not a directory").unwrap();
    let fixture = FixtureModule::package("example.com/blocked", "v1.0.0");
    let error = store
        .save(
            &module("example.com/blocked"),
            &version("v1.0.0"),
            crate::conformance::files_of(&fixture),
        )
        .await
        .expect_err("saving under a file");
    assert!(
        matches!(error, ferry_storage::StorageError::Unavailable(_)),
        "{error:?}"
    );
    let shown = error.to_string();
    assert!(
        shown.contains("example.com/blocked/@v"),
        "names the key: {shown}"
    );
    assert!(
        !shown.contains(root.to_str().unwrap()),
        "shows the directory: {shown}"
    );
    let mut chain = String::new();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        chain.push_str(&format!("{e}; "));
        source = e.source();
    }
    assert!(
        chain.contains(root.to_str().unwrap()),
        "the source keeps the detail: {chain}"
    );
}
