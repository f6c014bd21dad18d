//! Ferry's module store: Go module paths and versions ([`module`]), the [`ModuleStore`] trait, and one
//! implementation of it over `object_store` that serves every backend, chosen by a storage URL.

mod config;
mod error;
pub mod module;
mod object;
mod store;

pub use config::{FileConfig, StorageConfig};
pub use error::StorageError;
pub use module::{InvalidInput, ModulePath, Version, VersionQuery};
pub use object::ObjectModuleStore;
pub use store::{ModuleStore, Saved, VersionFiles, ZipStream};
