//! Ferry-specific glue over `ferry-testkit`'s harness: Ferry in-process (from a store, a proxy or a
//! configuration), the `ferry` binary as a process, and storing fixtures. Everything generic (HTTP clients,
//! processes, waiting, logs, the fixture upstream) lives in testkit.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use ferry::config::{self, Flags};
use ferry::{Proxy, ServerSettings};
use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, ModuleStoreExt, VersionFiles, ZipSource};
use ferry_testkit::{FixtureModule, GoHome, InProcess, Process, clean_command};
use futures::StreamExt;

pub use ferry_testkit::http::{
    Reply, get, get_blocking, raw_header, raw_request, request, request_from,
};

/// A Ferry running in the test's runtime on 127.0.0.1:0; stopped (gracefully) by `stop` or when dropped.
pub struct Ferry {
    pub addr: std::net::SocketAddr,
    pub proxy: Arc<Proxy>,
    server: InProcess,
}

impl Ferry {
    /// A Ferry that serves `store` and fetches nothing.
    pub async fn start(store: Arc<dyn ModuleStore>) -> Ferry {
        Ferry::start_proxy(Arc::new(Proxy::new(store))).await
    }

    pub async fn start_proxy(proxy: Arc<Proxy>) -> Ferry {
        Ferry::start_with(proxy, ServerSettings::default()).await
    }

    pub async fn start_with(proxy: Arc<Proxy>, settings: ServerSettings) -> Ferry {
        let served = proxy.clone();
        let server = InProcess::start(move |listener, shutdown| {
            ferry::run(listener, served, settings, shutdown)
        })
        .await;
        Ferry {
            addr: server.addr,
            proxy,
            server,
        }
    }

    /// Ferry as `ferry serve` builds it from `env` (a map: the process environment is never changed).
    pub async fn from_env(env: &BTreeMap<String, String>, flags: &Flags) -> Ferry {
        let config = config::load(flags, env).expect("configuration loads");
        let proxy = ferry::build_proxy(&config).await.expect("ferry starts");
        Ferry::start_with(proxy, config.server.clone()).await
    }

    /// A Ferry serving the directory `dir` (a GOPROXY tree) as its `file://` store.
    pub async fn on_dir(dir: &std::path::Path) -> Ferry {
        let store = ferry_storage::StorageConfig::from_url(&format!("file://{}", dir.display()))
            .unwrap()
            .open()
            .unwrap();
        Ferry::start(store).await
    }

    pub fn store(&self) -> &Arc<dyn ModuleStore> {
        self.proxy.store()
    }

    /// Whether `module@version` is stored.
    pub async fn stored(&self, module: &str, version: &str) -> bool {
        is_stored(self.store().as_ref(), module, version).await
    }

