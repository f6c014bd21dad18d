//! Filling the store from the upstream through the fetcher: single-flight fills, the background queue
//! for `async` modes, and upstream `list` / `@latest`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferry_fetcher::{FetchError, Fetcher, GrowingZip, LatestVersion, ZipState, ZipTap};
use ferry_module::{ModulePath, Version};
use ferry_storage::{
    ModuleStore, ModuleStoreExt, StorageError, VersionFiles, VisibilityGuard, ZipSource,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::Instrument;

use crate::coordination::{Coordination, Fence};
pub use crate::fill_watch::{FillFailure, FillWatch, Flight};
use crate::metrics::{ResultLabels, metrics};

/// Why a fill could not give a version; cloned to every request waiting on the same fill, so the errors it
/// carries are shared, and their `source()` chains are kept for the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FillError {
    /// The fetcher failed (not found upstream, upstream failure, timeout, a local fault).
    #[error(transparent)]
    Fetch(Arc<FetchError>),
    /// The store could not take the version.
    #[error(transparent)]
    Storage(Arc<StorageError>),
    /// The upstream answered something Ferry cannot use.
    #[error("upstream failed: {0}")]
    Unusable(String),
    /// Every slot stayed taken for the whole wait: the client is told to come back.
    #[error("busy: every fetch slot stayed taken for {0:?}; try again shortly")]
    Busy(Duration),
    /// Nobody waited for the fill any more, and the slots for fills nobody waits for were all taken, so it
    /// was cancelled.
    #[error("the fetch was cancelled: nobody waited for it and no slot was free to finish it")]
    Abandoned,
    /// The replicas' lease engine did not answer (the bucket or Redis unreachable), or another replica
    /// held the version's lease too long.
    #[error(transparent)]
    Coordination(Arc<crate::coordination::CoordinationError>),
    /// Ferry itself failed (reading what `go` wrote, a fill task that panicked).
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Arc<std::io::Error>>,
    },
}

impl From<FetchError> for FillError {
    fn from(error: FetchError) -> FillError {
        FillError::Fetch(Arc::new(error))
    }
}

impl From<crate::coordination::CoordinationError> for FillError {
    fn from(error: crate::coordination::CoordinationError) -> FillError {
        FillError::Coordination(Arc::new(error))
    }
}

impl From<StorageError> for FillError {
    fn from(error: StorageError) -> FillError {
        FillError::Storage(Arc::new(error))
    }
}

/// What a fill gives the requests that wait on it.
#[derive(Debug, Clone)]
pub enum Filled {
    /// The version is stored: its files are read from the store.
    Stored(Version),
    /// A version's `.mod` as fetched over HTTP, answered before the checksum database has had its say on
    /// it and before it is stored: a lookup and an uncached tile of the database took 30–200 ms where the
    /// `.mod` took 1–2 ms (`go mod download -x`; issue 11), and the go command checks every go.mod it gets
    /// against its go.sum or the database itself, as it would straight from the upstream. What fails the
    /// checks is never stored (nor listed), and the failure goes to the log and to the requests still
    /// waiting (a `.info`). A `.info`, and files the go command fetched, are answered once checked and
    /// stored; a zip fetched over HTTP streams (`Streaming`).
    Fetched(Arc<Fetched>),
    /// A version's zip as it comes from the upstream over HTTP, before it is checked and stored: a zip
    /// request answers at once with a body that reads the file as it grows, and ends in an error if the
    /// checks fail (see `ferry_fetcher::GrowingZip`, which holds the zip's tail back until they pass).
    /// Handed to a zip request only once there are bytes it may send: until then, and for a zip too small
    /// to have any before its checks, it waits for the stored zip (or the failure) as before.
    Streaming(Version, GrowingZip),
}

impl Filled {
    /// The canonical version filled.
    pub fn version(&self) -> &Version {
        match self {
            Filled::Stored(version) => version,
            Filled::Fetched(fetched) => &fetched.version,
            Filled::Streaming(version, _) => version,
        }
    }

    /// Whether this answers a request for `file`: a `.info` and a zip are answered once stored.
    fn has(&self, file: Need) -> bool {
        matches!(
            (self, file),
            (Filled::Stored(_), _) | (Filled::Fetched(_), Need::Mod)
        )
    }
}

