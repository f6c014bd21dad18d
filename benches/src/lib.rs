//! The one helper Ferry's benchmarks share: fixture module versions, stores of each backend filled with them,
//! Ferry served over loopback (`ferry::run` on `127.0.0.1:0`), the ceiling server (the same bytes from a
//! minimal hyper handler with no storage), and a pooled hyper client that drives either at a fixed
//! concurrency. Statistics are criterion's; nothing here takes a median.

pub mod delay_proxy;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry::{Proxy, ServerSettings};
use ferry_module::{ModulePath, Version};
use ferry_storage::{
    Environment, ModuleStore, ModuleStoreExt, StorageConfig, StorageOptions, VersionFiles,
    ZipSource,
};
use ferry_testkit::FixtureModule;
use futures::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const MIB: usize = 1 << 20;
/// The module whose small files (`.info`, `.mod`), `list` and `@latest` are measured.
pub const SMALL_MODULE: &str = "example.com/small";
/// How many versions the small module has, so `list` and `@latest` have something to sort.
pub const SMALL_VERSIONS: usize = 10;

/// One module version, its three files built once (a 64 MiB zip takes a while to deflate).
pub struct Fixture {
    pub module: String,
    pub version: String,
    pub info: Bytes,
    pub go_mod: Bytes,
    pub zip: Bytes,
}

impl Fixture {
    pub fn build(module: &FixtureModule) -> Fixture {
        Fixture {
            module: module.path().to_owned(),
            version: module.version().to_owned(),
            info: Bytes::from(module.info_json()),
            go_mod: Bytes::from(module.go_mod()),
            zip: Bytes::from(module.zip_bytes()),
        }
    }

    /// `/<module>/@v/<version>.<ext>` (fixture paths and versions are lower case: nothing to escape).
    pub fn path(&self, ext: &str) -> String {
        format!("/{}/@v/{}.{ext}", self.module, self.version)
    }

    pub async fn save_into(&self, store: &dyn ModuleStore) {
        let zip = self.zip.clone();
        // 1 MiB chunks, as a fetched zip arrives (multipart uploads above 8 MiB on S3 and GCS).
        let chunks = (0..zip.len().div_ceil(MIB))
            .map(move |i| Ok(zip.slice(i * MIB..zip.len().min((i + 1) * MIB))));
        let files = VersionFiles {
            info: self.info.clone(),
            go_mod: self.go_mod.clone(),
            zip: Some(ZipSource::Stream(futures::stream::iter(chunks).boxed())),
        };
        store
            .save(&self.module_path(), &self.version_value(), files)
            .await
            .unwrap_or_else(|e| panic!("store {}@{}: {e}", self.module, self.version));
    }

    pub fn module_path(&self) -> ModulePath {
        ModulePath::new(&self.module).expect("a fixture module path is valid")
    }

    pub fn version_value(&self) -> Version {
        Version::new(&self.version).expect("a fixture version is valid")
    }
}

/// A module version whose zip holds `zip_bytes` of incompressible data, so the zip is about that large.
pub fn zip_module(module: &str, zip_bytes: usize) -> FixtureModule {
    FixtureModule::package(module, "v1.0.0").file("data.bin", noise(zip_bytes))
}

/// The small module's versions, `v1.0.0` to `v1.0.<SMALL_VERSIONS - 1>`.
pub fn small_modules() -> Vec<FixtureModule> {
    (0..SMALL_VERSIONS)
        .map(|patch| FixtureModule::package(SMALL_MODULE, &format!("v1.0.{patch}")))
        .collect()
}

/// Deterministic pseudo-random bytes (xorshift), which deflate cannot shrink.
pub fn noise(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len + 8);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// A storage backend Ferry can serve from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    File,
    S3,
    Gcs,
}

