//! A file store under attack and fault: symlinks that lead out of the root, staging debris left by dead
//! writers, a read-only and a full filesystem (small tmpfs mounts, where the machine allows them).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use ferry_storage::{
    ModuleStore, ModuleStoreExt, StorageConfig, StorageError, VersionFiles, ZipSource,
};
use ferry_testkit::{FixtureModule, Tmpfs, write_goproxy_tree};
use futures::StreamExt;

use crate::conformance::{module, read_zip, save_fixture, version};

fn open(root: &Path) -> Arc<dyn ModuleStore> {
    StorageConfig::from_url(&format!("file://{}", root.display()))
        .unwrap()
        .open()
        .unwrap()
}

/// Every staging file under `root` (names ending in `#` and digits).
fn staging_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else if ferry_storage::is_staging_name(&entry.file_name().to_string_lossy()) {
                found.push(entry.path());
            }
        }
    }
    found
}

fn is_not_found<T>(result: Result<T, StorageError>) -> bool {
    matches!(result, Err(StorageError::NotFound(_)))
}

#[tokio::test]
async fn a_symlink_leading_out_of_a_file_store_serves_nothing_and_one_inside_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (root, outside) = (dir.path().join("store"), dir.path().join("outside"));
    let inside = FixtureModule::package("example.com/inside", "v1.0.0");
    write_goproxy_tree(&root, std::slice::from_ref(&inside));
    // Outside the root: a secret file, and a whole GOPROXY tree of a module.
    let away = FixtureModule::package("example.com/away", "v1.0.0");
    write_goproxy_tree(&outside, std::slice::from_ref(&away));
    let secret = outside.join("secret");
    std::fs::write(&secret, "root:x:0:0:secret\n").unwrap();
    let store = open(&root);

    // Each file of a version is a symlink to the secret.
    let linked = root.join("example.com/linked/@v");
    std::fs::create_dir_all(&linked).unwrap();
    for extension in ["info", "mod", "zip"] {
        std::os::unix::fs::symlink(&secret, linked.join(format!("v1.0.0.{extension}"))).unwrap();
    }
    let (m, v) = (module("example.com/linked"), version("v1.0.0"));
    assert!(is_not_found(store.info(&m, &v).await), "info");
    assert!(is_not_found(store.go_mod(&m, &v).await), "mod");
    assert!(is_not_found(store.zip(&m, &v).await.map(|_| ())), "zip");
    assert!(!store.exists(&m, &v).await.unwrap());
    assert!(store.list(&m).await.unwrap().is_empty());

    // A module directory that is a symlink to a tree outside.
    std::fs::create_dir_all(root.join("example.com")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("example.com/away"),
        root.join("example.com/away"),
    )
    .unwrap();
    let (m, v) = (module("example.com/away"), version("v1.0.0"));
    assert!(store.list(&m).await.unwrap().is_empty());
    assert!(!store.exists(&m, &v).await.unwrap());
    assert!(is_not_found(store.zip(&m, &v).await.map(|_| ())));
    assert!(is_not_found(store.info(&m, &v).await));

    // A symlink that stays inside the root is followed: a second version sharing the first one's files.
    let shared = root.join("example.com/inside/@v");
    for extension in ["info", "mod", "zip"] {
        std::os::unix::fs::symlink(
            format!("v1.0.0.{extension}"),
            shared.join(format!("v1.0.1.{extension}")),
        )
        .unwrap();
    }
    let m = module("example.com/inside");
    assert_eq!(
        store.list(&m).await.unwrap(),
        [version("v1.0.0"), version("v1.0.1")]
    );
    assert_eq!(
        read_zip(&*store, &m, &version("v1.0.1")).await,
        inside.zip_bytes()
    );
}

