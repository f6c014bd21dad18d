/// What can go wrong with the module store, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file is not stored. The proxy answers 404 (or fetches it).
    #[error("not found: {0}")]
    NotFound(String),
    /// The storage URL or configuration is wrong; start-up stops with this message.
    #[error("invalid storage configuration: {0}")]
    Config(String),
    /// The backend could not be reached or failed. The proxy answers 503 and reports not ready.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A zip handed to `save` failed to produce its bytes (e.g. a read error on the fetched file).
    #[error("reading the zip to store failed: {0}")]
    Source(std::io::Error),
}

impl StorageError {
    pub(crate) fn from_object_store(error: object_store::Error, key: &str) -> StorageError {
        match error {
            object_store::Error::NotFound { .. } => StorageError::NotFound(key.to_string()),
            // object_store's messages name the key and the backend's answer, never credentials.
            other => StorageError::Unavailable(other.to_string()),
        }
    }
}
