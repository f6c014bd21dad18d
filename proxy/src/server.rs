//! The accept loop: HTTP/1.1 and HTTP/2 on one listener (h2c in the clear, or both over TLS chosen by
//! ALPN), a cap on open connections, every connection watched so that a silent, idle or stalled one is
//! closed (a TLS handshake included), and graceful shutdown with a deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Layer;

use crate::connection::{Activity, Track, Watched};
use crate::layers::hook::HookLayer;
use crate::service::Proxy;

/// How the server treats connections.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// A connection must complete a request within this time of opening, and of finishing its previous
    /// response, or it is closed: silent sockets, partial HTTP/2 prefaces, slow headers and idle keep-alive
    /// connections alike.
    pub header_read_timeout: Duration,
    /// A response whose bytes the client has not taken for this long is dropped with its connection (a
    /// stalled reader). The wait for an answer to begin (a fetch) is bounded by the fetch timeout instead.
    pub send_timeout: Duration,
    /// Connections open at once; beyond it, new ones wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// On shutdown, in-flight requests get this long to finish before their connections are closed.
    pub shutdown_timeout: Duration,
    /// Whether this listener answers `GET /metrics` (false when the metrics have a listener of their own).
    pub serve_metrics: bool,
    /// HTTP Basic authentication for every request but the health probes (`auth_file`).
    pub auth: Option<Arc<crate::layers::auth::Auth>>,
    /// Static bearer tokens for every request but the health probes (`token_file`).
    pub tokens: Option<Arc<crate::layers::auth::tokens::Tokens>>,
    /// OIDC issuers whose JWTs are accepted for every request but the health probes (`[[oidc]]`).
    pub oidc: Option<Arc<crate::layers::auth::oidc::Oidc>>,
    /// TLS on this listener (`tls_cert` / `tls_key`); plain HTTP when none.
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// The proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (`trusted_proxies`).
    pub trusted_proxies: Arc<crate::layers::client::TrustedProxies>,
    /// The path every endpoint is served under, behind a reverse proxy (`path_prefix`); the root when none.
    pub path_prefix: Option<crate::request::PathPrefix>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            header_read_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            // Well above a build fleet's keep-alive connections, well below the file descriptors Ferry
            // raises its limit to; each idle connection costs a few KiB.
            max_connections: 16_384,
            shutdown_timeout: Duration::from_secs(30),
            serve_metrics: true,
            auth: None,
            tokens: None,
            oidc: None,
            tls: None,
            trusted_proxies: Arc::default(),
            path_prefix: None,
        }
    }
}

/// Per-connection buffering, bounded so that stalled clients cannot hold memory without limit: HTTP/1
/// reads at most this much of a request head, and HTTP/2 queues at most this much per stream.
const CONNECTION_BUFFER: usize = 64 * 1024;
/// HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 128;

/// Serves `proxy` on `listener` until `shutdown` completes, then stops accepting, lets in-flight requests
/// finish (up to the shutdown timeout) and returns.
pub async fn run(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let client = crate::layers::client::ClientLayer {
        trusted: settings.trusted_proxies.clone(),
        tls: settings.tls.is_some(),
    };
    let stack = crate::layers::stack(
        crate::service::ProxyService(proxy.clone()),
        settings.serve_metrics,
        crate::layers::auth::Gate::of(
            settings.auth.clone(),
            settings.tokens.clone(),
            settings.oidc.clone(),
        ),
        client,
        settings.path_prefix.clone(),
    );
    let connections = Connections {
        builder: Arc::new(connection_builder()),
        stack,
        settings: settings.clone(),
    };
    let background = Background::start(&proxy, &settings);
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A slot first: at the cap, new connections wait in the kernel's backlog, not in Ferry's memory.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => connections.serve(stream, peer, slot, graceful.watcher()),
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
    background.stop().await;
}

/// HTTP/1.1 and HTTP/2 as every connection of [`run`] speaks them.
fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No timer for HTTP/1, so no header read timeout of hyper's own: the connection's activity watch
    // (`connection`) closes a connection that completes no request within `header_read_timeout`, from its
    // first byte, and hyper's duplicate armed and cleared a timer on every request (2% of the CPU time of
    // `.mod` requests under `benches/load.sh`, in `perf record`).
    builder
        .http1()
        .header_read_timeout(None)
        .max_buf_size(CONNECTION_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_send_buf_size(CONNECTION_BUFFER);
    builder
}

/// What [`run`] serves each accepted connection with: hyper's builder, the layer stack, and the settings
/// the connection's watch and TLS read.
struct Connections<S> {
    builder: Arc<auto::Builder<TokioExecutor>>,
    stack: S,
    settings: ServerSettings,
}

