//! Filling the store from the upstream through the fetcher: single-flight fills, the background queue
//! for `async` modes, and upstream `list` / `@latest`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferry_fetcher::{FetchError, Fetcher, LatestVersion};
use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, StorageError, VersionFiles, ZipSource};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::sync::mpsc;

/// Why the upstream could not give a version; cloned to every request waiting on the same fill.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FillError {
    /// The upstream does not have it (unknown module, revision or version). Answered 404.
    #[error("{0}")]
    NotFound(String),
    /// The upstream did not answer in time. Answered 504.
    #[error("upstream timed out: {0}")]
    Timeout(String),
    /// The upstream failed. Answered 502.
    #[error("upstream failed: {0}")]
    Upstream(String),
    /// The store could not take the version. Answered 503.
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// Ferry itself failed (e.g. its work directory). Answered 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<FetchError> for FillError {
    fn from(error: FetchError) -> FillError {
        match error {
            // The answer adds its own `not found: ` before go's reason.
            FetchError::NotFound { message } => FillError::NotFound(message),
            FetchError::Timeout { .. } => FillError::Timeout(error.to_string()),
            // Likewise `upstream failed: ` is said once, before go's reason.
            FetchError::Upstream { message } => FillError::Upstream(message),
            // An answer too large to read (an upstream list of a million versions) is the upstream's.
            FetchError::InvalidOutput { .. } | FetchError::OutputTooLarge { .. } => {
                FillError::Upstream(error.to_string())
            }
            FetchError::GoMissing { .. }
            | FetchError::Io { .. }
            | FetchError::WorkDirBusy { .. } => FillError::Internal(error.to_string()),
        }
    }
}

impl From<StorageError> for FillError {
    fn from(error: StorageError) -> FillError {
        FillError::Storage(error.to_string())
    }
}

/// How background fetching behaves.
#[derive(Debug, Clone)]
pub struct BackgroundSettings {
    /// Fetches waiting beyond this many are dropped (and logged); the request still gets its 404.
    pub queue_size: usize,
    /// How many background fetches run at once (the fetcher's own limit still applies).
    pub workers: usize,
}

impl Default for BackgroundSettings {
    fn default() -> Self {
        BackgroundSettings {
            queue_size: 1024,
            workers: 2,
        }
    }
}

/// A module and what was asked of it: a canonical version or a query.
type FillKey = (ModulePath, String);
type SharedFill = Shared<BoxFuture<'static, Result<Version, FillError>>>;

