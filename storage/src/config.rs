use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig};
use serde::Deserialize;

use crate::error::StorageError;
use crate::gcs::GcsConfig;
use crate::object::ObjectModuleStore;
use crate::s3::S3Config;
use crate::store::ModuleStore;

pub use crate::gcs::GcsOptions;
pub use crate::s3::S3Options;

/// Which backend holds the modules, chosen by a storage URL: `file://PATH`, `memory://`,
/// `s3://BUCKET[/PREFIX]` or `gs://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    File(FileConfig),
    Memory,
    S3(S3Config),
    Gcs(GcsConfig),
}

/// `file://PATH`: a directory in the GOPROXY layout, created if missing. `PATH` may be relative
/// (`file://./ferry-data`) or absolute (`file:///var/lib/ferry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    pub root: PathBuf,
}

/// The backend options of the configuration file: the `[s3]` and `[gcs]` tables. Options
/// of a backend the URL does not choose are ignored, so one file can hold both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageOptions {
    #[serde(default)]
    pub s3: S3Options,
    #[serde(default)]
    pub gcs: GcsOptions,
}

/// A snapshot of environment variables, taken by the caller (`std::env::vars().collect()`): the crate never
/// reads the process environment, so tests hand it any environment without changing their own.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The variables whose names start with `prefix` (e.g. `AWS_`), in name order.
    pub(crate) fn starting_with<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .iter()
            .filter(move |(name, _)| name.starts_with(prefix))
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Environment {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl fmt::Debug for Environment {
    /// Names only: values may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl StorageConfig {
    /// The backend named by `url`, with no configuration file options and an empty environment.
    pub fn from_url(url: &str) -> Result<StorageConfig, StorageError> {
        Self::from_url_with(url, &StorageOptions::default(), &Environment::default())
    }

    /// The backend named by `url`, its options taken from `options` (the configuration file) over `env`
    /// (the `AWS_*` variables for `s3://`, the `GOOGLE_*` ones for `gs://`).
    pub fn from_url_with(
        url: &str,
        options: &StorageOptions,
        env: &Environment,
    ) -> Result<StorageConfig, StorageError> {
        const SCHEMES: &str =
            "file://PATH, memory://, s3://BUCKET[/PREFIX] or gs://BUCKET[/PREFIX]";
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            StorageError::Config(format!("{url:?} is not a storage URL; write {SCHEMES}"))
        })?;
        match scheme {
            "file" if !rest.is_empty() => Ok(StorageConfig::File(FileConfig {
                root: PathBuf::from(rest),
            })),
            "file" => Err(StorageError::Config(format!(
                "{url:?} names no directory; write file://PATH"
            ))),
            "memory" if rest.is_empty() => Ok(StorageConfig::Memory),
            "memory" => Err(StorageError::Config(format!(
                "{url:?}: write memory:// with nothing after it"
            ))),
            "s3" => {
                let (bucket, prefix) = bucket_and_prefix("s3", rest)?;
                Ok(StorageConfig::S3(S3Config::new(
                    bucket,
                    prefix,
                    &options.s3,
                    env,
                )?))
            }
            "gs" => {
                let (bucket, prefix) = bucket_and_prefix("gs", rest)?;
                Ok(StorageConfig::Gcs(GcsConfig::new(
                    bucket,
                    prefix,
                    &options.gcs,
                    env,
                )?))
            }
            other => Err(StorageError::Config(format!(
                "unknown storage scheme {other:?} in {url:?}; use {SCHEMES}"
            ))),
        }
    }

    /// Builds the store. A `file://` directory is created when missing; a bucket is not contacted (call
    /// [`ModuleStore::check`] to know whether it answers).
    pub fn open(&self) -> Result<Arc<dyn ModuleStore>, StorageError> {
        let (backend, prefix, local_root): (Arc<dyn ObjectStore>, &str, _) = match self {
            StorageConfig::File(FileConfig { root }) => {
                std::fs::create_dir_all(root).map_err(|e| {
                    StorageError::Config(format!(
                        "cannot create the store directory {}: {e}",
                        root.display()
                    ))
                })?;
                let local =
                    object_store::local::LocalFileSystem::new_with_prefix(root).map_err(|e| {
                        StorageError::Config(format!(
                            "cannot use {} as a store: {e}",
                            root.display()
                        ))
                    })?;
                // The directory as `LocalFileSystem` resolved it, for linking fetched zips into place.
                let canonical = std::fs::canonicalize(root).map_err(|e| {
                    StorageError::Config(format!("cannot use {} as a store: {e}", root.display()))
                })?;
                // Empty version directories left by deletes are removed, as a hand-made tree would be.
                (
                    Arc::new(local.with_automatic_cleanup(true)),
                    "",
                    Some(canonical),
                )
            }
            StorageConfig::Memory => (Arc::new(object_store::memory::InMemory::new()), "", None),
            StorageConfig::S3(s3) => (Arc::new(s3.build()?), &s3.prefix, None),
            StorageConfig::Gcs(gcs) => (Arc::new(gcs.build()?), &gcs.prefix, None),
        };
        let store = ObjectModuleStore::new(backend, prefix)?;
        Ok(Arc::new(match local_root {
            Some(root) => store.with_local_root(root),
            None => store,
        }))
    }
}

