//! The GOPROXY protocol over a module store: routing and the handlers of each endpoint. What a request does
//! on a miss is decided once by [`action`](crate::action::action) from the module's download mode; the
//! handlers here carry that action out, and every outcome becomes an [`Answer`] (see `answer`).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use ferry_module::{ModulePath, Version, VersionQuery, escape, latest_of};
use ferry_policy::{Decision, Mode, Policy};
use ferry_storage::{ByteRange, ModuleStore, ModuleStoreExt, StorageError, ZipPart, ZipStream};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::access::Rules;
use crate::action::{Action, Declined, Kind, action};
use crate::answer::{self, Answer, IMMUTABLE, JSON, SHORT_LIVED, TEXT, UNVERIFIED, matches_etag};
use crate::audit::{self, Audit, Caller};
use crate::body::{self, Body};
use crate::cache::{CacheSettings, Caches};
use crate::clock::Clock;
use crate::fair_use::Requester;
use crate::filler::{FillError, Filled, Filler, Need};
use crate::ledger::{Ledger, LedgerSettings, Recorded, Status};
use crate::prefetch::Prefetcher;
use crate::request::{CachedOnly, CatalogPage, Endpoint, FeedPage, Refusal, Route};
use crate::sumdb::SumDbs;
use crate::version_gate::Gate;
use crate::vuln::VulnDb;

/// The proxy: answers GOPROXY requests from its store and, on a miss, obeys its download policy.
#[derive(Debug)]
pub struct Proxy {
    store: Arc<dyn ModuleStore>,
    /// None when no mode can fetch: a miss that would fetch is then answered 404. Shared with the caches'
    /// upstream calls, which run in tasks of their own.
    upstream: Option<Arc<Filler>>,
    /// The upstream's list and query answers, and the small immutable files, kept in memory.
    caches: Caches,
    /// Replaced whole on reload (SIGHUP); each request decides with the policy in force when it started.
    policy: Arc<ArcSwap<Policy>>,
    /// The locked work dir when no fetcher holds it (a policy that never fetches): the lock lives as long.
    pub(crate) work_dir: Option<ferry_fetcher::WorkDir>,
    /// The last write check of the store, for `/readyz`.
    writable: WriteCheck,
    /// The checksum databases relayed under `/sumdb/` (none unless set with [`Proxy::with_sumdbs`]).
    sumdbs: SumDbs,
    /// What the store holds and refuses: the catalog, the index, blocks, accesses.
    ledger: Arc<Ledger>,
    /// The time version rules judge ages by.
    clock: Clock,
    /// Fetches the requirements of filled `.mod` files ahead (with an upstream, unless turned off).
    prefetch: Option<Prefetcher>,
    /// Who may read which modules (none: everyone authentication let in reads everything); replaced whole
    /// on reload (SIGHUP), shared with the admin API.
    access: Arc<ArcSwap<Rules>>,
    /// The audit trail (off unless `audit_log`).
    audit: Audit,
    /// The Go vulnerability database's copy under `/vuln/` (off unless set with [`Proxy::with_vuln`]).
    vuln: Arc<VulnDb>,
    /// The pages for people (`status`), when given (`build_proxy` does).
    pages: Option<Arc<dyn Pages>>,
}

/// The pages for people, given to the proxy by `build_proxy` (`status::StatusPages`): the proxy names no
/// page code, which reads what the layers put in a request (its identity, whether it came over HTTPS).
pub(crate) trait Pages: Send + Sync + std::fmt::Debug {
    /// The answer to a page endpoint (`Endpoint::is_page`); `admin` on the admin listener.
    fn answer<'a>(
        &'a self,
        proxy: &'a Proxy,
        request: &'a http::request::Parts,
        endpoint: &'a Endpoint,
        admin: bool,
    ) -> futures::future::BoxFuture<'a, Answer>;
}

/// The store's write check, done at most every [`WriteCheck::EVERY`]: each one writes and fsyncs a file.
#[derive(Debug, Default)]
struct WriteCheck {
    last: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

impl WriteCheck {
    const EVERY: Duration = Duration::from_secs(5);

    async fn check(&self, store: &dyn ModuleStore) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, result)) = last.as_ref()
            && at.elapsed() < Self::EVERY
        {
            return result.clone();
        }
        let result = match store.check().await {
            Ok(()) => store.check_writable().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        *last = Some((std::time::Instant::now(), result.clone()));
        result
    }
}

/// Why a new policy was not put in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the new download policy fetches from the upstream, but Ferry started with a policy that never fetches, so it has no upstream (the go command was not set up); restart Ferry to use this policy"
)]
pub struct NoUpstream;

/// Which file of a version a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionFile {
    Info,
    Mod,
    Zip,
}

impl VersionFile {
    fn extension(self) -> &'static str {
        match self {
            VersionFile::Info => "info",
            VersionFile::Mod => "mod",
            VersionFile::Zip => "zip",
        }
    }
}

/// What a module request does: its module's policy decision (its rule names the reason of a 404 or where a
/// redirect goes; it is read through `Deref`), and whether the request asks for stored modules only
/// (`/cached-only/`, `Disable-Module-Fetch`). [`Proxy::action`] reads both.
struct Decided<'a> {
    decision: Decision<'a>,
    cached_only: Option<CachedOnly>,
}

impl<'a> std::ops::Deref for Decided<'a> {
    type Target = Decision<'a>;

