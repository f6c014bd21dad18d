//! Client authentication: HTTP Basic credentials checked against an htpasswd file of bcrypt entries
//! (`auth_file`). Every request needs them except the health probes (`/healthz`, `/readyz`), which load
//! balancers call without credentials: the request's route says which (`Endpoint::needs_credentials`).
//!
//! bcrypt is slow on purpose (each cost step doubles it: milliseconds at `htpasswd -B`'s default cost 5,
//! tens of milliseconds at the cost 10 to 12 that `-C` sets for stronger entries), and a build fleet sends
//! thousands of requests with the same credentials, so a password that verified is remembered: per user, a
//! keyed SHA-256 digest of the credentials, with the entry it verified against and the identity it lets in;
//! the next request with them is let in by that digest alone (one look-up in a map read without a lock, no
//! decoding, no allocation but the identity's place in the request).
//! A wrong password is remembered too, for a while ([`failures`]), so the same wrong credentials again are
//! answered without bcrypt. What is remembered counts only while the user's entry in the file is the one it
//! was checked against: a reload (SIGHUP) keeps it for every unchanged entry, and a changed or removed entry
//! takes effect at once.
//!
//! Every other check runs bcrypt on a verifier thread, queued ([`queue`]) so that a flood of wrong
//! passwords cannot hold back a user it does not name: one queue per user name, taken in turn, capped per
//! queue, per client address and in all, with a deadline, identical checks run once. Beyond a cap or the
//! deadline the answer is a 503 with `Retry-After`.
//!
//! A request let in carries its [`Identity`] (the user it authenticated as) in its extensions, for the
//! handler, and, when a layer outside this one asks ([`ShowIdentity`]: the access log when it is on), in its
//! response's.
//!
//! The go command sends credentials over HTTPS only: the 401 says what works over the scheme the client
//! used (the request's [`Client`](super::client::Client)).
//!
//! This is a `tower` layer rather than a [`Hook`](super::hook::Hook): the bcrypt check runs on the blocking
//! pool, and a hook's `before` cannot wait.

mod failures;
pub mod oidc;
mod queue;
pub mod tokens;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use arc_swap::ArcSwap;
use base64::Engine;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

use self::failures::Failures;
use self::oidc::Oidc;
use self::queue::{Busy, Checked, Job, Key, Limits, Verdict, Verifiers};
use self::tokens::Tokens;
use super::ResponseFuture;
use super::client::Client;
use crate::answer::{self, Answer};
use crate::body::Body;
use crate::connection::ClientAddress;
use crate::metrics::metrics;
use crate::request::{Endpoint, Route};
use prometheus_client::metrics::counter::Counter;

/// The challenge every 401 carries; the go command and curl answer it with Basic credentials.
const CHALLENGE: &str = "Basic realm=\"ferry\"";
/// What a 503 for a busy password check tells the client to wait, in seconds: the queues move by a check
/// per verifier every few tens of milliseconds.
const RETRY_AFTER_BUSY: u64 = 1;

/// Who a request authenticated as. In the request's extensions once authentication let it in (and in
/// its response's when asked); absent when authentication is off or the request needs none (the health
/// probes). Access rules, the audit trail and fill budgets read it; the access log writes its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name: an `auth_file` user as the client sent it and the file lists it, a token's name, or a
    /// verified JWT's subject.
    pub user: Arc<str>,
    /// What proved it.
    pub via: Credential,
    /// The groups it belongs to (from a token's entry or a JWT's mapped claims); empty for a password.
    pub groups: Arc<[Arc<str>]>,
}

/// What a request's identity was proved by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password of `auth_file` (HTTP Basic).
    Password,
    /// A static bearer token.
    Token,
    /// A JWT verified against a configured OIDC issuer (its `iss`).
    Oidc { issuer: Arc<str> },
}

impl Identity {
    /// A user of `auth_file`, proved by its password.
    pub fn password(user: impl Into<Arc<str>>) -> Self {
        Identity {
            user: user.into(),
            via: Credential::Password,
            groups: Arc::from([]),
        }
    }

    /// A static bearer token of `token_file`, by its entry's name and groups.
    pub fn token(entry: &tokens::TokenEntry) -> Self {
        Identity {
            user: entry.name.clone(),
            via: Credential::Token,
            groups: entry.groups.clone(),
        }
    }

    /// A JWT verified against a configured OIDC issuer.
    pub fn oidc(verified: oidc::Verified) -> Self {
        Identity {
            user: verified.name,
            via: Credential::Oidc {
                issuer: verified.issuer,
            },
            groups: verified.groups,
        }
    }
}

