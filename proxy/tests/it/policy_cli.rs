//! The download policy through the `ferry` binary as an operator meets it: `ferry policy check`,
//! `ferry policy validate`, start-up refused on an invalid download file, and reloading on SIGHUP.

use std::process::Output;

use crate::harness::{ferry, get_blocking, raw_header, serve_memory, serving, write_file};

/// The example download file of `docs/download-modes.md`; the line numbers below refer to it.
const EXAMPLE: &str = r#"downloadURL = "https://upstream.example"
mode = "async_redirect"

download "github.com/gomods/*" {
    mode = "sync"
}
download "golang.org/x/*" {
    mode = "none"
}
download "github.com/pkg/*" {
    mode = "redirect"
    downloadURL = "https://mirror.example/prefix"
}
"#;

/// The example with two mistakes: a misspelt mode (line 5) and a misspelt key (line 9).
const INVALID: &str = r#"downloadURL = "https://upstream.example"
mode = "async_redirect"

download "github.com/gomods/*" {
    mode = "asyncredirect"
}
download "github.com/pkg/*" {
    mode = "redirect"
    downloadUrl = "https://mirror.example/prefix"
}
"#;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn policy_check_prints_mode_url_and_deciding_rule_per_module() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "download.hcl", EXAMPLE);
    let modules = [
        "github.com/pkg/errors",
        "golang.org/x/mod",
        "github.com/gomods/athens",
        "example.com/other",
    ];
    let f = file.display();
    let want = format!(
        "MODULE                    MODE            URL                            RULE
github.com/pkg/errors     redirect        https://mirror.example/prefix  download \"github.com/pkg/*\" at {f}:10
golang.org/x/mod          none            -                              download \"golang.org/x/*\" at {f}:7
github.com/gomods/athens  sync            -                              download \"github.com/gomods/*\" at {f}:4
example.com/other         async_redirect  https://upstream.example/      top-level mode at {f}:2
"
    );

    let output = ferry()
        .args(["policy", "check", "--file", file.to_str().unwrap()])
        .args(modules)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), want);

    // Without --file, the policy `ferry serve` would load: here from FERRY_DOWNLOAD_MODE.
    let output = ferry()
        .env("FERRY_DOWNLOAD_MODE", format!("file:{f}"))
        .args(["policy", "check"])
        .args(modules)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), want);

    // ... or from the configuration file's download_mode.
    let config = write_file(
        dir.path(),
        "ferry.toml",
        "download_mode = \"none\"\nstorage = \"memory://\"\n",
    );
    let output = ferry()
        .args(["policy", "check", "--config", config.to_str().unwrap()])
        .arg("example.com/other")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!(
            "example.com/other  none  -    default mode from download mode in {}\n",
            config.display()
        )),
        "{}",
        stdout(&output)
    );

    // A module path is required; an invalid file is reported, not checked against.
    let output = ferry().args(["policy", "check"]).output().unwrap();
    assert!(!output.status.success());
    let invalid = write_file(dir.path(), "invalid.hcl", INVALID);
    let output = ferry()
        .args(["policy", "check", "--file", invalid.to_str().unwrap()])
        .arg("example.com/other")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains(&format!("{}:5:", invalid.display())),
        "{}",
        stderr(&output)
    );
}

