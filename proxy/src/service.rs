//! The GOPROXY protocol over a module store: routing, status codes, headers and streaming, and on a miss
//! what the download policy says for the module (fetch, fetch in the background, redirect, or decline).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_module::{ModulePath, Version, VersionQuery};
use ferry_module::{escape, latest_of};
use ferry_policy::{Decision, Mode, Policy};
use ferry_storage::{ModuleStore, StorageError};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::body::{self, AccessLog, Body, LoggedBody};
use crate::request::{Endpoint, Refusal};
use crate::upstream::{FillError, Upstream};

/// `.mod`, `.zip` and canonical `.info` never change once published.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `list`, `@latest` and query `.info` answers change when versions are published.
const SHORT_LIVED: &str = "public, max-age=60";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// The proxy: answers GOPROXY requests from its store and, on a miss, obeys its download policy.
#[derive(Debug)]
pub struct Proxy {
    store: Arc<dyn ModuleStore>,
    /// None when no mode can fetch: a miss that would fetch is then answered 404.
    upstream: Option<Upstream>,
    /// Replaced whole on reload (SIGHUP); each request decides with the policy in force when it started.
    policy: RwLock<Arc<Policy>>,
}

/// Why a new policy was not put in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the new download policy fetches from the upstream, but Ferry started with a policy that never fetches, so it has no upstream (the go command was not set up); restart Ferry to use this policy"
)]
pub struct NoUpstream;

/// Whether any mode of `policy` (a block's or the default) fetches from the upstream.
pub fn policy_fetches(policy: &Policy) -> bool {
    policy
        .rules()
        .iter()
        .chain([policy.default_rule()])
        .any(|rule| rule.mode().fetches())
}

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

/// What a request missed in the store, for the answers that explain a miss.
struct Miss<'a> {
    module: &'a ModulePath,
    /// The canonical version or the query asked for.
    query: &'a str,
    /// The request's path as the protocol spells it (escaped, without the leading `/`), for redirects.
    escaped_path: String,
}

/// An answer before the headers common to all responses are added.
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    cache: Option<&'static str>,
    etag: Option<String>,
    location: Option<HeaderValue>,
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
            location: None,
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
            location: None,
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

impl From<FillError> for Answer {
    fn from(error: FillError) -> Answer {
        let status = match error {
            FillError::NotFound(reason) => return Answer::not_found(reason),
            FillError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            FillError::Upstream(_) => StatusCode::BAD_GATEWAY,
            FillError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            FillError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Answer::text(status, error.to_string())
    }
}

impl Proxy {
    /// A proxy that serves its store only: every miss is a 404.
    pub fn new(store: Arc<dyn ModuleStore>) -> Proxy {
        let policy = Policy::single(Mode::None, None).expect("the none mode needs no download URL");
        Proxy::with_upstream(store, None, policy)
    }

    /// A proxy that fills its store through `upstream` as `policy` says.
    pub fn with_upstream(
        store: Arc<dyn ModuleStore>,
        upstream: Option<Upstream>,
        policy: Policy,
    ) -> Proxy {
        Proxy {
            store,
            upstream,
            policy: RwLock::new(Arc::new(policy)),
        }
    }

    pub fn store(&self) -> &Arc<dyn ModuleStore> {
        &self.store
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().unwrap().clone()
    }

    /// Puts a new policy in force for the requests that start from now on. Refused when the policy has a
    /// mode that fetches but this proxy has no upstream (it started with a policy that never fetches, so the
    /// `go` command was never set up): those modes would answer every miss with a 404.
    pub fn set_policy(&self, policy: Policy) -> Result<(), NoUpstream> {
        if self.upstream.is_none() && policy_fetches(&policy) {
            return Err(NoUpstream);
        }
        *self.policy.write().unwrap() = Arc::new(policy);
        Ok(())
    }

    /// Stops background fetching, letting queued fetches finish within `deadline`.
    pub async fn drain(&self, deadline: Duration) {
        if let Some(upstream) = &self.upstream {
            upstream.drain(deadline).await;
        }
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
        let head_only = request.method() == Method::HEAD;
        let policy = self.policy();
        let decide = |module: &ModulePath| policy.decide(module.as_str());
        let (module, version, file) = match endpoint {
            Endpoint::Index => {
                return Answer::text(
                    StatusCode::OK,
                    "Ferry Go module proxy. Set GOPROXY to this URL.",
                );
            }
            Endpoint::Healthz => return Answer::text(StatusCode::OK, "ok"),
            Endpoint::Readyz => return self.readyz().await,
            Endpoint::SumDb => {
                return Answer::not_found(
                    "checksum database proxying is not offered; the go command asks it directly",
                );
            }
            Endpoint::List(module) => return self.list(&module, &decide(&module)).await,
            Endpoint::Latest(module) => return self.latest(&module, &decide(&module)).await,
            Endpoint::Info(module, VersionQuery::Query(query)) => {
                return self.query_info(&module, &query, &decide(&module)).await;
            }
            Endpoint::Info(module, VersionQuery::Canonical(version)) => {
                (module, version, VersionFile::Info)
            }
            Endpoint::Mod(module, version) => (module, version, VersionFile::Mod),
            Endpoint::Zip(module, version) => (module, version, VersionFile::Zip),
        };
        let decision = decide(&module);
        self.version_file(&module, &version, file, if_none_match, head_only, &decision)
            .await
    }