/// Every way a request may prove who it is: passwords (`auth_file`), bearer tokens (`token_file`) and
/// JWTs of OIDC issuers (`[[oidc]]`); authentication is on when any is configured.
#[derive(Debug, Default, Clone)]
pub struct Gate {
    pub passwords: Option<Arc<Auth>>,
    pub tokens: Option<Arc<Tokens>>,
    pub oidc: Option<Arc<Oidc>>,
}

impl Gate {
    /// The gate, or none when no way in is configured (authentication off).
    pub fn of(
        passwords: Option<Arc<Auth>>,
        tokens: Option<Arc<Tokens>>,
        oidc: Option<Arc<Oidc>>,
    ) -> Option<Arc<Gate>> {
        (passwords.is_some() || tokens.is_some() || oidc.is_some()).then(|| {
            Arc::new(Gate {
                passwords,
                tokens,
                oidc,
            })
        })
    }

    /// Whether bearer tokens of some kind are accepted.
    fn takes_bearer(&self) -> bool {
        self.tokens.is_some() || self.oidc.is_some()
    }

    /// What to do with a request: a bearer token is looked up, anything else goes to the passwords.
    fn check<B>(&self, request: &Request<B>) -> Check {
        if Route::on(request).is_some_and(|route| !route.needs_credentials()) {
            return Check::Open;
        }
        if let Some(token) = bearer(request) {
            return self.check_bearer(token, request);
        }
        match &self.passwords {
            Some(passwords) => passwords.check(request),
            None => {
                tracing::info!(
                    request_id = request_id(request).as_str(),
                    path = super::clipped(request.uri().path(), 128),
                    "authentication required: the request has no bearer token"
                );
                Check::Refuse
            }
        }
    }

    fn check_bearer<B>(&self, token: &str, request: &Request<B>) -> Check {
        // A JWT is three base64url parts joined by dots; Ferry's own tokens have no dot.
        if let Some(oidc) = &self.oidc
            && token.split('.').count() == 3
        {
            // A token verified before is let in here, without the verification's future.
            return match oidc.remembered_token(token) {
                Some(verified) => {
                    counters().jwt_remembered.inc();
                    Check::Known(Identity::oidc(verified))
                }
                None => Check::Jwt(oidc.clone(), token.to_string()),
            };
        }
        let Some(tokens) = &self.tokens else {
            return Check::RefuseBearer(Refusal::NotAccepted);
        };
        match tokens.find(token) {
            Some(entry) => {
                counters().token.inc();
                Check::Known(Identity::token(&entry))
            }
            None => {
                metrics().auth_check("token_unknown");
                tracing::warn!(
                    request_id = request_id(request).as_str(),
                    "authentication failed: unknown bearer token (revoked, or never made here)"
                );
                Check::RefuseBearer(Refusal::UnknownToken)
            }
        }
    }
}

/// Why a bearer token was refused: the class the 401 names, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// This Ferry takes no bearer tokens.
    NotAccepted,
    /// Not a token of `token_file` (revoked, mistyped, or from elsewhere).
    UnknownToken,
    /// A JWT refused, and the class of why.
    Jwt(oidc::Refusal),
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::Jwt(why) => why.reason(),
            Refusal::NotAccepted => "this Ferry accepts no bearer tokens",
            Refusal::UnknownToken => "the bearer token is not known here (revoked, or mistyped)",
        }
    }
}