#[test]
fn policy_validate_exits_non_zero_and_lists_every_problem_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "download.hcl", EXAMPLE);
    let output = ferry()
        .args(["policy", "validate", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "{f}: valid\n3 download blocks; other modules: async_redirect https://upstream.example/ (top-level mode at {f}:2)\n",
            f = file.display()
        )
    );

    let invalid = write_file(dir.path(), "invalid.hcl", INVALID);
    let output = ferry()
        .args(["policy", "validate", invalid.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(stdout(&output), "");
    let problems = stderr(&output);
    let f = invalid.display();
    for problem in [
        format!("{f}:5:12: unknown mode \"asyncredirect\"; write mode = \"async_redirect\""),
        format!("{f}:9:5: unknown key \"downloadUrl\"; write downloadURL"),
    ] {
        assert!(problems.contains(&problem), "{problem}\nin:\n{problems}");
    }

    let output = ferry()
        .args(["policy", "validate"])
        .arg(dir.path().join("missing.hcl"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("missing.hcl"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn serve_refuses_to_start_on_an_invalid_download_file() {
    let dir = tempfile::tempdir().unwrap();
    let invalid = write_file(dir.path(), "invalid.hcl", INVALID);
    let serve = |mode: &str| {
        ferry()
            .env("FERRY_LISTEN", "127.0.0.1:0")
            .env("FERRY_STORAGE", "memory://")
            .env("ATHENS_DOWNLOAD_MODE", mode)
            .output()
            .unwrap()
    };
    // `output` returns only once the process has exited: it never started serving.
    let output = serve(&format!("file:{}", invalid.display()));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "{}:5:12: unknown mode \"asyncredirect\"",
            invalid.display()
        )) && message.contains(&format!("{}:9:5: unknown key", invalid.display())),
        "{message}"
    );
    assert!(!message.contains("ferry is serving"), "{message}");

    let output = serve("custom:bW9kZSA9ICJzeW5jCg==");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("ATHENS_DOWNLOAD_MODE (custom:):1:"),
        "{}",
        stderr(&output)
    );
}

/// The status line and `Location` header of a GET.
fn status_and_location(address: &str, path: &str) -> (String, String) {
    let answer = get_blocking(address, path);
    let status = answer.lines().next().unwrap_or_default().to_string();
    (status, raw_header(&answer, "location").to_string())
}

#[test]
fn sighup_reloads_the_download_file_and_keeps_the_old_policy_when_the_new_one_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "download.hcl",
        "mode = \"none\"\n\ndownload \"example.com/*\" {\n    mode = \"none\"\n}\n",
    );
    let command = serve_memory(
        dir.path(),
        &[("FERRY_DOWNLOAD_MODE", &format!("file:{}", file.display()))],
    );
    let (mut ferry, address) = serving(command);
    let path = "/example.com/a/@v/v1.0.0.zip";
    let (status, _) = status_and_location(&address, path);
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");

    std::fs::write(
        &file,
        "mode = \"none\"\n\ndownload \"example.com/*\" {\n    mode = \"redirect\"\n    downloadURL = \"http://mirror.example/reloaded\"\n}\n",
    )
    .unwrap();
    ferry.signal("-HUP");
    let redirected = (
        "HTTP/1.1 307 Temporary Redirect".to_string(),
        format!("http://mirror.example/reloaded{path}"),
    );
    ferry.wait_for("the reload", || {
        status_and_location(&address, path) == redirected
    });
    assert!(ferry.log().contains("SIGHUP: download policy reloaded"));

    // An invalid file is reported with its location, and the policy in force stays.
    std::fs::write(
        &file,
        "mode = \"none\"\n\ndownload \"example.com/*\" {\n    mode = \"sometimes\"\n}\n",
    )
    .unwrap();
    ferry.signal("-HUP");
    ferry.wait_for("the report of the invalid file", || {
        ferry.log().contains("keeping the old one")
    });
    let log = ferry.log();
    assert!(
        log.contains(&format!("{}:4:12: unknown mode", file.display())),
        "{log}"
    );
    assert_eq!(status_and_location(&address, path), redirected);
    assert!(ferry.child.try_wait().unwrap().is_none(), "still running");

    ferry.signal("-TERM");
    assert!(ferry.child.wait().unwrap().success());
}