/// An opened, empty store of one backend; its temporary directory (file stores) lives as long as it does.
pub struct OpenStore {
    pub backend: Backend,
    pub store: Arc<dyn ModuleStore>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    pub const ALL: [Backend; 4] = [Backend::Memory, Backend::File, Backend::S3, Backend::Gcs];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::File => "file",
            Backend::S3 => "s3",
            Backend::Gcs => "gcs",
        }
    }

    /// A fresh store (a prefix of its own in the S3/GCS test bucket), or `None` when the backend's test
    /// server is not configured: `ferry_testkit::server_vars` then prints why on stderr (and fails under
    /// `FERRY_TEST_REQUIRE_SERVERS=1`, as `scripts/test.sh` sets it).
    pub fn open(self) -> Option<OpenStore> {
        let (url, env, dir): (String, Environment, _) = match self {
            Backend::Memory => ("memory://".into(), Environment::default(), None),
            Backend::File => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("file://{}", dir.path().join("store").display());
                (url, Environment::default(), Some(dir))
            }
            // The test servers `scripts/test-servers.sh` starts, as the tests reach them.
            Backend::S3 | Backend::Gcs => {
                let server = match self {
                    Backend::S3 => ferry_testkit::s3_server()?,
                    _ => ferry_testkit::gcs_server()?,
                };
                let env = server.env.iter().cloned().collect();
                (server.fresh_url(), env, None)
            }
        };
        let store = StorageConfig::from_url_with(&url, &StorageOptions::default(), &env)
            .and_then(|config| config.open())
            .unwrap_or_else(|e| panic!("open the {} store: {e}", self.name()));
        Some(OpenStore {
            backend: self,
            store,
            _dir: dir,
        })
    }
}

/// A server on `127.0.0.1:0`, stopped by [`Server::stop`].
pub struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Ferry serving `store` only (no upstream: a miss is a 404), through `ferry::run` as the binary does.
    pub async fn ferry(store: Arc<dyn ModuleStore>) -> Server {
        Server::ferry_proxy(Arc::new(Proxy::new(store))).await
    }

    pub async fn ferry_proxy(proxy: Arc<Proxy>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let settings = ServerSettings {
            shutdown_timeout: Duration::from_secs(5),
            ..ServerSettings::default()
        };
        let task = tokio::spawn(ferry::run(listener, proxy, settings, async {
            let _ = stopped.await;
        }));
        Server { addr, stop, task }
    }

    /// The ceiling: `routes` served from memory by a bare hyper HTTP/1 handler (a map lookup, an ETag
    /// comparison), so what Ferry adds (routing, decoding, storage, streaming) is all it lacks.
    pub async fn ceiling(routes: Routes) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                    _ = &mut stopped => return,
                };
                let routes = routes.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let answer = ceiling_answer(&routes, &request);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { addr, stop, task }
    }

    pub fn uri(&self, path: &str) -> Uri {
        format!("http://{}{path}", self.addr)
            .parse()
            .expect("a valid URI")
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("the server task ends");
    }
}

/// What the ceiling answers for one path: the bytes Ferry answered, with its ETag and content type.
#[derive(Clone, Debug)]
pub struct Route {
    pub body: Bytes,
    pub etag: Option<HeaderValue>,
    pub content_type: Option<HeaderValue>,
}

pub type Routes = Arc<HashMap<String, Route>>;

