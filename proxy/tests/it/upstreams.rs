//! `[[upstreams]]`: an upstream per module pattern, with its own credentials, its `GOPROXY`-syntax list
//! (`,` moves on after a 404/410 only, `|` after any error), merged version lists and `@latest`, the
//! health of each upstream in the metrics, and located start-up errors for a bad table. The upstreams are
//! fixture GOPROXY servers on 127.0.0.1; the client is the real go command.

use std::path::Path;

use ferry::config::{self, Flags};
use ferry_testkit::{
    Behaviour, FixtureModule, GoHome, SumDbFixture, Upstream, capture_logs, eventually,
    write_goproxy_tree,
};

use crate::harness::{Ferry, ferry_env, write_file};

const TOKEN: &str = "corp-token-7f3a9c1e";

/// A Ferry whose default upstream is `default` and whose configuration file holds `tables`.
async fn ferry_with(dir: &Path, default: &Upstream, tables: &str) -> Ferry {
    ferry_with_vars(dir, default, tables, &[]).await
}

/// [`ferry_with`], with more of Ferry's environment.
async fn ferry_with_vars(
    dir: &Path,
    default: &Upstream,
    tables: &str,
    vars: &[(&str, &str)],
) -> Ferry {
    let file = write_file(dir, "ferry.toml", tables);
    let file = file.display().to_string();
    let mut vars = vars.to_vec();
    vars.push(("FERRY_CONFIG", &file));
    let env = ferry_env(dir, Some(&default.url()), &vars);
    Ferry::from_env(&env, &Flags::default()).await
}

/// `go` run in `cwd` through Ferry, without blocking the runtime that serves it.
async fn go(home: &GoHome, cwd: &Path, args: &[&str]) -> std::process::Output {
    let command = home.command(cwd, args);
    tokio::process::Command::from(command)
        .output()
        .await
        .expect("run go")
}

fn said(output: &std::process::Output) -> String {
    crate::harness::go_said(output)
}

#[tokio::test]
async fn a_private_pattern_is_fetched_from_its_upstream_with_its_token_and_the_rest_from_the_default()
 {
    capture_logs();
    let corp = Upstream::start(vec![FixtureModule::package("corp.example/lib", "v1.3.0")]).await;
    corp.require_authorization(&format!("Bearer {TOKEN}"));
    let public = Upstream::start(vec![FixtureModule::package("example.com/greet", "v1.2.0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = write_file(dir.path(), "corp.token", &format!("{TOKEN}\n"));
    let tables = format!(
        "[[upstreams]]\nname = \"corp\"\nmodules = [\"corp.example\"]\nproxy = \"{}\"\ntoken_file = \"{}\"\n",
        corp.url(),
        token_file.display()
    );
    let ferry = ferry_with(dir.path(), &public, &tables).await;

    // A program importing a private and a public package, built by the real go command through Ferry.
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    write_file(&app, "go.mod", "module app\n\ngo 1.21\n");
    let main = "package main\n\nimport (\n\t\"fmt\"\n\n\t\"corp.example/lib\"\n\t\"example.com/greet\"\n)\n\nfunc main() { fmt.Println(lib.Version(), greet.Version()) }\n";
    write_file(&app, "main.go", main);
    let home = GoHome::new(dir.path(), &ferry.url());
    let built = go(&home, &app, &["build", "-o", "app.bin", "."]).await;
    assert!(built.status.success(), "go build: {}", said(&built));
    let ran = tokio::process::Command::new(app.join("app.bin"))
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "v1.3.0 v1.2.0\n");

    // The token went to the private upstream with each request, and never to the default one.
    let sent = corp.authorizations();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|a| a.as_deref() == Some(&format!("Bearer {TOKEN}"))),
        "{sent:?}"
    );
    assert!(public.authorizations().iter().all(Option::is_none));
    assert!(
        public
            .requests()
            .iter()
            .all(|path| !path.starts_with("corp.example"))
    );

    // Failing, the private upstream is named by its configured name: neither its URL nor the token.
    corp.set_behaviour(Behaviour::Fail500);
    let reply = ferry.get("corp.example/lib/@v/v1.4.0.info").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains("upstream corp"), "{}", reply.text());
    assert!(!reply.text().contains(&corp.url()) && !reply.text().contains(TOKEN));
    let metrics = ferry.get("metrics").await.text();
    assert!(
        metrics.contains("ferry_upstream_requests_total{upstream=\"corp\",result=\"error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_upstream_up{upstream=\"corp\"} 0"),
        "{metrics}"
    );
    let logs = String::from_utf8_lossy(&capture_logs().lock().unwrap()).into_owned();
    assert!(
        logs.lines()
            .any(|l| l.contains("upstream=corp") && l.contains("upstream failed"))
    );
    assert!(!logs.contains(TOKEN), "the token was logged");
    ferry.stop().await;
}

