//! The accept loop: HTTP/1.1 and h2c on one listener, graceful shutdown with a deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::service::Proxy;

/// How the server treats connections.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// A client must send its request headers within this time (slow-loris protection).
    pub header_read_timeout: Duration,
    /// On shutdown, in-flight requests get this long to finish before their connections are closed.
    pub shutdown_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            header_read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `proxy` on `listener` until `shutdown` completes, then stops accepting, lets in-flight requests
/// finish (up to the shutdown timeout) and returns.
pub async fn run(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    let service = TowerToHyperService::new(crate::layers::stack(proxy.clone()));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service.clone()).into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Running out of file descriptors (EMFILE) or a connection reset before accept must not
                    // stop the server: wait a little for descriptors to free up, then accept again.
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(timeout = ?settings.shutdown_timeout, "shutting down: draining in-flight requests");
    let deadline = tokio::time::Instant::now() + settings.shutdown_timeout;
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep_until(deadline) => {
            tracing::warn!("shutdown timeout reached; closing the remaining connections");
        }
    }
    // Background fetches get what is left of the same deadline.
    proxy
        .drain(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await;
}
