//! Checksum database proxying (`go help goproxy`, "proxying a checksum database"): `/sumdb/NAME/supported`
//! says whether this Ferry can reach a database now, and `/sumdb/NAME/{lookup/…,latest,tile/…}` are
//! forwarded by the route the fills use too (`ferry_fetcher::SumdbRoutes`: the upstream proxy's
//! `/sumdb/NAME/` when it relays the database, else the database itself, or the URL `sumdbs` gives), so
//! builders that reach only Ferry can still verify sums. `latest` and lookups are read whole and their
//! signed tree note checked against the database's key before they are passed on. When the key is known
//! (Ferry's go's `GOSUMDB`, or the go command's built-in keys), the database's verifier, shared with the
//! fills, proves lookups, tiles and `latest` too, and keeps what it proved in the store ([`kept`]): kept
//! lookups and tiles are answered without asking anyone (they never change), `latest` is asked first and
//! answered from the store when no route works, and `supported` says 200 while the store can answer. An
//! answer that cannot be proven yet (a tile beyond the trees verified) is relayed as the database gave it,
//! for the client to prove. Full tiles are also kept in a bounded memory cache. Lookups of private module
//! paths (`sumdb_private`, Ferry's `GONOSUMDB` or `GOPRIVATE`) are refused without asking anyone. The
//! download policy plays no part here: a checksum database is not a module.

pub mod kept;

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use ferry_fetcher::{SumdbRoute, SumdbRoutes, SumdbTarget, SumdbVerifier};
use ferry_module::{ModulePath, Pattern, Version};
use ferry_sumdb::SumdbError;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use http::header::{self, HeaderValue};
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Limited};

use crate::answer::{Answer, IMMUTABLE, TEXT};
use crate::cache::Bounded;
use crate::metrics::metrics;
use crate::refusal::Refusal;
use crate::report::Report;

/// The database the `go` command uses by default (`GOSUMDB`), proxied unless `sumdbs` says otherwise.
pub const DEFAULT_SUMDB: &str = "sum.golang.org";
/// What a connection to a database may take; the whole answer is bounded by [`SumDbSettings::timeout`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Memory for full tiles: a hash tile of height 8 is 8 KiB, so about 4,000 of them.
const TILE_CACHE_BYTES: usize = 32 << 20;
/// The most a full tile may hold: a hash tile of height 8 is 8 KiB, a data tile of 256 records some tens
/// of KiB; more is not a tile.
const MAX_TILE: usize = 1 << 20;
/// `latest`, lookups (they carry the latest signed tree) and partial tiles change: clients ask again.
const NO_CACHE: &str = "no-cache";
/// The answer to a hash tile, as the database itself labels it.
const OCTETS: &str = "application/octet-stream";
/// The most a `latest` or lookup answer may hold (read whole, to check its note): a few hundred bytes.
const MAX_NOTED: usize = 64 << 10;

/// Which checksum databases are relayed, and how long one may take to answer.
#[derive(Debug, Clone)]
pub struct SumDbSettings {
    pub databases: Vec<SumDb>,
    /// Module paths whose lookups are refused (`sumdb_private`, then Ferry's `GONOSUMDB`, else `GOPRIVATE`).
    pub private: Vec<PrivatePattern>,
    /// The most one answer of a database may take, head and body: a database that sends a byte now and
    /// then would otherwise hold a relayed request (and its client) open for ever.
    pub timeout: Duration,
}

impl Default for SumDbSettings {
    fn default() -> Self {
        SumDbSettings {
            databases: vec![SumDb::parse(DEFAULT_SUMDB).expect("the default entry is valid")],
            private: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A module path pattern whose lookups are refused, and the setting that gave it (named in the refusal).
#[derive(Debug, Clone)]
pub struct PrivatePattern {
    pub pattern: Pattern,
    /// `sumdb_private`, `GONOSUMDB` or `GOPRIVATE`.
    pub from: &'static str,
}

/// One relayed database: the name clients use (`GOSUMDB`) and, when configured, where it is.
#[derive(Clone)]
pub struct SumDb {
    pub name: String,
    /// The URL given (`NAME=URL`): the database is reached there only. `None` (a bare `NAME`): by the
    /// route the fills take (the upstream's `/sumdb/NAME/` when it relays it, else `https://NAME`).
    configured: Option<SumdbTarget>,
}

impl std::fmt::Debug for SumDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for SumDb {
    /// `NAME`, or `NAME=URL` with credentials shown as `***@`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(target) = &self.configured else {
            return write!(f, "{}", self.name);
        };
        let (scheme, rest) = target.base.split_once("://").unwrap_or(("", &target.base));
        let auth = if target.authorization.is_some() {
            "***@"
        } else {
            ""
        };
        write!(f, "{}={scheme}://{auth}{rest}", self.name)
    }
}

impl SumDb {
    /// An entry as written in `sumdbs`: `NAME` (meaning `https://NAME`) or `NAME=URL`. The error says what
    /// is wrong and what to write, and never repeats a password.
    pub fn parse(entry: &str) -> Result<SumDb, String> {
        const WRITE: &str =
            "write NAME or NAME=URL, e.g. sum.golang.org or sum.golang.org=https://sum.golang.org";
        let entry = entry.trim();
        let (name, url) = match entry.split_once('=') {
            Some((name, url)) => (name.trim(), url.trim().to_string()),
            None => (entry, String::new()),
        };
        if let Err(why) = check_name(name) {
            return Err(format!(
                "checksum database name {:?} {why}; {WRITE}",
                shown_name(name)
            ));
        }
        if url.is_empty() && !entry.contains('=') {
            return Ok(SumDb {
                name: name.to_string(),
                configured: None,
            });
        }
        let parsed = url::Url::parse(&url).map_err(|e| {
            format!(
                "checksum database {name}: URL {:?} is not a URL ({e}); {WRITE}",
                redact(&url)
            )
        })?;
        let bad = |why: &str| {
            format!(
                "checksum database {name}: URL {:?} {why}; {WRITE}",
                redact(&url)
            )
        };
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("needs http:// or https://"));
        }
        let Some(host) = parsed.host_str() else {
            return Err(bad("has no host"));
        };
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("may not have a query or fragment"));
        }
        let authorization = if parsed.username().is_empty() && parsed.password().is_none() {
            None
        } else {
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            let pair = format!(
                "{}:{}",
                decode(parsed.username()),
                decode(parsed.password().unwrap_or(""))
            );
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
                .map_err(|_| bad("has credentials that cannot be sent"))?;
            value.set_sensitive(true);
            Some(value)
        };
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        let path = parsed.path().trim_end_matches('/');
        Ok(SumDb {
            name: name.to_string(),
            configured: Some(SumdbTarget {
                base: format!("{}://{host}{port}{path}", parsed.scheme()),
                authorization,
            }),
        })
    }
}

