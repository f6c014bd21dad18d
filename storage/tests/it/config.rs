//! Storage URLs and options: what each scheme accepts, where settings come from (the backend's
//! environment variables, then the options table), the messages that name the fix, and that credentials
//! never show. No server needed.
use ferry_storage::{
    CloudConfig, Culprit, Environment, StorageConfig, StorageError, StorageOptions,
};

const SECRET: &str = "ferry-distinctive-secret-6f1c2e";

fn env(pairs: &[(&str, &str)]) -> Environment {
    pairs.iter().copied().collect()
}

fn cloud(url: &str, options: &StorageOptions, vars: &[(&str, &str)]) -> CloudConfig {
    match StorageConfig::from_url_with(url, options, &env(vars)) {
        Ok(StorageConfig::Cloud(cloud)) => *cloud,
        other => panic!("{url}: {other:?}"),
    }
}

fn options(toml: &str) -> StorageOptions {
    toml::from_str(toml).unwrap()
}

/// The configuration error for these settings: its culprit and message.
fn refused(url: &str, options: &StorageOptions, vars: &[(&str, &str)]) -> (Culprit, String) {
    match StorageConfig::from_url_with(url, options, &env(vars)) {
        Err(StorageError::Config(e)) => (e.culprit.clone(), e.to_string()),
        other => panic!("{url} {options:?}: want a configuration error, got {other:?}"),
    }
}

#[test]
fn bucket_urls_name_the_bucket_and_the_prefix() {
    let none = StorageOptions::default();
    for (url, scheme, bucket, prefix) in [
        ("s3://my-bucket/a/b/", "s3", "my-bucket", "a/b"),
        ("gs://my_bucket", "gs", "my_bucket", ""),
        ("az://modules/ferry", "az", "modules", "ferry"),
    ] {
        let config = cloud(url, &none, &[("AZURE_STORAGE_ACCOUNT_NAME", "acct")]);
        assert_eq!(
            (config.scheme(), config.bucket(), config.prefix()),
            (scheme, bucket, prefix)
        );
    }
}

#[test]
fn bad_storage_urls_are_refused_with_the_fix() {
    for bad in [
        "s3://",
        "s3:///prefix",
        "gs://Upper",
        "s3://b/a//b",
        "gs://b/a/../c",
        "az://ab",
        "az://under_score",
    ] {
        let error = StorageConfig::from_url(bad).expect_err(bad).to_string();
        assert!(
            error.contains("[/PREFIX]") || error.contains("PREFIX as names"),
            "{bad:?}: the message names the fix: {error}"
        );
    }
    let error = StorageConfig::from_url(&format!("s3://key:{SECRET}@bucket"))
        .unwrap_err()
        .to_string();
    assert!(!error.contains(SECRET), "{error}");
    let error = StorageConfig::from_url("ftp://host/x")
        .unwrap_err()
        .to_string();
    assert!(error.contains("az://CONTAINER[/PREFIX]"), "{error}");
}

#[test]
fn each_backend_reads_its_own_variables_and_not_the_bucket() {
    let vars = [
        ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ferry"),
        ("AWS_BUCKET", "not-this-one"),
        ("AWS_PROFILE", "not-an-object-store-key"),
        ("AWS_SESSION_TOKEN", ""),
        ("GOOGLE_BASE_URL", "http://127.0.0.1:4443"),
        ("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1"),
        ("AZURE_CONTAINER_NAME", "not-this-one"),
        ("HOME", "/root"),
    ];
    let none = StorageOptions::default();
    let s3 = cloud("s3://bucket", &none, &vars);
    assert_eq!(s3.setting("AWS_ENDPOINT"), Some("http://127.0.0.1:9000"));
    assert_eq!(
        s3.setting("endpoint"),
        Some("http://127.0.0.1:9000"),
        "any spelling"
    );
    assert_eq!(s3.setting("aws_default_region"), Some("eu-west-1"));
    assert_eq!(s3.setting("aws_secret_access_key"), Some(SECRET));
    assert_eq!(s3.setting("aws_allow_http"), Some("true"));
    assert_eq!(
        s3.setting("aws_role_arn"),
        Some("arn:aws:iam::123456789012:role/ferry")
    );
    assert_eq!(
        s3.setting("aws_session_token"),
        None,
        "an empty variable is unset"
    );
    assert_eq!(s3.setting("google_base_url"), None);
    assert_eq!(s3.bucket(), "bucket", "the URL names the bucket");
    assert_eq!(s3.setting("aws_bucket"), None);
    let gcs = cloud("gs://bucket", &none, &vars);
    assert_eq!(
        gcs.setting("google_base_url"),
        Some("http://127.0.0.1:4443")
    );
    assert_eq!(gcs.setting("aws_endpoint"), None);
    let azure = cloud("az://container", &none, &vars);
    assert_eq!(azure.setting("account_name"), Some("devstoreaccount1"));
    assert_eq!(azure.bucket(), "container");
}

