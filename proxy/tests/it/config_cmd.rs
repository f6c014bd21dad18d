//! `ferry config` through the real binary: every setting with its effective value and its source, the
//! same errors as `ferry serve`, no secret in the output, and exactly the settings the configuration reference (`docs/configuration.md`) documents.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use crate::harness::{ferry, write_file};

/// `ferry config ARGS` run in `dir`; its output.
fn config_in(dir: &std::path::Path, command: &mut Command, args: &[&str]) -> Output {
    command
        .current_dir(dir)
        .arg("config")
        .args(args)
        .output()
        .unwrap()
}

/// The printed lines as (key, value, source), from `--format json`, after checking it succeeded.
fn settings(output: &Output) -> Vec<(String, String, String)> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("ferry config --format json prints JSON");
    lines
        .iter()
        .map(|line| {
            let field = |name: &str| line[name].as_str().expect(name).to_string();
            (field("key"), field("value"), field("source"))
        })
        .collect()
}

/// The value and source printed for `key`.
fn setting(lines: &[(String, String, String)], key: &str) -> (String, String) {
    let (_, value, source) = lines
        .iter()
        .find(|(k, _, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {lines:?}"));
    (value.clone(), source.clone())
}

fn pair(value: &str, source: &str) -> (String, String) {
    (value.to_string(), source.to_string())
}

#[test]
fn with_nothing_set_every_setting_shows_its_default_and_nothing_is_bound_or_created() {
    let dir = tempfile::tempdir().unwrap();
    let output = config_in(dir.path(), &mut ferry(), &["--format", "json"]);
    let lines = settings(&output);
    for (key, value, source) in &lines {
        assert_eq!(source, "default", "{key} = {value}");
    }
    assert_eq!(setting(&lines, "listen"), pair("127.0.0.1:3000", "default"));
    assert_eq!(
        setting(&lines, "storage"),
        pair("file://./ferry-data", "default")
    );
    assert_eq!(setting(&lines, "fetcher.timeout"), pair("10m", "default"));
    assert_eq!(setting(&lines, "cache.max_bytes"), pair("16MiB", "default"));
    assert_eq!(setting(&lines, "sumdbs"), pair("sum.golang.org", "default"));
    assert_eq!(setting(&lines, "sumdb_private"), pair("none", "default"));
    // Loading is all it does: the store and the work dir `ferry serve` would create are not there.
    assert!(!dir.path().join("ferry-data").exists());
    assert!(!dir.path().join("ferry-work").exists());

    // An address another process holds is shown, not bound (serve would stop on it).
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = held.local_addr().unwrap().to_string();
    let output = config_in(dir.path(), &mut ferry(), &["--listen", &address]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    let listen = text
        .lines()
        .find(|line| line.starts_with("listen "))
        .unwrap();
    assert_eq!(
        listen.split_whitespace().collect::<Vec<_>>(),
        ["listen", address.as_str(), "flag", "--listen"]
    );
}

#[test]
fn a_file_value_shows_file_line_col_an_env_var_overrides_it_and_a_flag_overrides_both() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "ferry.toml",
        "# Ferry\nstorage = \"memory://\"\nlisten = \"127.0.0.1:3001\"\n\n[fetcher]\ntimeout = \"2m\"\n",
    );
    let at = |line: usize, column: usize| format!("file {}:{line}:{column}", file.display());
    let config = file.to_str().unwrap();

    let lines = settings(&config_in(
        dir.path(),
        &mut ferry(),
        &["--config", config, "--format", "json"],
    ));
    assert_eq!(
        setting(&lines, "listen"),
        pair("127.0.0.1:3001", &at(3, 10))
    );
    assert_eq!(setting(&lines, "storage"), pair("memory://", &at(2, 11)));
    assert_eq!(setting(&lines, "fetcher.timeout"), pair("2m", &at(6, 11)));
    assert_eq!(
        setting(&lines, "FERRY_CONFIG"),
        pair(config, "flag --config")
    );
    assert_eq!(setting(&lines, "log_format"), pair("text", "default"));

    // The same file named by FERRY_CONFIG, with FERRY_LISTEN over its listen.
    let lines = settings(&config_in(
        dir.path(),
        ferry()
            .env("FERRY_CONFIG", config)
            .env("FERRY_LISTEN", "127.0.0.1:3002")
            .env("FERRY_FETCH_TIMEOUT", "90s")
            .env("ATHENS_DOWNLOAD_MODE", "none"),
        &["--format", "json"],
    ));
    assert_eq!(
        setting(&lines, "download_mode"),
        pair("none", "env ATHENS_DOWNLOAD_MODE")
    );
    assert_eq!(
        setting(&lines, "listen"),
        pair("127.0.0.1:3002", "env FERRY_LISTEN")
    );
    assert_eq!(
        setting(&lines, "fetcher.timeout"),
        pair("1m 30s", "env FERRY_FETCH_TIMEOUT")
    );
    assert_eq!(
        setting(&lines, "FERRY_CONFIG"),
        pair(config, "env FERRY_CONFIG")
    );

    // And --listen over both.
    let lines = settings(&config_in(
        dir.path(),
        ferry()
            .env("FERRY_CONFIG", config)
            .env("FERRY_LISTEN", "127.0.0.1:3002"),
        &["--listen", "127.0.0.1:3003", "--format", "json"],
    ));
    assert_eq!(
        setting(&lines, "listen"),
        pair("127.0.0.1:3003", "flag --listen")
    );
    assert_eq!(setting(&lines, "storage"), pair("memory://", &at(2, 11)));
}

#[test]
fn passwords_secret_keys_and_url_credentials_never_appear_in_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = [
        "redis-pass-7f3a",
        "env-secret-key-91c2",
        "file-secret-key-5d8e",
        "goproxy-pass-0a9d",
    ];
    let file = write_file(
        dir.path(),
        "ferry.toml",
        "storage = \"s3://bucket\"\n\
         coordination = \"redis://ferry:redis-pass-7f3a@127.0.0.1:6390/2\"\n\
         download_url = \"https://mirror.example/go\"\n\
         [storage_options]\n\
         endpoint = \"http://127.0.0.1:9000\"\n\
         allow_http = true\n\
         region = \"us-east-1\"\n\
         secret_access_key = \"file-secret-key-5d8e\"\n\
         [fetcher.go_env]\n\
         GOPROXY = \"https://builder:goproxy-pass-0a9d@goproxy.internal.example,direct\"\n",
    );
    let run = |format: &str| {
        config_in(
            dir.path(),
            ferry()
                .env("FERRY_CONFIG", &file)
                .env("FERRY_DOWNLOAD_MODE", "redirect")
                .env("AWS_ACCESS_KEY_ID", "ferry-id")
                .env("AWS_SECRET_ACCESS_KEY", "env-secret-key-91c2"),
            &["--format", format],
        )
    };
    for format in ["text", "json"] {
        let output = run(format);
        let said = String::from_utf8_lossy(&[&output.stdout[..], &output.stderr[..]].concat())
            .into_owned();
        assert!(output.status.success(), "{said}");
        for secret in secrets {
            assert!(!said.contains(secret), "{secret} shown in {said}");
        }
    }
    let lines = settings(&run("json"));
    assert_eq!(
        setting(&lines, "coordination").0,
        "redis://***@127.0.0.1:6390/2"
    );
    assert_eq!(
        setting(&lines, "download_url"),
        pair(
            "https://mirror.example/go",
            &format!("file {}:3:16", file.display())
        )
    );
    assert_eq!(
        setting(&lines, "download_mode"),
        pair("redirect", "env FERRY_DOWNLOAD_MODE")
    );
    assert_eq!(
        setting(&lines, "storage_options.secret_access_key").0,
        "<redacted>"
    );
    // The file's secret key wins over the environment's, which is therefore not listed; the key id
    // comes from the environment (redacted too: its name says key).
    assert_eq!(
        setting(&lines, "storage_options.endpoint"),
        pair(
            "http://127.0.0.1:9000",
            &format!("file {}:5:12", file.display())
        )
    );
    assert_eq!(
        setting(&lines, "storage_options.aws_access_key_id"),
        pair("<redacted>", "env AWS_ACCESS_KEY_ID")
    );
    assert_eq!(
        setting(&lines, "fetcher.go_env.GOPROXY").0,
        "https://***@goproxy.internal.example,direct"
    );

    // A download URL with a password is refused (clients would get it in Location), without showing it.
    let output = config_in(
        dir.path(),
        ferry()
            .env("FERRY_STORAGE", "memory://")
            .env("FERRY_DOWNLOAD_MODE", "redirect")
            .env(
                "FERRY_DOWNLOAD_URL",
                "https://mirror:url-pass-c4b1@mirror.example/go",
            ),
        &[],
    );
    let said =
        String::from_utf8_lossy(&[&output.stdout[..], &output.stderr[..]].concat()).into_owned();
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("https://***@mirror.example/go"), "{said}");
    assert!(!said.contains("url-pass-c4b1"), "{said}");

    // The environment's secret key, when it is the one in force, is shown redacted under its variable.
    let output = config_in(
        dir.path(),
        ferry()
            .env("FERRY_STORAGE", "s3://bucket")
            .env("AWS_ENDPOINT", "http://127.0.0.1:9000")
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "ferry-id")
            .env("AWS_SECRET_ACCESS_KEY", "env-secret-key-91c2"),
        &["--format", "json"],
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("env-secret-key-91c2"));
    assert_eq!(
        setting(&settings(&output), "storage_options.aws_secret_access_key"),
        pair("<redacted>", "env AWS_SECRET_ACCESS_KEY")
    );
}