/// A name as the `go` command would send it in `/sumdb/NAME/`: a host name (`sum.golang.org`), possibly
/// with a port, nothing that could step out of the path.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > 253 {
        return Err("is longer than 253 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    {
        return Err("may hold only letters, digits, '.', '-', '_' and ':'");
    }
    if name.starts_with(['.', '-']) || name.contains("..") {
        return Err("may not start with '.' or '-' or hold \"..\"");
    }
    Ok(())
}

/// A name shown in a message: bounded, in case it is junk.
fn shown_name(name: &str) -> String {
    name.chars().take(100).collect()
}

/// `url` with any `user:password@` shown as `***@`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.chars().take(200).collect();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// What a `/sumdb/NAME/...` request asks, checked and rebuilt in its canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumDbPath {
    pub name: String,
    pub what: Ask,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Supported,
    Latest,
    /// `lookup/MODULE@VERSION`, escaped as the protocol spells it.
    Lookup(String),
    /// `tile/H/L/N[.p/W]`; `full` when it has no `.p/` (it never changes).
    Tile {
        path: String,
        full: bool,
        data: bool,
    },
}

impl SumDbPath {
    /// Parses what follows `/sumdb/` (already percent-decoded and free of control characters).
    pub fn parse(rest: &str) -> Result<SumDbPath, Refusal> {
        let bad = |why: String| Refusal::BadRequest(why);
        let (name, what) = rest.split_once('/').unwrap_or((rest, ""));
        check_name(name).map_err(|why| {
            bad(format!(
                "checksum database name {:?} {why}",
                shown_name(name)
            ))
        })?;
        let what = match what {
            "supported" => Ask::Supported,
            "latest" => Ask::Latest,
            _ if what.starts_with("lookup/") => Ask::Lookup(lookup(&what["lookup/".len()..])?),
            _ if what.starts_with("tile/") => tile(what)?,
            _ => {
                return Err(bad(format!(
                    "{:?} is not a checksum database request (want /sumdb/NAME/supported, /latest, /lookup/MODULE@VERSION or /tile/H/L/N[.p/W])",
                    what.chars().take(100).collect::<String>()
                )));
            }
        };
        Ok(SumDbPath {
            name: name.to_string(),
            what,
        })
    }

    /// The path under the database's URL.
    fn upstream_path(&self) -> String {
        match &self.what {
            Ask::Supported => "supported".into(),
            Ask::Latest => "latest".into(),
            Ask::Lookup(module_version) => format!("lookup/{module_version}"),
            Ask::Tile { path, .. } => path.clone(),
        }
    }
}

impl SumDbPath {
    /// The module and version a lookup asks about (none for the other requests).
    pub fn looked_up(&self) -> Option<(ModulePath, Version)> {
        match &self.what {
            Ask::Lookup(module_version) => unescape(module_version),
            _ => None,
        }
    }
}

/// The module path and version of a lookup's escaped `MODULE@VERSION` (as [`SumDbPath::parse`] left it).
fn unescape(module_version: &str) -> Option<(ModulePath, Version)> {
    let (module, version) = module_version.rsplit_once('@')?;
    Some((
        ModulePath::from_escaped(module).ok()?,
        Version::from_escaped(version).ok()?,
    ))
}

/// `MODULE@VERSION` of a lookup: a valid module path and canonical version, re-escaped.
fn lookup(text: &str) -> Result<String, Refusal> {
    let bad = |why: String| Refusal::BadRequest(format!("lookup {why}"));
    let Some((module, version)) = text.rsplit_once('@') else {
        return Err(bad("wants MODULE@VERSION".into()));
    };
    let module = ModulePath::from_escaped(module).map_err(|e| bad(e.to_string()))?;
    let version = Version::from_escaped(version).map_err(|e| bad(e.to_string()))?;
    Ok(format!("{}@{}", module.escaped(), version.escaped()))
}

