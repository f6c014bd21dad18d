//! The ledger: what the store holds, held, and refuses, kept in the store itself so that every replica of
//! one bucket answers the same catalog, index and blocks.
//!
//! Each change (a version stored, served, deleted, blocked, unblocked) is an [`Event`]. A replica applies
//! its own events at once and writes them, batched, as one record per flush under `.ferry/ledger/events/`;
//! every [`LedgerSettings::sync_interval`] it lists the records written since its last look (one LIST
//! request) and folds in the others'. The fold ([`State`]) is a last-writer-wins register per version, so
//! the order records are read in does not matter. A delete or block is written at once, so every replica
//! honours it within one interval (2 s by default). Once an hour one replica (the one whose create-only
//! claim wins) writes a snapshot of the fold and removes the event records it covers. A store without a
//! ledger (a store filled before this existed, or a copied GOMODCACHE) is indexed from a walk of its files
//! at start-up, and `ferry admin reindex` reconciles the ledger with the store at any time.
//!
//! Serving a file records its access in memory only ([`Ledger::touch`]); the accesses are flushed as one
//! event per version touched every [`LedgerSettings::access_interval`], so bucket writes grow with the
//! versions touched per interval, never with requests.

mod log;
mod recorded;
mod reindex;
mod state;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_module::{ModulePath, Version};
use ferry_storage::{Records, StorageError};

pub use log::{Change, Event};
pub use recorded::Recorded;
pub use reindex::Reindexed;
pub use state::{Entry, Nanos, State, Status, Totals, covers};

/// How the ledger keeps in step with the other replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerSettings {
    /// How often a replica writes its pending events and reads the others' (each look is one LIST request
    /// of the store): a delete or block is honoured everywhere within this.
    pub sync_interval: Duration,
    /// How often the accesses of served versions are written (one event per version touched).
    pub access_interval: Duration,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            sync_interval: Duration::from_secs(2),
            access_interval: Duration::from_secs(60),
        }
    }
}

