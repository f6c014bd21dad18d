//! The storage URL, the options table and the environment snapshot, and the store they open.
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use serde::Deserialize;

use crate::cloud::CloudConfig;
use crate::error::{ConfigError, StorageError};
use crate::object::ObjectModuleStore;
use crate::store::ModuleStore;

/// Which backend holds the modules, chosen by a storage URL: `file://PATH`, `memory://`,
/// `s3://BUCKET[/PREFIX]`, `gs://BUCKET[/PREFIX]` or `az://CONTAINER[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    File(FileConfig),
    Memory,
    /// A bucket (or container) of an `object_store` cloud backend, configured by its own keys.
    Cloud(Box<CloudConfig>),
}

/// `file://PATH`: a directory in the GOPROXY layout, created if missing. `PATH` may be relative
/// (`file://./ferry-data`) or absolute (`file:///var/lib/ferry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    pub root: PathBuf,
}

/// One option of the configuration file's storage table: a key as written (any spelling `object_store`
/// accepts for the backend, or one of Ferry's own) and its value as text.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageOption {
    pub key: String,
    pub value: String,
    /// `Some(scheme)` for an option of a backend-specific table (the older `[s3]` and `[gcs]`): it applies
    /// only to a store of that scheme and is ignored otherwise. `None`: it applies to whichever backend
    /// the URL picks, and must be one of its keys.
    pub only_for: Option<&'static str>,
}

/// The options table of the configuration file (`[storage_options]`), in the order written. An option
/// set here wins over the same key from the environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    options: Vec<StorageOption>,
}

impl StorageOptions {
    /// Adds an option of the generic table; returns its index (the one a [`Culprit`](crate::Culprit) names).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) -> usize {
        self.push_option(StorageOption {
            key: key.into(),
            value: value.into(),
            only_for: None,
        })
    }

    /// Adds an option that applies only to a store whose URL has `scheme` (`"s3"`, `"gs"`, `"az"`).
    pub fn push_for(
        &mut self,
        scheme: &'static str,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> usize {
        self.push_option(StorageOption {
            key: key.into(),
            value: value.into(),
            only_for: Some(scheme),
        })
    }

    fn push_option(&mut self, option: StorageOption) -> usize {
        self.options.push(option);
        self.options.len() - 1
    }

    pub fn iter(&self) -> impl Iterator<Item = &StorageOption> {
        self.options.iter()
    }
}

/// A table of `key = value` where a value is a string, a whole number or a boolean (each handed to
/// `object_store` as text), as in `[storage_options]`.
impl<'de> Deserialize<'de> for StorageOptions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Value {
            Text(String),
            Flag(bool),
            Number(u64),
        }
        let table = BTreeMap::<String, Value>::deserialize(deserializer)?;
        let mut options = StorageOptions::default();
        for (key, value) in table {
            let value = match value {
                Value::Text(text) => text,
                Value::Flag(flag) => flag.to_string(),
                Value::Number(n) => n.to_string(),
            };
            options.push(key, value);
        }
        Ok(options)
    }
}

impl fmt::Debug for StorageOptions {
    /// Keys, and the values of keys that hold no secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for option in &self.options {
            list.entry(&format_args!(
                "{} = {}",
                option.key,
                crate::cloud::shown_value(&option.key, &option.value)
            ));
        }
        list.finish()
    }
}

impl fmt::Debug for StorageOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = crate::cloud::shown_value(&self.key, &self.value);
        write!(f, "{} = {value}", self.key)
    }
}

