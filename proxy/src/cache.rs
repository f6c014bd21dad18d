//! In-memory caches in front of the upstream and the store: the upstream's `list` and query answers
//! (`@latest`, `.info` of a branch) for a TTL, with single-flight, stale-while-revalidate and short negative
//! caching, and the immutable `.info`/`.mod` files. Every cache is bounded (entries and bytes) and evicts
//! the least recently used entries first.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_fetcher::{FetchError, LatestVersion};
use ferry_module::{ModulePath, Version};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::filler::{FillError, Filler};

/// How long the caches keep what they hold, and how much they may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long an upstream `list` or query answer is served without asking again (0: not cached).
    pub ttl: Duration,
    /// How long past its TTL an answer is still served at once while one background refresh runs.
    pub stale: Duration,
    /// How long an upstream "not found" is remembered (0: not remembered).
    pub not_found_ttl: Duration,
    /// The most upstream answers kept, for lists and for queries each.
    pub max_entries: usize,
    /// The most bytes of upstream answers kept, for lists and for queries each.
    pub max_bytes: usize,
    /// The most bytes of `.info` and `.mod` files kept in memory (0: none).
    pub file_bytes: usize,
    /// A file store's hot zips kept in memory (the store keeps them: see `ferry_storage::HotZipSettings`).
    pub zips: ferry_storage::HotZipSettings,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            // What `Cache-Control: max-age=60` on these answers already promises clients.
            ttl: Duration::from_secs(60),
            stale: Duration::from_secs(300),
            not_found_ttl: Duration::from_secs(10),
            max_entries: 10_000,
            max_bytes: 16 << 20,
            file_bytes: 64 << 20,
            zips: ferry_storage::HotZipSettings::default(),
        }
    }
}

/// Every cache of one proxy.
pub struct Caches {
    lists: QueryCache<ModulePath, Arc<Vec<Version>>>,
    queries: QueryCache<(ModulePath, String), Arc<LatestVersion>>,
    files: Mutex<Bounded<FileKey, Bytes>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("lists", &self.lists)
            .finish_non_exhaustive()
    }
}

/// A stored `.info` (`false`) or `.mod` (`true`) file.
type FileKey = (ModulePath, Version, bool);

impl Caches {
    pub fn new(settings: &CacheSettings) -> Caches {
        Caches {
            lists: QueryCache::new(settings, |module, versions| {
                module.as_str().len()
                    + versions
                        .iter()
                        .map(|v| v.as_str().len() + 32)
                        .sum::<usize>()
            }),
            queries: QueryCache::new(settings, |(module, query), latest| {
                module.as_str().len()
                    + query.len()
                    + latest.version.len()
                    + latest.time.len()
                    + latest.origin.as_ref().map_or(0, |o| o.to_string().len())
            }),
            // A file is at least a few dozen bytes: the count bound only keeps the map's own size in check.
            files: Mutex::new(Bounded::new(settings.file_bytes / 32, settings.file_bytes)),
        }
    }

    /// The versions the upstream lists for `module`, cached.
    pub async fn list(
        &self,
        upstream: &Arc<Filler>,
        module: &ModulePath,
    ) -> Result<Arc<Vec<Version>>, FillError> {
        let (upstream, asked) = (upstream.clone(), module.clone());
        self.lists
            .get("list", module.clone(), move || {
                async move { upstream.list(&asked).await.map(Arc::new) }.boxed()
            })
            .await
    }

    /// What `module@query` resolves to upstream, cached.
    pub async fn resolve(
        &self,
        upstream: &Arc<Filler>,
        module: &ModulePath,
        query: &str,
    ) -> Result<Arc<LatestVersion>, FillError> {
        let (upstream, asked, query_asked) = (upstream.clone(), module.clone(), query.to_string());
        // `latest` (every `@latest`) apart from other queries (a branch, a commit), whose hit rates differ.
        let cache = if query == "latest" { "latest" } else { "query" };
        self.queries
            .get(cache, (module.clone(), query.to_string()), move || {
                async move { upstream.resolve(&asked, &query_asked).await.map(Arc::new) }.boxed()
            })
            .await
    }

    /// A `.info` (`is_mod` false) or `.mod` file kept in memory.
    pub fn file(&self, module: &ModulePath, version: &Version, is_mod: bool) -> Option<Bytes> {
        let key = (module.clone(), version.clone(), is_mod);
        let found = self.files.lock().unwrap().get(&key).cloned();
        crate::metrics::metrics().cache_lookup("file", found.is_some());
        found
    }

