//! TLS on the main listener (`tls_cert` / `tls_key`): rustls with the ring provider, ALPN `h2` and
//! `http/1.1`, and a certificate that SIGHUP replaces without a restart. The certificate is read through a
//! resolver holding an `ArcSwap`, so a reload is one pointer swap: connections already open keep the
//! certificate they were handshaken with, the next handshake gets the new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate and key in force, and the files they come from.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    resolver: Arc<Reloadable>,
}

/// Why a certificate and key cannot be served. Never holds key material: PEM parse errors (which can quote
/// a line of the file) are replaced by what to check.
#[derive(Debug, thiserror::Error)]
#[error("{setting} {path}: {message}", path = .path.display())]
pub struct TlsError {
    /// `tls_cert` or `tls_key`.
    pub setting: &'static str,
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.resolver.cert)
            .field("key", &self.resolver.key)
            .finish_non_exhaustive()
    }
}

/// Ferry's one TLS provider: ring. (The storage crates also pull in aws-lc, so rustls has no process-wide
/// default to fall back on; every config names its provider.)
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Reads and checks the pair: both PEM, the key the one the certificate was issued for.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let provider = provider();
        let resolver = Arc::new(Reloadable {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: ArcSwap::from_pointee(read_pair(cert, key, &provider)?),
            provider: provider.clone(),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError {
                setting: "tls_cert",
                path: cert.to_path_buf(),
                message: format!("no TLS version to serve: {e}"),
            })?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // HTTP/2 first: clients that speak it (the go command, curl) pick it.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            resolver,
        })
    }

    /// Reads the pair again and serves it from the next handshake on; on an error the pair in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let resolver = &self.resolver;
        let pair = read_pair(&resolver.cert, &resolver.key, &resolver.provider)?;
        resolver.current.store(Arc::new(pair));
        Ok(())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.resolver.cert
    }

    /// The private key file (its path only: the key is never shown).
    pub fn key_path(&self) -> &Path {
        &self.resolver.key
    }

    pub(crate) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }
}

/// The certificate every handshake gets, replaceable.
#[derive(Debug)]
struct Reloadable {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
    provider: Arc<CryptoProvider>,
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_error = |message: String| TlsError {
        setting: "tls_cert",
        path: cert.to_path_buf(),
        message,
    };
    let key_error = |message: String| TlsError {
        setting: "tls_key",
        path: key.to_path_buf(),
        message,
    };
    let cert_pem =
        std::fs::read(cert).map_err(|e| cert_error(format!("cannot read the certificate: {e}")))?;
    let key_pem =
        std::fs::read(key).map_err(|e| key_error(format!("cannot read the private key: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            cert_error(
                "is not a valid PEM file; give the certificate (chain) in PEM, `-----BEGIN CERTIFICATE-----` blocks, the server's first".to_string(),
            )
        })?;
    if chain.is_empty() {
        return Err(cert_error(
            "holds no certificate; give the certificate (chain) in PEM, `-----BEGIN CERTIFICATE-----` blocks, the server's first".to_string(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        key_error(
            "holds no usable private key; give the key in PEM (`-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)".to_string(),
        )
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(private_key)
        .map_err(|e| key_error(format!("the private key cannot be used: {e}")))?;
    let pair = CertifiedKey::new(chain, signing_key);
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(pair)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(key_error(format!(
                "is not the key of the certificate in {}; give the key the certificate was issued for",
                cert.display()
            )))
        }
        Err(e) => Err(cert_error(format!(
            "the certificate cannot be read: {e}; give a PEM X.509 certificate"
        ))),
    }
}
