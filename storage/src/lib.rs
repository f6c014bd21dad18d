//! Ferry's module store: the [`ModuleStore`] trait, and one implementation of it over `object_store` that
//! serves every backend, chosen by a storage URL. Module paths and versions come from `ferry-module`.

mod cloud;
mod config;
mod error;
mod hot;
mod lease;
mod local;
mod object;
mod options;
mod records;
mod store;

pub use cloud::CloudConfig;
pub use config::{FileConfig, StorageConfig};
pub use error::{ConfigError, Culprit, Failure, StorageError};
pub use hot::{HotZipSettings, HotZipTotals, hot_zip_totals};
pub use lease::{BucketLeases, LeaseTag, Written};
pub use local::{Swept, is_staging_name, staging_path_of, sweep};
pub use object::ObjectModuleStore;
pub use options::{Environment, StorageOptions, is_secret};
pub use records::{Record, Records};
pub use store::{
    ByteRange, ModuleStore, ModuleStoreExt, Saved, StoredFile, VersionFile, VersionFiles,
    VisibilityGuard, ZipPart, ZipSource, ZipStream,
};
