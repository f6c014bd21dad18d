//! The cloud backends (`s3://`, `gs://`, `az://`), each configured by `object_store`'s own keys: the
//! backend's environment variables, then the configuration file's options table, every value checked
//! before `object_store` sees it.
//!
//! Adding a backend is one entry of [`backends`]: its scheme, its `object_store` builder and key type,
//! and the word for its bucket.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::error::{Advice, ConfigError, Culprit, StorageError};
use crate::options::{Environment, StorageOptions, is_secret, shown_value};

/// One `object_store` cloud backend, as Ferry needs to know it.
#[derive(Clone, Copy)]
pub(crate) struct Backend {
    /// The URL scheme: `s3`, `gs`, `az`.
    pub scheme: &'static str,
    /// How messages name it.
    pub name: &'static str,
    /// Its `backend` label in the proxy's storage metrics: `s3`, `gcs`, `az`.
    pub metric_label: &'static str,
    /// What the URL's first part names: `bucket` or `container`.
    pub bucket_word: &'static str,
    /// The prefix of its standard environment variables (`AWS_`), read as `object_store` keys.
    pub env_prefix: &'static str,
    /// `object_store`'s canonical name of a key written in any spelling it accepts, or `None`.
    pub canonical: fn(&str) -> Option<String>,
    /// The canonical key that names the bucket: always taken from the URL instead.
    pub bucket_key: &'static str,
    /// The canonical keys that name the server, shown with the URL in logs.
    pub endpoint_keys: &'static [&'static str],
    /// Whether a bucket (container) name is acceptable, and the rule for the message.
    pub valid_bucket: fn(&str) -> bool,
    pub bucket_rule: &'static str,
    /// Whether plain `http://` is allowed unless `allow_http` says otherwise (GCS: the emulator's address
    /// comes from a service-account file).
    pub http_by_default: bool,
    /// The options (and variables) that give credentials, for messages.
    pub credentials: &'static str,
    /// Builds the store for a bucket from canonical key/value pairs, over Ferry's client defaults.
    pub build: Build,
}

/// How a [`Backend`] builds its store: bucket, settings, client defaults, retries.
pub(crate) type Build = fn(
    &str,
    &[(&str, &str)],
    ClientOptions,
    RetryConfig,
) -> object_store::Result<Arc<dyn ObjectStore>>;

/// The [`Backend`] fields that come from `object_store`'s builder and key types.
macro_rules! object_store_backend {
    ($builder:ty, $key:ty, $with_bucket:ident, { $($field:ident: $value:expr),* $(,)? }) => {
        Backend {
            canonical: |key| {
                let key = key.to_ascii_lowercase().parse::<$key>().ok()?;
                Some(AsRef::<str>::as_ref(&key).to_string())
            },
            build: |bucket, settings, client, retry| {
                install_ring_provider();
                let mut builder = <$builder>::new().with_client_options(client).with_retry(retry);
                for (key, value) in settings {
                    builder = builder.with_config(key.parse::<$key>()?, *value);
                }
                Ok(Arc::new(builder.$with_bucket(bucket).build()?))
            },
            $($field: $value),*
        }
    };
}