    /// The versions of `module` in the store, sorted as text.
    pub async fn stored_versions(&self, module: &str) -> Vec<String> {
        let module = ModulePath::new(module).unwrap();
        let mut versions: Vec<String> = self
            .store()
            .list(&module)
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        versions.sort();
        versions
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `https://IP:PORT`, for a Ferry configured with `tls_cert` / `tls_key`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A GET of `path` (without the leading `/`).
    pub async fn get(&self, path: &str) -> Reply {
        get(&format!("{}/{path}", self.url())).await
    }

    /// Graceful shutdown, as on SIGTERM: stops accepting, waits for requests, drains the queue.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

pub fn memory_store() -> Arc<dyn ModuleStore> {
    ferry_storage::StorageConfig::Memory.open().unwrap()
}

pub async fn save(store: &dyn ModuleStore, fixture: &FixtureModule) {
    let files = VersionFiles {
        info: Bytes::from(fixture.info_json()),
        go_mod: Bytes::from(fixture.go_mod()),
        zip: Some(ZipSource::Stream(
            futures::stream::iter([Ok(Bytes::from(fixture.zip_bytes()))]).boxed(),
        )),
    };
    let module = ModulePath::new(fixture.path()).unwrap();
    store
        .save(&module, &Version::new(fixture.version()).unwrap(), files)
        .await
        .unwrap();
}

/// The environment a test's Ferry is configured from (never the process's own): a memory store, a work
/// directory of its own under `dir`, and a `go` that fetches from `goproxy` without the checksum database;
/// `vars` are more settings (FERRY_DOWNLOAD_MODE, FERRY_FETCH_TIMEOUT, ...).
pub fn ferry_env(
    dir: &std::path::Path,
    goproxy: Option<&str>,
    vars: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("FERRY_STORAGE", "memory://".to_string()),
        ("FERRY_WORK_DIR", dir.join("work").display().to_string()),
        ("FERRY_GO", ferry_testkit::go_binary().display().to_string()),
        ("HOME", dir.display().to_string()),
        ("GOSUMDB", "off".to_string()),
        ("GOFLAGS", "-mod=mod".to_string()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(goproxy) = goproxy {
        env.insert("GOPROXY".to_string(), goproxy.to_string());
    }
    for (name, value) in vars {
        env.insert(name.to_string(), value.to_string());
    }
    env
}

/// `go <args>` in `dir` with an isolated go home, `goproxy` as GOPROXY and `vars` added (SSL_CERT_FILE,
/// NETRC, GOAUTH, ...), without blocking the runtime; what it did.
pub async fn go_with(
    dir: &std::path::Path,
    goproxy: &str,
    vars: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let home = ferry_testkit::GoHome::new(dir, goproxy);
    let mut command = home.command(dir, args);
    command.envs(vars.iter().copied());
    tokio::process::Command::from(command)
        .output()
        .await
        .unwrap()
}

/// What a go command said, stdout and stderr (`-json` puts its errors on stdout).
pub fn go_said(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&[&output.stdout[..], &output.stderr[..]].concat()).into_owned()
}

/// Whether `module@version` is stored.
pub async fn is_stored(store: &dyn ModuleStore, module: &str, version: &str) -> bool {
    let module = ModulePath::new(module).unwrap();
    let version = Version::new(version).unwrap();
    store.exists(&module, &version).await.unwrap()
}

/// The `ferry` binary with an empty environment but for `PATH`.
pub fn ferry() -> Command {
    clean_command(env!("CARGO_BIN_EXE_ferry"))
}

/// `ferry admin ARGS --url ADMIN_URL`, run without blocking the runtime (which may serve the admin API it
/// calls): whether it succeeded, and what it printed (stdout, then stderr).
pub async fn ferry_admin(admin_url: &str, args: &[&str]) -> (bool, String) {
    let mut command = ferry();
    command.arg("admin").args(args).args(["--url", admin_url]);
    run_async(command).await
}

/// Runs `command` without blocking the runtime: whether it succeeded, and what it printed (stdout, then
/// stderr).
pub async fn run_async(command: Command) -> (bool, String) {
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// `ferry` serving a memory store on 127.0.0.1:0 from `dir` (its work dir there), with `vars` set.
pub fn serve_memory(dir: &std::path::Path, vars: &[(&str, &str)]) -> Command {
    let mut command = ferry();
    command
        .current_dir(dir)
        .env("FERRY_LISTEN", "127.0.0.1:0")
        .env("FERRY_STORAGE", "memory://")
        .envs(vars.iter().copied());
    command
}

/// Starts the binary and waits for its "ferry is serving" line (text or JSON logs); returns the process and
/// its address.
pub fn serving(command: Command) -> (Process, String) {
    let (process, line) = Process::start(command, "ferry is serving");
    let addr = if line.trim_start().starts_with('{') {
        serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|event| Some(event.get("listen")?.as_str()?.to_string()))
    } else {
        line.split("listen=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|addr| addr.trim_matches('"').to_string())
    };
    let addr = addr.unwrap_or_else(|| panic!("no listen address in {line:?}"));
    (process, addr)
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Forwards every connection on `listener` to `target` (`HOST:PORT`): a storage server "coming back" on
/// the address Ferry was configured with. Aborting the task closes the listener and every forwarded
/// connection (they live in its `JoinSet`): the server "goes away" again.
pub async fn forward(listener: tokio::net::TcpListener, target: String) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        // Finished connections are reaped as new ones come.
        while connections.try_join_next().is_some() {}
    }
}

/// `go get target` in a new module `dir/app` through `ferry` (its only GOPROXY), verifying sums against
/// `GOSUMDB=gosumdb` (a key, the database reached through the GOPROXY, or `key url`), and nothing
/// private (GONOSUMDB, GOPRIVATE, GONOSUMCHECK unset): the go home, the module's directory and what go did.
pub async fn go_get_verifying(
    dir: &Path,
    ferry: &Ferry,
    gosumdb: &str,
    target: &str,
) -> (GoHome, std::path::PathBuf, std::process::Output) {
    let home = GoHome::new(dir, &ferry.url());
    let app = app_module(dir);
    let mut command = home.command(&app, &["get", target]);
    command.env("GOSUMDB", gosumdb);
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .expect("run go");
    (home, app, output)
}

/// A module `app` in `dir/app` (for `go get`).
pub fn app_module(dir: &Path) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    write_file(&app, "go.mod", "module app\n\ngo 1.21\n");
    app
}

/// The `Authorization` value of HTTP Basic credentials.
pub fn basic_authorization(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A `.netrc` at `dir/name` giving `user`'s `password` for a server at `addr` (the go command looks a
/// machine up with its port); its path.
pub fn netrc_file(
    dir: &Path,
    name: &str,
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
) -> String {
    let line = format!("machine {addr} login {user} password {password}\n");
    write_file(dir, name, &line).display().to_string()
}

/// Ferry in-process serving over TLS (a fresh test CA, whose file is returned) with the settings `vars`
/// (FERRY_TOKEN_FILE, FERRY_CONFIG, ...) and download mode `none`, with `module@v1.0.0` stored.
pub async fn secured_with_stored(
    dir: &Path,
    vars: &[(&str, &str)],
    module: &str,
) -> (Ferry, std::path::PathBuf) {
    let ca = ferry_testkit::TestCa::new("Ferry test CA");
    let ca_file = ca.write(dir, "ca.pem");
    let pair = ca.issue(dir, "server");
    let (cert, key) = (
        pair.cert.display().to_string(),
        pair.key.display().to_string(),
    );
    let mut all = vec![
        ("FERRY_DOWNLOAD_MODE", "none"),
        ("FERRY_TLS_CERT", cert.as_str()),
        ("FERRY_TLS_KEY", key.as_str()),
    ];
    all.extend_from_slice(vars);
    let ferry = Ferry::from_env(&ferry_env(dir, None, &all), &Flags::default()).await;
    save(
        ferry.store().as_ref(),
        &FixtureModule::package(module, "v1.0.0"),
    )
    .await;
    (ferry, ca_file)
}

/// A GOAUTH command (`go help goauth`) that gives `https_url` the header `Authorization: AUTHORIZATION`,
/// as one reading a secret store would: its path, for GOAUTH.
pub fn goauth_command(dir: &Path, name: &str, https_url: &str, authorization: &str) -> String {
    let script = write_file(
        dir,
        name,
        &format!(
            "#!/bin/sh\nprintf '%s\\n\\n%s\\n\\n' '{https_url}' 'Authorization: {authorization}'\n"
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// `go mod download -json module@v1.0.0` through `https_url`, trusting `ca`, with `vars` added.
pub async fn go_download_over_tls(
    dir: &Path,
    https_url: &str,
    ca: &Path,
    module: &str,
    vars: &[(&str, &str)],
) -> std::process::Output {
    let ca = ca.display().to_string();
    let mut vars = vars.to_vec();
    vars.push(("SSL_CERT_FILE", &ca));
    go_with(
        dir,
        https_url,
        &vars,
        &["mod", "download", "-json", &format!("{module}@v1.0.0")],
    )
    .await
}
