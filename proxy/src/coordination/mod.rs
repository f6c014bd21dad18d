//! Coordination between Ferry replicas that share one store: a fill of a canonical version takes that
//! version's lease first, so that of several replicas (each with its own single flight) one fetches it
//! from the upstream and the others wait for it to become visible in the store.
//!
//! The lease engine is a [`Coordinator`]: `local` (one Ferry: no lease at all), `storage` (a lease object
//! beside the version in the bucket, [`bucket`]) or `redis://` ([`redis`]). This module holds the trait
//! and what a fill does with a lease ([`Coordination::exclusive_fill`]); it lives in the proxy because it
//! wires the store (whose conditional writes the `storage` engine uses) to the fills, and the fetcher
//! knows nothing of either. Nothing here is needed by another crate (the Redis client is the `redis`
//! crate), so no crate of its own.
//!
//! The fencing check: a holder asks its engine to renew the lease once more (a conditional write: an
//! e-tag/generation match on a bucket, a compare-and-set script in Redis) just before it makes the version
//! visible: [`Coordination::exclusive_fill`] hands the fill the lease's [`Fence`], which the fill passes to
//! the store's save as its [`VisibilityGuard`]. A holder that stalled past its lease and was taken
//! over fails that write and does not publish. object_store offers no transaction over two objects, so
//! the check and the `.info` write are two requests: a holder that stalls between them for longer than
//! the lease could still write the `.info` after a taker did; on a bucket that `.info` write is
//! create-only, so the version's `.info` is written exactly once either way, and its zip and `.mod` are
//! the same bytes whoever writes them (a version's content is fixed by its checksum).

pub mod bucket;
pub mod redis;
pub mod settings;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_module::{ModulePath, Version};
use ferry_storage::{
    Failure, LeaseTag, ModuleStore, ModuleStoreExt, StorageError, VisibilityGuard,
};

pub use settings::{CoordinationSettings, Engine};

/// The version a lease is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    pub module: ModulePath,
    pub version: Version,
}

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.module, self.version)
    }
}

/// A lease this Ferry holds.
#[derive(Debug)]
pub struct Lease {
    pub key: LeaseKey,
    /// The fencing value: unique to this holding (a bucket lease counts up at each takeover).
    pub token: String,
    /// A bucket lease's last write, which the next conditional write must follow. Held across each
    /// conditional write, so the background renewal and the fencing check never race each other with
    /// the same tag (one would lose to the other and take it for a takeover).
    tag: tokio::sync::Mutex<Option<LeaseTag>>,
}

impl Lease {
    pub fn new(key: LeaseKey, token: String, tag: Option<LeaseTag>) -> Lease {
        Lease {
            key,
            token,
            tag: tokio::sync::Mutex::new(tag),
        }
    }
}

/// What [`Coordinator::acquire`] found.
#[derive(Debug)]
pub enum Acquired {
    Lease(Lease),
    /// Another replica holds it, for about this long unless it renews.
    HeldElsewhere {
        expires_in: Duration,
    },
}

/// The lease engine could not answer (the bucket or Redis unreachable, an unexpected answer). The
/// message is safe to show a client: endpoints and keys, never a credential.
#[derive(Debug, thiserror::Error)]
#[error("coordination unavailable: {message}")]
pub struct CoordinationError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CoordinationError {
    pub fn new(message: impl Into<String>) -> CoordinationError {
        CoordinationError {
            message: message.into(),
            source: None,
        }
    }
}

impl From<StorageError> for CoordinationError {
    fn from(error: StorageError) -> CoordinationError {
        CoordinationError {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }
}

/// A lease engine: one holder per key at a time, a holder that stops renewing loses it after its time.
#[async_trait]
pub trait Coordinator: Send + Sync + fmt::Debug {
    /// Takes the lease of `key` for `time` unless a live one is held (an expired one is taken over).
    async fn acquire(&self, key: &LeaseKey, time: Duration) -> Result<Acquired, CoordinationError>;
    /// Extends the lease to `time` from now; `false` when it is no longer this holder's.
    async fn renew(&self, lease: &Lease, time: Duration) -> Result<bool, CoordinationError>;
    /// Gives the lease up if it is still this holder's. `visible`: the version is stored.
    async fn release(&self, lease: &Lease, visible: bool) -> Result<(), CoordinationError>;
}

/// `local`: one Ferry on its store; every lease is granted (its own single flight is the coordination).
#[derive(Debug)]
pub struct LocalCoordinator;

#[async_trait]
impl Coordinator for LocalCoordinator {
    async fn acquire(&self, key: &LeaseKey, _: Duration) -> Result<Acquired, CoordinationError> {
        Ok(Acquired::Lease(Lease::new(
            key.clone(),
            String::new(),
            None,
        )))
    }

