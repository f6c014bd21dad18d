//! One route to each checksum database, shared by everything in Ferry that talks to one: the proxy's relay
//! (`/sumdb/NAME/…`, for the builders) and the native fetcher's verification of its fills.
//!
//! The route is chosen as the go command chooses it (`modfetch.dbClient.initBase`): through the upstream
//! proxy's `/sumdb/NAME/` when `<upstream>/sumdb/NAME/supported` answers 200, else the database itself
//! (`https://NAME`, or the URL `GOSUMDB` gives). Unlike the go command, which decides once per process, a
//! long-running Ferry re-checks: a choice stands for [`CHOICE_LIFETIME`], is dropped at the first failure of
//! a request through it, and an upstream whose `/sumdb/` answered something not signed by the database's
//! key is passed over for [`DISTRUST_LIFETIME`]. A route is taken only when the database's `latest`
//! answered through it (and, when the key is known, is signed by it): on a network where only the upstream
//! is reachable, that is the upstream's relay; where nothing is, there is no route, and the relay says so
//! (`supported` is then a 404, and the go command takes its own next route).
//!
//! A database given an explicit URL (Ferry's `sumdbs = ["NAME=URL"]`) is reached there and nowhere else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use ferry_sumdb::{Kept, Transport, TransportError, VerifierKey};
use http::HeaderValue;
use tokio::time::Instant;

use crate::http::{Got, HttpsClient, get_with};

/// The verifying client of one database, shared by the relay and the fills (see [`SumdbRoutes::verifier`]).
pub type Verifier = ferry_sumdb::Client<RouteTransport>;

/// How long a route that worked is used before it is checked again.
const CHOICE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// How long "no route" stands: short, so that a database that comes back is used soon, long enough that a
/// burst of builders does not probe once each.
const NO_ROUTE_LIFETIME: Duration = Duration::from_secs(15);
/// How long an upstream whose `/sumdb/` answered data that does not verify is passed over.
const DISTRUST_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// The most one probe (`supported`, then `latest`) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// A `latest` answer is a note of a few hundred bytes.
const MAX_NOTE: usize = 64 << 10;
/// The go command's built-in key of the public database (`cmd/go/internal/modfetch/key.go`).
const SUM_GOLANG_ORG: &str = ferry_sumdb::SUM_GOLANG_ORG_KEY;
/// A lookup answer is a few KiB, a hash tile 8 KiB, a data tile of 256 records some tens of KiB.
const MAX_ANSWER: usize = 1 << 20;

/// Where a database is asked: a base URL (without a trailing `/`) and the credentials to send there.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub base: String,
    /// HTTP Basic credentials given in a configured URL; marked sensitive.
    pub authorization: Option<HeaderValue>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = if self.authorization.is_some() {
            " (with credentials)"
        } else {
            ""
        };
        write!(f, "{}{auth}", self.base)
    }
}

/// How a route reaches its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The URL configured for it (Ferry's `sumdbs`): no other route is tried.
    Configured,
    /// The upstream proxy's `/sumdb/NAME/`.
    Upstream,
    /// The database's own URL.
    Direct,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::Configured => "the configured URL",
            Via::Upstream => "the upstream proxy",
            Via::Direct => "the database itself",
        })
    }
}

/// A route to one database, as chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub via: Via,
    pub target: Target,
}

/// What is known of one database, and its current choice.
struct Database {
    configured: Option<Target>,
    direct: Target,
    key: Option<VerifierKey>,
    /// Held while a route is probed: callers at the same moment wait for one probe.
    choice: tokio::sync::Mutex<Choice>,
    /// Until when the upstream's `/sumdb/` is passed over.
    distrusted: Mutex<Option<Instant>>,
}

enum Choice {
    Unknown,
    Chosen { route: Route, until: Instant },
    NoRoute { why: String, until: Instant },
}

/// The routes to every database Ferry talks to; shared (`Arc`) by the relay and the fills.
pub struct SumdbRoutes {
    client: HttpsClient,
    /// The first `GOPROXY` entry, when it is a proxy URL: the go command asks it first.
    upstream: Option<String>,
    /// The go command's root, where its built-in database keys are (`sum.golang.org`'s).
    goroot: String,
    databases: Mutex<HashMap<String, Arc<Database>>>,
    /// Where the verifiers keep what they verified (the proxy's store), once given.
    kept: OnceLock<Arc<dyn Kept>>,
    /// One verifying client per database whose key is known, made at its first use.
    verifiers: Mutex<HashMap<String, Arc<Verifier>>>,
    /// Told of every probe's outcome (the proxy's `ferry_sumdb_route_up` gauge), once given.
    observer: OnceLock<RouteObserver>,
}