/// Makes ring the process's default rustls provider unless the process chose one: object_store's reqwest
/// client is built with `rustls-no-provider` (ring is the workspace's one provider; see its Cargo.toml)
/// and takes the process's default, without which building it panics. `ferry` installs it at start-up;
/// this covers every other user of the crate (tests, benches, examples).
fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Every cloud backend. A new `object_store` backend is one entry here (and its feature in Cargo.toml).
fn backends() -> Vec<Backend> {
    vec![
        object_store_backend!(AmazonS3Builder, AmazonS3ConfigKey, with_bucket_name, {
            scheme: "s3",
            name: "S3",
            metric_label: "s3",
            bucket_word: "bucket",
            env_prefix: "AWS_",
            bucket_key: "aws_bucket",
            endpoint_keys: &["aws_endpoint", "aws_endpoint_url_s3"],
            valid_bucket: bucket_name,
            bucket_rule: "lower-case letters, digits, '-', '.' and '_'",
            http_by_default: false,
            credentials: "access_key_id and secret_access_key (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
        }),
        object_store_backend!(GoogleCloudStorageBuilder, GoogleConfigKey, with_bucket_name, {
            scheme: "gs",
            name: "GCS",
            metric_label: "gcs",
            bucket_word: "bucket",
            env_prefix: "GOOGLE_",
            bucket_key: "google_bucket",
            endpoint_keys: &["google_base_url"],
            valid_bucket: bucket_name,
            bucket_rule: "lower-case letters, digits, '-', '.' and '_'",
            http_by_default: true,
            credentials: "service_account (GOOGLE_SERVICE_ACCOUNT: a service-account JSON file)",
        }),
        object_store_backend!(MicrosoftAzureBuilder, AzureConfigKey, with_container_name, {
            scheme: "az",
            name: "Azure Blob Storage",
            metric_label: "az",
            bucket_word: "container",
            env_prefix: "AZURE_",
            bucket_key: "azure_container_name",
            endpoint_keys: &["azure_storage_endpoint"],
            valid_bucket: container_name,
            bucket_rule: "3 to 63 lower-case letters, digits and '-'",
            http_by_default: false,
            credentials: "azure_storage_account_key or azure_storage_sas_key (AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_KEY)",
        }),
    ]
}

/// The backend of a URL scheme.
pub(crate) fn backend(scheme: &str) -> Option<Backend> {
    backends().into_iter().find(|b| b.scheme == scheme)
}

/// Every storage URL form, for messages: `file://PATH, memory://, s3://BUCKET[/PREFIX], ...`.
pub(crate) fn url_forms() -> String {
    let mut forms = vec!["file://PATH".to_string(), "memory://".to_string()];
    for b in backends() {
        let word = b.bucket_word.to_ascii_uppercase();
        forms.push(format!("{}://{word}[/PREFIX]", b.scheme));
    }
    let last = forms.pop().unwrap_or_default();
    format!("{} or {last}", forms.join(", "))
}

fn bucket_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
}

fn container_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Time allowed to open a connection.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed between two reads from the backend (also the wait for response headers). A stalled
/// backend fails here. There is no overall request timeout by default: it would cut a large zip served
/// to a slow client.
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of a failed request (connection refused, timeout, 5xx), with backoff.
const DEFAULT_MAX_RETRIES: usize = 2;
/// All retries of one request end within this time.
const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// More retries than this only delay the 503 a client is waiting for.
const MOST_RETRIES: usize = 10;

/// Ferry's own options, beside `object_store`'s keys.
const MAX_RETRIES: &str = "max_retries";
const RETRY_TIMEOUT: &str = "retry_timeout";
/// The older `[s3]`/`[gcs]` tables' timeouts in whole seconds, and the `object_store` key each stands for.
const SECONDS_KEYS: [(&str, &str); 3] = [
    ("connect_timeout_secs", "connect_timeout"),
    ("read_timeout_secs", "read_timeout"),
    ("request_timeout_secs", "timeout"),
];
/// `object_store` client keys whose value is a duration.
const DURATION_KEYS: [&str; 6] = [
    "connect_timeout",
    "read_timeout",
    "timeout",
    "pool_idle_timeout",
    "http2_keep_alive_interval",
    "http2_keep_alive_timeout",
];

/// Where a resolved value came from, to point at it when it is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Variable(String),
    Option(usize),
}

impl Source {
    fn culprit(&self) -> Culprit {
        match self {
            Source::Variable(name) => Culprit::Variable(name.clone()),
            Source::Option(index) => Culprit::OptionValue(*index),
        }
    }

