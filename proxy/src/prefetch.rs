//! Fetching the next requirements before they are asked for. A client resolving a module graph asks for a
//! `.mod`, reads its `require` lines, then asks for each of those `.mod` files: one upstream round trip per
//! level of the graph, each one a wait. When Ferry fills a `.mod` for a client, it starts filling the
//! `.mod` (and `.info`) of every version it requires at once, in the background, so that the client's next
//! requests find them stored or in flight (they join the fill: single flight).
//!
//! Bounded every way:
//! - **depth**: a prefetched `.mod` is expanded again only `depth - 1` more levels on its own; the last level
//!   waits until a client follows (asks for one of those `.mod` files), which starts the next levels.
//!   Nobody follows within [`FOLLOW_WITHIN`]: dropped.
//! - **concurrency**: at most `max_concurrent` prefetch fills at once (they share the fill slots clients
//!   wait on, so a graph never takes them all), and at most [`MAX_STARTED`] versions started and not done.
//! - **per client**: at most `per_client` versions a minute started on behalf of one client address.
//!
//! Only versions that would be filled on request anyway are prefetched: not stored, not blocked, of a
//! module whose download mode fetches, and without a version rule (a cooldown judges what clients ask for,
//! not guesses); and only the requirements of a go.mod whose graph the go command does not prune (no `go`
//! directive, or one before 1.17): below a pruned module it reads no requirement's go.mod that the main
//! module does not name itself. Warm requests pay one atomic load when nothing waits to be followed.
//!
//! Two more follow what a client shows it does (`clients`): the zips of the versions whose `.mod` it
//! asked for, once it asks for a zip (`prefetch.zips`); and the `.info` of the requirements of the pruned
//! go.mod files it read (its build list's modules whose go.mod it never asks for), once it asks for one of
//! those: it is listing its build list (`go list -m -json all`, `go mod download all`).
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use ferry_module::{ModulePath, Version, prunes_graph, requirements};
use ferry_policy::Policy;
use ferry_storage::{ModuleStore, ModuleStoreExt};
use tokio::sync::Semaphore;

use crate::action::{Action, Kind, action};
use crate::filler::{Filled, Filler, Need};
use crate::ledger::{Ledger, Status};
use crate::metrics::metrics;

mod clients;
use clients::{Client, MAX_ASKED};

/// How long a prefetched `.mod` at the last level waits for a client to ask for it.
const FOLLOW_WITHIN: Duration = Duration::from_secs(120);
/// The most versions waiting to be followed, or started and not done.
const MAX_WAITING: usize = 10_000;
const MAX_STARTED: usize = 10_000;
/// The window of the per-client budget.
const CLIENT_WINDOW: Duration = Duration::from_secs(60);

/// How far and how fast requirements are fetched ahead (`[prefetch]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefetchSettings {
    /// Levels of requirements fetched ahead of what a client asked for; 0 turns prefetching off.
    pub depth: u32,
    /// Prefetch fills running at once.
    pub max_concurrent: usize,
    /// Versions a minute prefetched on behalf of one client address.
    pub per_client: u32,
    /// Whose zips are fetched ahead: of the versions whose `.mod` a client asked for.
    pub zips: ZipPrefetch,
}

/// When the zip of a version whose `.mod` a client asked for is fetched before it is asked (`prefetch.zips`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipPrefetch {
    /// Never.
    Off,
    /// For a client that downloads zips (a build, `go mod download`): once it asks for a zip, the zips of
    /// the versions whose `.mod` it asked for in the two minutes before are fetched, and while it keeps
    /// asking for zips, the zip of each `.mod` it asks for. A client that only resolves (`go list -m all`,
    /// `go mod graph`, a dependency bot) asks for no zip and has none fetched.
    Builders,
    /// For every `.mod` a client asks for.
    All,
}

impl ZipPrefetch {
    /// `builders`, `all` or `off` (`true` and `false` as `all` and `off`, the switch it was first).
    pub fn parse(text: &str) -> Result<ZipPrefetch, String> {
        match text {
            "builders" => Ok(ZipPrefetch::Builders),
            "all" | "true" => Ok(ZipPrefetch::All),
            "off" | "false" => Ok(ZipPrefetch::Off),
            _ => Err(format!(
                "{text:?} is not one of builders, all, off; write e.g. \"builders\" (the zips of clients that download zips)"
            )),
        }
    }
}

