//! The access log: one line per request, written when its response body is finished (or dropped because
//! the client went away), so the byte count is what was really sent.

use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

use super::ResponseFuture;
use crate::body::{self, Body};

/// Logs every request on the `ferry::access` target.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

/// The service [`AccessLogLayer`] makes.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for AccessLog<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let entry = Entry {
            id: request
                .headers()
                .get(&super::request_id::X_REQUEST_ID)
                .and_then(|id| id.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            method: request.method().clone(),
            // Hostile paths can be long: the log keeps their start.
            path: request.uri().path().chars().take(256).collect(),
            status: http::StatusCode::OK,
            started: Instant::now(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let entry = Entry {
                status: response.status(),
                ..entry
            };
            Ok(response.map(|body| body::on_done(body, move |bytes| entry.log(bytes))))
        })
    }
}

/// What the access log says about a request.
struct Entry {
    id: String,
    method: http::Method,
    path: String,
    status: http::StatusCode,
    started: Instant,
}

impl Entry {
    /// Writes the line, with the bytes really sent.
    fn log(self, bytes: u64) {
        tracing::info!(
            target: "ferry::access",
            request_id = %self.id,
            method = %self.method,
            path = %self.path,
            status = self.status.as_u16(),
            bytes,
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
}