    /// How a message names it.
    fn describe(&self, key: &str) -> String {
        match self {
            Source::Variable(name) => format!("environment variable {name}"),
            Source::Option(_) => format!("storage option {key}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    value: String,
    source: Source,
}

/// A bucket (or container) of a cloud backend with its settings resolved: the environment's, then the
/// options table's, each checked.
#[derive(Clone)]
pub struct CloudConfig {
    backend: Backend,
    bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (empty for the bucket's root).
    prefix: String,
    /// `object_store` keys by canonical name.
    settings: BTreeMap<String, Setting>,
    max_retries: usize,
    retry_timeout: Duration,
}

impl PartialEq for CloudConfig {
    fn eq(&self, other: &Self) -> bool {
        self.backend.scheme == other.backend.scheme
            && self.bucket == other.bucket
            && self.prefix == other.prefix
            && self.settings == other.settings
            && self.max_retries == other.max_retries
            && self.retry_timeout == other.retry_timeout
    }
}

impl Eq for CloudConfig {}

impl CloudConfig {
    /// `rest` is what follows `SCHEME://` in the URL.
    pub(crate) fn new(
        backend: Backend,
        rest: &str,
        options: &StorageOptions,
        env: &Environment,
    ) -> Result<CloudConfig, ConfigError> {
        let (bucket, prefix) = bucket_and_prefix(&backend, rest)?;
        let mut config = CloudConfig {
            backend,
            bucket,
            prefix,
            settings: BTreeMap::new(),
            max_retries: DEFAULT_MAX_RETRIES,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
        };
        for (name, value) in env.starting_with(backend.env_prefix) {
            // object_store's own names, so every variable means what it means to object_store; the
            // ones it does not know (AWS_PROFILE, ...) are not for it.
            match (backend.canonical)(name) {
                Some(key) if key != backend.bucket_key => {
                    config.set(key, value, Source::Variable(name.to_string()))
                }
                _ => {}
            }
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (index, option) in options.iter().enumerate() {
            if option
                .only_for
                .is_some_and(|scheme| scheme != backend.scheme)
            {
                continue;
            }
            let key = config.option_key(index, &option.key)?;
            if let Some(&first) = seen.get(&key) {
                let first = &options.iter().nth(first).expect("seen index").key;
                return Err(ConfigError::new(
                    Culprit::OptionKey(index),
                    format!(
                        "storage option {:?} sets the same {} option as {first:?}; keep one",
                        option.key, backend.name
                    ),
                ));
            }
            seen.insert(key.clone(), index);
            config.set_option(index, key, &option.value)?;
        }
        for (key, setting) in &config.settings {
            check_value(key, setting)
                .map_err(|message| config.value_error(key, setting, message))?;
        }
        // Building contacts nothing; it is how object_store checks the values it parses itself
        // (booleans, numbers, credentials' shapes).
        config.build_or_blame()?;
        Ok(config)
    }

    /// The canonical key an option names, or a message naming the fix.
    fn option_key(&self, index: usize, key: &str) -> Result<String, ConfigError> {
        let backend = &self.backend;
        let lower = key.to_ascii_lowercase();
        if lower == MAX_RETRIES
            || lower == RETRY_TIMEOUT
            || SECONDS_KEYS.iter().any(|(k, _)| *k == lower)
        {
            return Ok(lower);
        }
        match (backend.canonical)(key) {
            Some(canonical) if canonical == backend.bucket_key => Err(ConfigError::new(
                Culprit::OptionKey(index),
                format!(
                    "storage option {key:?}: the {} comes from the storage URL ({}://{}/PREFIX); \
                     remove {key:?}",
                    backend.bucket_word,
                    backend.scheme,
                    backend.bucket_word.to_ascii_uppercase()
                ),
            )),
            Some(canonical) => Ok(canonical),
            None => Err(ConfigError::new(
                Culprit::OptionKey(index),
                unknown_key_message(backend, key),
            )),
        }
    }

    fn set(&mut self, key: String, value: &str, source: Source) {
        self.settings.insert(
            key,
            Setting {
                value: value.to_string(),
                source,
            },
        );
    }

    /// Takes an option of the table: Ferry's own, or an `object_store` key.
    fn set_option(&mut self, index: usize, key: String, value: &str) -> Result<(), ConfigError> {
        let blame = |message: String| {
            ConfigError::new(
                Culprit::OptionValue(index),
                format!("storage option {key}: {message}"),
            )
        };
        if key == MAX_RETRIES {
            self.max_retries = match value.trim().parse::<usize>() {
                Ok(n) if n <= MOST_RETRIES => n,
                _ => {
                    return Err(blame(format!(
                        "{value:?} is not a number of retries from 0 to {MOST_RETRIES}; write e.g. 2"
                    )));
                }
            };
        } else if key == RETRY_TIMEOUT {
            self.retry_timeout = positive_duration(value).map_err(blame)?;
        } else if let Some((_, target)) = SECONDS_KEYS.iter().find(|(k, _)| *k == key) {
            match value.trim().parse::<u64>() {
                // `request_timeout_secs = 0` meant no overall limit, which is the default.
                Ok(0) if *target == "timeout" => {}
                Ok(secs) if secs > 0 => self.set(
                    target.to_string(),
                    &format!("{secs}s"),
                    Source::Option(index),
                ),
                _ => {
                    return Err(blame(format!(
                        "{value:?} is not a whole number of seconds; write e.g. 30"
                    )));
                }
            }
        } else {
            self.set(key, value, Source::Option(index));
        }
        Ok(())
    }

    fn value_error(&self, key: &str, setting: &Setting, message: String) -> ConfigError {
        let message = format!("{}: {message}", setting.source.describe(key));
        ConfigError::new(setting.source.culprit(), self.redact(message))
    }

    /// Builds the store; when object_store refuses the settings, finds the one it refuses (the one whose
    /// removal lets it build) to point at.
    fn build_or_blame(&self) -> Result<Arc<dyn ObjectStore>, ConfigError> {
        let error = match self.build_without(None) {
            Ok(store) => return Ok(store),
            Err(error) => error,
        };
        for (key, setting) in &self.settings {
            if self.build_without(Some(key)).is_ok() {
                let message = format!(
                    "{}: {error}; see object_store's documentation of {key}",
                    setting.source.describe(key)
                );
                return Err(
                    ConfigError::new(setting.source.culprit(), self.redact(message))
                        .with_source(error),
                );
            }
        }
        let message = self.redact(format!("{self}: {error}"));
        Err(ConfigError::url(message).with_source(error))
    }

    fn build_without(&self, left_out: Option<&str>) -> object_store::Result<Arc<dyn ObjectStore>> {
        let settings: Vec<(&str, &str)> = self
            .settings
            .iter()
            .filter(|(key, _)| Some(key.as_str()) != left_out)
            .map(|(key, setting)| (key.as_str(), setting.value.as_str()))
            .collect();
        let client = ClientOptions::new()
            .with_allow_http(self.backend.http_by_default)
            .with_connect_timeout(DEFAULT_CONNECT_TIMEOUT)
            .with_read_timeout(DEFAULT_READ_TIMEOUT)
            .with_timeout_disabled();
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        };
        (self.backend.build)(&self.bucket, &settings, client, retry)
    }

    /// Builds the `object_store` client (contacts nothing).
    pub(crate) fn build(&self) -> Result<Arc<dyn ObjectStore>, StorageError> {
        Ok(self.build_or_blame()?)
    }

    /// `message` with every secret value of the settings replaced.
    fn redact(&self, mut message: String) -> String {
        for (key, setting) in &self.settings {
            if is_secret(key) && setting.value.len() >= 3 {
                message = message.replace(&setting.value, "<redacted>");
            }
        }
        message
    }

    /// The words its store's messages use to say what to do about a failure (no credential in them).
    pub(crate) fn advice(&self) -> Advice {
        let endpoint = self
            .backend
            .endpoint_keys
            .iter()
            .find_map(|key| self.settings.get(*key))
            .map(|endpoint| endpoint.value.clone());
        Advice {
            backend: self.backend.name,
            env_prefix: self.backend.env_prefix,
            credentials: self.backend.credentials,
            bucket: format!("{} {:?}", self.backend.bucket_word, self.bucket),
            endpoint,
        }
    }

    /// The URL scheme: `s3`, `gs` or `az`.
    pub fn scheme(&self) -> &'static str {
        self.backend.scheme
    }

    /// Its `backend` label in storage metrics (`s3`, `gcs`, `az`).
    pub fn metric_label(&self) -> &'static str {
        self.backend.metric_label
    }

    /// The bucket (or container), from the URL.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix inside the bucket, without leading or trailing `/` (empty for its root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The value `object_store` gets for `key` (any spelling it accepts), wherever it came from.
    pub fn setting(&self, key: &str) -> Option<&str> {
        let key = (self.backend.canonical)(key).unwrap_or_else(|| key.to_string());
        self.settings.get(&key).map(|s| s.value.as_str())
    }

    /// Retries of a failed request.
    pub fn max_retries(&self) -> usize {
        self.max_retries
    }

    /// The settings taken from the environment: `(key, value, variable)`, a secret key's value
    /// `<redacted>` (those from the options table are the caller's own).
    pub fn settings_from_environment(&self) -> Vec<(&str, String, &str)> {
        self.settings
            .iter()
            .filter_map(|(key, setting)| match &setting.source {
                Source::Variable(name) => {
                    let shown = if is_secret(key) {
                        "<redacted>".to_string()
                    } else {
                        setting.value.clone()
                    };
                    Some((key.as_str(), shown, name.as_str()))
                }
                Source::Option(_) => None,
            })
            .collect()
    }
}

impl fmt::Display for CloudConfig {
    /// `SCHEME://BUCKET[/PREFIX][ (endpoint E)]`: the URL and the server, never credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.backend.scheme, self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        let endpoint = self
            .backend
            .endpoint_keys
            .iter()
            .find_map(|key| self.settings.get(*key));
        if let Some(endpoint) = endpoint {
            write!(f, " (endpoint {})", endpoint.value)?;
        }
        Ok(())
    }
}

impl fmt::Debug for CloudConfig {
    /// Every setting with where it came from; the values of secret keys redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings: BTreeMap<&str, String> = self
            .settings
            .iter()
            .map(|(key, s)| (key.as_str(), shown_value(key, &s.value)))
            .collect();
        f.debug_struct("CloudConfig")
            .field("scheme", &self.backend.scheme)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("settings", &settings)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .finish()
    }
}