    fn deref(&self) -> &Decision<'a> {
        &self.decision
    }
}

/// What a request missed in the store, for the answers that explain a miss.
struct Miss<'a> {
    module: &'a ModulePath,
    /// The canonical version or the query asked for.
    query: &'a str,
    /// The request's path as the protocol spells it (escaped, without the leading `/`), for redirects.
    escaped_path: String,
}

impl Proxy {
    /// A proxy that serves its store only: every miss is a 404.
    pub fn new(store: Arc<dyn ModuleStore>) -> Proxy {
        let policy = Policy::single(Mode::None, None).expect("the none mode needs no download URL");
        Proxy::with_upstream(store, None, policy)
    }

    /// A proxy that fills its store through `upstream` as `policy` says. The store is recorded in a ledger
    /// of its own (its writes through this proxy are indexed; `upstream`'s own saves are not, unless it
    /// writes through a store recorded in the same ledger: [`Proxy::with_ledger`]).
    pub fn with_upstream(
        store: Arc<dyn ModuleStore>,
        upstream: Option<Filler>,
        policy: Policy,
    ) -> Proxy {
        let ledger = Arc::new(Ledger::new(store.records(), LedgerSettings::default()));
        let store: Arc<dyn ModuleStore> = Arc::new(Recorded::new(store, ledger.clone()));
        Proxy::with_ledger(store, ledger, upstream, policy)
    }

    /// A proxy over `store`, already recorded in `ledger` (see `build_proxy`).
    pub fn with_ledger(
        store: Arc<dyn ModuleStore>,
        ledger: Arc<Ledger>,
        upstream: Option<Filler>,
        policy: Policy,
    ) -> Proxy {
        Proxy {
            ledger,
            store,
            upstream: upstream.map(Arc::new),
            caches: Caches::new(&CacheSettings::default()),
            policy: Arc::new(ArcSwap::from_pointee(policy)),
            work_dir: None,
            writable: WriteCheck::default(),
            sumdbs: SumDbs::none(),
            clock: Clock::system(),
            prefetch: None,
            access: Arc::new(ArcSwap::from_pointee(Rules::none())),
            audit: Audit::off(),
            vuln: Arc::new(VulnDb::off()),
            pages: None,
        }
    }

    /// The same proxy fetching the requirements of the `.mod` files it fills before they are asked for
    /// (see `prefetch`); nothing without an upstream or with `depth` 0.
    pub fn with_prefetch(mut self, settings: crate::prefetch::PrefetchSettings) -> Proxy {
        self.prefetch = self.upstream.as_ref().and_then(|filler| {
            Prefetcher::new(
                settings,
                filler.clone(),
                self.store.clone(),
                self.ledger.clone(),
                self.policy.clone(),
            )
        });
        self
    }

    /// The same proxy judging version ages by `clock` (see [`Clock`]).
    pub fn with_clock(mut self, clock: Clock) -> Proxy {
        self.clock = clock;
        self
    }

    /// The same proxy obeying these access rules and writing to this audit trail (see `docs/access.md`).
    pub fn with_access(mut self, access: Arc<Rules>, audit: Audit) -> Proxy {
        self.access = Arc::new(ArcSwap::new(access));
        self.audit = audit;
        self
    }

    /// The access rules in force: [`Rules::may_read`] is the decision every module list obeys.
    pub fn access(&self) -> Arc<Rules> {
        self.access.load_full()
    }

    /// Puts new access rules in force for the requests that start from now on (and the admin API's).
    pub fn set_access(&self, access: Rules) {
        self.access.store(Arc::new(access));
    }

    /// The audit trail.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The same proxy serving `pages` (the status page, search, module pages).
    pub(crate) fn with_pages(mut self, pages: Arc<dyn Pages>) -> Proxy {
        self.pages = Some(pages);
        self
    }

    /// The pages it serves, when given.
    pub(crate) fn pages(&self) -> Option<&Arc<dyn Pages>> {
        self.pages.as_ref()
    }

    /// The fills, when this proxy fills its store.
    pub(crate) fn filler(&self) -> Option<&Filler> {
        self.upstream.as_deref()
    }

    /// The checksum databases relayed.
    pub(crate) fn sumdbs(&self) -> &SumDbs {
        &self.sumdbs
    }

    /// The same proxy with caches of these sizes and lifetimes (see `docs/operations.md`, "Caching").
    pub fn with_cache(mut self, settings: &CacheSettings) -> Proxy {
        self.caches = Caches::new(settings);
        self
    }

    /// The same proxy relaying these checksum databases (see `docs/restricted-networks.md`, "The checksum
    /// database relay").
    pub fn with_sumdbs(mut self, sumdbs: SumDbs) -> Proxy {
        self.sumdbs = sumdbs;
        self
    }

    /// The same proxy serving this vulnerability database copy under `/vuln/` (see `docs/upstream.md`,
    /// "Vulnerability database").
    pub fn with_vuln(mut self, vuln: VulnDb) -> Proxy {
        self.vuln = Arc::new(vuln);
        self
    }

    /// The vulnerability database's copy (its schedule runs beside the server: `server::run`).
    pub fn vuln(&self) -> &Arc<VulnDb> {
        &self.vuln
    }

    pub fn store(&self) -> &Arc<dyn ModuleStore> {
        &self.store
    }

