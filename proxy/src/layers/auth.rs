//! Client authentication: HTTP Basic credentials checked against an htpasswd file of bcrypt entries
//! (`auth_file`). Every request needs them except the health probes (`/healthz`, `/readyz`), which load
//! balancers call without credentials.
//!
//! bcrypt is slow on purpose (each cost step doubles it: milliseconds at `htpasswd -B`'s default cost 5,
//! tens of milliseconds at the cost 10 to 12 that `-C` sets for stronger entries), and a build fleet sends
//! thousands of requests with the same credentials, so a password that verified is
//! remembered: per user, a keyed SHA-256 digest of the password, compared in constant time. Only successes
//! are remembered; a wrong password is checked by bcrypt every time, at most [`Auth::verifiers`] at once so
//! that a flood of bad guesses cannot take every thread. Reloading the file (SIGHUP) starts with nothing
//! remembered, so a changed or removed entry takes effect at once.
//!
//! This is a `tower` layer rather than a [`Hook`](super::hook::Hook): the bcrypt check runs on the blocking
//! pool, and a hook's `before` cannot wait.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use base64::Engine;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use super::ResponseFuture;
use crate::answer::{self, Answer};
use crate::body::Body;

/// The challenge every 401 carries; the go command and curl answer it with Basic credentials.
const CHALLENGE: &str = "Basic realm=\"ferry\"";

/// The users of an htpasswd file, reloadable.
pub struct Auth {
    path: PathBuf,
    users: ArcSwap<Users>,
    /// bcrypt checks running at once (one per core): the rest wait, so cache hits are never starved.
    verifying: Arc<tokio::sync::Semaphore>,
    /// Keys the remembered digests, so that memory never holds a plain, quickly guessable SHA-256 of a
    /// password.
    secret: [u8; 32],
}

/// One reading of the file, with the passwords that verified against it.
struct Users {
    hashes: HashMap<String, String>,
    /// Per user, the keyed digest of the last password that verified: at most one entry per line of the
    /// file, so the memory is bounded by the file.
    verified: Mutex<HashMap<String, [u8; 32]>>,
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
            .field("users", &self.users.load().hashes.len())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Reads the htpasswd file at `path`; any entry that is not bcrypt is refused with its place.
    pub fn load(path: &Path) -> Result<Auth, AuthFileError> {
        let users = read_users(path)?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system provides random bytes");
        let verifiers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Auth {
            path: path.to_path_buf(),
            users: ArcSwap::from_pointee(users),
            verifying: Arc::new(tokio::sync::Semaphore::new(verifiers)),
            secret,
        })
    }

    /// The file the users come from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many users the file in force lists.
    pub fn user_count(&self) -> usize {
        self.users.load().hashes.len()
    }

    /// Reads the file again and puts it in force; on an error the users in force stay.
    pub fn reload(&self) -> Result<usize, AuthFileError> {
        let users = read_users(&self.path)?;
        let count = users.hashes.len();
        self.users.store(Arc::new(users));
        Ok(count)
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update(user.as_bytes());
        hasher.update([0]);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    /// What to do with a request: let it through, refuse it, or check its password with bcrypt.
    fn check<B>(&self, request: &Request<B>) -> Check {
        let path = request.uri().path();
        if path == "/healthz" || path == "/readyz" {
            return Check::Pass;
        }
        let Some((user, password)) = credentials(request) else {
            tracing::info!(
                request_id = request_id(request).as_str(),
                path = super::clipped(path, 128),
                "authentication required: the request has no Basic credentials"
            );
            return Check::Refuse;
        };
        let users = self.users.load_full();
        let digest = self.digest(&user, &password);
        let remembered = users
            .verified
            .lock()
            .expect("never poisoned")
            .get(&user)
            .copied();
        if remembered.is_some_and(|known| bool::from(known.ct_eq(&digest))) {
            return Check::Pass;
        }
        Check::Verify(Pending {
            user,
            password,
            digest,
            users,
            request_id: request_id(request),
        })
    }
}

/// A password to check with bcrypt.
struct Pending {
    user: String,
    password: String,
    digest: [u8; 32],
    users: Arc<Users>,
    request_id: String,
}

enum Check {
    Pass,
    Refuse,
    Verify(Pending),
}