impl fmt::Display for StorageConfig {
    /// The URL and the endpoint, as safe to log (no credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageConfig::File(FileConfig { root }) => write!(f, "file://{}", root.display()),
            StorageConfig::Memory => f.write_str("memory://"),
            StorageConfig::S3(s3) => s3.fmt(f),
            StorageConfig::Gcs(gcs) => gcs.fmt(f),
        }
    }
}

/// Splits `BUCKET[/PREFIX]` (what follows `s3://` or `gs://`) and checks both parts.
fn bucket_and_prefix(scheme: &str, rest: &str) -> Result<(String, String), StorageError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.contains('@') || bucket.contains(':') {
        // Not echoed: what stands before the `@` may be a secret.
        return Err(StorageError::Config(format!(
            "a {scheme}:// storage URL carries no credentials or port; give them as options"
        )));
    }
    let valid_bucket = !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
    if !valid_bucket {
        return Err(StorageError::Config(format!(
            "{scheme}://{rest}: write {scheme}://BUCKET[/PREFIX] with a bucket name of lower-case \
             letters, digits, '-', '.' and '_'"
        )));
    }
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        Path::parse(prefix).map_err(|e| {
            StorageError::Config(format!("{scheme}://{rest}: bad key prefix {prefix:?}: {e}"))
        })?;
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// The network settings every cloud backend shares, with defaults chosen so that a backend that is down
/// or hangs fails a request within bounded time instead of hanging it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Network {
    pub connect_timeout_secs: Option<u64>,
    pub read_timeout_secs: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    pub max_retries: Option<usize>,
}

/// Time allowed to open a connection.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed between two reads from the backend (also the wait for response headers). A stalled
/// backend fails here. There is no overall request timeout by default: it would cut a large zip served
/// to a slow client.
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of a failed request (connection refused, timeout, 5xx), with backoff.
pub(crate) const DEFAULT_MAX_RETRIES: usize = 2;

impl Network {
    /// The client options: Ferry's defaults, then `env_client` (client keys from the environment, e.g. a
    /// proxy URL), then the explicit settings.
    pub(crate) fn client_options(
        &self,
        mut client: ClientOptions,
        env_client: Vec<(ClientConfigKey, String)>,
    ) -> ClientOptions {
        client = client
            .with_connect_timeout(DEFAULT_CONNECT_TIMEOUT)
            .with_read_timeout(DEFAULT_READ_TIMEOUT)
            .with_timeout_disabled();
        for (key, value) in env_client {
            client = client.with_config(key, value);
        }
        if let Some(secs) = self.connect_timeout_secs {
            client = client.with_connect_timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = self.read_timeout_secs {
            client = client.with_read_timeout(Duration::from_secs(secs));
        }
        match self.request_timeout_secs {
            Some(0) | None => {}
            Some(secs) => client = client.with_timeout(Duration::from_secs(secs)),
        }
        client
    }

    /// A few quick retries: a backend that is down is reported within seconds, not minutes.
    pub(crate) fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            retry_timeout: Duration::from_secs(60),
        }
    }
}

/// Parses a boolean option the way object_store does for its own variables.
pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool, StorageError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(StorageError::Config(format!(
            "{name}={value:?} is not a boolean; write true or false"
        ))),
    }
}

/// How a secret option shows in `Debug`.
pub(crate) fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

/// `SCHEME://BUCKET[/PREFIX][ (endpoint E)]`: how a cloud store shows in logs and messages (no credentials).
pub(crate) fn fmt_bucket(
    f: &mut fmt::Formatter<'_>,
    scheme: &str,
    bucket: &str,
    prefix: &str,
    endpoint: Option<&str>,
) -> fmt::Result {
    write!(f, "{scheme}://{bucket}")?;
    if !prefix.is_empty() {
        write!(f, "/{prefix}")?;
    }
    if let Some(endpoint) = endpoint {
        write!(f, " (endpoint {endpoint})")?;
    }
    Ok(())
}

/// The names of further environment variables handed to a backend, without their values (which may be
/// credentials).
pub(crate) fn variable_names(variables: &[(String, String)]) -> Vec<&str> {
    variables.iter().map(|(name, _)| name.as_str()).collect()
}
