//! Answers before they are responses: every outcome of a request, error or not, becomes an [`Answer`] in
//! one place (the `From` conversions below), and [`Answer::into_response`] adds the headers every response
//! shares, so no handler builds a response of its own.

use bytes::Bytes;
use ferry_policy::Decision;
use ferry_storage::StorageError;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};

use crate::body::{self, Body};
use crate::refusal::Refusal;
use ferry_fetcher::FetchError;

use crate::filler::FillError;
use crate::report::Report;

/// `.mod`, `.zip` and canonical `.info` never change once published.
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A file answered before its checks ended (an early `.mod`): no cache may keep it, since the checks may
/// still refuse it; the next request gets the stored, verified file as [`IMMUTABLE`].
pub(crate) const UNVERIFIED: &str = "no-store";
/// `list`, `@latest` and query `.info` answers change when versions are published.
pub(crate) const SHORT_LIVED: &str = "public, max-age=60";
/// The vulnerability database's files change when the database does (checked every `vuln.every`).
pub(crate) const VULN_DB: &str = "public, max-age=300";
pub(crate) const JSON: &str = "application/json";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
/// The pages for people (`status`).
pub(crate) const HTML: &str = "text/html; charset=utf-8";
/// A page shows the moment, and what the viewer may see: never kept by a shared cache.
pub(crate) const PRIVATE: &str = "private, no-cache";
/// What a page may load: nothing but its own inline style, and forms posted to itself only.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const ZIP: &str = "application/zip";
/// What a 503 for busy fetch slots tells the client to wait, in seconds: about the time a fetch takes.
const RETRY_AFTER_BUSY: u64 = 5;

/// An answer before the headers common to all responses are added.
pub(crate) struct Answer {
    pub status: StatusCode,
    content_type: &'static str,
    cache: Option<&'static str>,
    etag: Option<String>,
    last_modified: Option<HeaderValue>,
    location: Option<HeaderValue>,
    /// Seconds after which a client may try again (a 503 for a local, passing condition).
    retry_after: Option<u64>,
    content_length: Option<u64>,
    /// Whether the client may ask for a part (`Accept-Ranges: bytes`): stored zips.
    accept_ranges: bool,
    /// `Content-Range` of a part (206) or of a range that picks nothing (416).
    content_range: Option<HeaderValue>,
    body: Body,
}

impl Answer {
    pub fn ok(content_type: &'static str, cache: &'static str, bytes: Bytes) -> Answer {
        let len = bytes.len() as u64;
        Answer::ok_with(content_type, Some(cache), Some(len), body::full(bytes))
    }

    /// A 200 with this body, its caching and its length when known: what every successful answer is.
    fn ok_with(
        content_type: &'static str,
        cache: Option<&'static str>,
        content_length: Option<u64>,
        body: Body,
    ) -> Answer {
        Answer {
            status: StatusCode::OK,
            content_type,
            cache,
            etag: None,
            last_modified: None,
            location: None,
            retry_after: None,
            content_length,
            accept_ranges: false,
            content_range: None,
            body,
        }
    }

    pub fn text(status: StatusCode, message: impl Into<String>) -> Answer {
        let mut text: String = message.into();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let len = text.len() as u64;
        Answer {
            status,
            ..Answer::ok_with(TEXT, None, Some(len), body::full(text))
        }
    }

    /// A stored zip, streamed: a client may ask for a part of it instead.
    pub fn zip(len: u64, body: Body) -> Answer {
        Answer {
            accept_ranges: true,
            ..Answer::ok_with(ZIP, None, Some(len), body)
        }
    }

    /// A zip streamed as it comes from the upstream (see `Filled::Streaming`): its length when the
    /// upstream announced one (then a client tells a cut-off body itself), else chunked; no ranges until
    /// it is stored.
    pub fn growing_zip(len: Option<u64>, body: Body) -> Answer {
        Answer::ok_with(ZIP, None, len, body)
    }

    /// The bytes `range` of a stored zip of `len` bytes: a 206.
    pub fn zip_part(len: u64, range: std::ops::Range<u64>, body: Body) -> Answer {
        let content_range = format!("bytes {}-{}/{len}", range.start, range.end - 1);
        Answer {
            status: StatusCode::PARTIAL_CONTENT,
            content_range: HeaderValue::from_str(&content_range).ok(),
            ..Answer::zip(range.end - range.start, body)
        }
    }