#[tokio::test]
async fn go_list_versions_merges_the_lists_of_a_patterns_upstreams() {
    let module = "shared.example/m";
    let first = Upstream::start(vec![
        FixtureModule::new(module, "v1.0.0"),
        FixtureModule::new(module, "v1.1.0"),
    ])
    .await;
    let second = Upstream::start(vec![
        FixtureModule::new(module, "v1.1.0"),
        FixtureModule::new(module, "v1.2.0"),
    ])
    .await;
    let default = Upstream::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[[upstreams]]\nname = \"shared\"\nmodules = [\"shared.example\"]\nproxy = \"{},{}\"\n",
        first.url(),
        second.url()
    );
    let ferry = ferry_with(dir.path(), &default, &tables).await;
    let home = GoHome::new(dir.path(), &ferry.url());

    let listed = go(&home, dir.path(), &["list", "-m", "-versions", module]).await;
    assert!(listed.status.success(), "{}", said(&listed));
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        format!("{module} v1.0.0 v1.1.0 v1.2.0")
    );
    // `@latest` is the go command's latest of the merged list, though the first upstream never had it.
    let latest = go(
        &home,
        dir.path(),
        &["list", "-m", &format!("{module}@latest")],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&latest.stdout).trim(),
        format!("{module} v1.2.0"),
        "{}",
        said(&latest)
    );
    // Its files come from the second upstream, the first having answered 404.
    let got = go(
        &home,
        dir.path(),
        &["mod", "download", &format!("{module}@v1.2.0")],
    )
    .await;
    assert!(got.status.success(), "{}", said(&got));
    assert!(ferry.stored(module, "v1.2.0").await);
    // A release stored here that no upstream lists any more is merged in too (list and @latest).
    crate::harness::save(
        ferry.store().as_ref(),
        &FixtureModule::new(module, "v1.3.0"),
    )
    .await;
    let list = ferry.get(&format!("{module}/@v/list")).await.text();
    assert_eq!(list, "v1.0.0\nv1.1.0\nv1.2.0\nv1.3.0\n");
    let latest = ferry.get(&format!("{module}/@latest")).await.text();
    assert!(latest.contains("\"v1.3.0\""), "{latest}");
    // A query (a branch) is resolved by the first upstream that knows it.
    second.alias(module, "main", "v1.2.0");
    let branch = ferry.get(&format!("{module}/@v/main.info")).await;
    assert_eq!(branch.status, 200, "{}", branch.text());
    assert!(branch.text().contains("\"v1.2.0\""), "{}", branch.text());
    assert_eq!(
        default.requests(),
        Vec::<String>::new(),
        "the default upstream was asked"
    );
    ferry.stop().await;
}

