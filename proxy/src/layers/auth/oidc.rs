//! JWTs of OIDC issuers (`[[oidc]]`): the short-lived tokens CI systems give each job (GitHub Actions,
//! GitLab CI, Kubernetes service accounts), verified against the issuer's published keys (its JWKS).
//!
//! - **Keys.** Each issuer's JWKS (from `jwks_url`, else from its discovery document) is fetched in the
//!   background at start, then every [`REFRESH`] (every [`RETRY`] while it fails), and at once for a `kid`
//!   it does not hold, at most once per [`RETRY`]: a flood of made-up `kid`s costs the issuer one request
//!   per 30 s. Keys fetched stay in use while a refresh fails; an issuer that never gave keys has its tokens
//!   answered 503, and the other issuers, tokens and passwords are unaffected.
//! - **Checks.** RS256 or ES256 only (the algorithm is the key's, never the token's choice); `iss` must be
//!   the issuer's, `aud` must hold the configured audience, `exp` and `nbf` are checked with [`LEEWAY`] of
//!   clock skew. The name is a configured claim (`sub` by default), the groups come from configured claims.
//! - **Remembered.** A build fleet sends the same JWT with each of a job's requests: a verified token is
//!   remembered until its `exp`, keyed by a keyed SHA-256 digest of the token (a random key per process),
//!   at most [`REMEMBERED`] of them, so a job costs one signature check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use base64::Engine;
use bytes::Bytes;
use ferry_fetcher::HttpsClient;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How often an issuer's keys are fetched again.
pub const REFRESH: Duration = Duration::from_secs(600);
/// How soon a failed fetch is tried again, and the least time between two fetches for an unknown `kid`.
pub const RETRY: Duration = Duration::from_secs(30);
/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY: u64 = 60;
/// Verified tokens remembered at most (a few hundred bytes each).
pub const REMEMBERED: usize = 16_384;
/// The largest discovery document or JWKS read.
const LARGEST_DOCUMENT: usize = 1 << 20;
/// How long one fetch of a document may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One `[[oidc]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSettings {
    /// The `iss` its tokens carry, and where its discovery document is (`/.well-known/openid-configuration`).
    pub issuer: String,
    /// What `aud` must hold.
    pub audience: String,
    /// Where its keys are, when not from discovery.
    pub jwks_url: Option<String>,
    /// The claim that names the identity (`sub` by default); a JSON pointer (`/kubernetes.io/namespace`) for
    /// a nested one.
    pub name_claim: String,
    /// The claims whose values (a string, or an array of strings) are the identity's groups.
    pub group_claims: Vec<String>,
    /// Put before each group from these claims (`github:`), to keep issuers' groups apart.
    pub group_prefix: String,
}

/// Who a verified JWT names.
#[derive(Debug, Clone)]
pub struct Verified {
    pub name: Arc<str>,
    pub issuer: Arc<str>,
    pub groups: Arc<[Arc<str>]>,
}

/// Why a JWT was refused: a class the client is told, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Algorithm,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    BadSignature,
    UnknownKey,
    NoName,
    /// The issuer's keys cannot be had: not the client's fault (a 503).
    Unavailable,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "the bearer token is not a well-formed JWT",
            Refusal::Algorithm => "the token is not signed with RS256 or ES256",
            Refusal::WrongIssuer => "the token's issuer is not one this Ferry trusts",
            Refusal::WrongAudience => "the token is for another audience",
            Refusal::Expired => "the token has expired",
            Refusal::NotYetValid => "the token is not valid yet",
            Refusal::BadSignature => "the token's signature does not verify",
            Refusal::UnknownKey => "the token is signed with a key its issuer does not publish",
            Refusal::NoName => "the token lacks the claim that names its holder",
            Refusal::Unavailable => {
                "the token's issuer cannot be reached for its signing keys; try again later"
            }
        }
    }

    /// The metric label of the refusal.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Malformed => "jwt_malformed",
            Refusal::Algorithm => "jwt_algorithm",
            Refusal::WrongIssuer => "jwt_issuer",
            Refusal::WrongAudience => "jwt_audience",
            Refusal::Expired => "jwt_expired",
            Refusal::NotYetValid => "jwt_not_yet_valid",
            Refusal::BadSignature => "jwt_signature",
            Refusal::UnknownKey => "jwt_unknown_key",
            Refusal::NoName => "jwt_no_name",
            Refusal::Unavailable => "jwt_unavailable",
        }
    }
}

/// The configured issuers, their keys, and the tokens verified.
pub struct Oidc {
    issuers: Vec<Issuer>,
    client: HttpsClient,
    /// SHA-256 after a block of 64 random bytes: the key of the remembered tokens' digests (hashed once).
    keyed: Sha256,
    verified: Mutex<HashMap<[u8; 32], (Verified, u64)>>,
}