    /// The store's ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The admin operations on this proxy's store, with the retention policy `gc`: removals take the
    /// leases this proxy's fills take.
    pub fn admin(&self, gc: crate::admin::gc::GcSettings) -> crate::admin::Admin {
        let coordination = self
            .upstream
            .as_ref()
            .map_or_else(crate::coordination::Coordination::local, |filler| {
                filler.coordination().clone()
            });
        crate::admin::Admin::new(self.store.clone(), self.ledger.clone(), coordination, gc)
            .with_access(self.access.clone(), self.audit.clone())
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Puts a new policy in force for the requests that start from now on. Refused when the policy has a
    /// mode that fetches but this proxy has no upstream (it started with a policy that never fetches, so the
    /// `go` command was never set up): those modes would answer every miss with a 404.
    pub fn set_policy(&self, policy: Policy) -> Result<(), NoUpstream> {
        if self.upstream.is_none() && policy.fetches() {
            return Err(NoUpstream);
        }
        self.policy.store(Arc::new(policy));
        Ok(())
    }

    /// Stops background fetching, letting queued fetches finish within `deadline`.
    pub async fn drain(&self, deadline: Duration) {
        if let Some(upstream) = &self.upstream {
            upstream.drain(deadline).await;
        }
    }

    /// Answers one HTTP request. Never fails: every problem becomes a status code with a plain-text reason.
    /// The request's `Route` is the one the routing layer put in its extensions; a request that comes
    /// without one (a `Proxy` called outside `layers::stack`) is routed here.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body> {
        // GET and HEAD have no body to read: only the head is kept across the awaits.
        let (mut request, _) = request.into_parts();
        let answer = match request.method {
            Method::GET | Method::HEAD => {
                let route = match request.extensions.remove::<Route>() {
                    Some(route) => route,
                    None => Route::of(&request.uri, &request.headers, None),
                };
                self.answer(&request, route).await
            }
            _ => Answer::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and HEAD are supported",
            ),
        };
        answer::into_response(answer, &request.method)
    }

    async fn answer(&self, request: &http::request::Parts, route: Route) -> Answer {
        // This Ferry's own fill, come back through an upstream that leads here (a name or a load balancer in
        // front of this Ferry): answered at once, so the fill fails with the reason instead of waiting for
        // itself until its deadline.
        if request
            .headers
            .get(ferry_fetcher::LOOP_HEADER)
            .is_some_and(|token| token.as_bytes() == ferry_fetcher::loop_token().as_bytes())
        {
            return Answer::text(
                StatusCode::LOOP_DETECTED,
                "loop detected: this request is this Ferry's own fill; its upstream leads back to it",
            );
        }
        let endpoint = match route.endpoint {
            Ok(endpoint) => endpoint,
            Err(refusal) => return Answer::from(refusal),
        };
        let caller = Caller::of(&request.extensions, &request.headers);
        if let Some(hidden) = self.refused(&endpoint, &caller) {
            return hidden;
        }
        let wants = Wants::of(request);
        let policy = self.policy.load();
        let decide = |module: &ModulePath| Decided {
            decision: policy.decide(module.as_str()),
            cached_only: route.cached_only,
        };
        let (module, version, file) = match endpoint {
            Endpoint::Index | Endpoint::Search(_) | Endpoint::ModulePage(_) => {
                return match &self.pages {
                    Some(pages) => pages.answer(self, request, &endpoint, false).await,
                    // A proxy made without pages (in tests): what `/` used to say.
                    None if endpoint == Endpoint::Index => Answer::text(
                        StatusCode::OK,
                        "Ferry Go module proxy. Set GOPROXY to this URL.",
                    ),
                    None => Answer::from(Refusal::not_an_endpoint("-/")),
                };
            }
            Endpoint::Healthz => return Answer::text(StatusCode::OK, "ok"),
            Endpoint::Catalog(page) => return self.catalog(&page, caller.identity),
            Endpoint::Feed(page) => return self.feed(&page, caller.identity),
            Endpoint::Readyz => return self.readyz().await,
            // Answered by the metrics layer when this listener serves the metrics (a GET); here, it is no
            // endpoint: a HEAD, or the metrics have a listener of their own (`metrics_listen`).
            Endpoint::Metrics => return Answer::from(Refusal::not_an_endpoint("metrics")),
            // A checksum database is not a module: the download policy does not apply.
            Endpoint::SumDb(request) => return self.sumdbs.answer(&request).await,
            // Neither is the vulnerability database.
            Endpoint::Vuln(path) => return self.vuln.answer(&path, wants.if_none_match).await,
            Endpoint::List(module) => return self.list(&module, &decide(&module)).await,
            Endpoint::Latest(module) => return self.latest(&module, &decide(&module)).await,
            Endpoint::Info(module, VersionQuery::Query(query)) => {
                let requester = wants.requester();
                return self
                    .query_info(
                        &module,
                        &query,
                        &decide(&module),
                        &caller,
                        requester.as_ref(),
                    )
                    .await;
            }
            Endpoint::Info(module, VersionQuery::Canonical(version))
            | Endpoint::Mod(module, version)
            | Endpoint::Zip(module, version)
                if let Some(refused) = self.gate(&policy).answer(&module, &version) =>
            {
                return refused;
            }
            Endpoint::Info(module, VersionQuery::Canonical(version)) => {
                (module, version, VersionFile::Info)
            }
            Endpoint::Mod(module, version) => (module, version, VersionFile::Mod),
            Endpoint::Zip(module, version) => (module, version, VersionFile::Zip),
        };
        // Only the zip: the go command reads the go.mod of every version in the module graph, affected or not.
        if file == VersionFile::Zip
            && let Some(affected) = self.vuln.affected(module.as_str(), version.as_str()).await
        {
            return Answer::vulnerable(&module, &version, &affected.id, &affected.fixed);
        }
        let decision = decide(&module);
        let answer = self
            .version_file(&module, &version, file, &wants, &decision, &caller)
            .await;
        if answer.is_success() {
            self.served(&module, &version, file, &wants, &caller, &answer);
        }
        answer
    }

    /// What a version's file answered with success sets going: the version's last use (the ledger, for
    /// retention), what is fetched ahead for the client, and the audit trail of zips sent.
    fn served(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
        wants: &Wants<'_>,
        caller: &Caller<'_>,
        answer: &Answer,
    ) {
        self.ledger.touch(module, version);
        match (file, &self.prefetch) {
            (VersionFile::Mod, Some(prefetch)) => {
                prefetch.followed(module, version, wants.client);
            }
            (VersionFile::Zip, Some(prefetch)) if !wants.head_only => {
                prefetch.zip_asked(module, version, wants.client);
            }
            _ => {}
        }
        if file == VersionFile::Zip && !wants.head_only && answer.status != StatusCode::NOT_MODIFIED
        {
            let (module, version) = (Some(module.as_str()), Some(version.as_str()));
            self.audit
                .record(audit::Action::Fetch, caller, module, version);
        }
    }

    /// The answer to a request for a module the caller may not read: the same 404 for every module the
    /// rule hides, stored or not, so that its existence does not leak; audited. None when it may read it
    /// (or the endpoint names no module).
    fn refused(&self, endpoint: &Endpoint, caller: &Caller<'_>) -> Option<Answer> {
        let access = self.access.load();
        if access.is_empty() {
            return None;
        }
        let (module, version) = endpoint.module_named()?;
        if access.may_read(caller.identity, &module) {
            return None;
        }
        self.audit.record(
            audit::Action::Denied,
            caller,
            Some(module.as_str()),
            version.as_deref(),
        );
        Some(Answer::hidden(&module, version.as_deref()))
    }

    /// `/catalog`: a page of the stored versions in (module, version) order, with the token of the next.
    fn catalog(&self, page: &CatalogPage, identity: Option<&crate::Identity>) -> Answer {
        if !self.ledger.is_ready() {
            return Answer::busy(
                "the catalog is being built from the store; try again shortly",
                5,
            );
        }
        let access = self.access.load();
        let readable = |module: &ModulePath| access.may_read(identity, module);
        let mut listed = self
            .ledger
            .read(|state| state.catalog_where(page.after.as_ref(), page.size + 1, readable));
        let next = (listed.len() > page.size).then(|| {
            listed.truncate(page.size);
            listed
                .last()
                .map(|(m, v)| crate::request::next_catalog_token(m, v))
        });
        let modules: Vec<serde_json::Value> = listed
            .iter()
            .map(|(m, v)| serde_json::json!({ "module": m.as_str(), "version": v.as_str() }))
            .collect();
        let mut body = serde_json::json!({ "modules": modules });
        if let Some(Some(next)) = next {
            body["next"] = next.into();
        }
        Answer::ok(JSON, SHORT_LIVED, Bytes::from(body.to_string()))
    }

    /// `/index`: the versions first stored at or after `since`, in that order, one JSON object a line.
    fn feed(&self, page: &FeedPage, identity: Option<&crate::Identity>) -> Answer {
        if !self.ledger.is_ready() {
            return Answer::busy(
                "the index is being built from the store; try again shortly",
                5,
            );
        }
        let access = self.access.load();
        let readable = |module: &ModulePath| access.may_read(identity, module);
        let listed = self
            .ledger
            .read(|state| state.index_where(page.since, page.limit, readable));
        let mut body = String::with_capacity(listed.len() * 100);
        for (at, module, version) in listed {
            let time = std::time::UNIX_EPOCH + Duration::from_nanos(at);
            let line = serde_json::json!({
                "Path": module.as_str(),
                "Version": version.as_str(),
                "Timestamp": humantime::format_rfc3339_nanos(time).to_string(),
            });
            body.push_str(&line.to_string());
            body.push('\n');
        }
        Answer::ok(JSON, SHORT_LIVED, Bytes::from(body))
    }

    /// What this request does for its module: the one table in `action`.
    fn action(&self, decided: &Decided<'_>, kind: Kind) -> Action<&Arc<Filler>> {
        let mode = decided.decision.mode;
        action(mode, kind, self.upstream.as_ref(), decided.cached_only)
    }

    /// Ready when the store answers and, when this Ferry fills it, takes writes. The write probe (a small
    /// write, fsynced, removed) is done at most every few seconds, however often the probe asks.
    async fn readyz(&self) -> Answer {
        let checked = match &self.upstream {
            Some(_) => self.writable.check(self.store.as_ref()).await,
            None => self.store.check().await.map_err(|e| e.to_string()),
        };
        // A failed sync of the vulnerability database is said, after the first line, but never makes Ferry
        // unready: the last copy is still served.
        let detail = self
            .vuln
            .readiness()
            .map_or(String::new(), |line| format!("\n{line}"));
        match checked {
            Ok(()) => Answer::text(StatusCode::OK, format!("ready{detail}")),
            Err(e) => Answer::text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {e}{detail}"),
            ),
        }
    }

    /// `.info`, `.mod` or `.zip` of a canonical version: from the store; on a miss, as the action says.
    async fn version_file(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
        wants: &Wants<'_>,
        decision: &Decided<'_>,
        caller: &Caller<'_>,
    ) -> Answer {
        let etag = etag(file.extension(), module, version);
        // The ETag is computed from the name, so a client can send it for a version that was never stored:
        // only a stored file is "not modified".
        if matches_etag(wants.if_none_match, &etag) && self.is_stored(module, version, file).await {
            return answer::not_modified(etag);
        }
        // Only a zip is answered in parts: `.info` and `.mod` are small, and always whole.
        let read = Read {
            head_only: wants.head_only,
            part: match file {
                VersionFile::Zip => wants.part(&etag),
                VersionFile::Info | VersionFile::Mod => None,
            },
        };
        let stored = match self.stored_file(module, version, file, read).await {
            Err(StorageError::NotFound(_)) => match self.action(decision, Kind::File) {
                Action::Upstream(upstream) => {
                    if let Err(spent) = upstream.admit(wants.requester().as_ref()) {
                        return Answer::fill_budget_spent(&spent);
                    }
                    let named = (Some(module.as_str()), Some(version.as_str()));
                    self.audit
                        .record(audit::Action::Fill, caller, named.0, named.1);
                    let filled = self.fill(upstream, module, version, file, read).await;
                    match self.filled_answer(module, version, file, filled, wants.client) {
                        Ok(early) => return early,
                        Err(Ok(_)) => self.stored_file(module, version, file, read).await,
                        Err(Err(e)) => return Answer::from(e),
                    }
                }
                action => {
                    if matches!(
                        action,
                        Action::Queue(_) | Action::Redirect { queue: Some(_) }
                    ) {
                        let named = (Some(module.as_str()), Some(version.as_str()));
                        self.audit
                            .record(audit::Action::Fill, caller, named.0, named.1);
                    }
                    let escaped_path = format!(
                        "{}/@v/{}.{}",
                        module.escaped(),
                        version.escaped(),
                        file.extension()
                    );
                    let miss = Miss {
                        module,
                        query: version.as_str(),
                        escaped_path,
                    };
                    return miss_answer(action, &miss, decision);
                }
            },
            stored => stored,
        };
        stored
            .map(|answer| answer.immutable(etag))
            .unwrap_or_else(Answer::from)
    }

    /// Whether this file of the version is stored (a listed version's zip may not be yet).
    async fn is_stored(&self, module: &ModulePath, version: &Version, file: VersionFile) -> bool {
        let stored = match file {
            VersionFile::Zip => self.store.has_zip(module, version).await,
            VersionFile::Info | VersionFile::Mod => self.store.exists(module, version).await,
        };
        matches!(stored, Ok(true))
    }

    /// Fills what a request for this file needs: the whole version for a zip, the `.info` and `.mod` only
    /// for either of those. A whole zip may come streamed; a HEAD or a range waits for the stored zip.
    async fn fill(
        &self,
        upstream: &Filler,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
        read: Read,
    ) -> Result<Filled, FillError> {
        match file {
            VersionFile::Zip if read.head_only || read.part.is_some() => {
                upstream
                    .fill(module, version.as_str(), Need::StoredZip)
                    .await
            }
            VersionFile::Zip => upstream.fill(module, version.as_str(), Need::Zip).await,
            VersionFile::Info => upstream.fill_metadata(module, version, Need::Info).await,
            VersionFile::Mod => upstream.fill_metadata(module, version, Need::Mod).await,
        }
    }

    /// The answer a fill gives before the version is stored (an early `.mod`, a zip streamed as it
    /// comes), or the fill's outcome when the stored file is to be read (or its failure answered). Tells
    /// prefetching of a filled `.mod` or `.info`.
    fn filled_answer(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
        filled: Result<Filled, FillError>,
        client: Option<std::net::IpAddr>,
    ) -> Result<Answer, Result<Filled, FillError>> {
        match (&filled, file, &self.prefetch) {
            (Ok(filled), VersionFile::Mod, Some(prefetch)) => {
                let go_mod = match filled {
                    Filled::Fetched(fetched) => Some(fetched.go_mod.clone()),
                    Filled::Stored(_) | Filled::Streaming(..) => None,
                };
                prefetch.filled(module, version, go_mod, client);
            }
            (Ok(_), VersionFile::Info, Some(prefetch)) => {
                prefetch.info_filled(module, version, client);
            }
            _ => {}
        }
        match filled {
            // A `.mod` fetched over HTTP comes before its checks (see `Filled::Fetched`): the go command
            // checks it itself, but a cache in front of Ferry would not, so it is answered `no-store` and
            // without an ETag (only a verified, stored file is immutable), and not kept in the memory
            // cache, which holds stored files only.
            Ok(Filled::Fetched(fetched)) if matches!(file, VersionFile::Mod) => {
                Ok(Answer::ok(TEXT, UNVERIFIED, fetched.go_mod.clone()))
            }
            // A zip as it comes: a response is only complete once the zip verified (see `body::growing`),
            // so it is as immutable as the stored one.
            Ok(Filled::Streaming(_, mut zip)) if matches!(file, VersionFile::Zip) => {
                let len = zip.progress().expected;
                let etag = etag(file.extension(), module, version);
                Ok(Answer::growing_zip(len, body::growing(zip)).immutable(etag))
            }
            other => Err(other),
        }
    }

    async fn stored_file(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
        read: Read,
    ) -> Result<Answer, StorageError> {
        let is_mod = match file {
            VersionFile::Info => false,
            VersionFile::Mod => true,
            VersionFile::Zip => return self.zip(module, version, read).await,
        };
        let content_type = if is_mod { TEXT } else { JSON };
        // `.info` and `.mod` never change once stored: a hot one is served without a store round trip,
        // unless the version was deleted since (here or by another replica): then the store says.
        let deleted = || matches!(self.ledger.removal(module, version), Some(Status::Deleted));
        if let Some(bytes) = self.caches.file(module, version, is_mod)
            && !deleted()
        {
            return Ok(Answer::ok(content_type, IMMUTABLE, bytes));
        }
        let bytes = if is_mod {
            self.store.go_mod(module, version).await?
        } else {
            self.store.info(module, version).await?
        };
        self.caches.keep_file(module, version, is_mod, &bytes);
        Ok(Answer::ok(content_type, IMMUTABLE, bytes))
    }

    /// `.info` of a query (a branch, a commit, `latest`): resolved upstream to a canonical version, which is
    /// served from the store (fetched first when missing). Only `sync` answers a query; the other modes
    /// treat it as a miss.
    async fn query_info(
        &self,
        module: &ModulePath,
        query: &str,
        decision: &Decided<'_>,
        caller: &Caller<'_>,
        requester: Option<&Requester>,
    ) -> Answer {
        let upstream = match self.action(decision, Kind::Query) {
            Action::Upstream(upstream) => upstream,
            action => {
                let escaped_path = format!("{}/@v/{}.info", module.escaped(), escape(query));
                let miss = Miss {
                    module,
                    query,
                    escaped_path,
                };
                return miss_answer(action, &miss, decision);
            }
        };
        let resolved = match self.caches.resolve(upstream, module, query).await {
            Ok(resolved) => resolved,
            Err(e) => return Answer::from(e),
        };
        let version = match Version::new(&resolved.version) {
            Ok(version) => version,
            Err(e) => {
                return Answer::from(FillError::Unusable(format!(
                    "{module}@{query} resolved to {e}"
                )));
            }
        };
        if let Some(refused) = self.gate(&self.policy.load()).answer(module, &version) {
            return refused;
        }
        let info = match self.store.info(module, &version).await {
            Err(StorageError::NotFound(_)) => {
                if let Err(spent) = upstream.admit(requester) {
                    return Answer::fill_budget_spent(&spent);
                }
                let named = (Some(module.as_str()), Some(version.as_str()));
                self.audit
                    .record(audit::Action::Fill, caller, named.0, named.1);
                match upstream.fill(module, version.as_str(), Need::Info).await {
                    Ok(_) => self.store.info(module, &version).await,
                    Err(e) => return Answer::from(e),
                }
            }
            stored => stored,
        };
        // The answer names what the query resolves to now, so it is only briefly cacheable.
        info.map(|info| Answer::ok(JSON, SHORT_LIVED, info))
            .unwrap_or_else(Answer::from)
    }

    /// `@v/list`: the stored versions, merged with the upstream's when the action asks it. When the
    /// upstream fails, the stored versions are the answer (logged); only with none stored does it show.
    async fn list(&self, module: &ModulePath, decision: &Decided<'_>) -> Answer {
        let upstream = match self.action(decision, Kind::List) {
            Action::Redirect { .. } => {
                return answer::redirect(decision, &format!("{}/@v/list", module.escaped()));
            }
            // The table never queues a list (there is no version to fetch); were it to, asking the upstream
            // is what a fetching mode does for a list.
            Action::Upstream(upstream) | Action::Queue(upstream) => Ok(upstream),
            Action::StoreOnly(why) => Err(why),
        };
        let stored = match self.store.list(module).await {
            Ok(stored) => stored,
            Err(e) => return Answer::from(e),
        };
        let mut versions = match upstream {
            // The upstream's part is cached; the store's is read on every answer, so that a version this
            // Ferry (or another sharing the store) has just stored is listed at once.
            Ok(upstream) => match self.caches.list(upstream, module).await {
                Ok(listed) => {
                    let mut versions = stored;
                    versions.extend(listed.iter().cloned());
                    versions
                }
                Err(e) if !stored.is_empty() => {
                    tracing::warn!(%module, error = %e, "upstream list failed; answering with the stored versions");
                    stored
                }
                Err(e) => return Answer::from(e),
            },
            Err(why) if stored.is_empty() => {
                return Answer::not_found(nothing_stored(module, why, decision));
            }
            Err(_) => stored,
        };
        versions.sort();
        versions.dedup();
        self.gate(&self.policy.load())
            .drop_refused(module, &mut versions);
        Answer::ok(TEXT, SHORT_LIVED, Bytes::from(list_body(&versions)))
    }

    /// `@latest`: the upstream's answer when the action asks it; otherwise, or when the upstream fails, the
    /// latest stored version by the `go` command's rule.
    async fn latest(&self, module: &ModulePath, decision: &Decided<'_>) -> Answer {
        // The store answers when the upstream failed (`Ok`, with its error) or was not asked (`Err`, why).
        let store_answers: Result<FillError, Declined> = match self.action(decision, Kind::Latest) {
            Action::Redirect { .. } => {
                return answer::redirect(decision, &format!("{}/@latest", module.escaped()));
            }
            // As for a list, a (never tabled) `Queue` asks the upstream.
            Action::Upstream(upstream) | Action::Queue(upstream) => {
                match self.caches.resolve(upstream, module, "latest").await {
                    Ok(latest)
                        if self
                            .gate(&self.policy.load())
                            .is_refused(module, &latest.version) =>
                    {
                        return self.latest_unblocked(upstream, module).await;
                    }
                    Ok(latest) => {
                        if let Some(newer) = self.newer_stored(module, &latest.version).await {
                            return newer;
                        }
                        let mut info =
                            serde_json::json!({ "Version": latest.version, "Time": latest.time });
                        if let Some(origin) = &latest.origin {
                            info["Origin"] = origin.clone();
                        }
                        return Answer::ok(JSON, SHORT_LIVED, Bytes::from(info.to_string()));
                    }
                    Err(e) => Ok(e),
                }
            }
            Action::StoreOnly(why) => Err(why),
        };
        let mut stored = match self.store.list(module).await {
            Ok(stored) => stored,
            Err(e) => return Answer::from(e),
        };
        self.gate(&self.policy.load())
            .drop_refused(module, &mut stored);
        match (latest_of(&stored), store_answers) {
            (Some(latest), store_answers) => {
                if let Ok(e) = store_answers {
                    tracing::warn!(%module, error = %e, "upstream latest failed; answering with the latest stored version");
                }
                let info = self.store.info(module, latest).await;
                info.map(|info| Answer::ok(JSON, SHORT_LIVED, info))
                    .unwrap_or_else(Answer::from)
            }
            (None, Ok(e)) => Answer::from(e),
            (None, Err(why)) => Answer::not_found(nothing_stored(module, why, decision)),
        }
    }

    /// What decides whether versions may be served (blocks, version rules), under `policy`.
    fn gate<'a>(&'a self, policy: &'a Policy) -> Gate<'a> {
        Gate {
            policy,
            ledger: &self.ledger,
            clock: &self.clock,
        }
    }

    /// The stored version's `.info` when the go command's latest of the stored versions and the upstream's
    /// `latest` is a stored one the upstream did not name (one its upstreams no longer list, or one only
    /// another upstream of its table had): `@latest` merges the store's versions with the upstream's, as
    /// `list` does. `None` when the upstream's answer stands (or the store cannot say).
    async fn newer_stored(&self, module: &ModulePath, latest: &str) -> Option<Answer> {
        let upstream = Version::new(latest).ok()?;
        let mut versions = self.store.list(module).await.ok()?;
        self.gate(&self.policy.load())
            .drop_refused(module, &mut versions);
        versions.push(upstream.clone());
        let chosen = latest_of(&versions)?.clone();
        // A stored pseudo-version is some branch's commit: the upstream's own latest of an untagged module
        // (its default branch) stands.
        if chosen == upstream || chosen.is_pseudo() {
            return None;
        }
        let info = self.store.info(module, &chosen).await.ok()?;
        Some(Answer::ok(JSON, SHORT_LIVED, info))
    }

    /// `@latest` when the upstream's latest may not be served (blocked, or refused by a version rule): the
    /// go command's latest of the versions the upstream lists and the store holds, refused ones left out,
    /// its `.info` from the store (filled first when missing). A module with no version left has no latest
    /// here: 404, saying so.
    async fn latest_unblocked(&self, upstream: &Arc<Filler>, module: &ModulePath) -> Answer {
        let mut versions = match self.store.list(module).await {
            Ok(stored) => stored,
            Err(e) => return Answer::from(e),
        };
        if let Ok(listed) = self.caches.list(upstream, module).await {
            versions.extend(listed.iter().cloned());
        }
        self.gate(&self.policy.load())
            .drop_refused(module, &mut versions);
        let Some(latest) = latest_of(&versions).cloned() else {
            return Answer::not_found(format!(
                "{module}: its latest version is not served by this proxy (blocked or refused by a version rule), and no other version is listed"
            ));
        };
        let info = match self.store.info(module, &latest).await {
            Err(StorageError::NotFound(_)) => {
                match upstream.fill(module, latest.as_str(), Need::Info).await {
                    Ok(_) => self.store.info(module, &latest).await,
                    Err(e) => return Answer::from(e),
                }
            }
            stored => stored,
        };
        info.map(|info| Answer::ok(JSON, SHORT_LIVED, info))
            .unwrap_or_else(Answer::from)
    }

    /// A stored zip, or the part of it the request picks (206, or 416 when it picks none).
    async fn zip(
        &self,
        module: &ModulePath,
        version: &Version,
        read: Read,
    ) -> Result<Answer, StorageError> {
        // A HEAD answer needs only the length: the stream is dropped unread.
        let body = |zip: ZipStream| {
            if read.head_only {
                body::empty()
            } else {
                body::stream(zip)
            }
        };
        let Some(range) = read.part else {
            let zip = self.store.zip(module, version).await?;
            let len = zip.len;
            return Ok(Answer::zip(len, body(zip)));
        };
        Ok(match self.store.zip_part(module, version, range).await? {
            ZipPart::Bytes { len, range, stream } => {
                let part = ZipStream {
                    len: range.end - range.start,
                    stream,
                };
                Answer::zip_part(len, range, body(part))
            }
            ZipPart::Unsatisfiable { len } => Answer::no_zip_part(len),
        })
    }
}