/// A tile path as `golang.org/x/mod/sumdb/tlog` writes it: `tile/H/L/N[.p/W]`, `H` from 1 to 30, `L` a
/// level or `data`, `N` in groups of three digits (`x123/456`), `W` below `2^H`. Anything else, however
/// close, is refused: only the canonical spelling is forwarded (or cached).
fn tile(path: &str) -> Result<Ask, Refusal> {
    let bad = || {
        Refusal::BadRequest(format!(
            "tile path {:?} is not tile/H/L/NNN[.p/W] (H 1 to 30, L a level or data, NNN in groups of three digits as x001/234)",
            path.chars().take(100).collect::<String>()
        ))
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() < 4 || parts.len() > 12 {
        return Err(bad());
    }
    let height = number(parts[1])
        .filter(|h| (1..=30).contains(h))
        .ok_or_else(bad)?;
    let data = parts[2] == "data";
    let level = if data {
        0
    } else {
        number(parts[2]).filter(|l| *l < 64).ok_or_else(bad)?
    };
    let mut index_parts = parts[3..].to_vec();
    let mut width = 1u64 << height;
    let last = index_parts.len() - 1;
    if last >= 1
        && let Some(stem) = index_parts[last - 1].strip_suffix(".p")
    {
        let w = number(index_parts[last]).ok_or_else(bad)?;
        if w == 0 || w >= width {
            return Err(bad());
        }
        width = w;
        index_parts[last - 1] = stem;
        index_parts.pop();
    }
    let mut index: u64 = 0;
    for part in &index_parts {
        let group = number(part.strip_prefix('x').unwrap_or(part))
            .filter(|g| *g < 1000)
            .ok_or_else(bad)?;
        index = index
            .checked_mul(1000)
            .and_then(|i| i.checked_add(group))
            .filter(|i| *i <= i64::MAX as u64)
            .ok_or_else(bad)?;
    }
    let canonical = tile_path(height, (!data).then_some(level), index, width);
    if canonical != path {
        return Err(bad());
    }
    Ok(Ask::Tile {
        path: canonical,
        full: width == 1 << height,
        data,
    })
}

/// `tlog.Tile.Path`: the one spelling of a tile (`level` None for a data tile).
fn tile_path(height: u64, level: Option<u64>, index: u64, width: u64) -> String {
    let mut n = index;
    let mut text = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        text = format!("x{:03}/{text}", n % 1000);
    }
    let partial = if width == 1 << height {
        String::new()
    } else {
        format!(".p/{width}")
    };
    let level = level.map_or_else(|| "data".to_string(), |l| l.to_string());
    format!("tile/{height}/{level}/{text}{partial}")
}

type HttpClient = ferry_fetcher::HttpsClient;

/// The relay: the databases by name, the routes to them (shared with the fills), one HTTP client for them
/// all, the private paths, and the full tiles seen.
pub struct SumDbs {
    databases: BTreeMap<String, SumDb>,
    routes: Arc<SumdbRoutes>,
    private: Vec<PrivatePattern>,
    client: HttpClient,
    timeout: Duration,
    tiles: Mutex<Tiles>,
}

type TileFetch = Shared<BoxFuture<'static, Result<Bytes, Failure>>>;

/// Full tiles kept, and the ones being fetched (single flight), by `NAME/tile/...` when proven, `relayed/NAME/tile/...` when not.
struct Tiles {
    cache: Bounded<String, Bytes>,
    in_flight: HashMap<String, TileFetch>,
}

