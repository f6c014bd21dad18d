//! Ferry's module store: the [`ModuleStore`] trait, and one implementation of it over `object_store` that
//! serves every backend, chosen by a storage URL. Module paths and versions come from `ferry-module`.

mod config;
mod error;
mod gcs;
mod object;
mod s3;
mod store;

pub use config::{Environment, FileConfig, GcsOptions, S3Options, StorageConfig, StorageOptions};
pub use error::StorageError;
pub use gcs::GcsConfig;
pub use object::ObjectModuleStore;
pub use s3::S3Config;
pub use store::{ModuleStore, Saved, VersionFiles, ZipSource, ZipStream};
