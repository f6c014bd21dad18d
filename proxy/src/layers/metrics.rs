//! Request metrics, and `GET /metrics` itself: the layer counts every request by endpoint kind and status,
//! times it to the end of its body and counts the bytes sent; it answers `/metrics` before the proxy sees it
//! (unless the metrics have a listener of their own, `metrics_listen`).

use std::task::{Context, Poll};
use std::time::Instant;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::ResponseFuture;
use crate::body::{self, Body};
use crate::metrics::{EndpointLabels, RequestLabels, endpoint_kind, metrics};

/// The metrics layer; `serve_metrics` says whether this listener answers `GET /metrics`.
#[derive(Debug, Clone, Copy)]
pub struct MetricsLayer {
    pub serve_metrics: bool,
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Measured<S> {
        Measured {
            inner,
            serve_metrics: self.serve_metrics,
        }
    }
}

/// The service [`MetricsLayer`] makes.
#[derive(Debug, Clone)]
pub struct Measured<S> {
    inner: S,
    serve_metrics: bool,
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

impl<S, B> Service<Request<B>> for Measured<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let endpoint = endpoint_kind(request.uri().path());
        let started = Instant::now();
        let answer_here =
            self.serve_metrics && endpoint == "metrics" && request.method() == Method::GET;
        let response = (!answer_here).then(|| self.inner.call(request));
        Box::pin(async move {
            let response = match response {
                Some(response) => response.await?,
                None => metrics_response(),
            };
            let status = response.status();
            Ok(response.map(|body| {
                body::on_done(body, move |bytes| record(endpoint, status, started, bytes))
            }))
        })
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
