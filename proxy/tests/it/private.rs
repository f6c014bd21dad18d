//! Private modules, hermetically: a git repository on this machine stands in for a private Git host
//! (`git.corp.example`), reached by Ferry's `go` in `direct` mode through git's `url.<base>.insteadOf` in
//! Ferry's own `~/.gitconfig`, and a program importing it is built through Ferry by the real go command;
//! then the same over HTTP with Basic authentication, the credentials in Ferry's `~/.netrc`.

use std::path::Path;
use std::process::Command;

use ferry::config::Flags;
use ferry_testkit::{GitHttpHost, GoHome};

use crate::harness::{Ferry, ferry_env, write_file};

/// A module path on the private host, `.git`-qualified so that the go command knows it is a git
/// repository without asking the host (no `?go-get=1` page is needed).
pub(crate) const MODULE: &str = "git.corp.example/team/lib.git";

/// `git <args>` in `dir`, isolated from the machine's git configuration; panics with git's output when it
/// fails.
fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ferry Test")
        .env("GIT_AUTHOR_EMAIL", "test@corp.example")
        .env("GIT_COMMITTER_NAME", "Ferry Test")
        .env("GIT_COMMITTER_EMAIL", "test@corp.example")
        .output()
        .expect("the tests need git");
    assert!(
        output.status.success(),
        "git {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The private host's repository `team/lib` under `hosts`, with `v1.0.0` tagged and a later commit that is
/// not released.
pub(crate) fn private_repository(hosts: &Path) {
    let repo = hosts.join("team/lib");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    write_file(&repo, "go.mod", &format!("module {MODULE}\n\ngo 1.21\n"));
    write_file(
        &repo,
        "lib.go",
        "// Package lib is private.\npackage lib\n\nfunc Secret() string { return \"from the private host\" }\n",
    );
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    git(&repo, &["tag", "v1.0.0"]);
    write_file(&repo, "README", "unreleased\n");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "after v1"]);
}

/// Ferry's home as an operator would set it up: a `.gitconfig` that sends the private host to `base`
/// (git's `url.<base>.insteadOf`), and `netrc` as its `.netrc` when given.
pub(crate) fn ferry_home(dir: &Path, base: &str, netrc: Option<&str>) -> std::path::PathBuf {
    let home = dir.join("ferry-home");
    std::fs::create_dir_all(&home).unwrap();
    write_file(
        &home,
        ".gitconfig",
        &format!("[url \"{base}\"]\n\tinsteadOf = https://git.corp.example/\n"),
    );
    if let Some(netrc) = netrc {
        write_file(&home, ".netrc", netrc);
    }
    home
}

/// Ferry fetching `direct` with `GOPRIVATE=git.corp.example`, its home `home`. GOSUMDB is not off:
/// GOPRIVATE alone keeps the private module away from the public checksum database (which this machine
/// cannot reach, so a leak would fail the fetch).
async fn private_ferry(dir: &Path, home: &Path) -> Ferry {
    let mut env = ferry_env(
        dir,
        Some("direct"),
        &[
            ("HOME", &home.display().to_string()),
            ("GOPRIVATE", "git.corp.example"),
        ],
    );
    env.remove("GOSUMDB");
    Ferry::from_env(&env, &Flags::default()).await
}

/// Builds, through `ferry`, a program importing the private module, as a builder that knows nothing
/// private would (no GOPRIVATE; only GONOSUMDB, since the public checksum database has no record of it);
/// returns what the program prints.
pub(crate) async fn build_importing_the_private_module(dir: &Path, ferry: &Ferry) -> String {
    let client = GoHome::new(dir, &ferry.url());
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    write_file(&app, "go.mod", "module app\n\ngo 1.21\n");
    write_file(
        &app,
        "main.go",
        &format!(
            // The builtin println (to stderr) spares the build compiling fmt in its empty cache.
            "package main\n\nimport lib \"{MODULE}\"\n\nfunc main() {{ println(lib.Secret()) }}\n"
        ),
    );
    let mut build = client.command(&app, &["build", "-o", "app", "."]);
    build
        .env_remove("GOSUMDB")
        .env("GONOSUMDB", "git.corp.example");
    let output = tokio::process::Command::from(build)
        .output()
        .await
        .expect("run go build");
    assert!(
        output.status.success(),
        "go build through Ferry failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The latest release, not the unreleased commit.
    let go_mod = std::fs::read_to_string(app.join("go.mod")).unwrap();
    assert!(go_mod.contains(&format!("{MODULE} v1.0.0")), "{go_mod}");
    let go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap();
    assert!(go_sum.contains(&format!("{MODULE} v1.0.0 h1:")), "{go_sum}");
    let run = Command::new(app.join("app")).output().unwrap();
    String::from_utf8_lossy(&run.stderr).into_owned()
}

#[tokio::test]
async fn a_private_module_from_a_git_host_is_fetched_direct_by_ferry_and_built_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    private_repository(&hosts);
    // The private host is the local repository.
    let home = ferry_home(dir.path(), &format!("file://{}/", hosts.display()), None);
    let ferry = private_ferry(dir.path(), &home).await;
    let printed = build_importing_the_private_module(dir.path(), &ferry).await;
    assert_eq!(printed, "from the private host\n");
    // Ferry keeps it for the next builder.
    assert!(ferry.stored(MODULE, "v1.0.0").await);
    ferry.stop().await;
}

#[tokio::test]
async fn a_private_git_host_over_http_takes_the_credentials_in_ferrys_netrc() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    private_repository(&hosts);
    let host = GitHttpHost::start(&hosts, "ferry-bot", "s3cret").await;
    // git reaches the host as 127.0.0.1, so that is the machine the .netrc names.
    let netrc = "machine 127.0.0.1 login ferry-bot password s3cret\n";
    let home = ferry_home(dir.path(), &host.url, Some(netrc));
    let ferry = private_ferry(dir.path(), &home).await;
    let printed = build_importing_the_private_module(dir.path(), &ferry).await;
    assert_eq!(printed, "from the private host\n");
    let counts = host.counts();
    assert!(counts.served > 0, "{counts:?}");
    assert!(ferry.stored(MODULE, "v1.0.0").await);
    ferry.stop().await;
}