/// A miss that is not fetched before answering: queue a background fetch, redirect, or decline, with an
/// answer that says which.
fn miss_answer(action: Action<&Arc<Filler>>, miss: &Miss<'_>, decision: &Decision<'_>) -> Answer {
    let what = format!("{}@{}", miss.module, miss.query);
    match action {
        Action::Queue(upstream) => {
            upstream.enqueue(miss.module, miss.query);
            Answer::not_found(format!(
                "{what} is not stored yet; it is being fetched, try again shortly"
            ))
        }
        Action::Redirect { queue } => {
            if let Some(upstream) = queue {
                upstream.enqueue(miss.module, miss.query);
            }
            answer::redirect(decision, &miss.escaped_path)
        }
        Action::StoreOnly(Declined::ByPolicy) => Answer::not_found(format!(
            "{what} is not stored, and the download policy does not fetch it ({})",
            decision.rule.for_clients()
        )),
        Action::StoreOnly(Declined::CachedOnly(why)) => {
            Answer::not_found(format!("{what} is not stored, and {why}"))
        }
        // `Upstream` is carried out by the callers before they come here; were it not, saying that nothing
        // is fetched is the honest answer.
        Action::StoreOnly(Declined::NoUpstream) | Action::Upstream(_) => Answer::not_found(
            format!("{what} is not stored, and this Ferry has no upstream"),
        ),
    }
}

