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

/// The most a growing zip's body reads from its file at once: a file store's read size (128 KiB; 256 KiB
/// reads cost stalled readers half as much memory again for no speed, see `storage/src/object.rs`).
const GROWING_READ: usize = 128 << 10;

/// A zip read from its scratch file as the upstream's bytes land in it (`ferry_fetcher::GrowingZip`): each
/// frame is read from disk when the connection asks for it, so a slow client holds no more in memory than
/// a fast one. The tail comes once the fill has verified the zip; if the fill fails instead, the body ends
/// in an error, so hyper cuts the connection and the client never has a complete zip.
pub fn growing(zip: ferry_fetcher::GrowingZip) -> Body {
    let frames = futures::stream::try_unfold((zip, 0u64), |(mut zip, sent)| async move {
        loop {
            let progress = zip.progress();
            let sendable = progress.sendable();
            if sendable > sent {
                let want = (sendable - sent).min(GROWING_READ as u64) as usize;
                let data = zip.read_at(sent, want).await?;
                if data.is_empty() {
                    return Err(std::io::Error::other("the zip being fetched was cut short"));
                }
                let next = sent + data.len() as u64;
                return Ok(Some((Frame::data(data), (zip, next))));
            }
            match progress.state {
                ferry_fetcher::ZipState::Verified => return Ok(None),
                ferry_fetcher::ZipState::Failed => {
                    return Err(std::io::Error::other(
                        "the zip failed its checks or its download",
                    ));
                }
                ferry_fetcher::ZipState::Downloading => {}
            }
            if !zip.changed().await {
                // The fetch ended without a last word: only a verified zip is complete.
                let progress = zip.progress();
                if progress.state != ferry_fetcher::ZipState::Verified {
                    return Err(std::io::Error::other("the zip's fetch ended unverified"));
                }
            }
        }
    });
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

/// `body`, whose data frames each hold a permit of `budget` until the last copy of the frame is dropped
/// (written to the socket, or dropped with the connection): the frames a connection has read from storage
/// and not yet sent are bounded by the budget's size. A frame is read from the inner body only once its
/// permit is taken, so a stalled client stops the reading instead of piling chunks up in memory.
pub fn budgeted(body: Body, budget: std::sync::Arc<tokio::sync::Semaphore>) -> Body {
    Budgeted {
        inner: body,
        budget,
        acquiring: None,
        permit: None,
    }
    .boxed_unsync()
}

type Acquiring =
    std::pin::Pin<Box<dyn std::future::Future<Output = tokio::sync::OwnedSemaphorePermit> + Send>>;

struct Budgeted {
    inner: Body,
    budget: std::sync::Arc<tokio::sync::Semaphore>,
    acquiring: Option<Acquiring>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A frame's bytes with the permit they hold: both go when the last `Bytes` of the frame is dropped.
struct Held {
    data: Bytes,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl http_body::Body for Budgeted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        if self.permit.is_none() && self.acquiring.is_none() {
            // A free permit is taken at once, without the boxed wait (an allocation a frame).
            if let Ok(permit) = self.budget.clone().try_acquire_owned() {
                self.permit = Some(permit);
            }
        }
        if self.permit.is_none() {
            let budget = self.budget.clone();
            let acquiring = self.acquiring.get_or_insert_with(|| {
                Box::pin(async move {
                    budget
                        .acquire_owned()
                        .await
                        .expect("a connection's budget is never closed")
                })
            });
            let Poll::Ready(permit) = acquiring.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            self.acquiring = None;
            self.permit = Some(permit);
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        let Poll::Ready(Some(Ok(frame))) = polled else {
            return polled;
        };
        match frame.into_data() {
            Ok(data) => {
                let permit = self.permit.take().expect("taken above");
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_owner(Held {
                    data,
                    _permit: permit,
                })))))
            }
            Err(frame) => Poll::Ready(Some(Ok(frame))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
