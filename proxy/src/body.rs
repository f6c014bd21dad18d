//! The response body type every handler and layer speaks, and its constructors.

use bytes::Bytes;
use futures::TryStreamExt;
use http_body::Frame;
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

/// `body`, counting the bytes it yields; `done` is called with the count once the body is finished or
/// dropped (the client went away), so what it records is what was really sent. The layers that watch
/// responses (access log, metrics, connection activity) share this one wrapper.
pub fn on_done(body: Body, done: impl FnOnce(u64) + Send + 'static) -> Body {
    Observed {
        inner: body,
        bytes: 0,
        done: Some(Box::new(done)),
    }
    .boxed_unsync()
}

struct Observed {
    inner: Body,
    bytes: u64,
    done: Option<Box<dyn FnOnce(u64) + Send>>,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done(self.bytes);
        }
    }
}