/// The file a request waiting on a fill answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Info,
    Mod,
    /// The zip, streamed as it comes when it can be (see `Filled::Streaming`).
    Zip,
    /// The zip once stored (a HEAD, a range, a background fill).
    StoredZip,
}

/// A version's `.mod` as a fill fetched it, before it is checked and stored.
#[derive(Debug)]
pub struct Fetched {
    pub version: Version,
    pub go_mod: Bytes,
}

/// How fills share the upstream. Each kind of work has a budget of its own, so that no kind can starve
/// another: fills a client waits on (`fills`), fills every client has left (as many as `fills`; beyond that
/// the abandoned fill is cancelled), upstream `list`/`@latest` queries (as many as `fills`), background
/// fetches (`workers`), and fills that have answered and are checking and storing what they fetched (four
/// times `fills`: the checksum database's round trips, off the clients' path). A request waits at most `slot_wait` for a slot, then gets a 503 with `Retry-After`.
#[derive(Debug, Clone)]
pub struct FillSettings {
    /// Fills that clients wait on, running at once.
    pub fills: usize,
    /// How long a request waits for a slot before it is answered 503.
    pub slot_wait: Duration,
    /// Background fetches waiting beyond this many are dropped (and logged); the request still gets its 404.
    pub queue_size: usize,
    /// How many background fetches run at once.
    pub workers: usize,
    /// The fills each requester may start (`fetcher.fill_rate`, `fetcher.fill_burst`); none: no limit.
    pub fair_use: Option<crate::fair_use::FillRate>,
}

impl Default for FillSettings {
    fn default() -> Self {
        FillSettings {
            fills: default_fills(),
            slot_wait: Duration::from_secs(30),
            queue_size: 1024,
            workers: 2,
            fair_use: None,
        }
    }
}

/// Fills wait on the network far more than on the CPU (a fill over HTTP is a few requests; even `go mod
/// download` is mostly waiting on the upstream): four per CPU, at least 8. With one per CPU (2 here), a cold
/// module graph queued behind two fills at a time.
pub fn default_fills() -> usize {
    (4 * ferry_fetcher::default_max_concurrent()).max(8)
}

impl FillSettings {
    /// The most `go` commands these budgets run at once: what the fetcher's own limit is set to, so that it
    /// never makes one kind of work wait for another.
    pub fn go_commands(&self) -> usize {
        3 * self.fills.max(1) + self.workers.max(1)
    }
}

/// The slots of each budget (see [`FillSettings`]).
struct Slots {
    fills: Arc<Semaphore>,
    orphans: Arc<Semaphore>,
    queries: Arc<Semaphore>,
    checks: Arc<Semaphore>,
    wait: Duration,
}

impl Slots {
    /// A slot of `budget`, waiting at most `wait`.
    async fn take(&self, budget: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, FillError> {
        match tokio::time::timeout(self.wait, budget.clone().acquire_owned()).await {
            Ok(permit) => Ok(permit.expect("the semaphores are never closed")),
            Err(_) => Err(FillError::Busy(self.wait)),
        }
    }
}

/// Who waits on one fill: when the count drops to zero the fill is told, and frees its slot.
#[derive(Default)]
struct Waiters {
    count: AtomicUsize,
    abandoned: Notify,
}

/// One caller waiting on a fill; leaving (the future dropped, the client gone) counts it out.
struct Waiting(Arc<Waiters>);

impl Waiting {
    fn join(waiters: &Arc<Waiters>) -> Waiting {
        waiters.count.fetch_add(1, Ordering::AcqRel);
        metrics().fill_waiting.inc();
        Waiting(waiters.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics().fill_waiting.dec();
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.abandoned.notify_one();
        }
    }
}

/// What a fill stores: the whole version, or its `.info` and `.mod` only (its zip comes when asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Want {
    Version,
    Metadata,
}

impl Want {
    /// What the fill stores, in words (a span attribute).
    fn files(self) -> &'static str {
        match self {
            Want::Version => "version",
            Want::Metadata => "info and mod",
        }
    }
}