impl Pending {
    /// Checks the password on the blocking pool; remembers it when it verifies. Logs a failure with the
    /// user name, never the password.
    async fn verify(self, auth: &Auth) -> bool {
        let Pending {
            user,
            password,
            digest,
            users,
            request_id,
        } = self;
        let known = users.hashes.get(&user).cloned();
        // An unknown user is checked against some real entry all the same, so the answer takes as long as
        // for a wrong password and does not tell which user names exist.
        let Some(hash) = known
            .clone()
            .or_else(|| users.hashes.values().next().cloned())
        else {
            tracing::warn!(
                user = super::clipped(&user, 128),
                request_id = request_id.as_str(),
                "authentication failed: the authentication file lists no users"
            );
            return false;
        };
        let Ok(permit) = auth.verifying.clone().acquire_owned().await else {
            return false;
        };
        // The permit goes with the check: a client that leaves does not stop it, and must not free its slot
        // before it ends (else clients that hang up at once would run any number of checks).
        let checked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            bcrypt::verify(password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        match (known, checked) {
            (Some(_), true) => {
                users
                    .verified
                    .lock()
                    .expect("never poisoned")
                    .insert(user, digest);
                true
            }
            (Some(_), false) => {
                tracing::warn!(
                    user = super::clipped(&user, 128),
                    request_id = request_id.as_str(),
                    "authentication failed: wrong password"
                );
                false
            }
            (None, _) => {
                tracing::warn!(
                    user = super::clipped(&user, 128),
                    request_id = request_id.as_str(),
                    "authentication failed: unknown user"
                );
                false
            }
        }
    }
}

/// The user and password of a `Basic` Authorization header.
fn credentials<B>(request: &Request<B>) -> Option<(String, String)> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn request_id<B>(request: &Request<B>) -> String {
    request
        .headers()
        .get(&super::request_id::X_REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The 401 answer: the challenge and a short reason, nothing about which part was wrong.
fn unauthorized(method: &http::Method) -> Response<Body> {
    let answer = Answer::text(
        StatusCode::UNAUTHORIZED,
        "unauthorized: this Ferry needs a user name and password (HTTP Basic); for the go command, put them in .netrc or GOAUTH",
    );
    let mut response = answer::into_response(answer, method);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    response
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
        hashes.insert(user.to_string(), hash.to_string());
    }
    Ok(Users {
        hashes,
        verified: Mutex::new(HashMap::new()),
    })
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

/// The layer: authentication in front of everything inside it, when an `auth_file` is configured.
#[derive(Debug, Clone)]
pub struct AuthLayer(pub Option<Arc<Auth>>);

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
    auth: Option<Arc<Auth>>,
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

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(auth) = self.auth.clone() else {
            return Box::pin(self.inner.call(request));
        };
        match auth.check(&request) {
            Check::Pass => Box::pin(self.inner.call(request)),
            Check::Refuse => {
                let response = unauthorized(request.method());
                Box::pin(async move { Ok(response) })
            }
            Check::Verify(pending) => {
                // The service that was polled ready goes into the future; a clone stays for the next call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    if pending.verify(&auth).await {
                        inner.call(request).await
                    } else {
                        Ok(unauthorized(request.method()))
                    }
                })
            }
        }
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

    /// Checks `credentials` as the layer does: remembered (Pass), or bcrypt, whose verdict is returned.
    async fn admitted(auth: &Auth, credentials: &str) -> (bool, bool) {
        match auth.check(&request(credentials)) {
            Check::Pass => (true, true),
            Check::Refuse => (false, false),
            Check::Verify(pending) => (false, pending.verify(auth).await),
        }
    }

    #[tokio::test]
    async fn a_verified_password_is_remembered_until_a_reload_and_a_wrong_one_never_is() {
        let hash = bcrypt::hash_with_result("right", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let (_dir, path) = file(&format!("alice:{hash}\n"));
        let auth = Auth::load(&path).unwrap();
        // (remembered, admitted)
        assert_eq!(admitted(&auth, "alice:right").await, (false, true));
        assert_eq!(admitted(&auth, "alice:right").await, (true, true));
        assert_eq!(admitted(&auth, "alice:wrong").await, (false, false));
        assert_eq!(admitted(&auth, "alice:wrong").await, (false, false));
        assert_eq!(admitted(&auth, "bob:right").await, (false, false));
        assert_eq!(admitted(&auth, "alice:right").await, (true, true));
        // A reload forgets: a changed password takes effect at once.
        let changed = bcrypt::hash_with_result("new", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        std::fs::write(&path, format!("alice:{changed}\n")).unwrap();
        assert_eq!(auth.reload().unwrap(), 1);
        assert_eq!(admitted(&auth, "alice:right").await, (false, false));
        assert_eq!(admitted(&auth, "alice:new").await, (false, true));
        assert_eq!(admitted(&auth, "alice").await, (false, false));
    }
}
