//! Storage URLs and backend options: what each scheme accepts, where options come from (the
//! configuration file over the environment), and that credentials never show. No server needed.
use ferry_storage::{Environment, StorageConfig, StorageOptions};

const SECRET: &str = "ferry-distinctive-secret-6f1c2e";

fn config(url: &str, options: &StorageOptions, env: &[(&str, &str)]) -> StorageConfig {
    let env: Environment = env.iter().copied().collect();
    StorageConfig::from_url_with(url, options, &env).unwrap()
}

#[test]
fn bucket_urls_name_the_bucket_and_the_prefix() {
    let StorageConfig::S3(s3) = config("s3://my-bucket/a/b/", &StorageOptions::default(), &[])
    else {
        panic!("s3:// is S3");
    };
    assert_eq!(
        (s3.bucket.as_str(), s3.prefix.as_str()),
        ("my-bucket", "a/b")
    );
    let StorageConfig::Gcs(gcs) = config("gs://my_bucket", &StorageOptions::default(), &[]) else {
        panic!("gs:// is GCS");
    };
    assert_eq!(
        (gcs.bucket.as_str(), gcs.prefix.as_str()),
        ("my_bucket", "")
    );
}

#[test]
fn bad_bucket_urls_are_refused_with_the_fix() {
    for bad in [
        "s3://",
        "s3:///prefix",
        "gs://Upper",
        "s3://b/a//b",
        "gs://b/a/../c",
    ] {
        let error = StorageConfig::from_url(bad).expect_err(bad).to_string();
        assert!(
            error.contains("BUCKET[/PREFIX]") || error.contains("prefix"),
            "{bad:?}: the message names the fix: {error}"
        );
    }
    let error = StorageConfig::from_url(&format!("s3://key:{SECRET}@bucket"))
        .unwrap_err()
        .to_string();
    assert!(!error.contains(SECRET), "{error}");
}

#[test]
fn s3_options_come_from_the_environment() {
    let env = [
        ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", "session"),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false"),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ferry"),
        ("AWS_BUCKET", "not-this-one"),
        ("GOOGLE_SERVICE_ACCOUNT", "/not/for/s3.json"),
        ("HOME", "/root"),
    ];
    let StorageConfig::S3(s3) = config("s3://bucket", &StorageOptions::default(), &env) else {
        panic!("s3:// is S3");
    };
    let o = &s3.options;
    assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(o.region.as_deref(), Some("eu-west-1"));
    assert_eq!(o.access_key_id.as_deref(), Some("AKIDEXAMPLE"));
    assert_eq!(o.secret_access_key.as_deref(), Some(SECRET));
    assert_eq!(o.session_token.as_deref(), Some("session"));
    assert_eq!(o.allow_http, Some(true));
    assert_eq!(o.virtual_hosted_style_request, Some(false));
    assert_eq!(s3.bucket, "bucket", "the URL names the bucket");
    assert_eq!(
        s3.other_variables,
        [(
            "AWS_ROLE_ARN".to_string(),
            "arn:aws:iam::123456789012:role/ferry".to_string()
        )]
    );
    assert!(StorageConfig::S3(s3).open().is_ok());
}

#[test]
fn the_config_file_overrides_the_environment() {
    let options: StorageOptions = toml::from_str(
        r#"
        [s3]
        endpoint = "http://minio.internal:9000"
        region = "us-east-1"
        virtual_hosted_style_request = true
        connect_timeout_secs = 2
        max_retries = 1

        [gcs]
        service_account_path = "/etc/ferry/gcs.json"
        "#,
    )
    .unwrap();
    let env = [
        ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "from-env"),
        ("GOOGLE_SERVICE_ACCOUNT", "/from/env.json"),
        ("GOOGLE_BASE_URL", "http://127.0.0.1:4443"),
    ];
    let StorageConfig::S3(s3) = config("s3://bucket", &options, &env) else {
        panic!("s3:// is S3");
    };
    assert_eq!(
        s3.options.endpoint.as_deref(),
        Some("http://minio.internal:9000")
    );
    assert_eq!(s3.options.region.as_deref(), Some("us-east-1"));
    assert_eq!(s3.options.virtual_hosted_style_request, Some(true));
    assert_eq!(s3.options.connect_timeout_secs, Some(2));
    assert_eq!(s3.options.max_retries, Some(1));
    assert_eq!(
        s3.options.access_key_id.as_deref(),
        Some("from-env"),
        "unset in the file"
    );
    let StorageConfig::Gcs(gcs) = config("gs://bucket/p", &options, &env) else {
        panic!("gs:// is GCS");
    };
    assert_eq!(
        gcs.options.service_account_path.as_deref(),
        Some("/etc/ferry/gcs.json")
    );
    assert_eq!(
        gcs.options.base_url.as_deref(),
        Some("http://127.0.0.1:4443")
    );
}

#[test]
fn unknown_config_keys_are_refused() {
    for table in [
        "[s3]\nendpont = \"x\"\n",
        "[gcs]\nbucket = \"x\"\n",
        "[azure]\n",
    ] {
        let parsed: Result<StorageOptions, _> = toml::from_str(table);
        assert!(parsed.is_err(), "{table:?} is accepted");
    }
}

#[test]
fn a_bad_boolean_names_its_variable() {
    let env: Environment = [("AWS_ALLOW_HTTP", "maybe")].into_iter().collect();
    let error = StorageConfig::from_url_with("s3://b", &StorageOptions::default(), &env)
        .unwrap_err()
        .to_string();
    assert!(error.contains("AWS_ALLOW_HTTP"), "{error}");
}

#[test]
fn credentials_never_show_in_display_or_debug() {
    let options: StorageOptions = toml::from_str(&format!(
        "[s3]\nsecret_access_key = {SECRET:?}\nsession_token = {SECRET:?}\n\
         [gcs]\nservice_account_key = {SECRET:?}\n"
    ))
    .unwrap();
    let env = [
        ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", SECRET),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", SECRET),
        ("GOOGLE_BEARER_TOKEN", SECRET),
    ];
    let env_snapshot: Environment = env.iter().copied().collect();
    for url in ["s3://bucket/prefix", "gs://bucket/prefix"] {
        let with_file = config(url, &options, &env);
        let from_env = config(url, &StorageOptions::default(), &env);
        for config in [with_file, from_env] {
            let shown = [
                config.to_string(),
                format!("{config:?}"),
                format!("{config:#?}"),
            ];
            for text in shown {
                assert!(!text.contains(SECRET), "{url}: the secret shows: {text}");
            }
        }
    }
    assert_eq!(
        config("s3://bucket/prefix", &options, &env).to_string(),
        "s3://bucket/prefix (endpoint http://127.0.0.1:9000)"
    );
    assert!(!format!("{options:?}").contains(SECRET));
    assert!(!format!("{env_snapshot:?}").contains(SECRET));
}

#[test]
fn a_gcs_key_that_is_not_json_fails_at_open_without_echoing_it() {
    let options: StorageOptions =
        toml::from_str(&format!("[gcs]\nservice_account_key = {SECRET:?}\n")).unwrap();
    let error = config("gs://bucket", &options, &[]).open().unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(SECRET), "the key shows: {text}");
    }
}
