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
    /// (a local store removes its own directory from it); `advice` (a cloud store's) turns the common
    /// failures into what to do.
    pub(crate) fn from_object_store(
        error: object_store::Error,
        key: &str,
        redact: &dyn Fn(String) -> String,
        advice: Option<&Advice>,
    ) -> StorageError {
        match error {
            object_store::Error::NotFound { .. } => StorageError::NotFound(key.to_string()),
            // object_store's messages name the request URL (never credentials: it hides a URL that carries
            // a SAS token) and the backend's answer; a local store's name its absolute path, removed here.
            other => {
                let message = match advice.and_then(|advice| advice.explain(&other)) {
                    Some(explained) => explained,
                    None => redact(other.to_string()),
                };
                StorageError::Unavailable(Failure::new(message, other))
            }
        }
    }
}

/// Why a cloud request failed, among the failures an operator meets first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// An `http://` endpoint without `allow_http`: the HTTP client refuses to build the request.
    PlainHttp,
    /// The TLS handshake failed (a plain-HTTP server behind an `https://` endpoint, an untrusted certificate).
    Tls,
    /// No credentials configured, and the cloud's metadata service (tried instead) did not give any.
    NoCredentials,
    /// Nothing listens at the endpoint.
    Refused,
    /// The server refused the credentials, or they may not do this (401/403).
    Denied,
    /// The bucket (or container) is not on the server: a listing answered 404.
    MissingBucket,
    /// Anything else: the backend's own message is shown.
    Other,
}

/// Classifies an `object_store` error by its variant and the text of its sources (the HTTP client's
/// errors are not public types, so their words are all there is to go by).
pub(crate) fn cause(error: &object_store::Error) -> Cause {
    if matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return Cause::Denied;
    }
    let mut text = String::new();
    let mut refused = false;
    let mut next: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        text.push_str(&e.to_string().to_ascii_lowercase());
        text.push('\n');
        next = e.source();
    }
    // Request URLs name object keys, which hold module paths ("example.com/tls", "github.com/x/ssl"):
    // the words are looked for outside them.
    let is_url = |word: &&str| word.starts_with("http://") || word.starts_with("https://");
    let words: String = text
        .split_whitespace()
        .filter(|w| !is_url(w))
        .collect::<Vec<_>>()
        .join(" ");
    let has = |phrases: &[&str]| phrases.iter().any(|p| words.contains(p));
    // The metadata service (AWS: a token from /latest/api/token; GCP: /computeMetadata/; Azure:
    // /metadata/identity) is asked only when no credentials are configured; a failed request to it,
    // refused or not, means "no credentials".
    let metadata = text.split_whitespace().filter(is_url).any(|url| {
        url.parse::<http::Uri>().is_ok_and(|uri| {
            matches!(
                uri.host(),
                Some("169.254.169.254" | "metadata.google.internal")
            ) || [
                "/latest/api/token",
                "/latest/meta-data",
                "/computemetadata/",
                "/metadata/identity",
            ]
            .iter()
            .any(|p| uri.path().starts_with(p))
        })
    });
    // A server that answered with a status is reached: its answer's body (which may name keys) is not
    // searched for transport words.
    let answered = words.contains("status code");
    if metadata || has(&["no credentials", "credential provider"]) {
        Cause::NoCredentials
    } else if !answered && has(&["builder error", "url scheme is not allowed"]) {
        Cause::PlainHttp
    } else if !answered
        && has(&[
            "certificate",
            "tls",
            "ssl",
            "handshake",
            // rustls, reading a plain-HTTP answer as a TLS record.
            "corrupt message",
            "invalidcontenttype",
        ])
    {
        Cause::Tls
    } else if !answered && (refused || has(&["connection refused"])) {
        Cause::Refused
    } else if has(&[
        "401 unauthorized",
        "403 forbidden",
        "accessdenied",
        "signaturedoesnotmatch",
        "invalidaccesskeyid",
        "authenticationfailed",
    ]) {
        Cause::Denied
    } else if has(&[
        "nosuchbucket",
        "containernotfound",
        // A missing key is object_store's `NotFound`; a 404 left in a `Generic` error is a listing's,
        // whose bucket is not there.
        "404 not found",
    ]) {
        Cause::MissingBucket
    } else {
        Cause::Other
    }
}