    async fn renew(&self, _: &Lease, _: Duration) -> Result<bool, CoordinationError> {
        Ok(true)
    }

    async fn release(&self, _: &Lease, _: bool) -> Result<(), CoordinationError> {
        Ok(())
    }
}

/// Who this process is, in a lease: the host, the process id and a random part (a restarted process
/// with the same pid in a container is another holder).
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}/{}/{nanos:08x}", std::process::id())
}

/// The coordination of this Ferry's fills: the engine, the lease time, and the store to watch while
/// another replica fills.
#[derive(Clone)]
pub struct Coordination {
    engine: Arc<dyn Coordinator>,
    lease_time: Duration,
    /// The longest a fill waits for another replica's: that replica's own fetch timeout, and two lease
    /// times for a takeover.
    max_wait: Duration,
    store: Option<Arc<dyn ModuleStore>>,
}

impl fmt::Debug for Coordination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coordination")
            .field("engine", &self.engine)
            .field("lease_time", &self.lease_time)
            .finish_non_exhaustive()
    }
}

/// The first wait between two looks at the store for a version another replica fills; doubled up to
/// [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(25);
const POLL_MAX: Duration = Duration::from_secs(1);

impl Coordination {
    /// One Ferry: fills run as they always did.
    pub fn local() -> Coordination {
        Coordination {
            engine: Arc::new(LocalCoordinator),
            lease_time: Duration::from_secs(30),
            max_wait: Duration::ZERO,
            store: None,
        }
    }

    /// Fills of canonical versions take a lease of `engine` for `lease_time`, and wait for `store` to show
    /// a version another replica fills, at most `fetch_timeout` and two lease times.
    pub fn new(
        engine: Arc<dyn Coordinator>,
        lease_time: Duration,
        fetch_timeout: Duration,
        store: Arc<dyn ModuleStore>,
    ) -> Coordination {
        Coordination {
            engine,
            lease_time,
            max_wait: fetch_timeout + 2 * lease_time,
            store: Some(store),
        }
    }

    /// Runs `fill` (the fetch and store of `module@query`) as the one fill of the version across the
    /// replicas, handing it the lease's [`Fence`] (`None` when it holds no lease), which its save passes
    /// to the store so that the version is made visible only while the lease is still this Ferry's: with the version's lease held (renewed every third of the lease time while it runs),
    /// or, when another replica holds it, by waiting until the version is visible in the store, taking
    /// the fill over if that replica's lease runs out first. A query (`master`, `latest`) names no version
    /// yet and is filled as before; so is everything under `local`. Generic over the fill's error, which
    /// says a coordination or storage failure in its own terms (the proxy's `FillError`), so that this
    /// module does not reach back into the filler.
    pub async fn exclusive_fill<E, F>(
        &self,
        module: &ModulePath,
        query: &str,
        fill: impl FnOnce(Option<Arc<Fence>>) -> F,
    ) -> Result<Version, E>
    where
        E: From<CoordinationError> + From<StorageError>,
        F: Future<Output = Result<Version, E>>,
    {
        let (Some(store), Ok(version)) = (&self.store, Version::new(query)) else {
            return fill(None).await;
        };
        let key = LeaseKey {
            module: module.clone(),
            version,
        };
        let started = Instant::now();
        let mut poll = POLL_FIRST;
        loop {
            let acquired = self.engine.acquire(&key, self.lease_time).await;
            let expires_in = match acquired.map_err(E::from)? {
                Acquired::Lease(lease) => return self.hold(store, lease, fill).await,
                Acquired::HeldElsewhere { expires_in } => expires_in,
            };
            tracing::debug!(%key, ?expires_in, "another replica fills this version; waiting for it");
            // Look at the store until the version shows or the holder's lease may have run out.
            let look_again = Instant::now() + expires_in;
            loop {
                if store.has_zip(&key.module, &key.version).await? {
                    return Ok(key.version);
                }
                if started.elapsed() > self.max_wait {
                    return Err(E::from(CoordinationError::new(format!(
                        "another replica has held the lease of {key} for over {:?} without storing it; try again later",
                        self.max_wait
                    ))));
                }
                if Instant::now() >= look_again {
                    break;
                }
                tokio::time::sleep(poll.min(look_again - Instant::now())).await;
                poll = (poll * 2).min(POLL_MAX);
            }
        }
    }