    /// A range that picks no byte of the stored zip of `len` bytes: a 416 that says the length.
    pub fn no_zip_part(len: u64) -> Answer {
        Answer {
            accept_ranges: true,
            content_range: HeaderValue::from_str(&format!("bytes */{len}")).ok(),
            ..Answer::text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("range not satisfiable: the zip has {len} bytes"),
            )
        }
    }

    /// A body relayed from another server (a checksum database) as it arrives, its length known or not.
    pub fn relayed(
        content_type: &'static str,
        cache: &'static str,
        len: Option<u64>,
        body: Body,
    ) -> Answer {
        Answer::ok_with(content_type, Some(cache), len, body)
    }

    /// A file of the vulnerability database's copy, with its ETag and the copy's `modified`.
    pub fn vuln(
        content_type: &'static str,
        bytes: Bytes,
        etag: String,
        modified: Option<std::time::SystemTime>,
    ) -> Answer {
        Answer {
            etag: Some(etag),
            last_modified: modified.and_then(http_date),
            ..Answer::ok(content_type, VULN_DB, bytes)
        }
    }

    /// The 304 for a client that holds the vulnerability database's file with this ETag.
    pub fn vuln_not_modified(etag: String, modified: Option<std::time::SystemTime>) -> Answer {
        Answer {
            cache: Some(VULN_DB),
            last_modified: modified.and_then(http_date),
            ..not_modified(etag)
        }
    }

    /// A version an advisory of the vulnerability database affects, with a fix (`vuln.refuse_affected`):
    /// 403, which stops the go command, naming the advisory and the version to upgrade to.
    pub fn vulnerable(
        module: &ferry_module::ModulePath,
        version: &ferry_module::Version,
        id: &str,
        fixed: &str,
    ) -> Answer {
        crate::metrics::metrics().blocked_answers.inc();
        Answer::forbidden(format!(
            "{module}@{version} is affected by {id}, fixed in {fixed}; this proxy refuses affected versions (vuln.refuse_affected): upgrade to {module}@{fixed} or later"
        ))
    }

    /// A 404 whose body starts with `not found:`, which the `go` command shows to its user.
    /// A blocked version: 403, which stops the go command (a 404 or 410 would send it on to the next
    /// GOPROXY entry, `direct` included), with the reason the admin gave.
    pub fn blocked(
        module: &ferry_module::ModulePath,
        version: &ferry_module::Version,
        reason: &str,
    ) -> Answer {
        crate::metrics::metrics().blocked_answers.inc();
        Answer::text(
            StatusCode::FORBIDDEN,
            format!("{module}@{version} is blocked on this proxy: {reason}"),
        )
    }

    /// A version a version rule of the download policy refuses: 403 (the go command stops and shows it,
    /// without trying another proxy), naming the rule by its line and, for an age, when the version becomes
    /// available.
    pub fn refused_by_rule(
        module: &ferry_module::ModulePath,
        version: &ferry_module::Version,
        refusal: &ferry_policy::Refusal<'_>,
    ) -> Answer {
        Answer::text(
            StatusCode::FORBIDDEN,
            format!("{module}@{version} is not served by this proxy: {refusal}"),
        )
    }

    /// Whether the answer is a success (2xx) or "not modified".
    pub fn is_success(&self) -> bool {
        self.status.is_success() || self.status == StatusCode::NOT_MODIFIED
    }

    pub fn not_found(reason: impl std::fmt::Display) -> Answer {
        Answer::text(StatusCode::NOT_FOUND, format!("not found: {reason}"))
    }

    /// What a caller the access rules refuse gets for a module: a 404 that depends on nothing but the
    /// module and version asked for, the same for a module the rule hides that exists and one that does
    /// not, so that its existence does not leak.
    pub fn hidden(module: &ferry_module::ModulePath, version: Option<&str>) -> Answer {
        match version {
            Some(version) => Answer::not_found(format!(
                "{module}@{version}: no such module or version on this proxy"
            )),
            None => Answer::not_found(format!("{module}: no such module on this proxy")),
        }
    }

    /// A 403 whose body starts with `forbidden:`: the `go` command stops there (it falls through to its next
    /// GOPROXY entry only on 404 and 410) and shows the reason.
    pub fn forbidden(reason: impl std::fmt::Display) -> Answer {
        Answer::text(StatusCode::FORBIDDEN, format!("forbidden: {reason}"))
    }

    /// A 503 for a local condition that passes, telling the client to try again after `seconds`.
    /// A 429: the requester's fill budget is spent; it has a fill again in `retry_after` seconds.
    pub fn fill_budget_spent(spent: &crate::fair_use::Spent) -> Answer {
        let (requester, seconds) = (&spent.requester, spent.retry_after);
        let mut answer = Answer::text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many requests: {requester} has used its budget of fills from the upstream (fetcher.fill_rate); what is stored is still served; try again in {seconds}s"
            ),
        );
        answer.retry_after = Some(seconds);
        answer
    }

    pub fn busy(message: impl Into<String>, seconds: u64) -> Answer {
        let mut answer = Answer::text(StatusCode::SERVICE_UNAVAILABLE, message);
        answer.retry_after = Some(seconds);
        answer
    }

    pub fn immutable(mut self, etag: String) -> Answer {
        self.cache = Some(IMMUTABLE);
        self.etag = Some(etag);
        self
    }
}

