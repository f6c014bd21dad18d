//! Turning a request path into a GOPROXY request, or into a reason to refuse it.
//!
//! The path is percent-decoded first (the `go` command sends `!` as `%21`), then split into the module
//! path and the endpoint; the module path and version are checked by `ferry_module`, so nothing
//! that could name a file outside the module's own keys gets through.
//!
//! Each request is routed once: the routing layer at the outside of the stack (`layers/route.rs`) parses
//! its path into a [`Route`] and puts it in the request's extensions, where the layers (metric labels,
//! authentication, `/metrics`, the access log) and the handler (`Proxy::handle`) read it. A new endpoint
//! is a variant here, with its arms in [`Endpoint::kind`] and [`Endpoint::needs_credentials`], and its
//! handler in `service.rs`.
//!
//! Before the path is parsed, routing takes off the [`PathPrefix`] Ferry is served under (`path_prefix`,
//! behind a reverse proxy) and the `/cached-only/` base path; that base path, or a
//! `Disable-Module-Fetch: true` header, makes the request [`CachedOnly`]: answered from the store alone.

use std::sync::Arc;

use ferry_module::{ModulePath, Version, VersionQuery};
use ferry_storage::ByteRange;
use http::{HeaderMap, HeaderValue, Request};

pub use crate::refusal::Refusal;
use crate::sumdb::SumDbPath;
use crate::vuln::VulnPath;

/// Longer request paths are refused before any parsing (Go module paths are far shorter in practice).
pub const MAX_PATH_LEN: usize = 2048;

/// Longer path elements are refused: no file system stores a name over 255 bytes, so such a module or
/// version could never be stored, and a store would answer with an error of its own instead of a reason.
pub const MAX_ELEMENT_LEN: usize = 255;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/{module}/@v/list`
    List(ModulePath),
    /// `/{module}/@v/{version}.info`: a canonical version or a query the upstream resolves.
    Info(ModulePath, VersionQuery),
    /// `/{module}/@v/{version}.mod`
    Mod(ModulePath, Version),
    /// `/{module}/@v/{version}.zip`
    Zip(ModulePath, Version),
    /// `/{module}/@latest`
    Latest(ModulePath),
    /// `/sumdb/{name}/...`: checksum database proxying, its path checked (see `sumdb`).
    SumDb(SumDbPath),
    /// `/vuln/...`: a file of the Go vulnerability database's copy (see `vuln`).
    Vuln(VulnPath),
    Healthz,
    Readyz,
    /// `/metrics`: answered by the metrics layer when this listener serves the metrics, else a 404.
    Metrics,
    /// `/`: the status page (HTML, see `status`).
    Index,
    /// `/-/search?q=PREFIX`: the stored modules whose path starts with the prefix (HTML). Paths under `/-/`
    /// never collide with a module's: no module path starts with `-`.
    Search(String),
    /// `/-/module/PATH`: a module's stored versions, retractions and deprecation (HTML).
    ModulePage(ModulePath),
    /// `/catalog?pagesize=N&token=T`: the stored versions, a page at a time (Athens's catalog).
    Catalog(CatalogPage),
    /// `/index?since=T&limit=N`: the stored versions in the order they were first stored
    /// (index.golang.org's feed).
    Feed(FeedPage),
}

/// Which page of the catalog a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogPage {
    /// Versions on the page: 1000 unless `pagesize` says (at most [`CatalogPage::MAX`]).
    pub size: usize,
    /// The last version of the previous page (its `next` token), to start after.
    pub after: Option<(ModulePath, Version)>,
}

impl CatalogPage {
    pub const DEFAULT: usize = 1000;
    pub const MAX: usize = 10_000;
}

/// Which part of the index a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    /// Versions first stored at or after this time (nanoseconds since the Unix epoch).
    pub since: u64,
    /// At most this many (2000 unless `limit` says; never more).
    pub limit: usize,
}

impl FeedPage {
    pub const MAX: usize = 2000;
}

/// Where a request was routed: its endpoint, or why it is refused (a 400 or 404, see `answer`), and
/// whether it asks for stored modules only. Made once per request, from its path (and its
/// `Disable-Module-Fetch` header), by the routing layer, and carried in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Result<Endpoint, Refusal>,
    /// Set when the request must never fill the store: every module request is then answered from the
    /// store, or 404 saying why (see `action`).
    pub cached_only: Option<CachedOnly>,
}

/// Why a request asks for stored modules only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachedOnly {
    /// It came with `Disable-Module-Fetch: true` (what pkgsite sends).
    Header,
    /// It came under the `/cached-only/` base path.
    BasePath,
}

impl std::fmt::Display for CachedOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CachedOnly::Header => {
                "this request asks for stored modules only (Disable-Module-Fetch: true)"
            }
            CachedOnly::BasePath => {
                "this request asks for stored modules only (under /cached-only/)"
            }
        })
    }
}

/// The header with which a client (pkgsite) asks for stored modules only, as proxy.golang.org reads it.
pub const DISABLE_MODULE_FETCH: &str = "disable-module-fetch";

/// The base path under which every request is [`CachedOnly`]: `GOPROXY=https://ferry/cached-only`.
pub const CACHED_ONLY_BASE: &str = "/cached-only";