#[test]
fn sighup_refuses_a_fetching_policy_when_ferry_started_without_an_upstream() {
    let dir = tempfile::tempdir().unwrap();
    // No mode fetches, so Ferry starts without setting up the go command.
    let file = write_file(dir.path(), "download.hcl", "mode = \"none\"\n");
    let command = serve_memory(
        dir.path(),
        &[("FERRY_DOWNLOAD_MODE", &format!("file:{}", file.display()))],
    );
    let (mut ferry, address) = serving(command);

    // A valid file, but its `sync` could not fetch: every miss would be a 404 that says nothing of why.
    std::fs::write(&file, "mode = \"sync\"\n").unwrap();
    ferry.signal("-HUP");
    ferry.wait_for("the refusal", || {
        ferry.log().contains("keeping the old one")
    });
    let log = ferry.log();
    assert!(
        log.contains("the new download policy fetches from the upstream, but Ferry started with a policy that never fetches")
            && log.contains("restart Ferry to use this policy")
            && !log.contains("download policy reloaded"),
        "{log}"
    );
    let answer = get_blocking(&address, "/example.com/a/@v/v1.0.0.mod");
    assert!(
        answer.starts_with("HTTP/1.1 404")
            && answer.contains("the download policy does not fetch it (top-level mode at"),
        "the old policy answers: {answer}"
    );

    ferry.signal("-TERM");
    assert!(ferry.child.wait().unwrap().success());
}

#[test]
fn a_sighup_sent_the_moment_ferry_says_it_is_serving_reloads_instead_of_killing_it() {
    // Before the handlers were installed ahead of the "ferry is serving" line, a SIGHUP at that moment
    // killed the release binary 7 times in 40: ten rounds find that with high probability.
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "download.hcl", "mode = \"none\"\n");
    for round in 0..10 {
        let command = serve_memory(
            dir.path(),
            &[("FERRY_DOWNLOAD_MODE", &format!("file:{}", file.display()))],
        );
        let (mut ferry, _) = serving(command);
        ferry.signal("-HUP");
        ferry.wait_for("the reload", || {
            ferry.log().contains("SIGHUP: download policy reloaded")
        });
        assert!(
            ferry.child.try_wait().unwrap().is_none(),
            "round {round}: ferry died on SIGHUP:\n{}",
            ferry.log()
        );
        ferry.signal("-TERM");
        assert!(ferry.child.wait().unwrap().success(), "round {round}");
    }
}

/// The docs' example with the `github.com/pkg/*` block repeated at line 14 (a dead block).
fn example_with_a_repeated_block() -> String {
    format!("{EXAMPLE}download \"github.com/pkg/*\" {{\n    mode = \"sync\"\n}}\n")
}

#[test]
fn policy_validate_prints_warnings_with_their_location_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "download.hcl", &example_with_a_repeated_block());
    let f = file.display();
    let output = ferry()
        .args(["policy", "validate", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "{f}:14:10: warning: pattern \"github.com/pkg/*\" is already used by the block at line 10, so this block never applies; merge the two blocks or delete this one\n"
        )
    );
    assert_eq!(
        stdout(&output),
        format!(
            "{f}: valid, with 1 warning\n4 download blocks; other modules: async_redirect https://upstream.example/ (top-level mode at {f}:2)\n"
        )
    );

    // `policy check` prints them too (on stderr), and answers as Athens would: the first block decides.
    let output = ferry()
        .args(["policy", "check", "--file", file.to_str().unwrap()])
        .arg("github.com/pkg/errors")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains(&format!("{f}:14:10: warning: ")));
    assert!(
        stdout(&output).contains(&format!(
            "redirect  https://mirror.example/prefix  download \"github.com/pkg/*\" at {f}:10"
        )),
        "{}",
        stdout(&output)
    );
}

