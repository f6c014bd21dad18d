//! The GOPROXY protocol over a module store: routing, status codes, headers and streaming.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ferry_storage::module::latest_of;
use ferry_storage::{ModulePath, ModuleStore, StorageError, Version, VersionQuery};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::body::{self, AccessLog, Body, LoggedBody};
use crate::request::{Endpoint, Refusal};

/// `.mod`, `.zip` and canonical `.info` never change once published.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `list` and `@latest` change when versions are published.
const SHORT_LIVED: &str = "public, max-age=60";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// The proxy: answers GOPROXY requests from its store.
#[derive(Debug)]
pub struct Proxy {
    store: Arc<dyn ModuleStore>,
}

/// An answer before headers common to all responses are added.
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    cache: Option<&'static str>,
    etag: Option<String>,
    content_length: Option<u64>,
    body: Body,
}

impl Answer {
    fn ok(content_type: &'static str, cache: &'static str, bytes: Bytes) -> Answer {
        Answer {
            status: StatusCode::OK,
            content_type,
            cache: Some(cache),
            etag: None,
            content_length: Some(bytes.len() as u64),
            body: body::full(bytes),
        }
    }

    fn text(status: StatusCode, message: impl Into<String>) -> Answer {
        let mut text: String = message.into();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Answer {
            status,
            content_type: TEXT,
            cache: None,
            etag: None,
            content_length: Some(text.len() as u64),
            body: body::full(text),
        }
    }

    /// A 404 whose body starts with `not found:`, which the `go` command shows to its user.
    fn not_found(reason: impl std::fmt::Display) -> Answer {
        Answer::text(StatusCode::NOT_FOUND, format!("not found: {reason}"))
    }

    fn immutable(mut self, etag: String) -> Answer {
        self.cache = Some(IMMUTABLE);
        self.etag = Some(etag);
        self
    }
}

