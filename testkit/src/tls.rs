//! Test certificates and credentials: a certificate authority of the test's own (rcgen), the server
//! certificates it issues for `127.0.0.1` and `localhost`, htpasswd lines as `htpasswd -B` writes them, and
//! curl as a second, independent TLS and HTTP/2 client.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A throw-away certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, written as PEM files.
pub struct ServerPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA named `name` (its common name).
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// The CA certificate, PEM: what a client trusts (`SSL_CERT_FILE`, `curl --cacert`).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA certificate to `dir/name` and returns the path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.pem()).unwrap();
        path
    }

    /// Issues a server certificate for `127.0.0.1` and `localhost` and writes it and its key to
    /// `dir/{name}.crt` and `dir/{name}.key`.
    pub fn issue(&self, dir: &Path, name: &str) -> ServerPair {
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pair = ServerPair {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&pair.cert, cert.pem()).unwrap();
        std::fs::write(&pair.key, key.serialize_pem()).unwrap();
        pair
    }
}

/// An htpasswd line for `user` as `htpasswd -B` writes it (`$2y$`), at bcrypt's lowest cost so that tests
/// stay fast.
pub fn htpasswd_line(user: &str, password: &str) -> String {
    htpasswd_line_at_cost(user, password, 4)
}

/// [`htpasswd_line`] at bcrypt cost `cost` (`htpasswd -B -C COST`), for tests where a check must take time.
pub fn htpasswd_line_at_cost(user: &str, password: &str, cost: u32) -> String {
    let hash = bcrypt::hash_with_result(password, cost)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    format!("{user}:{hash}")
}

/// Runs `curl -sS --max-time 20 <args>` (nothing from the environment) and returns what it did.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .env_clear()
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("the tests need curl")
}