/// The endpoints answered at the root as well as under a [`PathPrefix`]: probes and scrapers usually reach
/// the pod directly, not through the reverse proxy.
const ROOT_PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl Route {
    /// Routes a request URI at the root, without headers: what the metrics listener serves.
    pub fn of_uri(uri: &http::Uri) -> Route {
        Route::of(uri, &HeaderMap::new(), None)
    }

    /// Routes a request: the path under `prefix` (else only the probes, at the root; anything else is a
    /// 404 naming the prefix), then the `/cached-only/` base path, then the endpoint, and for the endpoints
    /// that take one, the query string. `Disable-Module-Fetch: true` makes the request cached-only too.
    pub fn of(uri: &http::Uri, headers: &HeaderMap, prefix: Option<&PathPrefix>) -> Route {
        let path = uri.path();
        let path = match prefix {
            None => path,
            Some(prefix) => match prefix.strip(path) {
                Some(rest) => rest,
                None if ROOT_PROBES.contains(&path) => path,
                None => {
                    return Route {
                        endpoint: Err(prefix.outside(path)),
                        cached_only: None,
                    };
                }
            },
        };
        let (path, base) = match path.strip_prefix(CACHED_ONLY_BASE) {
            Some("") => ("/", Some(CachedOnly::BasePath)),
            Some(rest) if rest.starts_with('/') => (rest, Some(CachedOnly::BasePath)),
            _ => (path, None),
        };
        let header = headers
            .get(DISABLE_MODULE_FETCH)
            .is_some_and(|value| value.as_bytes().trim_ascii().eq_ignore_ascii_case(b"true"))
            .then_some(CachedOnly::Header);
        Route {
            endpoint: Endpoint::parse(path).and_then(|endpoint| endpoint.with_query(uri.query())),
            cached_only: base.or(header),
        }
    }

    /// The route the routing layer put on `request` (none outside the stack, e.g. a `Proxy` called directly).
    pub fn on<B>(request: &Request<B>) -> Option<&Route> {
        request.extensions().get::<Route>()
    }

    /// The endpoint kind, for metric labels and the access log: [`Endpoint::kind`], or `other` for a
    /// refused path (it names no endpoint).
    pub fn kind(&self) -> &'static str {
        match &self.endpoint {
            Ok(endpoint) => endpoint.kind(),
            Err(_) => "other",
        }
    }

    /// Whether authentication applies: a refused path needs credentials like any endpoint but the probes,
    /// so its reason is only told to a user.
    pub fn needs_credentials(&self) -> bool {
        match &self.endpoint {
            Ok(endpoint) => endpoint.needs_credentials(),
            Err(_) => true,
        }
    }
}

/// The path Ferry is served under behind a reverse proxy (`path_prefix`, e.g. `/goproxy`): checked once,
/// at start-up, so that routing only compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPrefix(Arc<str>);

impl PathPrefix {
    /// The longest prefix taken.
    pub const MAX_LEN: usize = 256;