/// Splits `BUCKET[/PREFIX]` (what follows `SCHEME://`) and checks both parts.
fn bucket_and_prefix(backend: &Backend, rest: &str) -> Result<(String, String), ConfigError> {
    let scheme = backend.scheme;
    let word = backend.bucket_word;
    let upper = word.to_ascii_uppercase();
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.contains('@') || bucket.contains(':') {
        // Not echoed: what stands before the `@` may be a secret.
        return Err(ConfigError::url(format!(
            "a {scheme}:// storage URL carries no credentials, host or port; write \
             {scheme}://{upper}[/PREFIX] and give them as storage options"
        )));
    }
    if !(backend.valid_bucket)(bucket) {
        return Err(ConfigError::url(format!(
            "{scheme}://{rest}: write {scheme}://{upper}[/PREFIX] with a {word} name of {}",
            backend.bucket_rule
        )));
    }
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        Path::parse(prefix).map_err(|e| {
            ConfigError::url(format!(
                "{scheme}://{rest}: bad key prefix {prefix:?} ({e}); write PREFIX as names \
                 separated by single '/', without '.' or '..'"
            ))
        })?;
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// Whether a key names a server `object_store` sends requests to.
fn is_url_key(key: &str) -> bool {
    key != "proxy_url"
        && (key.ends_with("endpoint")
            || key.ends_with("_url")
            || key.ends_with("_url_s3")
            || key.ends_with("_url_sts")
            || (key.ends_with("_uri") && !key.contains("relative"))
            || key.ends_with("authority_host"))
}

/// Whether a key's value is a file path (which may be any text).
fn is_path_key(key: &str) -> bool {
    key.ends_with("_file")
        || key.ends_with("_path")
        || key == "google_service_account"
        || key == "google_application_credentials"
        || key == "google_service_account_key"
        || key == "proxy_ca_certificate"
}

/// Checks what `object_store` would otherwise take on trust and panic on later (a URL it cannot parse,
/// a header value with a line break): `Err(what to write instead)`.
fn check_value(key: &str, setting: &Setting) -> Result<(), String> {
    let value = setting.value.as_str();
    if value.chars().any(char::is_control) {
        return Err("the value holds a control character (a line break?); remove it".to_string());
    }
    if !is_path_key(key) && !value.is_ascii() {
        return Err("the value holds a character that is not ASCII; remove it".to_string());
    }
    if is_url_key(key) {
        return check_url(value);
    }
    if DURATION_KEYS.contains(&key) {
        return positive_duration(value).map(|_| ());
    }
    let letters = |extra: &[u8]| {
        !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
    };
    match key {
        "aws_region" | "aws_default_region" if !letters(b"-") => Err(format!(
            "region {value:?} is not a region name; write e.g. us-east-1"
        )),
        "azure_storage_account_name" if !letters(b"") => Err(format!(
            "account name {value:?} is not a storage account name (lower-case letters and \
             digits); write e.g. devstoreaccount1"
        )),
        _ => Ok(()),
    }
}

fn check_url(value: &str) -> Result<(), String> {
    let example = "write e.g. http://127.0.0.1:9000 or https://storage.example.com";
    let uri: http::Uri = value
        .parse()
        .map_err(|_| format!("{value:?} is not a URL; {example}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(format!(
                "endpoint {value:?} needs http:// or https:// in front; {example}"
            ));
        }
    }
    match uri.authority() {
        Some(authority) if authority.as_str().contains('@') => Err(
            "the URL carries credentials; give them as their own storage options instead"
                .to_string(),
        ),
        Some(authority) if !authority.host().is_empty() => Ok(()),
        _ => Err(format!("{value:?} names no host; {example}")),
    }
}

