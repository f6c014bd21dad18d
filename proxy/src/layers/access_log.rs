//! The access log: one line per request, written when its response body is finished (or dropped because
//! the client went away), so the byte count is what was really sent.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tower::{Layer, Service};

use super::ResponseFuture;
use crate::body::Body;

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
            Ok(response.map(|body| {
                LoggedBody {
                    inner: body,
                    bytes: 0,
                    entry,
                }
                .boxed_unsync()
            }))
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

/// A response body that counts its bytes and writes the access log line when dropped.
struct LoggedBody {
    inner: Body,
    bytes: u64,
    entry: Entry,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        tracing::info!(
            target: "ferry::access",
            request_id = %self.entry.id,
            method = %self.entry.method,
            path = %self.entry.path,
            status = self.entry.status.as_u16(),
            bytes = self.bytes,
            duration_ms = self.entry.started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
}