/// Why `list` or `@latest` has nothing to say, naming the policy rule when it is the reason.
fn nothing_stored(module: &ModulePath, why: Declined, decision: &Decision<'_>) -> String {
    match why {
        Declined::ByPolicy => format!(
            "{module}: no versions stored, and the download policy does not fetch it ({})",
            decision.rule.for_clients()
        ),
        Declined::NoUpstream => {
            format!("{module}: no versions stored, and this Ferry has no upstream")
        }
        Declined::CachedOnly(why) => format!("{module}: no versions stored, and {why}"),
    }
}

/// The `@v/list` body: release and pre-release versions, one a line, in semver order (no pseudo-versions).
fn list_body(versions: &[Version]) -> String {
    versions
        .iter()
        .filter(|v| !v.is_pseudo())
        .map(|v| format!("{v}\n"))
        .collect()
}

/// A strong ETag for an immutable file: it names the file (kind, module, version), whose content never
/// changes, so a revalidation is answered without touching storage. FNV-1a keeps it stable across builds.
fn etag(kind: &str, module: &ModulePath, version: &Version) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = kind
        .bytes()
        .chain([0])
        .chain(module.as_str().bytes())
        .chain([0])
        .chain(version.as_str().bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut tag = String::with_capacity(kind.len() + 19);
    tag.push('"');
    tag.push_str(kind);
    tag.push('-');
    tag.extend(crate::layers::hex(hash).map(char::from));
    tag.push('"');
    tag
}

