//! A private Git host over HTTP for tests: git's own smart HTTP server (`git http-backend`, run as a CGI
//! program per request) behind HTTP Basic authentication, on `127.0.0.1:0`, serving the repositories under
//! a directory. Git clients reach it as they reach a real host (`url.<base>.insteadOf` sends a private
//! host name here), with the credentials in a `.netrc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A running Git host; stopped when dropped.
pub struct GitHttpHost {
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    state: Arc<Mutex<Counts>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct Counts {
    /// Requests answered 401 (no or wrong credentials).
    pub refused: usize,
    /// Requests with the right credentials, handed to git.
    pub served: usize,
}

struct Host {
    root: PathBuf,
    /// The `Authorization` header value every request must carry.
    authorization: String,
    counts: Arc<Mutex<Counts>>,
}

impl GitHttpHost {
    /// Serves the repositories under `root` (`root/team/lib` at `URL/team/lib`) to clients that send
    /// `user` and `password` (HTTP Basic); others get 401.
    pub async fn start(root: &Path, user: &str, password: &str) -> GitHttpHost {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind git host");
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let counts = Arc::new(Mutex::new(Counts::default()));
        let host = Arc::new(Host {
            root: root.to_path_buf(),
            authorization: format!("Basic {}", base64(&format!("{user}:{password}"))),
            counts: counts.clone(),
        });
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let host = host.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let host = host.clone();
                        async move { Ok::<_, std::convert::Infallible>(host.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        GitHttpHost {
            url,
            state: counts,
            server,
        }
    }

    pub fn counts(&self) -> Counts {
        *self.state.lock().unwrap()
    }
}

impl Drop for GitHttpHost {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Host {
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let authorized = request
            .headers()
            .get("authorization")
            .is_some_and(|value| value.as_bytes() == self.authorization.as_bytes());
        if !authorized {
            self.counts.lock().unwrap().refused += 1;
            let mut response =
                Response::new(Full::new(Bytes::from_static(b"credentials needed\n")));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response.headers_mut().insert(
                "www-authenticate",
                http::HeaderValue::from_static("Basic realm=\"git\""),
            );
            return response;
        }
        self.counts.lock().unwrap().served += 1;
        self.cgi(request).await
    }

    /// Runs `git http-backend` for one request, as a web server runs a CGI program.
    async fn cgi(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let mut command = tokio::process::Command::new("git");
        command
            .arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("REMOTE_USER", "git")
            .env("REQUEST_METHOD", parts.method.as_str())
            .env("PATH_INFO", parts.uri.path())
            .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
            .env("CONTENT_TYPE", header("content-type"))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
            .env("GIT_PROTOCOL", header("git-protocol"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("run git http-backend");
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(&body).await;
        drop(stdin);
        let output = child.wait_with_output().await.expect("git http-backend");
        cgi_response(&output.stdout)
    }
}

/// A CGI program's output (headers, a blank line, the body) as a response.
fn cgi_response(output: &[u8]) -> Response<Full<Bytes>> {
    let split = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            output
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        });
    let Some((head_end, body_start)) = split else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"bad CGI output\n")));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return response;
    };
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(&output[body_start..])));
    for line in String::from_utf8_lossy(&output[..head_end]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse().ok());
            *response.status_mut() = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// Standard base64 with padding (this crate keeps its dependencies few).
fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(
            super::base64("ferry-bot:s3cret"),
            "ZmVycnktYm90OnMzY3JldA=="
        );
        assert_eq!(super::base64("ab"), "YWI=");
        assert_eq!(super::base64("abc"), "YWJj");
    }
}