/// A path refused by routing: a 400 or a 404 with its reason.
impl From<Refusal> for Answer {
    fn from(refusal: Refusal) -> Answer {
        match refusal {
            Refusal::BadRequest(reason) => {
                Answer::text(StatusCode::BAD_REQUEST, format!("bad request: {reason}"))
            }
            Refusal::NotFound(reason) => Answer::not_found(reason),
        }
    }
}

impl From<StorageError> for Answer {
    fn from(error: StorageError) -> Answer {
        Answer::from(&error)
    }
}

impl From<&StorageError> for Answer {
    fn from(error: &StorageError) -> Answer {
        match error {
            StorageError::NotFound(key) => Answer::not_found(key),
            StorageError::Unavailable(_) | StorageError::Config(_) | StorageError::Source(_) => {
                Answer::text(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
        }
    }
}

impl From<FillError> for Answer {
    fn from(error: FillError) -> Answer {
        let status = match &error {
            FillError::Fetch(fetch) => return Answer::from(&**fetch),
            FillError::Storage(storage) => return Answer::from(storage.as_ref()),
            FillError::Unusable(_) => StatusCode::BAD_GATEWAY,
            // A local condition that passes: the slots free up as fills end.
            FillError::Busy(_) | FillError::Abandoned | FillError::Coordination(_) => {
                return Answer::busy(error.to_string(), RETRY_AFTER_BUSY);
            }
            FillError::Internal { .. } => return internal_error(&error),
        };
        Answer::text(status, error.to_string())
    }
}

impl From<&FetchError> for Answer {
    /// The body says which module failed and how in go's words, but never the upstream's address nor a
    /// local path ([`FetchError::client_message`]); the log line of the fill has them.
    fn from(error: &FetchError) -> Answer {
        match error {
            // go's own reason, which the go command shows to its user; `not found:` is said once.
            FetchError::NotFound { .. } => Answer::not_found(error.client_message()),
            FetchError::Upstream { .. }
            // An answer too large to read (an upstream list of a million versions) is the upstream's.
            | FetchError::InvalidOutput { .. }
            | FetchError::OutputTooLarge { .. } => Answer::text(
                StatusCode::BAD_GATEWAY,
                format!("upstream failed: {}", error.client_message()),
            ),
            FetchError::Timeout { .. } => Answer::text(
                StatusCode::GATEWAY_TIMEOUT,
                format!("upstream timed out: {}", error.client_message()),
            ),
            FetchError::GoMissing { .. }
            | FetchError::Io { .. }
            | FetchError::WorkDirBusy { .. }
            | FetchError::LocalFault { .. } => internal_error(error),
        }
    }
}

/// A local fault (the work dir, a missing `go`): a 503, since it is this server's and not the upstream's,
/// and may pass; the details (local paths, the OS error) go to the log only, never to the client.
fn internal_error(error: &(dyn std::error::Error + 'static)) -> Answer {
    tracing::error!(error = %Report(error), "local fault while filling from the upstream");
    Answer::text(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable: Ferry could not complete the fetch on its side (a local fault); its log has the details",
    )
}

/// The response for `answer`, with the headers every response shares; a `HEAD` gets the headers alone.
pub(crate) fn into_response(answer: Answer, method: &Method) -> Response<Body> {
    let Answer {
        status,
        content_type,
        cache,
        etag,
        last_modified,
        location,
        retry_after,
        content_length,
        accept_ranges,
        content_range,
        body,
    } = answer;
    let body = if method == Method::HEAD {
        body::empty()
    } else {
        body
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(len) = content_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Some(cache) = cache {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(last_modified) = last_modified {
        headers.insert(header::LAST_MODIFIED, last_modified);
    }
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(location) = location {
        headers.insert(header::LOCATION, location);
    }
    if accept_ranges {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if let Some(content_range) = content_range {
        headers.insert(header::CONTENT_RANGE, content_range);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    if content_type == HTML {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_POLICY),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    // Errors and redirects depend on the moment (the store, the upstream, the policy): never cached.
    if status.is_client_error()
        || status.is_server_error()
        || status.is_redirection() && status != StatusCode::NOT_MODIFIED
    {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A temporary redirect to the policy's `downloadURL` joined with the escaped request path. The path is
/// rebuilt from the validated module path and version, so a request can neither choose where the redirect
/// points nor inject a header.
pub(crate) fn redirect(decision: &Decision<'_>, escaped_path: &str) -> Answer {
    let target = decision.redirect_target(escaped_path);
    match target.as_deref().map(HeaderValue::from_str) {
        Some(Ok(location)) => {
            let mut answer = Answer::text(
                StatusCode::TEMPORARY_REDIRECT,
                format!("redirecting to {}", location.to_str().unwrap_or_default()),
            );
            answer.location = Some(location);
            answer
        }
        _ => Answer::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the download policy redirects but gives no usable downloadURL ({})",
                decision.rule.for_clients()
            ),
        ),
    }
}

pub(crate) fn matches_etag(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    // Only the file's own ETag proves the client has it; `*` ("any version exists") would need a storage
    // lookup to be true, so it is not taken as a match.
    let Some(value) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == etag || candidate.strip_prefix("W/") == Some(etag))
}

/// `Last-Modified` of `time`.
fn http_date(time: std::time::SystemTime) -> Option<HeaderValue> {
    HeaderValue::from_str(&httpdate::fmt_http_date(time)).ok()
}

/// The 304 for a client that holds the file with this ETag.
pub(crate) fn not_modified(etag: String) -> Answer {
    Answer {
        status: StatusCode::NOT_MODIFIED,
        content_type: TEXT,
        cache: Some(IMMUTABLE),
        etag: Some(etag),
        last_modified: None,
        location: None,
        retry_after: None,
        content_length: None,
        accept_ranges: false,
        content_range: None,
        body: body::empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::Report;

    /// An error over `cause`; its message ends with the cause's when `repeats` (as object_store's and
    /// most wrappers' do), or says it in its own words (as a translated storage failure does).
    #[derive(Debug)]
    struct Layer {
        message: &'static str,
        repeats: bool,
        cause: Option<Box<Layer>>,
    }

    fn layer(message: &'static str, repeats: bool, cause: Option<Layer>) -> Layer {
        Layer {
            message,
            repeats,
            cause: cause.map(Box::new),
        }
    }

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match &self.cause {
                Some(cause) if self.repeats => write!(f, "{}: {cause}", self.message),
                _ => f.write_str(self.message),
            }
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.cause.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn a_report_says_each_cause_once_when_every_layer_below_repeats_the_one_under_it() {
        let refused = layer("Connection refused", false, None);
        let http = layer("error sending request", true, Some(refused));
        let store = layer("Generic S3 error", true, Some(http));
        let top = layer("nothing answers at the endpoint", false, Some(store));
        assert_eq!(
            Report(&top).to_string(),
            "nothing answers at the endpoint: Generic S3 error: error sending request: Connection refused"
        );
    }
}
