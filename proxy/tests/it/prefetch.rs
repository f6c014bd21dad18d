//! Requirements fetched before they are asked for (issue 25): when Ferry fills a `.mod` for a client, the
//! `.mod` files of the versions it requires are filled in the background; the next level waits until a
//! client follows; a per-client budget bounds it; `prefetch.depth = 0` turns it off; a go.mod whose graph
//! the go command prunes (`go 1.17` or later) has nothing fetched ahead. The real go command resolves an
//! unpruned graph through it with every `.mod` fetched from the upstream once. The zip of a version whose
//! `.mod` a client asked for is fetched too: once that client asks for a zip (`prefetch.zips = "builders"`),
//! or at once (`all`). A client listing its build list has the `.info` of the requirements of the pruned
//! go.mod files it read fetched ahead.

use std::path::Path;

use ferry::config::Flags;
use ferry_module::{ModulePath, Version};
use ferry_storage::ModuleStoreExt;
use ferry_testkit::{FixtureModule, GoHome, Upstream, eventually};

use crate::harness::{Ferry, app_module, ferry_env, get, go_said, write_file};

/// `a` requires `b` and `c`; `b` requires `d`; no `go` directive (older modules'), so the go command reads
/// every requirement's go.mod, level after level (`go` lines: `graph_at`).
fn graph() -> Vec<FixtureModule> {
    graph_at(None)
}

fn graph_at(go: Option<&str>) -> Vec<FixtureModule> {
    let module = |path: &str, requires: &[&str]| {
        let mut go_mod = format!("module {path}\n");
        if let Some(go) = go {
            go_mod.push_str(&format!("\ngo {go}\n"));
        }
        if !requires.is_empty() {
            go_mod.push_str("\nrequire (\n");
            for required in requires {
                go_mod.push_str(&format!("\t{required} v1.0.0\n"));
            }
            go_mod.push_str(")\n");
        }
        FixtureModule::package(path, "v1.0.0").with_go_mod(&go_mod)
    };
    vec![
        module("example.com/a", &["example.com/b", "example.com/c"]),
        module("example.com/b", &["example.com/d"]),
        module("example.com/c", &[]),
        module("example.com/d", &[]),
    ]
}

async fn start(dir: &Path, upstream: &Upstream, vars: &[(&str, &str)]) -> Ferry {
    let env = ferry_env(dir, Some(&upstream.url()), vars);
    Ferry::from_env(&env, &Flags::default()).await
}