    async fn readyz(&self) -> Answer {
        match self.store.check().await {
            Ok(()) => Answer::text(StatusCode::OK, "ready"),
            Err(e) => Answer::text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")),
        }
    }

    /// `.info`, `.mod` or `.zip` of a canonical version: from the store; on a miss, as the policy says.
    async fn version_file(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
        if_none_match: Option<&HeaderValue>,
        head_only: bool,
        decision: &Decision<'_>,
    ) -> Answer {
        let etag = etag(file.extension(), module, version);
        if matches_etag(if_none_match, &etag) {
            return not_modified(etag);
        }
        let stored = match self.stored_file(module, version, file, head_only).await {
            Err(StorageError::NotFound(_)) => match (decision.mode, &self.upstream) {
                (Mode::Sync, Some(upstream)) => match upstream.fill(module, version.as_str()).await
                {
                    Ok(_) => self.stored_file(module, version, file, head_only).await,
                    Err(e) => return Answer::from(e),
                },
                _ => {
                    let escaped_path = format!(
                        "{}/@v/{}.{}",
                        module.escaped(),
                        version.escaped(),
                        file.extension()
                    );
                    return self.miss(
                        &Miss {
                            module,
                            query: version.as_str(),
                            escaped_path,
                        },
                        decision,
                    );
                }
            },
            stored => stored,
        };
        stored
            .map(|answer| answer.immutable(etag))
            .unwrap_or_else(Answer::from)
    }

    async fn stored_file(
        &self,
        module: &ModulePath,
        version: &Version,
        file: VersionFile,
        head_only: bool,
    ) -> Result<Answer, StorageError> {
        match file {
            VersionFile::Info => self
                .store
                .info(module, version)
                .await
                .map(|info| Answer::ok(JSON, IMMUTABLE, info)),
            VersionFile::Mod => self
                .store
                .go_mod(module, version)
                .await
                .map(|m| Answer::ok(TEXT, IMMUTABLE, m)),
            VersionFile::Zip => self.zip(module, version, head_only).await,
        }
    }

    /// A miss that is not fetched before answering: redirect, queue a background fetch, or decline, with
    /// an answer that says which.
    fn miss(&self, miss: &Miss<'_>, decision: &Decision<'_>) -> Answer {
        let what = format!("{}@{}", miss.module, miss.query);
        if decision.mode.fetches_in_background()
            && let Some(upstream) = &self.upstream
        {
            upstream.enqueue(miss.module, miss.query);
        }
        match (decision.mode, &self.upstream) {
            (Mode::Redirect | Mode::AsyncRedirect, _) => redirect(decision, &miss.escaped_path),
            (Mode::Async, Some(_)) => Answer::not_found(format!(
                "{what} is not stored yet; it is being fetched, try again shortly"
            )),
            (Mode::None, _) => Answer::not_found(format!(
                "{what} is not stored, and the download policy does not fetch it ({})",
                decision.rule
            )),
            (Mode::Sync | Mode::Async, _) => Answer::not_found(format!(
                "{what} is not stored, and this Ferry has no upstream"
            )),
        }
    }

    /// `.info` of a query (a branch, a commit, `latest`): resolved upstream to a canonical version, which is
    /// served from the store (fetched first when missing). Only `sync` answers a query; the other modes
    /// treat it as a miss.
    async fn query_info(
        &self,
        module: &ModulePath,
        query: &str,
        decision: &Decision<'_>,
    ) -> Answer {
        let upstream = match (decision.mode, &self.upstream) {
            (Mode::Sync, Some(upstream)) => upstream,
            _ => {
                let escaped_path = format!("{}/@v/{}.info", module.escaped(), escape(query));
                return self.miss(
                    &Miss {
                        module,
                        query,
                        escaped_path,
                    },
                    decision,
                );
            }
        };
        let resolved = match upstream.resolve(module, query).await {
            Ok(resolved) => resolved,
            Err(e) => return Answer::from(e),
        };
        let version = match Version::new(&resolved.version) {
            Ok(version) => version,
            Err(e) => {
                return Answer::from(FillError::Upstream(format!(
                    "{module}@{query} resolved to {e}"
                )));
            }
        };
        let info = match self.store.info(module, &version).await {
            Err(StorageError::NotFound(_)) => match upstream.fill(module, version.as_str()).await {
                Ok(_) => self.store.info(module, &version).await,
                Err(e) => return Answer::from(e),
            },
            stored => stored,
        };
        // The answer names what the query resolves to now, so it is only briefly cacheable.
        info.map(|info| Answer::ok(JSON, SHORT_LIVED, info))
            .unwrap_or_else(Answer::from)
    }

