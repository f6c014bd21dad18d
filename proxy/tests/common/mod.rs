//! Test harness: Ferry in-process on 127.0.0.1:0, and HTTP clients for it.
#![allow(dead_code)] // each test binary uses part of the harness

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use ferry::{Proxy, ServerSettings};
use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, VersionFiles, ZipSource};
use ferry_testkit::FixtureModule;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running Ferry; stopped (gracefully) by `stop` or when dropped.
pub struct Ferry {
    pub addr: SocketAddr,
    pub store: Arc<dyn ModuleStore>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Ferry {
    pub async fn start(store: Arc<dyn ModuleStore>) -> Ferry {
        Ferry::start_proxy(Arc::new(Proxy::new(store.clone())), store).await
    }

    pub async fn start_proxy(proxy: Arc<Proxy>, store: Arc<dyn ModuleStore>) -> Ferry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let settings = ServerSettings::default();
        let server = tokio::spawn(ferry::run(listener, proxy, settings, async {
            let _ = rx.await;
        }));
        Ferry {
            addr,
            store,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// A Ferry serving the directory `dir` (a GOPROXY tree) as its `file://` store.
    pub async fn on_dir(dir: &std::path::Path) -> Ferry {
        let store = ferry_storage::StorageConfig::from_url(&format!("file://{}", dir.display()))
            .unwrap()
            .open()
            .unwrap();
        Ferry::start(store).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn memory_store() -> Arc<dyn ModuleStore> {
    ferry_storage::StorageConfig::Memory.open().unwrap()
}

pub async fn save(store: &dyn ModuleStore, fixture: &FixtureModule) {
    let files = VersionFiles {
        info: Bytes::from(fixture.info_json()),
        go_mod: Bytes::from(fixture.go_mod()),
        zip: ZipSource::Stream(
            futures::stream::iter([Ok(Bytes::from(fixture.zip_bytes()))]).boxed(),
        ),
    };
    let module = ModulePath::new(fixture.path()).unwrap();
    store
        .save(&module, &Version::new(fixture.version()).unwrap(), files)
        .await
        .unwrap();
}

/// A response as a test looks at it.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

pub async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = client
        .request(builder.body(Empty::new()).unwrap())
        .await
        .expect("request");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str) -> Reply {
    request("GET", url, &[]).await
}

/// Sends `raw` bytes as they are (for requests no HTTP client would send) and returns the status line
/// and whatever followed, up to the connection's close.
pub async fn raw_request(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The `ferry` binary with an empty environment but for `PATH`.
pub fn ferry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

/// A running `ferry` process, killed if a test fails before stopping it.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and waits for its "ferry is serving" log line; returns the process and its address.
/// The rest of its stderr is not read (a closed log pipe must not disturb it).
pub fn start(mut command: Command) -> (Running, String) {
    let mut child = Running(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferry"),
    );
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("ferry is serving") {
            let addr = line
                .split("listen=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            return (child, addr);
        }
        seen.push(line);
    }
    panic!(
        "ferry exited before serving ({:?}):\n{}",
        child.0.wait(),
        seen.join("\n")
    );
}
