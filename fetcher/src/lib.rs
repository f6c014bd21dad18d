//! Ferry's fetcher: turns `module@query`, a versions list request or a latest request into files on
//! disk or a typed error, by running the `go` command in isolated temporary directories.
//!
//! It knows nothing of HTTP or of the storage layout; see `README.md` for the rules.

mod command;
mod config;
mod error;
mod go_json;
mod graph;
mod growing;
mod http;
mod native;
mod routed;
mod scratch;
mod sumdb_route;
mod upstreams;
mod vulndb;
mod workdir;
mod zip_check;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;

pub use config::{
    DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_TIMEOUT, FetcherConfig, GO_FETCH_VARIABLES,
    default_max_concurrent,
};
pub use error::FetchError;
pub use graph::{ModuleGraph, ModuleVersion, resolve_graph};
pub use growing::{GrowingZip, HOLD_BACK, ZipProgress, ZipState, ZipTap};
pub use http::{
    CONNECT_TIMEOUT, HttpsClient, LOOP_HEADER, SPAN_TARGET, error_chain, https_client, loop_token,
    propagate_trace_context,
};
pub use sumdb_route::{
    Route as SumdbRoute, RouteState as SumdbRouteState, RouteTransport as SumdbRouteTransport,
    SumdbRoutes, Target as SumdbTarget, Verifier as SumdbVerifier, Via as SumdbVia,
};
pub use upstreams::{
    Hop as UpstreamHop, Step as UpstreamStep, UpstreamObserver, UpstreamResult, UpstreamRoute,
    authority_of, parse_proxy_list,
};
pub use vulndb::{VulnSource, VulnSourceError};
pub use workdir::WorkDir;
pub use zip_check::check_module_zip;

use command::GoOutput;
use ferry_module::{ModulePath, Version};
use native::{GoSettings, Native};
use scratch::ScratchDir;

/// Runs go commands for Ferry. Cheap to clone; clones share the concurrency limit.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    config: FetcherConfig,
    /// `go version` output without the `go version ` prefix, e.g. `go1.26.8 linux/amd64`.
    go_version: String,
    /// One permit per go command allowed to run at once.
    slots: Semaphore,
    /// Held for the fetcher's lifetime: the temporary directories under it are this process's alone.
    work_dir: WorkDir,
    /// Fetches canonical versions over HTTP when the upstream is a GOPROXY (see `native.rs`).
    native: Option<Native>,
    /// The routes to checksum databases, shared with the proxy's relay.
    sumdb_routes: Arc<SumdbRoutes>,
    /// The `[[upstreams]]` tables, in order (the first serving a module wins).
    routes: Vec<routed::Route>,
}

/// A version downloaded by `go mod download`: its three files, on disk in a temporary directory
/// owned by this value and removed when it is dropped (or by [`FetchedVersion::remove`]).
#[derive(Debug)]
pub struct FetchedVersion {
    /// The module path, as go reported it.
    pub module: String,
    /// The canonical version the query resolved to (e.g. a pseudo-version for a branch), checked.
    pub version: Version,
    /// The `.info` file (JSON with `Version`, `Time` and possibly `Origin`).
    pub info: PathBuf,
    /// The `.mod` file.
    pub go_mod: PathBuf,
    /// The `.zip` file.
    pub zip: PathBuf,
    /// Size of the zip in bytes.
    pub zip_len: u64,
    /// go's `h1:` hash of the zip's content (the go.sum line's hash).
    pub sum: String,
    /// go's `h1:` hash of the go.mod file.
    pub go_mod_sum: String,
    scratch: ScratchDir,
}

impl FetchedVersion {
    /// Removes the temporary directory on a blocking thread, so a large module's cache is not
    /// deleted on an async worker. Dropping the value removes it too, on the current thread.
    pub async fn remove(self) {
        let scratch = self.scratch;
        // If the runtime shuts down before the closure runs, dropping the closure drops (and so
        // removes) the directory all the same.
        let _ = tokio::task::spawn_blocking(move || drop(scratch)).await;
    }

    /// The temporary directory holding the files (for diagnostics).
    pub fn temp_dir(&self) -> &Path {
        self.scratch.root()
    }
}

