//! HTTP clients as the tests use them: a hyper client for well-formed requests, raw bytes on a socket for
//! what no client would send, and a blocking GET for tests that drive a process without a runtime.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response as a test looks at it.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, or "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

/// One request with `headers`, its whole body read.
pub async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    request_from(None, method, url, headers).await
}

/// [`request`] on a connection from the local address `from` (any of 127.0.0.0/8 on Linux): a client at
/// another address, as far as the server can tell.
pub async fn request_from(
    from: Option<std::net::IpAddr>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_local_address(from);
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = client
        .request(builder.body(Empty::new()).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    reply(response).await
}

/// A POST of `body` with `headers` (a form, as a browser sends it), its whole answer read.
pub async fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build::<_, http_body_util::Full<Bytes>>(
        hyper_util::client::legacy::connect::HttpConnector::new(),
    );
    let mut builder = http::Request::builder().method("POST").uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client
        .request(request)
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    reply(response).await
}

/// A response with its whole body read.
async fn reply(response: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// A GET whose body is read as it comes: a client watching a download in progress.
pub struct Streamed {
    pub status: u16,
    pub headers: http::HeaderMap,
    body: hyper::body::Incoming,
    /// The body's bytes read so far.
    pub received: Vec<u8>,
}

impl Streamed {
    /// Sends a GET and waits for the response's head only (at most 30 s).
    pub async fn get(url: &str) -> Streamed {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let uri: http::Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
        let response = tokio::time::timeout(Duration::from_secs(30), client.get(uri))
            .await
            .unwrap_or_else(|_| panic!("GET {url}: no response head within 30 s"))
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let (parts, body) = response.into_parts();
        Streamed {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            received: Vec::new(),
        }
    }

    /// Reads until at least `len` bytes of the body have come (at most 30 s); false when the body ended,
    /// failed or stalled before.
    pub async fn read_at_least(&mut self, len: usize) -> bool {
        let reading = async {
            while self.received.len() < len {
                match self.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.received.extend_from_slice(&data);
                        }
                    }
                    _ => return false,
                }
            }
            true
        };
        tokio::time::timeout(Duration::from_secs(30), reading)
            .await
            .unwrap_or(false)
    }

    /// Reads the rest of the body (at most 60 s): `Err` with the client's error when it did not end
    /// cleanly (a connection cut, a length not met); the bytes that came are in `received` either way.
    pub async fn finish(&mut self) -> Result<(), String> {
        let reading = async {
            loop {
                match self.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.received.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Ok(()),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), reading)
            .await
            .unwrap_or_else(|_| Err("the body did not end within 60 s".to_string()))
    }

    /// A header's value, or "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

pub async fn get(url: &str) -> Reply {
    request("GET", url, &[]).await
}

/// Sends `raw` bytes as they are (for requests no HTTP client would send) and returns the status line
/// and whatever followed, up to the connection's close (at most 10 s).
pub async fn raw_request(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A blocking `GET path` on a fresh connection to `addr` (`IP:PORT`); the whole answer, head and body.
pub fn get_blocking(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The value of header `name` (lower case) in a raw answer, or "".
pub fn raw_header<'a>(answer: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    answer
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .unwrap_or_default()
}