/// The token of a `Bearer` Authorization header.
fn bearer<B>(request: &Request<B>) -> Option<&str> {
    // `from_utf8` checks a JWT's 900 bytes a word at a time, `HeaderValue::to_str` a byte at a time; a token
    // with other bytes than a header allows is refused further on all the same (unknown, or malformed).
    let value =
        std::str::from_utf8(request.headers().get(header::AUTHORIZATION)?.as_bytes()).ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The users of an htpasswd file, reloadable.
pub struct Auth {
    path: PathBuf,
    table: Arc<Table>,
    verifiers: Arc<Verifiers>,
}

/// The users in force and what was checked against them; shared with the checks waiting for bcrypt, which
/// record their outcome here.
struct Table {
    users: ArcSwap<Users>,
    /// SHA-256 after one block of 64 random bytes: the key of every digest, so that memory never holds a
    /// plain, quickly guessable SHA-256 of a password. Hashed once at start, so a check hashes only the
    /// credentials (one compression for a Basic header of up to 55 bytes).
    keyed: Sha256,
    /// Per user, the last credentials that verified: at most one per user of the file in force (a reload
    /// drops the others). Written under this lock, which [`Table::remembered`] is rebuilt under.
    verified: Mutex<HashMap<String, Verified>>,
    /// The same credentials by their digest, with the identity they let in: what the let-in path reads,
    /// without a lock and without decoding the credentials (rebuilt on every change, which is rare: one
    /// per user and password verified). The digests are keyed by a secret, so a look-up by digest tells an
    /// attacker nothing a constant-time compare would hide.
    remembered: ArcSwap<HashMap<Key, Identity>>,
    failed: Mutex<Failures>,
}

/// Credentials that verified: their keyed digest, the entry they verified against and whom they let in.
struct Verified {
    entry: Arc<str>,
    digest: Key,
    identity: Identity,
}

/// One reading of the file: each user's bcrypt entry.
struct Users {
    hashes: HashMap<String, Arc<str>>,
}

/// Why an htpasswd file cannot be used. Never holds a hash or a password.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error(
        "{path}: cannot read the authentication file: {source}; check auth_file / FERRY_AUTH_FILE",
        path = .path.display()
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}", path = .path.display())]
    Entry {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("path", &self.path)
            .field("users", &self.user_count())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Reads the htpasswd file at `path`; any entry that is not bcrypt is refused with its place.
    pub fn load(path: &Path) -> Result<Auth, AuthFileError> {
        let users = read_users(path)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut secret = [0u8; 64];
        getrandom::fill(&mut secret).expect("the operating system provides random bytes");
        Ok(Auth {
            path: path.to_path_buf(),
            table: Arc::new(Table {
                users: ArcSwap::from_pointee(users),
                keyed: Sha256::new_with_prefix(secret),
                verified: Mutex::new(HashMap::new()),
                remembered: ArcSwap::from_pointee(HashMap::new()),
                failed: Mutex::new(Failures::new(failures::CAPACITY, failures::KEEP)),
            }),
            verifiers: Arc::new(Verifiers::new(Limits::for_cores(cores))),
        })
    }

    /// The file the users come from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many users the file in force lists.
    pub fn user_count(&self) -> usize {
        self.table.users.load().hashes.len()
    }

    /// Reads the file again and puts it in force, keeping what was verified for every user whose entry did
    /// not change; on an error the users in force stay.
    pub fn reload(&self) -> Result<usize, AuthFileError> {
        let users = read_users(&self.path)?;
        let count = users.hashes.len();
        self.table.replace(users);
        Ok(count)
    }

    /// What to do with a request: let it through, refuse it, or check its password with bcrypt.
    fn check<B>(&self, request: &Request<B>) -> Check {
        // Routed by the stack; a request without a route (outside the stack) needs credentials.
        if Route::on(request).is_some_and(|route| !route.needs_credentials()) {
            return Check::Open;
        }
        let path = request.uri().path();
        let basic = basic(request);
        // Credentials that verified before: let in by their digest alone (the path of every request of a
        // build fleet but its first).
        let digest = basic.map(|encoded| self.table.digest(encoded));
        if let Some(identity) = digest.and_then(|digest| self.table.remembered(&digest)) {
            counters().remembered.inc();
            return Check::Known(identity);
        }
        let (Some(digest), Some((user, password))) = (digest, basic.and_then(decode)) else {
            tracing::info!(
                request_id = request_id(request).as_str(),
                path = super::clipped(path, 128),
                "authentication required: the request has no Basic credentials"
            );
            return Check::Refuse;
        };
        let users = self.table.users.load();
        let entry = users.hashes.get(&user).cloned();
        if self.table.failed(&digest, entry.as_ref()) {
            metrics().auth_check("wrong_remembered");
            log_failure(&user, entry.is_some(), &request_id(request));
            return Check::Refuse;
        }
        // An unknown user is checked against some real entry all the same, so the answer takes as long as
        // for a wrong password and does not tell which user names exist.
        let against = entry
            .clone()
            .or_else(|| users.hashes.values().next().cloned());
        let client = client_address(request);
        Check::Verify(Pending {
            user,
            password,
            digest,
            entry,
            against,
            client,
            request_id: request_id(request),
        })
    }
}

impl Table {
    /// The keyed digest of a Basic header's credentials, as the client encoded them (base64 with padding
    /// has one encoding per user and password).
    fn digest(&self, encoded: &str) -> Key {
        self.keyed
            .clone()
            .chain_update(encoded.as_bytes())
            .finalize()
            .into()
    }

    /// Whom the credentials of `digest` let in, if they verified against their user's entry in force.
    fn remembered(&self, digest: &Key) -> Option<Identity> {
        self.remembered.load().get(digest).cloned()
    }

