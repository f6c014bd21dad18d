//! The request's span (see [`crate::traces`]): one per request, named after its method and endpoint kind
//! (`GET mod`), with the module and version its route names and the response's status; never a header, a
//! user or the query. A client's W3C `traceparent` (and `tracestate`) makes it that trace's child. Work the
//! request starts (a fill, its upstream requests and store writes) is inside it.
//!
//! A plain layer, not a [`Hook`](super::hook::Hook): the inner future must run inside the span. With
//! traces off the span is disabled (one atomic load) and nothing is read from the request.

use std::task::{Context, Poll};

use futures::future::Either;
use http::{Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::field::Empty;

use super::ResponseFuture;
use crate::body::Body;
use crate::request::{Endpoint, Route};
use crate::traces::{self, TARGET};

/// Opens every request's span.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

/// The service a [`TraceLayer`] makes.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Traced<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    /// With traces off, the inner future itself: nothing is boxed.
    type Future = Either<S::Future, ResponseFuture<S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = tracing::info_span!(
            target: TARGET,
            "request",
            otel.name = Empty,
            otel.kind = "server",
            http.request.method = Empty,
            ferry.endpoint = Empty,
            ferry.module = Empty,
            ferry.version = Empty,
            http.response.status_code = Empty,
        );
        if span.is_disabled() {
            return Either::Left(self.inner.call(request));
        }
        describe(&span, &request);
        traces::continue_trace(&span, request.headers());
        let inner = self.inner.call(request);
        let recorded = span.clone();
        Either::Right(Box::pin(
            async move {
                let response = inner.await?;
                recorded.record("http.response.status_code", response.status().as_u16());
                Ok(response)
            }
            .instrument(span),
        ))
    }
}

/// Records what the request asks for: its method, its endpoint kind, and its module and version when the
/// route names them.
fn describe<B>(span: &tracing::Span, request: &Request<B>) {
    let kind = Route::on(request).map_or("other", Route::kind);
    let method = request.method().as_str();
    span.record("otel.name", format!("{method} {kind}"));
    span.record("http.request.method", method);
    span.record("ferry.endpoint", kind);
    let Some(Ok(endpoint)) = Route::on(request).map(|route| &route.endpoint) else {
        return;
    };
    let (module, version) = match endpoint {
        Endpoint::List(module) | Endpoint::Latest(module) => (module, None),
        Endpoint::Info(module, query) => (module, Some(query.as_str())),
        Endpoint::Mod(module, version) | Endpoint::Zip(module, version) => {
            (module, Some(version.as_str()))
        }
        _ => return,
    };
    span.record("ferry.module", module.as_str());
    if let Some(version) = version {
        span.record("ferry.version", version);
    }
}
