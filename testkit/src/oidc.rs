//! A fixture OIDC issuer on `127.0.0.1:0`: its discovery document and its JWKS over HTTP, and JWTs signed
//! with its keys (RS256 with an RSA key openssl makes, ES256 with a P-256 key ring makes), made fresh for
//! each issuer. The JWKS can be made unavailable (503), and its fetches are counted.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Which key signs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerKey {
    /// The RSA key, RS256, `kid` `rsa-1`.
    Rsa,
    /// The P-256 key, ES256, `kid` `ec-1`.
    Ec,
    /// A P-256 key the JWKS does not list, `kid` `ec-unpublished`.
    Unpublished,
}

struct Keys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    unpublished: EcdsaKeyPair,
}

#[derive(Default)]
struct Served {
    jwks_down: AtomicBool,
    jwks_fetches: AtomicUsize,
}

/// The fixture issuer; its server stops when it is dropped.
pub struct TestIssuer {
    url: String,
    keys: Arc<Keys>,
    served: Arc<Served>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TestIssuer {
    /// Makes the keys (the RSA one with `openssl genpkey`, its file in `dir`) and serves the issuer.
    pub async fn start(dir: &Path) -> TestIssuer {
        let rsa_file = dir.join(format!("issuer-rsa-{}.der", std::process::id()));
        let made = tokio::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .args(["-outform", "DER", "-out"])
            .arg(&rsa_file)
            .output()
            .await
            .expect("openssl runs");
        assert!(made.status.success(), "openssl genpkey: {made:?}");
        // `-outform DER` writes the PKCS#1 RSAPrivateKey.
        let rsa = RsaKeyPair::from_der(&std::fs::read(&rsa_file).unwrap()).unwrap();
        let ec = || {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .unwrap();
            EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
                &rng,
            )
            .unwrap()
        };
        let keys = Arc::new(Keys {
            rsa,
            ec: ec(),
            unpublished: ec(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(Served::default());
        let jwks = jwks(&keys);
        let (issuer, state) = (url.clone(), served.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (issuer, state, jwks) = (issuer.clone(), state.clone(), jwks.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let answer = answer(&issuer, &state, &jwks, &request);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestIssuer {
            url,
            keys,
            served,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`: the `iss` of its tokens.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Whether its JWKS answers (else 503).
    pub fn set_jwks_available(&self, available: bool) {
        self.served.jwks_down.store(!available, Ordering::SeqCst);
    }

    /// How many times its JWKS was asked for.
    pub fn jwks_fetches(&self) -> usize {
        self.served.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Claims for `subject` and `audience` from this issuer, valid from now for `lifetime` seconds (a
    /// negative lifetime: expired that long ago, issued an hour before).
    pub fn claims(&self, subject: &str, audience: &str, lifetime: i64) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let issued = if lifetime < 0 { now - 3600 } else { now };
        json!({
            "iss": self.url,
            "aud": audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": now + lifetime,
        })
    }

    /// A JWT of `claims` signed with `key`.
    pub fn sign(&self, key: IssuerKey, claims: &Value) -> String {
        let (alg, kid) = match key {
            IssuerKey::Rsa => ("RS256", "rsa-1"),
            IssuerKey::Ec => ("ES256", "ec-1"),
            IssuerKey::Unpublished => ("ES256", "ec-unpublished"),
        };
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let signature = match key {
            IssuerKey::Rsa => {
                let mut signature = vec![0; self.keys.rsa.public().modulus_len()];
                self.keys
                    .rsa
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &rng,
                        input.as_bytes(),
                        &mut signature,
                    )
                    .unwrap();
                signature
            }
            IssuerKey::Ec => self
                .keys
                .ec
                .sign(&rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            IssuerKey::Unpublished => self
                .keys
                .unpublished
                .sign(&rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// The JWKS of the published keys.
fn jwks(keys: &Keys) -> Bytes {
    let rsa: ring::rsa::PublicKeyComponents<Vec<u8>> = keys.rsa.public().into();
    let point = keys.ec.public_key().as_ref();
    let jwks = json!({"keys": [
        {
            "kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
            "n": b64(&rsa.n),
            "e": b64(&rsa.e),
        },
        {
            "kty": "EC", "kid": "ec-1", "alg": "ES256", "use": "sig", "crv": "P-256",
            "x": b64(&point[1..33]),
            "y": b64(&point[33..65]),
        },
    ]});
    Bytes::from(jwks.to_string())
}

fn answer<B>(
    issuer: &str,
    served: &Served,
    jwks: &Bytes,
    request: &Request<B>,
) -> Response<Full<Bytes>> {
    let json = |status: StatusCode, body: Bytes| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap()
    };
    match request.uri().path() {
        "/.well-known/openid-configuration" => {
            let document = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
            json(StatusCode::OK, Bytes::from(document.to_string()))
        }
        "/jwks" => {
            served.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            if served.jwks_down.load(Ordering::SeqCst) {
                json(StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"{}"))
            } else {
                json(StatusCode::OK, jwks.clone())
            }
        }
        _ => json(StatusCode::NOT_FOUND, Bytes::from_static(b"{}")),
    }
}