/// Told a database's name and whether its probe found a route.
pub type RouteObserver = Box<dyn Fn(&str, bool) + Send + Sync>;

/// A database's route as last chosen, for people watching (the status page): no probe is made to say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteState {
    /// Not probed yet (or its last route failed and the next request probes again).
    Unknown,
    /// A probe runs now.
    Probing,
    Chosen {
        via: Via,
        base: String,
    },
    NoRoute {
        why: String,
    },
}

impl std::fmt::Debug for SumdbRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SumdbRoutes")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl SumdbRoutes {
    /// The routes for a go command whose `GOPROXY`, `GOSUMDB` and `GOROOT` are these (empty when unknown):
    /// the upstream is `GOPROXY`'s first entry when it is a proxy URL without credentials (which only the
    /// go command sends); `GOSUMDB`'s database is known with its key and URL.
    pub fn new(client: HttpsClient, goproxy: &str, gosumdb: &str, goroot: &str) -> SumdbRoutes {
        let routes = SumdbRoutes {
            client,
            upstream: upstream_of(goproxy),
            goroot: goroot.to_string(),
            databases: Mutex::default(),
            kept: OnceLock::new(),
            verifiers: Mutex::default(),
            observer: OnceLock::new(),
        };
        let mut fields = gosumdb.split_whitespace();
        if let Some(named) = fields.next().filter(|n| *n != "off") {
            let url = fields.next().map(|u| u.trim_end_matches('/').to_string());
            let key = routes.key_of(named);
            let name = match &key {
                Some(key) => key.name().to_string(),
                None => named.split('+').next().unwrap_or(named).to_string(),
            };
            if key.is_none() {
                tracing::debug!(sumdb = %name, "GOSUMDB's key is not known here: only the shape of its tree notes is checked");
            }
            routes.insert(&name, None, url, key);
        }
        routes
    }

    /// Keeps what the verifiers verify in `kept` (given once, before the first verifier is made: the
    /// proxy gives its store at start-up).
    pub fn keep_in(&self, kept: Arc<dyn Kept>) {
        if self.kept.set(kept).is_err() {
            tracing::warn!(
                "checksum database records already kept elsewhere: the second store is ignored"
            );
        }
    }

    /// The verifying client of `name`, shared by everything that proves its answers (the fills, the relay),
    /// reaching it by the route of the moment; `None` when its key is not known here.
    pub fn verifier(self: &Arc<Self>, name: &str) -> Option<Arc<Verifier>> {
        let mut verifiers = self.verifiers.lock().unwrap();
        if let Some(verifier) = verifiers.get(name) {
            return Some(verifier.clone());
        }
        let key = self.key(name)?;
        let transport = RouteTransport {
            routes: Arc::downgrade(self),
            name: name.to_string(),
        };
        let mut verifier = ferry_sumdb::Client::new(key, transport);
        if let Some(kept) = self.kept.get() {
            verifier = verifier.keeping(kept.clone());
        }
        let verifier = Arc::new(verifier);
        verifiers.insert(name.to_string(), verifier.clone());
        Some(verifier)
    }

    /// Tells `observer` the outcome of every probe from now on: the database's name and whether a route
    /// was found (given once; the proxy's metrics).
    pub fn observe(&self, observer: RouteObserver) {
        let _ = self.observer.set(observer);
    }

    /// Every database known, by name, with its route as last chosen (an expired choice still shows what
    /// it was until the next request probes again).
    pub fn states(&self) -> Vec<(String, RouteState)> {
        let databases: Vec<(String, Arc<Database>)> = {
            let databases = self.databases.lock().unwrap();
            databases
                .iter()
                .map(|(name, db)| (name.clone(), db.clone()))
                .collect()
        };
        let mut states: Vec<(String, RouteState)> = databases
            .into_iter()
            .map(|(name, db)| {
                let state = match db.choice.try_lock() {
                    Err(_) => RouteState::Probing,
                    Ok(choice) => match &*choice {
                        Choice::Unknown => RouteState::Unknown,
                        Choice::Chosen { route, .. } => RouteState::Chosen {
                            via: route.via,
                            base: route.target.base.clone(),
                        },
                        Choice::NoRoute { why, .. } => RouteState::NoRoute { why: why.clone() },
                    },
                };
                (name, state)
            })
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }

    /// The upstream proxy asked first, if any.
    pub fn upstream(&self) -> Option<&str> {
        self.upstream.as_deref()
    }

    /// Makes `name` known (a database the relay serves), reached at `configured` only when given. Its key,
    /// when GOSUMDB does not give it, is the go command's built-in one for that name, if any.
    pub fn add(&self, name: &str, configured: Option<Target>) {
        let known = self.databases.lock().unwrap().get(name).cloned();
        let key = known
            .as_ref()
            .and_then(|db| db.key.clone())
            .or_else(|| self.key_of(name));
        let direct = known.map(|db| db.direct.base.clone());
        self.insert(name, configured, direct, key);
    }

    fn insert(
        &self,
        name: &str,
        configured: Option<Target>,
        direct: Option<String>,
        key: Option<VerifierKey>,
    ) {
        let database = Database {
            configured,
            direct: Target {
                base: direct.unwrap_or_else(|| format!("https://{name}")),
                authorization: None,
            },
            key,
            choice: tokio::sync::Mutex::new(Choice::Unknown),
            distrusted: Mutex::new(None),
        };
        self.databases
            .lock()
            .unwrap()
            .insert(name.to_string(), Arc::new(database));
    }

    /// The key of `named`: a `NAME+HASH+KEY` as written, else the go command's built-in key for a name
    /// (`sum.golang.org`'s is known without a go command too: a Ferry that runs none still proves, keeps
    /// and answers from its store what that database said).
    fn key_of(&self, named: &str) -> Option<VerifierKey> {
        let text = if named.contains('+') {
            named.to_string()
        } else if let Some(known) = known_key(&self.goroot, named) {
            known
        } else if named == SUM_GOLANG_ORG.split('+').next().unwrap_or("") {
            SUM_GOLANG_ORG.to_string()
        } else {
            return None;
        };
        VerifierKey::parse(&text).ok()
    }

    fn database(&self, name: &str) -> Option<Arc<Database>> {
        self.databases.lock().unwrap().get(name).cloned()
    }

    /// The key `name`'s answers are checked with, when known.
    pub fn key(&self, name: &str) -> Option<VerifierKey> {
        self.database(name)?.key.clone()
    }

    /// The route to `name` now: the one chosen lately, else one probed now. `Err` says why there is none.
    pub async fn route(&self, name: &str) -> Result<Route, String> {
        let Some(db) = self.database(name) else {
            return Err(format!(
                "checksum database {name} is not known to this Ferry"
            ));
        };
        let mut choice = db.choice.lock().await;
        let now = Instant::now();
        match &*choice {
            Choice::Chosen { route, until } if *until > now => return Ok(route.clone()),
            Choice::NoRoute { why, until } if *until > now => return Err(why.clone()),
            _ => {}
        }
        let probed = self.probe(name, &db).await;
        if let Some(observer) = self.observer.get() {
            observer(name, probed.is_ok());
        }
        *choice = match &probed {
            Ok(route) => {
                tracing::info!(sumdb = name, via = %route.via, url = %route.target.base, "checksum database route chosen");
                Choice::Chosen {
                    route: route.clone(),
                    until: now + CHOICE_LIFETIME,
                }
            }
            Err(why) => {
                tracing::warn!(sumdb = name, reason = %why, "no route to the checksum database");
                Choice::NoRoute {
                    why: why.clone(),
                    until: now + NO_ROUTE_LIFETIME,
                }
            }
        };
        probed
    }

    /// Tries the routes in the go command's order; the first that answers a good `latest` is taken.
    async fn probe(&self, name: &str, db: &Database) -> Result<Route, String> {
        let route = |via, target: &Target| Route {
            name: name.to_string(),
            via,
            target: target.clone(),
        };
        if let Some(configured) = &db.configured {
            let configured = route(Via::Configured, configured);
            return self
                .check_latest(db, &configured)
                .await
                .map(|()| configured)
                .map_err(|why| format!("{name} at its configured URL: {why}"));
        }
        let mut tried = Vec::new();
        let distrusted = db
            .distrusted
            .lock()
            .unwrap()
            .is_some_and(|until| until > Instant::now());
        match &self.upstream {
            Some(upstream) if !distrusted => {
                let relayed = Target {
                    base: format!("{upstream}/sumdb/{name}"),
                    authorization: None,
                };
                let relayed = route(Via::Upstream, &relayed);
                match self.supported(&relayed).await {
                    Ok(()) => match self.check_latest(db, &relayed).await {
                        Ok(()) => return Ok(relayed),
                        Err(why) => tried.push(format!("through the upstream proxy: {why}")),
                    },
                    Err(why) => tried.push(format!("through the upstream proxy: {why}")),
                }
            }
            Some(_) => tried.push(
                "through the upstream proxy: passed over for now (its /sumdb/ answered data that does not verify)"
                    .to_string(),
            ),
            None => {}
        }
        let direct = route(Via::Direct, &db.direct);
        match self.check_latest(db, &direct).await {
            Ok(()) => Ok(direct),
            Err(why) => {
                tried.push(format!("directly: {why}"));
                Err(format!("no route to {name}: {}", tried.join("; ")))
            }
        }
    }

    /// `<upstream>/sumdb/NAME/supported` answers 200.
    async fn supported(&self, route: &Route) -> Result<(), String> {
        match self.fetch(route, "supported").await? {
            Got::Body(_) => Ok(()),
            Got::Missing => Err("it does not relay this database (supported: not found)".into()),
            Got::Loop => Err("it leads back to this Ferry".into()),
            Got::TooLarge(why) | Got::Failed(why) => Err(why),
        }
    }

    /// The route answers `latest` with a note signed by the database's key (when known), or shaped as a
    /// tree note of this database (when not).
    async fn check_latest(&self, db: &Database, route: &Route) -> Result<(), String> {
        let note = match self.fetch(route, "latest").await? {
            Got::Body(note) => note,
            Got::Missing => return Err("latest: not found".into()),
            Got::Loop => return Err("it leads back to this Ferry".into()),
            Got::TooLarge(why) | Got::Failed(why) => return Err(why),
        };
        check_note(db.key.as_ref(), &route.name, &note, false)
            .map_err(|why| format!("its latest does not verify: {why}"))
    }

    async fn fetch(&self, route: &Route, path: &str) -> Result<Got, String> {
        let url = format!("{}/{path}", route.target.base);
        let auth = route.target.authorization.as_ref();
        tokio::time::timeout(PROBE_TIMEOUT, get_with(&self.client, &url, MAX_NOTE, auth))
            .await
            .map_err(|_| format!("GET {url}: no answer within {PROBE_TIMEOUT:?}"))
    }

    /// A request through `route` failed (not connected, a 5xx, a timeout): the next one probes again.
    pub async fn failed(&self, route: &Route) {
        let Some(db) = self.database(&route.name) else {
            return;
        };
        let mut choice = db.choice.lock().await;
        if matches!(&*choice, Choice::Chosen { route: chosen, .. } if chosen == route) {
            *choice = Choice::Unknown;
        }
    }

    /// `route` answered data that does not verify: it is dropped, and an upstream is passed over for
    /// 10 minutes (its answer is not relayed, and no other route is tried for that request: a
    /// tamperer must not be papered over).
    pub async fn distrust(&self, route: &Route, why: &str) {
        tracing::warn!(sumdb = %route.name, via = %route.via, url = %route.target.base, reason = why, "checksum database answer does not verify: route dropped");
        if let (Via::Upstream, Some(db)) = (route.via, self.database(&route.name)) {
            *db.distrusted.lock().unwrap() = Some(Instant::now() + DISTRUST_LIFETIME);
        }
        self.failed(route).await;
    }

    /// Checks a relayed `latest` (`lookup == false`) or lookup answer of `name`: its tree note is signed by
    /// the database's key when known; when not, it is at least shaped as this database's note.
    pub fn check(&self, name: &str, answer: &Bytes, lookup: bool) -> Result<(), String> {
        let key = self.database(name).and_then(|db| db.key.clone());
        check_note(key.as_ref(), name, answer, lookup)
    }
}