impl std::fmt::Display for ZipPrefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ZipPrefetch::Off => "off",
            ZipPrefetch::Builders => "builders",
            ZipPrefetch::All => "all",
        })
    }
}

impl Default for PrefetchSettings {
    fn default() -> Self {
        PrefetchSettings {
            depth: 1,
            max_concurrent: 8,
            per_client: 5000,
            zips: ZipPrefetch::Builders,
        }
    }
}

/// The prefetcher of one proxy (present when it has an upstream and `depth` > 0).
#[derive(Clone)]
pub(crate) struct Prefetcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Prefetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetcher")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

struct Shared {
    settings: PrefetchSettings,
    filler: Arc<Filler>,
    store: Arc<dyn ModuleStore>,
    ledger: Arc<Ledger>,
    policy: Arc<ArcSwap<Policy>>,
    slots: Semaphore,
    /// Entries in `unfollowed`: the warm path's one check.
    waiting: AtomicUsize,
    /// Prefetched `.mod` files of the last level, and when they were stored.
    unfollowed: Mutex<HashMap<(ModulePath, Version), Instant>>,
    /// Versions started and not done: never twice at once.
    started: Mutex<HashSet<(ModulePath, Version)>>,
    /// Per client address: the window's start and the versions started in it.
    clients: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// What each client that asked for a `.mod` Ferry did not have is doing: downloading zips, listing its
    /// build list (see `clients`).
    clients_seen: Mutex<HashMap<Option<IpAddr>, Client>>,
    /// `.mod` files in `clients_seen` waiting for their client's first zip: a zip request's one check when
    /// none.
    unzipped: AtomicUsize,
}

impl Prefetcher {
    pub fn new(
        settings: PrefetchSettings,
        filler: Arc<Filler>,
        store: Arc<dyn ModuleStore>,
        ledger: Arc<Ledger>,
        policy: Arc<ArcSwap<Policy>>,
    ) -> Option<Prefetcher> {
        if settings.depth == 0 {
            return None;
        }
        let slots = Semaphore::new(settings.max_concurrent.max(1));
        Some(Prefetcher {
            shared: Arc::new(Shared {
                settings,
                filler,
                store,
                ledger,
                policy,
                slots,
                waiting: AtomicUsize::new(0),
                unfollowed: Mutex::new(HashMap::new()),
                started: Mutex::new(HashSet::new()),
                clients: Mutex::new(HashMap::new()),
                clients_seen: Mutex::new(HashMap::new()),
                unzipped: AtomicUsize::new(0),
            }),
        })
    }

    /// A client's `.mod` was filled from the upstream (or found fetched ahead): its requirements are fetched
    /// ahead (`go_mod`: the file, when the fill has it in hand).
    pub fn filled(
        &self,
        module: &ModulePath,
        version: &Version,
        go_mod: Option<Bytes>,
        client: Option<IpAddr>,
    ) {
        self.mod_asked(module, version, client);
        self.expand(
            module,
            version,
            go_mod,
            self.shared.settings.depth,
            client,
            true,
        );
    }

    /// A client asked for the `.mod` of a version Ferry did not have stored (filled, or fetched ahead and
    /// followed): noted, and its zip fetched now, later, or never (`prefetch.zips`).
    fn mod_asked(&self, module: &ModulePath, version: &Version, client: Option<IpAddr>) {
        let now = Instant::now();
        let fetch_zip = {
            let mut clients = self.clients_seen(now);
            let seen = self.seen(&mut clients, client, now);
            seen.read(module, version);
            self.zip_now(seen, module, version, now)
        };
        if fetch_zip {
            self.fetch_zip(module, version, client);
        }
    }

    /// Whether the zip of a version in the client's graph is to be fetched now (`prefetch.zips`); with
    /// `builders`, when it does not download zips yet, noted for when it does.
    fn zip_now(
        &self,
        seen: &mut Client,
        module: &ModulePath,
        version: &Version,
        now: Instant,
    ) -> bool {
        match self.shared.settings.zips {
            ZipPrefetch::Off => false,
            ZipPrefetch::All => true,
            ZipPrefetch::Builders if seen.building(now) => seen.zipped(module, version),
            ZipPrefetch::Builders => {
                if seen.unzipped.len() < MAX_ASKED {
                    seen.unzipped.push((module.clone(), version.clone(), now));
                    self.shared.unzipped.fetch_add(1, Ordering::AcqRel);
                }
                false
            }
        }
    }