    /// Puts what `verified` holds in force for the let-in path; under `verified`'s lock.
    fn publish(&self, verified: &HashMap<String, Verified>) {
        let by_digest = verified
            .values()
            .map(|known| (known.digest, known.identity.clone()))
            .collect();
        self.remembered.store(Arc::new(by_digest));
    }

    /// Whether `digest` failed against `entry` (none: an unknown user) a short while ago.
    fn failed(&self, digest: &Key, entry: Option<&Arc<str>>) -> bool {
        let mut failed = self.failed.lock().expect("never poisoned");
        failed.contains(digest, entry, Instant::now())
    }

    /// Remembers a check's outcome, if the user's entry is still the one it was checked against.
    fn record(&self, user: &str, entry: Option<Arc<str>>, digest: Key, verified: bool) {
        // Under the lock that `replace` prunes under, so that nothing checked against an entry a reload
        // dropped is kept.
        let mut remembered = self.verified.lock().expect("never poisoned");
        let current = self.users.load().hashes.get(user).cloned();
        if current.as_deref() != entry.as_deref() {
            return;
        }
        match entry {
            Some(entry) if verified => {
                let identity = Identity::password(user);
                remembered.insert(
                    user.to_string(),
                    Verified {
                        entry,
                        digest,
                        identity,
                    },
                );
                self.publish(&remembered);
            }
            _ => {
                drop(remembered);
                let mut failed = self.failed.lock().expect("never poisoned");
                failed.insert(digest, entry, Instant::now());
            }
        }
    }

    /// Puts `users` in force; what was verified stays for the users whose entry is unchanged.
    fn replace(&self, users: Users) {
        let mut remembered = self.verified.lock().expect("never poisoned");
        remembered.retain(|user, known| {
            users
                .hashes
                .get(user)
                .is_some_and(|entry| **entry == *known.entry)
        });
        self.publish(&remembered);
        self.users.store(Arc::new(users));
    }
}

/// A password to check with bcrypt.
struct Pending {
    user: String,
    password: String,
    digest: Key,
    /// The user's entry; none for a user the file does not list.
    entry: Option<Arc<str>>,
    /// The entry bcrypt checks against: the user's, or for an unknown user some other (none: no users).
    against: Option<Arc<str>>,
    client: IpAddr,
    request_id: String,
}

enum Check {
    /// No credentials needed (a health probe).
    Open,
    /// Credentials that verified before.
    Known(Identity),
    Refuse,
    /// A bearer token refused, and why.
    RefuseBearer(Refusal),
    /// A JWT to verify against the OIDC issuers.
    Jwt(Arc<Oidc>, String),
    Verify(Pending),
}

impl Pending {
    /// Checks the password with bcrypt, queued with the other checks; logs a failure with the user name,
    /// never the password.
    async fn verify(self, auth: &Auth) -> Verdict {
        let Pending {
            user,
            password,
            digest,
            entry,
            against,
            client,
            request_id,
        } = self;
        let Some(against) = against else {
            tracing::warn!(
                user = super::clipped(&user, 128),
                request_id = request_id.as_str(),
                "authentication failed: the authentication file lists no users"
            );
            return Verdict::Wrong;
        };
        let known = entry.is_some();
        let turn = known.then(|| Arc::from(user.as_str()));
        let table = auth.table.clone();
        let job_user = user.clone();
        // The job goes with the check: a client that leaves does not stop a check that has started.
        let job: Job = Box::new(move || {
            // A check of the same password that finished after this request looked (it was not yet
            // remembered then) and before this one's turn: no second bcrypt run.
            if entry.is_some() && table.remembered(&digest).is_some() {
                return Checked::Remembered;
            }
            let verified = bcrypt::verify(password, &against).unwrap_or(false) && known;
            table.record(&job_user, entry, digest, verified);
            if verified {
                Checked::Verified
            } else {
                Checked::Wrong
            }
        });
        let verdict = auth.verifiers.check(digest, turn, client, job).await;
        match verdict {
            Verdict::Verified => {}
            Verdict::Wrong => log_failure(&user, known, &request_id),
            Verdict::Busy(busy) => {
                metrics().auth_check("busy");
                tracing::warn!(
                    user = super::clipped(&user, 128),
                    %client,
                    request_id = request_id.as_str(),
                    reason = busy.reason(),
                    "authentication deferred: 503"
                );
            }
        }
        verdict
    }
}

/// Logs a failed check with the user name, never the password.
fn log_failure(user: &str, known: bool, request_id: &str) {
    if known {
        tracing::warn!(
            user = super::clipped(user, 128),
            request_id,
            "authentication failed: wrong password"
        );
    } else {
        tracing::warn!(
            user = super::clipped(user, 128),
            request_id,
            "authentication failed: unknown user"
        );
    }
}