    /// Keeps a `.info` or `.mod` file read from the store: they never change once stored.
    pub fn keep_file(&self, module: &ModulePath, version: &Version, is_mod: bool, bytes: &Bytes) {
        let key = (module.clone(), version.clone(), is_mod);
        let size = bytes.len() + module.as_str().len() + version.as_str().len() + 64;
        self.files.lock().unwrap().insert(key, bytes.clone(), size);
    }
}

type SharedFetch<V> = Shared<BoxFuture<'static, Result<V, FillError>>>;

/// An upstream answer and when it came.
#[derive(Clone)]
struct Answered<V> {
    result: Result<V, FillError>,
    at: Instant,
}

#[derive(Clone)]
struct Entry<V> {
    answered: Option<Answered<V>>,
    /// The one upstream call running for this key, which every miss awaits.
    pending: Option<SharedFetch<V>>,
}

/// What a lookup found: the answer, the upstream call to wait for, or nothing kept.
enum Step<V, F> {
    Answer(Result<V, FillError>),
    Wait(SharedFetch<V>),
    Uncached(F),
}

/// Upstream answers per key, each asked once at a time and kept for the TTL.
struct QueryCache<K, V> {
    inner: Arc<QueryInner<K, V>>,
}

struct QueryInner<K, V> {
    ttl: Duration,
    stale: Duration,
    not_found_ttl: Duration,
    weigh: fn(&K, &V) -> usize,
    entries: Mutex<Bounded<K, Entry<V>>>,
}

impl<K, V> std::fmt::Debug for QueryCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache")
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

/// Whether an upstream failure says the thing does not exist (worth remembering briefly), rather than a
/// fault that the next request should try again.
fn is_not_found(error: &FillError) -> bool {
    matches!(error, FillError::Fetch(fetch) if matches!(**fetch, FetchError::NotFound { .. }))
}

impl<K, V> QueryCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(settings: &CacheSettings, weigh: fn(&K, &V) -> usize) -> Self {
        QueryCache {
            inner: Arc::new(QueryInner {
                ttl: settings.ttl,
                stale: settings.stale,
                not_found_ttl: settings.not_found_ttl,
                weigh,
                entries: Mutex::new(Bounded::new(settings.max_entries, settings.max_bytes)),
            }),
        }
    }

    /// The answer for `key`: fresh from the cache; stale from the cache while one refresh runs in the
    /// background; or, on a miss, from the one upstream call `fetch` makes for every caller at once.
    /// Counted as a hit or a miss of `cache` (a stale answer served is a hit).
    async fn get<F>(&self, cache: &'static str, key: K, fetch: F) -> Result<V, FillError>
    where
        F: FnOnce() -> BoxFuture<'static, Result<V, FillError>>,
    {
        let step = self.look_up(key, fetch);
        let hit = matches!(step, Step::Answer(_));
        crate::metrics::metrics().cache_lookup(cache, hit);
        match step {
            Step::Answer(answer) => answer,
            Step::Wait(pending) => pending.await,
            Step::Uncached(fetch) => fetch().await,
        }
    }

    /// The locked half of [`QueryCache::get`], which never awaits.
    fn look_up<F>(&self, key: K, fetch: F) -> Step<V, F>
    where
        F: FnOnce() -> BoxFuture<'static, Result<V, FillError>>,
    {
        let inner = &self.inner;
        if inner.ttl.is_zero() {
            return Step::Uncached(fetch);
        }
        let mut entries = inner.entries.lock().unwrap();
        if entries.get(&key).is_none() {
            let entry = Entry {
                answered: None,
                pending: None,
            };
            entries.insert(key.clone(), entry, 0);
        }
        // Not kept (a bound of zero entries): nothing is shared.
        let Some(entry) = entries.get(&key) else {
            return Step::Uncached(fetch);
        };
        if let Some(answered) = &entry.answered {
            let age = answered.at.elapsed();
            match &answered.result {
                Ok(value) if age < inner.ttl => return Step::Answer(Ok(value.clone())),
                Ok(value) if age < inner.ttl + inner.stale => {
                    let value = value.clone();
                    if entry.pending.is_none() {
                        entry.pending = Some(self.start(key, fetch));
                    }
                    return Step::Answer(Ok(value));
                }
                Err(e) if is_not_found(e) && age < inner.not_found_ttl => {
                    return Step::Answer(Err(e.clone()));
                }
                _ => {}
            }
        }
        match &entry.pending {
            Some(pending) => Step::Wait(pending.clone()),
            None => {
                let pending = self.start(key, fetch);
                entry.pending = Some(pending.clone());
                Step::Wait(pending)
            }
        }
    }

    /// Starts the upstream call for `key` in a task of its own, so that it finishes (and its answer is
    /// kept) even when every caller has gone, and so that a background refresh has someone to run it.
    fn start(
        &self,
        key: K,
        fetch: impl FnOnce() -> BoxFuture<'static, Result<V, FillError>>,
    ) -> SharedFetch<V> {
        let inner = self.inner.clone();
        let call = fetch();
        let shared = async move {
            let result = call.await;
            inner.keep(key, &result);
            result
        }
        .boxed()
        .shared();
        tokio::spawn(shared.clone());
        shared
    }
}

