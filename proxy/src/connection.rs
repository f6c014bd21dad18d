//! What one connection is doing, so the server can close the ones that do nothing useful: a socket that
//! never completes a request, a keep-alive connection left idle, a client that stopped reading its response.
//! hyper's own header timeout starts only once HTTP/1 is detected and HTTP/2 has no idle timeout, so this
//! watches every connection the same way, from its first byte.
//!
//! Three things are tracked: requests being handled (no deadline: a fill is bounded by the fetch timeout),
//! responses being sent (closed when the socket takes no bytes for `send_timeout`), and the moment the
//! connection last became idle (closed `header_read_timeout` later).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::{self, Body};
use crate::layers::hook::Hook;

/// Data frames (up to 256 KiB each from a file store) a connection may hold read and unsent, across all its
/// responses: a client that stops reading then holds about 512 KiB, not a chunk per stalled HTTP/2 stream
/// (2000 stalled streams held 1.18 GB before this bound; see `benches/README.md`, "Clients and connections").
const FRAMES_IN_FLIGHT: usize = 2;

/// The activity of one connection. Times are milliseconds since the connection opened.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    /// Data frames read for this connection's responses and not yet sent (see [`FRAMES_IN_FLIGHT`]).
    frames: Arc<tokio::sync::Semaphore>,
    handling: AtomicUsize,
    sending: AtomicUsize,
    idle_since: AtomicU64,
    last_write: AtomicU64,
}

impl Activity {
    pub fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            frames: Arc::new(tokio::sync::Semaphore::new(FRAMES_IN_FLIGHT)),
            handling: AtomicUsize::new(0),
            sending: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, millis: u64) -> Instant {
        self.opened + Duration::from_millis(millis)
    }

    fn response_done(&self) {
        let now = self.now();
        self.last_write.fetch_max(now, Ordering::Relaxed);
        if self.sending.fetch_sub(1, Ordering::AcqRel) == 1
            && self.handling.load(Ordering::Acquire) == 0
        {
            self.idle_since.store(now, Ordering::Release);
        }
    }

    /// Completes when the connection should be closed, with the reason; never while a request is being
    /// handled. The server's `header_read_timeout` and `send_timeout` (passed as they are, so that this
    /// module needs nothing of the server's).
    pub async fn expired(
        &self,
        header_read_timeout: Duration,
        send_timeout: Duration,
    ) -> &'static str {
        // The state changes without waking this task, so it looks again at least this often: a request that
        // arrives after a deadline was computed moves the deadline.
        let recheck = header_read_timeout.min(send_timeout);
        loop {
            let now = Instant::now();
            let (deadline, why) = if self.handling.load(Ordering::Acquire) > 0 {
                // Handlers end by themselves (the fetch timeout bounds them).
                (now + recheck, "")
            } else if self.sending.load(Ordering::Acquire) > 0 {
                let last = self.last_write.load(Ordering::Acquire);
                (
                    self.at(last) + send_timeout,
                    "the client took no response bytes within the send timeout",
                )
            } else {
                let idle = self.idle_since.load(Ordering::Acquire);
                (
                    self.at(idle) + header_read_timeout,
                    "no request completed within the header read timeout",
                )
            };
            if !why.is_empty() && deadline <= now {
                return why;
            }
            tokio::time::sleep_until(deadline.min(now + recheck)).await;
        }
    }
}

/// The socket, noting each write the client's side takes.
pub struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    pub fn new(stream: TcpStream, activity: Arc<Activity>) -> Watched {
        Watched { stream, activity }
    }

    fn wrote(&self, written: &Poll<std::io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = written
            && *n > 0
        {
            self.activity
                .last_write
                .fetch_max(self.activity.now(), Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Counts a connection's requests as handled, then as sent until their bodies are done or dropped; and
/// puts the connection's peer address on each request as a [`ClientAddress`] (one hook, not two: each hook
/// boxes a future per request).
#[derive(Clone)]
pub struct Track {
    pub activity: Arc<Activity>,
    pub peer: IpAddr,
}

/// The address of the client a request came from (the TCP peer: a reverse proxy in front of Ferry is the
/// client here), in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Counts one request as handled while it lives (also when the client leaves and the handler is dropped).
pub struct Handling(Arc<Activity>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hook for Track {
    type State = Handling;

    fn before<B>(&self, request: &mut Request<B>) -> (Handling, Option<Response<Body>>) {
        self.activity.handling.fetch_add(1, Ordering::AcqRel);
        request.extensions_mut().insert(ClientAddress(self.peer));
        (Handling(self.activity.clone()), None)
    }

    fn after(&self, handling: Handling, response: Response<Body>) -> Response<Body> {
        let activity = self.activity.clone();
        // Counted as sending before it stops counting as handled, so the connection never looks idle
        // between the two.
        activity.sending.fetch_add(1, Ordering::AcqRel);
        activity
            .last_write
            .fetch_max(activity.now(), Ordering::Relaxed);
        drop(handling);
        let frames = activity.frames.clone();
        response.map(|body| {
            let body = body::budgeted(body, frames);
            body::on_done(body, move |_| activity.response_done())
        })
    }
}
