//! Request metrics, and `GET /metrics` itself: the layer counts every request by endpoint kind (its
//! [`Route`]'s) and status, times it to the end of its body and counts the bytes sent. A second hook
//! answers `GET /metrics` (routed to [`Endpoint::Metrics`]) before the proxy sees it (unless the metrics have a listener of their own, `metrics_listen`); authentication sits
//! between the two, so its refusals are counted and `/metrics` is protected.

use std::time::Instant;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::hook::Hook;
use crate::body::{self, Body};
use crate::metrics::{EndpointLabels, RequestLabels, metrics};
use crate::request::{Endpoint, Route};

/// The metrics hook: counts and times every request.
#[derive(Debug, Clone, Copy)]
pub struct Measure;

/// Answers `GET /metrics` when `serve_metrics` (this listener serves them).
#[derive(Debug, Clone, Copy)]
pub struct ServeMetrics {
    pub serve_metrics: bool,
}

impl Hook for ServeMetrics {
    type State = ();

    fn before<B>(&self, request: &mut Request<B>) -> ((), Option<Response<Body>>) {
        let answer_here = self.serve_metrics
            && request.method() == Method::GET
            && Route::on(request)
                .is_some_and(|route| matches!(route.endpoint, Ok(Endpoint::Metrics)));
        ((), answer_here.then(metrics_response))
    }

    fn after(&self, (): (), response: Response<Body>) -> Response<Body> {
        response
    }
}

/// The `/metrics` answer.
pub fn metrics_response() -> Response<Body> {
    let mut response = Response::new(body::full(metrics().encode()));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

impl Hook for Measure {
    type State = (&'static str, Instant);

    fn before<B>(&self, request: &mut Request<B>) -> (Self::State, Option<Response<Body>>) {
        // The stack routes every request before this layer; `other` is what an unrouted one would be.
        let endpoint = Route::on(request).map_or("other", Route::kind);
        ((endpoint, Instant::now()), None)
    }

    fn after(&self, (endpoint, started): Self::State, response: Response<Body>) -> Response<Body> {
        let status = response.status();
        response
            .map(|body| body::on_done(body, move |bytes| record(endpoint, status, started, bytes)))
    }
}

fn record(endpoint: &'static str, status: StatusCode, started: Instant, bytes: u64) {
    let metrics = metrics();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint,
            status: status.as_u16(),
        })
        .inc();
    let labels = EndpointLabels { endpoint };
    metrics
        .request_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    metrics.response_bytes.get_or_create(&labels).inc_by(bytes);
}