    /// Checks a `path_prefix` value: `/` and path elements of letters, digits, `-`, `.`, `_` and `~`
    /// (no `.` or `..` element, no trailing `/`), and not one of the endpoints kept at the root.
    pub fn parse(text: &str) -> Result<PathPrefix, String> {
        let example = "write e.g. \"/goproxy\", the path the reverse proxy serves Ferry under";
        if text.is_empty() {
            return Err(format!(
                "path_prefix is empty; {example}, or leave it unset to serve at the root"
            ));
        }
        if !text.starts_with('/') {
            return Err(format!(
                "path_prefix {text:?} does not start with /; {example}"
            ));
        }
        if text == "/" {
            return Err(format!(
                "path_prefix \"/\" is the root, no prefix; leave it unset to serve at the root, or {example}"
            ));
        }
        if text.ends_with('/') {
            return Err(format!(
                "path_prefix {text:?} ends with /; write it without, e.g. {:?}",
                text.trim_end_matches('/')
            ));
        }
        if text.len() > Self::MAX_LEN {
            return Err(format!(
                "path_prefix is longer than {} bytes; {example}",
                Self::MAX_LEN
            ));
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/-._~".contains(*c)))
        {
            return Err(format!(
                "path_prefix {text:?} holds {c:?}; a prefix is path elements of letters, digits, -, ., _ and ~ (no @, %, ? or #: they mean something in a GOPROXY path or URL); {example}"
            ));
        }
        let elements: Vec<&str> = text[1..].split('/').collect();
        if let Some(bad) = elements
            .iter()
            .find(|e| e.is_empty() || **e == "." || **e == "..")
        {
            return Err(format!(
                "path_prefix {text:?} has an element {bad:?}; {example}"
            ));
        }
        let first = format!("/{}", elements[0]);
        if first == CACHED_ONLY_BASE || ROOT_PROBES.contains(&text) {
            return Err(format!(
                "path_prefix {text:?} is one of Ferry's own paths ({first}); {example}"
            ));
        }
        Ok(PathPrefix(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `path` under the prefix, with its leading `/` (`/goproxy/x` is `/x`, `/goproxy` is `/`); `None` when
    /// the path is outside it (`/goproxyx` is).
    fn strip<'a>(&self, path: &'a str) -> Option<&'a str> {
        match path.strip_prefix(self.as_str())? {
            "" => Some("/"),
            rest if rest.starts_with('/') => Some(rest),
            _ => None,
        }
    }

    /// The 404 of a path outside the prefix, naming the prefix.
    fn outside(&self, path: &str) -> Refusal {
        let shown: String = path.chars().take(100).collect();
        Refusal::NotFound(format!(
            "{shown:?} is outside the path prefix {prefix}: this Ferry serves under {prefix}/ (path_prefix; only /healthz, /readyz and /metrics at the root too), so set GOPROXY=https://HOST{prefix}",
            prefix = self.as_str()
        ))
    }
}

impl std::fmt::Display for PathPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The one range of a `Range: bytes=` header: `first-last`, `first-` or `-n`. Anything else (another
/// unit, several ranges, a malformed or backwards one) is `None`, and the whole file is answered, as
/// RFC 9110 allows a server to (and as it must for a range it cannot parse).
pub(crate) fn byte_range(value: &HeaderValue) -> Option<ByteRange> {
    let (unit, spec) = value.to_str().ok()?.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |digits: &str| {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok()
    };
    match (first.trim(), last.trim()) {
        ("", n) => Some(ByteRange::Last(number(n)?)),
        (first, "") => Some(ByteRange::From {
            first: number(first)?,
            last: None,
        }),
        (first, last) => {
            let (first, last) = (number(first)?, number(last)?);
            (first <= last).then_some(ByteRange::From {
                first,
                last: Some(last),
            })
        }
    }
}

impl Endpoint {
    /// The endpoint kind as a metric label: a fixed set of values, whatever the path.
    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::List(_) => "list",
            Endpoint::Info(..) => "info",
            Endpoint::Mod(..) => "mod",
            Endpoint::Zip(..) => "zip",
            Endpoint::Latest(_) => "latest",
            Endpoint::SumDb(_) => "sumdb",
            Endpoint::Vuln(_) => "vuln",
            Endpoint::Healthz => "healthz",
            Endpoint::Readyz => "readyz",
            Endpoint::Metrics => "metrics",
            Endpoint::Index => "index",
            Endpoint::Search(_) | Endpoint::ModulePage(_) => "page",
            Endpoint::Catalog(_) => "catalog",
            Endpoint::Feed(_) => "feed",
        }
    }

    /// The module this endpoint asks about, and the version (or query) when it names one: what access
    /// rules decide on. None for the endpoints that name no module (the catalog and the index are
    /// filtered instead).
    pub fn module_named(&self) -> Option<(ModulePath, Option<String>)> {
        match self {
            Endpoint::List(module) | Endpoint::Latest(module) => Some((module.clone(), None)),
            Endpoint::Info(module, query) => {
                let query = match query {
                    VersionQuery::Canonical(version) => version.to_string(),
                    VersionQuery::Query(query) => query.clone(),
                };
                Some((module.clone(), Some(query)))
            }
            Endpoint::Mod(module, version) | Endpoint::Zip(module, version) => {
                Some((module.clone(), Some(version.to_string())))
            }
            // A module's page is as hidden as the module; a search's results are filtered instead.
            Endpoint::ModulePage(module) => Some((module.clone(), None)),
            Endpoint::Search(_) => None,
            Endpoint::SumDb(request) => request
                .looked_up()
                .map(|(module, version)| (module, Some(version.to_string()))),
            Endpoint::Healthz
            | Endpoint::Readyz
            | Endpoint::Metrics
            | Endpoint::Index
            | Endpoint::Catalog(_)
            | Endpoint::Feed(_)
            | Endpoint::Vuln(_) => None,
        }
    }

    /// Whether a request for this endpoint must authenticate (when an `auth_file` is set): all but the
    /// health probes, which load balancers and orchestrators call without credentials.
    pub fn needs_credentials(&self) -> bool {
        match self {
            Endpoint::Healthz | Endpoint::Readyz => false,
            Endpoint::List(_)
            | Endpoint::Info(..)
            | Endpoint::Mod(..)
            | Endpoint::Zip(..)
            | Endpoint::Latest(_)
            | Endpoint::SumDb(_)
            | Endpoint::Vuln(_)
            | Endpoint::Metrics
            | Endpoint::Index
            | Endpoint::Search(_)
            | Endpoint::ModulePage(_)
            | Endpoint::Catalog(_)
            | Endpoint::Feed(_) => true,
        }
    }

    /// Parses the path of a request URI (without the query string and the prefixes [`Route::of`] takes
    /// off). Requests are routed with [`Route::of`], once each.
    pub fn parse(raw_path: &str) -> Result<Endpoint, Refusal> {
        if raw_path.len() > MAX_PATH_LEN {
            return Err(Refusal::BadRequest(format!(
                "request path longer than {MAX_PATH_LEN} bytes"
            )));
        }
        let path = percent_decode(raw_path)?;
        if let Some(c) = path.chars().find(|c| c.is_control()) {
            return Err(Refusal::BadRequest(format!(
                "control character {c:?} in request path"
            )));
        }
        if path
            .split('/')
            .any(|element| element.len() > MAX_ELEMENT_LEN)
        {
            return Err(Refusal::BadRequest(format!(
                "a path element is longer than {MAX_ELEMENT_LEN} bytes"
            )));
        }
        let path = path.strip_prefix('/').unwrap_or(&path);
        match path {
            "" => return Ok(Endpoint::Index),
            "healthz" => return Ok(Endpoint::Healthz),
            "readyz" => return Ok(Endpoint::Readyz),
            "metrics" => return Ok(Endpoint::Metrics),
            "catalog" => {
                return Ok(Endpoint::Catalog(CatalogPage {
                    size: CatalogPage::DEFAULT,
                    after: None,
                }));
            }
            "index" => {
                return Ok(Endpoint::Feed(FeedPage {
                    since: 0,
                    limit: FeedPage::MAX,
                }));
            }
            _ if path.starts_with("sumdb/") => {
                return SumDbPath::parse(&path["sumdb/".len()..]).map(Endpoint::SumDb);
            }
            _ if path.starts_with("vuln/") => {
                return VulnPath::parse(&path["vuln/".len()..]).map(Endpoint::Vuln);
            }
            "-/search" => return Ok(Endpoint::Search(String::new())),
            _ if path.starts_with("-/module/") => {
                return ModulePath::new(&path["-/module/".len()..])
                    .map(Endpoint::ModulePage)
                    .map_err(|e| Refusal::BadRequest(e.to_string()));
            }
            _ => {}
        }
        if let Some(module) = path.strip_suffix("/@latest") {
            return Ok(Endpoint::Latest(module_path(module)?));
        }
        let Some((module, file)) = path.split_once("/@v/") else {
            return Err(Refusal::not_an_endpoint(path));
        };
        let module = module_path(module)?;
        if file == "list" {
            return Ok(Endpoint::List(module));
        }
        let Some((version, extension)) = file.rsplit_once('.') else {
            return Err(unknown_file(file));
        };
        let bad_version = |e: ferry_module::InvalidInput| Refusal::BadRequest(e.to_string());
        match extension {
            "info" => Ok(Endpoint::Info(
                module,
                VersionQuery::from_escaped(version).map_err(bad_version)?,
            )),
            "mod" => Ok(Endpoint::Mod(
                module,
                Version::from_escaped(version).map_err(bad_version)?,
            )),
            "zip" => Ok(Endpoint::Zip(
                module,
                Version::from_escaped(version).map_err(bad_version)?,
            )),
            _ => Err(unknown_file(file)),
        }
    }
}

impl Endpoint {
    /// The endpoint with what its query string asks (the catalog's page, the index's start and length);
    /// other endpoints ignore the query, as the GOPROXY protocol does.
    fn with_query(self, query: Option<&str>) -> Result<Endpoint, Refusal> {
        let pairs = || url::form_urlencoded::parse(query.unwrap_or("").as_bytes());
        match self {
            Endpoint::Catalog(mut page) => {
                for (key, value) in pairs() {
                    match key.as_ref() {
                        "pagesize" => page.size = count(&key, &value, CatalogPage::MAX)?,
                        "token" if !value.is_empty() => page.after = Some(catalog_token(&value)?),
                        _ => {}
                    }
                }
                Ok(Endpoint::Catalog(page))
            }
            Endpoint::Feed(mut page) => {
                for (key, value) in pairs() {
                    match key.as_ref() {
                        "limit" => page.limit = count(&key, &value, FeedPage::MAX)?,
                        "since" if !value.is_empty() => {
                            let since = humantime::parse_rfc3339(&value).map_err(|e| {
                                Refusal::BadRequest(format!(
                                    "since={value:?} is not an RFC 3339 time in UTC ({e}); want e.g. 2026-01-02T15:04:05.123456789Z"
                                ))
                            })?;
                            page.since = crate::ledger::nanos(since);
                        }
                        _ => {}
                    }
                }
                Ok(Endpoint::Feed(page))
            }
            Endpoint::Search(_) => {
                let prefix = pairs()
                    .find(|(key, _)| key == "q")
                    .map(|(_, value)| value.trim().to_string())
                    .unwrap_or_default();
                if prefix.len() > MAX_PATH_LEN {
                    return Err(Refusal::BadRequest(format!(
                        "q is longer than {MAX_PATH_LEN} bytes"
                    )));
                }
                Ok(Endpoint::Search(prefix))
            }
            other => Ok(other),
        }
    }