struct Issuer {
    settings: IssuerSettings,
    keys: ArcSwap<Keys>,
    /// One fetch at a time; when the last one started.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, (Algorithm, Arc<DecodingKey>)>,
    /// Keys published without a `kid` (tried for a token without one).
    unnamed: Vec<(Algorithm, Arc<DecodingKey>)>,
    fetched: bool,
    /// The last fetch's failure, while it lasts.
    failing: Option<String>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuers", &self.issuer_urls())
            .finish_non_exhaustive()
    }
}

impl Oidc {
    pub fn new(settings: Vec<IssuerSettings>) -> Oidc {
        let mut secret = [0u8; 64];
        getrandom::fill(&mut secret).expect("the operating system provides random bytes");
        Oidc {
            issuers: settings
                .into_iter()
                .map(|settings| Issuer {
                    settings,
                    keys: ArcSwap::from_pointee(Keys::default()),
                    fetching: tokio::sync::Mutex::new(None),
                })
                .collect(),
            client: ferry_fetcher::https_client(ferry_fetcher::CONNECT_TIMEOUT),
            keyed: Sha256::new_with_prefix(secret),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The issuers' URLs, for `ferry config` and the log.
    pub fn issuer_urls(&self) -> Vec<&str> {
        self.issuers
            .iter()
            .map(|i| i.settings.issuer.as_str())
            .collect()
    }

    /// Fetches every issuer's keys now, and again every `REFRESH` (every `RETRY` while failing), until the
    /// returned tasks are aborted.
    pub fn start(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.issuers.len())
            .map(|index| {
                let oidc = self.clone();
                tokio::spawn(async move {
                    loop {
                        let issuer = &oidc.issuers[index];
                        let ok = issuer.refresh(&oidc.client, None).await;
                        tokio::time::sleep(if ok { REFRESH } else { RETRY }).await;
                    }
                })
            })
            .collect()
    }

    /// The issuers whose tokens cannot be verified now, each with why (for `/readyz`): never given keys.
    pub fn unavailable(&self) -> Vec<String> {
        self.issuers
            .iter()
            .filter_map(|issuer| {
                let keys = issuer.keys.load();
                keys.failing.as_ref()?;
                // The reason stays in the log: it may name internal addresses.
                let state = if keys.fetched {
                    "the keys fetched before stay in use"
                } else {
                    "its tokens are refused"
                };
                Some(format!(
                    "OIDC issuer {}: its signing keys cannot be fetched; {state}",
                    issuer.settings.issuer
                ))
            })
            .collect()
    }

    /// Verifies `token`: who it names, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<(Verified, bool), Refusal> {
        let key = self.cache_key(token);
        if let Some(verified) = self.remembered(&key) {
            return Ok((verified, true));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(Refusal::Algorithm);
        }
        let claimed = unverified_issuer(token).ok_or(Refusal::Malformed)?;
        let issuer = self
            .issuers
            .iter()
            .find(|issuer| issuer.settings.issuer == claimed)
            .ok_or(Refusal::WrongIssuer)?;
        let decoding = issuer
            .key(&self.client, header.kid.as_deref(), header.alg)
            .await?;
        let claims =
            jsonwebtoken::decode::<Value>(token, &decoding, &issuer.validation(header.alg))
                .map_err(|e| classify(e.kind()))?
                .claims;
        let verified = issuer.identity(&claims)?;
        let expires = claims["exp"].as_u64().ok_or(Refusal::Malformed)?;
        self.remember(key, verified.clone(), expires);
        Ok((verified, false))
    }

    /// Whom `token` names, if it verified before and has not expired: the let-in path's look-up, which
    /// needs no future.
    pub fn remembered_token(&self, token: &str) -> Option<Verified> {
        self.remembered(&self.cache_key(token))
    }

    fn cache_key(&self, token: &str) -> [u8; 32] {
        self.keyed
            .clone()
            .chain_update(token.as_bytes())
            .finalize()
            .into()
    }

    fn remembered(&self, key: &[u8; 32]) -> Option<Verified> {
        let verified = self.verified.lock().expect("never poisoned");
        let (identity, expires) = verified.get(key)?;
        (now() < *expires + LEEWAY).then(|| identity.clone())
    }

