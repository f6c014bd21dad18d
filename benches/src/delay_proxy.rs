//! A forwarder that puts an upstream further away: `ferry-bench delay-proxy` listens on 127.0.0.1, waits a
//! fixed delay before forwarding each request to the real upstream (a GOPROXY, its `/sumdb/` paths
//! included), and streams the answer back as it arrives. One line per request (`STATUS PATH`) goes to a log
//! file, so a bench can count what each run cost the upstream. GET only: a GOPROXY has nothing else.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferry_fetcher::HttpsClient;
use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, hyper::Error>;

struct Forwarder {
    client: HttpsClient,
    to: String,
    delay: Duration,
    log: Mutex<std::fs::File>,
}

/// Serves until killed. Prints `listening on ADDR` on stdout once it accepts connections.
pub async fn run(to: &str, delay: Duration, log: &Path) -> Result<(), String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let forwarder = Arc::new(Forwarder {
        client: ferry_fetcher::https_client(ferry_fetcher::CONNECT_TIMEOUT),
        to: to.trim_end_matches('/').to_owned(),
        delay,
        log: Mutex::new(log),
    });
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let forwarder = Arc::clone(&forwarder);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let forwarder = Arc::clone(&forwarder);
                async move { Ok::<_, std::convert::Infallible>(forwarder.forward(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Forwarder {
    async fn forward(&self, request: Request<Incoming>) -> Response<Body> {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return self.answer(&path, StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        tokio::time::sleep(self.delay).await;
        let uri: Uri = match format!("{}{path}", self.to).parse() {
            Ok(uri) => uri,
            Err(e) => return self.answer(&path, StatusCode::BAD_REQUEST, &format!("{e}\n")),
        };
        let mut outbound = Request::new(Empty::<Bytes>::new());
        *outbound.method_mut() = request.method().clone();
        *outbound.uri_mut() = uri;
        match self.client.request(outbound).await {
            Ok(upstream) => {
                self.record(upstream.status(), &path);
                let (mut parts, body) = upstream.into_parts();
                // hyper frames the body itself; the upstream's framing is not ours to repeat.
                parts.headers.remove(header::TRANSFER_ENCODING);
                parts.headers.remove(header::CONNECTION);
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => self.answer(&path, StatusCode::BAD_GATEWAY, &format!("upstream: {e}\n")),
        }
    }

    fn answer(&self, path: &str, status: StatusCode, text: &str) -> Response<Body> {
        self.record(status, path);
        let body = Full::new(Bytes::from(text.to_owned()))
            .map_err(|never| match never {})
            .boxed();
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response
    }

    fn record(&self, status: StatusCode, path: &str) {
        if let Ok(mut log) = self.log.lock() {
            let _ = writeln!(log, "{} {path}", status.as_u16());
        }
    }
}