    /// Whether this is a page for people (the status page, a search, a module page).
    pub fn is_page(&self) -> bool {
        matches!(
            self,
            Endpoint::Index | Endpoint::Search(_) | Endpoint::ModulePage(_)
        )
    }
}

/// A page size or limit: a positive whole number, at most `max` (a larger one is taken as `max`).
fn count(key: &str, value: &str, max: usize) -> Result<usize, Refusal> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n.min(max)),
        _ => Err(Refusal::BadRequest(format!(
            "{key}={value:?}: want a whole number from 1 to {max}"
        ))),
    }
}

/// The catalog's `next` token for a page that ends with `module@version`: opaque to clients (URL-safe
/// base64), so that it needs no escaping in a query string.
pub fn catalog_token(token: &str) -> Result<(ModulePath, Version), Refusal> {
    use base64::Engine;
    let bad = || Refusal::BadRequest(format!("token={token:?} is not a token this catalog gave"));
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (module, version) = text.split_once('@').ok_or_else(bad)?;
    Ok((
        ModulePath::new(module).map_err(|_| bad())?,
        Version::new(version).map_err(|_| bad())?,
    ))
}

/// The token that starts the catalog after `module@version`.
pub fn next_catalog_token(module: &ModulePath, version: &Version) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{module}@{version}"))
}

