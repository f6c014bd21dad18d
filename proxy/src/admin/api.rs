//! The admin API, served on its own listener (`admin_listen`, off by default) so that who may administer
//! is decided by who reaches that address, apart from module access. JSON in and out, under `/admin/v1/`:
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
use crate::body::{self, Body};
use crate::service::Proxy;
use crate::status::admin_forms;

/// The largest request body read (a block's reason).
const MAX_BODY: usize = 64 * 1024;
/// Progress lines are written at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Serves the admin API on `listener` until `shutdown` completes.
pub async fn run_admin(listener: TcpListener, admin: Admin, shutdown: impl Future<Output = ()>) {
    serve(listener, admin, None, shutdown).await;
}

/// Serves the admin API and, outside `/admin/v1/`, `proxy`'s status pages with their admin forms (see
/// `status::admin_forms`), on `listener` until `shutdown` completes.
pub async fn run_admin_with_pages(
    listener: TcpListener,
    admin: Admin,
    proxy: Arc<Proxy>,
    shutdown: impl Future<Output = ()>,
) {
    serve(listener, admin, Some(proxy), shutdown).await;
}

async fn serve(
    listener: TcpListener,
    admin: Admin,
    pages: Option<Arc<Proxy>>,
    shutdown: impl Future<Output = ()>,
) {
    let admin = Arc::new(admin);
    let service = hyper::service::service_fn(move |request| {
        let (admin, pages) = (admin.clone(), pages.clone());
        async move { Ok::<_, Infallible>(answer(&admin, pages.as_deref(), request).await) }
    });
    // Collections can be long; an idle or stuck connection is not kept for ever.
    let limit = Duration::from_secs(6 * 3600);
    crate::server::serve_plain(listener, service, limit, "admin", shutdown).await;
}

/// One request: routed by method and path, every failure a status with a JSON `{"error": …}`.
async fn answer(
    admin: &Arc<Admin>,
    pages: Option<&Proxy>,
    request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let (parts, incoming) = request.into_parts();
    let path = percent_encoding::percent_decode_str(parts.uri.path()).decode_utf8_lossy();
    let Some(rest) = path.strip_prefix("/admin/v1/") else {
        let Some(proxy) = pages else {
            return error(
                StatusCode::NOT_FOUND,
                "not found: the admin API is under /admin/v1/",
            );
        };
        let page = match read_body(incoming).await {
            Ok(form) => admin_forms::answer(proxy, admin, &parts, form).await,
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
        (&Method::GET, "versions") => {
            Ok(json_ok(&admin.list(&query("prefix").unwrap_or_default())))
        }
        (&Method::GET, "usage") => {
            let (modules, total) = admin.usage(&query("prefix").unwrap_or_default());
            Ok(json_ok(&json!({ "modules": modules, "total": total })))
        }
        (&Method::GET, "blocks") => {
            let blocked: Vec<_> = admin
                .list("")
                .into_iter()
                .filter(|l| l.status == "blocked")
                .collect();
            Ok(json_ok(&blocked))
        }
        (&Method::POST, "gc") => {
            let dry_run = query("dry_run").is_some_and(|v| v == "true" || v == "1");
            Ok(streamed(
                admin.clone(),
                move |admin, mut progress| async move {
                    let collected = admin
                        .collect(dry_run, |done, total| {
                            progress(json!({ "done": done, "total": total }))
                        })
                        .await?;
                    Ok(serde_json::to_value(collected).unwrap_or_default())
                },
            ))
        }
        (&Method::POST, "reindex") => {
            Ok(streamed(admin.clone(), |admin, mut progress| async move {
                let done = admin
                    .reindex(|files| progress(json!({ "files": files })))
                    .await?;
                Ok(serde_json::to_value(done).unwrap_or_default())
            }))
        }
        (method, rest) => versioned(admin, method, rest, incoming).await,
    };
    result.unwrap_or_else(|e| error(status_of(&e), &e.to_string()))
}

fn status_of(error: &AdminError) -> StatusCode {
    match error {
        AdminError::NotFound(_) => StatusCode::NOT_FOUND,
        AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AdminError::Busy(_) => StatusCode::CONFLICT,
        AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The operations on one version: `versions/MODULE@VERSION` and `blocks/MODULE@VERSION`.
async fn versioned(
    admin: &Admin,
    method: &Method,
    rest: &str,
    incoming: hyper::body::Incoming,
) -> Result<Response<Body>, AdminError> {
    let (kind, target) = rest.split_once('/').ok_or_else(|| unknown(method, rest))?;
    let (module, version) = module_version(target)?;
    match (method, kind) {
        (&Method::DELETE, "versions") => {
            admin.delete(&module, &version).await?;
            Ok(json_ok(
                &json!({ "deleted": format!("{module}@{version}") }),
            ))
        }
        (&Method::PUT, "blocks") => {
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
            Ok(json_ok(
                &json!({ "blocked": format!("{module}@{version}"), "reason": reason.trim() }),
            ))
        }
        (&Method::DELETE, "blocks") => {
            admin.unblock(&module, &version).await?;
            Ok(json_ok(
                &json!({ "unblocked": format!("{module}@{version}") }),
            ))
        }
        _ => Err(unknown(method, rest)),
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