/// A version's `.info` and `.mod`, as `go list -m -json module@version` fetched (and, where a checksum
/// database applies, verified) them: what a `.info` or `.mod` request needs, without the zip.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedMetadata {
    /// The canonical version.
    pub version: String,
    pub info: bytes::Bytes,
    pub go_mod: bytes::Bytes,
}

/// What a fetch got before its checks are done: the files are here; the checksum database's word (and, for
/// a zip, the module-zip checks) is still to come. `early` may go to a client whose go command checks what it
/// gets itself (its go.sum, or the database) — as it would coming straight from the upstream — but nothing
/// may be stored before [`Unverified::verified`] says so.
pub struct Unverified<'a, E, T> {
    pub early: E,
    checks: BoxFuture<'a, Result<T, FetchError>>,
    checked: bool,
}

impl<'a, E, T: Send + 'a> Unverified<'a, E, T> {
    /// What came checked already (the go command checks what it downloads).
    fn checked(early: E, value: T) -> Self {
        Unverified {
            early,
            checks: futures::future::ready(Ok(value)).boxed(),
            checked: true,
        }
    }

    /// Whether the checks are done already: `early` is then as good as the checked value.
    pub fn is_checked(&self) -> bool {
        self.checked
    }

    /// The fetch, once every check has passed.
    pub async fn verified(self) -> Result<T, FetchError> {
        self.checks.await
    }
}

/// A version's `.mod` as downloaded, not yet checked.
#[derive(Debug, Clone)]
pub struct EarlyMetadata {
    /// The canonical version.
    pub version: String,
    pub go_mod: bytes::Bytes,
}

/// How the checks of a zip fetched over HTTP ended.
enum NativeChecks {
    Verified(Box<FetchedVersion>),
    /// The zip is a module zip of the version, but the checksum database did not answer Ferry plainly:
    /// the go command is to fetch and verify the version, and these hashes must be its.
    Unconfirmed {
        zip_h1: String,
        go_mod_h1: String,
    },
}

/// The answer to a latest query (`go list -m -json module@latest`).
#[derive(Debug, Clone, PartialEq)]
pub struct LatestVersion {
    pub version: String,
    /// RFC 3339 time of the version, as go printed it.
    pub time: String,
    /// go's `Origin` object (VCS details), passed through when present.
    pub origin: Option<serde_json::Value>,
}

impl Fetcher {
    /// Locks `config.work_dir` (creating it, and removing what a killed earlier run left in it: see
    /// [`WorkDir::lock`]), then checks that `go version` runs.
    pub async fn new(config: FetcherConfig) -> Result<Fetcher, FetchError> {
        let work_dir = WorkDir::lock(&config.work_dir).await?;
        Fetcher::with_work_dir(config, work_dir).await
    }