/// A snapshot of environment variables, taken by the caller (`std::env::vars().collect()`): the crate never
/// reads the process environment, so tests hand it any environment without changing their own.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The non-empty variables whose names start with `prefix` (e.g. `AWS_`), in name order. An empty
    /// variable counts as unset, as it does for a shell user.
    pub(crate) fn starting_with<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .iter()
            .filter(move |(name, value)| name.starts_with(prefix) && !value.is_empty())
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
    /// The backend named by `url`, with no options and an empty environment.
    pub fn from_url(url: &str) -> Result<StorageConfig, StorageError> {
        Self::from_url_with(url, &StorageOptions::default(), &Environment::default())
    }

    /// The backend named by `url`, configured by `env` (the backend's `AWS_*`, `GOOGLE_*` or `AZURE_*`
    /// variables) and then `options` (the configuration file's table), every value checked: a
    /// configuration that is accepted here cannot make `object_store` panic later.
    pub fn from_url_with(
        url: &str,
        options: &StorageOptions,
        env: &Environment,
    ) -> Result<StorageConfig, StorageError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            let forms = crate::cloud::url_forms();
            ConfigError::url(format!("{url:?} is not a storage URL; write {forms}"))
        })?;
        let config = match scheme {
            "file" if !rest.is_empty() => StorageConfig::File(FileConfig {
                root: PathBuf::from(rest),
            }),
            "file" => {
                return Err(ConfigError::url(format!(
                    "{url:?} names no directory; write file://PATH"
                ))
                .into());
            }
            "memory" if rest.is_empty() => StorageConfig::Memory,
            "memory" => {
                return Err(ConfigError::url(format!(
                    "{url:?}: write memory:// with nothing after it"
                ))
                .into());
            }
            _ => match crate::cloud::backend(scheme) {
                Some(backend) => {
                    StorageConfig::Cloud(Box::new(CloudConfig::new(backend, rest, options, env)?))
                }
                None => {
                    return Err(ConfigError::url(format!(
                        "unknown storage scheme {scheme:?} in {url:?}; use {}",
                        crate::cloud::url_forms()
                    ))
                    .into());
                }
            },
        };
        if !matches!(config, StorageConfig::Cloud(_)) {
            // Options of the generic table name keys of a cloud backend: with a local store they would
            // be silently ignored.
            if let Some((index, option)) = options
                .iter()
                .enumerate()
                .find(|(_, o)| o.only_for.is_none())
            {
                return Err(ConfigError::new(
                    crate::Culprit::OptionKey(index),
                    format!(
                        "storage option {:?} has no meaning for {url}; remove it, or use an \
                         s3://, gs:// or az:// storage URL",
                        option.key
                    ),
                )
                .into());
            }
        }
        Ok(config)
    }

    /// Builds the store. A `file://` directory is created when missing; a bucket is not contacted (call
    /// [`ModuleStore::check`] to know whether it answers).
    pub fn open(&self) -> Result<Arc<dyn ModuleStore>, StorageError> {
        match self {
            StorageConfig::File(file) => Ok(Arc::new(file.open_store()?)),
            StorageConfig::Memory => {
                let memory: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
                Ok(Arc::new(ObjectModuleStore::new(memory, "")?))
            }
            StorageConfig::Cloud(cloud) => {
                let backend = cloud.build()?;
                let store = ObjectModuleStore::new(backend, cloud.prefix())?;
                Ok(Arc::new(store.with_advice(cloud.advice())))
            }
        }
    }
}

impl StorageConfig {
    /// The lease objects of a bucket store, beside its versions under the same prefix, with a client of
    /// their own (built the same way as the store's; contacts nothing). `None` for a file or memory store:
    /// object_store's `LocalFileSystem` has no replace-if-unchanged write (`PutMode::Update`), so a lease
    /// there could be taken but not safely taken over; and a memory store is never shared.
    pub fn open_leases(&self) -> Result<Option<crate::lease::BucketLeases>, StorageError> {
        let StorageConfig::Cloud(cloud) = self else {
            return Ok(None);
        };
        let backend = cloud.build()?;
        let trimmed = cloud.prefix().trim_matches('/');
        let store: Arc<dyn ObjectStore> = if trimmed.is_empty() {
            backend
        } else {
            let prefix = object_store::path::Path::parse(trimmed).map_err(|e| {
                ConfigError::url(format!("bad key prefix {trimmed:?}: {e}")).with_source(e)
            })?;
            Arc::new(object_store::prefix::PrefixStore::new(backend, prefix))
        };
        Ok(Some(crate::lease::BucketLeases::new(
            store,
            self.to_string(),
        )))
    }
}

impl FileConfig {
    /// The directory's store as its own type, to change its settings (`with_fsync`) before use: the
    /// directory is created when missing, and staging debris under it is swept.
    pub fn open_store(&self) -> Result<ObjectModuleStore, StorageError> {
        open_directory(&self.root)
    }
}

fn open_directory(root: &std::path::Path) -> Result<ObjectModuleStore, StorageError> {
    // Operator-facing only (start-up): naming the directory is the point.
    let unusable = |e: std::io::Error| {
        ConfigError::url(format!("cannot use {} as a store: {e}", root.display())).with_source(e)
    };
    std::fs::create_dir_all(root).map_err(|e| {
        ConfigError::url(format!(
            "cannot create the store directory {}: {e}",
            root.display()
        ))
        .with_source(e)
    })?;
    // The directory as `LocalFileSystem` resolves it, for linking fetched zips into place and for keeping
    // it out of messages.
    let canonical = std::fs::canonicalize(root).map_err(unusable)?;
    let local = object_store::local::LocalFileSystem::new_with_prefix(&canonical).map_err(|e| {
        ConfigError::url(format!("cannot use {} as a store: {e}", root.display())).with_source(e)
    })?;
    // Staging files of writers that died (a kill -9 mid-copy, a full disk) are removed before serving.
    let swept = crate::local::sweep(&canonical);
    if swept.removed > 0 || swept.kept > 0 {
        tracing::info!(
            removed = swept.removed,
            kept = swept.kept,
            "swept staging files of the store (kept: young, their writer may be running)"
        );
    }
    // Empty version directories left by deletes are removed, as a hand-made tree would be.
    let local: Arc<dyn ObjectStore> = Arc::new(local.with_automatic_cleanup(true));
    Ok(ObjectModuleStore::new(local, "")?.with_local_root(canonical))
}

impl fmt::Display for StorageConfig {
    /// The URL and the endpoint, as safe to log (no credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageConfig::File(FileConfig { root }) => write!(f, "file://{}", root.display()),
            StorageConfig::Memory => f.write_str("memory://"),
            StorageConfig::Cloud(cloud) => cloud.fmt(f),
        }
    }
}