/// A module, what was asked of it (a canonical version or a query), and what the fill stores.
type FillKey = (ModulePath, String, Want);
/// A fill's answer so far: none, the files fetched (some or all), or its end.
type Answers = watch::Receiver<Option<Result<Filled, FillError>>>;

struct InFlight {
    answers: Answers,
    waiters: Arc<Waiters>,
    abort: tokio::task::AbortHandle,
    /// When it started, for the status page.
    started: std::time::Instant,
    /// The fill's span (traces): a request that joins the fill links its own span to it.
    span: tracing::Span,
}

/// The store's link to the upstream.
pub struct Filler {
    shared: Arc<FillState>,
    /// Each requester's budget of fills, when one is set.
    fair_use: Option<crate::fair_use::FairUse>,
    queue: Mutex<Option<mpsc::Sender<FillKey>>>,
    workers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What the request handlers and the background workers share.
struct FillState {
    fetcher: Fetcher,
    store: Arc<dyn ModuleStore>,
    slots: Slots,
    /// Each running fill, who waits on it, and the handle that cancels its task (at the shutdown deadline).
    in_flight: Mutex<HashMap<FillKey, InFlight>>,
    queued: Mutex<HashSet<FillKey>>,
    /// The last failures and the upstream's last answer, for the status page and `ferry_upstream_up`.
    watch: FillWatch,
    /// How this Ferry's fills share the upstream with other replicas on the same store.
    coordination: Coordination,
}

impl std::fmt::Debug for Filler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filler")
            .field("go", &self.shared.fetcher.go_version())
            .finish_non_exhaustive()
    }
}

impl Filler {
    /// Starts the background workers; must be called inside the async runtime.
    pub fn start(fetcher: Fetcher, store: Arc<dyn ModuleStore>, settings: FillSettings) -> Filler {
        Filler::start_coordinated(fetcher, store, settings, Coordination::local())
    }

    /// [`Filler::start`] for one of several replicas on one store: each fill of a version takes the
    /// version's lease of `coordination` first.
    pub fn start_coordinated(
        fetcher: Fetcher,
        store: Arc<dyn ModuleStore>,
        settings: FillSettings,
        coordination: Coordination,
    ) -> Filler {
        let fills = settings.fills.max(1);
        let shared = Arc::new(FillState {
            fetcher,
            store,
            slots: Slots {
                fills: Arc::new(Semaphore::new(fills)),
                orphans: Arc::new(Semaphore::new(fills)),
                queries: Arc::new(Semaphore::new(fills)),
                checks: Arc::new(Semaphore::new(4 * fills)),
                wait: settings.slot_wait,
            },
            in_flight: Mutex::default(),
            queued: Mutex::default(),
            watch: FillWatch::default(),
            coordination,
        });
        let (sender, receiver) = mpsc::channel::<FillKey>(settings.queue_size.max(1));
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let workers = (0..settings.workers.max(1))
            .map(|_| {
                let (shared, receiver) = (shared.clone(), receiver.clone());
                tokio::spawn(async move {
                    loop {
                        let next = receiver.lock().await.recv().await;
                        let Some(key) = next else { break };
                        let (module, query, want) = key.clone();
                        match fill(&shared, (module.clone(), query.clone(), want), Budget::Background, Need::StoredZip).await {
                            Ok(filled) => tracing::info!(%module, %query, version = %filled.version(), "background fetch done"),
                            Err(e) => tracing::warn!(%module, %query, error = %e, "background fetch failed"),
                        }
                        shared.queued.lock().unwrap().remove(&key);
                        metrics().queue_depth.dec();
                    }
                })
            })
            .collect();
        Filler {
            shared,
            fair_use: settings.fair_use.map(crate::fair_use::FairUse::new),
            queue: Mutex::new(Some(sender)),
            workers: Mutex::new(workers),
        }
    }

