use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;

use crate::error::StorageError;
use crate::object::ObjectModuleStore;
use crate::store::ModuleStore;

/// Which backend holds the modules, chosen by a storage URL (`file://PATH`, `memory://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    File(FileConfig),
    Memory,
}

/// `file://PATH`: a directory in the GOPROXY layout, created if missing. `PATH` may be relative
/// (`file://./ferry-data`) or absolute (`file:///var/lib/ferry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    pub root: PathBuf,
}

impl StorageConfig {
    pub fn from_url(url: &str) -> Result<StorageConfig, StorageError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            StorageError::Config(format!(
                "{url:?} is not a storage URL; write file://PATH or memory://"
            ))
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
            other => Err(StorageError::Config(format!(
                "unknown storage scheme {other:?} in {url:?}; use file:// or memory://"
            ))),
        }
    }

    /// Builds the store. A `file://` directory is created when missing.
    pub fn open(&self) -> Result<Arc<dyn ModuleStore>, StorageError> {
        let (backend, prefix): (Arc<dyn ObjectStore>, &str) = match self {
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
                // Empty version directories left by deletes are removed, as a hand-made tree would be.
                (Arc::new(local.with_automatic_cleanup(true)), "")
            }
            StorageConfig::Memory => (Arc::new(object_store::memory::InMemory::new()), ""),
        };
        Ok(Arc::new(ObjectModuleStore::new(backend, prefix)?))
    }
}

impl fmt::Display for StorageConfig {
    /// The URL, as safe to log (no credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageConfig::File(FileConfig { root }) => write!(f, "file://{}", root.display()),
            StorageConfig::Memory => f.write_str("memory://"),
        }
    }
}