#[tokio::test]
async fn staging_debris_is_never_listed_and_is_swept_at_open_while_live_writers_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = open(&root);
    let fixture = FixtureModule::package("example.com/debris", "v1.0.0");
    save_fixture(&*store, &fixture).await;
    assert!(staging_files(&root).is_empty(), "a save leaves no staging");
    let (m, stored) = (module("example.com/debris"), version("v1.0.0"));
    let versions = root.join("example.com/debris/@v");

    // A writer of this host that died mid-copy (a process that has exited), of a version never listed.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let debris = ferry_storage::staging_path_of(&versions.join("v1.1.0.zip"), dead);
    std::fs::write(&debris, vec![7u8; 100_000]).unwrap();
    // A writer that is running (this process), and an `object_store` staging file (no writer known):
    // both young, so both may still be at work.
    let live = ferry_storage::staging_path_of(&versions.join("v1.2.0.info"), std::process::id());
    std::fs::write(&live, "{}").unwrap();
    let foreign = versions.join("v1.3.0.info#7");
    std::fs::write(&foreign, "{}").unwrap();

    assert_eq!(store.list(&m).await.unwrap(), std::slice::from_ref(&stored));
    for v in ["v1.1.0", "v1.2.0", "v1.3.0"] {
        assert!(!store.exists(&m, &version(v)).await.unwrap(), "{v}");
        assert!(
            is_not_found(store.zip(&m, &version(v)).await.map(|_| ())),
            "{v}"
        );
    }

    let reopened = open(&root);
    let mut left = staging_files(&root);
    left.sort();
    let mut expected = vec![live.clone(), foreign.clone()];
    expected.sort();
    assert_eq!(left, expected, "only the dead writer's file is removed");
    let swept = ferry_storage::sweep(&root);
    assert_eq!((swept.removed, swept.kept), (0, 2));
    assert_eq!(
        read_zip(&*reopened, &m, &stored).await,
        fixture.zip_bytes(),
        "the stored version is untouched"
    );
}