#[test]
fn an_invalid_file_stops_ferry_config_with_the_same_located_error_and_status_as_serve() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "ferry.toml",
        "storage = \"memory://\"\nlisten = \"localhost\"\n",
    );
    let config = file.to_str().unwrap();
    let shown = config_in(dir.path(), &mut ferry(), &["--config", config]);
    let served = ferry()
        .current_dir(dir.path())
        .args(["serve", "--config", config])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert!(
        stderr.starts_with(&format!(
            "ferry: {config}:2:10: listen address \"localhost\" is not IP:PORT"
        )),
        "{stderr}"
    );
    assert!(shown.stdout.is_empty());
    assert_eq!(shown.status.code(), served.status.code());
    assert_eq!(shown.status.code(), Some(1));
    assert_eq!(shown.stderr, served.stderr);
}

#[test]
fn help_points_at_ferry_config() {
    let output = ferry().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        help.contains("`ferry config` prints every setting"),
        "{help}"
    );
    assert!(help.contains("config       Print every setting"), "{help}");
}

#[test]
fn help_lists_every_storage_scheme() {
    // `ferry --help`, `ferry serve --help` and `ferry config --help` share the flag; the first stands for all.
    let output = ferry().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for scheme in [
        "file://PATH",
        "memory://",
        "s3://BUCKET[/PREFIX]",
        "gs://BUCKET[/PREFIX]",
        "az://CONTAINER[/PREFIX]",
    ] {
        assert!(
            help.contains(scheme),
            "{scheme} missing from --help:\n{help}"
        );
    }
}