fn mod_path(module: &str) -> String {
    format!("{module}/@v/v1.0.0.mod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filled_go_mod_s_requirements_are_filled_before_they_are_asked_for_and_the_next_level_when_followed()
 {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(graph()).await;
    let ferry = start(dir.path(), &upstream, &[]).await;

    assert_eq!(ferry.get(&mod_path("example.com/a")).await.status, 200);
    eventually("b and c are stored without being asked for", async || {
        ferry.stored("example.com/b", "v1.0.0").await
            && ferry.stored("example.com/c", "v1.0.0").await
    })
    .await;
    // One level ahead only: nobody asked for b yet, so b's requirement waits.
    assert!(!ferry.stored("example.com/d", "v1.0.0").await);
    assert_eq!(upstream.request_count(&mod_path("example.com/d")), 0);

    // A client follows: b is answered from the store, and d is fetched ahead of it.
    assert_eq!(ferry.get(&mod_path("example.com/b")).await.status, 200);
    eventually("d is stored once b was asked for", async || {
        ferry.stored("example.com/d", "v1.0.0").await
    })
    .await;
    // Every .mod came from the upstream once.
    for module in [
        "example.com/a",
        "example.com/b",
        "example.com/c",
        "example.com/d",
    ] {
        assert_eq!(upstream.request_count(&mod_path(module)), 1, "{module}");
    }
    let metrics = ferry.get("metrics").await.text();
    assert!(
        metrics.contains("ferry_prefetches_total{result=\"fetched\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_prefetches_total{result=\"followed\"}"),
        "{metrics}"
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_resolves_a_graph_through_prefetching_with_each_go_mod_fetched_once() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(graph()).await;
    let ferry = start(dir.path(), &upstream, &[]).await;
    let home = GoHome::new(dir.path(), &ferry.url());
    let app = app_module(dir.path());
    write_file(
        &app,
        "go.mod",
        "module app\n\ngo 1.21\n\nrequire example.com/a v1.0.0\n",
    );
    let output = tokio::process::Command::from(home.command(&app, &["list", "-m", "all"]))
        .output()
        .await
        .unwrap();
    let said = go_said(&output);
    assert!(output.status.success(), "{said}");
    // Unpruned below the main module: the go command reads every go.mod, d's too.
    for module in [
        "example.com/a",
        "example.com/b",
        "example.com/c",
        "example.com/d",
    ] {
        assert!(said.contains(&format!("{module} v1.0.0")), "{said}");
        assert_eq!(upstream.request_count(&mod_path(module)), 1, "{module}");
    }
    for older in ["v0.9.0", "v0.8.0"] {
        assert_eq!(
            upstream.request_count(&format!("example.com/a/@v/{older}.zip")),
            0
        );
    }
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_fetched_ahead_below_a_go_mod_whose_graph_the_go_command_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(graph_at(Some("1.21"))).await;
    let ferry = start(dir.path(), &upstream, &[]).await;
    assert_eq!(ferry.get(&mod_path("example.com/a")).await.status, 200);
    eventually("a's go.mod was looked at and found pruned", async || {
        ferry
            .get("metrics")
            .await
            .text()
            .contains("ferry_prefetches_total{result=\"pruned\"}")
    })
    .await;
    // A client that follows asks for b itself: one request, its own.
    assert_eq!(upstream.request_count(&mod_path("example.com/b")), 0);
    assert_eq!(upstream.request_count(&mod_path("example.com/c")), 0);
    // Nor a zip: this client asked for none (`prefetch.zips = "builders"`, the default).
    assert_eq!(upstream.request_count("example.com/a/@v/v1.0.0.zip"), 0);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_s_budget_and_depth_zero_bound_what_is_fetched_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(graph()).await;
    let ferry = start(dir.path(), &upstream, &[("FERRY_PREFETCH_PER_CLIENT", "1")]).await;
    assert_eq!(ferry.get(&mod_path("example.com/a")).await.status, 200);
    eventually("the first requirement is stored", async || {
        ferry.stored("example.com/b", "v1.0.0").await
    })
    .await;
    // The budget of one version a minute is spent: c is not fetched ahead.
    let metrics = get(&format!("{}/metrics", ferry.url())).await.text();
    assert!(
        metrics.contains("ferry_prefetches_total{result=\"over_budget\"}"),
        "{metrics}"
    );
    assert!(!ferry.stored("example.com/c", "v1.0.0").await);
    ferry.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(graph()).await;
    let ferry = start(dir.path(), &upstream, &[("FERRY_PREFETCH_DEPTH", "0")]).await;
    assert_eq!(ferry.get(&mod_path("example.com/a")).await.status, 200);
    // Give a prefetch, were there one, the time to reach the upstream: a's .info asked for after it.
    assert_eq!(ferry.get("example.com/a/@v/v1.0.0.info").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(upstream.request_count(&mod_path("example.com/b")), 0);
    assert_eq!(upstream.request_count(&mod_path("example.com/c")), 0);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_prefetch_zips_the_zip_of_a_version_whose_go_mod_was_asked_for_is_stored_before_it_is_asked()
 {
    let dir = tempfile::tempdir().unwrap();
    // Pruned go.mod files: nothing below a is fetched ahead, only a's own zip.
    let modules = graph_at(Some("1.21"));
    let upstream = Upstream::start(modules.clone()).await;
    let ferry = start(dir.path(), &upstream, &[("FERRY_PREFETCH_ZIPS", "true")]).await;
    let zip = "example.com/a/@v/v1.0.0.zip";
    assert_eq!(ferry.get(&mod_path("example.com/a")).await.status, 200);
    eventually("a's zip is fetched without being asked for", async || {
        upstream.request_count(zip) == 1
    })
    .await;
    // The go command then downloads it from Ferry, which asks the upstream nothing more: the zip's fill
    // reused the `.mod` fill's files, fetched once each.
    let home = GoHome::new(dir.path(), &ferry.url());
    home.run(
        dir.path(),
        &["mod", "download", "-json", "example.com/a@v1.0.0"],
    );
    let reply = ferry.get(zip).await;
    assert!(reply.status == 200 && reply.body == modules[0].zip_bytes()[..]);
    for path in [
        zip,
        &mod_path("example.com/a"),
        "example.com/a/@v/v1.0.0.info",
    ] {
        assert_eq!(upstream.request_count(path), 1, "{path}");
    }
    assert_eq!(upstream.request_count("example.com/b/@v/v1.0.0.zip"), 0);
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zips_are_fetched_ahead_for_a_client_once_it_downloads_zips_and_never_for_one_that_only_resolves()
 {
    let dir = tempfile::tempdir().unwrap();
    // Pruned go.mod files: no `.mod` is fetched ahead, so each upstream request below is the client's or a
    // zip's fetched ahead.
    let mut modules = graph_at(Some("1.21"));
    modules.push(FixtureModule::package("example.com/a", "v0.9.0"));
    modules.push(FixtureModule::package("example.com/a", "v0.8.0"));
    let upstream = Upstream::start(modules.clone()).await;
    let ferry = start(dir.path(), &upstream, &[]).await;
    let zip = |module: &str| format!("{module}/@v/v1.0.0.zip");
    let zip_stored = async |module: &str| {
        let (module, version) = (
            ModulePath::new(module).unwrap(),
            Version::new("v1.0.0").unwrap(),
        );
        ferry.store().has_zip(&module, &version).await.unwrap()
    };
    // A client resolving the graph: go.mod files only, a's at two versions (an older one required by some
    // module, the build list's). Its `.info` asked after them gives a zip fetched ahead, were there one, the
    // time to reach the upstream.
    assert_eq!(ferry.get("example.com/a/@v/v0.9.0.mod").await.status, 200);
    for module in ["example.com/a", "example.com/b"] {
        assert_eq!(ferry.get(&mod_path(module)).await.status, 200);
    }
    assert_eq!(ferry.get("example.com/a/@v/v1.0.0.info").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for module in ["example.com/a", "example.com/b"] {
        assert_eq!(upstream.request_count(&zip(module)), 0, "{module}");
    }
    // The same client downloads c's zip: a's and b's are fetched before it asks for them; of a, only the
    // higher version's (the one the build list has).
    let reply = ferry.get(&zip("example.com/c")).await;
    assert!(reply.status == 200 && reply.body == modules[2].zip_bytes()[..]);
    eventually("a's and b's zips are stored unasked", async || {
        zip_stored("example.com/a").await && zip_stored("example.com/b").await
    })
    .await;
    // It is downloading zips now: the next `.mod` it asks for has its zip fetched at once.
    assert_eq!(ferry.get(&mod_path("example.com/d")).await.status, 200);
    eventually("d's zip is stored unasked", async || {
        zip_stored("example.com/d").await
    })
    .await;
    // But not that of a go.mod it reads at a lower version than one whose zip was fetched for it.
    assert_eq!(ferry.get("example.com/a/@v/v0.8.0.mod").await.status, 200);
    assert_eq!(ferry.get("example.com/a/@v/v0.8.0.info").await.status, 200);
    // Then the go command downloads all four from Ferry, which asks the upstream for nothing more: each zip
    // was fetched once, c's (asked first) not fetched ahead again.
    let home = GoHome::new(dir.path(), &ferry.url());
    for module in [
        "example.com/a",
        "example.com/b",
        "example.com/c",
        "example.com/d",
    ] {
        home.run(
            dir.path(),
            &["mod", "download", "-json", &format!("{module}@v1.0.0")],
        );
        assert_eq!(upstream.request_count(&zip(module)), 1, "{module}");
        assert_eq!(upstream.request_count(&mod_path(module)), 1, "{module}");
    }
    ferry.stop().await;

    // `off`: the same client, no zip fetched ahead.
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(modules.clone()).await;
    let ferry = start(dir.path(), &upstream, &[("FERRY_PREFETCH_ZIPS", "off")]).await;
    assert_eq!(ferry.get(&mod_path("example.com/a")).await.status, 200);
    assert_eq!(ferry.get(&zip("example.com/c")).await.status, 200);
    assert_eq!(ferry.get(&mod_path("example.com/d")).await.status, 200);
    assert_eq!(ferry.get("example.com/d/@v/v1.0.0.info").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for module in ["example.com/a", "example.com/d"] {
        assert_eq!(upstream.request_count(&zip(module)), 0, "{module}");
    }
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_listing_its_build_list_has_the_info_of_its_pruned_requirements_fetched_ahead() {
    let dir = tempfile::tempdir().unwrap();
    // Pruned go.mod files: a requires b and c, b requires d; e requires f (`go 1.21`).
    let mut modules = graph_at(Some("1.21"));
    modules.push(
        FixtureModule::package("example.com/e", "v1.0.0")
            .with_go_mod("module example.com/e\n\ngo 1.21\n\nrequire example.com/f v1.0.0\n"),
    );
    modules.push(FixtureModule::package("example.com/f", "v1.0.0"));
    let upstream = Upstream::start(modules).await;
    let ferry = start(dir.path(), &upstream, &[]).await;
    let info = |module: &str| format!("{module}/@v/v1.0.0.info");
    // The client reads a's go.mod: b and c are its fringe, whose go.mod the go command will not read.
    assert_eq!(ferry.get(&mod_path("example.com/a")).await.status, 200);
    // A client that builds asks for the `.info` of versions whose `.mod` it asked for first: d's. Nothing
    // is fetched ahead for that.
    assert_eq!(ferry.get(&mod_path("example.com/d")).await.status, 200);
    assert_eq!(ferry.get(&info("example.com/d")).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(upstream.request_count(&info("example.com/c")), 0);
    // The `.info` of b, of its fringe: it is listing its build list (`go list -m -json all`, `go mod
    // download all`), so c's is fetched before it asks.
    assert_eq!(ferry.get(&info("example.com/b")).await.status, 200);
    eventually("c's .info is stored unasked", async || {
        ferry.stored("example.com/c", "v1.0.0").await
    })
    .await;
    // While it lists, the fringe of each pruned go.mod it reads is fetched at once: e's requirement f.
    assert_eq!(ferry.get(&mod_path("example.com/e")).await.status, 200);
    eventually("f's .info is stored unasked", async || {
        ferry.stored("example.com/f", "v1.0.0").await
    })
    .await;
    // Listed, they are its build list's: once it downloads a zip (`go mod download all`), theirs are
    // fetched ahead too, the fringe's (c, f) with the rest.
    assert_eq!(ferry.get("example.com/a/@v/v1.0.0.zip").await.status, 200);
    for module in ["example.com/b", "example.com/c", "example.com/f"] {
        let zip = format!("{module}/@v/v1.0.0.zip");
        eventually(
            "the listed versions' zips are fetched unasked",
            async || upstream.request_count(&zip) == 1,
        )
        .await;
    }
    // The go command lists a graph with them through Ferry, which asks the upstream for nothing twice.
    let home = GoHome::new(dir.path(), &ferry.url());
    let app = app_module(dir.path());
    let requires = "require (\n\texample.com/a v1.0.0\n\texample.com/e v1.0.0\n)\n";
    write_file(
        &app,
        "go.mod",
        &format!("module app\n\ngo 1.21\n\n{requires}"),
    );
    let output = tokio::process::Command::from(home.command(&app, &["list", "-m", "-json", "all"]))
        .output()
        .await
        .unwrap();
    let said = go_said(&output);
    assert!(output.status.success(), "{said}");
    for module in ["a", "b", "c", "d", "e", "f"].map(|m| format!("example.com/{m}")) {
        assert!(upstream.request_count(&info(&module)) <= 1, "{module}");
        assert!(upstream.request_count(&mod_path(&module)) <= 1, "{module}");
        let zip = format!("{module}/@v/v1.0.0.zip");
        assert!(upstream.request_count(&zip) <= 1, "{module}");
    }
    ferry.stop().await;
}