fn module_path(escaped: &str) -> Result<ModulePath, Refusal> {
    ModulePath::from_escaped(escaped).map_err(|e| Refusal::BadRequest(e.to_string()))
}

fn unknown_file(file: &str) -> Refusal {
    let shown: String = file.chars().take(100).collect();
    Refusal::BadRequest(format!(
        "unknown file {shown:?} under @v/ (want list, VERSION.info, VERSION.mod or VERSION.zip)"
    ))
}

/// The path percent-decoded (with the `percent-encoding` crate), borrowed when it holds no `%`. A `%` not
/// followed by two hex digits is refused, where the crate would keep it as it is: such a path was not
/// written by the go command, and a lenient reading would make two spellings of one path.
fn percent_decode(raw: &str) -> Result<std::borrow::Cow<'_, str>, Refusal> {
    let bytes = raw.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(i, byte)| {
        *byte == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(Refusal::BadRequest(
            "malformed percent-encoding in request path".into(),
        ));
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| Refusal::BadRequest("request path is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_byte_range_is_read_and_anything_else_is_the_whole_file() {
        let range = |value: &str| byte_range(&HeaderValue::from_str(value).unwrap());
        let from = |first, last| Some(ByteRange::From { first, last });
        assert_eq!(range("bytes=0-99"), from(0, Some(99)));
        assert_eq!(range("bytes=100-"), from(100, None));
        assert_eq!(range("bytes=-500"), Some(ByteRange::Last(500)));
        assert_eq!(range("Bytes = 7-7"), from(7, Some(7)));
        for whole in [
            "bytes=0-1,5-9",
            "bytes=9-5",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "items=0-9",
            "bytes 0-9",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(range(whole), None, "{whole}");
        }
    }

    fn m(path: &str) -> ModulePath {
        ModulePath::new(path).unwrap()
    }

    fn v(version: &str) -> Version {
        Version::new(version).unwrap()
    }

    #[test]
    fn the_pages_live_under_a_path_no_module_can_have() {
        let route = |uri: &str| Route::of_uri(&uri.parse().unwrap()).endpoint;
        assert_eq!(route("/"), Ok(Endpoint::Index));
        assert_eq!(
            route("/-/search?q=example.com/li"),
            Ok(Endpoint::Search("example.com/li".into()))
        );
        assert_eq!(route("/-/search"), Ok(Endpoint::Search(String::new())));
        assert_eq!(
            route("/-/module/github.com/Azure/go-x"),
            Ok(Endpoint::ModulePage(m("github.com/Azure/go-x")))
        );
        assert!(matches!(
            route("/-/module/not%20a%20path"),
            Err(Refusal::BadRequest(_))
        ));
        // A module path never starts with `-`, so `/-/` names no module.
        assert!(ModulePath::new("-/search").is_err());
        assert!(Endpoint::Index.is_page() && !Endpoint::Healthz.is_page());
        assert_eq!(Endpoint::Search(String::new()).kind(), "page");
    }

    #[test]
    fn protocol_paths_parse() {
        let cases = [
            (
                "/github.com/!azure/go-x/@v/list",
                Endpoint::List(m("github.com/Azure/go-x")),
            ),
            (
                "/github.com/%21azure/go-x/@v/list",
                Endpoint::List(m("github.com/Azure/go-x")),
            ),
            (
                "/example.com/a/@v/v1.0.0.info",
                Endpoint::Info(m("example.com/a"), VersionQuery::Canonical(v("v1.0.0"))),
            ),
            (
                "/example.com/a/@v/master.info",
                Endpoint::Info(m("example.com/a"), VersionQuery::Query("master".into())),
            ),
            (
                "/example.com/a/@v/v1.0.0-!r!c.1.mod",
                Endpoint::Mod(m("example.com/a"), v("v1.0.0-RC.1")),
            ),
            (
                "/example.com/a/@v/v2.0.0+incompatible.zip",
                Endpoint::Zip(m("example.com/a"), v("v2.0.0+incompatible")),
            ),
            (
                "/example.com/a/@latest",
                Endpoint::Latest(m("example.com/a")),
            ),
            (
                "/sumdb/sum.example.org/supported",
                Endpoint::SumDb(SumDbPath {
                    name: "sum.example.org".into(),
                    what: crate::sumdb::Ask::Supported,
                }),
            ),
            ("/healthz", Endpoint::Healthz),
            ("/readyz", Endpoint::Readyz),
            ("/metrics", Endpoint::Metrics),
            ("/", Endpoint::Index),
        ];
        for (path, want) in cases {
            assert_eq!(Endpoint::parse(path), Ok(want), "{path}");
        }
    }

    #[test]
    fn each_route_has_its_kind_and_only_the_probes_go_without_credentials() {
        let cases = [
            ("/github.com/!azure/go-x/@v/list", "list", true),
            ("/example.com/a/@v/master.info", "info", true),
            ("/example.com/a/@v/v1.0.0.mod", "mod", true),
            ("/example.com/a/@v/v1.0.0.zip", "zip", true),
            ("/example.com/a/@latest", "latest", true),
            ("/sumdb/sum.example.org/supported", "sumdb", true),
            ("/vuln/index/modules.json.gz", "vuln", true),
            ("/vuln/ID/GO-2024-0001.json", "vuln", true),
            ("/healthz", "healthz", false),
            ("/readyz", "readyz", false),
            ("/metrics", "metrics", true),
            ("/", "index", true),
            // Refused paths name no endpoint, and are told to users only.
            ("/favicon.ico", "other", true),
            ("/example.com/a/@v/master.zip", "other", true),
            ("/healthz/", "other", true),
            ("/vuln/index/other.json", "other", true),
            ("/example.com/a%zz/@v/list", "other", true),
        ];
        for (path, kind, credentials) in cases {
            let route = Route::of_uri(&path.parse().unwrap());
            assert_eq!(
                (route.kind(), route.needs_credentials()),
                (kind, credentials),
                "{path}"
            );
        }
    }

    fn routed(path: &str, headers: &[(&str, &str)], prefix: Option<&str>) -> Route {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let prefix = prefix.map(|p| PathPrefix::parse(p).unwrap());
        Route::of(&path.parse().unwrap(), &map, prefix.as_ref())
    }

    #[test]
    fn the_cached_only_base_path_and_header_mark_the_route_and_route_the_rest() {
        let list = Ok(Endpoint::List(m("example.com/a")));
        let cases = [
            (
                "/cached-only/example.com/a/@v/list",
                &[][..],
                Some(CachedOnly::BasePath),
            ),
            (
                "/example.com/a/@v/list",
                &[("Disable-Module-Fetch", "true")][..],
                Some(CachedOnly::Header),
            ),
            (
                "/example.com/a/@v/list",
                &[("disable-module-fetch", "TRUE")][..],
                Some(CachedOnly::Header),
            ),
            (
                "/example.com/a/@v/list",
                &[("Disable-Module-Fetch", "false")][..],
                None,
            ),
            ("/example.com/a/@v/list", &[][..], None),
        ];
        for (path, headers, cached_only) in cases {
            let route = routed(path, headers, None);
            assert_eq!(
                (route.endpoint, route.cached_only),
                (list.clone(), cached_only),
                "{path} {headers:?}"
            );
        }
        // Every endpoint answers under the base path (the checksum database relay included).
        let sumdb = routed("/cached-only/sumdb/sum.example.org/supported", &[], None);
        assert!(
            matches!(sumdb.endpoint, Ok(Endpoint::SumDb(_))),
            "{sumdb:?}"
        );
        assert_eq!(
            routed("/cached-only", &[], None).endpoint,
            Ok(Endpoint::Index)
        );
        assert_eq!(
            routed("/cached-only/", &[], None).endpoint,
            Ok(Endpoint::Index)
        );
        // Only one base path, and only a whole element: neither is a module path.
        for path in [
            "/cached-only/cached-only/example.com/a/@v/list",
            "/cached-onlyx/example.com/a/@v/list",
        ] {
            assert!(
                matches!(
                    routed(path, &[], None).endpoint,
                    Err(Refusal::BadRequest(_))
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn under_a_prefix_every_endpoint_answers_and_outside_it_only_the_probes() {
        let prefix = Some("/goproxy");
        let under = [
            (
                "/goproxy/example.com/a/@v/list",
                Endpoint::List(m("example.com/a")),
            ),
            (
                "/goproxy/example.com/a/@latest",
                Endpoint::Latest(m("example.com/a")),
            ),
            ("/goproxy", Endpoint::Index),
            ("/goproxy/", Endpoint::Index),
            ("/goproxy/healthz", Endpoint::Healthz),
            ("/goproxy/readyz", Endpoint::Readyz),
            ("/goproxy/metrics", Endpoint::Metrics),
            ("/healthz", Endpoint::Healthz),
            ("/readyz", Endpoint::Readyz),
            ("/metrics", Endpoint::Metrics),
        ];
        for (path, want) in under {
            assert_eq!(routed(path, &[], prefix).endpoint, Ok(want), "{path}");
        }
        let cached = routed("/goproxy/cached-only/example.com/a/@v/list", &[], prefix);
        assert_eq!(cached.cached_only, Some(CachedOnly::BasePath));
        assert!(matches!(
            routed("/goproxy/sumdb/sum.example.org/supported", &[], prefix).endpoint,
            Ok(Endpoint::SumDb(_))
        ));
        assert!(matches!(
            routed("/goproxy/catalog", &[], prefix).endpoint,
            Ok(Endpoint::Catalog(_))
        ));
        assert!(matches!(
            routed("/goproxy/index?limit=5", &[], prefix).endpoint,
            Ok(Endpoint::Feed(FeedPage { limit: 5, .. }))
        ));
        for outside in [
            "/example.com/a/@v/list",
            "/",
            "/goproxyx/example.com/a/@v/list",
            "/cached-only/example.com/a/@v/list",
            "/sumdb/sum.example.org/supported",
            "/catalog",
        ] {
            match routed(outside, &[], prefix).endpoint {
                Err(Refusal::NotFound(reason)) => assert!(
                    reason.contains("path prefix /goproxy"),
                    "{outside}: {reason}"
                ),
                other => panic!("{outside}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_prefix_is_checked_with_what_to_write() {
        for good in ["/goproxy", "/a/b.c/d_e~f-1", "/healthz/x"] {
            assert_eq!(
                PathPrefix::parse(good).map(|p| p.to_string()),
                Ok(good.to_string())
            );
        }
        let bad = [
            ("", "empty"),
            ("goproxy", "does not start with /"),
            ("/", "the root"),
            ("/goproxy/", "ends with /"),
            ("/go@proxy", "'@'"),
            ("/go%20proxy", "'%'"),
            ("/go proxy", "' '"),
            ("/go?x", "'?'"),
            ("/a//b", "element \"\""),
            ("/a/../b", "element \"..\""),
            ("/healthz", "Ferry's own paths"),
            ("/cached-only/x", "Ferry's own paths"),
        ];
        for (text, says) in bad {
            match PathPrefix::parse(text) {
                Err(message) => assert!(message.contains(says), "{text:?}: {message}"),
                Ok(prefix) => panic!("{text:?} taken as {prefix}"),
            }
        }
        assert!(PathPrefix::parse(&format!("/{}", "a".repeat(PathPrefix::MAX_LEN))).is_err());
    }

    #[test]
    fn hostile_and_malformed_paths_are_refused() {
        let bad_requests = [
            "/github.com/Azure/x/@v/list",       // raw upper case
            "/github.com/!/x/@v/list",           // bad escape
            "/example.com/../etc/@v/list",       // traversal
            "/example.com/%2e%2e/etc/@v/list",   // encoded traversal
            "/example.com/a/@v/..%2f..%2fx.zip", // traversal in the version
            "/example.com/a/@v/../../x.mod",
            "/-x.com/a/@v/list",                    // leading dash
            "/example.com/a%00b/@v/list",           // NUL
            "/example.com/a%0d%0aX-Evil:1/@v/list", // CR/LF
            "/example.com/a/@v/v1.0.0.tar",         // unknown suffix
            "/example.com/a/@v/v1.0.0",             // no suffix
            "/example.com/a/@v/master.zip",         // zip needs a canonical version
            "/example.com/a/@v/v1.0.mod",
            "/example.com/a/%zz/@v/list", // bad percent-encoding
            "/example.com/a/@v/list%2",   // cut short at the end
            "/example.com/a/%+1/@v/list", // not two hex digits
            "/example.com/a/%ff/@v/list", // not UTF-8
            "/example.com//a/@v/list",
            "/example.com/a/@v/.info",
        ];
        for path in bad_requests {
            assert!(
                matches!(Endpoint::parse(path), Err(Refusal::BadRequest(_))),
                "{path}: {:?}",
                Endpoint::parse(path)
            );
        }
        let long = format!("/example.com/{}/@v/list", "a".repeat(9 * 1024));
        assert!(matches!(
            Endpoint::parse(&long),
            Err(Refusal::BadRequest(_))
        ));
        for path in ["/example.com/a", "/favicon.ico", "/example.com/a/@v"] {
            assert!(
                matches!(Endpoint::parse(path), Err(Refusal::NotFound(_))),
                "{path}"
            );
        }
    }
}
