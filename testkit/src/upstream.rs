//! The fixture GOPROXY upstream: serves fixture modules over loopback HTTP, with the faults tests need
//! (hanging, failing with any status, odd reason phrases, 410 misses, huge version lists) as options.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::fixture::{FixtureModule, escape};

/// How the fixture upstream answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Serve the fixtures (404 with a `not found:` body for anything else).
    Serve,
    /// Answer every request with 500.
    Fail500,
    /// Answer every request with this status (and the reason phrase set, if any).
    Fail(u16),
    /// Never answer (the connection stays open until the client gives up).
    Hang,
    /// Serve, but send each body `chunk` bytes at a time, one chunk every `every`: an upstream that is
    /// slow but never silent.
    Trickle { chunk: usize, every: Duration },
}

type Body = BoxBody<Bytes, Infallible>;

#[derive(Default)]
struct State {
    /// Response bodies by request path (without the leading `/`), in the GOPROXY layout.
    files: BTreeMap<String, Bytes>,
    /// Versions per escaped module path, in the order added.
    versions: BTreeMap<String, Vec<String>>,
    requests: Vec<String>,
    /// Each request's path (as in `requests`) and headers, in order.
    headers: Vec<(String, hyper::HeaderMap)>,
    behaviour: Option<Behaviour>,
    /// Status of the answer to anything not served (404 unless set).
    miss_status: Option<u16>,
    /// Reason phrase of every answer other than 200, in place of the standard one.
    reason: Option<hyper::ext::ReasonPhrase>,
    /// Requests whose path contains this are held until the gate opens.
    hold: Option<String>,
    /// Held requests not yet answered.
    held: usize,
    /// Checksum databases relayed under `sumdb/NAME/`, by name: their URLs.
    sumdb_relays: BTreeMap<String, String>,
    /// The `Authorization` header every request must carry (else 401), when set.
    required_authorization: Option<String>,
    /// The `Authorization` header of each request, in order (`None` when it had none).
    authorizations: Vec<Option<String>>,
    /// Requests whose path contains the first string are answered `302 Location: SECOND/PATH`.
    redirect: Option<(String, String)>,
    /// Bodies of requests whose path contains this stop after the first bytes until the gate opens.
    pause: Option<Pause>,
}

/// See [`Upstream::pause_body`].
#[derive(Clone)]
struct Pause {
    needle: String,
    after: usize,
    with_length: bool,
}