    /// Remembers a verified token until it expires; when full, the expired go first, then an eighth of
    /// the others (any: the next request of theirs verifies again).
    fn remember(&self, key: [u8; 32], verified: Verified, expires: u64) {
        let mut remembered = self.verified.lock().expect("never poisoned");
        if remembered.len() >= REMEMBERED {
            let now = now();
            remembered.retain(|_, (_, expires)| now < *expires + LEEWAY);
            if remembered.len() >= REMEMBERED {
                let drop: Vec<[u8; 32]> = remembered.keys().take(REMEMBERED / 8).copied().collect();
                for key in drop {
                    remembered.remove(&key);
                }
            }
        }
        remembered.insert(key, (verified, expires));
    }
}

impl Issuer {
    /// The key a token names (`kid`, else the only one of its algorithm), fetching the keys again for a
    /// `kid` not held (at most once per [`RETRY`]) or when none were ever fetched.
    async fn key(
        &self,
        client: &HttpsClient,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Arc<DecodingKey>, Refusal> {
        let find = |keys: &Keys| match kid {
            Some(kid) => keys
                .by_kid
                .get(kid)
                .filter(|(alg, _)| *alg == algorithm)
                .map(|(_, key)| key.clone()),
            None => match keys.unnamed.as_slice() {
                [(alg, key)] if *alg == algorithm => Some(key.clone()),
                _ => None,
            },
        };
        if let Some(key) = find(&self.keys.load()) {
            return Ok(key);
        }
        self.refresh(client, Some(RETRY)).await;
        let keys = self.keys.load();
        match find(&keys) {
            Some(key) => Ok(key),
            None if !keys.fetched => Err(Refusal::Unavailable),
            None => Err(Refusal::UnknownKey),
        }
    }

    /// Fetches the keys and puts them in force, unless a fetch started less than `gap` ago (then waits for
    /// it, if it runs); whether the keys in force are fresh.
    async fn refresh(&self, client: &HttpsClient, gap: Option<Duration>) -> bool {
        let mut last = self.fetching.lock().await;
        if let (Some(gap), Some(at)) = (gap, *last)
            && at.elapsed() < gap
        {
            return self.keys.load().failing.is_none();
        }
        *last = Some(Instant::now());
        let fetched = tokio::time::timeout(FETCH_TIMEOUT * 2, self.fetch(client))
            .await
            .unwrap_or_else(|_| Err("timed out".to_string()));
        let old = self.keys.load();
        match fetched {
            Ok(keys) => {
                tracing::debug!(
                    issuer = self.settings.issuer.as_str(),
                    keys = keys.by_kid.len() + keys.unnamed.len(),
                    "OIDC keys fetched"
                );
                self.keys.store(Arc::new(keys));
                true
            }
            Err(error) => {
                tracing::warn!(issuer = self.settings.issuer.as_str(), %error, "OIDC: the issuer's signing keys cannot be fetched");
                self.keys.store(Arc::new(Keys {
                    by_kid: old.by_kid.clone(),
                    unnamed: old.unnamed.clone(),
                    fetched: old.fetched,
                    failing: Some(error),
                }));
                false
            }
        }
    }

    /// The JWKS: from `jwks_url`, else from the discovery document's `jwks_uri`.
    async fn fetch(&self, client: &HttpsClient) -> Result<Keys, String> {
        let url = match &self.settings.jwks_url {
            Some(url) => url.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    self.settings.issuer.trim_end_matches('/')
                );
                let document = get_json(client, &discovery).await?;
                if document["issuer"].as_str() != Some(self.settings.issuer.as_str()) {
                    return Err(format!(
                        "{discovery}: its issuer is not {}",
                        self.settings.issuer
                    ));
                }
                document["jwks_uri"]
                    .as_str()
                    .ok_or_else(|| format!("{discovery}: no jwks_uri"))?
                    .to_string()
            }
        };
        let jwks = get_json(client, &url).await?;
        let keys = parse_jwks(&jwks);
        if keys.by_kid.is_empty() && keys.unnamed.is_empty() {
            return Err(format!("{url}: no RS256 or ES256 signing key"));
        }
        Ok(keys)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.settings.audience]);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation
    }

    /// The name and groups the claims give.
    fn identity(&self, claims: &Value) -> Result<Verified, Refusal> {
        let name = claim(claims, &self.settings.name_claim)
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or(Refusal::NoName)?;
        let mut groups: Vec<Arc<str>> = Vec::new();
        for name in &self.settings.group_claims {
            let values = match claim(claims, name) {
                Some(Value::String(one)) => vec![one.as_str()],
                Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            groups.extend(
                values
                    .into_iter()
                    .map(|v| Arc::from(format!("{}{v}", self.settings.group_prefix))),
            );
        }
        Ok(Verified {
            name: Arc::from(name),
            issuer: Arc::from(self.settings.issuer.as_str()),
            groups: groups.into(),
        })
    }
}