#[test]
fn serve_logs_policy_warnings_at_start_up_and_after_a_sighup_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "download.hcl",
        "mode = \"none\"\ndownloadURL = \"\"\n\ndownload \"example.com/corp/\" {\n    mode = \"none\"\n}\n",
    );
    let command = serve_memory(
        dir.path(),
        &[("ATHENS_DOWNLOAD_MODE", &format!("file:{}", file.display()))],
    );
    let (mut ferry, _) = serving(command);
    let start_up = format!(
        "{}:4:10: warning: pattern \"example.com/corp/\" ends with `/`",
        file.display()
    );
    let log = ferry.log();
    assert!(
        log.lines()
            .any(|line| line.contains("WARN") && line.contains(&start_up)),
        "{log}"
    );

    std::fs::write(
        &file,
        "mode = \"none\"\n\ndownload \"example.com/*\" {\n    mode = \"none\"\n}\ndownload \"example.com/team/*\" {\n    mode = \"none\"\n}\n",
    )
    .unwrap();
    ferry.signal("-HUP");
    let reload = format!(
        "{}:6:10: warning: every module pattern \"example.com/team/*\" matches is already matched by \"example.com/*\" in the block at line 3",
        file.display()
    );
    ferry.wait_for("the reload's warning", || {
        ferry
            .log()
            .lines()
            .any(|line| line.contains("WARN") && line.contains("SIGHUP") && line.contains(&reload))
    });
    assert!(ferry.log().contains("SIGHUP: download policy reloaded"));
    ferry.signal("-TERM");
    assert!(ferry.child.wait().unwrap().success());
}

#[test]
fn an_athens_bare_redirect_takes_athens_download_url_after_ferry_download_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = "/example.com/a/@v/v1.0.0.zip";
    let serve = |extra: &[(&str, &str)]| {
        let mut command = serve_memory(
            dir.path(),
            &[
                ("ATHENS_DOWNLOAD_MODE", "redirect"),
                ("ATHENS_DOWNLOAD_URL", "http://mirror.example/athens"),
            ],
        );
        command.envs(extra.iter().copied());
        let (mut ferry, address) = serving(command);
        let answer = status_and_location(&address, path);
        ferry.signal("-TERM");
        assert!(ferry.child.wait().unwrap().success());
        answer
    };
    let status = "HTTP/1.1 307 Temporary Redirect".to_string();
    assert_eq!(
        serve(&[]),
        (
            status.clone(),
            format!("http://mirror.example/athens{path}")
        )
    );
    assert_eq!(
        serve(&[("FERRY_DOWNLOAD_URL", "http://mirror.example/ferry")]),
        (status, format!("http://mirror.example/ferry{path}"))
    );
}

#[test]
fn serve_refuses_download_urls_and_mode_names_athens_would_take_without_echoing_a_password() {
    let refused = |vars: &[(&str, &str)]| {
        let mut command = ferry();
        command
            .env("FERRY_LISTEN", "127.0.0.1:0")
            .env("FERRY_STORAGE", "memory://");
        for (name, value) in vars {
            command.env(name, value);
        }
        // `output` returns only once the process has exited: it never started serving.
        let output = command.output().unwrap();
        assert!(!output.status.success());
        assert!(!stderr(&output).contains("ferry is serving"));
        stderr(&output)
    };
    let message = refused(&[
        ("ATHENS_DOWNLOAD_MODE", "redirect"),
        ("ATHENS_DOWNLOAD_URL", "https://ops:hunter2@mirror.example"),
    ]);
    assert!(
        message.contains(
            "ATHENS_DOWNLOAD_URL: downloadURL \"https://***@mirror.example\" holds credentials"
        ) && message.contains("remove the user:password@ part")
            && !message.contains("hunter2"),
        "{message}"
    );
    let message = refused(&[
        ("ATHENS_DOWNLOAD_MODE", "redirect"),
        ("ATHENS_DOWNLOAD_URL", "https://proxy.example,direct"),
    ]);
    assert!(
        message.contains("is a GOPROXY list, not one URL"),
        "{message}"
    );
    let message = refused(&[("ATHENS_DOWNLOAD_MODE", " sync ")]);
    assert!(
        message.contains("ATHENS_DOWNLOAD_MODE: unknown download mode \" sync \"; write sync without the surrounding spaces"),
        "{message}"
    );
}
