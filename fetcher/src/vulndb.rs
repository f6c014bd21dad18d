//! A client of a Go vulnerability database served over HTTP(S) (the layout of go.dev/doc/security/vuln/database:
//! `index/db.json`, `index/modules.json`, `index/vulns.json`, `ID/<id>.json`): each file read whole, bounded,
//! with the reason of a failure said in words that name the file but never the source's URL (which may
//! carry credentials). It knows nothing of where the files are kept.

use bytes::Bytes;

use crate::http::{self, Got, HttpsClient};

/// The largest index (`modules.json` of the public database is a few MB).
const INDEX_LIMIT: usize = 256 << 20;
/// The largest OSV entry.
const ENTRY_LIMIT: usize = 16 << 20;

/// A vulnerability database's base URL and the client that reads it.
#[derive(Clone)]
pub struct VulnSource {
    client: HttpsClient,
    base: String,
}

impl std::fmt::Debug for VulnSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VulnSource").finish_non_exhaustive()
    }
}

/// Why a file of the database could not be read. Its text names the file, never the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VulnSourceError {
    #[error("the source has no {0} (404)")]
    Missing(String),
    #[error("the source's {path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: usize },
    /// `detail` (the status or the connection's error, with the URL) is for the operator's log.
    #[error("the source could not be read ({path})")]
    Failed { path: String, detail: String },
}

impl VulnSourceError {
    /// What the operator's log says: the detail of a failure too.
    pub fn detail(&self) -> String {
        match self {
            VulnSourceError::Failed { detail, .. } => format!("{self}: {detail}"),
            other => other.to_string(),
        }
    }
}

impl VulnSource {
    /// The database at `base` (`http://` or `https://`, without a trailing slash needed), read by `client`.
    pub fn new(base: &str, client: HttpsClient) -> VulnSource {
        VulnSource {
            client,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// `index/db.json`, `index/modules.json` or `index/vulns.json`, whole.
    pub async fn index(&self, name: &str) -> Result<Bytes, VulnSourceError> {
        self.get(&format!("index/{name}.json"), INDEX_LIMIT).await
    }

    /// `ID/<id>.json`, whole. `id` must be checked by the caller (letters, digits, `-`).
    pub async fn entry(&self, id: &str) -> Result<Bytes, VulnSourceError> {
        self.get(&format!("ID/{id}.json"), ENTRY_LIMIT).await
    }

    async fn get(&self, path: &str, limit: usize) -> Result<Bytes, VulnSourceError> {
        let url = format!("{}/{path}", self.base);
        match http::get_following(&self.client, &url, limit, None).await {
            Got::Body(bytes) => Ok(bytes),
            Got::Missing => Err(VulnSourceError::Missing(path.to_string())),
            Got::TooLarge(_) => Err(VulnSourceError::TooLarge {
                path: path.to_string(),
                limit,
            }),
            Got::Loop => Err(VulnSourceError::Failed {
                path: path.to_string(),
                detail: "the source is this Ferry itself".into(),
            }),
            Got::Failed(detail) => Err(VulnSourceError::Failed {
                path: path.to_string(),
                detail,
            }),
        }
    }
}