/// An in-process GOPROXY server on `127.0.0.1:0` serving fixture modules; stopped when dropped.
pub struct Upstream {
    url: String,
    state: Arc<Mutex<State>>,
    /// Opened (true) releases every held request; see [`Upstream::hold`].
    gate: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start(modules: Vec<FixtureModule>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("upstream address")
        );
        let state = Arc::new(Mutex::new(State::default()));
        let (gate, _) = tokio::sync::watch::channel(false);
        let upstream_state = state.clone();
        let upstream_gate = gate.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, gate) = (upstream_state.clone(), upstream_gate.subscribe());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (state, gate) = (state.clone(), gate.clone());
                        async move { Ok::<_, Infallible>(answer(&state, gate, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let upstream = Upstream {
            url,
            state,
            gate,
            server,
        };
        for module in modules {
            upstream.add(module);
        }
        upstream
    }

    /// `http://127.0.0.1:PORT`, to use as `GOPROXY`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Publishes another version.
    pub fn add(&self, module: FixtureModule) {
        let mut state = self.state.lock().unwrap();
        let base = format!("{}/@v/{}", escape(module.path()), escape(module.version()));
        state
            .files
            .insert(format!("{base}.info"), Bytes::from(module.info_json()));
        state
            .files
            .insert(format!("{base}.mod"), Bytes::from(module.go_mod()));
        state
            .files
            .insert(format!("{base}.zip"), Bytes::from(module.zip_bytes()));
        state
            .versions
            .entry(escape(module.path()))
            .or_default()
            .push(module.version().to_string());
    }

    /// Makes `<module>/@v/<query>.info` answer the `.info` of `version` (e.g. `master` -> a pseudo-version).
    pub fn alias(&self, module: &str, query: &str, version: &str) {
        let mut state = self.state.lock().unwrap();
        let target = format!("{}/@v/{}.info", escape(module), escape(version));
        let info = state
            .files
            .get(&target)
            .cloned()
            .unwrap_or_else(|| panic!("alias to unknown {target}"));
        state.files.insert(
            format!("{}/@v/{}.info", escape(module), escape(query)),
            info,
        );
    }

    /// Serves `body` at `path` (without the leading `/`, e.g. `example.com/m/@v/v1.0.0.mod`) instead of
    /// what was published there: an upstream whose files disagree with each other.
    pub fn replace_file(&self, path: &str, body: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .files
            .insert(path.to_string(), Bytes::from(body.to_string()));
    }

    /// [`Upstream::replace_file`] with bytes (a zip patched by hand).
    pub fn replace_file_bytes(&self, path: &str, body: Vec<u8>) {
        let mut state = self.state.lock().unwrap();
        state.files.insert(path.to_string(), Bytes::from(body));
    }

    /// Adds versions to the module's `@v/list` only (no `.info`, `.mod` or `.zip`): a list as long as
    /// a test needs, e.g. a million versions.
    pub fn list_versions(&self, module: &str, versions: impl IntoIterator<Item = String>) {
        let mut state = self.state.lock().unwrap();
        state
            .versions
            .entry(escape(module))
            .or_default()
            .extend(versions);
    }

    /// Relays the checksum database `name` at `url` under `sumdb/NAME/`, as a GOPROXY that proxies it does
    /// (`go help goproxy`): `sumdb/NAME/supported` answers 200, and `sumdb/NAME/PATH` is `URL/PATH`,
    /// status and body. A file set with [`Upstream::replace_file`] at `sumdb/NAME/PATH` is served instead
    /// (a tampering relay).
    pub fn relay_sumdb(&self, name: &str, url: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .sumdb_relays
            .insert(name.to_string(), url.trim_end_matches('/').to_string());
        state
            .files
            .insert(format!("sumdb/{name}/supported"), Bytes::new());
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = Some(behaviour);
    }

    /// Answers what is not served with `status` instead of 404 (e.g. 410, as some proxies do).
    pub fn set_miss_status(&self, status: u16) {
        StatusCode::from_u16(status).expect("a valid status code");
        self.state.lock().unwrap().miss_status = Some(status);
    }

    /// Sends `reason` as the reason phrase of every answer other than 200 (`404 File not found`, or an
    /// empty phrase: `404 `) instead of the standard one.
    pub fn set_reason_phrase(&self, reason: &str) {
        let reason = hyper::ext::ReasonPhrase::try_from(reason.as_bytes())
            .expect("a reason phrase without control characters");
        self.state.lock().unwrap().reason = Some(reason);
    }

    /// Holds every request whose path contains `needle` (e.g. `.zip`, or a module path) unanswered until
    /// [`Upstream::release`]: a fetch that is reliably still running while a test acts on it, or, never
    /// released, an upstream that hangs for some modules only.
    pub fn hold(&self, needle: &str) {
        self.state.lock().unwrap().hold = Some(needle.to_string());
    }

    /// Answers the held requests, and holds none from now on; paused bodies go on, and none pause from now on.
    pub fn release(&self) {
        let mut state = self.state.lock().unwrap();
        state.hold = None;
        state.pause = None;
        self.gate.send_replace(true);
    }

    /// Sends the first `after` bytes of the body of every request whose path contains `needle` (`.zip`) at
    /// once, then the rest only after [`Upstream::release`]: a download reliably half-way while a test
    /// looks at what Ferry's clients got. `with_length`: the body announces its length (`Content-Length`),
    /// else it is sent chunked.
    pub fn pause_body(&self, needle: &str, after: usize, with_length: bool) {
        self.state.lock().unwrap().pause = Some(Pause {
            needle: needle.to_string(),
            after,
            with_length,
        });
    }

    /// Answers 401 to every request without exactly this `Authorization` header (`Bearer TOKEN`, `Basic
    /// …`): a private upstream.
    pub fn require_authorization(&self, value: &str) {
        self.state.lock().unwrap().required_authorization = Some(value.to_string());
    }

    /// Answers each request whose path contains `needle` (`.zip`) with `302 Found` to the same path under
    /// `to` (another server's base URL): a proxy that sends its zips to a blob store.
    pub fn redirect(&self, needle: &str, to: &str) {
        let to = to.trim_end_matches('/').to_string();
        self.state.lock().unwrap().redirect = Some((needle.to_string(), to));
    }

    /// The `Authorization` header of every request so far, in order (`None` for a request without one).
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().authorizations.clone()
    }

    /// Requests held and not yet answered.
    pub fn held(&self) -> usize {
        self.state.lock().unwrap().held
    }

    /// How many requests so far had a path (without the leading `/`) ending in `suffix`.
    pub fn request_count(&self, suffix: &str) -> usize {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .filter(|path| path.ends_with(suffix))
            .count()
    }

    /// Every request path so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The path and the value of header `name` of every request so far that carried it, in order (a
    /// `traceparent` the client sent, its credentials).
    pub fn header_values(&self, name: &str) -> Vec<(String, String)> {
        let state = self.state.lock().unwrap();
        state
            .headers
            .iter()
            .filter_map(|(path, headers)| {
                let value = headers.get(name)?.to_str().ok()?;
                Some((path.clone(), value.to_string()))
            })
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    state: &Mutex<State>,
    mut gate: tokio::sync::watch::Receiver<bool>,
    request: Request<Incoming>,
) -> Response<Body> {
    // The go command percent-encodes the `!` of case-encoded paths (`%21azure`): compare decoded paths.
    let path = percent_decode(request.uri().path().trim_start_matches('/'));
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let refused = {
        let mut state = state.lock().unwrap();
        state.authorizations.push(authorization.clone());
        state
            .required_authorization
            .as_ref()
            .is_some_and(|required| authorization.as_ref() != Some(required))
    };
    if refused {
        state.lock().unwrap().requests.push(path.clone());
        return text(401, "fixture upstream: credentials required\n");
    }
    let redirect = state.lock().unwrap().redirect.clone();
    if let Some((_, to)) = redirect.filter(|(needle, _)| path.contains(needle.as_str())) {
        state.lock().unwrap().requests.push(path.clone());
        let mut response = text(302, "");
        let location = format!("{to}{}", request.uri().path());
        response
            .headers_mut()
            .insert("location", location.parse().expect("a header value"));
        return response;
    }
    let held = {
        let mut state = state.lock().unwrap();
        state.requests.push(path.clone());
        state
            .headers
            .push((path.clone(), request.headers().clone()));
        let held = state
            .hold
            .as_ref()
            .is_some_and(|needle| path.contains(needle.as_str()));
        state.held += usize::from(held);
        held
    };
    if held {
        /// Counts the request as held until it is answered or its client goes away.
        struct Held<'a>(&'a Mutex<State>);
        impl Drop for Held<'_> {
            fn drop(&mut self) {
                self.0.lock().unwrap().held -= 1;
            }
        }
        let _held = Held(state);
        let _ = gate.wait_for(|open| *open).await;
    }
    let (behaviour, body, miss_status, reason, relayed, pause) = {
        let state = state.lock().unwrap();
        let pause = state
            .pause
            .clone()
            .filter(|pause| path.contains(pause.needle.as_str()));
        let body = lookup(&state, &path);
        let relayed = body.is_none().then(|| relayed_url(&state, &path)).flatten();
        (
            state.behaviour.unwrap_or(Behaviour::Serve),
            body,
            state.miss_status.unwrap_or(404),
            state.reason.clone(),
            relayed,
            pause,
        )
    };
    if let (Some(pause), Some(body), Behaviour::Serve) = (pause, &body, behaviour) {
        return Response::new(Paused::new(body.clone(), pause, gate).boxed());
    }
    if let (Some(url), Behaviour::Serve) = (relayed, behaviour) {
        return relay(&url).await;
    }
    let mut response = match behaviour {
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Fail500 => text(500, "fixture upstream failure\n"),
        Behaviour::Fail(status) => text(status, "fixture upstream failure\n"),
        Behaviour::Serve => match body {
            Some(body) => Response::new(Full::new(body).boxed()),
            None => text(miss_status, &format!("not found: {path}\n")),
        },
        Behaviour::Trickle { chunk, every } => match body {
            Some(body) => Response::new(
                Trickle {
                    rest: body,
                    chunk: chunk.max(1),
                    every,
                    pause: None,
                }
                .boxed(),
            ),
            None => text(miss_status, &format!("not found: {path}\n")),
        },
    };
    if let Some(reason) = reason.filter(|_| response.status() != StatusCode::OK) {
        response.extensions_mut().insert(reason);
    }
    response
}