/// A version whose zip does not compress: `kib` KiB of xorshift bytes.
fn incompressible(path: &str, v: &str, kib: usize) -> FixtureModule {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ kib as u64;
    let data: Vec<u8> = (0..kib * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    FixtureModule::package(path, v).file("data.bin", data)
}

#[tokio::test]
async fn a_read_only_file_store_fails_the_write_check_and_still_serves() {
    let Some(tmpfs) = Tmpfs::mount("size=2m") else {
        return;
    };
    let fixture = FixtureModule::package("example.com/ro", "v1.0.0");
    write_goproxy_tree(tmpfs.path(), std::slice::from_ref(&fixture));
    tmpfs.remount_read_only();
    let store = open(tmpfs.path());
    store
        .check()
        .await
        .expect("a read-only store answers reads");
    let error = store.check_writable().await.expect_err("takes no writes");
    assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
    let shown = error.to_string();
    assert!(shown.contains("Read-only"), "says why: {shown}");
    assert!(
        !shown.contains(tmpfs.path().to_str().unwrap()),
        "no path: {shown}"
    );
    let (m, v) = (module("example.com/ro"), version("v1.0.0"));
    assert_eq!(read_zip(&*store, &m, &v).await, fixture.zip_bytes());
}

#[tokio::test]
async fn a_full_file_store_fails_saves_with_nothing_visible_no_debris_and_a_failing_write_check() {
    let Some(tmpfs) = Tmpfs::mount("size=2m") else {
        return;
    };
    let store = open(tmpfs.path());
    store
        .check_writable()
        .await
        .expect("an empty tmpfs takes writes");
    // Zips of 400 KiB, from a file on another filesystem (the fetcher's, copied across) and as a
    // stream, alternately, until the 2 MiB are gone (5 fit at most).
    let scratch = tempfile::tempdir().unwrap();
    let mut saved = Vec::new();
    let mut failure = None;
    for n in 0..10 {
        let fixture = incompressible("example.com/full", &format!("v1.0.{n}"), 400);
        let zip = if n % 2 == 0 {
            let file = scratch.path().join(format!("{n}.zip"));
            std::fs::write(&file, fixture.zip_bytes()).unwrap();
            ZipSource::File(file)
        } else {
            let bytes = Bytes::from(fixture.zip_bytes());
            ZipSource::Stream(futures::stream::iter([Ok(bytes)]).boxed())
        };
        let files = VersionFiles {
            info: Bytes::from(fixture.info_json()),
            go_mod: Bytes::from(fixture.go_mod()),
            zip: Some(zip),
        };
        let (m, v) = (module(fixture.path()), version(fixture.version()));
        match store.save(&m, &v, files).await {
            Ok(_) => saved.push(fixture),
            Err(e) => {
                failure = Some((e, v));
                break;
            }
        }
    }
    let (error, failed) = failure.expect("a 2 MiB filesystem fills up");
    assert!(
        matches!(error, StorageError::Unavailable(_)),
        "a storage error: {error:?}"
    );
    assert!(!saved.is_empty(), "some versions fit first");
    let shown = error.to_string();
    assert!(shown.contains("No space left"), "says why: {shown}");
    assert!(!shown.contains(tmpfs.path().to_str().unwrap()), "{shown}");

    let m = module("example.com/full");
    assert!(!store.exists(&m, &failed).await.unwrap());
    let listed = store.list(&m).await.unwrap();
    assert!(!listed.contains(&failed), "{listed:?}");
    assert_eq!(listed.len(), saved.len());
    let listed_before_filling = listed;
    assert!(
        staging_files(tmpfs.path()).is_empty(),
        "a failed save removes its staging"
    );
    let versions = tmpfs.path().join("example.com/full/@v");
    for extension in ["info", "mod", "zip"] {
        let file = versions.join(format!("{failed}.{extension}"));
        assert!(!file.exists(), "{} left", file.display());
    }
    // What is left may still hold small versions: store them until not even one fits.
    let mut small_failed = false;
    for n in 0..500 {
        let fixture = incompressible("example.com/full", &format!("v2.0.{n}"), 3);
        let (m, v) = (module(fixture.path()), version(fixture.version()));
        let files = crate::conformance::files_of(&fixture);
        if store.save(&m, &v, files).await.is_err() {
            assert!(!store.exists(&m, &v).await.unwrap());
            small_failed = true;
            break;
        }
    }
    assert!(small_failed, "the filesystem filled up");
    assert!(staging_files(tmpfs.path()).is_empty());
    assert!(
        store.check_writable().await.is_err(),
        "a full store is not writable"
    );
    assert!(
        staging_files(tmpfs.path()).is_empty(),
        "the probe leaves nothing"
    );

    // Every version saved before is whole; a reopened store (the sweep) finds no debris; freeing space
    // makes the store writable again.
    assert!(
        listed_before_filling
            .iter()
            .all(|v| v.to_string().starts_with("v1.0."))
    );
    for fixture in &saved {
        let v = version(fixture.version());
        assert_eq!(read_zip(&*store, &m, &v).await, fixture.zip_bytes());
    }
    let reopened = open(tmpfs.path());
    assert!(staging_files(tmpfs.path()).is_empty());
    reopened
        .delete(&m, &version(saved[0].version()))
        .await
        .unwrap();
    reopened
        .check_writable()
        .await
        .expect("writable once space is freed");
}

#[tokio::test]
async fn a_path_element_too_long_for_the_filesystem_is_not_found_and_a_save_names_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let long = format!("example.com/{}", "a".repeat(300));
    let (m, v) = (module(&long), version("v1.0.0"));
    assert!(is_not_found(store.info(&m, &v).await));
    assert!(is_not_found(store.zip(&m, &v).await.map(|_| ())));
    assert!(!store.exists(&m, &v).await.unwrap());
    assert!(store.list(&m).await.unwrap().is_empty());
    let fixture = FixtureModule::package(&long, "v1.0.0");
    let error = store
        .save(&m, &v, crate::conformance::files_of(&fixture))
        .await
        .expect_err("no filesystem holds the name");
    let shown = error.to_string();
    assert!(shown.contains("File name too long"), "{shown}");
    assert!(!shown.contains(dir.path().to_str().unwrap()), "{shown}");
    assert!(staging_files(dir.path()).is_empty());
}