/// The store's link to the upstream.
pub struct Upstream {
    shared: Arc<FillState>,
    queue: Mutex<Option<mpsc::Sender<FillKey>>>,
    workers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What the request handlers and the background workers share.
struct FillState {
    fetcher: Fetcher,
    store: Arc<dyn ModuleStore>,
    /// Each running fill, and the handle that cancels its task (at the shutdown deadline).
    in_flight: Mutex<HashMap<FillKey, (SharedFill, tokio::task::AbortHandle)>>,
    queued: Mutex<HashSet<FillKey>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("go", &self.shared.fetcher.go_version())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Starts the background workers; must be called inside the async runtime.
    pub fn start(
        fetcher: Fetcher,
        store: Arc<dyn ModuleStore>,
        settings: BackgroundSettings,
    ) -> Upstream {
        let shared = Arc::new(FillState {
            fetcher,
            store,
            in_flight: Mutex::default(),
            queued: Mutex::default(),
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
                        let (module, query) = key.clone();
                        match fill(&shared, module.clone(), query.clone()).await {
                            Ok(version) => tracing::info!(%module, %query, %version, "background fetch stored"),
                            Err(e) => tracing::warn!(%module, %query, error = %e, "background fetch failed"),
                        }
                        shared.queued.lock().unwrap().remove(&key);
                    }
                })
            })
            .collect();
        Upstream {
            shared,
            queue: Mutex::new(Some(sender)),
            workers: Mutex::new(workers),
        }
    }

    /// Fetches `module@query` and stores it, unless it is stored already; concurrent calls for the same
    /// `module@query` share one fetch, which goes on even if every caller goes away.
    pub async fn fill(&self, module: &ModulePath, query: &str) -> Result<Version, FillError> {
        fill(&self.shared, module.clone(), query.to_string()).await
    }

    /// Queues `module@query` for a background fill. Returns false (and logs) when the queue is full or
    /// closed; a request already queued is not queued twice.
    pub fn enqueue(&self, module: &ModulePath, query: &str) -> bool {
        let key = (module.clone(), query.to_string());
        if !self.shared.queued.lock().unwrap().insert(key.clone()) {
            return true;
        }
        let sent = match self.queue.lock().unwrap().as_ref() {
            Some(sender) => sender.try_send(key.clone()).map_err(|e| e.to_string()),
            None => Err("shutting down".to_string()),
        };
        if let Err(reason) = sent {
            self.shared.queued.lock().unwrap().remove(&key);
            tracing::warn!(%module, %query, %reason, "background fetch dropped");
            return false;
        }
        true
    }

    /// Versions the upstream lists for the module (releases and pre-releases, as `go list -m -versions`).
    pub async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, FillError> {
        let versions = self.shared.fetcher.list(module.as_str()).await?;
        Ok(versions
            .iter()
            .filter_map(|v| Version::new(v).ok())
            .collect())
    }

    /// What a query resolves to upstream (`latest`, a branch, a commit), without downloading the zip.
    pub async fn resolve(
        &self,
        module: &ModulePath,
        query: &str,
    ) -> Result<LatestVersion, FillError> {
        Ok(self.shared.fetcher.resolve(module.as_str(), query).await?)
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
            for (_, (_, abort)) in fills {
                abort.abort();
            }
        }
    }
}

fn fill(shared: &Arc<FillState>, module: ModulePath, query: String) -> SharedFill {
    let key = (module.clone(), query.clone());
    let mut in_flight = shared.in_flight.lock().unwrap();
    if let Some((running, _)) = in_flight.get(&key) {
        return running.clone();
    }
    // The fill runs in its own task so that a client going away does not cancel what others wait on.
    let task_shared = shared.clone();
    let task = tokio::spawn(async move {
        let result = fetch_and_store(&task_shared, &module, &query).await;
        task_shared
            .in_flight
            .lock()
            .unwrap()
            .remove(&(module, query));
        result
    });
    let abort = task.abort_handle();
    let fill = async move {
        task.await
            .unwrap_or_else(|e| Err(FillError::Internal(format!("fetch task failed: {e}"))))
    }
    .boxed()
    .shared();
    in_flight.insert(key, (fill.clone(), abort));
    fill
}

async fn fetch_and_store(
    shared: &FillState,
    module: &ModulePath,
    query: &str,
) -> Result<Version, FillError> {
    // A canonical version stored since the request missed (another fill, another replica) is not fetched.
    if let Ok(version) = Version::new(query)
        && shared.store.exists(module, &version).await?
    {
        return Ok(version);
    }
    let fetched = shared.fetcher.fetch(module.as_str(), query).await?;
    let version = Version::new(&fetched.version).map_err(|e| {
        FillError::Upstream(format!("the upstream answered an unusable version: {e}"))
    })?;
    let read = |path: std::path::PathBuf| async move {
        tokio::fs::read(&path)
            .await
            .map(Bytes::from)
            .map_err(|e| FillError::Internal(format!("reading {}: {e}", path.display())))
    };
    let info = read(fetched.info.clone()).await?;
    let go_mod = read(fetched.go_mod.clone()).await?;
    // The store takes the zip as the file it is: a filesystem store links it into place, others stream it
    // from disk in large reads; it is never held whole in memory.
    let zip = ZipSource::File(fetched.zip.clone());
    let saved = shared
        .store
        .save(module, &version, VersionFiles { info, go_mod, zip })
        .await;
    // The temporary directory (go's module cache, the zip extracted) is removed off the answer's path.
    tokio::spawn(fetched.remove());
    saved?;
    tracing::info!(%module, %query, %version, "fetched and stored");
    Ok(version)
}