    /// Runs `work` (a removal: a delete, a block, a collection) holding the version's lease, so that it never
    /// removes a version a replica is filling; `Ok(None)` at once, without running it, while another
    /// replica holds the lease. Removals are short: the lease is not renewed.
    pub async fn try_exclusive<T, F>(
        &self,
        module: &ModulePath,
        version: &Version,
        work: impl FnOnce() -> F,
    ) -> Result<Option<T>, CoordinationError>
    where
        F: Future<Output = T>,
    {
        let key = LeaseKey {
            module: module.clone(),
            version: version.clone(),
        };
        let lease = match self.engine.acquire(&key, self.lease_time).await? {
            Acquired::Lease(lease) => lease,
            Acquired::HeldElsewhere { .. } => return Ok(None),
        };
        let done = work().await;
        if let Err(e) = self.engine.release(&lease, false).await {
            tracing::warn!(%key, error = %e, "could not release the lease");
        }
        Ok(Some(done))
    }

    /// The fill with the lease held: renewed in the background, fenced before the version is visible,
    /// released when the fill ends (also when it is cancelled).
    async fn hold<E, F>(
        &self,
        store: &Arc<dyn ModuleStore>,
        lease: Lease,
        fill: impl FnOnce(Option<Arc<Fence>>) -> F,
    ) -> Result<Version, E>
    where
        E: From<CoordinationError> + From<StorageError>,
        F: Future<Output = Result<Version, E>>,
    {
        let fence = Arc::new(Fence {
            engine: self.engine.clone(),
            lease: Arc::new(lease),
            time: self.lease_time,
        });
        let held = Held {
            fence: fence.clone(),
            renewal: tokio::spawn(renew(fence.clone())),
            released: false,
        };
        // Stored by another replica between this one's miss and its lease: nothing to fetch.
        let result = match store
            .has_zip(&fence.lease.key.module, &fence.lease.key.version)
            .await
        {
            Ok(true) => Ok(fence.lease.key.version.clone()),
            Ok(false) => fill(Some(fence.clone())).await,
            Err(e) => Err(e.into()),
        };
        held.release(result.is_ok()).await;
        result
    }
}

/// A held lease and its renewal task; released on drop (a cancelled fill) in the background.
struct Held {
    fence: Arc<Fence>,
    renewal: tokio::task::JoinHandle<()>,
    released: bool,
}

impl Held {
    async fn release(mut self, visible: bool) {
        self.released = true;
        self.renewal.abort();
        let lease = &self.fence.lease;
        if let Err(e) = self.fence.engine.release(lease, visible).await {
            // It expires by itself.
            tracing::warn!(key = %lease.key, error = %e, "could not release the lease");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewal.abort();
        // A cancelled fill (shutdown): the lease is given up in the background if the runtime still
        // runs, else it expires by itself.
        if !self.released
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let fence = self.fence.clone();
            runtime.spawn(async move {
                let _ = fence.engine.release(&fence.lease, false).await;
            });
        }
    }
}

/// Renews the lease every third of its time while the fill runs: two renewals can fail (or be slow)
/// before it expires.
async fn renew(fence: Arc<Fence>) {
    let every = fence.time / 3;
    loop {
        tokio::time::sleep(every).await;
        match fence.engine.renew(&fence.lease, fence.time).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(key = %fence.lease.key, "the lease was taken over by another replica; this fill will not publish");
                return;
            }
            Err(e) => {
                tracing::warn!(key = %fence.lease.key, error = %e, "could not renew the lease; trying again")
            }
        }
    }
}

