//! Private modules, hermetically: a git repository on this machine stands in for a private Git host
//! (`git.corp.example`), reached by Ferry's `go` in `direct` mode through git's `url.<base>.insteadOf` in
//! Ferry's own `~/.gitconfig`, and a program importing it is built through Ferry by the real go command.

use std::path::Path;
use std::process::Command;

use ferry::config::Flags;
use ferry_testkit::GoHome;

use crate::harness::{Ferry, ferry_env, write_file};

/// A module path on the private host, `.git`-qualified so that the go command knows it is a git
/// repository without asking the host (no `?go-get=1` page is needed).
const MODULE: &str = "git.corp.example/team/lib.git";

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
fn private_repository(hosts: &Path) {
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

#[tokio::test]
async fn a_private_module_from_a_git_host_is_fetched_direct_by_ferry_and_built_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    private_repository(&hosts);
    // Ferry's home holds the git configuration an operator would: here it sends the private host to the
    // local repository instead of to https://git.corp.example/.
    let ferry_home = dir.path().join("ferry-home");
    std::fs::create_dir_all(&ferry_home).unwrap();
    write_file(
        &ferry_home,
        ".gitconfig",
        &format!(
            "[url \"file://{}/\"]\n\tinsteadOf = https://git.corp.example/\n",
            hosts.display()
        ),
    );
    let mut env = ferry_env(
        dir.path(),
        Some("direct"),
        &[
            ("HOME", &ferry_home.display().to_string()),
            ("GOPRIVATE", "git.corp.example"),
        ],
    );
    // Not off: GOPRIVATE alone keeps the private module away from the public checksum database (which this
    // machine cannot reach, so a leak would fail the fetch).
    env.remove("GOSUMDB");
    let ferry = Ferry::from_env(&env, &Flags::default()).await;

    // The client knows nothing private: no GOPRIVATE, only that the public checksum database has no
    // record of this module.
    let client = GoHome::new(dir.path(), &ferry.url());
    let app = dir.path().join("app");
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
    let run = Command::new(app.join("app")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stderr), "from the private host\n");
    // The latest release, not the unreleased commit, and Ferry keeps it for the next builder.
    let go_mod = std::fs::read_to_string(app.join("go.mod")).unwrap();
    assert!(go_mod.contains(&format!("{MODULE} v1.0.0")), "{go_mod}");
    assert!(ferry.stored(MODULE, "v1.0.0").await);
    let go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap();
    assert!(go_sum.contains(&format!("{MODULE} v1.0.0 h1:")), "{go_sum}");
    ferry.stop().await;
}