/// A database reached by the route of the moment (the transport of a [`Verifier`]): a request that fails
/// drops the route, so that the next one probes again (the database may have come back another way).
pub struct RouteTransport {
    /// Weak: the routes hold their verifiers.
    routes: Weak<SumdbRoutes>,
    name: String,
}

#[async_trait::async_trait]
impl Transport for RouteTransport {
    async fn get(&self, path: &str) -> Result<Bytes, TransportError> {
        let Some(routes) = self.routes.upgrade() else {
            return Err(TransportError::Failed("shutting down".into()));
        };
        let route = routes
            .route(&self.name)
            .await
            .map_err(TransportError::Failed)?;
        let url = format!("{}/{path}", route.target.base);
        let auth = route.target.authorization.as_ref();
        match get_with(&routes.client, &url, MAX_ANSWER, auth).await {
            Got::Body(body) => Ok(body),
            Got::Missing => Err(TransportError::NotFound),
            Got::Loop => Err(TransportError::Failed(format!(
                "{}: the database's URL leads back to this Ferry",
                self.name
            ))),
            Got::TooLarge(reason) | Got::Failed(reason) => {
                routes.failed(&route).await;
                Err(TransportError::Failed(format!("{}: {reason}", self.name)))
            }
        }
    }
}

/// See [`SumdbRoutes::check`].
fn check_note(
    key: Option<&VerifierKey>,
    name: &str,
    answer: &[u8],
    lookup: bool,
) -> Result<(), String> {
    if let Some(key) = key {
        return ferry_sumdb::check_signed_answer(key, answer, lookup);
    }
    // Without the key, only the shape: a tree note with a signature line of this database.
    let text = String::from_utf8_lossy(answer);
    let signed_by_name = text.contains(&format!("\n\n\u{2014} {name} "));
    if text.contains("go.sum database tree\n") && signed_by_name {
        Ok(())
    } else {
        Err(format!("not a tree note signed as {name}"))
    }
}