fn lookup(state: &State, path: &str) -> Option<Bytes> {
    if let Some(module) = path.strip_suffix("/@v/list") {
        let versions = state.versions.get(module).map(|v| v.join("\n") + "\n");
        return Some(Bytes::from(versions.unwrap_or_default()));
    }
    if let Some(module) = path.strip_suffix("/@latest") {
        let latest = state.versions.get(module)?.last()?;
        return state
            .files
            .get(&format!("{module}/@v/{}.info", escape(latest)))
            .cloned();
    }
    state.files.get(path).cloned()
}

/// The database URL a `sumdb/NAME/PATH` request of a relayed database goes to.
fn relayed_url(state: &State, path: &str) -> Option<String> {
    let (name, rest) = path.strip_prefix("sumdb/")?.split_once('/')?;
    let base = state.sumdb_relays.get(name)?;
    Some(format!("{base}/{rest}"))
}

/// `url`'s status and body, as a relaying proxy passes them on; 502 when it cannot be reached.
async fn relay(url: &str) -> Response<Body> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return text(502, "bad relay URL\n");
    };
    let response = match client.get(uri).await {
        Ok(response) => response,
        Err(e) => return text(502, &format!("relay failed: {e}\n")),
    };
    let status = response.status();
    match response.into_body().collect().await {
        Ok(body) => {
            let mut answer = Response::new(Full::new(body.to_bytes()).boxed());
            *answer.status_mut() = status;
            answer
        }
        Err(e) => text(502, &format!("relay failed: {e}\n")),
    }
}