/// The encoded credentials of a `Basic` Authorization header.
fn basic<B>(request: &Request<B>) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then(|| encoded.trim())
}

/// The user and password of a Basic header's encoded credentials.
fn decode(encoded: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let mut user = String::from_utf8(decoded).ok()?;
    let colon = user.find(':')?;
    let password = user[colon + 1..].to_string();
    user.truncate(colon);
    Some((user, password))
}

/// The counters of the let-in path, looked up once rather than by label on every request.
struct Counters {
    remembered: Counter,
    token: Counter,
    jwt_remembered: Counter,
}

fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<Counters> = OnceLock::new();
    COUNTERS.get_or_init(|| Counters {
        remembered: metrics().auth_counter("remembered"),
        token: metrics().auth_counter("token"),
        jwt_remembered: metrics().auth_counter("jwt_remembered"),
    })
}

fn request_id<B>(request: &Request<B>) -> String {
    request
        .headers()
        .get(&super::request_id::X_REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The 401 for a client that came over HTTPS.
const UNAUTHORIZED_HTTPS: &str = "unauthorized: this Ferry needs a user name and password (HTTP Basic); for the go command, put them in .netrc or GOAUTH (or in the GOPROXY URL, https://USER:PASSWORD@HOST)";
/// The 401 for a client that came over plain HTTP, where the go command sends no credentials.
const UNAUTHORIZED_HTTP: &str = "unauthorized: this Ferry needs a user name and password (HTTP Basic), and the go command sends them over HTTPS only: over this plain http:// address only clients that send them in the clear get in (curl -u USER:PASSWORD); for the go command, reach Ferry over https:// (its tls_cert and tls_key, or a proxy that terminates TLS), with the credentials in .netrc or GOAUTH";
/// The 401 over HTTPS where bearer tokens are taken (passwords too or not).
const UNAUTHORIZED_BEARER_HTTPS: &str = "unauthorized: this Ferry needs a bearer token (Authorization: Bearer TOKEN); for the go command, a GOAUTH command that prints that header";
/// The 401 over plain HTTP where bearer tokens are taken.
const UNAUTHORIZED_BEARER_HTTP: &str = "unauthorized: this Ferry needs a bearer token (Authorization: Bearer TOKEN), and the go command sends GOAUTH headers over HTTPS only: reach Ferry over https:// (its tls_cert and tls_key, or a proxy that terminates TLS)";

/// Whether the request came over HTTPS (its [`Client`]; a request without one, outside the stack, did not).
fn over_https<B>(request: &Request<B>) -> bool {
    request
        .extensions()
        .get::<Client>()
        .is_some_and(|client| client.https)
}

/// The 401 answer: the challenges of what this Ferry takes and a short reason; for a password, nothing
/// about which part was wrong; for a bearer token, the class of the refusal (never the token). What the
/// client can do over the scheme it used.
fn unauthorized<B>(request: &Request<B>, gate: &Gate, refusal: Option<Refusal>) -> Response<Body> {
    let https = over_https(request);
    let reason = match (
        refusal,
        gate.passwords.is_some(),
        gate.takes_bearer(),
        https,
    ) {
        (Some(refusal), ..) => format!("unauthorized: {}", refusal.reason()),
        (None, true, false, true) => UNAUTHORIZED_HTTPS.to_string(),
        (None, true, false, false) => UNAUTHORIZED_HTTP.to_string(),
        (None, basic, _, true) => also_basic(UNAUTHORIZED_BEARER_HTTPS, basic),
        (None, basic, _, false) => also_basic(UNAUTHORIZED_BEARER_HTTP, basic),
    };
    let method = request.method();
    let answer = Answer::text(StatusCode::UNAUTHORIZED, reason);
    let mut response = answer::into_response(answer, method);
    let headers = response.headers_mut();
    if gate.passwords.is_some() {
        headers.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        );
    }
    if gate.takes_bearer() {
        let challenge = if refusal.is_some() {
            "Bearer realm=\"ferry\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"ferry\""
        };
        headers.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// A bearer 401's words, saying that a password (HTTP Basic) works too where it does.
fn also_basic(reason: &str, basic: bool) -> String {
    if basic {
        format!("{reason}; or a user name and password (HTTP Basic)")
    } else {
        reason.to_string()
    }
}

/// Verifies a JWT, counting and logging the outcome (the refusal's class, never the token).
async fn verify_jwt(oidc: &Oidc, token: &str, request_id: &str) -> Result<Identity, oidc::Refusal> {
    match oidc.verify(token).await {
        Ok((verified, remembered)) => {
            metrics().auth_check(if remembered { "jwt_remembered" } else { "jwt" });
            Ok(Identity::oidc(verified))
        }
        Err(why) => {
            metrics().auth_check(why.label());
            tracing::warn!(
                request_id,
                reason = why.reason(),
                "authentication failed: JWT refused"
            );
            Err(why)
        }
    }
}

/// What a 503 for an issuer whose keys cannot be had tells the client to wait, in seconds: the keys are
/// fetched again every 30 s.
const RETRY_AFTER_ISSUER: u64 = 30;

/// The 503 for a JWT whose issuer's keys cannot be fetched: not the client's fault.
fn issuer_unavailable(method: &http::Method) -> Response<Body> {
    let answer = Answer::busy(
        format!("unavailable: {}", oidc::Refusal::Unavailable.reason()),
        RETRY_AFTER_ISSUER,
    );
    answer::into_response(answer, method)
}

/// The 503 for a check that was not run: a cap or the deadline, and when to try again.
fn busy(method: &http::Method, busy: Busy) -> Response<Body> {
    let answer = Answer::busy(
        format!("busy: {}; try again in a second", busy.reason()),
        RETRY_AFTER_BUSY,
    );
    answer::into_response(answer, method)
}

/// Reads and checks every entry of an htpasswd file.
fn read_users(path: &Path) -> Result<Users, AuthFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hashes = HashMap::new();
    let mut first_line = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let located = |column: usize, message: String| AuthFileError::Entry {
            path: path.to_path_buf(),
            line: number,
            column,
            message,
        };
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(located(
                1,
                format!(
                    "this line is not USER:HASH; add users with `htpasswd -B {} USER`",
                    path.display()
                ),
            ));
        };
        if user.is_empty() {
            return Err(located(
                1,
                "the entry has no user name before `:`".to_string(),
            ));
        }
        let column = user.chars().count() + 2;
        if let Err(kind) = check_bcrypt(hash) {
            return Err(located(
                column,
                format!(
                    "user {user:?} has {kind}; Ferry accepts only bcrypt entries: write it again with `htpasswd -B {} {user}`",
                    path.display()
                ),
            ));
        }
        if let Some(first) = first_line.insert(user.to_string(), number) {
            return Err(located(
                1,
                format!("user {user:?} is listed again (first on line {first}); keep one entry"),
            ));
        }
        hashes.insert(user.to_string(), Arc::from(hash));
    }
    Ok(Users { hashes })
}