    /// Like [`Fetcher::new`], with a work dir locked beforehand (e.g. at start-up, whether or not
    /// anything is fetched). `config.work_dir` is replaced by `work_dir`'s path.
    pub async fn with_work_dir(
        mut config: FetcherConfig,
        work_dir: WorkDir,
    ) -> Result<Fetcher, FetchError> {
        // Zero slots would make every request wait forever.
        config.max_concurrent = config.max_concurrent.max(1);
        config.work_dir = work_dir.path().to_path_buf();
        let slots = Semaphore::new(config.max_concurrent);
        let client = https_client(http::CONNECT_TIMEOUT);
        let mut fetcher = Fetcher {
            inner: Arc::new(Inner {
                config,
                go_version: String::new(),
                slots,
                work_dir,
                native: None,
                // Until `go env` says where the go command reaches them (below).
                sumdb_routes: Arc::new(SumdbRoutes::new(client.clone(), "", "", "")),
                routes: Vec::new(),
            }),
        };
        let go_version = fetcher.check_go().await?;
        tracing::info!(go = %fetcher.inner.config.go_binary.display(), version = %go_version, "go command found");
        let settings = match fetcher.go_settings().await {
            Ok(settings) => Some(settings),
            Err(e) => {
                tracing::warn!(error = %e, "`go env` failed; every version is fetched with `go mod download`, and checksum databases are reached directly");
                None
            }
        };
        let routes = Arc::new(match &settings {
            Some(s) => SumdbRoutes::new(client.clone(), &s.goproxy, &s.gosumdb, &s.goroot),
            None => SumdbRoutes::new(client.clone(), "", "", ""),
        });
        let upstreams = match &settings {
            _ if fetcher.inner.config.upstreams.is_empty() => Vec::new(),
            Some(s) => {
                let config = &fetcher.inner.config;
                routed::build(
                    &config.upstreams,
                    s,
                    &config.sumdb_private,
                    &client,
                    &routes,
                )
            }
            .map_err(|message| FetchError::LocalFault { message })?,
            None => {
                return Err(FetchError::LocalFault {
                    message: "`go env` failed, and the [[upstreams]] tables verify against the checksum database it names".into(),
                });
            }
        };
        for route in &upstreams {
            tracing::info!(upstream = %route.config.name, modules = route.config.modules.len(), steps = route.config.steps.len(), "modules routed to their own upstream");
        }
        let native = match (fetcher.inner.config.native, settings) {
            (true, Some(settings)) => fetcher.native(settings, client, routes.clone()),
            _ => None,
        };
        let inner = Arc::get_mut(&mut fetcher.inner).expect("not yet shared");
        inner.go_version = go_version;
        inner.native = native;
        inner.sumdb_routes = routes;
        inner.routes = upstreams;
        Ok(fetcher)
    }

    /// The routes to checksum databases, as this fetcher's go command would take them (its `GOPROXY`,
    /// `GOSUMDB`): the fills verify through them, and the proxy's relay shares them.
    pub fn sumdb_routes(&self) -> Arc<SumdbRoutes> {
        self.inner.sumdb_routes.clone()
    }

    /// The native fetcher for the settings go reports, or none (logged either way).
    fn native(
        &self,
        settings: GoSettings,
        client: HttpsClient,
        routes: Arc<SumdbRoutes>,
    ) -> Option<Native> {
        // Ferry's own client does not go through an HTTP proxy; the go command does.
        let config = &self.inner.config;
        let proxied = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"]
            .iter()
            .find(|name| {
                [name.to_string(), name.to_lowercase()].iter().any(|key| {
                    config.go_env.contains_key(key)
                        || config.inherited_env.get(key).is_some_and(|v| !v.is_empty())
                })
            });
        if let Some(name) = proxied {
            tracing::info!(reason = %format!("{name} is set, and only the go command goes through an HTTP proxy"), "versions are fetched with `go mod download`");
            return None;
        }
        match Native::new(settings, client, routes) {
            Ok(native) => {
                let sumdb = native.sumdb().unwrap_or("off (GOSUMDB=off)");
                tracing::info!(upstream = %native.proxy(), sumdb, "versions are fetched over HTTP and verified against the checksum database");
                Some(native)
            }
            Err(reason) => {
                tracing::info!(%reason, "versions are fetched with `go mod download`");
                None
            }
        }
    }

    /// `GOPROXY`, `GOSUMDB` and the settings beside them, as `go env` reports them for this fetcher's go.
    async fn go_settings(&self) -> Result<GoSettings, FetchError> {
        let mut args = vec!["env", "-json"];
        args.extend(GoSettings::NAMES);
        let (_scratch, output) = self.run_go(&args).await?;
        if !output.status.success() {
            return Err(FetchError::from_go_message(&output.stderr_text()));
        }
        serde_json::from_slice(&output.stdout).map_err(|e| {
            invalid_output(format!(
                "`go env -json` printed something else than JSON: {e}"
            ))
        })
    }

    /// The native fetcher, when it fetches this module at this (canonical) version.
    fn native_for(&self, module: &ModulePath, query: &str) -> Option<(&Native, Version)> {
        let native = self.inner.native.as_ref()?;
        let version = Version::new(query).ok()?;
        native.handles(module.as_str()).then_some((native, version))
    }

    /// The native fetcher, when it lists this module's versions.
    fn native_list_for(&self, module: &ModulePath) -> Option<&Native> {
        let native = self.inner.native.as_ref()?;
        native.handles(module.as_str()).then_some(native)
    }