/// `GOPROXY`'s first entry, when the go command would ask it first for a database: a proxy URL (not
/// `direct` or `off`) that carries no credentials.
fn upstream_of(goproxy: &str) -> Option<String> {
    let first = goproxy.split([',', '|']).next().unwrap_or("").trim();
    let proxy = first.trim_end_matches('/');
    let authority = proxy.split("://").nth(1)?.split('/').next().unwrap_or("");
    let url = proxy.starts_with("http://") || proxy.starts_with("https://");
    (url && !authority.is_empty() && !authority.contains('@')).then(|| proxy.to_string())
}

/// The go command's built-in key for the database `name`, from `$GOROOT/src/cmd/go/internal/modfetch/key.go`.
pub(crate) fn known_key(goroot: &str, name: &str) -> Option<String> {
    if goroot.is_empty() {
        return None;
    }
    let source = std::fs::read_to_string(
        std::path::Path::new(goroot).join("src/cmd/go/internal/modfetch/key.go"),
    )
    .ok()?;
    let wanted = format!("\"{name}+");
    source.lines().find_map(|line| {
        let start = line.find(&wanted)? + 1;
        let end = start + line[start..].find('"')?;
        Some(line[start..end].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_is_goproxys_first_entry_when_it_is_a_url_without_credentials() {
        assert_eq!(
            upstream_of("https://proxy.example/,direct").as_deref(),
            Some("https://proxy.example")
        );
        assert_eq!(
            upstream_of("http://127.0.0.1:1/prefix|off").as_deref(),
            Some("http://127.0.0.1:1/prefix")
        );
        for none in [
            "",
            "direct",
            "off",
            "https://u:p@proxy.example",
            "file:///x",
            "https://",
        ] {
            assert_eq!(upstream_of(none), None, "{none}");
        }
    }

    #[test]
    fn sum_golang_orgs_key_is_known_without_a_go_command() {
        let routes = SumdbRoutes::new(crate::https_client(PROBE_TIMEOUT), "", "", "");
        routes.add("sum.golang.org", None);
        routes.add("sum.other.example", None);
        let key = routes.key("sum.golang.org").expect("the built-in key");
        assert_eq!(key.as_str(), SUM_GOLANG_ORG);
        assert!(routes.key("sum.other.example").is_none());
    }

    #[test]
    fn without_a_key_only_the_shape_of_a_note_of_this_database_passes() {
        let note = "go.sum database tree\n3\nAAAA\n\n\u{2014} sum.a.example abcd\n";
        assert!(check_note(None, "sum.a.example", note.as_bytes(), false).is_ok());
        assert!(check_note(None, "sum.b.example", note.as_bytes(), false).is_err());
        assert!(check_note(None, "sum.a.example", b"<html>hello</html>", false).is_err());
    }
}
