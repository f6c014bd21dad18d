//! The admin API, served on its own listener (`admin_listen`, off by default), apart from the module
//! traffic: without authentication, who may administer is decided by who reaches that address (see below
//! for what changes with `auth_file`). JSON in and out, under `/admin/v1/`:
//!
//! | method and path | does |
//! |---|---|
//! | `GET versions?prefix=P` | the versions under a module prefix: status, bytes, stored and last used |
//! | `GET usage?prefix=P` | versions and bytes per module, and the total |
//! | `DELETE versions/MODULE@VERSION` | deletes a stored version |
//! | `GET blocks` | the blocked versions and their reasons |
//! | `PUT blocks/MODULE@VERSION` `{"reason": "…"}` | blocks a version |
//! | `DELETE blocks/MODULE@VERSION` | lifts a block |
//! | `POST gc?dry_run=true` | a collection (or its plan), progress streamed |
//! | `POST reindex` | reconciles the index with the store, progress streamed |
//!
//! Long operations answer `application/x-ndjson`: `{"progress": …}` lines while they run, then one
//! `{"result": …}` or `{"error": …}` line.
//!
//! When authentication is configured (`auth_file`), every request must authenticate here too (the same
//! layer as the proxy's), and the access rules decide: the `admin` right on a version's module for a
//! delete, block or unblock, on every module for `gc` and `reindex`; the listings show the modules the
//! caller administers. Without authentication, whoever reaches the address administers, as before.
//! Every change is written to the audit trail.
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::net::TcpListener;

use super::{Admin, AdminError};
use crate::audit::{Action, Caller};
use crate::body::{self, Body};
use crate::layers::auth::{AuthLayer, Gate, Identity};
use crate::layers::client::Client;
use crate::service::Proxy;
use crate::status::admin_forms;

/// The largest request body read (a block's reason).
const MAX_BODY: usize = 64 * 1024;
/// Progress lines are written at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Serves the admin API on `listener` until `shutdown` completes, to whoever reaches it.
pub async fn run_admin(listener: TcpListener, admin: Admin, shutdown: impl Future<Output = ()>) {
    run_admin_with(listener, admin, None, None, shutdown).await;
}

/// Serves the admin API on `listener` until `shutdown` completes; with `auth` (passwords, tokens, OIDC),
/// to those it lets in, as the access rules allow; with `pages`, also that proxy's status pages outside `/admin/v1/`, with their admin forms
/// (see `status::admin_forms`), under the same rights.
pub async fn run_admin_with(
    listener: TcpListener,
    admin: Admin,
    auth: Option<Arc<Gate>>,
    pages: Option<Arc<Proxy>>,
    shutdown: impl Future<Output = ()>,
) {
    let inner = AdminService {
        admin: Arc::new(admin),
        secured: auth.is_some(),
        pages,
    };
    let authenticated = tower::Layer::layer(&AuthLayer(auth), inner);
    let service = move |peer: std::net::IpAddr| {
        let authenticated = authenticated.clone();
        hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            // The peer is the client: no proxy is believed on this listener.
            request.extensions_mut().insert(Client {
                address: peer,
                https: false,
            });
            let mut authenticated = authenticated.clone();
            tower::Service::call(&mut authenticated, request)
        })
    };
    // Collections can be long; an idle or stuck connection is not kept for ever.
    let limit = Duration::from_secs(6 * 3600);
    crate::server::serve_plain(listener, service, limit, "admin", shutdown).await;
}

/// The API as a `tower` service, for the authentication layer in front of it.
#[derive(Clone)]
struct AdminService {
    admin: Arc<Admin>,
    /// Whether authentication is on: then the access rules decide each operation.
    secured: bool,
    /// The proxy whose status pages this listener serves too.
    pages: Option<Arc<Proxy>>,
}

impl tower::Service<Request<hyper::body::Incoming>> for AdminService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = crate::layers::ResponseFuture<Infallible>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let pages = this.pages.as_deref();
            Ok(answer(&this.admin, this.secured, pages, request).await)
        })
    }
}

/// What the caller may administer: everything without authentication, else what the rules grant.
struct Rights<'a> {
    admin: &'a Admin,
    secured: bool,
    caller: Caller<'a>,
}