/// The fencing check of one held lease, handed to the fill that holds it: its save passes it to the store
/// ([`ModuleStoreExt::save_guarded`]), which asks it just before the version becomes visible.
pub struct Fence {
    engine: Arc<dyn Coordinator>,
    lease: Arc<Lease>,
    time: Duration,
}

impl Fence {
    /// Whether this is the lease of `module@version`: a fill's save of another version is not fenced.
    pub fn covers(&self, module: &ModulePath, version: &Version) -> bool {
        self.lease.key.module == *module && self.lease.key.version == *version
    }
}

#[async_trait]
impl VisibilityGuard for Fence {
    async fn before_visible(&self) -> Result<(), StorageError> {
        let key = &self.lease.key;
        match self.engine.renew(&self.lease, self.time).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(StorageError::Unavailable(Failure::new(
                format!(
                    "this replica's lease of {key} was taken over by another replica, which publishes it"
                ),
                CoordinationError::new("lease lost"),
            ))),
            Err(e) => Err(StorageError::Unavailable(Failure::new(
                format!("cannot confirm the lease of {key} before publishing it: {e}"),
                e,
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_storage::{StorageConfig, VersionFiles};

    /// Grants every lease; each renewal answers `renews` (false: the lease was taken over).
    #[derive(Debug)]
    struct Engine {
        renews: bool,
    }

    #[async_trait]
    impl Coordinator for Engine {
        async fn acquire(
            &self,
            key: &LeaseKey,
            _: Duration,
        ) -> Result<Acquired, CoordinationError> {
            Ok(Acquired::Lease(Lease::new(key.clone(), "1".into(), None)))
        }
        async fn renew(&self, _: &Lease, _: Duration) -> Result<bool, CoordinationError> {
            Ok(self.renews)
        }
        async fn release(&self, _: &Lease, _: bool) -> Result<(), CoordinationError> {
            Ok(())
        }
    }

    #[derive(Debug)]
    enum Failed {
        Coordination,
        Storage(StorageError),
    }
    impl From<CoordinationError> for Failed {
        fn from(_: CoordinationError) -> Failed {
            Failed::Coordination
        }
    }
    impl From<StorageError> for Failed {
        fn from(e: StorageError) -> Failed {
            Failed::Storage(e)
        }
    }

    /// A fill through `exclusive_fill` that saves with the fence it is handed.
    async fn fill_with(renews: bool) -> (Result<Version, Failed>, bool) {
        let store = StorageConfig::Memory.open().unwrap();
        let coordination = Coordination::new(
            Arc::new(Engine { renews }),
            Duration::from_secs(30),
            Duration::from_secs(30),
            store.clone(),
        );
        let module = ModulePath::new("example.com/fenced").unwrap();
        let version = Version::new("v1.0.0").unwrap();
        let fill = |fence: Option<Arc<Fence>>| {
            let (store, module, version) = (store.clone(), module.clone(), version.clone());
            async move {
                let fence = fence.expect("a lease is held");
                assert!(fence.covers(&module, &version));
                let files = VersionFiles {
                    info: bytes::Bytes::from_static(br#"{"Version":"v1.0.0"}"#),
                    go_mod: bytes::Bytes::from_static(b"module example.com/fenced\n"),
                    zip: None,
                };
                let guard = fence.as_ref() as &dyn VisibilityGuard;
                store
                    .save_version(&module, &version, files, Some(guard))
                    .await?;
                Ok(version)
            }
        };
        let result = coordination.exclusive_fill(&module, "v1.0.0", fill).await;
        let visible = store.exists(&module, &version).await.unwrap();
        (result, visible)
    }

    #[tokio::test]
    async fn a_fill_whose_lease_holds_makes_the_version_visible() {
        let (result, visible) = fill_with(true).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(visible);
    }

    #[tokio::test]
    async fn a_fill_whose_lease_was_taken_over_does_not_make_the_version_visible() {
        let (result, visible) = fill_with(false).await;
        assert!(
            matches!(&result, Err(Failed::Storage(StorageError::Unavailable(_)))),
            "{result:?}"
        );
        assert!(!visible, "a replica whose lease was lost publishes nothing");
    }
}