    /// `@v/list`: the stored versions, merged with the upstream's in `sync` and `async`. When the upstream
    /// fails, the stored versions are the answer (logged); only with none stored does the failure show.
    async fn list(&self, module: &ModulePath, decision: &Decision<'_>) -> Answer {
        if decision.mode.redirects() {
            return redirect(decision, &format!("{}/@v/list", module.escaped()));
        }
        let stored = match self.store.list(module).await {
            Ok(stored) => stored,
            Err(e) => return Answer::from(e),
        };
        let mut versions = match (decision.mode, &self.upstream) {
            (Mode::Sync | Mode::Async, Some(upstream)) => match upstream.list(module).await {
                Ok(mut versions) => {
                    versions.extend(stored);
                    versions
                }
                Err(e) if !stored.is_empty() => {
                    tracing::warn!(%module, error = %e, "upstream list failed; answering with the stored versions");
                    stored
                }
                Err(e) => return Answer::from(e),
            },
            _ if stored.is_empty() => {
                return Answer::not_found(nothing_stored(module, decision));
            }
            _ => stored,
        };
        versions.sort();
        versions.dedup();
        Answer::ok(TEXT, SHORT_LIVED, Bytes::from(list_body(&versions)))
    }

    /// `@latest`: the upstream's answer in `sync` and `async`; otherwise, or when the upstream fails, the
    /// latest stored version by the `go` command's rule.
    async fn latest(&self, module: &ModulePath, decision: &Decision<'_>) -> Answer {
        if decision.mode.redirects() {
            return redirect(decision, &format!("{}/@latest", module.escaped()));
        }
        let upstream_error = match (decision.mode, &self.upstream) {
            (Mode::Sync | Mode::Async, Some(upstream)) => {
                match upstream.resolve(module, "latest").await {
                    Ok(latest) => {
                        let mut info =
                            serde_json::json!({ "Version": latest.version, "Time": latest.time });
                        if let Some(origin) = latest.origin {
                            info["Origin"] = origin;
                        }
                        return Answer::ok(JSON, SHORT_LIVED, Bytes::from(info.to_string()));
                    }
                    Err(e) => Some(e),
                }
            }
            _ => None,
        };
        let stored = match self.store.list(module).await {
            Ok(stored) => stored,
            Err(e) => return Answer::from(e),
        };
        match (latest_of(&stored), upstream_error) {
            (Some(latest), upstream_error) => {
                if let Some(e) = upstream_error {
                    tracing::warn!(%module, error = %e, "upstream latest failed; answering with the latest stored version");
                }
                let info = self.store.info(module, latest).await;
                info.map(|info| Answer::ok(JSON, SHORT_LIVED, info))
                    .unwrap_or_else(Answer::from)
            }
            (None, Some(e)) => Answer::from(e),
            (None, None) => Answer::not_found(nothing_stored(module, decision)),
        }
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
            location: None,
            content_length: Some(len),
            body,
        })
    }
}

/// Why `list` or `@latest` has nothing to say, naming the policy rule when it is the reason.
fn nothing_stored(module: &ModulePath, decision: &Decision<'_>) -> String {
    match decision.mode {
        Mode::None => format!(
            "{module}: no versions stored, and the download policy does not fetch it ({})",
            decision.rule
        ),
        _ => format!("{module}: no versions stored"),
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
        location,
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
    if let Some(location) = location {
        headers.insert(header::LOCATION, location);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
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
fn redirect(decision: &Decision<'_>, escaped_path: &str) -> Answer {
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
                decision.rule
            ),
        ),
    }
}

fn not_modified(etag: String) -> Answer {
    Answer {
        status: StatusCode::NOT_MODIFIED,
        content_type: TEXT,
        cache: Some(IMMUTABLE),
        etag: Some(etag),
        location: None,
        content_length: None,
        body: body::empty(),
    }
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
    format!("\"{kind}-{hash:016x}\"")
}

fn matches_etag(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
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
