//! Where the policy comes from: precedence, bare modes, `file:`, `custom:` and their messages.

use std::path::Path;

use crate::support::encode;

use ferry_policy::{
    Mode, Policy, PolicyError, PolicySources, PolicySpec, ProblemKind, load, load_file,
};
use url::Url;

fn default_mode(policy: &Policy) -> (Mode, String) {
    let rule = policy.default_rule();
    (rule.mode(), rule.to_string())
}

#[test]
fn nothing_set_means_sync() {
    let policy = load(&PolicySources::default()).unwrap();
    assert_eq!(
        default_mode(&policy),
        (
            Mode::Sync,
            "built-in default mode (no download mode set)".to_owned()
        )
    );
    assert!(policy.rules().is_empty());
    // Empty values count as unset.
    let policy = load(&PolicySources {
        ferry_download_mode: Some(""),
        athens_download_mode: Some(""),
        ferry_download_url: Some(""),
        ..PolicySources::default()
    })
    .unwrap();
    assert_eq!(policy.decide("a/b").mode, Mode::Sync);
}

#[test]
fn precedence_is_ferry_then_athens_then_config() {
    let all = PolicySources {
        ferry_download_mode: Some("none"),
        athens_download_mode: Some("async"),
        config_download_mode: Some("sync"),
        ..PolicySources::default()
    };
    assert_eq!(
        default_mode(&load(&all).unwrap()),
        (
            Mode::None,
            "default mode from FERRY_DOWNLOAD_MODE".to_owned()
        )
    );
    let athens_and_config = PolicySources {
        ferry_download_mode: None,
        ..all
    };
    assert_eq!(
        default_mode(&load(&athens_and_config).unwrap()),
        (
            Mode::Async,
            "default mode from ATHENS_DOWNLOAD_MODE".to_owned()
        )
    );
    let config_only = PolicySources {
        athens_download_mode: None,
        config_file: Some(Path::new("/etc/ferry/ferry.toml")),
        ..athens_and_config
    };
    assert_eq!(
        default_mode(&load(&config_only).unwrap()),
        (
            Mode::Sync,
            "default mode from download mode in /etc/ferry/ferry.toml".to_owned()
        )
    );
    // Clients are not told where the configuration file is.
    let policy = load(&config_only).unwrap();
    assert_eq!(
        policy.decide("a/b").rule.for_clients().to_string(),
        "default mode from download mode in the configuration file"
    );
}

#[test]
fn bare_redirect_takes_the_download_url() {
    let policy = load(&PolicySources {
        ferry_download_mode: Some("async_redirect"),
        ferry_download_url: Some("https://mirror.example/prefix"),
        ..PolicySources::default()
    })
    .unwrap();
    let decision = policy.decide("github.com/x/y");
    assert_eq!(decision.mode, Mode::AsyncRedirect);
    assert_eq!(
        decision
            .redirect_target("github.com/x/y/@v/list")
            .as_deref(),
        Some("https://mirror.example/prefix/github.com/x/y/@v/list")
    );
}

#[test]
fn bare_redirect_without_a_url_is_refused() {
    let error = load(&PolicySources {
        athens_download_mode: Some("redirect"),
        ..PolicySources::default()
    })
    .unwrap_err();
    assert_eq!(error.problems()[0].kind, ProblemKind::MissingDownloadUrl);
    assert_eq!(
        error.to_string(),
        "ATHENS_DOWNLOAD_MODE: mode redirect redirects but no download URL is set; set FERRY_DOWNLOAD_URL or ATHENS_DOWNLOAD_URL (or download_url in the configuration) to an absolute http(s) URL such as https://mirror.example/prefix"
    );
}