/// What a request for a version's file asks besides the file: its method and conditional headers.
struct Wants<'a> {
    head_only: bool,
    /// The client's address, for the budgets kept per client.
    client: Option<std::net::IpAddr>,
    /// Who the request authenticated as (authentication put it there).
    identity: Option<&'a crate::Identity>,
    if_none_match: Option<&'a HeaderValue>,
    range: Option<&'a HeaderValue>,
    if_range: Option<&'a HeaderValue>,
}

impl<'a> Wants<'a> {
    fn of(request: &'a http::request::Parts) -> Wants<'a> {
        Wants {
            head_only: request.method == Method::HEAD,
            client: request
                .extensions
                .get::<crate::layers::client::Client>()
                .map(|client| client.address),
            identity: request.extensions.get::<crate::Identity>(),
            if_none_match: request.headers.get(header::IF_NONE_MATCH),
            range: request.headers.get(header::RANGE),
            if_range: request.headers.get(header::IF_RANGE),
        }
    }

    /// Whom a fill this request starts is counted against (fair use): the identity it authenticated as,
    /// else its client's address. Made only when a request would start a fill, never on the let-in path.
    fn requester(&self) -> Option<Requester> {
        use crate::layers::auth::Credential;
        let Some(identity) = self.identity else {
            return self.client.map(Requester::address);
        };
        Some(Requester::Identity(match &identity.via {
            Credential::Password => format!("user:{}", identity.user),
            Credential::Token => format!("token:{}", identity.user),
            Credential::Oidc { issuer } => format!("oidc:{issuer}:{}", identity.user),
        }))
    }

    /// The part of the file whose ETag is `etag` that the request asks for, if any. With `If-Range`, only
    /// when it names this very file (a resumed download of the same zip); a date or another tag gets the
    /// whole file, as RFC 9110 says. Our ETags are strong, so the comparison is exact.
    fn part(&self, etag: &str) -> Option<ByteRange> {
        let range = self.range?;
        if self
            .if_range
            .is_some_and(|tag| tag.as_bytes() != etag.as_bytes())
        {
            return None;
        }
        crate::request::byte_range(range)
    }
}

/// How a stored file is read: for a HEAD (the headers alone), and which part of it (zips only).
#[derive(Clone, Copy)]
struct Read {
    head_only: bool,
    part: Option<ByteRange>,
}

/// The proxy as the innermost `tower` service.
#[derive(Clone)]
pub struct ProxyService(pub Arc<Proxy>);

impl<B: Send + 'static> tower::Service<Request<B>> for ProxyService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = crate::layers::ResponseFuture<std::convert::Infallible>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let proxy = self.0.clone();
        Box::pin(async move { Ok(proxy.handle(request).await) })
    }
}
