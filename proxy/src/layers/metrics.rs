//! Request metrics, and `GET /metrics` itself: the layer counts every request by endpoint kind and status,
//! times it to the end of its body and counts the bytes sent; it answers `/metrics` before the proxy sees it
//! (unless the metrics have a listener of their own, `metrics_listen`).

use std::time::Instant;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::hook::Hook;
use crate::body::{self, Body};
use crate::metrics::{EndpointLabels, RequestLabels, endpoint_kind, metrics};

/// The metrics hook; `serve_metrics` says whether this listener answers `GET /metrics`.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    pub serve_metrics: bool,
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
        let endpoint = endpoint_kind(request.uri().path());
        let answer_here =
            self.serve_metrics && endpoint == "metrics" && request.method() == Method::GET;
        (
            (endpoint, Instant::now()),
            answer_here.then(metrics_response),
        )
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