/// The ledger of one store (see the module's documentation).
pub struct Ledger {
    records: Records,
    settings: LedgerSettings,
    /// This process's name in its record keys.
    writer: String,
    seq: AtomicU64,
    state: RwLock<State>,
    /// This replica's events not yet written.
    pending: Mutex<Vec<Event>>,
    /// Versions served since the last access flush, with the last time: by module, then version, so that a
    /// version served again costs a lookup by `&str` and no allocation.
    touched: Mutex<HashMap<String, HashMap<String, Nanos>>>,
    /// The versions deleted or blocked, by module then version: what a request must check, kept apart
    /// from the whole state so that the common case (nothing removed) is one atomic load, and otherwise a
    /// lookup in a small map without allocation.
    removed: RwLock<HashMap<String, HashMap<String, Status>>>,
    /// Whether `removed` holds anything.
    any_removed: AtomicBool,
    cursor: tokio::sync::Mutex<Cursor>,
    /// Whether the state reflects the store (loaded, or rebuilt from a walk).
    ready: AtomicBool,
    /// Each replica (writer) whose event records a poll read, with the newest record's time: the
    /// replicas at work on this store, for the status page.
    writers: Mutex<HashMap<String, Nanos>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

/// Where this replica is in the log.
#[derive(Debug)]
struct Cursor {
    /// The newest event record key time read.
    newest: Nanos,
    /// Keys read within [`log::LATE`] of `newest` (older ones cannot be listed again).
    seen: BTreeSet<String>,
    /// When the last poll succeeded; one that lags past what compaction keeps reloads the snapshot.
    polled: Instant,
    /// When accesses were last flushed.
    accesses_flushed: Instant,
}

/// The current time, in nanoseconds since the Unix epoch.
pub fn now() -> Nanos {
    nanos(SystemTime::now())
}

/// A time in nanoseconds since the Unix epoch (0 before it).
pub fn nanos(time: SystemTime) -> Nanos {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Ledger {
    /// The ledger of the store whose records these are; empty until [`Ledger::load`].
    pub fn new(records: Records, settings: LedgerSettings) -> Ledger {
        let mut id = [0u8; 6];
        let _ = getrandom::fill(&mut id);
        let writer: String = id.iter().map(|b| format!("{b:02x}")).collect();
        Ledger {
            records,
            settings,
            writer,
            seq: AtomicU64::new(0),
            state: RwLock::new(State::default()),
            pending: Mutex::new(Vec::new()),
            touched: Mutex::new(HashMap::new()),
            removed: RwLock::new(HashMap::new()),
            any_removed: AtomicBool::new(false),
            cursor: tokio::sync::Mutex::new(Cursor {
                newest: 0,
                seen: BTreeSet::new(),
                polled: Instant::now(),
                accesses_flushed: Instant::now(),
            }),
            ready: AtomicBool::new(false),
            writers: Mutex::default(),
        }
    }

    /// This replica's name in the log.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// The other replicas whose event records this one read, with when each last wrote one, newest first.
    pub fn other_writers(&self) -> Vec<(String, Nanos)> {
        let mut writers: Vec<(String, Nanos)> = self
            .writers
            .lock()
            .unwrap()
            .iter()
            .filter(|(writer, _)| **writer != self.writer)
            .map(|(writer, at)| (writer.clone(), *at))
            .collect();
        writers.sort_by_key(|w| std::cmp::Reverse(w.1));
        writers
    }

    pub fn settings(&self) -> LedgerSettings {
        self.settings
    }

    /// The store's records the ledger keeps its log in (also where a collection keeps its plan and lock).
    pub fn records_handle(&self) -> &Records {
        &self.records
    }

    /// Whether the catalog and index reflect the store (false while a first walk builds them).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Reads the newest snapshot and the events after it. `Ok(false)` when the store has no ledger at
    /// all (then [`Ledger::reindex`] builds one from a walk of the store).
    pub async fn load(&self) -> Result<bool, StorageError> {
        let snapshots = self.records.list(log::SNAPSHOTS, None).await?;
        let mut from = 0;
        if let Some(newest) = snapshots.last() {
            if let Some(body) = self.records.get(&newest.key).await? {
                let (events, skipped) = log::decode(&body);
                warn_skipped(&newest.key, skipped);
                self.apply_all(&events);
            }
            from = log::key_time(&newest.key)
                .unwrap_or(0)
                .saturating_sub(nanos_of(log::LATE));
        }
        let mut cursor = self.cursor.lock().await;
        cursor.newest = from;
        let read = self.poll_with(&mut cursor).await?;
        let found = !snapshots.is_empty() || read > 0;
        if found {
            self.ready.store(true, Ordering::Release);
        }
        Ok(found)
    }

    /// Applies events to the state and updates the store gauges.
    fn apply_all(&self, events: &[Event]) {
        let mut changed = Vec::new();
        let totals = {
            let mut state = self.state.write().unwrap();
            for event in events {
                if state.apply(event)
                    && let Some((module, version)) = event.version()
                    && let Some(entry) = state.entry(&module, &version)
                {
                    changed.push((module, version, entry.status.clone()));
                }
            }
            state.totals()
        };
        if !changed.is_empty() {
            let mut removed = self.removed.write().unwrap();
            for (module, version, status) in changed {
                let versions = removed.entry(module.as_str().to_string()).or_default();
                match status {
                    Status::Present => {
                        versions.remove(version.as_str());
                        if versions.is_empty() {
                            removed.remove(module.as_str());
                        }
                    }
                    removal => {
                        versions.insert(version.as_str().to_string(), removal);
                    }
                }
            }
            self.any_removed
                .store(!removed.is_empty(), Ordering::Release);
        }
        crate::metrics::metrics().store_totals(totals.modules, totals.versions, totals.bytes);
    }

    /// Records this replica's own change: applied at once, written at the next sync.
    fn record(&self, event: Event) {
        self.apply_all(std::slice::from_ref(&event));
        self.pending.lock().unwrap().push(event);
    }

    /// A version was stored (or its zip added), `bytes` in all.
    pub fn stored(&self, module: &ModulePath, version: &Version, bytes: u64) {
        self.record(Event::new(now(), module, version, Change::Stored { bytes }));
    }

    /// When a version was first seen (asked for, listed or stored), if it ever was.
    pub fn first_seen(&self, module: &ModulePath, version: &Version) -> Option<Nanos> {
        let state = self.state.read().unwrap();
        state
            .entry(module, version)
            .map(|e| e.first_seen)
            .filter(|&at| at > 0)
    }

    /// Records that a version was seen at `now`, unless it was seen before; the time it was first seen.
    pub fn seen(&self, module: &ModulePath, version: &Version, now: Nanos) -> Nanos {
        if let Some(at) = self.first_seen(module, version) {
            return at;
        }
        self.record(Event::new(now, module, version, Change::Seen));
        now
    }

    /// A version's files were deleted.
    pub fn deleted(&self, module: &ModulePath, version: &Version) {
        self.record(Event::new(now(), module, version, Change::Deleted));
    }

    /// A version was served: kept in memory, written with the next access flush.
    pub fn touch(&self, module: &ModulePath, version: &Version) {
        let at = now();
        let mut touched = self.touched.lock().unwrap();
        if let Some(last) = touched
            .get_mut(module.as_str())
            .and_then(|versions| versions.get_mut(version.as_str()))
        {
            *last = at;
            return;
        }
        touched
            .entry(module.as_str().to_string())
            .or_default()
            .insert(version.as_str().to_string(), at);
    }

    /// Whether a version is deleted or blocked (`Some` with which): the check every request for a
    /// version's file makes, cheap when nothing is (see `removed`).
    pub fn removal(&self, module: &ModulePath, version: &Version) -> Option<Status> {
        if !self.any_removed.load(Ordering::Acquire) {
            return None;
        }
        let removed = self.removed.read().unwrap();
        removed.get(module.as_str())?.get(version.as_str()).cloned()
    }

    /// Blocks a version with `reason`: a record of its own under `blocks/` (kept whatever happens to the
    /// log), then the event, written at once.
    pub async fn block(
        &self,
        module: &ModulePath,
        version: &Version,
        reason: &str,
    ) -> Result<(), StorageError> {
        let at = now();
        let record = serde_json::json!({ "reason": reason, "at": at }).to_string();
        self.records
            .put(&block_key(module, version), record.into())
            .await?;
        let change = Change::Blocked {
            reason: reason.to_string(),
        };
        self.record(Event::new(at, module, version, change));
        self.sync().await
    }

    /// Lifts a block: the version is then as deleted (filled again on the next request).
    pub async fn unblock(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<(), StorageError> {
        self.records.delete(&block_key(module, version)).await?;
        self.record(Event::new(now(), module, version, Change::Unblocked));
        self.sync().await
    }

    /// A version's status, when the ledger knows it.
    pub fn status(&self, module: &ModulePath, version: &Version) -> Option<Status> {
        let state = self.state.read().unwrap();
        state.entry(module, version).map(|e| e.status.clone())
    }

    /// The reason a version is blocked, if it is.
    pub fn blocked(&self, module: &ModulePath, version: &Version) -> Option<Arc<str>> {
        match self.removal(module, version)? {
            Status::Blocked(reason) => Some(reason),
            _ => None,
        }
    }

    /// The versions served since the last access flush (not yet in the state), with when: what the
    /// status page adds to [`State::last_used`]. Copies the small map under the lock `touch` takes.
    pub fn touched_lately(&self) -> Vec<(Nanos, String, String)> {
        let touched = self.touched.lock().unwrap();
        touched
            .iter()
            .flat_map(|(module, versions)| {
                versions
                    .iter()
                    .map(move |(version, at)| (*at, module.clone(), version.clone()))
            })
            .collect()
    }

    /// Reads the state under the lock (for queries: catalog, index, sizes, collection plans).
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().unwrap())
    }

    /// Writes pending events (and the accesses, when their interval has passed) as one record, then reads
    /// the records the other replicas wrote since the last look.
    pub async fn sync(&self) -> Result<(), StorageError> {
        let mut cursor = self.cursor.lock().await;
        let mut events = std::mem::take(&mut *self.pending.lock().unwrap());
        if cursor.accesses_flushed.elapsed() >= self.settings.access_interval {
            cursor.accesses_flushed = Instant::now();
            let touched = std::mem::take(&mut *self.touched.lock().unwrap());
            let accesses: Vec<Event> = touched
                .into_iter()
                .flat_map(|(module, versions)| {
                    versions.into_iter().map(move |(version, at)| Event {
                        at,
                        module: module.clone(),
                        version,
                        change: Change::Accessed,
                    })
                })
                .collect();
            self.apply_all(&accesses);
            events.extend(accesses);
        }
        if !events.is_empty() {
            let at = now();
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let key = log::event_key(at, &self.writer, seq);
            if let Err(e) = self.records.put(&key, log::encode(&events)).await {
                // Kept for the next sync, in front of what comes meanwhile.
                let mut pending = self.pending.lock().unwrap();
                events.append(&mut pending);
                *pending = events;
                return Err(e);
            }
            cursor.seen.insert(key);
        }
        if cursor.polled.elapsed() > log::KEEP_AFTER_SNAPSHOT - log::LATE {
            // Lagged past what compaction keeps: the snapshot has what was removed.
            drop(cursor);
            self.load().await?;
            return Ok(());
        }
        self.poll_with(&mut cursor).await.map(|_| ())
    }

    /// Reads event records after the cursor; returns how many were read.
    async fn poll_with(&self, cursor: &mut Cursor) -> Result<usize, StorageError> {
        let from = log::events_from(cursor.newest.saturating_sub(nanos_of(log::LATE)));
        let listed = self.records.list(log::EVENTS, Some(&from)).await?;
        let mut read = 0;
        for record in listed {
            if cursor.seen.contains(&record.key) {
                continue;
            }
            // A record removed by a compaction since the listing: the snapshot has it.
            if let Some(body) = self.records.get(&record.key).await? {
                let (events, skipped) = log::decode(&body);
                warn_skipped(&record.key, skipped);
                self.apply_all(&events);
                read += 1;
            }
            if let Some(at) = log::key_time(&record.key) {
                cursor.newest = cursor.newest.max(at);
                if let Some(writer) = log::key_writer(&record.key) {
                    let mut writers = self.writers.lock().unwrap();
                    let last = writers.entry(writer.to_string()).or_default();
                    *last = (*last).max(at);
                }
            }
            cursor.seen.insert(record.key);
        }
        let oldest = log::events_from(cursor.newest.saturating_sub(nanos_of(log::LATE)));
        cursor.seen = cursor.seen.split_off(&oldest);
        cursor.polled = Instant::now();
        Ok(read)
    }

    /// Once per `period` across the replicas (the one whose create-only claim wins): writes a snapshot of
    /// the state and removes the event records and snapshots it makes unneeded. `Ok(false)` when another
    /// replica has the period.
    pub async fn compact(&self, period: Duration) -> Result<bool, StorageError> {
        let period_number = now() / nanos_of(period).max(1);
        let claim = log::compaction_key(period_number);
        if !self
            .records
            .create(&claim, self.writer.clone().into())
            .await?
        {
            return Ok(false);
        }
        self.sync().await?;
        let upto = {
            let cursor = self.cursor.lock().await;
            cursor.newest.saturating_sub(nanos_of(log::LATE))
        };
        let events = self.read(State::as_events);
        let key = log::snapshot_key(upto, &self.writer);
        self.records.put(&key, log::encode(&events)).await?;
        let keep_from = upto.saturating_sub(nanos_of(log::KEEP_AFTER_SNAPSHOT));
        for record in self.records.list(log::EVENTS, None).await? {
            if log::key_time(&record.key).is_some_and(|at| at < keep_from) {
                self.records.delete(&record.key).await?;
            }
        }
        let snapshots = self.records.list(log::SNAPSHOTS, None).await?;
        for old in snapshots.iter().rev().skip(2) {
            self.records.delete(&old.key).await?;
        }
        for old in self.records.list(log::COMPACTIONS, None).await? {
            if old.key < claim {
                self.records.delete(&old.key).await?;
            }
        }
        Ok(true)
    }

    /// Syncs every interval and compacts hourly until `shutdown`; then writes what is pending. A ledger
    /// not loaded yet is loaded first, and a store without one is indexed from a walk of `store` (the
    /// catalog and index answer 503 until then).
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn ferry_storage::ModuleStore>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        if !self.is_ready() {
            tokio::select! {
                () = self.build(store.as_ref()) => {}
                () = &mut shutdown => return,
            }
        }
        let mut tick = tokio::time::interval(self.settings.sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut compacted = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut shutdown => break,
            }
            if let Err(e) = self.sync().await {
                crate::metrics::metrics().ledger_sync_failures.inc();
                tracing::warn!(error = %e, "the ledger could not sync with the store; retrying");
                continue;
            }
            if compacted.elapsed() >= COMPACTION_PERIOD {
                compacted = Instant::now();
                if let Err(e) = self.compact(COMPACTION_PERIOD).await {
                    tracing::warn!(error = %e, "the ledger could not compact its log");
                }
            }
        }
        // Accesses too: the last interval's are not lost at a restart.
        self.cursor.lock().await.accesses_flushed = Instant::now() - self.settings.access_interval;
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "the ledger could not write its last events");
        }
    }
}

impl Ledger {
    /// Loads the ledger, or builds it from a walk of `store` when the store has none; a failure is logged
    /// (`ferry admin reindex` builds it later).
    async fn build(&self, store: &dyn ferry_storage::ModuleStore) {
        match self.load().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the ledger could not be read from the store; indexing it");
            }
        }
        tracing::info!("the store has no ledger yet: indexing it from a walk of its files");
        match self.reindex(store, |_| {}).await {
            Ok(done) => tracing::info!(
                files = done.files,
                versions = done.added,
                "the store is indexed"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "indexing the store failed; run `ferry admin reindex`")
            }
        }
    }
}

/// How often the log is folded into a snapshot.
const COMPACTION_PERIOD: Duration = Duration::from_secs(3600);

/// The record of a block.
fn block_key(module: &ModulePath, version: &Version) -> String {
    format!("{BLOCKS}/{}/@v/{}", module.escaped(), version.escaped())
}

/// The prefix of block records.
const BLOCKS: &str = "blocks";

fn nanos_of(duration: Duration) -> Nanos {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn warn_skipped(key: &str, skipped: usize) {
    if skipped > 0 {
        tracing::warn!(
            record = key,
            skipped,
            "ledger lines that do not parse were skipped"
        );
    }
}