#[tokio::test]
async fn a_comma_moves_on_after_a_404_only_and_a_pipe_after_any_error() {
    let versions = ["v1.0.0", "v1.1.0"];
    let modules: Vec<FixtureModule> = ["comma.example/m", "pipe.example/m"]
        .iter()
        .flat_map(|m| versions.iter().map(|v| FixtureModule::new(m, v)))
        .collect();
    let (flaky, steady) = (
        Upstream::start(vec![]).await,
        Upstream::start(modules).await,
    );
    let default = Upstream::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let (f, s) = (flaky.url(), steady.url());
    let tables = format!(
        "[[upstreams]]\nname = \"commas\"\nmodules = [\"comma.example\"]\nproxy = \"{f},{s}\"\n\n\
         [[upstreams]]\nname = \"pipes\"\nmodules = [\"pipe.example\"]\nproxy = \"{f}|{s}\"\n"
    );
    let ferry = ferry_with(dir.path(), &default, &tables).await;

    // The first upstream does not have them (404): both lists move on to the second.
    for module in ["comma.example/m", "pipe.example/m"] {
        let reply = ferry.get(&format!("{module}/@v/v1.0.0.info")).await;
        assert_eq!(reply.status, 200, "{module}: {}", reply.text());
    }
    // It fails (500): after a `,` that is the answer, named by the table; after a `|` the next one answers.
    flaky.set_behaviour(Behaviour::Fail500);
    let stopped = ferry.get("comma.example/m/@v/v1.1.0.info").await;
    assert_eq!(stopped.status, 502, "{}", stopped.text());
    assert!(
        stopped.text().contains("upstream commas: "),
        "{}",
        stopped.text()
    );
    assert!(!stopped.text().contains(&f), "{}", stopped.text());
    let moved_on = ferry.get("pipe.example/m/@v/v1.1.0.info").await;
    assert_eq!(moved_on.status, 200, "{}", moved_on.text());
    assert!(moved_on.text().contains("v1.1.0"));
    // A list the `,` table cannot get falls back on the stored versions, as for the default upstream.
    let stored = ferry.get("comma.example/m/@v/list").await;
    assert_eq!(
        (stored.status, stored.text()),
        (200, "v1.0.0\n".to_string())
    );
    let merged = ferry.get("pipe.example/m/@v/list").await;
    assert_eq!(merged.text(), "v1.0.0\nv1.1.0\n");

    let metrics = ferry.get("metrics").await.text();
    for line in [
        "ferry_upstream_requests_total{upstream=\"commas\",result=\"not_found\"} 1",
        "ferry_upstream_requests_total{upstream=\"commas\",result=\"error\"} 2",
        "ferry_upstream_requests_total{upstream=\"pipes#2\",result=\"ok\"}",
        "ferry_upstream_up{upstream=\"pipes\"} 0",
        "ferry_upstream_up{upstream=\"pipes#2\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert_eq!(default.requests(), Vec::<String>::new());
    ferry.stop().await;
}

#[tokio::test]
async fn a_tables_versions_are_verified_against_the_checksum_database_but_private_ones_are_never_looked_up()
 {
    let honest = FixtureModule::package("example.com/honest", "v1.0.0");
    let published = FixtureModule::package("example.com/tampered", "v1.0.0");
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    write_goproxy_tree(&tree, &[honest.clone(), published.clone()]);
    let sumdb = SumDbFixture::start("sum.fixture.example", &tree, 0);
    // The table's upstream serves a zip the checksum database never saw, and a private module it never will.
    let served = published.clone().file("backdoor.go", "package tampered\n");
    let private = FixtureModule::package("corp.example/secret", "v1.0.0");
    let table = Upstream::start(vec![honest.clone(), served, private.clone()]).await;
    // After a `|`, a mirror with the published copy: a version that fails its checks is still the answer.
    let mirror = Upstream::start(vec![published.clone()]).await;
    let default = Upstream::start(vec![]).await;
    let tables = format!(
        "[[upstreams]]\nname = \"mixed\"\nmodules = [\"example.com\", \"corp.example\"]\nproxy = \"{}|{}\"\n",
        table.url(),
        mirror.url()
    );
    let gosumdb = format!("{} {}", sumdb.key, sumdb.url);
    let vars = [
        ("GOSUMDB", gosumdb.as_str()),
        ("FERRY_SUMDB_PRIVATE", "corp.example"),
    ];
    let ferry = ferry_with_vars(dir.path(), &default, &tables, &vars).await;

    let reply = ferry.get("example.com/honest/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, honest.zip_bytes());
    eventually("the database saw the lookup", async || {
        let asked = sumdb.requests();
        asked.contains(&"/lookup/example.com/honest@v1.0.0".to_string())
    })
    .await;
    let reply = ferry.get("example.com/tampered/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains("SECURITY ERROR"), "{}", reply.text());
    assert!(!ferry.stored("example.com/tampered", "v1.0.0").await);
    assert!(
        mirror.requests().iter().all(|r| !r.ends_with(".zip")),
        "{:?}",
        mirror.requests()
    );

    // `sumdb_private` keeps the table's private module from the database, as GONOSUMDB would.
    let reply = ferry.get("corp.example/secret/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        sumdb.requests().iter().all(|r| !r.contains("corp.example")),
        "{:?}",
        sumdb.requests()
    );
    // The default upstream is asked only whether it relays the database (the route the fills take).
    let asked = default.requests();
    assert!(asked.iter().all(|r| r.starts_with("sumdb/")), "{asked:?}");
    ferry.stop().await;
}

#[tokio::test]
async fn a_zip_redirected_to_another_host_is_fetched_without_the_token() {
    let module = FixtureModule::package("corp.example/big", "v1.0.0");
    let corp = Upstream::start(vec![module.clone()]).await;
    corp.require_authorization(&format!("Bearer {TOKEN}"));
    let blobs = Upstream::start(vec![module.clone()]).await;
    corp.redirect(".zip", &blobs.url());
    let default = Upstream::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[[upstreams]]\nname = \"corp\"\nmodules = [\"corp.example\"]\nproxy = \"{}\"\ntoken_env = \"CORP_TOKEN\"\n",
        corp.url()
    );
    let vars = [("CORP_TOKEN", TOKEN)];
    let ferry = ferry_with_vars(dir.path(), &default, &tables, &vars).await;
    let reply = ferry.get("corp.example/big/@v/v1.0.0.zip").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, module.zip_bytes());
    assert_eq!(
        blobs.requests(),
        vec!["corp.example/big/@v/v1.0.0.zip".to_string()]
    );
    assert_eq!(
        blobs.authorizations(),
        vec![None],
        "the token went to another host"
    );
    ferry.stop().await;
}

#[tokio::test]
async fn a_pipe_moves_on_from_a_failing_proxy_to_direct_and_a_program_builds_from_the_git_host() {
    use crate::private::{
        MODULE, build_importing_the_private_module, ferry_home, private_repository,
    };
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    private_repository(&hosts);
    let home = ferry_home(dir.path(), &format!("file://{}/", hosts.display()), None);
    let failing = Upstream::start(vec![]).await;
    failing.set_behaviour(Behaviour::Fail(503));
    let default = Upstream::start(vec![]).await;
    let tables = format!(
        "[[upstreams]]\nname = \"git\"\nmodules = [\"git.corp.example\"]\nproxy = \"{}|direct\"\n",
        failing.url()
    );
    let home = home.display().to_string();
    let vars = [("HOME", home.as_str()), ("GOPRIVATE", "git.corp.example")];
    let ferry = ferry_with_vars(dir.path(), &default, &tables, &vars).await;
    let printed = build_importing_the_private_module(dir.path(), &ferry).await;
    assert_eq!(printed, "from the private host\n");
    assert!(ferry.stored(MODULE, "v1.0.0").await);
    assert!(!failing.requests().is_empty());
    assert!(
        default
            .requests()
            .iter()
            .all(|r| !r.starts_with("git.corp.example"))
    );
    let metrics = ferry.get("metrics").await.text();
    for line in [
        "ferry_upstream_requests_total{upstream=\"git\",result=\"error\"}",
        "ferry_upstream_requests_total{upstream=\"git#2\",result=\"ok\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    ferry.stop().await;
}

#[tokio::test]
async fn an_upstream_that_hangs_is_a_504_naming_it_and_is_marked_down() {
    let hanging = Upstream::start(vec![FixtureModule::new("slow.example/m", "v1.0.0")]).await;
    hanging.set_behaviour(Behaviour::Hang);
    let default = Upstream::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[[upstreams]]\nname = \"slow\"\nmodules = [\"slow.example\"]\nproxy = \"{}\"\n",
        hanging.url()
    );
    let vars = [("FERRY_FETCH_TIMEOUT", "1s")];
    let ferry = ferry_with_vars(dir.path(), &default, &tables, &vars).await;
    let reply = ferry.get("slow.example/m/@v/v1.0.0.mod").await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert!(
        reply.text().contains("from upstream slow"),
        "{}",
        reply.text()
    );
    assert!(!reply.text().contains(&hanging.url()), "{}", reply.text());
    let metrics = ferry.get("metrics").await.text();
    assert!(
        metrics.contains("ferry_upstream_up{upstream=\"slow\"} 0"),
        "{metrics}"
    );
    ferry.stop().await;
}

#[test]
fn a_bad_table_stops_start_up_at_file_line_col_saying_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let good = "[[upstreams]]\nname = \"corp\"\nmodules = [\"corp.example/*\"]\nproxy = \"https://goproxy.corp.example\"\n\n";
    for (table, at, words) in [
        (
            "[[upstreams]]\nname = \"vendor\"\nmodules = [\"vendor.example/*\"]\nproxy = \"file:///srv/goproxy\"\n",
            ":9:9:",
            "is not an http:// or https:// URL, direct or off",
        ),
        (
            "[[upstreams]]\nname = \"vendor\"\nmodules = [\"vendor.example/*\"]\nproxy = \"https://v.example\"\ntoken_env = \"VENDOR_TOKEN\"\n",
            ":10:13:",
            "token_env VENDOR_TOKEN is not set in Ferry's environment",
        ),
        (
            "[[upstreams]]\nname = \"corp\"\nmodules = [\"other.example/*\"]\nproxy = \"direct\"\n",
            ":7:8:",
            "upstream name \"corp\" is used by an earlier table",
        ),
        (
            "[[upstreams]]\nname = \"vendor\"\nmodule = [\"vendor.example/*\"]\n",
            ":8:1:",
            "unknown key `module`, expected one of name, modules, proxy",
        ),
        (
            "[[upstreams]]\nname = \"vendor\"\nmodules = [\"vendor.example/[\"]\nproxy = \"direct\"\n",
            ":8:11:",
            "write e.g. \"corp.example/*\"",
        ),
    ] {
        let file = write_file(dir.path(), "ferry.toml", &format!("{good}{table}"));
        let env = ferry_env(
            dir.path(),
            None,
            &[("FERRY_CONFIG", &file.display().to_string())],
        );
        let error = config::load(&Flags::default(), &env)
            .map(|_| ())
            .expect_err("refused")
            .to_string();
        let located = format!("{}{at}", file.display());
        assert!(error.starts_with(&located), "want {located}: {error}");
        assert!(error.contains(words), "{error}");
    }
}

