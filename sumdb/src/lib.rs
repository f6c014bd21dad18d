//! Verification against a Go checksum database (`GOSUMDB`), ported from `golang.org/x/mod/sumdb`: a
//! [`Client`] that looks up a module version's go.sum lines and proves them (signed tree note, inclusion
//! through authenticated tiles, consistency with the last tree it saw), the `h1:` hashes of
//! [`hash_zip`]/[`hash_go_mod`], and [`sumdb_applies`] for `GONOSUMDB`/`GOPRIVATE`.
//!
//! The crate does no I/O of its own but reading a zip: the database is reached through a [`Transport`] the
//! caller provides, so the proxy's HTTP client, timeouts and limits apply.

mod client;
mod dirhash;
mod kept;
mod note;
mod offline;
mod pattern;
mod tlog;

pub use client::Client;
pub use dirhash::{DirhashError, hash_go_mod, hash_zip};
pub use kept::Kept;
pub use note::{KeyError, VerifierKey};
pub use offline::{LookupParts, SUM_GOLANG_ORG_KEY, signed_tree_size, split_lookup};
pub use pattern::{match_prefix_patterns, sumdb_applies};

/// Checks that an answer of the database's `latest` (`lookup == false`) or of a lookup (`lookup == true`,
/// the record then the note) carries a tree note signed by `key`: what a relay checks before passing an
/// answer on, so that one from a route that is not the database (a tampering or broken upstream) is refused
/// there rather than relayed as the database's. Tiles carry no note: the client proves them against the
/// notes it accepted. The record itself is not proven here (that takes tiles): the client does it.
pub fn check_signed_answer(key: &VerifierKey, answer: &[u8], lookup: bool) -> Result<(), String> {
    let note = if lookup {
        tlog::parse_record(answer)?.2
    } else {
        answer
    };
    let text = key.open(note).map_err(|e| match e {
        note::NoteError::Malformed => "malformed signed tree note".to_string(),
        note::NoteError::NotSigned => format!("tree note not signed by {}", key.as_str()),
        note::NoteError::BadSignature => {
            format!(
                "invalid signature on the tree note for key {}",
                key.as_str()
            )
        }
    })?;
    tlog::parse_tree(text).map(|_| ())
}

use bytes::Bytes;

/// How the client reaches the database. `path` is relative to the database URL (no leading `/`):
/// `lookup/<escaped module>@<escaped version>`, `tile/8/<L>/<NNN>[.p/<W>]`; the client never asks for
/// `latest` (the tree comes with each lookup, as with the go command) nor for data tiles.
///
/// An implementation should bound what it reads: a tile is at most 8 KiB, a lookup answer a few KiB.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    async fn get(&self, path: &str) -> Result<Bytes, TransportError>;
}

#[async_trait::async_trait]
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    async fn get(&self, path: &str) -> Result<Bytes, TransportError> {
        (**self).get(path).await
    }
}

#[async_trait::async_trait]
impl<T: Transport + ?Sized> Transport for Box<T> {
    async fn get(&self, path: &str) -> Result<Bytes, TransportError> {
        (**self).get(path).await
    }
}

/// A failed [`Transport::get`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The database has no such record or tile (HTTP 404 or 410).
    #[error("not found")]
    NotFound,
    /// Anything else: connection refused, timeout, a 5xx; the message says which.
    #[error("{0}")]
    Failed(String),
}

/// Why a lookup or a verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SumdbError {
    /// The module path or version is not one the go command would look up.
    #[error(transparent)]
    InvalidInput(#[from] ferry_module::InvalidInput),
    /// The database has no record of this module version (for instance, a version that does not exist).
    #[error("{module}@{version}: not found in checksum database {database}")]
    NotFound {
        module: String,
        version: String,
        database: String,
    },
    /// The database could not be reached, or failed to answer (including a tile it should have had).
    #[error("checksum database {database}: {path}: {message}")]
    Transport {
        database: String,
        path: String,
        message: String,
    },
    /// The database answered something that is not in its format.
    #[error("checksum database {database}: malformed answer: {message}")]
    Protocol { database: String, message: String },
    /// Nothing verified so far covers it: a tile beyond the latest tree this client verified (a relay then
    /// passes the database's answer on unproven), or one of another height than 8.
    #[error("checksum database {database}: cannot prove {what}: {why}")]
    Unproven {
        database: String,
        what: String,
        why: String,
    },
    /// Proof failed: a note not signed by the key, a record or tile that does not hash to the signed tree,
    /// a tree inconsistent with one seen before (a fork), or a hash that differs from the database's.
    #[error("{0}")]
    Security(String),
}

#[cfg(test)]
mod never_panics {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn key_strings_parse_or_are_refused(
            text in "\\PC{0,80}|[a-z.]{1,12}\\+[0-9a-fA-F]{0,9}\\+[A-Za-z0-9+/=]{0,50}",
        ) {
            let _ = crate::VerifierKey::parse(&text);
        }

        #[test]
        fn patterns_match_or_not(
            globs in "[a-c*?\\[\\]^\\\\/,-]{0,12}",
            target in "[a-c/\\]\\-]{0,10}",
        ) {
            let _ = crate::match_prefix_patterns(&globs, &target);
        }

        #[test]
        fn database_answers_parse_or_are_refused(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            text in "[0-9]{0,3}\n[ -~\n]{0,60}\n\n[ -~\n]{0,80}",
        ) {
            let _ = crate::tlog::parse_record(&data);
            let _ = crate::tlog::parse_record(text.as_bytes());
            let _ = crate::tlog::parse_tree(&String::from_utf8_lossy(&data));
            let key = crate::VerifierKey::parse(
                "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
            )
            .unwrap();
            let _ = key.open(&data);
            let _ = key.open(format!("{text}\n\u{2014} sum.golang.org {text}\n").as_bytes());
        }
    }
}
