//! `ferry healthcheck [URL]`: one GET of a health endpoint, for container health checks in images without curl.
//!
//! HTTP/1.0 over a std `TcpStream`, in the clear for `http://` and over TLS (rustls, the ring provider) for
//! `https://`: the probe targets Ferry's own listener, and HTTP/1.0 keeps the answer unchunked, so the status
//! line and the body's first line are the whole parse.
//!
//! Over TLS the probe trusts what [`Trust`] names: a CA file (`--ca`), else, on the loopback address, the
//! certificate Ferry serves (the file of `tls_cert`): the certificate presented must be that one, byte for
//! byte, whatever the name in the URL. Nothing else is trusted (the system's roots are not read).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The URL probed when none is given and `FERRY_LISTEN` is not set.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3000/readyz";

/// At most this much of the answer is read: the status line and the reason are all the probe needs.
const ANSWER_LIMIT: usize = 64 * 1024;

/// What an `https://` probe trusts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// A PEM file of CA certificates (`--ca`): the server's chain must lead to one of them, for the URL's
    /// host name or address.
    pub ca: Option<PathBuf>,
    /// The certificate (chain) file Ferry serves (`tls_cert`): on the loopback address, when no CA is given,
    /// the certificate presented must be its first.
    pub own_cert: Option<PathBuf>,
}

/// The `/readyz` URL of a Ferry listening on `listen` (`IP:PORT`, as in `FERRY_LISTEN`), `https` when it
/// serves TLS: an unspecified address (`0.0.0.0`, `[::]`) is probed on loopback, where the probe runs.
/// `None` when `listen` is not `IP:PORT`.
pub fn readyz_url(listen: &str, tls: bool) -> Option<String> {
    let addr: SocketAddr = listen.parse().ok()?;
    let host = match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => "127.0.0.1".to_string(),
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => "[::1]".to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    };
    let scheme = if tls { "https" } else { "http" };
    Some(format!("{scheme}://{host}:{}/readyz", addr.port()))
}

/// The socket, in the clear or over TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            Stream::Tls(tls) => &tls.sock,
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(socket) => socket.write_all(bytes),
            Stream::Tls(tls) => tls.write_all(bytes).and_then(|()| tls.flush()),
        }
    }

    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.read(buffer),
            Stream::Tls(tls) => tls.read(buffer),
        }
    }
}

/// GETs `url` within `timeout` (connect, handshake, send and answer together), an `https://` URL trusting
/// what `trust` names. `Ok` with the status line and the body's first line on a 2xx answer; otherwise `Err`
/// with a one-line reason.
pub fn check(url: &str, timeout: Duration, trust: &Trust) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: not a URL: {e}"))?;
    let tls = match parsed.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(format!(
                "{url}: a {other}:// URL cannot be probed; give an http:// or https:// URL"
            ));
        }
    };
    let host = parsed.host_str().ok_or_else(|| format!("{url}: no host"))?;
    let bare_host = host.trim_matches(['[', ']']);
    // Before connecting: a probe that cannot trust the server says so at once.
    let client = tls
        .then(|| client_config(url, bare_host, trust))
        .transpose()?;
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let probe = Probe {
        url,
        timeout,
        deadline: Instant::now() + timeout,
        tls,
    };
    let socket = probe.connect(host, bare_host, port)?;
    let mut stream = match client {
        None => Stream::Plain(socket),
        Some(config) => {
            let name = ServerName::try_from(bare_host.to_string())
                .map_err(|e| format!("{url}: {host} is not a TLS server name: {e}"))?;
            let connection = rustls::ClientConnection::new(config, name)
                .map_err(|e| format!("{url}: TLS: {e}"))?;
            Stream::Tls(Box::new(rustls::StreamOwned::new(connection, socket)))
        }
    };
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
    let answer = probe.exchange(&mut stream, request.as_bytes())?;
    judge(url, &String::from_utf8_lossy(&answer))
}

/// One probe of `url`: everything it does shares one deadline.
struct Probe<'a> {
    url: &'a str,
    timeout: Duration,
    deadline: Instant,
    tls: bool,
}