/// Whether `hash` is a bcrypt hash as `htpasswd -B` writes it (`$2y$`, or `$2b$`/`$2a$` from other tools):
/// otherwise, what kind of hash it looks like (never the hash itself).
fn check_bcrypt(hash: &str) -> Result<(), &'static str> {
    for prefix in ["$2y$", "$2b$", "$2a$"] {
        if let Some(rest) = hash.strip_prefix(prefix) {
            let well_formed = rest.len() == 56
                && rest.as_bytes()[2] == b'$'
                && rest[..2]
                    .parse::<u32>()
                    .is_ok_and(|cost| (4..=31).contains(&cost))
                && rest[3..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
            return if well_formed {
                Ok(())
            } else {
                Err("a damaged bcrypt hash (not $2y$CC$ and 53 characters)")
            };
        }
    }
    Err(if hash.starts_with("$apr1$") {
        "an MD5 ($apr1$) hash"
    } else if hash.starts_with("{SHA}") {
        "a SHA-1 ({SHA}) hash"
    } else if hash.starts_with("$1$") || hash.starts_with("$5$") || hash.starts_with("$6$") {
        "a crypt(3) MD5 or SHA-2 hash"
    } else if hash.starts_with('$') {
        "a hash of an unknown kind"
    } else if hash.len() == 13 {
        "a DES crypt hash (or a plain-text password)"
    } else {
        "a plain-text password or a hash of an unknown kind"
    })
}

/// The layer: authentication in front of everything inside it, when an `auth_file` or a `token_file` is
/// configured.
#[derive(Debug, Clone)]
pub struct AuthLayer(pub Option<Arc<Gate>>);

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            auth: self.0.clone(),
        }
    }
}

/// The service an [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Option<Arc<Gate>>,
}

