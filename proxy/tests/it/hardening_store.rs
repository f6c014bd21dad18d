//! The store's hardening through the real HTTP server (issue 10): a `file://` store serves nothing a
//! symlink leads out of its root, and says so without a local path.
use ferry_testkit::{FixtureModule, write_goproxy_tree};

use crate::harness::Ferry;

#[tokio::test]
async fn symlinks_leading_out_of_a_file_store_are_answered_404_without_the_file_or_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let (root, outside) = (dir.path().join("store"), dir.path().join("outside"));
    let served = FixtureModule::package("example.com/served", "v1.0.0");
    write_goproxy_tree(&root, std::slice::from_ref(&served));
    let away = FixtureModule::package("example.com/away", "v1.0.0");
    write_goproxy_tree(&outside, std::slice::from_ref(&away));
    let secret = outside.join("passwd");
    std::fs::write(&secret, "root:x:0:0:SECRET-ACCOUNT:/root:/bin/sh\n").unwrap();
    // A version whose files are symlinks to the secret, and a module directory linked to a tree outside.
    let linked = root.join("example.com/linked/@v");
    std::fs::create_dir_all(&linked).unwrap();
    for extension in ["info", "mod", "zip"] {
        std::os::unix::fs::symlink(&secret, linked.join(format!("v1.0.0.{extension}"))).unwrap();
    }
    std::os::unix::fs::symlink(
        outside.join("example.com/away"),
        root.join("example.com/away"),
    )
    .unwrap();
    let ferry = Ferry::on_dir(&root).await;

    for path in [
        "example.com/linked/@v/v1.0.0.info",
        "example.com/linked/@v/v1.0.0.mod",
        "example.com/linked/@v/v1.0.0.zip",
        "example.com/away/@v/v1.0.0.info",
        "example.com/away/@v/v1.0.0.zip",
    ] {
        let reply = ferry.get(path).await;
        let body = reply.text();
        assert_eq!(reply.status, 404, "{path}: {body}");
        assert!(body.starts_with("not found"), "{path}: {body}");
        assert!(!body.contains("SECRET"), "{path} served the file: {body}");
        assert!(
            !body.contains(dir.path().to_str().unwrap()),
            "{path}: {body}"
        );
    }
    for path in ["example.com/linked/@v/list", "example.com/away/@v/list"] {
        let reply = ferry.get(path).await;
        assert_eq!(
            reply.status,
            404,
            "{path}: no version is stored: {}",
            reply.text()
        );
        assert!(!reply.text().contains("v1.0.0"), "{path}: {}", reply.text());
    }
    let zip = ferry.get("example.com/served/@v/v1.0.0.zip").await;
    assert_eq!(zip.status, 200);
    assert_eq!(zip.body, served.zip_bytes());
    ferry.stop().await;
}

#[test]
fn a_read_only_store_stops_a_fetching_ferry_at_start_up() {
    let Some(tmpfs) = ferry_testkit::Tmpfs::mount("size=2m") else {
        return;
    };
    tmpfs.remount_read_only();
    let dir = tempfile::tempdir().unwrap();
    let output = crate::harness::ferry()
        .current_dir(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .arg("--storage")
        .arg(format!("file://{}", tmpfs.path().display()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not usable") && stderr.contains("Read-only file system"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_not_ready_when_a_fetching_ferrys_store_stops_taking_writes() {
    let Some(tmpfs) = ferry_testkit::Tmpfs::mount("size=2m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}", tmpfs.path().display());
    let env = crate::harness::ferry_env(dir.path(), None, &[("FERRY_STORAGE", &storage)]);
    let ferry = Ferry::from_env(&env, &ferry::config::Flags::default()).await;
    let ready = ferry.get("readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());

    tmpfs.remount_read_only();
    // The last check is reused for a few seconds: wait for the next one.
    ferry_testkit::eventually("readyz reports the read-only store", async || {
        ferry.get("readyz").await.status == 503
    })
    .await;
    let text = ferry.get("readyz").await.text();
    assert!(text.starts_with("not ready:"), "{text}");
    assert!(
        !text.contains(tmpfs.path().to_str().unwrap()),
        "no local path: {text}"
    );
    ferry.stop().await;
}