impl<S> Connections<S>
where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<crate::body::Body>,
            Error = std::convert::Infallible,
            Future: Send,
        > + Clone
        + Send
        + 'static,
{
    /// Serves one accepted connection in a task of its own, holding `slot` until it ends: its TLS
    /// handshake (if any) and its requests, closed when its activity watch says it is silent, idle or
    /// stalled.
    fn serve(
        &self,
        stream: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
        slot: tokio::sync::OwnedSemaphorePermit,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        // Nagle's algorithm holds a response's last small segment until the client's delayed ACK (about
        // 40 ms): off, as nginx's tcp_nodelay has it.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let activity = Arc::new(Activity::new());
        let track = Track {
            activity: activity.clone(),
            peer: peer.ip().to_canonical(),
        };
        let service = TowerToHyperService::new(HookLayer(track).layer(self.stack.clone()));
        let io = Watched::new(stream, activity.clone());
        let builder = self.builder.clone();
        let settings = self.settings.clone();
        let open = crate::metrics::metrics().open_connections.clone();
        open.inc();
        tokio::spawn(async move {
            let _slot = slot;
            let _open = OnDrop(move || {
                open.dec();
            });
            // The handshake is part of the connection: the activity watch bounds it by the header read
            // timeout like the first request of a plain connection.
            let serve = async {
                let Some(tls) = &settings.tls else {
                    let connection = builder.serve_connection(TokioIo::new(io), service);
                    return watcher.watch(connection.into_owned()).await;
                };
                match tls.acceptor().accept(io).await {
                    Ok(io) => {
                        let connection = builder.serve_connection(TokioIo::new(io), service);
                        watcher.watch(connection.into_owned()).await
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        Ok(())
                    }
                }
            };
            tokio::select! {
                ended = serve => if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                },
                why = activity.expired(settings.header_read_timeout, settings.send_timeout) => {
                    tracing::debug!(%peer, why, "closing the connection");
                }
            }
        });
    }
}

/// The tasks that run beside the server for as long as it runs: the ledger keeping in step with the other
/// replicas (and writing what it has pending when it stops), the vulnerability database's copy (loaded
/// from the store, polled and synced on its schedule), and the OIDC issuers' keys (fetched again on their
/// schedule).
struct Background {
    stop_ledger: tokio::sync::oneshot::Sender<()>,
    ledger: tokio::task::JoinHandle<()>,
    stop_vuln: tokio::sync::oneshot::Sender<()>,
    vuln: tokio::task::JoinHandle<()>,
    refreshing: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    fn start(proxy: &Arc<Proxy>, settings: &ServerSettings) -> Background {
        let (stop_ledger, ledger_stopped) = tokio::sync::oneshot::channel::<()>();
        let ledger = tokio::spawn(proxy.ledger().clone().run(proxy.store().clone(), async {
            let _ = ledger_stopped.await;
        }));
        let (stop_vuln, vuln_stopped) = tokio::sync::oneshot::channel::<()>();
        let vuln = tokio::spawn(proxy.vuln().clone().run(async {
            let _ = vuln_stopped.await;
        }));
        let refreshing = settings
            .oidc
            .as_ref()
            .map(|oidc| oidc.start())
            .unwrap_or_default();
        Background {
            stop_ledger,
            ledger,
            stop_vuln,
            vuln,
            refreshing,
        }
    }

    /// Stops them, the ledger and the vulnerability database once they have finished what they were doing.
    async fn stop(self) {
        let _ = self.stop_ledger.send(());
        let _ = self.ledger.await;
        let _ = self.stop_vuln.send(());
        let _ = self.vuln.await;
        for task in self.refreshing {
            task.abort();
        }
    }
}

/// Runs its function when dropped: a connection's end, however its task ends.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Serves `GET /metrics` alone on `listener` (`metrics_listen`) until `shutdown` completes: every other
/// path is a 404 (`path_prefix` does not apply: this listener is scraped directly). Kept apart from the
/// module traffic, e.g. on an address only the monitoring reaches.
pub async fn run_metrics(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let service =
        hyper::service::service_fn(|request: http::Request<hyper::body::Incoming>| async move {
            let route = crate::request::Route::of_uri(request.uri());
            let response = if matches!(route.endpoint, Ok(crate::request::Endpoint::Metrics)) {
                crate::layers::metrics_response()
            } else {
                let mut response = http::Response::new(crate::body::full(
                    "not found: only /metrics is served here\n",
                ));
                *response.status_mut() = http::StatusCode::NOT_FOUND;
                response
            };
            Ok::<_, std::convert::Infallible>(response)
        });
    serve_plain(
        listener,
        move |_| service,
        Duration::from_secs(60),
        "metrics",
        shutdown,
    )
    .await;
}

/// Serves `service` over plain HTTP on `listener` (a side listener: metrics, the admin API) until
/// `shutdown`, each connection for at most `limit`; `what` names the listener in logs. `service` makes
/// each connection's service from its peer's address.
pub(crate) async fn serve_plain<S>(
    listener: TcpListener,
    service: impl Fn(std::net::IpAddr) -> S,
    limit: Duration,
    what: &'static str,
    shutdown: impl Future<Output = ()>,
) where
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<crate::body::Body>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let service = service(peer.ip().to_canonical());
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(limit, connection).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, listener = what, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => return,
        }
    }
}