    /// Runs a native fetch under the fetch deadline.
    async fn within_deadline<T>(
        &self,
        what: String,
        work: impl std::future::Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let timeout = self.inner.config.timeout;
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or(Err(FetchError::Timeout {
                command: what,
                timeout,
            }))
    }

    /// `module@version` over HTTP: its three files downloaded into a temporary directory (the zip and the
    /// metadata at once, the zip's bytes told to `tap` as they land), and their checks still to come;
    /// `None` when the upstream left it to the go command.
    async fn fetch_native<'a>(
        &'a self,
        native: &'a Native,
        module: &ModulePath,
        version: &Version,
        tap: Option<&ZipTap<'_>>,
    ) -> Result<Option<BoxFuture<'a, Result<NativeChecks, FetchError>>>, FetchError> {
        let scratch = ScratchDir::create(self.inner.work_dir.path())?;
        let dir = scratch.root().to_path_buf();
        let escaped = version.escaped();
        let (info_path, mod_path, zip_path) = (
            dir.join(format!("{escaped}.info")),
            dir.join(format!("{escaped}.mod")),
            dir.join(format!("{escaped}.zip")),
        );
        let (metadata, zip_len) = tokio::join!(
            native.metadata_early(module, version, true),
            native.download_zip(module, version, &zip_path, tap),
        );
        let (Some((files, metadata_checks)), Some(zip_len)) = (metadata?, zip_len?) else {
            return Ok(None);
        };
        let Some(info) = files.info else {
            return Ok(None);
        };
        for (path, bytes) in [(&info_path, &info), (&mod_path, &files.go_mod)] {
            tokio::fs::write(path, bytes)
                .await
                .map_err(|e| FetchError::io(format!("writing {}", path.display()), e))?;
        }
        tracing::debug!(%module, %version, zip_len, "downloaded over HTTP");
        let (module, version) = (module.clone(), version.clone());
        let checks = async move {
            let go_mod_h1 = ferry_sumdb::hash_go_mod(&files.go_mod);
            let Some(metadata) = metadata_checks.await? else {
                let zip_h1 =
                    native::hash_module_zip(&module, &version, &files.go_mod, &zip_path).await?;
                return Ok(NativeChecks::Unconfirmed { zip_h1, go_mod_h1 });
            };
            let sum = native
                .verify_zip(&module, &version, &metadata, &zip_path)
                .await?;
            Ok(NativeChecks::Verified(Box::new(FetchedVersion {
                module: module.as_str().to_string(),
                version: version.clone(),
                info: info_path,
                go_mod: mod_path,
                zip: zip_path,
                zip_len,
                sum,
                go_mod_sum: go_mod_h1,
                scratch,
            })))
        };
        Ok(Some(checks.boxed()))
    }

    /// The version of the go command, e.g. `go1.26.8 linux/amd64`.
    pub fn go_version(&self) -> &str {
        &self.inner.go_version
    }

    /// The configuration in use.
    pub fn config(&self) -> &FetcherConfig {
        &self.inner.config
    }

    /// Downloads `module@query` and checks it: over HTTP from a GOPROXY upstream (see `native.rs`) or with
    /// `go mod download -json`. `query` may be a canonical version or any query go accepts (`latest`, a
    /// branch, a commit hash); the result names the canonical version it resolved to.
    pub async fn fetch(
        &self,
        module: &ModulePath,
        query: &str,
    ) -> Result<FetchedVersion, FetchError> {
        self.fetch_tapped(module, query, None).await
    }

    /// [`Fetcher::fetch`], telling `tap` of the zip's bytes as they come from the upstream over HTTP, and
    /// that it verified once it has (the caller then releases it, see [`ZipTap::release`]): the default upstream only (a table's steps, and the go command, are
    /// not tapped: their zip is read once stored).
    pub async fn fetch_tapped(
        &self,
        module: &ModulePath,
        query: &str,
        tap: Option<&ZipTap<'_>>,
    ) -> Result<FetchedVersion, FetchError> {
        if let Some(route) = self.route_of(module) {
            return self.routed_fetch(route, module, query).await;
        }
        if let Some((native, v)) = self.native_for(module, query) {
            let m = module;
            let what = format!("GET {module}@{query} from {}", native.proxy());
            let fetched = self
                .within_deadline(what.clone(), self.fetch_native(native, m, &v, tap))
                .await?;
            if let Some(checks) = fetched {
                let fetched = match self.within_deadline(what, checks).await? {
                    NativeChecks::Verified(fetched) => *fetched,
                    NativeChecks::Unconfirmed { zip_h1, go_mod_h1 } => {
                        let by_go = self.fetch_with_go(m.as_str(), v.as_str()).await?;
                        if by_go.sum != zip_h1 || by_go.go_mod_sum != go_mod_h1 {
                            return Err(FetchError::Upstream {
                                message: format!(
                                    "{m}@{v}: the upstream's zip ({zip_h1}) differs from what the go command fetched and verified ({})",
                                    by_go.sum
                                ),
                            });
                        }
                        by_go
                    }
                };
                // The tapped zip hashes to what was verified: its owner may let its readers have it all.
                if let Some(tap) = tap {
                    tap.verified();
                }
                return Ok(fetched);
            }
        }
        // A zip the upstream served without its `.info` or `.mod`: the go command's is not the tapped file.
        if let Some(tap) = tap {
            tap.fail();
        }
        self.fetch_with_go(module.as_str(), query).await
    }

    /// `module@query` with `go mod download -json`, which checks what it downloads itself.
    async fn fetch_with_go(&self, module: &str, query: &str) -> Result<FetchedVersion, FetchError> {
        self.fetch_with_go_via(module, query, None).await
    }

    /// [`Fetcher::fetch_with_go`] with this `GOPROXY` (`direct`) instead of the configured one.
    async fn fetch_with_go_via(
        &self,
        module: &str,
        query: &str,
        goproxy: Option<&str>,
    ) -> Result<FetchedVersion, FetchError> {
        let target = format!("{module}@{query}");
        let args = ["mod", "download", "-json", &target];
        let (scratch, output) = self.run_go_via(&args, goproxy).await?;
        let answer: go_json::ModDownload = match go_json::first_object(&output.stdout) {
            Some(Ok(answer)) => answer,
            // go failed before printing JSON (bad flags, broken environment): its reason is on stderr.
            _ if !output.status.success() => {
                return Err(FetchError::from_go_message(&output.stderr_text()));
            }
            Some(Err(e)) => {
                return Err(invalid_output(format!(
                    "`go mod download` printed invalid JSON: {e}"
                )));
            }
            None => {
                return Err(invalid_output(
                    "`go mod download` printed nothing".to_owned(),
                ));
            }
        };
        if let Some(message) = answer.error.as_deref() {
            // go's `Error` field does not always name the version (`zip: not a valid zip file`); the
            // answer must, so a client's message says which module failed.
            return Err(FetchError::from_go_message(&if message.contains(&target) {
                message.to_string()
            } else {
                format!("{target}: {message}")
            }));
        }
        if !output.status.success() {
            return Err(FetchError::from_go_message(&output.stderr_text()));
        }
        if answer.path != module {
            return Err(invalid_output(format!(
                "asked for {module}, go answered for {}",
                answer.path
            )));
        }
        let info = downloaded_file(&scratch, "Info", answer.info).await?;
        let go_mod = downloaded_file(&scratch, "GoMod", answer.go_mod).await?;
        let zip = downloaded_file(&scratch, "Zip", answer.zip).await?;
        let zip_len = tokio::fs::metadata(&zip)
            .await
            .map_err(|e| FetchError::io(format!("reading metadata of {}", zip.display()), e))?
            .len();
        let (Some(version), Some(sum), Some(go_mod_sum)) = (
            answer.version.filter(|v| !v.is_empty()),
            answer.sum.filter(|s| !s.is_empty()),
            answer.go_mod_sum.filter(|s| !s.is_empty()),
        ) else {
            return Err(invalid_output(format!(
                "`go mod download {target}` left out Version, Sum or GoModSum"
            )));
        };
        let version = Version::new(&version).map_err(|e| FetchError::Upstream {
            message: format!("{target}: the upstream answered an unusable version: {e}"),
        })?;
        tracing::debug!(%module, %query, %version, zip_len, "fetched");
        Ok(FetchedVersion {
            module: answer.path,
            version,
            info,
            go_mod,
            zip,
            zip_len,
            sum,
            go_mod_sum,
            scratch,
        })
    }

    /// The `.info` and `.mod` of `module@version` (a canonical version), checked: the go command asks for
    /// the `.mod` of many versions whose zips it never needs, so these two files are fetched without it.
    pub async fn fetch_metadata(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<FetchedMetadata, FetchError> {
        self.fetch_metadata_unverified(module, version)
            .await?
            .verified()
            .await
    }

    /// [`Fetcher::fetch_metadata`] in two steps: the `.mod` as soon as it is downloaded, then the
    /// `.info` and the checksum database's word on the go.mod's hash. Over HTTP from a GOPROXY upstream
    /// the `.mod` came in 1–2 ms, the database's word in up to 200 ms, and the `.info` of a version nobody
    /// had downloaded in 100 ms (issue 11); with `go list -m -json` both come checked.
    pub async fn fetch_metadata_unverified(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Unverified<'_, EarlyMetadata, FetchedMetadata>, FetchError> {
        if let Some(route) = self.route_of(module) {
            return self.routed_metadata(route, module, version).await;
        }
        if let Some((native, _)) = self.native_for(module, version.as_str()) {
            let (m, v) = (module.clone(), version.clone());
            let what = format!(
                "GET {module}@{version}.info and .mod from {}",
                native.proxy()
            );
            let fetched = self
                .within_deadline(what.clone(), native.metadata_early(&m, &v, false))
                .await?;
            if let Some((files, checks)) = fetched {
                let early = EarlyMetadata {
                    version: version.to_string(),
                    go_mod: files.go_mod,
                };
                let answered = early.go_mod.clone();
                let checks = async move {
                    if let Some(metadata) = self.within_deadline(what, checks).await? {
                        return Ok(FetchedMetadata {
                            version: v.as_str().to_string(),
                            info: metadata.info.clone(),
                            go_mod: metadata.go_mod.clone(),
                        });
                    }
                    // The database did not answer Ferry plainly: the go command fetches and verifies the
                    // files, and the go.mod already answered must be the one it got.
                    let by_go = self.metadata_with_go(m.as_str(), v.as_str()).await?;
                    if by_go.go_mod != answered {
                        return Err(FetchError::Upstream {
                            message: format!(
                                "{m}@{v}: the upstream's go.mod differs from what the go command fetched and verified"
                            ),
                        });
                    }
                    Ok(by_go)
                };
                return Ok(Unverified {
                    early,
                    checks: checks.boxed(),
                    checked: false,
                });
            }
        }
        let fetched = self
            .metadata_with_go(module.as_str(), version.as_str())
            .await?;
        let early = EarlyMetadata {
            version: fetched.version.clone(),
            go_mod: fetched.go_mod.clone(),
        };
        Ok(Unverified::checked(early, fetched))
    }

    /// The `.info` and `.mod` with `go list -m -json`, which downloads (and checks) those two files only,
    /// where `go mod download` would fetch, hash and extract the zip too.
    async fn metadata_with_go(
        &self,
        module: &str,
        version: &str,
    ) -> Result<FetchedMetadata, FetchError> {
        self.metadata_with_go_via(module, version, None).await
    }

    /// [`Fetcher::metadata_with_go`] with this `GOPROXY` (`direct`) instead of the configured one.
    async fn metadata_with_go_via(
        &self,
        module: &str,
        version: &str,
        goproxy: Option<&str>,
    ) -> Result<FetchedMetadata, FetchError> {
        let target = format!("{module}@{version}");
        let args = ["list", "-m", "-json", &target];
        let (scratch, output) = self.run_go_via(&args, goproxy).await?;
        let answer: go_json::ListLatest = parse_list_answer(&output)?;
        let Some(resolved) = answer.version.filter(|v| !v.is_empty()) else {
            return Err(invalid_output(format!(
                "`go list -m -json {target}` left out Version"
            )));
        };
        let go_mod = downloaded_file(&scratch, "GoMod", answer.go_mod).await?;
        let info = downloaded_file(&scratch, "Info", Some(go_mod.with_extension("info"))).await?;
        let read = |path: PathBuf| async move {
            tokio::fs::read(&path)
                .await
                .map(bytes::Bytes::from)
                .map_err(|e| FetchError::io(format!("reading {}", path.display()), e))
        };
        let (info, go_mod) = (read(info).await?, read(go_mod).await?);
        // Removed here, off no one's path but this fill's: it holds two small files.
        tokio::task::spawn_blocking(move || drop(scratch));
        Ok(FetchedMetadata {
            version: resolved,
            info,
            go_mod,
        })
    }

    /// The release and pre-release versions of `module` known upstream (`go list -m -retracted -versions`),
    /// in go's (semver) order. A module without such versions answers an empty list.
    pub async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, FetchError> {
        if let Some(route) = self.route_of(module) {
            return self.routed_list(route, module).await;
        }
        if let Some(native) = self.native_list_for(module) {
            let what = format!("GET {module}/@v/list from {}", native.proxy());
            if let Some(versions) = self.within_deadline(what, native.list(module)).await? {
                return Ok(versions);
            }
        }
        self.list_with_go_via(module, None).await
    }

    /// The list with `go list -m -versions`, with this `GOPROXY` (`direct`) instead of the configured one.
    async fn list_with_go_via(
        &self,
        module: &ModulePath,
        goproxy: Option<&str>,
    ) -> Result<Vec<Version>, FetchError> {
        let (_scratch, output) = self
            // `-retracted`: a proxy's list holds every version, as an upstream GOPROXY's does (the client hides
            // retracted ones itself). Without it go also fetches the latest version's .info and .mod to read
            // its retract directives: three upstream requests for one list.
            .run_go_via(
                &[
                    "list",
                    "-m",
                    "-retracted",
                    "-versions",
                    "-json",
                    module.as_str(),
                ],
                goproxy,
            )
            .await?;
        let answer: go_json::ListVersions = parse_list_answer(&output)?;
        // go also keeps valid but non-canonical versions (`v1.2`), which no request can name.
        Ok(answer
            .versions
            .unwrap_or_default()
            .iter()
            .filter_map(|v| Version::new(v).ok())
            .collect())
    }

    /// The version `module@latest` resolves to upstream (`go list -m -json module@latest`).
    pub async fn latest(&self, module: &ModulePath) -> Result<LatestVersion, FetchError> {
        self.resolve(module, "latest").await
    }

    /// The canonical version a query (`latest`, a branch, a tag, a commit hash, or a canonical version)
    /// resolves to upstream, with its time, via `go list -m -json module@query`: only the `.info` is
    /// fetched, so this is how a query is answered without downloading a zip that may be stored already.
    pub async fn resolve(
        &self,
        module: &ModulePath,
        query: &str,
    ) -> Result<LatestVersion, FetchError> {
        if let Some(route) = self.route_of(module) {
            return self.routed_resolve(route, module, query).await;
        }
        self.resolve_with_go_via(module, query, None).await
    }

    /// [`Fetcher::resolve`] with the go command, with this `GOPROXY` (`direct`) instead of the configured one.
    async fn resolve_with_go_via(
        &self,
        module: &ModulePath,
        query: &str,
        goproxy: Option<&str>,
    ) -> Result<LatestVersion, FetchError> {
        let target = format!("{module}@{query}");
        let args = ["list", "-m", "-json", &target];
        let (_scratch, output) = self.run_go_via(&args, goproxy).await?;
        let answer: go_json::ListLatest = parse_list_answer(&output)?;
        match (
            answer.version.filter(|v| !v.is_empty()),
            answer.time.filter(|t| !t.is_empty()),
        ) {
            (Some(version), Some(time)) => Ok(LatestVersion {
                version,
                time,
                origin: answer.origin,
            }),
            _ => Err(invalid_output(format!(
                "`go list -m -json {target}` left out Version or Time"
            ))),
        }
    }

    /// Runs `go version` (at start-up) and returns its answer without the `go version ` prefix.
    async fn check_go(&self) -> Result<String, FetchError> {
        let go_missing = |reason: String| FetchError::GoMissing {
            path: self.inner.config.go_binary.clone(),
            reason,
        };
        let (_scratch, output) = self.run_go(&["version"]).await.map_err(|e| match e {
            FetchError::GoMissing { .. } => e,
            other => go_missing(other.to_string()),
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(go_missing(format!(
                "`go version` failed: {}",
                error::clean_message(&output.stderr_text())
            )));
        }
        match stdout.trim().strip_prefix("go version ") {
            Some(version) => Ok(version.to_owned()),
            None => Err(go_missing(format!(
                "`go version` answered {:?}, which is not go",
                stdout.trim()
            ))),
        }
    }

    /// Waits for a slot, then runs `go args` in a fresh temporary directory under the deadline.
    /// The directory is handed back with the output, since go's answer may name files in it.
    async fn run_go(&self, args: &[&str]) -> Result<(ScratchDir, GoOutput), FetchError> {
        self.run_go_via(args, None).await
    }

    /// [`Fetcher::run_go`], with `GOPROXY` set to `goproxy` when given (a table's `direct` step).
    async fn run_go_via(
        &self,
        args: &[&str],
        goproxy: Option<&str>,
    ) -> Result<(ScratchDir, GoOutput), FetchError> {
        let config = &self.inner.config;
        // Held until the command has ended (or its future is dropped).
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let scratch = ScratchDir::create(self.inner.work_dir.path())?;
        let mut env = config.go_command_env(scratch.layout());
        if let Some(goproxy) = goproxy {
            env.insert("GOPROXY".to_owned(), goproxy.to_owned());
        }
        scratch.link_netrc(&env);
        // The go command carries no trace context to the upstream: its span says how long it took.
        let span = tracing::info_span!(
            target: http::SPAN_TARGET,
            "go command",
            otel.kind = "client",
            process.command_args = args.join(" "),
        );
        let run = command::run_go(
            &config.go_binary,
            args,
            &scratch.layout().cwd,
            &env,
            config.timeout,
            config.max_output_bytes,
        );
        let output = tracing::Instrument::instrument(run, span).await?;
        Ok((scratch, output))
    }
}

/// Parses the answer of `go list -m -json`: without `-e`, go reports errors on stderr only, but
/// its JSON `Error` is honoured as well.
fn parse_list_answer<T: go_json::ListAnswer>(output: &GoOutput) -> Result<T, FetchError> {
    if !output.status.success() {
        let from_json = go_json::first_object::<T>(&output.stdout)
            .and_then(Result::ok)
            .and_then(|a| a.error_message());
        return Err(FetchError::from_go_message(
            &from_json.unwrap_or_else(|| output.stderr_text()),
        ));
    }
    let answer: T = match go_json::first_object(&output.stdout) {
        Some(Ok(answer)) => answer,
        Some(Err(e)) => {
            return Err(invalid_output(format!(
                "`go list` printed invalid JSON: {e}"
            )));
        }
        None => return Err(invalid_output("`go list` printed nothing".to_owned())),
    };
    match answer.error_message() {
        Some(message) => Err(FetchError::from_go_message(&message)),
        None => Ok(answer),
    }
}

/// Checks that go's `field` names a regular file inside this command's own temporary directory.
async fn downloaded_file(
    scratch: &ScratchDir,
    field: &str,
    path: Option<PathBuf>,
) -> Result<PathBuf, FetchError> {
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return Err(invalid_output(format!(
            "`go mod download` left out {field}"
        )));
    };
    if !scratch.contains(&path) {
        return Err(invalid_output(format!(
            "{field} {} is outside the temporary directory",
            path.display()
        )));
    }
    match tokio::fs::symlink_metadata(&path).await {
        Ok(metadata) if metadata.is_file() => Ok(path),
        Ok(_) => Err(invalid_output(format!(
            "{field} {} is not a file",
            path.display()
        ))),
        Err(e) => Err(invalid_output(format!(
            "{field} {} cannot be read: {e}",
            path.display()
        ))),
    }
}

fn invalid_output(message: String) -> FetchError {
    FetchError::InvalidOutput { message }
}