/// What a cloud store's operator can do about each [`Cause`]: the words for its backend, its endpoint
/// and its bucket. Holds no credential.
#[derive(Debug, Clone)]
pub(crate) struct Advice {
    /// `S3`, `GCS`, `Azure Blob Storage`.
    pub backend: &'static str,
    /// `AWS_`: the prefix of the backend's variables.
    pub env_prefix: &'static str,
    /// The options (and variables) that give credentials, as a sentence part.
    pub credentials: &'static str,
    /// `bucket 'b'` or `container 'c'`.
    pub bucket: String,
    /// The endpoint configured, or the backend's default.
    pub endpoint: Option<String>,
}

impl Advice {
    /// The endpoint as messages name it.
    fn server(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("the endpoint {endpoint}"),
            None => format!("the {} endpoint", self.backend),
        }
    }

    /// One sentence naming the cause and the fix, or `None` for a failure it cannot explain.
    pub(crate) fn explain(&self, error: &object_store::Error) -> Option<String> {
        let server = self.server();
        let prefix = self.env_prefix;
        Some(match cause(error) {
            Cause::PlainHttp => self.plain_http(),
            Cause::Tls => format!(
                "the TLS handshake with {server} failed; if the server speaks plain HTTP, write its \
                 endpoint with http:// and set allow_http = true, else give it a certificate this machine trusts"
            ),
            Cause::NoCredentials => format!(
                "no {} credentials: none are configured and the cloud metadata service did not answer; \
                 set {} in [storage_options] or the environment",
                self.backend, self.credentials
            ),
            Cause::Refused => format!(
                "nothing answers at {server} (connection refused); start the storage server, or fix \
                 the endpoint in [storage_options] (or {prefix}ENDPOINT)"
            ),
            Cause::Denied => format!(
                "{} denied access to the {}; check {} and that they may read and write it",
                self.backend, self.bucket, self.credentials
            ),
            Cause::MissingBucket => self.missing_bucket(),
            Cause::Other => return None,
        })
    }

    /// The message for an `http://` endpoint without `allow_http`.
    pub(crate) fn plain_http(&self) -> String {
        format!(
            "{} is plain HTTP; set allow_http = true in [storage_options] (or {}ALLOW_HTTP=true), \
             or use https://",
            self.server(),
            self.env_prefix
        )
    }

    /// The message for a bucket (container) the server does not have.
    pub(crate) fn missing_bucket(&self) -> String {
        format!(
            "the {} does not exist at {}; create it, or fix its name in the storage URL",
            self.bucket,
            self.server()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Cause, cause};

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: text.into(),
        }
    }

    #[test]
    fn a_module_path_in_a_url_or_a_servers_answer_is_not_taken_for_a_cause() {
        // A 500 on a key naming "tls", "ssl" and "certificate": a server fault, not a TLS failure.
        let answered = generic(
            "Error performing GET http://127.0.0.1:9000/b/github.com/x/tls/@v/list in 2ms - Server \
             returned non-2xx status code: 500 Internal Server Error: <Key>github.com/x/ssl/certificate</Key>",
        );
        assert_eq!(cause(&answered), Cause::Other);
        let refused = generic(
            "Error performing GET http://127.0.0.1:9/b/example.com/tls/@v/list in 2ms - HTTP error: \
             error sending request: client error (Connect): Connection refused (os error 111)",
        );
        assert_eq!(cause(&refused), Cause::Refused);
        let metadata = generic(
            "Error performing PUT http://169.254.169.254/latest/api/token in 5s - HTTP error: error \
             sending request",
        );
        assert_eq!(cause(&metadata), Cause::NoCredentials);
    }
}
