//! The response body type, and the per-request log line written when a response body is finished.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::TryStreamExt;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A zip streamed from storage: chunks go to the socket as they arrive, so memory stays bounded.
pub fn stream(zip: ferry_storage::ZipStream) -> Body {
    let frames = zip
        .stream
        .map_ok(Frame::data)
        .map_err(std::io::Error::other);
    StreamBody::new(frames).boxed_unsync()
}

/// What the access log says about a request, written once its response body is done (or dropped because
/// the client went away), so `bytes` counts what was really sent.
pub struct AccessLog {
    pub method: http::Method,
    pub path: String,
    pub status: http::StatusCode,
    pub started: Instant,
}

/// A response body that counts its bytes and writes the access log line when dropped.
pub struct LoggedBody {
    inner: Body,
    bytes: u64,
    log: AccessLog,
}

impl LoggedBody {
    pub fn new(inner: Body, log: AccessLog) -> Self {
        LoggedBody {
            inner,
            bytes: 0,
            log,
        }
    }
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
        let path: String = self.log.path.chars().take(256).collect();
        tracing::info!(
            target: "ferry::access",
            method = %self.log.method,
            path = %path,
            status = self.log.status.as_u16(),
            bytes = self.bytes,
            duration_ms = self.log.started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
}
