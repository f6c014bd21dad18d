//! The HTTP(S) client for upstreams reached without the go command: a GOPROXY upstream's files and its
//! checksum database. Trusted roots are the system's, as `rustls-native-certs` finds them (it honours
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`, as the go command does).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A pooled HTTP/1.1 and HTTP/2 client over plain TCP or TLS.
pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// How long a connection may take to open, at most.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for `http://` and `https://` URLs whose connections take at most `connect_timeout` to open.
/// Loads the system's trusted roots once per call: build one and share it (it is cheap to clone).
pub fn https_client(connect_timeout: Duration) -> HttpsClient {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "a trusted root certificate could not be loaded");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(
            "no trusted root certificates found (install ca-certificates, or set SSL_CERT_FILE); https upstreams will fail"
        );
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// The header a fill's requests carry: this process's token. A Ferry that receives its own token is
/// being asked by its own fill (its upstream leads back to it) and answers 508 at once instead of joining
/// the fill that waits for it.
pub const LOOP_HEADER: &str = "ferry-fill";

/// A token for [`LOOP_HEADER`], random per process.
pub fn loop_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        format!("{:016x}", hasher.finish())
    })
}

/// The target of the spans the fetcher opens (one per upstream request, go command run and checksum
/// database lookup): the binary exports this target's spans as traces and keeps them out of the log.
pub const SPAN_TARGET: &str = "ferry_span";

/// What writes the trace context (W3C `traceparent`, `tracestate`) of the current span into an outbound
/// request's headers; set once by the binary when traces are on (the fetcher knows no tracing backend).
static TRACE_CONTEXT: std::sync::OnceLock<fn(&mut http::HeaderMap)> = std::sync::OnceLock::new();

/// Makes every request of the fetcher (to the GOPROXY upstream and to the checksum databases, the only
/// hosts it asks) carry the current span's trace context, written by `inject`. Set once per process; later
/// calls are ignored.
pub fn propagate_trace_context(inject: fn(&mut http::HeaderMap)) {
    let _ = TRACE_CONTEXT.set(inject);
}

/// A GET of `uri` carrying this process's [`LOOP_HEADER`] and, when traces are on, the current span's
/// trace context.
pub(crate) fn request(uri: http::Uri) -> http::Request<Empty<Bytes>> {
    let mut request = http::Request::new(Empty::new());
    *request.uri_mut() = uri;
    request
        .headers_mut()
        .insert(LOOP_HEADER, http::HeaderValue::from_static(loop_token()));
    if let Some(inject) = TRACE_CONTEXT.get() {
        inject(request.headers_mut());
    }
    request
}

/// A span for one outbound GET of `uri`: its host and path only (never a user or password the URL holds,
/// nor its query).
pub(crate) fn get_span(uri: &http::Uri) -> tracing::Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "upstream GET",
        otel.kind = "client",
        server.address = uri.host().unwrap_or_default(),
        url.path = uri.path(),
        http.response.status_code = tracing::field::Empty,
    )
}

/// What a GET gave.
#[derive(Debug)]
pub(crate) enum Got {
    /// 200, with the body.
    Body(Bytes),
    /// 404 or 410: the upstream does not have it.
    Missing,
    /// 508: the upstream is this process (it recognised the fill's own token).
    Loop,
    /// A 200 whose body is longer than the limit, said in words: the upstream answers more than any
    /// honest answer holds.
    TooLarge(String),
    /// Anything else (a status, a refused connection, a broken body), said in words.
    Failed(String),
}

/// GETs `url` and reads the body whole, up to `limit` bytes, sending `authorization` (a configured checksum
/// database's credentials) when given.
pub(crate) async fn get_with(
    client: &HttpsClient,
    url: &str,
    limit: usize,
    authorization: Option<&http::HeaderValue>,
) -> Got {
    get_in_span(client, url, limit, authorization, false).await
}

/// [`get_with`], following redirects as the go command's client does (an `[[upstreams]]` URL may send a
/// zip to a blob store); `authorization` goes only to the URL's own scheme and host.
pub(crate) async fn get_following(
    client: &HttpsClient,
    url: &str,
    limit: usize,
    authorization: Option<&http::HeaderValue>,
) -> Got {
    get_in_span(client, url, limit, authorization, true).await
}

/// A GET in its "upstream GET" span (see [`get_span`]).
async fn get_in_span(
    client: &HttpsClient,
    url: &str,
    limit: usize,
    authorization: Option<&http::HeaderValue>,
    follow: bool,
) -> Got {
    let span = match url.parse::<http::Uri>() {
        Ok(uri) => get_span(&uri),
        Err(e) => return Got::Failed(format!("{url}: {e}")),
    };
    let got = async { read(send(client, url, authorization, follow).await, url, limit).await };
    tracing::Instrument::instrument(got, span).await
}

async fn read(sent: Result<http::Response<Incoming>, String>, url: &str, limit: usize) -> Got {
    let response = match sent {
        Ok(response) => response,
        Err(reason) => return Got::Failed(reason),
    };
    tracing::Span::current().record("http.response.status_code", response.status().as_u16());
    match response.status().as_u16() {
        200 => {}
        404 | 410 => return Got::Missing,
        508 => return Got::Loop,
        status => return Got::Failed(format!("GET {url}: {status}")),
    }
    match Limited::new(response.into_body(), limit).collect().await {
        Ok(body) => Got::Body(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Got::TooLarge(format!(
            "GET {url}: the answer is larger than {limit} bytes"
        )),
        Err(e) => Got::Failed(format!("GET {url}: reading the answer: {e}")),
    }
}

/// Redirects followed at most, as the go command's HTTP client.
const MAX_REDIRECTS: usize = 10;

/// Sends a GET of `url` (with `authorization` when given) and, with `follow`, follows its redirects:
/// `authorization` only to `url`'s own scheme and host, so a token never reaches a blob store or another
/// host. Messages name `url`, never a redirect's target (a signed blob URL carries its signature).
pub(crate) async fn send(
    client: &HttpsClient,
    url: &str,
    authorization: Option<&http::HeaderValue>,
    follow: bool,
) -> Result<http::Response<Incoming>, String> {
    let origin: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let mut current = origin.clone();
    for _ in 0..=MAX_REDIRECTS {
        let mut request = request(current.clone());
        let same_origin =
            current.scheme() == origin.scheme() && current.authority() == origin.authority();
        if let Some(authorization) = authorization.filter(|_| same_origin) {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, authorization.clone());
        }
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
        let status = response.status();
        let location = response.headers().get(http::header::LOCATION);
        let next = match (follow && status.is_redirection() && status != 304, location) {
            (true, Some(location)) => location.to_str().ok().and_then(|l| resolve(&current, l)),
            _ => return Ok(response),
        };
        current = next.ok_or_else(|| format!("GET {url}: {status} to an unusable Location"))?;
    }
    Err(format!("GET {url}: more than {MAX_REDIRECTS} redirects"))
}

/// A `Location` against the URL that answered it: absolute, or a path on the same host.
fn resolve(base: &http::Uri, location: &str) -> Option<http::Uri> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().ok();
    }
    let path = match location.strip_prefix('/') {
        Some(_) => location.to_string(),
        None => {
            let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{dir}/{location}")
        }
    };
    let authority = base.authority()?;
    format!("{}://{authority}{path}", base.scheme_str()?)
        .parse()
        .ok()
}

/// An error and its sources in one line (hyper's own message is only "client error (Connect)").
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut words = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        words.push_str(": ");
        words.push_str(&cause.to_string());
        source = cause.source();
    }
    words
}