/// The keys of the configuration reference's settings tables: the Settings table's file keys (its variable
/// for a setting the file cannot hold), and `TABLE.KEY` for each `[TABLE]` key table (which stands for the
/// Settings table's "`[TABLE]` table" row); a `[TABLE]` without a key table is one open table.
fn documented_keys() -> BTreeSet<String> {
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .unwrap();
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_string())
            .collect()
    };
    let mut keys = BTreeSet::new();
    let mut key_tables = BTreeSet::new();
    let mut open_tables = BTreeSet::new();
    let mut prefix: Option<Option<String>> = None;
    for line in reference.lines() {
        if !line.starts_with('|') {
            prefix = None;
            continue;
        }
        let row = cells(line);
        let first = row[0].replace('`', "");
        if prefix.is_none() {
            // A table's header: the Settings table, or a `[TABLE]` key table.
            if first == "file key" {
                prefix = Some(None);
            } else if let Some(table) = first
                .strip_prefix('[')
                .and_then(|f| f.strip_suffix("] key"))
            {
                key_tables.insert(table.to_string());
                prefix = Some(Some(table.to_string()));
            } else {
                prefix = Some(Some(String::new()));
            }
            continue;
        }
        match prefix.as_ref().unwrap() {
            _ if first.starts_with("---") => {}
            Some(table) if table.is_empty() => {}
            Some(table) => {
                keys.insert(format!("{table}.{first}"));
            }
            None if first.is_empty() => {
                let variable = row[1].split('`').nth(1).unwrap();
                keys.insert(variable.to_string());
            }
            None => match first
                .strip_prefix('[')
                .and_then(|f| f.strip_suffix("] table"))
            {
                Some(table) => {
                    open_tables.insert(table.to_string());
                }
                None => {
                    keys.insert(first);
                }
            },
        }
    }
    keys.extend(open_tables.difference(&key_tables).cloned());
    keys
}

#[test]
fn ferry_config_prints_exactly_the_settings_of_the_configuration_reference() {
    let want = documented_keys();
    assert!(
        want.contains("listen") && want.contains("fetcher.go_env") && want.contains("cache.ttl")
    );
    let dir = tempfile::tempdir().unwrap();
    let lines = settings(&config_in(dir.path(), &mut ferry(), &["--format", "json"]));
    let printed: BTreeSet<String> = lines.iter().map(|(key, _, _)| key.clone()).collect();
    assert_eq!(printed.len(), lines.len(), "a key printed twice");
    assert_eq!(
        printed.difference(&want).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "printed by ferry config, missing from the settings tables of docs/configuration.md"
    );
    assert_eq!(
        want.difference(&printed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in the settings tables of docs/configuration.md, not printed by ferry config"
    );
}

/// Every row of the configuration reference's settings tables that is one setting (not a `[TABLE]` table
/// summary), with its cells: (name as `ferry config` prints it, variable cell, flag cell if the table has
/// a flag column, default cell).
fn documented_rows() -> Vec<(String, String, Option<String>, String)> {
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .unwrap();
    let mut rows = Vec::new();
    // The table being read: its key prefix (`""` for the Settings table) and whether it has a flag column.
    let mut table: Option<(String, bool)> = None;
    for line in reference.lines() {
        if !line.starts_with('|') {
            table = None;
            continue;
        }
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_string())
            .collect();
        let first = cells[0].replace('`', "");
        let Some((prefix, flagged)) = &table else {
            table = match (
                first.as_str(),
                first
                    .strip_prefix('[')
                    .and_then(|f| f.strip_suffix("] key")),
            ) {
                ("file key", _) => Some((String::new(), true)),
                (_, Some(name)) => Some((format!("{name}."), false)),
                // Another kind of table: its rows are not settings.
                _ => Some(("-".into(), false)),
            };
            continue;
        };
        if first.starts_with("---") || prefix == "-" || first.ends_with("] table") {
            continue;
        }
        let name = match first.as_str() {
            "" => cells[1].split('`').nth(1).unwrap().to_string(),
            key => format!("{prefix}{key}"),
        };
        let (flag, default) = match flagged {
            true => (Some(cells[2].clone()), cells[3].clone()),
            false => (None, cells[2].clone()),
        };
        rows.push((name, cells[1].clone(), flag, default));
    }
    rows
}