impl Probe<'_> {
    fn timed_out(&self) -> String {
        format!(
            "{}: no answer within {}",
            self.url,
            humantime::format_duration(self.timeout)
        )
    }

    /// What is left of the deadline; `Err` once it has passed.
    fn remaining(&self) -> Result<Duration, String> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| self.timed_out())
    }

    /// A connection to the first of `host`'s addresses that takes one.
    fn connect(&self, host: &str, bare_host: &str, port: u16) -> Result<TcpStream, String> {
        let url = self.url;
        let addrs: Vec<SocketAddr> = (bare_host, port)
            .to_socket_addrs()
            .map_err(|e| format!("{url}: cannot resolve {host}: {e}"))?
            .collect();
        let mut last_error = format!("{url}: {host} has no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.remaining()?) {
                Ok(connected) => return Ok(connected),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(self.timed_out()),
                Err(e) => last_error = format!("{url}: cannot connect to {addr}: {e}"),
            }
        }
        Err(last_error)
    }

    /// Sends `request` and reads the answer (at most [`ANSWER_LIMIT`] bytes of it) until the server closes.
    fn exchange(&self, stream: &mut Stream, request: &[u8]) -> Result<Vec<u8>, String> {
        let io_error = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => self.timed_out(),
            // A TLS failure (an untrusted certificate, a plain-HTTP server) comes as an error wrapping
            // rustls'.
            std::io::ErrorKind::InvalidData if self.tls => {
                format!("{}: TLS: {}", self.url, tls_reason(&e))
            }
            _ => format!("{}: {e}", self.url),
        };
        // The TLS handshake happens on the first write and read, under the same deadline.
        let socket = stream.socket();
        socket
            .set_write_timeout(Some(self.remaining()?))
            .map_err(io_error)?;
        socket
            .set_read_timeout(Some(self.remaining()?))
            .map_err(io_error)?;
        stream.write_all(request).map_err(io_error)?;
        let mut answer = Vec::new();
        let mut buffer = [0u8; 8192];
        while answer.len() < ANSWER_LIMIT {
            stream
                .socket()
                .set_read_timeout(Some(self.remaining()?))
                .map_err(io_error)?;
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
                // A TLS peer that closes without close_notify once the answer is sent: the answer is whole.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {
                    break;
                }
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(answer)
    }
}

/// Why a TLS connection failed and, when its cause is the certificate, what to do.
fn tls_reason(error: &std::io::Error) -> String {
    let hint = "; give the CA that issued Ferry's certificate with --ca FILE";
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) => {
            format!("invalid peer certificate: {}{hint}", other.0)
        }
        Some(
            e @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented),
        ) => format!("{e}{hint}"),
        _ => error.to_string(),
    }
}

/// The client configuration of an `https://` probe of `host`, trusting what `trust` names.
fn client_config(
    url: &str,
    host: &str,
    trust: &Trust,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{url}: TLS: {e}"))?;
    let loopback = host
        .parse::<IpAddr>()
        .map_or(host == "localhost", |ip| ip.is_loopback());
    let builder = match (&trust.ca, &trust.own_cert) {
        (Some(ca), _) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certificates(ca, "--ca")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("--ca {}: not a CA certificate: {e}", ca.display()))?;
            }
            builder.with_root_certificates(roots)
        }
        (None, Some(own)) if loopback => {
            let served = read_certificates(own, "tls_cert")?.swap_remove(0);
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    served,
                    file: own.clone(),
                    algorithms: provider.signature_verification_algorithms,
                }))
        }
        (None, Some(_)) => {
            return Err(format!(
                "{url}: Ferry's own certificate is trusted on the loopback address only; give the CA that issued it with --ca FILE"
            ));
        }
        (None, None) => {
            return Err(format!(
                "{url}: nothing to trust; give the CA that issued Ferry's certificate with --ca FILE (on the loopback address, FERRY_TLS_CERT's file is trusted when set)"
            ));
        }
    };
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates of a PEM file (at least one); `what` names the file in messages.
fn read_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("{what} {}: cannot read it: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("{what} {}: not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: holds no `-----BEGIN CERTIFICATE-----` block",
            path.display()
        ));
    }
    Ok(certs)
}

/// Trusts exactly one certificate: the one Ferry serves. The handshake's signatures are still checked, so
/// only the holder of its key passes.
#[derive(Debug)]
struct Pinned {
    served: CertificateDer<'static>,
    /// Where it was read from, for the message when another is presented.
    file: PathBuf,
    algorithms: WebPkiSupportedAlgorithms,
}

/// Another certificate than the pinned one was presented.
#[derive(Debug)]
struct NotPinned(PathBuf);

impl std::fmt::Display for NotPinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's certificate is not the one in {} (FERRY_TLS_CERT)",
            self.0.display()
        )
    }
}

impl std::error::Error for NotPinned {}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.served.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(NotPinned(
                    self.file.clone(),
                )))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
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
    fn an_unspecified_listen_address_is_probed_on_loopback_with_the_listeners_scheme() {
        assert_eq!(
            readyz_url("0.0.0.0:8080", false).as_deref(),
            Some("http://127.0.0.1:8080/readyz")
        );
        assert_eq!(
            readyz_url("[::]:3000", false).as_deref(),
            Some("http://[::1]:3000/readyz")
        );
        assert_eq!(
            readyz_url("10.1.2.3:3000", false).as_deref(),
            Some("http://10.1.2.3:3000/readyz")
        );
        assert_eq!(
            readyz_url("0.0.0.0:3000", true).as_deref(),
            Some("https://127.0.0.1:3000/readyz")
        );
        assert_eq!(readyz_url("localhost:3000", false), None);
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