fn text(status: u16, body: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status code");
    response
        .headers_mut()
        .insert("content-type", "text/plain; charset=utf-8".parse().unwrap());
    response
}

/// A body sent `chunk` bytes at a time, the first at once and each next one `every` later.
struct Trickle {
    rest: Bytes,
    chunk: usize,
    every: Duration,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        if let Some(pause) = self.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
        }
        let take = self.chunk.min(self.rest.len());
        let data = self.rest.split_to(take);
        let every = self.every;
        self.pause = Some(Box::pin(tokio::time::sleep(every)));
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        // The length is known: the client sees a Content-Length, as from a real proxy.
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// A body sent in two parts: the first bytes at once, the rest once the gate opens.
struct Paused {
    parts: std::collections::VecDeque<Bytes>,
    len: Option<u64>,
    gate: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
}

impl Paused {
    fn new(body: Bytes, pause: Pause, mut gate: tokio::sync::watch::Receiver<bool>) -> Paused {
        let len = pause.with_length.then_some(body.len() as u64);
        let split = pause.after.min(body.len());
        let parts = [body.slice(..split), body.slice(split..)]
            .into_iter()
            .collect();
        let gate = Box::pin(async move {
            let _ = gate.wait_for(|open| *open).await;
        });
        Paused {
            parts,
            len,
            gate: Some(gate),
        }
    }
}

