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

use ferry_module::{ModulePath, Version, VersionQuery};
use ferry_storage::ByteRange;
use http::{HeaderValue, Request};

pub use crate::refusal::Refusal;
use crate::sumdb::SumDbPath;

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
    Healthz,
    Readyz,
    /// `/metrics`: answered by the metrics layer when this listener serves the metrics, else a 404.
    Metrics,
    /// `/`: a short description of the service.
    Index,
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

/// Where a request was routed: its endpoint, or why it is refused (a 400 or 404, see `answer`). Made
/// once per request, from its path, by the routing layer, and carried in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route(pub Result<Endpoint, Refusal>);

impl Route {
    /// Routes a request URI: its path, and for the endpoints that take one, its query string.
    pub fn of_uri(uri: &http::Uri) -> Route {
        Route(Endpoint::parse(uri.path()).and_then(|endpoint| endpoint.with_query(uri.query())))
    }

    /// The route the routing layer put on `request` (none outside the stack, e.g. a `Proxy` called directly).
    pub fn on<B>(request: &Request<B>) -> Option<&Route> {
        request.extensions().get::<Route>()
    }

    /// The endpoint kind, for metric labels and the access log: [`Endpoint::kind`], or `other` for a
    /// refused path (it names no endpoint).
    pub fn kind(&self) -> &'static str {
        match &self.0 {
            Ok(endpoint) => endpoint.kind(),
            Err(_) => "other",
        }
    }

    /// Whether authentication applies: a refused path needs credentials like any endpoint but the probes,
    /// so its reason is only told to a user.
    pub fn needs_credentials(&self) -> bool {
        match &self.0 {
            Ok(endpoint) => endpoint.needs_credentials(),
            Err(_) => true,
        }
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
            Endpoint::Healthz => "healthz",
            Endpoint::Readyz => "readyz",
            Endpoint::Metrics => "metrics",
            Endpoint::Index => "index",
            Endpoint::Catalog(_) => "catalog",
            Endpoint::Feed(_) => "feed",
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
            | Endpoint::Metrics
            | Endpoint::Index
            | Endpoint::Catalog(_)
            | Endpoint::Feed(_) => true,
        }
    }

    /// Parses the path of a request URI (without the query string). Requests are routed with
    /// [`Route::of_uri`], once each.
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
            other => Ok(other),
        }
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
            ("/healthz", "healthz", false),
            ("/readyz", "readyz", false),
            ("/metrics", "metrics", true),
            ("/", "index", true),
            // Refused paths name no endpoint, and are told to users only.
            ("/favicon.ico", "other", true),
            ("/example.com/a/@v/master.zip", "other", true),
            ("/healthz/", "other", true),
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