impl<S, B> Service<Request<B>> for Authenticated<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let Some(gate) = self.auth.clone() else {
            return Box::pin(self.inner.call(request));
        };
        match gate.check(&request) {
            Check::Open => {
                let readyz = Route::on(&request)
                    .is_some_and(|route| matches!(route.endpoint, Ok(Endpoint::Readyz)));
                let method = request.method().clone();
                let answered = self.inner.call(request);
                match gate.oidc.clone().filter(|_| readyz) {
                    Some(oidc) => {
                        Box::pin(async move { Ok(with_issuers(answered.await?, &oidc, &method)) })
                    }
                    None => Box::pin(answered),
                }
            }
            Check::Known(identity) => {
                let shown = admitted(&mut request, &identity);
                let answered = self.inner.call(request);
                match shown {
                    true => Box::pin(async move { Ok(with_identity(answered.await?, identity)) }),
                    false => Box::pin(answered),
                }
            }
            Check::Refuse => {
                let response = unauthorized(&request, &gate, None);
                Box::pin(async move { Ok(response) })
            }
            Check::RefuseBearer(refusal) => {
                let response = unauthorized(&request, &gate, Some(refusal));
                Box::pin(async move { Ok(response) })
            }
            Check::Jwt(oidc, token) => {
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let id = request_id(&request);
                Box::pin(async move {
                    match verify_jwt(&oidc, &token, &id).await {
                        Ok(identity) => {
                            let shown = admitted(&mut request, &identity);
                            Ok(shown_with(inner.call(request).await?, identity, shown))
                        }
                        Err(oidc::Refusal::Unavailable) => Ok(issuer_unavailable(request.method())),
                        Err(why) => Ok(unauthorized(&request, &gate, Some(Refusal::Jwt(why)))),
                    }
                })
            }
            Check::Verify(pending) => {
                let auth = gate.passwords.clone().expect("only passwords are verified");
                // The service that was polled ready goes into the future; a clone stays for the next call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let user: Arc<str> = Arc::from(pending.user.as_str());
                Box::pin(async move {
                    match pending.verify(&auth).await {
                        Verdict::Verified => {
                            let identity = Identity::password(user);
                            let shown = admitted(&mut request, &identity);
                            Ok(shown_with(inner.call(request).await?, identity, shown))
                        }
                        Verdict::Wrong => Ok(unauthorized(&request, &gate, None)),
                        Verdict::Busy(why) => Ok(busy(request.method(), why)),
                    }
                })
            }
        }
    }
}

/// A `/readyz` answer that says which OIDC issuers cannot be used. Ferry stays ready (passwords, tokens and
/// the other issuers work, and a load balancer that took it out would refuse everyone), but says so.
fn with_issuers(response: Response<Body>, oidc: &Oidc, method: &http::Method) -> Response<Body> {
    let unavailable = oidc.unavailable();
    if unavailable.is_empty() || response.status() != StatusCode::OK {
        return response;
    }
    let text = format!("ready; {}", unavailable.join("; "));
    answer::into_response(Answer::text(StatusCode::OK, text), method)
}

/// Asks authentication to put the identity on the response too, for a layer outside it (the access log,
/// when it is on). Without it the response carries none: three allocations a request saved (a response's
/// extensions start empty), in a profile of remembered passwords under `benches/auth.sh`.
#[derive(Debug, Clone, Copy)]
pub struct ShowIdentity;

/// Puts the identity on the request (whom its fills count against, its access, its audit lines); whether
/// the response should carry it too.
fn admitted<B>(request: &mut Request<B>, identity: &Identity) -> bool {
    let shown = request.extensions().get::<ShowIdentity>().is_some();
    request.extensions_mut().insert(identity.clone());
    shown
}

/// The client as decided (a trusted proxy's forwarded address), else the connection's peer.
fn client_address<B>(request: &Request<B>) -> IpAddr {
    match request.extensions().get::<Client>() {
        Some(client) => client.address,
        None => request
            .extensions()
            .get::<ClientAddress>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.0),
    }
}

/// The response, carrying who it answered for the layers outside authentication.
fn with_identity(mut response: Response<Body>, identity: Identity) -> Response<Body> {
    response.extensions_mut().insert(identity);
    response
}