impl std::fmt::Debug for SumDbs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SumDbs")
            .field("databases", &self.databases.values().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a database gave no tile or answer to relay (cloned to every request waiting on one tile).
#[derive(Debug, Clone)]
enum Failure {
    /// The database has no such thing (404 or 410): its reason, for a 404.
    Missing(String),
    /// Not connected, a broken answer, or a status other than 200, 404 and 410: 502.
    Upstream(String),
    /// No answer within the timeout: 504.
    Timeout,
    /// An answer whose tree note is not the database's: 502, and never relayed.
    Unverified(String),
    /// The verifier cannot prove it yet (beyond the trees verified, or not a tile it reads): relayed as the
    /// database gives it.
    Unproven,
}

impl Failure {
    /// A verifier's failure: a proof that failed is a tampered or broken answer; a database that could
    /// not be reached fails as a relayed request would.
    fn of(err: SumdbError) -> Failure {
        match err {
            SumdbError::Security(why) => Failure::Unverified(why.replace('\n', " ")),
            // Not reached, not found, not provable: the plain relay answers (or says why it cannot).
            _ => Failure::Unproven,
        }
    }
}

impl SumDbs {
    /// A relay for `settings.databases`, by `routes` (the fills' routes, so both reach a database the same
    /// way), through the fetcher's HTTP(S) client: the trusted roots (for `https://` databases) are the
    /// system's, as `rustls-native-certs` finds them (it honours `SSL_CERT_FILE` and `SSL_CERT_DIR`, as the
    /// `go` command does).
    pub fn new(settings: &SumDbSettings, routes: Arc<SumdbRoutes>) -> SumDbs {
        let client = ferry_fetcher::https_client(CONNECT_TIMEOUT.min(settings.timeout));
        SumDbs::with_client(settings, routes, client)
    }

    fn with_client(
        settings: &SumDbSettings,
        routes: Arc<SumdbRoutes>,
        client: HttpClient,
    ) -> SumDbs {
        if !settings.databases.is_empty() {
            let relayed: Vec<String> = settings.databases.iter().map(ToString::to_string).collect();
            let upstream = routes.upstream().unwrap_or("none");
            tracing::info!(sumdbs = %relayed.join(", "), upstream, timeout = ?settings.timeout, "relaying checksum databases");
        }
        for db in &settings.databases {
            routes.add(&db.name, db.configured.clone());
        }
        routes.observe(Box::new(|db, up| {
            crate::metrics::metrics().sumdb_route(db, up)
        }));
        SumDbs {
            databases: settings
                .databases
                .iter()
                .map(|db| (db.name.clone(), db.clone()))
                .collect(),
            routes,
            private: settings.private.clone(),
            client,
            timeout: settings.timeout,
            tiles: Mutex::new(Tiles {
                cache: Bounded::new(usize::MAX, TILE_CACHE_BYTES),
                in_flight: HashMap::new(),
            }),
        }
    }

    /// Every checksum database known (relayed, or the fills' `GOSUMDB`) with its route as last chosen.
    pub fn route_states(&self) -> Vec<(String, ferry_fetcher::SumdbRouteState)> {
        self.routes.states()
    }

    /// None relayed: every `/sumdb/` request is a 404, and the `go` command goes to the database directly.
    pub fn none() -> SumDbs {
        let client = ferry_fetcher::https_client(CONNECT_TIMEOUT);
        SumDbs::with_client(
            &SumDbSettings {
                databases: Vec::new(),
                ..SumDbSettings::default()
            },
            Arc::new(SumdbRoutes::new(client.clone(), "", "", "")),
            client,
        )
    }

    /// The answer to one `/sumdb/` request.
    pub(crate) async fn answer(&self, request: &SumDbPath) -> Answer {
        let Some(db) = self.databases.get(&request.name) else {
            let names: Vec<&str> = self.databases.keys().map(String::as_str).collect();
            let listed = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            return Answer::not_found(format!(
                "checksum database {} is not proxied by this Ferry (it proxies: {listed})",
                request.name
            ));
        };
        // Before any route is looked for: a private path is never sent anywhere.
        if let Ask::Lookup(module_version) = &request.what
            && let Some(refusal) = self.private_lookup(module_version)
        {
            return refusal;
        }
        let verifier = self.routes.verifier(&db.name);
        // Lookups and tiles never change: what the verifier proved (or proves now) is answered first.
        if let Some(verifier) = &verifier {
            match self.proven(verifier, &request.what).await {
                Ok(Some(answer)) => return answer,
                Ok(None) | Err(Failure::Unproven) => {}
                Err(failure) => return self.failed_through_route(db, request, failure).await,
            }
        }
        let route = match self.route(db).await {
            Ok(route) => route,
            Err(failure) => {
                return self
                    .unrouted(db, verifier.as_deref(), request, failure)
                    .await;
            }
        };
        let path = request.upstream_path();
        let outcome = match &request.what {
            Ask::Supported => return Answer::ok(TEXT, NO_CACHE, Bytes::new()),
            Ask::Tile {
                full: true, data, ..
            } => {
                let content_type = if *data { TEXT } else { OCTETS };
                self.full_tile(&route, &path)
                    .await
                    .map(|tile| Answer::ok(content_type, IMMUTABLE, tile))
            }
            Ask::Tile { data, .. } => {
                let content_type = if *data { TEXT } else { OCTETS };
                self.relay(&route, &path, content_type).await
            }
            Ask::Latest => self.noted(&route, &path, verifier.as_deref(), None).await,
            Ask::Lookup(module_version) => {
                let lookup = Some(module_version.as_str());
                self.noted(&route, &path, verifier.as_deref(), lookup).await
            }
        };
        match outcome {
            Ok(answer) => answer,
            // The newest note kept stands in for the database's when the route fails.
            Err(Failure::Upstream(_) | Failure::Timeout)
                if request.what == Ask::Latest
                    && let Some(note) = self.kept_latest(verifier.as_deref()).await =>
            {
                self.routes.failed(&route).await;
                Answer::ok(TEXT, NO_CACHE, note)
            }
            Err(failure) => self.route_failed(db, &route, &path, failure).await,
        }
    }

    /// A failure met through `route`: the route is dropped (distrusted when its answer did not verify).
    async fn route_failed(
        &self,
        db: &SumDb,
        route: &SumdbRoute,
        path: &str,
        failure: Failure,
    ) -> Answer {
        match &failure {
            Failure::Unverified(why) => self.routes.distrust(route, why).await,
            Failure::Upstream(_) | Failure::Timeout => self.routes.failed(route).await,
            Failure::Missing(_) | Failure::Unproven => {}
        }
        self.failed(
            &db.name,
            &format!("{path} (through {})", route.via),
            failure,
        )
    }

    /// A failure of the verifier's own reads: through the route of the moment, if any.
    async fn failed_through_route(
        &self,
        db: &SumDb,
        request: &SumDbPath,
        failure: Failure,
    ) -> Answer {
        let path = request.upstream_path();
        match self.route(db).await {
            Ok(route) => self.route_failed(db, &route, &path, failure).await,
            Err(_) => self.failed(&db.name, &path, failure),
        }
    }

    /// What the verifier answers from what it proved (kept lookups; tiles, read from the store or the
    /// database and proven); `Ok(None)` when it has nothing to say (a lookup not kept, any other request).
    async fn proven(
        &self,
        verifier: &Arc<SumdbVerifier>,
        what: &Ask,
    ) -> Result<Option<Answer>, Failure> {
        match what {
            Ask::Lookup(module_version) => {
                let Some((module, version)) = unescape(module_version) else {
                    return Ok(None);
                };
                let kept = verifier.kept_lookup(module.as_str(), version.as_str());
                let kept = tokio::time::timeout(self.timeout, kept)
                    .await
                    .ok()
                    .flatten();
                Ok(kept.map(|answer| Answer::ok(TEXT, NO_CACHE, answer)))
            }
            Ask::Tile { path, full, data } => {
                let content_type = if *data { TEXT } else { OCTETS };
                if *full {
                    let tile = self.proven_full_tile(verifier, path).await?;
                    return Ok(Some(Answer::ok(content_type, IMMUTABLE, tile)));
                }
                let tile = tokio::time::timeout(self.timeout, verifier.tile(path))
                    .await
                    .map_err(|_| Failure::Timeout)?
                    .map_err(Failure::of)?;
                Ok(Some(Answer::ok(content_type, NO_CACHE, tile)))
            }
            Ask::Supported | Ask::Latest => Ok(None),
        }
    }

    /// The answer when no route works: `supported` and `latest` from the newest note kept, if any.
    async fn unrouted(
        &self,
        db: &SumDb,
        verifier: Option<&SumdbVerifier>,
        request: &SumDbPath,
        failure: Failure,
    ) -> Answer {
        let kept = match request.what {
            Ask::Supported | Ask::Latest => self.kept_latest(verifier).await,
            _ => None,
        };
        match (&request.what, kept) {
            (Ask::Supported, Some(_)) => {
                tracing::debug!(sumdb = %db.name, "no route to the checksum database: answering from the store");
                Answer::ok(TEXT, NO_CACHE, Bytes::new())
            }
            (Ask::Latest, Some(note)) => Answer::ok(TEXT, NO_CACHE, note),
            (Ask::Supported, None) => {
                let why = match failure {
                    Failure::Timeout => format!("no route found within {:?}", self.timeout),
                    Failure::Missing(why) | Failure::Upstream(why) | Failure::Unverified(why) => {
                        why
                    }
                    Failure::Unproven => "no route".to_string(),
                };
                Answer::not_found(format!(
                    "checksum database {} cannot be reached from this Ferry now ({why}); the go command goes on to its next GOPROXY entry, then the database itself",
                    db.name
                ))
            }
            _ => self.failed(&db.name, "", failure),
        }
    }

    /// The newest signed tree note verified, kept in the store (or by this run), within the timeout.
    async fn kept_latest(&self, verifier: Option<&SumdbVerifier>) -> Option<Bytes> {
        let note = verifier?.latest_note();
        tokio::time::timeout(self.timeout, note)
            .await
            .ok()
            .flatten()
    }

    /// The route to `db` now, found within the relay's timeout.
    async fn route(&self, db: &SumDb) -> Result<SumdbRoute, Failure> {
        match tokio::time::timeout(self.timeout, self.routes.route(&db.name)).await {
            Ok(Ok(route)) => Ok(route),
            Ok(Err(why)) => Err(Failure::Upstream(why)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// The 403 of a lookup whose module path is private, naming the pattern it matches.
    fn private_lookup(&self, module_version: &str) -> Option<Answer> {
        let escaped = module_version.rsplit_once('@')?.0;
        let module = ModulePath::from_escaped(escaped).ok()?;
        // The go command verifies toolchains whatever GONOSUMDB says: refusing them would break GOTOOLCHAIN.
        if module.as_str() == TOOLCHAIN_MODULE {
            return None;
        }
        let private = self
            .private
            .iter()
            .find(|p| p.pattern.matches(module.as_str()))?;
        let pattern = private.pattern.as_str();
        Some(Answer::forbidden(format!(
            "{module} is a private module path ({pattern:?} in this Ferry's {}): its name is not sent to any checksum database; set GONOSUMDB={pattern} (or GOPRIVATE) in the go command's environment",
            private.from
        )))
    }

    /// A full tile: from memory, else from the database (one request per tile at a time, however many
    /// clients ask at once), then kept in memory. Not proven: the client proves it.
    async fn full_tile(&self, route: &SumdbRoute, path: &str) -> Result<Bytes, Failure> {
        let (client, target, path, timeout) = (
            self.client.clone(),
            route.target.clone(),
            path.to_string(),
            self.timeout,
        );
        // Apart from the proven ones: a tile relayed unproven is never answered as proven.
        let key = format!("relayed/{}/{path}", route.name);
        self.cached_tile(key, move || {
            async move {
                let deadline = Instant::now() + timeout;
                match ask(&client, &target, &path, deadline).await? {
                    Said::Found { body, .. } => read_bounded(body, MAX_TILE, deadline).await,
                    Said::Missing(reason) => Err(Failure::Missing(reason)),
                }
            }
            .boxed()
        })
        .await
    }

    /// A full tile proven by the verifier (read from the store, else the database), one proof per tile at
    /// a time, then kept in memory.
    async fn proven_full_tile(
        &self,
        verifier: &Arc<SumdbVerifier>,
        path: &str,
    ) -> Result<Bytes, Failure> {
        let (verifier, tile, timeout) = (verifier.clone(), path.to_string(), self.timeout);
        let key = format!("{}/{path}", verifier.key().name());
        self.cached_tile(key, move || {
            async move {
                match tokio::time::timeout(timeout, verifier.tile(&tile)).await {
                    Err(_) => Err(Failure::Timeout),
                    Ok(proven) => proven.map_err(Failure::of),
                }
            }
            .boxed()
        })
        .await
    }

    /// The full tile `key` (`[relayed/]NAME/tile/...`) from memory, else by `fetch` (joined by every request for it
    /// meanwhile), kept in memory when it came.
    async fn cached_tile(
        &self,
        key: String,
        fetch: impl FnOnce() -> BoxFuture<'static, Result<Bytes, Failure>>,
    ) -> Result<Bytes, Failure> {
        let fetch = {
            let mut tiles = self.tiles.lock().unwrap();
            if let Some(tile) = tiles.cache.get(&key) {
                metrics().sumdb_tile_cache_hits.inc();
                return Ok(tile.clone());
            }
            metrics().sumdb_tile_cache_misses.inc();
            if let Some(fetch) = tiles.in_flight.get(&key) {
                fetch.clone()
            } else {
                let fetch = fetch().shared();
                tiles.in_flight.insert(key.clone(), fetch.clone());
                fetch
            }
        };
        let fetched = fetch.await;
        let mut tiles = self.tiles.lock().unwrap();
        tiles.in_flight.remove(&key);
        if let Ok(tile) = &fetched {
            let size = tile.len() + key.len();
            tiles.cache.insert(key, tile.clone(), size);
        }
        fetched
    }

    /// `latest` or a lookup (`lookup`: its escaped `MODULE@VERSION`): read whole, and passed on only when
    /// its tree note is the database's (signed by its key, when Ferry knows it). With a `verifier`, the
    /// answer is proven too (the note consistent with the trees verified, a lookup's record in its tree)
    /// and kept; one it cannot prove now (tiles out of reach) is passed on for the client to prove.
    async fn noted(
        &self,
        route: &SumdbRoute,
        path: &str,
        verifier: Option<&SumdbVerifier>,
        lookup: Option<&str>,
    ) -> Result<Answer, Failure> {
        let deadline = Instant::now() + self.timeout;
        let body = match ask(&self.client, &route.target, path, deadline).await? {
            Said::Found { body, .. } => read_bounded(body, MAX_NOTED, deadline).await?,
            Said::Missing(reason) => return Err(Failure::Missing(reason)),
        };
        self.routes
            .check(&route.name, &body, lookup.is_some())
            .map_err(Failure::Unverified)?;
        if let Some(verifier) = verifier {
            let proof = async {
                match lookup.and_then(unescape) {
                    Some((module, version)) => {
                        verifier
                            .prove_lookup(module.as_str(), version.as_str(), &body)
                            .await
                    }
                    None => verifier.prove_latest(&body).await,
                }
            };
            match tokio::time::timeout_at(deadline, proof).await {
                Ok(Err(SumdbError::Security(why))) => {
                    return Err(Failure::Unverified(why.replace('\n', " ")));
                }
                Ok(Err(err)) => {
                    tracing::debug!(sumdb = %route.name, %path, error = %err, "relayed unproven: the client proves it");
                }
                Ok(Ok(())) | Err(_) => {}
            }
        }
        Ok(Answer::ok(TEXT, NO_CACHE, body))
    }

    /// A partial tile: the database's answer as it streams in.
    async fn relay(
        &self,
        route: &SumdbRoute,
        path: &str,
        content_type: &'static str,
    ) -> Result<Answer, Failure> {
        let deadline = Instant::now() + self.timeout;
        match ask(&self.client, &route.target, path, deadline).await? {
            // The head came in time; the body must end by the same deadline, else the response ends with
            // an error (a cut chunked body, or fewer bytes than its length) that the client sees as a
            // failure, rather than a dribble that never ends.
            Said::Found { length, body } => {
                let relayed = format!("{}={}/{path}", route.name, route.target.base);
                let body = Deadline::new(body, deadline, Some(relayed)).boxed_unsync();
                Ok(Answer::relayed(content_type, NO_CACHE, length, body))
            }
            Said::Missing(reason) => Err(Failure::Missing(reason)),
        }
    }

    /// The answer to a request the database could not answer, logged when it is a fault.
    fn failed(&self, name: &str, path: &str, failure: Failure) -> Answer {
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(": {path}")
        };
        let (status, text) = match failure {
            Failure::Missing(reason) => {
                return Answer::not_found(format!("checksum database {name}{at}: {reason}"));
            }
            Failure::Upstream(why) => (
                StatusCode::BAD_GATEWAY,
                format!("upstream failed: checksum database {name}{at}: {why}"),
            ),
            Failure::Unverified(why) => (
                StatusCode::BAD_GATEWAY,
                format!(
                    "upstream failed: checksum database {name}{at}: SECURITY ERROR: the answer does not verify ({why}); not relayed, and this route is not used for a while"
                ),
            ),
            Failure::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "upstream timed out: checksum database {name} did not answer{at} within {:?}",
                    self.timeout
                ),
            ),
            Failure::Unproven => (
                StatusCode::BAD_GATEWAY,
                format!("upstream failed: checksum database {name}{at}: cannot be proven"),
            ),
        };
        tracing::warn!(sumdb = %name, %path, error = %text, "checksum database request failed");
        Answer::text(status, text)
    }
}

/// The routes of a Ferry that runs no go command (its policy never fetches): the upstream and database
/// its configuration gives the go command (`GOPROXY`, `GOSUMDB` in `[fetcher] go_env` or the environment);
/// when neither names an upstream, databases are reached directly.
pub fn routes_without_go(fetcher: &ferry_fetcher::FetcherConfig) -> Arc<SumdbRoutes> {
    let goproxy = fetcher.go_variable("GOPROXY").unwrap_or("");
    let gosumdb = fetcher.go_variable("GOSUMDB").unwrap_or("");
    let client = ferry_fetcher::https_client(CONNECT_TIMEOUT);
    Arc::new(SumdbRoutes::new(client, goproxy, gosumdb, ""))
}

/// The module of toolchains (`GOTOOLCHAIN` downloads `golang.org/toolchain@v0.0.1-go1.X.Y.GOOS-GOARCH`).
const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

/// What start-up says when Ferry fetches toolchains but a checksum database is off: the go command always
/// verifies a toolchain against its checksum database (`GONOSUMDB`, `GOPRIVATE` do not apply, and
/// `GOSUMDB=off` fails the download), so builders that reach only Ferry need its relay of
/// `sum.golang.org`, and Ferry's own fills of toolchains are unverified without `GOSUMDB`.
pub fn toolchain_warnings(config: &crate::Config) -> Vec<String> {
    let mut warnings = Vec::new();
    if !config.policy.decide(TOOLCHAIN_MODULE).mode.fetches() {
        return warnings;
    }
    if !config
        .sumdb
        .databases
        .iter()
        .any(|db| db.name == DEFAULT_SUMDB)
    {
        let relayed: Vec<String> = config
            .sumdb
            .databases
            .iter()
            .map(ToString::to_string)
            .collect();
        let relayed = if relayed.is_empty() {
            "none (sumdbs = [])".to_string()
        } else {
            relayed.join(", ")
        };
        warnings.push(format!(
            "toolchains (golang.org/toolchain) are fetched, but Ferry does not relay {DEFAULT_SUMDB} (it relays: {relayed}): the go command always verifies a toolchain against its checksum database, so builders that reach only Ferry cannot download toolchains (GOTOOLCHAIN); add {DEFAULT_SUMDB} to sumdbs"
        ));
    }
    if config.fetcher.go_variable("GOSUMDB").map(str::trim) == Some("off") {
        warnings.push(
            "toolchains (golang.org/toolchain) are fetched with GOSUMDB=off for Ferry's go command: they are stored unverified, and builders' go commands, which always verify toolchains, need a route to the checksum database (Ferry's relay, sumdbs); set GOSUMDB for Ferry's go command to verify fills".to_string(),
        );
    }
    warnings
}

/// Logs [`toolchain_warnings`] at start-up.
pub fn warn_about_toolchains(config: &crate::Config) {
    for warning in toolchain_warnings(config) {
        tracing::warn!("{warning}");
    }
}

/// What a database said to a request it answered.
enum Said {
    /// 200, with the body still to be read.
    Found {
        length: Option<u64>,
        body: hyper::body::Incoming,
    },
    /// 404 or 410, with the first line of its reason.
    Missing(String),
}

/// Asks the database at `target` for `path`, its response head due by `deadline`: a 200 or a miss (404, 410) is what it said;
/// anything else is a failure.
async fn ask(
    client: &HttpClient,
    target: &SumdbTarget,
    path: &str,
    deadline: Instant,
) -> Result<Said, Failure> {
    let mut request = Request::get(format!("{}/{path}", target.base))
        .header(
            header::USER_AGENT,
            concat!("ferry/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::new())
        .map_err(|e| Failure::Upstream(format!("cannot make the request: {e}")))?;
    if let Some(authorization) = &target.authorization {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, authorization.clone());
    }
    // The request's trace goes on at the database (or the route to it), as the fills' requests do.
    crate::traces::inject(request.headers_mut());
    let response = match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => return Err(Failure::Timeout),
        Ok(Err(e)) if timed_out(&e) => return Err(Failure::Timeout),
        Ok(Err(e)) => {
            let mut why = Report(&e).to_string();
            if why.contains("certificate") {
                why.push_str(
                    " (Ferry trusts the system's root certificates, or those in SSL_CERT_FILE or SSL_CERT_DIR when set)",
                );
            }
            return Err(Failure::Upstream(why));
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
        let body = read_bounded(response.into_body(), 4096, deadline)
            .await
            .unwrap_or_default();
        let reason = String::from_utf8_lossy(&body);
        let reason = reason.lines().next().unwrap_or("").trim();
        return Ok(Said::Missing(if reason.is_empty() {
            status.to_string()
        } else {
            reason.chars().take(300).collect()
        }));
    }
    if status != StatusCode::OK {
        return Err(Failure::Upstream(format!("{path} answered {status}")));
    }
    let length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    Ok(Said::Found {
        length,
        body: response.into_body(),
    })
}

/// Whether the client's error is a timeout (the connect timeout, or the OS's).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// The whole body, at most `limit` bytes, by `deadline`.
async fn read_bounded(
    body: hyper::body::Incoming,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, Failure> {
    match Limited::new(Deadline::new(body, deadline, None), limit)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => match e.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::TimedOut => Err(Failure::Timeout),
            _ => Err(Failure::Upstream(format!("reading the answer: {e}"))),
        },
    }
}

/// A database's body that fails when it has not ended by `deadline`: one that stalls midway, or sends a
/// byte now and then, does not hold the client's connection for ever.
struct Deadline {
    inner: hyper::body::Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// `NAME=URL/path` of a relayed body, logged when it is cut (a body read whole is reported as a 504).
    relayed: Option<String>,
}

impl Deadline {
    fn new(inner: hyper::body::Incoming, deadline: Instant, relayed: Option<String>) -> Deadline {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            relayed,
        }
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        // The deadline first: a body that always has a byte ready must end too.
        if self.sleep.as_mut().poll(cx).is_ready() {
            if let Some(relayed) = self.relayed.take() {
                tracing::warn!(sumdb = %relayed, "checksum database answer cut: it did not end within sumdb_timeout");
            }
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the checksum database did not finish its answer in time",
            ))));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(std::io::Error::other)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_a_database_and_its_url() {
        // A bare name is reached by the route the fills take; a URL, there only.
        let db = SumDb::parse("sum.golang.org").unwrap();
        assert_eq!(db.to_string(), "sum.golang.org");
        assert!(db.configured.is_none());
        let db = SumDb::parse(" sum.corp.example = http://127.0.0.1:8080/prefix/ ").unwrap();
        assert_eq!(
            db.to_string(),
            "sum.corp.example=http://127.0.0.1:8080/prefix"
        );
        let db = SumDb::parse("s=https://user:s3cret@db.example/x").unwrap();
        assert_eq!(db.to_string(), "s=https://***@db.example/x");
        assert!(db.configured.unwrap().authorization.is_some());
        for (entry, says) in [
            ("", "is empty"),
            ("a b", "may hold only"),
            ("../x", "may hold only"),
            ("..x", "may not start"),
            ("s=ftp://x", "needs http:// or https://"),
            ("s=https://x/?q=1", "query"),
            ("s=nonsense", "is not a URL"),
        ] {
            let message = SumDb::parse(entry).unwrap_err();
            assert!(message.contains(says), "{entry}: {message}");
            assert!(message.contains("write NAME or NAME=URL"), "{message}");
        }
        let message = SumDb::parse("s=ftp://user:s3cret@x").unwrap_err();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(message.contains("ftp://***@x"), "{message}");
    }

    #[test]
    fn tile_paths_are_taken_only_in_their_canonical_spelling() {
        let full = |path: &str| match tile(path) {
            Ok(Ask::Tile { full, .. }) => Some(full),
            _ => None,
        };
        assert_eq!(full("tile/8/0/000"), Some(true));
        assert_eq!(full("tile/8/1/x001/234"), Some(true));
        assert_eq!(full("tile/8/data/002"), Some(true));
        assert_eq!(full("tile/8/0/000.p/5"), Some(false));
        assert_eq!(full("tile/8/0/x123/x456/789.p/255"), Some(false));
        for junk in [
            "tile/8/0/0",
            "tile/8/0/0000",
            "tile/8/0/001/002",
            "tile/8/0/x001",
            "tile/8/0/000.p/256",
            "tile/8/0/000.p/0",
            "tile/8/0/000.p/05",
            "tile/0/0/000",
            "tile/31/0/000",
            "tile/8/-1/000",
            "tile/8/0/../000",
            "tile/8/0/000/",
            "tile/8/x/000",
            "tile/08/0/000",
        ] {
            assert!(matches!(tile(junk), Err(Refusal::BadRequest(_))), "{junk}");
        }
    }

    #[test]
    fn sumdb_paths_are_checked_before_anything_is_forwarded() {
        let parsed = SumDbPath::parse("sum.golang.org/lookup/github.com/!azure/x@v1.2.3").unwrap();
        assert_eq!(
            parsed.what,
            Ask::Lookup("github.com/!azure/x@v1.2.3".into())
        );
        assert_eq!(
            SumDbPath::parse("sum.golang.org/supported").unwrap().what,
            Ask::Supported
        );
        for junk in [
            "../etc/passwd",
            "sum.golang.org/lookup/github.com/../x@v1.0.0",
            "sum.golang.org/lookup/github.com/x",
            "sum.golang.org/lookup/github.com/x@latest",
            "sum.golang.org/lookup/github.com/Azure/x@v1.0.0",
            "sum.golang.org/latest/x",
            "sum.golang.org/",
            "sum.golang.org",
            "sum.golang.org/tile/8/0/../../x",
        ] {
            assert!(
                matches!(SumDbPath::parse(junk), Err(Refusal::BadRequest(_))),
                "{junk}"
            );
        }
    }
}