impl hyper::body::Body for Paused {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        // The second part waits for the gate.
        if self.parts.len() == 1
            && let Some(gate) = self.gate.as_mut()
        {
            ready!(gate.as_mut().poll(cx));
            self.gate = None;
        }
        Poll::Ready(self.parts.pop_front().map(|part| Ok(Frame::data(part))))
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

/// `%XX` sequences decoded to their bytes; anything else kept as it is.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go::GoHome;

    /// go's stderr for `go <args>` against `upstream` (go must fail).
    async fn go_failure(upstream: &Upstream, args: &[&str]) -> String {
        let tmp = tempfile::tempdir().unwrap();
        let home = GoHome::new(tmp.path(), &upstream.url());
        let output = home.output_async(tmp.path(), args).await;
        assert!(!output.status.success(), "go {args:?} succeeded");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    #[tokio::test]
    async fn go_sees_the_reason_phrase_and_the_miss_status_set() {
        let upstream = Upstream::start(vec![]).await;
        upstream.set_reason_phrase("File not found");
        let stderr = go_failure(&upstream, &["mod", "download", "example.com/hello@v1.0.0"]).await;
        assert!(stderr.contains(": 404 File not found"), "{stderr}");

        upstream.set_miss_status(410);
        upstream.set_reason_phrase("");
        let stderr = go_failure(&upstream, &["mod", "download", "example.com/hello@v1.0.0"]).await;
        // hyper sends `HTTP/1.1 410 ` and go keeps the space.
        assert!(stderr.contains(".info: 410 \n"), "{stderr}");

        upstream.set_behaviour(Behaviour::Fail(403));
        upstream.set_reason_phrase("Not Found");
        let stderr = go_failure(&upstream, &["mod", "download", "example.com/hello@v1.0.0"]).await;
        assert!(stderr.contains(": 403 Not Found"), "{stderr}");
    }

    #[tokio::test]
    async fn a_trickling_upstream_is_slow_but_complete() {
        let module = FixtureModule::package("example.com/hello", "v1.0.0");
        let upstream = Upstream::start(vec![module.clone()]).await;
        let every = Duration::from_millis(10);
        upstream.set_behaviour(Behaviour::Trickle { chunk: 16, every });
        let tmp = tempfile::tempdir().unwrap();
        let home = GoHome::new(tmp.path(), &upstream.url());
        let started = std::time::Instant::now();
        let downloaded = home
            .run_async(
                tmp.path(),
                &["mod", "download", "-json", "example.com/hello@v1.0.0"],
            )
            .await;
        let downloaded: serde_json::Value = serde_json::from_str(&downloaded).unwrap();
        let zip = std::fs::read(downloaded["Zip"].as_str().unwrap()).unwrap();
        assert_eq!(zip, module.zip_bytes());
        // The zip alone came in this many chunks, each but the first after a pause.
        let pauses = zip.len().div_ceil(16) - 1;
        assert!(
            started.elapsed() >= every * pauses as u32,
            "{:?} for {pauses} pauses",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_listed_only_version_is_in_the_list_and_nowhere_else() {
        let upstream =
            Upstream::start(vec![FixtureModule::package("example.com/hello", "v1.0.0")]).await;
        // go reads the highest version's go.mod for retractions: it must be a served one.
        upstream.list_versions("example.com/hello", (1..=3).map(|n| format!("v0.1.{n}")));
        let tmp = tempfile::tempdir().unwrap();
        let home = GoHome::new(tmp.path(), &upstream.url());
        let listed = home
            .run_async(
                tmp.path(),
                &["list", "-m", "-versions", "example.com/hello"],
            )
            .await;
        assert_eq!(
            listed.trim(),
            "example.com/hello v0.1.1 v0.1.2 v0.1.3 v1.0.0"
        );
        let stderr = go_failure(&upstream, &["mod", "download", "example.com/hello@v0.1.2"]).await;
        assert!(stderr.contains("404 Not Found"), "{stderr}");
    }
}