fn positive_duration(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value.trim()) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err(format!(
            "{value:?} is zero, which fails every request; write e.g. \"30s\", or remove it for the default"
        )),
        Err(_) => Err(format!(
            "{value:?} is not a duration; write e.g. \"30s\" or \"2m\""
        )),
    }
}

/// "unknown option", the closest key the backend takes, and the backend a key belongs to when it is
/// another one's.
fn unknown_key_message(backend: &Backend, key: &str) -> String {
    let mut message = format!("unknown {} storage option {key:?}", backend.name);
    let other = backends()
        .into_iter()
        .filter(|b| b.scheme != backend.scheme)
        .find(|b| (b.canonical)(key).is_some());
    if let Some(other) = other {
        message.push_str(&format!(
            "; it is a {} option, and the storage URL is {}://: remove it, or use a {}:// URL",
            other.name, backend.scheme, other.scheme
        ));
        return message;
    }
    match closest_key(backend, key) {
        Some(closest) => message.push_str(&format!("; did you mean {closest:?}?")),
        None => message.push_str(&format!(
            "; write a key of object_store's {} configuration (see storage/README.md)",
            backend.name
        )),
    }
    message
}

/// A key the backend (or Ferry) accepts within two edits of `key`: tried by editing, since
/// `object_store` publishes no list of its keys (about 10^5 parses of a short key, a few milliseconds).
fn closest_key(backend: &Backend, key: &str) -> Option<String> {
    let key = key.to_ascii_lowercase();
    let known = |candidate: &str| {
        candidate == MAX_RETRIES
            || candidate == RETRY_TIMEOUT
            || SECONDS_KEYS.iter().any(|(k, _)| *k == candidate)
            || (backend.canonical)(candidate).is_some_and(|c| c != backend.bucket_key)
    };
    let one_edit = edits(&key);
    if let Some(found) = one_edit.iter().find(|c| known(c)) {
        return Some(found.clone());
    }
    if key.len() > 24 {
        return None;
    }
    one_edit.iter().flat_map(|c| edits(c)).find(|c| known(c))
}

/// Every string one deletion, transposition, substitution or insertion (of `a`-`z`, `0`-`9`, `_`) away.
fn edits(word: &str) -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    let bytes = word.as_bytes();
    let mut out = Vec::new();
    let text = |v: Vec<u8>| String::from_utf8(v).ok();
    for i in 0..=bytes.len() {
        if i < bytes.len() {
            let mut deleted = bytes.to_vec();
            deleted.remove(i);
            out.extend(text(deleted));
        }
        if i + 1 < bytes.len() {
            let mut swapped = bytes.to_vec();
            swapped.swap(i, i + 1);
            out.extend(text(swapped));
        }
        for &c in ALPHABET {
            if i < bytes.len() {
                let mut replaced = bytes.to_vec();
                replaced[i] = c;
                out.extend(text(replaced));
            }
            let mut inserted = bytes.to_vec();
            inserted.insert(i, c);
            out.extend(text(inserted));
        }
    }
    out
}