#[tokio::test]
async fn netrc_and_token_env_credentials_go_to_their_own_upstream_only() {
    let vendor = Upstream::start(vec![FixtureModule::new("vendor.example/sdk", "v1.4.0")]).await;
    vendor.require_authorization("Basic Y2k6dmVuZG9yLXB3"); // ci:vendor-pw
    let team = Upstream::start(vec![FixtureModule::new("team.example/tool", "v0.3.0")]).await;
    team.require_authorization("Bearer team-token-41");
    let default = Upstream::start(vec![FixtureModule::new("example.com/open", "v1.0.0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let netrc = write_file(
        dir.path(),
        "netrc",
        "machine elsewhere.example login x password y\nmachine 127.0.0.1 login ci password vendor-pw\n",
    );
    let tables = format!(
        "[[upstreams]]\nname = \"vendor\"\nmodules = [\"vendor.example\"]\nproxy = \"{}\"\nnetrc = \"{}\"\n\n\
         [[upstreams]]\nname = \"team\"\nmodules = [\"team.example\"]\nproxy = \"{}\"\ntoken_env = \"TEAM_TOKEN\"\n",
        vendor.url(),
        netrc.display(),
        team.url()
    );
    let file = write_file(dir.path(), "ferry.toml", &tables);
    let env = ferry_env(
        dir.path(),
        Some(&default.url()),
        &[
            ("FERRY_CONFIG", &file.display().to_string()),
            ("TEAM_TOKEN", "team-token-41"),
        ],
    );
    let ferry = Ferry::from_env(&env, &Flags::default()).await;
    for path in [
        "vendor.example/sdk/@v/v1.4.0.zip",
        "team.example/tool/@v/v0.3.0.zip",
        "example.com/open/@v/v1.0.0.zip",
    ] {
        let reply = ferry.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    assert!(
        vendor
            .authorizations()
            .iter()
            .all(|a| a.as_deref() == Some("Basic Y2k6dmVuZG9yLXB3"))
    );
    assert!(
        team.authorizations()
            .iter()
            .all(|a| a.as_deref() == Some("Bearer team-token-41"))
    );
    assert!(default.authorizations().iter().all(Option::is_none));
    // `ferry config` shows the tables, not their credentials.
    let config = config::load(&Flags::default(), &env).unwrap();
    let shown = ferry::config_report::report(&config);
    let line = shown
        .iter()
        .find(|l| l.key == "upstreams")
        .expect("an upstreams line");
    assert!(
        line.value
            .contains("vendor: vendor.example -> http://127.0.0.1"),
        "{line:?}"
    );
    assert!(line.source.contains("ferry.toml:1:"), "{line:?}");
    assert!(
        !format!("{shown:?}").contains("team-token-41")
            && !format!("{shown:?}").contains("vendor-pw")
    );
    ferry.stop().await;
}

#[test]
fn a_table_whose_proxy_is_ferry_itself_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = ferry_testkit::closed_port();
    let tables = format!(
        "[[upstreams]]\nname = \"loop\"\nmodules = [\"corp.example\"]\nproxy = \"https://goproxy.corp.example,http://127.0.0.1:{port}\"\n"
    );
    let file = write_file(dir.path(), "ferry.toml", &tables);
    let output = crate::harness::ferry()
        .current_dir(dir.path())
        .env("GOPROXY", "off")
        .args(["--config", &file.display().to_string()])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--storage",
            "memory://",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "[[upstreams]] loop lists http://127.0.0.1:{port}, this Ferry's own address"
        )),
        "{stderr}"
    );
}