impl Rights<'_> {
    fn module(&self, module: &str) -> bool {
        !self.secured
            || self
                .admin
                .access
                .load()
                .may_admin(self.caller.identity, module)
    }

    /// The right on `module@version` for `action`, or a 403 naming the rules (audited as denied).
    fn check(&self, action: &str, module: &str, version: Option<&str>) -> Result<(), AdminError> {
        let allowed = match version {
            Some(_) => self.module(module),
            None => !self.secured || self.admin.access.load().may_admin_all(self.caller.identity),
        };
        if allowed {
            return Ok(());
        }
        self.admin
            .audit
            .record(Action::Denied, &self.caller, Some(module), version);
        let who = self
            .caller
            .identity
            .map_or("anonymous", |id: &Identity| &id.user);
        Err(AdminError::Forbidden(format!(
            "{who} may not {action} {target}: the access rules ([[access]] admin) do not grant it",
            target = match version {
                Some(version) => format!("{module}@{version}"),
                None => "every module".into(),
            }
        )))
    }

    fn record(&self, action: Action, module: Option<&str>, version: Option<&str>) {
        self.admin
            .audit
            .record(action, &self.caller, module, version);
    }
}

/// One request: routed by method and path, every failure a status with a JSON `{"error": …}`.
async fn answer(
    admin: &Arc<Admin>,
    secured: bool,
    pages: Option<&Proxy>,
    request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let (parts, incoming) = request.into_parts();
    let rights = Rights {
        admin,
        secured,
        caller: Caller::of(&parts.extensions, &parts.headers),
    };
    let path = percent_encoding::percent_decode_str(parts.uri.path()).decode_utf8_lossy();
    let Some(rest) = path.strip_prefix("/admin/v1/") else {
        let Some(proxy) = pages else {
            return error(
                StatusCode::NOT_FOUND,
                "not found: the admin API is under /admin/v1/",
            );
        };
        let page = match read_body(incoming).await {
            Ok(form) => {
                // A form's change obeys the rights an API call would, and is audited as one.
                let may = |action: &str, module: &str, version: &str| {
                    rights.check(action, module, Some(version))?;
                    let audited = if action == "block" {
                        Action::Block
                    } else {
                        Action::Delete
                    };
                    rights.record(audited, Some(module), Some(version));
                    Ok(())
                };
                admin_forms::answer(proxy, admin, &parts, form, &may).await
            }
            Err(e) => Err(e),
        };
        return page.unwrap_or_else(|e| error(status_of(&e), &e.to_string()));
    };
    let query = |key: &str| -> Option<String> {
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let result = match (&parts.method, rest) {
        (&Method::GET, what @ ("versions" | "usage" | "blocks")) => {
            Ok(listing(&rights, what, &query("prefix").unwrap_or_default()))
        }
        (&Method::POST, "gc") => {
            let dry_run = query("dry_run").is_some_and(|v| v == "true" || v == "1");
            rights.check("collect garbage in", "*", None).map(|()| {
                if !dry_run {
                    rights.record(Action::Gc, None, None);
                }
                streamed(admin.clone(), move |admin, mut progress| async move {
                    let collected = admin
                        .collect(dry_run, |done, total| {
                            progress(json!({ "done": done, "total": total }))
                        })
                        .await?;
                    Ok(serde_json::to_value(collected).unwrap_or_default())
                })
            })
        }
        (&Method::POST, "reindex") => rights.check("reindex", "*", None).map(|()| {
            rights.record(Action::Reindex, None, None);
            streamed(admin.clone(), |admin, mut progress| async move {
                let done = admin
                    .reindex(|files| progress(json!({ "files": files })))
                    .await?;
                Ok(serde_json::to_value(done).unwrap_or_default())
            })
        }),
        (method, rest) => versioned(&rights, method, rest, incoming).await,
    };
    result.unwrap_or_else(|e| error(status_of(&e), &e.to_string()))
}

fn status_of(error: &AdminError) -> StatusCode {
    match error {
        AdminError::NotFound(_) => StatusCode::NOT_FOUND,
        AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
        AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AdminError::Busy(_) => StatusCode::CONFLICT,
        AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A listing (`versions`, `usage` or `blocks`) of the modules under `prefix` the caller administers.
fn listing(rights: &Rights<'_>, what: &str, prefix: &str) -> Response<Body> {
    let admin = rights.admin;
    match what {
        "usage" => {
            let (mut modules, mut total) = admin.usage(prefix);
            if modules.iter().any(|m| !rights.module(&m.module)) {
                modules.retain(|m| rights.module(&m.module));
                total.versions = modules.iter().map(|m| m.versions).sum();
                total.bytes = modules.iter().map(|m| m.bytes).sum();
            }
            json_ok(&json!({ "modules": modules, "total": total }))
        }
        "blocks" => {
            let blocked: Vec<_> = admin
                .list("")
                .into_iter()
                .filter(|l| l.status == "blocked" && rights.module(&l.module))
                .collect();
            json_ok(&blocked)
        }
        _ => {
            let mut listed = admin.list(prefix);
            listed.retain(|l| rights.module(&l.module));
            json_ok(&listed)
        }
    }
}

/// The operations on one version: `versions/MODULE@VERSION` and `blocks/MODULE@VERSION`.
async fn versioned(
    rights: &Rights<'_>,
    method: &Method,
    rest: &str,
    incoming: hyper::body::Incoming,
) -> Result<Response<Body>, AdminError> {
    let admin = rights.admin;
    let (kind, target) = rest.split_once('/').ok_or_else(|| unknown(method, rest))?;
    let (module, version) = module_version(target)?;
    let (action, verb) = match (method, kind) {
        (&Method::DELETE, "versions") => (Action::Delete, "delete"),
        (&Method::PUT, "blocks") => (Action::Block, "block"),
        (&Method::DELETE, "blocks") => (Action::Unblock, "unblock"),
        _ => return Err(unknown(method, rest)),
    };
    let named = (Some(module.as_str()), Some(version.as_str()));
    rights.check(verb, module.as_str(), named.1)?;
    match action {
        Action::Delete => {
            admin.delete(&module, &version).await?;
            rights.record(action, named.0, named.1);
            Ok(json_ok(
                &json!({ "deleted": format!("{module}@{version}") }),
            ))
        }
        Action::Block => {
            let body = read_body(incoming).await?;
            let reason = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("reason")?.as_str().map(str::to_string))
                .ok_or_else(|| {
                    AdminError::BadRequest(
                        "want a JSON body {\"reason\": \"why it is blocked\"}".into(),
                    )
                })?;
            admin.block(&module, &version, &reason).await?;
            rights.record(action, named.0, named.1);
            Ok(json_ok(
                &json!({ "blocked": format!("{module}@{version}"), "reason": reason.trim() }),
            ))
        }
        _ => {
            admin.unblock(&module, &version).await?;
            rights.record(action, named.0, named.1);
            Ok(json_ok(
                &json!({ "unblocked": format!("{module}@{version}") }),
            ))
        }
    }
}

fn unknown(method: &Method, rest: &str) -> AdminError {
    AdminError::NotFound(format!(
        "{method} /admin/v1/{rest} is no admin operation (see `ferry admin --help`)"
    ))
}

/// `MODULE@VERSION`, as a person writes it (the module path unescaped).
pub fn module_version(target: &str) -> Result<(ModulePath, Version), AdminError> {
    let (module, version) = target.rsplit_once('@').ok_or_else(|| {
        AdminError::BadRequest(format!(
            "{target:?}: want MODULE@VERSION, e.g. github.com/pkg/errors@v0.9.1"
        ))
    })?;
    let module = ModulePath::new(module).map_err(|e| AdminError::BadRequest(e.to_string()))?;
    let version = Version::new(version).map_err(|e| AdminError::BadRequest(e.to_string()))?;
    Ok((module, version))
}

async fn read_body(incoming: hyper::body::Incoming) -> Result<Bytes, AdminError> {
    let limited = http_body_util::Limited::new(incoming, MAX_BODY);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(AdminError::BadRequest(format!(
            "the request body could not be read (at most {MAX_BODY} bytes): {e}"
        ))),
    }
}

fn json_ok(value: &impl serde::Serialize) -> Response<Body> {
    let mut text = serde_json::to_string(value).unwrap_or_default();
    text.push('\n');
    let mut response = Response::new(body::full(text));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = json_ok(&json!({ "error": message }));
    *response.status_mut() = status;
    response
}

/// A long operation answered as it runs: `{"progress": …}` lines (at most every [`PROGRESS_EVERY`]), then
/// its result or error. The operation runs in a task of its own: a client that goes away does not stop a
/// collection half-way (it finishes, and its plan is removed).
fn streamed<F, Fut>(admin: Arc<Admin>, operation: F) -> Response<Body>
where
    F: FnOnce(Arc<Admin>, Box<dyn FnMut(serde_json::Value) + Send>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<serde_json::Value, AdminError>> + Send + 'static,
{
    let (lines, received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let progress_lines = lines.clone();
    let mut last = Instant::now() - PROGRESS_EVERY;
    let progress: Box<dyn FnMut(serde_json::Value) + Send> = Box::new(move |value| {
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            let _ = progress_lines.send(format!("{}\n", json!({ "progress": value })));
        }
    });
    tokio::spawn(async move {
        let line = match operation(admin, progress).await {
            Ok(result) => json!({ "result": result }),
            Err(e) => json!({ "error": e.to_string() }),
        };
        let _ = lines.send(format!("{line}\n"));
    });
    let frames = futures::stream::unfold(received, |mut received| async move {
        let line = received.recv().await?;
        Some((
            Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(line))),
            received,
        ))
    })
    .boxed();
    let mut response = Response::new(http_body_util::BodyExt::boxed_unsync(
        http_body_util::StreamBody::new(frames),
    ));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}
