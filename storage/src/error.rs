//! The store's errors. Their `Display` is what a client may see (a 503 body, a start-up message): it names
//! keys and backends, never a local path or a credential; the backend's own error stays in `source()`.

use std::error::Error;
use std::fmt;

/// What can go wrong with the module store, in terms a caller can act on.
///
/// `source()` skips the wrappers and goes straight to the backend's (or the reader's) own error, so a log
/// that prints the chain shows each message once.
#[derive(Debug)]
pub enum StorageError {
    /// The file is not stored. The proxy answers 404 (or fetches it).
    NotFound(String),
    /// The storage URL or configuration is wrong; start-up stops with this message.
    Config(ConfigError),
    /// The backend could not be reached or failed. The proxy answers 503 and reports not ready.
    Unavailable(Failure),
    /// A zip handed to `save` failed to produce its bytes (e.g. a read error on the fetched file).
    Source(std::io::Error),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::NotFound(key) => write!(f, "not found: {key}"),
            StorageError::Config(e) => write!(f, "invalid storage configuration: {e}"),
            StorageError::Unavailable(e) => write!(f, "storage unavailable: {e}"),
            // An io::Error of a read names no path.
            StorageError::Source(e) => write!(f, "reading the zip to store failed: {e}"),
        }
    }
}

impl Error for StorageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StorageError::NotFound(_) => None,
            StorageError::Config(e) => e.source(),
            StorageError::Unavailable(e) => e.source(),
            StorageError::Source(e) => e.source(),
        }
    }
}

/// A backend failure: what Ferry was doing, in words safe to show anyone, and the backend's error.
#[derive(Debug)]
pub struct Failure {
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl Failure {
    /// `message` must carry no local path and no credential: it is shown to clients.
    pub fn new(
        message: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync + 'static>>,
    ) -> Failure {
        Failure {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Which part of the configuration a [`ConfigError`] is about, so the caller can point at it (a file's
/// `FILE:LINE:COL`, a flag, a variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Culprit {
    /// The storage URL itself.
    Url,
    /// The key of the option at this index of [`StorageOptions`](crate::StorageOptions).
    OptionKey(usize),
    /// The value of the option at this index.
    OptionValue(usize),
    /// This environment variable (the message names it too).
    Variable(String),
}

/// A storage configuration that cannot work: where, and what to write instead. The message never
/// repeats a secret value.
#[derive(Debug)]
pub struct ConfigError {
    pub culprit: Culprit,
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl ConfigError {
    pub(crate) fn new(culprit: Culprit, message: impl Into<String>) -> ConfigError {
        ConfigError {
            culprit,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn url(message: impl Into<String>) -> ConfigError {
        ConfigError::new(Culprit::Url, message)
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn Error + Send + Sync + 'static>>,
    ) -> ConfigError {
        self.source = Some(source.into());
        self
    }

    /// What is wrong and how to fix it, without the culprit's location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for ConfigError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl From<ConfigError> for StorageError {
    fn from(error: ConfigError) -> StorageError {
        StorageError::Config(error)
    }
}

impl StorageError {
    /// An `object_store` error on `key`. `redact` turns the backend's message into one safe to show
    /// (a local store removes its own directory from it).
    pub(crate) fn from_object_store(
        error: object_store::Error,
        key: &str,
        redact: &dyn Fn(String) -> String,
    ) -> StorageError {
        match error {
            object_store::Error::NotFound { .. } => StorageError::NotFound(key.to_string()),
            // object_store's messages name the request URL (never credentials: it hides a URL that carries
            // a SAS token) and the backend's answer; a local store's name its absolute path, removed here.
            other => {
                let message = redact(other.to_string());
                StorageError::Unavailable(Failure::new(message, other))
            }
        }
    }
}