fn ceiling_answer<B>(routes: &Routes, request: &Request<B>) -> Response<Full<Bytes>> {
    let Some(route) = routes.get(request.uri().path()) else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let revalidated =
        route.etag.is_some() && request.headers().get(header::IF_NONE_MATCH) == route.etag.as_ref();
    let mut response = Response::new(Full::new(if revalidated {
        Bytes::new()
    } else {
        route.body.clone()
    }));
    if revalidated {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = response.headers_mut();
    if let Some(etag) = &route.etag {
        headers.insert(header::ETAG, etag.clone());
    }
    if let Some(content_type) = &route.content_type {
        headers.insert(header::CONTENT_TYPE, content_type.clone());
    }
    response
}

/// GETs each path from `server` (Ferry) and records its answer, so the ceiling serves the very same bytes.
pub async fn capture(client: &Client, server: &Server, paths: &[String]) -> Routes {
    let mut routes = HashMap::new();
    for path in paths {
        let response = client
            .get(server.uri(path))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let etag = response.headers().get(header::ETAG).cloned();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        routes.insert(
            path.clone(),
            Route {
                body,
                etag,
                content_type,
            },
        );
    }
    Arc::new(routes)
}

pub type Client = HyperClient<HttpConnector, Empty<Bytes>>;

/// A hyper client with a connection pool: sequential requests reuse one connection, N concurrent
/// requests keep N connections open. No Nagle delay, as load generators set it.
pub fn client() -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    HyperClient::builder(TokioExecutor::new()).build(connector)
}

/// A multi-threaded runtime on every core: the server and the client share it, as both share the machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One request and what its answer must be: a benchmark of wrong answers measures nothing.
#[derive(Clone, Debug)]
pub struct Probe {
    pub uri: Uri,
    pub if_none_match: Option<HeaderValue>,
    pub status: StatusCode,
    pub body_len: usize,
}

impl Probe {
    /// A GET answered 200 with `body_len` bytes.
    pub fn get(uri: Uri, body_len: usize) -> Probe {
        Probe {
            uri,
            if_none_match: None,
            status: StatusCode::OK,
            body_len,
        }
    }

    /// A GET with `If-None-Match: <etag>` answered 304 with no body.
    pub fn revalidate(uri: Uri, etag: HeaderValue) -> Probe {
        Probe {
            uri,
            if_none_match: Some(etag),
            status: StatusCode::NOT_MODIFIED,
            body_len: 0,
        }
    }

    /// Sends the request and reads the whole answer, checking its status and length.
    pub async fn once(&self, client: &Client) {
        let mut request = Request::get(self.uri.clone());
        if let Some(etag) = &self.if_none_match {
            request = request.header(header::IF_NONE_MATCH, etag.clone());
        }
        let request = request.body(Empty::new()).expect("a valid request");
        let response = client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("GET {}: {e}", self.uri));
        assert_eq!(response.status(), self.status, "GET {}", self.uri);
        let mut body = response.into_body();
        let mut len = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.unwrap_or_else(|e| panic!("GET {}: {e}", self.uri));
            len += frame.data_ref().map_or(0, Bytes::len);
        }
        assert_eq!(len, self.body_len, "GET {}: body length", self.uri);
    }
}

/// `concurrency` workers each send `rounds` requests back to back over the client's pool: the wall time
/// of `concurrency * rounds` requests with `concurrency` in flight. One criterion iteration is one round.
pub async fn drive(client: &Client, probe: &Probe, concurrency: usize, rounds: u64) -> Duration {
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, probe) = (client.clone(), probe.clone());
            tokio::spawn(async move {
                for _ in 0..rounds {
                    probe.once(&client).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a benchmark request failed");
    }
    started.elapsed()
}

/// Like [`drive`], reading the zip from the store directly (`ModuleStoreExt::zip`, no HTTP): the storage
/// half of serving a zip alone.
pub async fn drive_store_zip(
    store: &Arc<dyn ModuleStore>,
    fixture: &Fixture,
    concurrency: usize,
    rounds: u64,
) -> Duration {
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let store = store.clone();
            let (module, version, len) = (
                fixture.module_path(),
                fixture.version_value(),
                fixture.zip.len(),
            );
            tokio::spawn(async move {
                for _ in 0..rounds {
                    let mut zip = store.zip(&module, &version).await.expect("read the zip");
                    let mut read = 0;
                    while let Some(chunk) = zip.stream.next().await {
                        read += chunk.expect("a zip chunk").len();
                    }
                    assert_eq!(read, len, "{module}@{version}.zip from the store");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a store read failed");
    }
    started.elapsed()
}