impl From<StorageError> for Answer {
    fn from(error: StorageError) -> Answer {
        match error {
            StorageError::NotFound(key) => Answer::not_found(key),
            StorageError::Unavailable(_) | StorageError::Config(_) | StorageError::Source(_) => {
                Answer::text(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
        }
    }
}

impl Proxy {
    pub fn new(store: Arc<dyn ModuleStore>) -> Proxy {
        Proxy { store }
    }

    pub fn store(&self) -> &Arc<dyn ModuleStore> {
        &self.store
    }

    /// Answers one HTTP request. Never fails: every problem becomes a status code with a plain-text reason.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<LoggedBody> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let answer = match method {
            Method::GET | Method::HEAD => self.answer(&request).await,
            _ => Answer::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and HEAD are supported",
            ),
        };
        let status = answer.status;
        let response = finish(answer, &method);
        response.map(|body| {
            LoggedBody::new(
                body,
                AccessLog {
                    method,
                    path,
                    status,
                    started,
                },
            )
        })
    }

    async fn answer<B>(&self, request: &Request<B>) -> Answer {
        let endpoint = match Endpoint::parse(request.uri().path()) {
            Ok(endpoint) => endpoint,
            Err(Refusal::BadRequest(reason)) => {
                return Answer::text(StatusCode::BAD_REQUEST, format!("bad request: {reason}"));
            }
            Err(Refusal::NotFound(reason)) => return Answer::not_found(reason),
        };
        let if_none_match = request.headers().get(header::IF_NONE_MATCH);
        let result = match endpoint {
            Endpoint::Index => Ok(Answer::text(
                StatusCode::OK,
                "Ferry Go module proxy. Set GOPROXY to this URL.",
            )),
            Endpoint::Healthz => Ok(Answer::text(StatusCode::OK, "ok")),
            Endpoint::Readyz => Ok(self.readyz().await),
            Endpoint::SumDb => Ok(Answer::not_found(
                "checksum database proxying is not offered; the go command asks it directly",
            )),
            Endpoint::List(module) => self.list(&module).await,
            Endpoint::Latest(module) => self.latest(&module).await,
            Endpoint::Info(module, VersionQuery::Canonical(version)) => {
                let etag = etag("info", &module, &version);
                if matches_etag(if_none_match, &etag) {
                    return not_modified(etag);
                }
                self.store
                    .info(&module, &version)
                    .await
                    .map(|info| Answer::ok(JSON, IMMUTABLE, info).immutable(etag))
            }
            Endpoint::Info(module, VersionQuery::Query(query)) => Ok(Answer::not_found(format!(
                "{module}@{query}: no such version stored (queries need an upstream)"
            ))),
            Endpoint::Mod(module, version) => {
                let etag = etag("mod", &module, &version);
                if matches_etag(if_none_match, &etag) {
                    return not_modified(etag);
                }
                self.store
                    .go_mod(&module, &version)
                    .await
                    .map(|m| Answer::ok(TEXT, IMMUTABLE, m).immutable(etag))
            }
            Endpoint::Zip(module, version) => {
                let etag = etag("zip", &module, &version);
                if matches_etag(if_none_match, &etag) {
                    return not_modified(etag);
                }
                self.zip(&module, &version, request.method() == Method::HEAD)
                    .await
                    .map(|zip| zip.immutable(etag))
            }
        };
        result.unwrap_or_else(Answer::from)
    }

    async fn readyz(&self) -> Answer {
        match self.store.check().await {
            Ok(()) => Answer::text(StatusCode::OK, "ready"),
            Err(e) => Answer::text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")),
        }
    }

    async fn list(&self, module: &ModulePath) -> Result<Answer, StorageError> {
        let versions = self.store.list(module).await?;
        if versions.is_empty() {
            return Ok(Answer::not_found(format!("{module}: no versions stored")));
        }
        Ok(Answer::ok(
            TEXT,
            SHORT_LIVED,
            Bytes::from(list_body(&versions)),
        ))
    }

    async fn latest(&self, module: &ModulePath) -> Result<Answer, StorageError> {
        let versions = self.store.list(module).await?;
        let Some(latest) = latest_of(&versions) else {
            return Ok(Answer::not_found(format!("{module}: no versions stored")));
        };
        let info = self.store.info(module, latest).await?;
        Ok(Answer::ok(JSON, SHORT_LIVED, info))
    }

    async fn zip(
        &self,
        module: &ModulePath,
        version: &Version,
        head_only: bool,
    ) -> Result<Answer, StorageError> {
        let zip = self.store.zip(module, version).await?;
        let len = zip.len;
        // A HEAD answer needs only the length: the stream is dropped unread.
        let body = if head_only {
            body::empty()
        } else {
            body::stream(zip)
        };
        Ok(Answer {
            status: StatusCode::OK,
            content_type: "application/zip",
            cache: None,
            etag: None,
            content_length: Some(len),
            body,
        })
    }
}

/// The `@v/list` body: release and pre-release versions, one a line, in semver order (no pseudo-versions).
pub fn list_body(versions: &[Version]) -> String {
    versions
        .iter()
        .filter(|v| !v.is_pseudo())
        .map(|v| format!("{v}\n"))
        .collect()
}

fn finish(answer: Answer, method: &Method) -> Response<Body> {
    let Answer {
        status,
        content_type,
        cache,
        etag,
        content_length,
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
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    if status.is_client_error() || status.is_server_error() {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn not_modified(etag: String) -> Answer {
    Answer {
        status: StatusCode::NOT_MODIFIED,
        content_type: TEXT,
        cache: Some(IMMUTABLE),
        etag: Some(etag),
        content_length: None,
        body: body::empty(),
    }
}

/// A strong ETag for an immutable file: it names the file (kind, module, version), whose content never
/// changes, so a revalidation is answered without touching storage. FNV-1a keeps it stable across builds.
fn etag(kind: &str, module: &ModulePath, version: &Version) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in kind
        .bytes()
        .chain([0])
        .chain(module.as_str().bytes())
        .chain([0])
        .chain(version.as_str().bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{kind}-{hash:016x}\"")
}

fn matches_etag(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(value) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate == etag || candidate.strip_prefix("W/") == Some(etag)
    })
}
