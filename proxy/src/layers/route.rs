//! Routing, once per request: the outermost layer parses the request's path (under the `path_prefix`, when
//! one is set) and its `Disable-Module-Fetch` header into a [`Route`] (its endpoint, or why it is refused,
//! and whether it asks for stored modules only) and puts it in the request's extensions, where every layer
//! inside and the handler read it: the metric labels (`metrics.rs`), the health probes' exemption from
//! authentication (`auth.rs`), `GET /metrics`, the access log, and `Proxy::handle`. No layer looks at the
//! path again.
//!
//! A plain layer, not a [`Hook`](super::hook::Hook): it has no work after the response, and passing the
//! inner service's future through boxes nothing.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use crate::request::{PathPrefix, Route};

/// Routes every request (see the module's documentation), under `prefix` when one is set.
#[derive(Debug, Clone, Default)]
pub struct RouteLayer {
    pub prefix: Option<PathPrefix>,
}

impl<S> Layer<S> for RouteLayer {
    type Service = Routed<S>;

    fn layer(&self, inner: S) -> Routed<S> {
        Routed {
            inner,
            prefix: self.prefix.clone(),
        }
    }
}

/// The service a [`RouteLayer`] makes.
#[derive(Debug, Clone)]
pub struct Routed<S> {
    inner: S,
    prefix: Option<PathPrefix>,
}

impl<S, B> Service<Request<B>> for Routed<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        let route = Route::of(request.uri(), request.headers(), self.prefix.as_ref());
        // A page for people links to the others under the prefix; no other request carries it.
        if let (Ok(endpoint), Some(prefix)) = (&route.endpoint, &self.prefix)
            && endpoint.is_page()
        {
            request.extensions_mut().insert(prefix.clone());
        }
        request.extensions_mut().insert(route);
        self.inner.call(request)
    }
}
