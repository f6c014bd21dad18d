//! Answering `/vuln/<file>` from the published copy: the indexes from memory, the entries from the store,
//! `.json.gz` as the stored gzip bytes; an `ETag` from the file's hash, `Last-Modified` from the copy's
//! `modified`, a short `Cache-Control` (the copy changes when the database does; see `answer`).

use bytes::Bytes;
use http::HeaderValue;

use super::path::{VulnFile, VulnPath};
use super::{VulnDb, VulnError};
use crate::answer::Answer;

impl VulnDb {
    /// The answer to a request for `path`; `if_none_match` is the request's header.
    pub(crate) async fn answer(
        &self,
        path: &VulnPath,
        if_none_match: Option<&HeaderValue>,
    ) -> Answer {
        let Some(store) = &self.store else {
            return Answer::not_found(
                "the vulnerability database is not served on this proxy (vuln.enabled = false)",
            );
        };
        let Some(loaded) = self.loaded.load_full() else {
            return Answer::busy(self.not_yet(), 60);
        };
        let (blob, body) = match &path.file {
            VulnFile::Index(index) => {
                let served = &loaded.indexes[index];
                let body = if path.gz { &served.gz } else { &served.json };
                (served.blob.clone(), Some(body.clone()))
            }
            VulnFile::Entry(id) => match loaded.manifest.entries.get(id) {
                None => {
                    return Answer::not_found(format!(
                        "{id} is not in the vulnerability database (modified {})",
                        loaded.manifest.modified
                    ));
                }
                Some(entry) => (entry.blob.clone(), None),
            },
        };
        let etag = format!(
            "\"{}{}\"",
            &blob[..blob.len().min(32)],
            if path.gz { "-gz" } else { "" }
        );
        if crate::answer::matches_etag(if_none_match, &etag) {
            return Answer::vuln_not_modified(etag, loaded.modified);
        }
        let body: Bytes = match body {
            Some(body) => body,
            None => match store.blob(&blob, path.gz).await {
                Ok(Some(body)) => body,
                // Removed under a replica that has not loaded the newer copy yet: it will at its next poll.
                Ok(None) => {
                    return Answer::busy(
                        "the vulnerability database is being updated; try again shortly",
                        5,
                    );
                }
                Err(e) => return Answer::from(e),
            },
        };
        let content_type = if path.gz {
            "application/gzip"
        } else {
            crate::answer::JSON
        };
        Answer::vuln(content_type, body, etag, loaded.modified)
    }

    /// The 503's reason before the first copy: the first sync's failure, or that it has not ended.
    fn not_yet(&self) -> String {
        let status = self.status.lock().expect("not poisoned");
        match (&status.failed, &self.source) {
            (Some((_, reason)), _) => {
                format!("the vulnerability database has not been synced yet: {reason}")
            }
            (None, Some(_)) => {
                "the vulnerability database has not been synced yet: the first sync is running"
                    .into()
            }
            (None, None) => format!(
                "the vulnerability database has not been synced yet: {}",
                VulnError::NoSource
            ),
        }
    }
}