/// A claim by name, or by JSON pointer (`/kubernetes.io/namespace`).
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    }
}

/// The `iss` of a token's payload, before its signature is checked: only to pick the issuer whose keys
/// check it.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some(claims.get("iss")?.as_str()?.to_string())
}

fn classify(kind: &ErrorKind) -> Refusal {
    match kind {
        ErrorKind::ExpiredSignature => Refusal::Expired,
        ErrorKind::ImmatureSignature => Refusal::NotYetValid,
        ErrorKind::InvalidAudience => Refusal::WrongAudience,
        ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
        ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
            Refusal::BadSignature
        }
        ErrorKind::InvalidAlgorithm => Refusal::Algorithm,
        _ => Refusal::Malformed,
    }
}

/// The signing keys of a JWKS Ferry can use: RSA for RS256, P-256 for ES256; others are skipped.
fn parse_jwks(jwks: &Value) -> Keys {
    let mut keys = Keys {
        fetched: true,
        ..Keys::default()
    };
    for jwk in jwks["keys"].as_array().into_iter().flatten() {
        if jwk["use"].as_str().is_some_and(|u| u != "sig") {
            continue;
        }
        let text = |field: &str| jwk[field].as_str();
        let parsed = match (text("kty"), text("alg"), text("crv")) {
            (Some("RSA"), None | Some("RS256"), _) => text("n")
                .zip(text("e"))
                .and_then(|(n, e)| DecodingKey::from_rsa_components(n, e).ok())
                .map(|key| (Algorithm::RS256, key)),
            (Some("EC"), None | Some("ES256"), Some("P-256")) => text("x")
                .zip(text("y"))
                .and_then(|(x, y)| DecodingKey::from_ec_components(x, y).ok())
                .map(|key| (Algorithm::ES256, key)),
            _ => None,
        };
        let Some((algorithm, key)) = parsed else {
            continue;
        };
        let key = Arc::new(key);
        match text("kid") {
            Some(kid) => {
                keys.by_kid.insert(kid.to_string(), (algorithm, key));
            }
            None => keys.unnamed.push((algorithm, key)),
        }
    }
    keys
}

/// GETs `url` and parses its JSON, bounded in size and time.
async fn get_json(client: &HttpsClient, url: &str) -> Result<Value, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let request = http::Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("{url}: {e}"))?;
    let answer = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("GET {url}: {}", ferry_fetcher::error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        Limited::new(response.into_body(), LARGEST_DOCUMENT)
            .collect()
            .await
            .map(|body| body.to_bytes())
            .map_err(|e| format!("GET {url}: {e}"))
    };
    let body = tokio::time::timeout(FETCH_TIMEOUT, answer)
        .await
        .map_err(|_| format!("GET {url}: no answer within {}s", FETCH_TIMEOUT.as_secs()))??;
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(name_claim: &str, group_claims: &[&str]) -> Issuer {
        Issuer {
            settings: IssuerSettings {
                issuer: "https://issuer.test".into(),
                audience: "ferry".into(),
                jwks_url: None,
                name_claim: name_claim.into(),
                group_claims: group_claims.iter().map(|c| c.to_string()).collect(),
                group_prefix: "k8s:".into(),
            },
            keys: ArcSwap::from_pointee(Keys::default()),
            fetching: tokio::sync::Mutex::new(None),
        }
    }

    #[test]
    fn the_name_and_groups_come_from_the_configured_claims_nested_ones_by_json_pointer() {
        let claims = serde_json::json!({
            "sub": "system:serviceaccount:ci:builder",
            "groups": ["a", "b", 3],
            "kubernetes.io": {"namespace": "ci"},
        });
        let verified = issuer("sub", &["groups", "/kubernetes.io/namespace", "absent"])
            .identity(&claims)
            .unwrap();
        assert_eq!(&*verified.name, "system:serviceaccount:ci:builder");
        let groups: Vec<&str> = verified.groups.iter().map(|g| &**g).collect();
        assert_eq!(groups, ["k8s:a", "k8s:b", "k8s:ci"]);
        assert_eq!(&*verified.issuer, "https://issuer.test");
        let missing = issuer("email", &[]).identity(&claims);
        assert_eq!(missing.err(), Some(Refusal::NoName));
    }

    #[test]
    fn only_rs256_and_p256_signing_keys_of_a_jwks_are_kept() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "sXch", "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AA"},
        ]});
        let keys = parse_jwks(&jwks);
        assert_eq!(keys.by_kid.keys().collect::<Vec<_>>(), ["r"]);
        assert!(keys.unnamed.is_empty() && keys.fetched);
    }
}