#[test]
fn the_options_table_overrides_the_environment() {
    let table = options(
        r#"
        endpoint = "http://minio.internal:9000"
        aws_region = "us-east-1"
        virtual_hosted_style_request = true
        connect_timeout = "2s"
        max_retries = 1
        "#,
    );
    let vars = [
        ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "from-env"),
        ("AWS_SECRET_ACCESS_KEY", "from-env-too"),
    ];
    let s3 = cloud("s3://bucket", &table, &vars);
    assert_eq!(
        s3.setting("aws_endpoint"),
        Some("http://minio.internal:9000")
    );
    assert_eq!(s3.setting("aws_region"), Some("us-east-1"));
    assert_eq!(s3.setting("aws_virtual_hosted_style_request"), Some("true"));
    assert_eq!(s3.setting("connect_timeout"), Some("2s"));
    assert_eq!(s3.max_retries(), 1);
    assert_eq!(
        s3.setting("aws_access_key_id"),
        Some("from-env"),
        "unset in the table"
    );
}

#[test]
fn the_older_s3_and_gcs_tables_apply_to_their_own_backend_only() {
    let mut older = StorageOptions::default();
    older.push_for("s3", "endpoint", "http://127.0.0.1:9000");
    older.push_for("s3", "connect_timeout_secs", "2");
    older.push_for("s3", "request_timeout_secs", "0");
    let s3 = cloud("s3://bucket", &older, &[]);
    assert_eq!(s3.setting("aws_endpoint"), Some("http://127.0.0.1:9000"));
    assert_eq!(s3.setting("connect_timeout"), Some("2s"));
    assert_eq!(s3.setting("timeout"), None, "0 meant no overall limit");
    let dir = tempfile::tempdir().unwrap();
    let account = dir.path().join("gcs.json");
    std::fs::write(&account, r#"{"gcs_base_url": "http://127.0.0.1:1", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}"#).unwrap();
    let account = account.to_str().unwrap();
    let mut gcs_only = StorageOptions::default();
    gcs_only.push_for("gs", "service_account_path", account);
    gcs_only.push_for("s3", "endpoint", "http://127.0.0.1:9000");
    let gcs = cloud("gs://bucket", &gcs_only, &[]);
    assert_eq!(gcs.setting("google_service_account"), Some(account));
    assert_eq!(gcs.setting("aws_endpoint"), None);
}

#[test]
fn an_unknown_option_names_the_closest_key() {
    let (culprit, message) = refused(
        "s3://b",
        &options("region = \"us-east-1\"\nendpont = \"x\"\n"),
        &[],
    );
    assert_eq!(
        culprit,
        Culprit::OptionKey(0),
        "the table is in key order: endpont, region"
    );
    assert!(
        message.contains(r#"unknown S3 storage option "endpont"; did you mean "endpoint"?"#),
        "{message}"
    );
    let (_, message) = refused(
        "az://container",
        &options("azure_storage_acount_name = \"x\"\n"),
        &[],
    );
    assert!(
        message.contains(r#"did you mean "azure_storage_account_name"?"#),
        "{message}"
    );
    let (_, message) = refused(
        "gs://b",
        &options("aws_endpoint = \"http://127.0.0.1:1\"\n"),
        &[],
    );
    assert!(
        message.contains("it is a S3 option, and the storage URL is gs://"),
        "{message}"
    );
}

#[test]
fn the_bucket_comes_from_the_url_only() {
    let (culprit, message) = refused("s3://b", &options("bucket = \"other\"\n"), &[]);
    assert_eq!(culprit, Culprit::OptionKey(0));
    assert!(
        message.contains("the bucket comes from the storage URL"),
        "{message}"
    );
    let (_, message) = refused(
        "az://container",
        &options("container_name = \"other\"\n"),
        &[],
    );
    assert!(
        message.contains("the container comes from the storage URL"),
        "{message}"
    );
}

#[test]
fn the_same_option_twice_is_refused() {
    let (culprit, message) = refused(
        "s3://b",
        &options("aws_endpoint = \"http://a:1\"\nendpoint = \"http://b:1\"\n"),
        &[],
    );
    assert_eq!(culprit, Culprit::OptionKey(1));
    assert!(message.contains("keep one"), "{message}");
}

#[test]
fn an_endpoint_without_a_scheme_is_refused_before_object_store_can_panic_on_it() {
    let (culprit, message) = refused("s3://b", &options("endpoint = \"127.0.0.1:9000\"\n"), &[]);
    assert_eq!(culprit, Culprit::OptionValue(0));
    assert!(
        message.contains(r#"endpoint "127.0.0.1:9000" needs http:// or https://"#),
        "{message}"
    );
    let (culprit, message) = refused(
        "s3://b",
        &StorageOptions::default(),
        &[("AWS_ENDPOINT", "minio:9000")],
    );
    assert_eq!(culprit, Culprit::Variable("AWS_ENDPOINT".to_string()));
    assert!(
        message.starts_with("environment variable AWS_ENDPOINT: "),
        "{message}"
    );
}

#[test]
fn a_bad_value_names_its_option_or_variable_and_the_fix() {
    let (culprit, message) = refused(
        "s3://b",
        &StorageOptions::default(),
        &[("AWS_ALLOW_HTTP", "maybe")],
    );
    assert_eq!(culprit, Culprit::Variable("AWS_ALLOW_HTTP".to_string()));
    assert!(message.contains("AWS_ALLOW_HTTP"), "{message}");
    for (table, fix) in [
        ("region = \"eu west 1\"\n", "write e.g. us-east-1"),
        ("read_timeout = \"soon\"\n", "write e.g. \"30s\""),
        ("timeout = \"0s\"\n", "remove it for the default"),
        ("max_retries = 1000\n", "from 0 to 10"),
        ("session_token = \"a\\nb\"\n", "control character"),
        (
            "virtual_hosted_style_request = \"maybe\"\n",
            "aws_virtual_hosted_style_request",
        ),
    ] {
        let (culprit, message) = refused("s3://b", &options(table), &[]);
        assert_eq!(culprit, Culprit::OptionValue(0), "{table}");
        assert!(message.contains(fix), "{table}: {message}");
    }
    let (_, message) = refused(
        "az://container",
        &options("account_name = \"Dev Account\"\n"),
        &[],
    );
    assert!(message.contains("write e.g. devstoreaccount1"), "{message}");
}

#[test]
fn options_of_a_cloud_backend_mean_nothing_to_a_local_store() {
    let (culprit, message) = refused(
        "file:///tmp/x",
        &options("endpoint = \"http://a:1\"\n"),
        &[],
    );
    assert_eq!(culprit, Culprit::OptionKey(0));
    assert!(message.contains("remove it"), "{message}");
    let mut older = StorageOptions::default();
    older.push_for("s3", "endpoint", "http://a:1");
    assert!(StorageConfig::from_url_with("memory://", &older, &Environment::default()).is_ok());
}

#[test]
fn credentials_never_show_in_display_debug_or_errors() {
    let table = options(&format!(
        "secret_access_key = {SECRET:?}\nsession_token = {SECRET:?}\n"
    ));
    let sas = format!("sv=2021-08-06&sig={SECRET}");
    let vars = [
        ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", SECRET),
        ("GOOGLE_BEARER_TOKEN", SECRET),
        ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
        ("AZURE_STORAGE_SAS_KEY", sas.as_str()),
        ("AZURE_STORAGE_CLIENT_SECRET", SECRET),
    ];
    for url in [
        "s3://bucket/prefix",
        "gs://bucket/prefix",
        "az://container/prefix",
    ] {
        let with_table = if url.starts_with("s3") {
            table.clone()
        } else {
            StorageOptions::default()
        };
        let config = StorageConfig::from_url_with(url, &with_table, &env(&vars)).unwrap();
        for text in [
            config.to_string(),
            format!("{config:?}"),
            format!("{config:#?}"),
        ] {
            assert!(!text.contains(SECRET), "{url}: the secret shows: {text}");
        }
    }
    assert_eq!(
        cloud("s3://bucket/prefix", &table, &vars).to_string(),
        "s3://bucket/prefix (endpoint http://127.0.0.1:9000)"
    );
    assert!(!format!("{table:?}").contains(SECRET));
    assert!(!format!("{:?}", env(&vars)).contains(SECRET));
    // A secret written where object_store parses something else is not repeated in the message.
    let (_, message) = refused(
        "gs://bucket",
        &options(&format!("service_account_key = {SECRET:?}\n")),
        &[],
    );
    assert!(!message.contains(SECRET), "{message}");
}