#[test]
fn bad_bare_download_url_is_refused() {
    let error = load(&PolicySources {
        ferry_download_mode: Some("sync"),
        ferry_download_url: Some("mirror.example"),
        ..PolicySources::default()
    })
    .unwrap_err();
    assert_eq!(error.problems()[0].kind, ProblemKind::BadDownloadUrl);
    assert!(
        error
            .to_string()
            .starts_with("FERRY_DOWNLOAD_URL: downloadURL \"mirror.example\" is not a URL"),
        "{error}"
    );
    // The URL's source is named, and no password is shown.
    let error = load(&PolicySources {
        athens_download_mode: Some("redirect"),
        config_download_url: Some("https://ops:hunter2@mirror.example/"),
        config_file: Some(Path::new("/etc/ferry/ferry.toml")),
        ..PolicySources::default()
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "download_url in /etc/ferry/ferry.toml: downloadURL \"https://***@mirror.example/\" holds credentials (user:password@): every redirected client would receive them in the Location header; remove the user:password@ part; clients authenticate to the mirror with their own .netrc or GOAUTH"
    );
}

#[test]
fn unknown_bare_mode() {
    let error = load(&PolicySources {
        ferry_download_mode: Some("Async"),
        ..PolicySources::default()
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "FERRY_DOWNLOAD_MODE: unknown download mode \"Async\"; write async"
    );
    let error = "fast".parse::<PolicySpec>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "download mode: unknown download mode \"fast\"; write one of sync, async, none, redirect, async_redirect, or file:PATH for a download file, or custom:BASE64 for its base64 text"
    );
}

#[test]
fn spec_syntax() {
    assert_eq!(
        "async_redirect".parse::<PolicySpec>().unwrap(),
        PolicySpec::Mode(Mode::AsyncRedirect)
    );
    assert_eq!(
        "file:/etc/ferry/download.hcl"
            .parse::<PolicySpec>()
            .unwrap(),
        PolicySpec::File("/etc/ferry/download.hcl".into())
    );
    assert_eq!(
        "custom:bW9kZQ==".parse::<PolicySpec>().unwrap(),
        PolicySpec::Custom("bW9kZQ==".to_owned())
    );
}

#[test]
fn custom_problems_name_the_variable() {
    let text = "mode = \"sync\"\ndownload \"a/*\" {\n  mode = \"sometimes\"\n}\n";
    let value = format!("custom:{}", encode(text));
    let error = load(&PolicySources {
        athens_download_mode: Some(&value),
        ..PolicySources::default()
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "ATHENS_DOWNLOAD_MODE (custom:):3:10: unknown mode \"sometimes\"; write one of sync, async, none, redirect, async_redirect"
    );
}

#[test]
fn custom_tolerates_wrapped_base64() {
    let text = "mode = \"none\"\ndownload \"github.com/org/*\" {\n  mode = \"sync\"\n}\n";
    let mut wrapped = encode(text);
    wrapped.insert(20, '\n');
    let value = format!("custom:{wrapped}");
    let policy = load(&PolicySources {
        ferry_download_mode: Some(&value),
        ..PolicySources::default()
    })
    .unwrap();
    assert_eq!(policy.decide("github.com/org/x").mode, Mode::Sync);
}

#[test]
fn bad_base64() {
    for bad in ["custom:not base64!", "custom:bW9kZQ", "custom:bW9kZQ=x"] {
        let error = load(&PolicySources {
            ferry_download_mode: Some(bad),
            ..PolicySources::default()
        })
        .unwrap_err();
        assert_eq!(error.problems()[0].kind, ProblemKind::BadBase64, "{bad}");
        let message = error.to_string();
        assert!(
            message.starts_with(
                "FERRY_DOWNLOAD_MODE (custom:): the value after custom: is not standard base64 ("
            ),
            "{message}"
        );
        assert!(
            message.ends_with("; write custom: followed by the download file in standard base64 with padding, e.g. the output of `base64 -w0 download.hcl`"),
            "{message}"
        );
    }
}

#[test]
fn file_spec_reads_the_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("download.hcl");
    std::fs::write(
        &path,
        "mode = \"none\"\n\ndownload \"github.com/org/*\" {\n  mode = \"sync\"\n}\n",
    )
    .unwrap();
    let value = format!("file:{}", path.display());
    let policy = load(&PolicySources {
        config_download_mode: Some(&value),
        // A download file sets its own downloadURL; these are not used.
        ferry_download_url: Some("https://ignored.example"),
        athens_download_url: Some("https://ignored.example"),
        ..PolicySources::default()
    })
    .unwrap();
    let decision = policy.decide("github.com/org/x");
    assert_eq!(decision.mode, Mode::Sync);
    assert_eq!(
        decision.rule.to_string(),
        format!("download \"github.com/org/*\" at {}:3", path.display())
    );
    assert_eq!(decision.rule.file_line(), Some((path.to_str().unwrap(), 3)));
    assert_eq!(
        policy.default_rule().to_string(),
        format!("top-level mode at {}:1", path.display())
    );
}

#[test]
fn reloading_an_invalid_file_keeps_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("download.hcl");
    std::fs::write(&path, "mode = \"none\"\n").unwrap();
    let mut current = load_file(&path).unwrap();
    assert_eq!(current.decide("a/b").mode, Mode::None);

    std::fs::write(
        &path,
        "mode = \"none\"\ndownload \"a/*\" {\n  mode = \"nope\"\n}\n",
    )
    .unwrap();
    match load_file(&path) {
        Ok(policy) => current = policy,
        Err(error) => assert_eq!(error.problems()[0].kind, ProblemKind::UnknownMode),
    }
    assert_eq!(current.decide("a/b").mode, Mode::None);

    std::fs::write(
        &path,
        "mode = \"none\"\ndownload \"a/*\" {\n  mode = \"sync\"\n}\n",
    )
    .unwrap();
    current = load_file(&path).unwrap();
    assert_eq!(current.decide("a/b").mode, Mode::Sync);
}

