//! Routing, once per request: the outermost layer parses the request's path into a [`Route`] (its
//! endpoint, or why it is refused) and puts it in the request's extensions, where every layer inside and
//! the handler read it: the metric labels (`metrics.rs`), the health probes' exemption from authentication
//! (`auth.rs`), `GET /metrics`, the access log, and `Proxy::handle`. No layer looks at the path again.
//!
//! A plain layer, not a [`Hook`](super::hook::Hook): it has no work after the response, and passing the
//! inner service's future through boxes nothing.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use crate::request::Route;

/// Routes every request (see the module's documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteLayer;

impl<S> Layer<S> for RouteLayer {
    type Service = Routed<S>;

    fn layer(&self, inner: S) -> Routed<S> {
        Routed(inner)
    }
}

/// The service a [`RouteLayer`] makes.
#[derive(Debug, Clone)]
pub struct Routed<S>(S);

impl<S, B> Service<Request<B>> for Routed<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        let route = Route::of_uri(request.uri());
        request.extensions_mut().insert(route);
        self.0.call(request)
    }
}
