//! `ferry healthcheck [URL]`: one GET of a health endpoint, for container health checks in images without curl.
//!
//! Plain HTTP/1.0 over a std `TcpStream`: the probe targets Ferry's own listener, and HTTP/1.0 keeps the
//! answer unchunked, so the status line and the body's first line are the whole parse.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The URL probed when none is given and `FERRY_LISTEN` is not set.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3000/readyz";

/// At most this much of the answer is read: the status line and the reason are all the probe needs.
const ANSWER_LIMIT: usize = 64 * 1024;

/// The `/readyz` URL of a Ferry listening on `listen` (`IP:PORT`, as in `FERRY_LISTEN`): an unspecified
/// address (`0.0.0.0`, `[::]`) is probed on loopback, where the probe runs. `None` when `listen` is not
/// `IP:PORT`.
pub fn readyz_url(listen: &str) -> Option<String> {
    let addr: SocketAddr = listen.parse().ok()?;
    let host = match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => "127.0.0.1".to_string(),
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => "[::1]".to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    };
    Some(format!("http://{host}:{}/readyz", addr.port()))
}

/// GETs `url` within `timeout` (connect, send and answer together). `Ok` with the status line and the
/// body's first line on a 2xx answer; otherwise `Err` with a one-line reason.
pub fn check(url: &str, timeout: Duration) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: not a URL: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "{url}: only http:// URLs can be probed (the probe runs beside Ferry, on its plain listener)"
        ));
    }
    let host = parsed.host_str().ok_or_else(|| format!("{url}: no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let deadline = Instant::now() + timeout;
    let timed_out = || {
        format!(
            "{url}: no answer within {}",
            humantime::format_duration(timeout)
        )
    };
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    };

    let addrs: Vec<SocketAddr> = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("{url}: cannot resolve {host}: {e}"))?
        .collect();
    let mut last_error = format!("{url}: {host} has no address");
    let mut stream = None;
    for addr in addrs {
        let left = remaining().ok_or_else(timed_out)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(connected) => {
                stream = Some(connected);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(timed_out()),
            Err(e) => last_error = format!("{url}: cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;

    let path = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let host_header = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: ferry-healthcheck\r\n\r\n"
    );
    let io_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => timed_out(),
        _ => format!("{url}: {e}"),
    };
    stream
        .set_write_timeout(Some(remaining().ok_or_else(timed_out)?))
        .map_err(io_error)?;
    stream.write_all(request.as_bytes()).map_err(io_error)?;

    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    while answer.len() < ANSWER_LIMIT {
        stream
            .set_read_timeout(Some(remaining().ok_or_else(timed_out)?))
            .map_err(io_error)?;
        match stream.read(&mut buffer).map_err(io_error)? {
            0 => break,
            n => answer.extend_from_slice(&buffer[..n]),
        }
    }
    judge(url, &String::from_utf8_lossy(&answer))
}

/// The verdict on a raw HTTP answer: 2xx passes; anything else fails, naming the status and the body's
/// first line (Ferry's `/readyz` says there why it is not ready).
fn judge(url: &str, answer: &str) -> Result<String, String> {
    let status_line = answer.lines().next().unwrap_or_default().trim();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP answer: {:?}", truncate(status_line)))?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let reason = truncate(
        body.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or(""),
    );
    let summary = format!("{url}: {status_line}: {reason}");
    if (200..300).contains(&status) {
        Ok(summary)
    } else {
        Err(summary)
    }
}

/// At most 200 characters, so the reason stays one readable line in `docker inspect`.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_probed_on_loopback() {
        assert_eq!(
            readyz_url("0.0.0.0:8080").as_deref(),
            Some("http://127.0.0.1:8080/readyz")
        );
        assert_eq!(
            readyz_url("[::]:3000").as_deref(),
            Some("http://[::1]:3000/readyz")
        );
        assert_eq!(
            readyz_url("10.1.2.3:3000").as_deref(),
            Some("http://10.1.2.3:3000/readyz")
        );
        assert_eq!(readyz_url("localhost:3000"), None);
    }

    #[test]
    fn only_a_2xx_status_passes_and_the_reason_is_the_first_body_line() {
        let url = "http://127.0.0.1:1/readyz";
        assert_eq!(
            judge(url, "HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nready"),
            Ok("http://127.0.0.1:1/readyz: HTTP/1.0 200 OK: ready".to_string())
        );
        assert_eq!(
            judge(
                url,
                "HTTP/1.1 503 Service Unavailable\r\n\r\nnot ready: storage\nmore\n"
            ),
            Err(
                "http://127.0.0.1:1/readyz: HTTP/1.1 503 Service Unavailable: not ready: storage"
                    .to_string()
            )
        );
        assert!(judge(url, "SSH-2.0-OpenSSH\r\n").is_err());
        assert!(judge(url, "").is_err());
    }
}
