//! One request per tile at a time. Lookups proven at the same moment (a graph's fills, the relay's clients)
//! want the same tiles: the tree's right edge and the upper levels, which every proof reads. Each read them
//! from the database itself until one proof had put them in memory: in one cold graph four edge tiles were
//! asked 13 times each (issue 25). A tile the database sent is shared with every read that wants the same
//! path while it is not yet in memory, and not trusted: each read authenticates it against its own tree,
//! and a read whose tiles do not authenticate forgets them, so that the next read asks the database again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::TransportError;

/// The answer of one request for a path, once it came (`None` while it is asked, or when the read asking
/// it was dropped before the answer: the next waiter asks then).
type Slot = Arc<futures::lock::Mutex<Option<Result<Bytes, TransportError>>>>;

/// Paths shared at most. An answer stays until its tile is authenticated (then memory serves it) or its
/// read fails; only a read dropped half-way leaves one behind, so the bound is seldom reached, and then all
/// are forgotten at once (they are only requests saved, never needed).
const MAX_SHARED: usize = 1024;

/// The requests of tiles in flight, or answered and not yet authenticated, by path.
#[derive(Default)]
pub(super) struct Fetches {
    by_path: Mutex<HashMap<String, Slot>>,
}

impl Fetches {
    /// The answer for `path`: the one a request already made for it got (waiting for it when it is still
    /// on its way), else `fetch`'s. A failure is shared with the reads already waiting only: the next read
    /// asks again.
    pub(super) async fn get(
        &self,
        path: &str,
        fetch: impl Future<Output = Result<Bytes, TransportError>>,
    ) -> Result<Bytes, TransportError> {
        let slot = {
            let mut by_path = self.by_path.lock().unwrap_or_else(|e| e.into_inner());
            if by_path.len() >= MAX_SHARED && !by_path.contains_key(path) {
                by_path.clear();
            }
            by_path.entry(path.to_string()).or_default().clone()
        };
        let mut answer = slot.lock().await;
        if let Some(answer) = answer.as_ref() {
            return answer.clone();
        }
        let got = fetch.await;
        *answer = Some(got.clone());
        if got.is_err() {
            self.forget_slot(path, &slot);
        }
        got
    }

    /// The answer for `path` is not shared any more: its tile is in memory now, or it did not authenticate.
    pub(super) fn forget(&self, path: &str) {
        self.by_path
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
    }

    /// Forgets `slot` when it is still the one shared for `path`.
    fn forget_slot(&self, path: &str, slot: &Slot) {
        let mut by_path = self.by_path.lock().unwrap_or_else(|e| e.into_inner());
        if by_path
            .get(path)
            .is_some_and(|shared| Arc::ptr_eq(shared, slot))
        {
            by_path.remove(path);
        }
    }
}
