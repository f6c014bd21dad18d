//! The real `go` command as the client of a Ferry serving a hand-filled store.

use crate::harness::{Ferry, get};
use ferry_testkit::{FixtureModule, GoHome, write_goproxy_tree};

fn fixtures() -> Vec<FixtureModule> {
    vec![
        FixtureModule::package("example.com/Upper/hello", "v1.0.0"),
        FixtureModule::package("example.com/Upper/hello", "v1.1.0"),
        FixtureModule::package("example.com/world", "v0.3.0-rc.1"),
        FixtureModule::package("example.com/world", "v0.2.0"),
        FixtureModule::package("example.com/world", "v0.10.0"),
        FixtureModule::package("example.com/world", "v0.0.0-20240102030405-abcdefabcdef"),
        FixtureModule::new("example.com/legacy", "v2.0.0+incompatible")
            .without_go_mod()
            .file("legacy.go", "package legacy\n\nconst Name = \"legacy\"\n"),
    ]
}

/// A hand-filled store (a GOPROXY tree written by the test) served by Ferry.
async fn ferry_over_tree(dir: &std::path::Path) -> (Ferry, std::path::PathBuf) {
    let tree = dir.join("store");
    write_goproxy_tree(&tree, &fixtures());
    (Ferry::on_dir(&tree).await, tree)
}

fn download_json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).expect("go mod download -json prints one JSON object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_mod_download_through_ferry_gives_the_sums_of_the_tree_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (ferry, tree) = ferry_over_tree(dir.path()).await;
    let via_ferry = GoHome::new(dir.path(), &ferry.url());
    let direct = GoHome::new(dir.path(), &format!("file://{}", tree.display()));
    for target in [
        "example.com/Upper/hello@v1.1.0",
        "example.com/world@v0.3.0-rc.1",
        "example.com/legacy@v2.0.0+incompatible",
    ] {
        let ours = download_json(
            &via_ferry
                .run_async(dir.path(), &["mod", "download", "-json", target])
                .await,
        );
        let theirs = download_json(
            &direct
                .run_async(dir.path(), &["mod", "download", "-json", target])
                .await,
        );
        assert!(
            ours["Sum"].as_str().unwrap().starts_with("h1:"),
            "{target}: {ours}"
        );
        assert_eq!(ours["Sum"], theirs["Sum"], "{target}");
        assert_eq!(ours["GoModSum"], theirs["GoModSum"], "{target}");
    }
    // The upper-case path round-trips: the module cache holds it under its escaped name.
    assert!(
        via_ferry
            .mod_cache()
            .join("cache/download/example.com/!upper/hello/@v/v1.1.0.zip")
            .is_file()
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_build_of_a_program_importing_the_fixtures_works() {
    let dir = tempfile::tempdir().unwrap();
    let (ferry, _) = ferry_over_tree(dir.path()).await;
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("go.mod"),
        "module example.com/app\n\ngo 1.21\n\nrequire (\n\texample.com/Upper/hello v1.1.0\n\texample.com/world v0.10.0\n\texample.com/legacy v2.0.0+incompatible\n)\n",
    )
    .unwrap();
    std::fs::write(
        app.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/Upper/hello\"\n\t\"example.com/legacy\"\n\t\"example.com/world\"\n)\n\nfunc main() { fmt.Println(hello.Version(), world.Version(), legacy.Name) }\n",
    )
    .unwrap();
    let home = GoHome::new(dir.path(), &ferry.url());
    home.run_async(&app, &["build", "-o", "app", "."]).await;
    let output = tokio::process::Command::new(app.join("app"))
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "v1.1.0 v0.10.0 legacy\n"
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_list_sees_the_sorted_versions_and_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let (ferry, _) = ferry_over_tree(dir.path()).await;
    let home = GoHome::new(dir.path(), &ferry.url());
    let versions = home
        .run_async(
            dir.path(),
            &["list", "-m", "-versions", "example.com/world"],
        )
        .await;
    assert_eq!(
        versions.trim(),
        "example.com/world v0.2.0 v0.3.0-rc.1 v0.10.0"
    );
    let latest = home
        .run_async(
            dir.path(),
            &["list", "-m", "-json", "example.com/Upper/hello@latest"],
        )
        .await;
    let latest: serde_json::Value = serde_json::from_str(&latest).unwrap();
    assert_eq!(latest["Version"], "v1.1.0");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_shows_ferrys_not_found_reason_and_falls_through_to_the_next_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let (ferry, tree) = ferry_over_tree(dir.path()).await;
    let home = GoHome::new(dir.path(), &ferry.url());
    let output = home
        .output_async(
            dir.path(),
            &["mod", "download", "-json", "example.com/Upper/hello@v9.9.9"],
        )
        .await;
    assert!(!output.status.success());
    let reported = String::from_utf8_lossy(&output.stdout);
    assert!(
        reported.contains("not found: "),
        "go shows Ferry's reason: {reported}"
    );

    // With a second proxy after Ferry, a 404 from Ferry makes go ask the next one.
    let fallback = dir.path().join("fallback");
    write_goproxy_tree(
        &fallback,
        &[FixtureModule::package("example.com/elsewhere", "v1.0.0")],
    );
    let chained = GoHome::new(
        dir.path(),
        &format!("{},file://{}", ferry.url(), fallback.display()),
    );
    let got = download_json(
        &chained
            .run_async(
                dir.path(),
                &["mod", "download", "-json", "example.com/elsewhere@v1.0.0"],
            )
            .await,
    );
    assert_eq!(got["Version"], "v1.0.0");
    assert!(tree.exists());
    assert_eq!(get(&format!("{}/healthz", ferry.url())).await.status, 200);
    ferry.stop().await;
}
