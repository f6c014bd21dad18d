//! The fixtures are only worth something if the real `go` command accepts them.

use ferry_testkit::{FixtureModule, GoHome, Upstream, write_goproxy_tree};

fn download(home: &GoHome, cwd: &std::path::Path, target: &str) -> serde_json::Value {
    let out = home.run(cwd, &["mod", "download", "-json", target]);
    serde_json::from_str(&out).expect("go mod download -json prints JSON")
}

#[test]
fn go_downloads_fixtures_from_a_file_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    write_goproxy_tree(
        &tree,
        &[
            FixtureModule::package("example.com/Upper/hello", "v1.0.0"),
            FixtureModule::package("example.com/Upper/hello", "v1.1.0-rc.1"),
            FixtureModule::new("example.com/old", "v2.0.0+incompatible")
                .without_go_mod()
                .file("old.go", "package old\n"),
        ],
    );
    let home = GoHome::new(tmp.path(), &format!("file://{}", tree.display()));
    let got = download(&home, tmp.path(), "example.com/Upper/hello@v1.1.0-rc.1");
    assert_eq!(got["Version"], "v1.1.0-rc.1");
    assert!(got["Sum"].as_str().unwrap().starts_with("h1:"), "{got}");
    let old = download(&home, tmp.path(), "example.com/old@v2.0.0+incompatible");
    assert_eq!(old["Version"], "v2.0.0+incompatible");
    let versions = home.run(
        tmp.path(),
        &["list", "-m", "-versions", "example.com/Upper/hello"],
    );
    assert_eq!(
        versions.trim(),
        "example.com/Upper/hello v1.0.0 v1.1.0-rc.1"
    );
}

#[tokio::test]
async fn go_downloads_from_the_fixture_upstream_and_it_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let pseudo = "v0.0.0-20240102030405-abcdefabcdef";
    let upstream = Upstream::start(vec![
        FixtureModule::package("example.com/Hello", "v1.0.0"),
        FixtureModule::package("example.com/Hello", pseudo),
    ])
    .await;
    upstream.alias("example.com/Hello", "master", pseudo);
    let home = GoHome::new(tmp.path(), &upstream.url());
    let cwd = tmp.path().to_path_buf();
    let got = tokio::task::spawn_blocking(move || {
        let got = download(&home, &cwd, "example.com/Hello@master");
        drop(home);
        got
    })
    .await
    .unwrap();
    assert_eq!(got["Version"], pseudo);
    assert_eq!(
        upstream.request_count("example.com/!hello/@v/master.info"),
        1
    );
    assert_eq!(upstream.request_count(".zip"), 1);
}