#[test]
fn the_configuration_reference_gives_each_setting_the_variable_flag_and_default_of_its_declaration()
{
    use ferry::config::settings::SETTINGS;
    let rows = documented_rows();
    assert!(rows.len() > 30, "{rows:?}");
    for (name, variables, flag, default) in rows {
        let row = SETTINGS
            .iter()
            .find(|row| row.name() == name)
            .unwrap_or_else(|| panic!("{name}: documented, not declared"));
        let documented: Vec<&str> = variables.split('`').skip(1).step_by(2).collect();
        let declared: Vec<&str> = row.variables().collect();
        assert_eq!(documented, declared, "{name}: its variables");
        let declared_flag = row.flag.map(|f| format!("`{f}`")).unwrap_or_default();
        if let Some(flag) = flag {
            assert_eq!(flag, declared_flag, "{name}: its flag");
        } else {
            assert_eq!(
                row.flag, None,
                "{name}: a flag in a table without a flag column"
            );
        }
        assert_eq!(default, row.default, "{name}: its default");
    }
}

/// `ferry --help` lists exactly the flags the settings table declares, each with its variable.
#[test]
fn help_lists_the_declared_flags_with_their_variables() {
    use ferry::config::settings::SETTINGS;
    let output = ferry().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    let listed: BTreeSet<&str> = help
        .split_whitespace()
        .filter(|word| word.starts_with("--") && !["--help", "--version"].contains(word))
        .collect();
    let declared: BTreeSet<&str> = SETTINGS
        .iter()
        .filter_map(|row| row.flag?.split(' ').next())
        .collect();
    assert_eq!(listed, declared, "{help}");
    for row in SETTINGS.iter().filter(|row| row.flag.is_some()) {
        assert!(help.contains(&format!("[env: {}]", row.env)), "{help}");
    }
}

#[test]
fn a_download_file_that_does_not_exist_yet_is_reported_by_ferry_config_and_stops_serve() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("download.hcl");
    let mode = format!("file:{}", missing.display());
    let run = |subcommand: &str| {
        ferry()
            .current_dir(dir.path())
            .env("FERRY_STORAGE", "memory://")
            .env("FERRY_LISTEN", "127.0.0.1:0")
            .env("FERRY_DOWNLOAD_MODE", &mode)
            .args([subcommand])
            .output()
            .unwrap()
    };
    let shown = run("config");
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert!(shown.status.success(), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    let text = String::from_utf8_lossy(&shown.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("download_mode "))
        .unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["download_mode", mode.as_str(), "env", "FERRY_DOWNLOAD_MODE"]
    );
    let served = run("serve");
    assert_eq!(served.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&served.stderr).contains("cannot read the download file"),
        "{}",
        String::from_utf8_lossy(&served.stderr)
    );
}

#[test]
fn the_go_commands_goproxy_goprivate_and_gonosumdb_are_shown_with_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "ferry.toml",
        "storage = \"memory://\"\n[fetcher.go_env]\nGOPRIVATE = \"corp.example/*\"\n",
    );
    let lines = settings(&config_in(
        dir.path(),
        ferry()
            .env("FERRY_CONFIG", &file)
            .env("GOPROXY", "https://ci:token-3e1f@goproxy.example,direct")
            .env("GOPRIVATE", "other.example/*"),
        &["--format", "json"],
    ));
    assert_eq!(
        setting(&lines, "GOPROXY"),
        pair("https://***@goproxy.example,direct", "env GOPROXY")
    );
    assert_eq!(
        setting(&lines, "GOPRIVATE"),
        pair("corp.example/*", &format!("file {}:3:13", file.display()))
    );
    assert_eq!(setting(&lines, "GONOSUMDB"), pair("none", "default"));
}
