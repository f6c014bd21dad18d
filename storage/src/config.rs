//! The storage URL and the store it opens (the options table and the environment snapshot are in `options.rs`).
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;

use crate::cloud::CloudConfig;
use crate::error::{ConfigError, StorageError};
use crate::hot::HotZipSettings;
use crate::object::ObjectModuleStore;
use crate::options::{Environment, StorageOptions};
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

impl StorageConfig {
    /// The backend's label in storage metrics: `file`, `memory`, or the cloud backend's own (from its entry in
    /// `cloud.rs`, so that a new backend is labelled where it is declared).
    pub fn metric_label(&self) -> &'static str {
        match self {
            StorageConfig::File(_) => "file",
            StorageConfig::Memory => "memory",
            StorageConfig::Cloud(cloud) => cloud.metric_label(),
        }
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
        let none = HotZipSettings {
            max_bytes: 0,
            ..HotZipSettings::default()
        };
        self.open_with(none)
    }

    /// [`StorageConfig::open`], a file store keeping its hot zips in memory within `hot` (a server's store;
    /// a tool that reads each zip once has no use for it).
    pub fn open_with(&self, hot: HotZipSettings) -> Result<Arc<dyn ModuleStore>, StorageError> {
        match self {
            StorageConfig::File(file) => Ok(Arc::new(file.open_store()?.with_hot_zips(hot))),
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