    /// Fetches `module@query` and stores it, unless it is stored already; concurrent calls for the same
    /// `module@query` share one fetch. When every caller has gone, the fetch goes on in a slot for fills
    /// nobody waits for, or is cancelled when none is free.
    /// `need` says which of the version's files the caller answers with: the fill answers as soon as it
    /// has that file (see `Filled::Fetched`).
    /// Takes a fill from `requester`'s budget (none: the request came without one, outside the stack);
    /// when it has none left, the 429 to answer, and the refusal is counted.
    pub fn admit(
        &self,
        requester: Option<&crate::fair_use::Requester>,
    ) -> Result<(), crate::fair_use::Spent> {
        let (Some(fair_use), Some(requester)) = (&self.fair_use, requester) else {
            return Ok(());
        };
        fair_use.take(requester).map_err(|wait| {
            metrics().fill_budget_refusals.inc();
            let name = requester.to_string();
            tracing::info!(requester = name.as_str(), wait = ?wait, "fill budget spent: 429");
            crate::fair_use::Spent {
                requester: name,
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }

    /// How this Ferry's fills are coordinated with other replicas (removals take the same leases).
    pub fn coordination(&self) -> &Coordination {
        &self.shared.coordination
    }

    /// The fills running now, longest first: a copy of the single-flight map's keys and counts, taken
    /// under its lock for as long as the copy takes.
    pub fn flights(&self) -> Vec<Flight> {
        let mut flights: Vec<Flight> = {
            let in_flight = self.shared.in_flight.lock().unwrap();
            in_flight
                .iter()
                .map(|((module, query, want), running)| Flight {
                    module: module.clone(),
                    query: query.clone(),
                    metadata_only: *want == Want::Metadata,
                    elapsed: running.started.elapsed(),
                    waiting: running.waiters.count.load(Ordering::Acquire),
                })
                .collect()
        };
        flights.sort_by_key(|f| std::cmp::Reverse(f.elapsed));
        flights
    }

    /// The last fill failures and the upstream's last answer.
    pub fn watch(&self) -> &FillWatch {
        &self.shared.watch
    }

    pub async fn fill(
        &self,
        module: &ModulePath,
        query: &str,
        need: Need,
    ) -> Result<Filled, FillError> {
        let key = (module.clone(), query.to_string(), Want::Version);
        fill(&self.shared, key, Budget::Fills, need).await
    }

    /// Like [`Filler::fill`] for the `.info` and `.mod` of a canonical version only: what a `.info` or
    /// `.mod` request needs. The zip is fetched when it is asked for (the go command asks for the `.mod` of
    /// many versions whose zips it never downloads).
    pub async fn fill_metadata(
        &self,
        module: &ModulePath,
        version: &Version,
        need: Need,
    ) -> Result<Filled, FillError> {
        let key = (module.clone(), version.as_str().to_string(), Want::Metadata);
        fill(&self.shared, key, Budget::Fills, need).await
    }

    /// Queues `module@query` for a background fill. Returns false (and logs) when the queue is full or
    /// closed; a request already queued is not queued twice.
    pub fn enqueue(&self, module: &ModulePath, query: &str) -> bool {
        let key = (module.clone(), query.to_string(), Want::Version);
        if !self.shared.queued.lock().unwrap().insert(key.clone()) {
            return true;
        }
        let sent = match self.queue.lock().unwrap().as_ref() {
            Some(sender) => sender.try_send(key.clone()).map_err(|e| e.to_string()),
            None => Err("shutting down".to_string()),
        };
        if let Err(reason) = sent {
            self.shared.queued.lock().unwrap().remove(&key);
            metrics().queue_dropped.inc();
            tracing::warn!(%module, %query, %reason, "background fetch dropped");
            return false;
        }
        metrics().queue_depth.inc();
        true
    }

    /// Versions the upstream lists for the module (releases and pre-releases, as `go list -m -retracted -versions`).
    pub async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, FillError> {
        let _slot = self.shared.slots.take(&self.shared.slots.queries).await?;
        Ok(self.shared.fetcher.list(module).await?)
    }

    /// What a query resolves to upstream (`latest`, a branch, a commit), without downloading the zip.
    pub async fn resolve(
        &self,
        module: &ModulePath,
        query: &str,
    ) -> Result<LatestVersion, FillError> {
        let _slot = self.shared.slots.take(&self.shared.slots.queries).await?;
        Ok(self.shared.fetcher.resolve(module, query).await?)
    }

    /// Stops taking background work and lets the queued fetches finish within `deadline`; fetches
    /// still running then are cancelled (their `go` processes killed, their files removed).
    pub async fn drain(&self, deadline: Duration) {
        drop(self.queue.lock().unwrap().take());
        let workers: Vec<_> = std::mem::take(&mut *self.workers.lock().unwrap());
        let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
        if tokio::time::timeout(deadline, futures::future::join_all(workers))
            .await
            .is_err()
        {
            tracing::warn!(
                "background fetches still running at the shutdown deadline; cancelling them"
            );
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
            // A fill runs in a task of its own (so a departing client does not cancel it): aborting the
            // worker that awaits it leaves it running, so it is cancelled here, which kills its go.
            let fills: Vec<_> = self.shared.in_flight.lock().unwrap().drain().collect();
            for (_, in_flight) in fills {
                in_flight.abort.abort();
                metrics().fills_in_flight.dec();
            }
        }
    }
}

/// Which budget a fill's slot comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    /// A client waits: a slot of `fills`, waited for at most `slot_wait`.
    Fills,
    /// A background worker: its worker is its slot.
    Background,
}

/// Joins the fill of `module@query`, starting it if none runs; the returned future counts as a waiter
/// until it has an answer with the file it `need`s, or is dropped.
fn fill(
    shared: &Arc<FillState>,
    key: FillKey,
    budget: Budget,
    need: Need,
) -> impl Future<Output = Result<Filled, FillError>> + use<> {
    let mut in_flight = shared.in_flight.lock().unwrap();
    let (mut answers, waiting, span) = match in_flight.get(&key) {
        Some(running) => {
            metrics().fill_joins.inc();
            let span = join_span(&key);
            crate::traces::link(&span, &running.span);
            let waiting = Waiting::join(&running.waiters);
            (running.answers.clone(), waiting, span)
        }
        None => {
            let waiters = Arc::new(Waiters::default());
            let waiting = Waiting::join(&waiters);
            let (publisher, answers) = Publisher::new();
            // The fill's span is the child of the request that started it (its other waiters link to it).
            let span = fill_span(&key);
            // The fill runs in its own task so that a client going away does not cancel what others wait on.
            let run = run_fill(
                shared.clone(),
                key.clone(),
                budget,
                waiters.clone(),
                publisher,
            );
            let task = tokio::spawn(run.instrument(span.clone()));
            let running = InFlight {
                answers: answers.clone(),
                waiters,
                abort: task.abort_handle(),
                started: std::time::Instant::now(),
                span,
            };
            in_flight.insert(key, running);
            metrics().fills_in_flight.inc();
            (answers, waiting, tracing::Span::none())
        }
    };
    async move {
        let result = loop {
            let current = answers.borrow_and_update().clone();
            let mut streaming = match current {
                Some(Ok(Filled::Streaming(version, zip))) if need == Need::Zip => (version, zip),
                Some(answer) if answer.as_ref().map_or(true, |filled| filled.has(need)) => {
                    break answer;
                }
                _ => {
                    if answers.changed().await.is_err() {
                        break closed();
                    }
                    continue;
                }
            };
            // A streamed zip is answered once it has bytes to send; else the fill's next answer is awaited.
            match wait_for_bytes(&mut streaming.1, &mut answers).await {
                Some(true) => break Ok(Filled::Streaming(streaming.0, streaming.1)),
                Some(false) => continue,
                None => break closed(),
            }
        };
        drop(waiting);
        result
    }
    .instrument(span)
}

/// The fill's task ended without an answer for this request: it failed or was cancelled (it ends with its
/// final answer sent, which `changed` reports before the close).
fn closed() -> Result<Filled, FillError> {
    Err(FillError::Internal {
        context: "the fetch task failed".to_string(),
        source: None,
    })
}

/// Waits until the zip coming in has bytes a client may be sent (`Some(true)`), or the fill has a newer
/// answer (`Some(false)`); `None` when the fill's task ended without one. A zip that verified or failed
/// before it had any is answered from the fill's end (the stored zip, or the failure), as when nothing
/// streamed.
async fn wait_for_bytes(zip: &mut GrowingZip, answers: &mut Answers) -> Option<bool> {
    let mut growing = true;
    loop {
        let progress = zip.progress();
        if progress.state == ZipState::Downloading && progress.sendable() > 0 {
            return Some(true);
        }
        growing &= progress.state == ZipState::Downloading;
        tokio::select! {
            more = zip.changed(), if growing => growing = more,
            next = answers.changed() => return next.is_ok().then_some(false),
        }
    }
}

/// The span of a fill, the child of the request that started it (traces; see [`crate::traces`]).
fn fill_span((module, query, want): &FillKey) -> tracing::Span {
    tracing::info_span!(target: crate::traces::TARGET, "fill", ferry.module = module.as_str(), ferry.query = query.as_str(), ferry.files = want.files())
}

/// The span of a request waiting on a fill another request started: linked to the fill's span.
fn join_span((module, query, want): &FillKey) -> tracing::Span {
    tracing::info_span!(target: crate::traces::TARGET, "fill join", ferry.module = module.as_str(), ferry.query = query.as_str(), ferry.files = want.files())
}

/// Hands a fill's answer to the requests waiting on it: early, when the fill has its files and goes on to
/// check and store them, or at its end.
struct Publisher {
    answers: watch::Sender<Option<Result<Filled, FillError>>>,
    /// The fill's slot: one of its budget until it has answered, then one of the checks' budget.
    slot: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Publisher {
    fn new() -> (Publisher, Answers) {
        let (answers, receiver) = watch::channel(None);
        let publisher = Publisher {
            answers,
            slot: Mutex::default(),
        };
        (publisher, receiver)
    }

    /// Answers the waiters (those whose file it holds; the others wait on).
    fn publish(&self, answer: Result<Filled, FillError>) {
        self.answers.send_replace(Some(answer));
    }

    /// Whether the fill has answered with files it fetched.
    fn answered(&self) -> bool {
        self.answers.borrow().is_some()
    }

    /// Answers with the files fetched so far, then trades the fill's slot for one of the checks' budget: the
    /// clients' slots go back to clients, and checks waiting on the database do not hold them.
    async fn answer_early(&self, slots: &Slots, fetched: Fetched) {
        self.publish(Ok(Filled::Fetched(Arc::new(fetched))));
        let held = self.slot.lock().unwrap().take();
        if held.is_some() {
            drop(held);
            let checks = slots.checks.clone().acquire_owned().await;
            *self.slot.lock().unwrap() = Some(checks.expect("the semaphores are never closed"));
        }
    }
}

/// One fill in its task: a slot of its budget, then the fetch; when every waiter leaves before it has its
/// answer, the fill gives its slot back and finishes in a slot for fills nobody waits for, or is cancelled
/// when none is free.
async fn run_fill(
    shared: Arc<FillState>,
    key: FillKey,
    budget: Budget,
    waiters: Arc<Waiters>,
    publisher: Publisher,
) {
    let (module, query, want) = &key;
    let nobody_waits = || waiters.count.load(Ordering::Acquire) == 0;
    let started = std::time::Instant::now();
    let result = async {
        if budget == Budget::Fills {
            let slot = tokio::select! {
                slot = shared.slots.take(&shared.slots.fills) => slot?,
                () = abandoned(&waiters) => return Err(FillError::Abandoned),
            };
            *publisher.slot.lock().unwrap() = Some(slot);
        }
        let work = async {
            match want {
                // A version's zip is fetched once across replicas: under the version's lease.
                Want::Version => {
                    let fill = |fence| fetch_and_store(&shared, &publisher, module, query, fence);
                    shared.coordination.exclusive_fill(module, query, fill).await
                }
                // `.info` and `.mod` are small and the same bytes whoever writes them; a bucket writes
                // the `.info` create-only. No lease.
                Want::Metadata => fetch_metadata_and_store(&shared, &publisher, module, query).await,
            }
        };
        tokio::pin!(work);
        let mut orphaned = budget == Budget::Background;
        loop {
            tokio::select! {
                result = &mut work => return result,
                () = abandoned(&waiters), if !orphaned => {
                    // Answered clients leave: the fill goes on to check and store what it answered with.
                    if publisher.answered() {
                        orphaned = true;
                        continue;
                    }
                    if !nobody_waits() {
                        continue;
                    }
                    match shared.slots.orphans.clone().try_acquire_owned() {
                        // The fill slot goes back to the clients; this fill finishes on the orphans' budget.
                        Ok(orphan) => {
                            *publisher.slot.lock().unwrap() = Some(orphan);
                            orphaned = true;
                            tracing::info!(%module, %query, "every client left; finishing the fetch without them");
                        }
                        Err(_) => {
                            drop(publisher.slot.lock().unwrap().take());
                            tracing::warn!(%module, %query, "every client left and no slot is free to finish the fetch; cancelling it");
                            return Err(FillError::Abandoned);
                        }
                    }
                }
            }
        }
    }
    .await;
    match &result {
        Ok(version) => tracing::debug!(%module, %query, %version, "fill done"),
        // A client's 404 is routine; everything else is something an operator may need to act on.
        Err(FillError::Fetch(fetch)) if matches!(**fetch, FetchError::NotFound { .. }) => {
            tracing::info!(%module, %query, error = %fetch, "fill: not found upstream");
        }
        Err(e) if publisher.answered() => {
            tracing::error!(%module, %query, error = %crate::report::Report(e), "fill failed after its clients were answered with the files it fetched; not stored")
        }
        Err(e) => tracing::warn!(%module, %query, error = %crate::report::Report(e), "fill failed"),
    }
    let metrics = metrics();
    if shared.in_flight.lock().unwrap().remove(&key).is_some() {
        metrics.fills_in_flight.dec();
    }
    let label = fill_result(&result);
    let failure = result.as_ref().err().map(|e| FillFailure {
        module: module.clone(),
        query: query.clone(),
        at: std::time::SystemTime::now(),
        result: label,
        reason: client_reason(e),
    });
    shared.watch.ended(failure, label);
    metrics
        .fills
        .get_or_create(&ResultLabels { result: label })
        .inc();
    metrics
        .fill_duration
        .observe(started.elapsed().as_secs_f64());
    // Failed after an early answer, the fill answers its failure to those still waiting (a `.info`
    // after its `.mod` was answered); stored, it is read from the store.
    publisher.publish(result.map(Filled::Stored));
}

/// A fill's outcome as a metric label: a fixed set.
fn fill_result(result: &Result<Version, FillError>) -> &'static str {
    match result {
        Ok(_) => "stored",
        Err(FillError::Fetch(fetch)) => match **fetch {
            FetchError::NotFound { .. } => "not_found",
            FetchError::Timeout { .. } => "timeout",
            FetchError::Upstream { .. }
            | FetchError::InvalidOutput { .. }
            | FetchError::OutputTooLarge { .. } => "upstream_error",
            FetchError::GoMissing { .. }
            | FetchError::Io { .. }
            | FetchError::WorkDirBusy { .. }
            | FetchError::LocalFault { .. } => "local_error",
        },
        Err(FillError::Unusable(_)) => "upstream_error",
        Err(FillError::Storage(_)) => "storage_error",
        Err(FillError::Busy(_)) => "busy",
        Err(FillError::Coordination(_)) => "coordination_error",
        Err(FillError::Abandoned) => "abandoned",
        Err(FillError::Internal { .. }) => "local_error",
    }
}

/// A failure as a client is told it (see `answer`): go's reason and the upstream's status, never a
/// local path, the upstream's address nor the store's or lease engine's own words (the log has those).
fn client_reason(error: &FillError) -> String {
    match error {
        FillError::Fetch(fetch) => match **fetch {
            FetchError::NotFound { .. } => fetch.client_message(),
            FetchError::Timeout { .. } => format!("upstream timed out: {}", fetch.client_message()),
            FetchError::Upstream { .. }
            | FetchError::InvalidOutput { .. }
            | FetchError::OutputTooLarge { .. } => {
                format!("upstream failed: {}", fetch.client_message())
            }
            FetchError::GoMissing { .. }
            | FetchError::Io { .. }
            | FetchError::WorkDirBusy { .. }
            | FetchError::LocalFault { .. } => {
                "a local fault while fetching (the log has the details)".to_string()
            }
        },
        FillError::Storage(_) => {
            "the store failed to take it (the log has the details)".to_string()
        }
        FillError::Coordination(_) => {
            "the replicas' lease engine failed (the log has the details)".to_string()
        }
        FillError::Internal { .. } => "a local fault (the log has the details)".to_string(),
        FillError::Unusable(_) | FillError::Busy(_) | FillError::Abandoned => error.to_string(),
    }
}

/// Completes when the last waiter has left (at once if it already has).
async fn abandoned(waiters: &Waiters) {
    loop {
        let notified = waiters.abandoned.notified();
        if waiters.count.load(Ordering::Acquire) == 0 {
            return;
        }
        notified.await;
    }
}

/// `fence`: the version's lease, when the fill holds one; the save makes the version visible only while
/// the lease is still this Ferry's.
async fn fetch_and_store(
    shared: &FillState,
    publisher: &Publisher,
    module: &ModulePath,
    query: &str,
    fence: Option<Arc<Fence>>,
) -> Result<Version, FillError> {
    let canonical = Version::new(query).ok();
    // A canonical version stored since the request missed (another fill, another replica) is not fetched.
    if let Some(version) = &canonical
        && shared.store.has_zip(module, version).await?
    {
        return Ok(version.clone());
    }
    // The zip of a canonical version goes to its waiting requests as it comes (see `Filled::Streaming`),
    // its tail released once verified and stored (so a complete answer means a stored zip, as before);
    // dropped with this fill unreleased, the tap fails what they were sent.
    let tap = canonical.map(|version| {
        ZipTap::new(move |zip| {
            publisher.publish(Ok(Filled::Streaming(version.clone(), zip)));
        })
    });
    let fetched = shared
        .fetcher
        .fetch_tapped(module, query, tap.as_ref())
        .await?;
    let version = fetched.version.clone();
    let read = |path: std::path::PathBuf| async move {
        tokio::fs::read(&path)
            .await
            .map(Bytes::from)
            .map_err(|e| FillError::Internal {
                context: format!("reading {}", path.display()),
                source: Some(Arc::new(e)),
            })
    };
    let info = read(fetched.info.clone()).await?;
    let go_mod = read(fetched.go_mod.clone()).await?;
    // The store takes the zip as the file it is: a filesystem store links it into place, others stream it
    // from disk in large reads; it is never held whole in memory.
    let zip = Some(ZipSource::File(fetched.zip.clone()));
    let files = VersionFiles { info, go_mod, zip };
    // The fence guards the save of its own version only.
    let guard = fence
        .as_deref()
        .filter(|fence| fence.covers(module, &version));
    let guard = guard.map(|fence| fence as &dyn VisibilityGuard);
    let saved = shared
        .store
        .save_version(module, &version, files, guard)
        .await;
    // The temporary directory (go's module cache, the zip extracted) is removed off the answer's path.
    tokio::spawn(fetched.remove());
    saved?;
    if let Some(tap) = &tap {
        tap.release();
    }
    tracing::info!(%module, %query, %version, "fetched and stored");
    Ok(version)
}

/// The `.info` and `.mod` of a canonical version, fetched without its zip and stored (listed) without it.
async fn fetch_metadata_and_store(
    shared: &FillState,
    publisher: &Publisher,
    module: &ModulePath,
    version: &str,
) -> Result<Version, FillError> {
    let version = Version::new(version).map_err(|e| FillError::Internal {
        context: format!("a metadata fill for a query that is not a version: {e}"),
        source: None,
    })?;
    if shared.store.exists(module, &version).await? {
        return Ok(version);
    }
    let fetched = shared
        .fetcher
        .fetch_metadata_unverified(module, &version)
        .await?;
    if !fetched.is_checked() && fetched.early.version == version.as_str() {
        let early = Fetched {
            version: version.clone(),
            go_mod: fetched.early.go_mod.clone(),
        };
        publisher.answer_early(&shared.slots, early).await;
    }
    let fetched = fetched.verified().await?;
    if fetched.version != version.as_str() {
        return Err(FillError::Unusable(format!(
            "asked for {module}@{version}, the upstream answered {}",
            fetched.version
        )));
    }
    let files = VersionFiles {
        info: fetched.info,
        go_mod: fetched.go_mod,
        zip: None,
    };
    shared.store.save(module, &version, files).await?;
    tracing::info!(%module, %version, "fetched and stored .info and .mod");
    Ok(version)
}
