//! Cross-cutting HTTP work, as `tower` layers around the proxy: each concern (request ids, the access log,
//! metrics; authentication next) is a [`Hook`](hook::Hook) in a file of its own, and [`stack`] is the one
//! place that puts them in order. Every layer takes and gives `Request` -> `Response<Body>`, so they compose
//! in any order and a new one is one file and one line here.

mod access_log;
pub mod hook;
mod metrics;
mod request_id;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use tower::Service;

pub use metrics::metrics_response;

use access_log::AccessLog;
use hook::HookLayer;
use metrics::Measure;
use request_id::RequestId;

use crate::body::Body;
use crate::service::Proxy;

/// A boxed response future: what every layer's `call` returns.
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

/// The whole service a connection serves: the layers, outermost first, around the proxy.
/// `serve_metrics`: whether this listener answers `GET /metrics` (not when the metrics have their own).
pub fn stack(
    proxy: Arc<Proxy>,
    serve_metrics: bool,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    // Outermost first: the id is on the request before the access log reads it.
    tower::ServiceBuilder::new()
        .layer(HookLayer(RequestId))
        .layer(HookLayer(AccessLog))
        .layer(HookLayer(Measure { serve_metrics }))
        .service(ProxyService(proxy))
}

/// The proxy as the innermost `tower` service.
#[derive(Clone)]
pub struct ProxyService(pub Arc<Proxy>);

impl<B: Send + 'static> Service<Request<B>> for ProxyService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture<Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let proxy = self.0.clone();
        Box::pin(async move { Ok(proxy.handle(request).await) })
    }
}