    /// The clients seen, those no longer doing anything forgotten when there are too many.
    fn clients_seen(
        &self,
        now: Instant,
    ) -> std::sync::MutexGuard<'_, HashMap<Option<IpAddr>, Client>> {
        let mut clients = self.shared.clients_seen.lock().unwrap();
        if clients.len() >= MAX_WAITING {
            clients.retain(|_, seen| seen.active(now));
            let unzipped = clients.values().map(|seen| seen.unzipped.len()).sum();
            self.shared.unzipped.store(unzipped, Ordering::Release);
        }
        clients
    }

    /// What is known of this client, which asks for something now (see `Client::touch`).
    fn seen<'a>(
        &self,
        clients: &'a mut HashMap<Option<IpAddr>, Client>,
        client: Option<IpAddr>,
        now: Instant,
    ) -> &'a mut Client {
        let seen = clients.entry(client).or_default();
        let forgotten = seen.touch(now);
        self.shared.unzipped.fetch_sub(forgotten, Ordering::AcqRel);
        seen
    }

    /// A client was answered a zip (`ZipPrefetch::Builders`): it downloads zips, so the zips of the versions
    /// whose `.mod` it asked for in the last two minutes are fetched, and from now on each one's as it asks.
    /// One atomic load when no `.mod` waits for its client's first zip.
    pub fn zip_asked(&self, module: &ModulePath, version: &Version, client: Option<IpAddr>) {
        if self.shared.unzipped.load(Ordering::Acquire) == 0 {
            return;
        }
        let now = Instant::now();
        let fetched = {
            let mut clients = self.shared.clients_seen.lock().unwrap();
            let Some(seen) = clients.get_mut(&client) else {
                return;
            };
            let (taken, due) = seen.start_building(module, version, now);
            self.shared.unzipped.fetch_sub(taken, Ordering::AcqRel);
            due
        };
        for (module, version) in fetched {
            self.fetch_zip(&module, &version, client);
        }
    }

    /// A client's `.info` of a version Ferry did not have was filled. When the version is one of its fringe
    /// (a requirement of a pruned go.mod it read, whose go.mod it never asked for), it is listing its build
    /// list (`go list -m all`, `go mod download all`): the `.info` files of the rest of its fringe are
    /// fetched, of each module the highest version, and while it goes on, each it adds. A client that
    /// builds asks for the `.info` of versions whose `.mod` it asked for first, never of its fringe.
    pub fn info_filled(&self, module: &ModulePath, version: &Version, client: Option<IpAddr>) {
        let now = Instant::now();
        let fetched = {
            let mut clients = self.shared.clients_seen.lock().unwrap();
            let Some(seen) = clients.get_mut(&client) else {
                return;
            };
            if !seen.in_fringe(module, version) {
                return;
            }
            let mut due = seen.start_listing(module, version, now);
            due.push((module.clone(), version.clone()));
            self.in_build_list(seen, due, now)
        };
        self.fetch_listed(fetched, client, Some((module, version)));
    }

    /// The versions of a listing client's fringe fetched for it: its build list's, so their zips are
    /// `go mod download all`'s next (`zip_now`). Each with whether its zip is to be fetched now.
    fn in_build_list(
        &self,
        seen: &mut Client,
        listed: Vec<(ModulePath, Version)>,
        now: Instant,
    ) -> Vec<(ModulePath, Version, bool)> {
        listed
            .into_iter()
            .map(|(m, v)| {
                let zip = self.zip_now(seen, &m, &v, now);
                (m, v, zip)
            })
            .collect()
    }

    /// Fetches the `.info` (but of the one asked for) and, where due, the zip of each listed version.
    fn fetch_listed(
        &self,
        listed: Vec<(ModulePath, Version, bool)>,
        client: Option<IpAddr>,
        asked: Option<(&ModulePath, &Version)>,
    ) {
        for (module, version, zip) in listed {
            if zip {
                self.fetch_zip(&module, &version, client);
            }
            if asked != Some((&module, &version)) {
                self.fetch_info(module, version, client);
            }
        }
    }

    /// The requirements of a pruned go.mod a client read: kept as its fringe until it lists its build list,
    /// fetched at once while it does.
    fn pruned(&self, required: Vec<(ModulePath, Version)>, client: Option<IpAddr>) {
        let now = Instant::now();
        let fetched = {
            let mut clients = self.clients_seen(now);
            let seen = self.seen(&mut clients, client, now);
            if seen.listing(now) {
                let listed = required
                    .into_iter()
                    .filter(|(m, v)| seen.listed(m, v))
                    .collect();
                self.in_build_list(seen, listed, now)
            } else {
                seen.add_to_fringe(required, now);
                Vec::new()
            }
        };
        self.fetch_listed(fetched, client, None);
    }

    /// Fills the `.info` (and `.mod`) of a version of a listing client's fringe.
    fn fetch_info(&self, module: ModulePath, version: Version, client: Option<IpAddr>) {
        if !self.worth_fetching(&module, &version) || !self.start(&module, &version) {
            return;
        }
        if !self.charge(client) {
            self.shared
                .started
                .lock()
                .unwrap()
                .remove(&(module, version));
            metrics().prefetch("over_budget");
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let Some(filled) = this.fill_started(&module, &version, Need::Info).await else {
                return;
            };
            let key = (module, version);
            match filled {
                Ok(_) => metrics().prefetch("fetched"),
                Err(e) => {
                    metrics().prefetch("failed");
                    tracing::debug!(module = %key.0, version = %key.1, error = %e, "prefetching a .info failed");
                }
            }
        });
    }

    /// Fetches the zip of a version a client asked the `.mod` of (`zips`): the go command downloads most of
    /// them next, one at a time.
    fn fetch_zip(&self, module: &ModulePath, version: &Version, client: Option<IpAddr>) {
        if !self.charge(client) {
            metrics().prefetch("over_budget");
            return;
        }
        let this = self.clone();
        let (module, version) = (module.clone(), version.clone());
        tokio::spawn(async move {
            let Ok(_slot) = this.shared.slots.acquire().await else {
                return;
            };
            // After the `.mod` fill has checked and stored the version: the zip's fill then reuses its
            // `.info`, `.mod` and checksum lookup. Started beside it, the two fills each fetched and checked
            // them (gin's graph: 87 lookups where 58 versions needed 58, `benches/README.md`).
            let filler = &this.shared.filler;
            let filled = match filler.fill_metadata(&module, &version, Need::Info).await {
                Ok(_) => filler.fill(&module, version.as_str(), Need::Zip).await,
                Err(e) => Err(e),
            };
            match filled {
                Ok(_) => metrics().prefetch("fetched"),
                Err(e) => {
                    metrics().prefetch("failed");
                    tracing::debug!(%module, %version, error = %e, "prefetching a zip failed");
                }
            }
        });
    }

    /// A client was answered a stored `.mod`: if a prefetch stored it and nobody followed yet, the next
    /// levels start now. One atomic load when nothing waits.
    pub fn followed(&self, module: &ModulePath, version: &Version, client: Option<IpAddr>) {
        if self.shared.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let taken = {
            let mut unfollowed = self.shared.unfollowed.lock().unwrap();
            let taken = unfollowed.remove(&(module.clone(), version.clone()));
            self.shared
                .waiting
                .store(unfollowed.len(), Ordering::Release);
            taken
        };
        if taken.is_some_and(|at| at.elapsed() < FOLLOW_WITHIN) {
            metrics().prefetch("followed");
            self.filled(module, version, None, client);
        }
    }

    fn expand(
        &self,
        module: &ModulePath,
        version: &Version,
        go_mod: Option<Bytes>,
        depth: u32,
        client: Option<IpAddr>,
        read_by_client: bool,
    ) {
        let this = self.clone();
        let (module, version) = (module.clone(), version.clone());
        tokio::spawn(async move {
            let go_mod = match go_mod {
                Some(go_mod) => go_mod,
                None => match this.shared.store.go_mod(&module, &version).await {
                    Ok(go_mod) => go_mod,
                    Err(_) => return,
                },
            };
            let text = String::from_utf8_lossy(&go_mod);
            // Below a module at go 1.17 or later the go command reads its requirements' go.mod files only
            // where the main module (or an unpruned module) requires them too, and those it asks for itself:
            // fetching them ahead cost a nats-server graph 2.4x the upstream requests for no time saved.
            if prunes_graph(&text) {
                metrics().prefetch("pruned");
                if read_by_client {
                    this.pruned(requirements(&text), client);
                }
                return;
            }
            for (required, at) in requirements(&text) {
                if !this.worth_fetching(&required, &at) {
                    continue;
                }
                if !this.charge(client) {
                    metrics().prefetch("over_budget");
                    break;
                }
                if !this.start(&required, &at) {
                    continue;
                }
                let this = this.clone();
                tokio::spawn(async move { this.fetch(required, at, depth, client).await });
            }
        });
    }

    /// Whether a request for this version would fill it: not stored, not blocked, its mode fetches, no
    /// version rule.
    fn worth_fetching(&self, module: &ModulePath, version: &Version) -> bool {
        if self
            .shared
            .ledger
            .status(module, version)
            .is_some_and(|s| matches!(s, Status::Present | Status::Blocked(_)))
        {
            return false;
        }
        let policy = self.shared.policy.load();
        if policy.versions(module.as_str()).is_some() {
            return false;
        }
        let mode = policy.decide(module.as_str()).mode;
        matches!(
            action(mode, Kind::File, Some(()), None),
            Action::Upstream(()) | Action::Queue(())
        )
    }

    /// Takes one version of the client's budget; false when it is spent for this minute.
    fn charge(&self, client: Option<IpAddr>) -> bool {
        let Some(client) = client else { return true };
        let mut clients = self.shared.clients.lock().unwrap();
        if clients.len() > MAX_WAITING {
            clients.retain(|_, (since, _)| since.elapsed() < CLIENT_WINDOW);
        }
        let (since, count) = clients.entry(client).or_insert((Instant::now(), 0));
        if since.elapsed() >= CLIENT_WINDOW {
            *since = Instant::now();
            *count = 0;
        }
        *count += 1;
        *count <= self.shared.settings.per_client
    }

    /// Marks the version started; false when it already is, or too many are.
    fn start(&self, module: &ModulePath, version: &Version) -> bool {
        let mut started = self.shared.started.lock().unwrap();
        started.len() < MAX_STARTED && started.insert((module.clone(), version.clone()))
    }

    /// Fills the metadata of a version marked started (`start`), in a prefetch slot, and unmarks it; `None`
    /// when shutting down.
    async fn fill_started(
        &self,
        module: &ModulePath,
        version: &Version,
        need: Need,
    ) -> Option<Result<Filled, crate::filler::FillError>> {
        let filled = match self.shared.slots.acquire().await {
            Ok(_slot) => Some(
                self.shared
                    .filler
                    .fill_metadata(module, version, need)
                    .await,
            ),
            Err(_) => None,
        };
        let key = (module.clone(), version.clone());
        self.shared.started.lock().unwrap().remove(&key);
        filled
    }

    async fn fetch(
        &self,
        module: ModulePath,
        version: Version,
        depth: u32,
        client: Option<IpAddr>,
    ) {
        let Some(filled) = self.fill_started(&module, &version, Need::Mod).await else {
            return;
        };
        let go_mod = match filled {
            Ok(Filled::Fetched(fetched)) => Some(fetched.go_mod.clone()),
            Ok(Filled::Stored(_) | Filled::Streaming(..)) => None,
            Err(e) => {
                metrics().prefetch("failed");
                tracing::debug!(%module, %version, error = %e, "prefetch failed");
                return;
            }
        };
        metrics().prefetch("fetched");
        if depth > 1 {
            self.expand(&module, &version, go_mod, depth - 1, client, false);
            return;
        }
        let mut unfollowed = self.shared.unfollowed.lock().unwrap();
        if unfollowed.len() >= MAX_WAITING {
            unfollowed.retain(|_, at| at.elapsed() < FOLLOW_WITHIN);
        }
        if unfollowed.len() < MAX_WAITING {
            unfollowed.insert((module, version), Instant::now());
        }
        self.shared
            .waiting
            .store(unfollowed.len(), Ordering::Release);
    }
}