impl<K: Hash + Eq + Clone, V: Clone> QueryInner<K, V> {
    /// Records the upstream's answer for `key`. A fault is not kept: the answer before it (if any) stays,
    /// served while it is within its stale window, and the next request asks again.
    fn keep(&self, key: K, result: &Result<V, FillError>) {
        let mut entries = self.entries.lock().unwrap();
        let previous = entries.remove(&key).and_then(|entry| entry.answered);
        let answered = match result {
            // Only a "not found" is remembered, and only for a TTL above zero.
            Err(e) if !is_not_found(e) || self.not_found_ttl.is_zero() => previous,
            result => Some(Answered {
                result: result.clone(),
                at: Instant::now(),
            }),
        };
        if let Some(answered) = answered {
            let size = match &answered.result {
                Ok(value) => (self.weigh)(&key, value),
                Err(e) => e.to_string().len(),
            };
            let entry = Entry {
                answered: Some(answered),
                pending: None,
            };
            entries.insert(key, entry, size + 64);
        }
    }
}

/// A map bounded by its number of entries and their total size; when either is passed, the least recently
/// used entries go until both are back under 7/8 of their bound (evicting in batches keeps the sort off the
/// path of most inserts).
pub(crate) struct Bounded<K, V> {
    map: HashMap<K, Slot<V>>,
    bytes: usize,
    clock: u64,
    max_entries: usize,
    max_bytes: usize,
}

struct Slot<V> {
    value: V,
    size: usize,
    used: u64,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            bytes: 0,
            clock: 0,
            max_entries,
            max_bytes,
        }
    }

    pub(crate) fn get(&mut self, key: &K) -> Option<&mut V> {
        self.clock += 1;
        let slot = self.map.get_mut(key)?;
        slot.used = self.clock;
        Some(&mut slot.value)
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.map.remove(key)?;
        self.bytes -= slot.size;
        Some(slot.value)
    }

    pub(crate) fn insert(&mut self, key: K, value: V, size: usize) {
        if self.max_entries == 0 || size > self.max_bytes {
            self.remove(&key);
            return;
        }
        self.clock += 1;
        let slot = Slot {
            value,
            size,
            used: self.clock,
        };
        self.bytes += size;
        if let Some(old) = self.map.insert(key, slot) {
            self.bytes -= old.size;
        }
        if self.map.len() > self.max_entries || self.bytes > self.max_bytes {
            self.evict();
        }
    }

    fn evict(&mut self) {
        let mut by_use: Vec<(u64, K)> = self
            .map
            .iter()
            .map(|(key, slot)| (slot.used, key.clone()))
            .collect();
        by_use.sort_unstable_by_key(|(used, _)| *used);
        let (entries, bytes) = (self.max_entries / 8 * 7, self.max_bytes / 8 * 7);
        for (_, key) in by_use {
            if self.map.len() <= entries && self.bytes <= bytes {
                break;
            }
            self.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounded_map_keeps_its_bounds_and_evicts_the_least_recently_used_first() {
        let mut map = Bounded::new(8, 1000);
        for i in 0..8 {
            map.insert(i, i, 10);
        }
        // 0 is used again, so 1 is now the least recently used.
        assert!(map.get(&0).is_some());
        map.insert(8, 8, 10);
        assert!(map.map.len() <= 8);
        assert!(map.get(&0).is_some(), "the recently used entry stays");
        assert!(map.get(&1).is_none(), "the least recently used entry goes");
        assert!(map.get(&8).is_some(), "the new entry stays");

        let mut map = Bounded::new(100, 100);
        for i in 0..50 {
            map.insert(i, i, 10);
            assert!(map.bytes <= 100, "{} bytes after {i}", map.bytes);
        }
        assert_eq!(map.bytes, map.map.values().map(|s| s.size).sum::<usize>());
        // An entry larger than the whole bound is not kept.
        map.insert(1000, 0, 101);
        assert!(map.get(&1000).is_none());
    }
}