#[test]
fn single() {
    let url = Url::parse("https://mirror.example").unwrap();
    let policy = Policy::single(Mode::Redirect, Some(url.clone())).unwrap();
    assert_eq!(policy.decide("x").download_url, Some(&url));
    assert_eq!(
        policy.default_rule().to_string(),
        "default mode from the server's settings"
    );
    let error = Policy::single(Mode::AsyncRedirect, None).unwrap_err();
    assert_eq!(error.problems()[0].kind, ProblemKind::MissingDownloadUrl);
    let error = Policy::single(
        Mode::Sync,
        Some(Url::parse("ftp://mirror.example").unwrap()),
    )
    .unwrap_err();
    assert_eq!(error.problems()[0].kind, ProblemKind::BadDownloadUrl);
    assert!(matches!(error, PolicyError::Invalid(_)));
}

#[test]
fn policy_is_shareable() {
    fn shareable<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    fn reportable<T: std::error::Error + Send + Sync + 'static>() {}
    shareable::<Policy>();
    reportable::<PolicyError>();
}

#[test]
fn a_bare_mode_redirects_to_ferry_then_athens_then_the_configured_url() {
    let target = |sources: &PolicySources| {
        load(sources)
            .unwrap_or_else(|error| panic!("{error}"))
            .decide("github.com/x/y")
            .redirect_target("github.com/x/y/@v/list")
    };
    let all = PolicySources {
        athens_download_mode: Some("redirect"),
        ferry_download_url: Some("https://ferry.example"),
        athens_download_url: Some("https://athens.example"),
        config_download_url: Some("https://config.example"),
        ..PolicySources::default()
    };
    assert_eq!(
        target(&all).as_deref(),
        Some("https://ferry.example/github.com/x/y/@v/list")
    );
    // An Athens deployment's environment: ATHENS_DOWNLOAD_MODE=redirect and ATHENS_DOWNLOAD_URL.
    let athens = PolicySources {
        ferry_download_url: None,
        ..all
    };
    assert_eq!(
        target(&athens).as_deref(),
        Some("https://athens.example/github.com/x/y/@v/list")
    );
    let config = PolicySources {
        athens_download_url: Some(""),
        ..athens
    };
    assert_eq!(
        target(&config).as_deref(),
        Some("https://config.example/github.com/x/y/@v/list")
    );
}

#[test]
fn a_mode_name_with_surrounding_spaces_is_refused_as_in_athens() {
    let error = load(&PolicySources {
        athens_download_mode: Some(" sync "),
        ..PolicySources::default()
    })
    .unwrap_err();
    assert_eq!(error.problems()[0].kind, ProblemKind::UnknownMode);
    assert_eq!(
        error.to_string(),
        "ATHENS_DOWNLOAD_MODE: unknown download mode \" sync \"; write sync without the surrounding spaces (mode names are matched exactly, as in Athens)"
    );
    // A value of spaces only is a value (Athens refuses it too), not "unset".
    let error = load(&PolicySources {
        ferry_download_mode: Some("  "),
        config_download_mode: Some("none"),
        ..PolicySources::default()
    })
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("FERRY_DOWNLOAD_MODE: unknown download mode \"  \""),
        "{error}"
    );
}