/// The response, carrying who it answered for if a layer outside asked ([`ShowIdentity`]).
fn shown_with(response: Response<Body>, identity: Identity, shown: bool) -> Response<Body> {
    match shown {
        true => with_identity(response, identity),
        false => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn each_kind_of_hash_that_is_not_bcrypt_is_refused_with_its_line_and_the_fix() {
        let bcrypt = "$2y$05$abcdefghijklmnopqrstuu5Tw3EOYbBa5qMqT.hYRmCEY5lKxW8lW";
        for (entry, kind) in [
            ("bob:$apr1$Xy0Q1zV8$d1ghBPCqHQaS0Y0lYq3Yk/", "MD5 ($apr1$)"),
            ("bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1 ({SHA})"),
            ("bob:rl7MvAyNQX1Mc", "DES crypt"),
            ("bob:hunter2", "plain-text password"),
            ("bob:$2y$05$short", "damaged bcrypt"),
        ] {
            let (_dir, path) = file(&format!("# fleet\nalice:{bcrypt}\n{entry}\n"));
            let message = read_users(&path).err().unwrap().to_string();
            let hash = entry.split_once(':').unwrap().1;
            assert!(
                message.starts_with(&format!("{}:3:5: ", path.display())),
                "{message}"
            );
            assert!(message.contains(kind), "{message}");
            assert!(message.contains("htpasswd -B"), "{message}");
            assert!(!message.contains(hash), "the hash is echoed: {message}");
        }
        let (_dir, path) = file(&format!("alice:{bcrypt}\r\n\r\n"));
        assert_eq!(read_users(&path).unwrap().hashes.len(), 1);
    }

    fn request(credentials: &str) -> Request<()> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        Request::builder()
            .uri("/example.com/m/@v/v1.0.0.mod")
            .header(header::AUTHORIZATION, format!("Basic {encoded}"))
            .body(())
            .unwrap()
    }

    /// Checks `credentials` as the layer does: `remembered` (let through without bcrypt), `refused`
    /// (without bcrypt), or bcrypt's verdict.
    async fn admitted(auth: &Auth, credentials: &str) -> &'static str {
        match auth.check(&request(credentials)) {
            Check::Open => "open",
            Check::Known(_) => "remembered",
            Check::Refuse | Check::RefuseBearer(_) | Check::Jwt(..) => "refused",
            Check::Verify(pending) => match pending.verify(auth).await {
                Verdict::Verified => "verified",
                Verdict::Wrong => "wrong",
                Verdict::Busy(_) => "busy",
            },
        }
    }

    fn bcrypt_entry(password: &str, version: bcrypt::Version) -> String {
        bcrypt::hash_with_result(password, 4)
            .unwrap()
            .format_for_version(version)
    }

    #[tokio::test]
    async fn checks_are_remembered_across_a_reload_while_the_entry_is_unchanged() {
        let alice = bcrypt_entry("right", bcrypt::Version::TwoY);
        let carol = bcrypt_entry("carol's", bcrypt::Version::TwoY);
        let (_dir, path) = file(&format!("alice:{alice}\ncarol:{carol}\n"));
        let auth = Auth::load(&path).unwrap();
        assert_eq!(admitted(&auth, "alice:right").await, "verified");
        assert_eq!(admitted(&auth, "alice:right").await, "remembered");
        assert_eq!(admitted(&auth, "carol:carol's").await, "verified");
        // A wrong password, or an unknown user, is checked once, then refused without bcrypt.
        assert_eq!(admitted(&auth, "alice:wrong").await, "wrong");
        assert_eq!(admitted(&auth, "alice:wrong").await, "refused");
        assert_eq!(admitted(&auth, "bob:right").await, "wrong");
        assert_eq!(admitted(&auth, "bob:right").await, "refused");
        // A failure does not evict the success.
        assert_eq!(admitted(&auth, "alice:right").await, "remembered");
        assert_eq!(admitted(&auth, "alice").await, "refused");

        // The same file again: everything stays.
        assert_eq!(auth.reload().unwrap(), 2);
        assert_eq!(admitted(&auth, "alice:right").await, "remembered");
        assert_eq!(admitted(&auth, "alice:wrong").await, "refused");

        // alice's entry changes, bob is added, carol's stays: only carol's checks stay.
        let changed = bcrypt_entry("wrong", bcrypt::Version::TwoB);
        let bob = bcrypt_entry("right", bcrypt::Version::TwoY);
        std::fs::write(
            &path,
            format!("alice:{changed}\nbob:{bob}\ncarol:{carol}\n"),
        )
        .unwrap();
        assert_eq!(auth.reload().unwrap(), 3);
        assert_eq!(admitted(&auth, "carol:carol's").await, "remembered");
        assert_eq!(admitted(&auth, "alice:right").await, "wrong");
        assert_eq!(admitted(&auth, "alice:wrong").await, "verified");
        assert_eq!(admitted(&auth, "bob:right").await, "verified");
        // Removed: nothing remembered lets carol in.
        std::fs::write(&path, format!("alice:{changed}\n")).unwrap();
        assert_eq!(auth.reload().unwrap(), 1);
        assert_eq!(admitted(&auth, "carol:carol's").await, "wrong");
        assert_eq!(admitted(&auth, "alice:wrong").await, "remembered");
    }
}
