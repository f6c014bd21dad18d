//! Cross-cutting HTTP work, as `tower` layers around the proxy: each concern (routing, the client, request
//! ids, the access log, metrics, authentication, the request's trace span) is a [`Hook`](hook::Hook) (or, for authentication, which
//! waits on bcrypt, and routing and the client, which have nothing to do after the response, a plain layer)
//! in a file of its own, and [`stack`] is the one place that puts them in order. The outermost layer routes
//! the request once; the others read its [`Route`](crate::request::Route) from the request's extensions,
//! never the path. What a layer decides for the layers after it goes in the extensions too: the
//! [`Client`](client::Client) (its address, whether it came over HTTPS) on the request, and the
//! [`Identity`](auth::Identity) authentication found on the request and on its response (for the access
//! log, which is outside authentication). Every layer takes and gives `Request` -> `Response<Body>`, so they compose
//! in any order and a new one is one file and one line here.

mod access_log;
pub mod auth;
pub mod client;
pub mod hook;
mod metrics;
mod request_id;
pub(crate) use request_id::hex;
mod route;
mod trace;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use tower::Service;

pub use metrics::metrics_response;
pub use request_id::X_REQUEST_ID;

use access_log::AccessLog;
use auth::{AuthLayer, Gate};
use client::ClientLayer;
use hook::HookLayer;
use metrics::{Measure, ServeMetrics};
use request_id::RequestId;
use route::RouteLayer;
use trace::TraceLayer;

use crate::body::Body;
use crate::request::PathPrefix;

/// A boxed response future: what every layer's `call` returns.
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

/// The whole service a connection serves: the layers, outermost first, around `proxy` (the proxy as a
/// `tower` service, `service::ProxyService`: the layers do not know it).
/// `serve_metrics`: whether this listener answers `GET /metrics` (not when the metrics have their own);
/// `auth`: who every request but the health probes must prove to be (`auth_file`, `token_file`); `client`: how the
/// client is decided (the proxies believed, whether the listener serves TLS); `prefix`: the path every
/// endpoint is served under (`path_prefix`; the probes and `/metrics` also at the root).
pub fn stack<P>(
    proxy: P,
    serve_metrics: bool,
    auth: Option<Arc<Gate>>,
    client: ClientLayer,
    prefix: Option<PathPrefix>,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static
where
    P: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    P::Future: Send + 'static,
{
    // Outermost first: the route and the client are on the request before any layer reads them; the id is
    // on the request before the access log reads it; refused requests (401) are logged and counted;
    // `/metrics` is answered only after authentication; the request's span (traces) names its route and
    // holds everything inside, refusals too.
    tower::ServiceBuilder::new()
        .layer(RouteLayer { prefix })
        .layer(TraceLayer)
        .layer(client)
        .layer(HookLayer(RequestId))
        .layer(HookLayer(AccessLog))
        .layer(HookLayer(Measure))
        .layer(AuthLayer(auth))
        .layer(HookLayer(ServeMetrics { serve_metrics }))
        .service(proxy)
}

/// The start of a client-chosen string (a path, a user name), at most `chars` characters, for the log. Log it
/// as a plain `&str` field, never with `%`: the text log then writes it quoted and escaped and the JSON log as
/// a JSON string, so a quote or an `=` in it cannot forge another field of the line.
fn clipped(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}
