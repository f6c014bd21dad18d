//! A canonical version fetched straight from a GOPROXY upstream over HTTP, without the go command, and held
//! to the go command's integrity: the zip checked as a module zip of that path and version, and, where a
//! checksum database applies (`GOSUMDB`, `GONOSUMDB`, `GOPRIVATE`), its `h1:` hashes verified against the
//! database's signed tree (`ferry-sumdb`). `go mod download` does the same work and then extracts every
//! zip into a module cache that Ferry throws away: a 45 MB module took 1.9 s through it and 0.19 s over
//! HTTP from the same upstream (issue 11).
//!
//! Used when the first entry of the effective `GOPROXY` is an `http(s)://` URL and the module is not
//! matched by `GONOPROXY`; anything the upstream does not answer plainly (a miss, a refusal, a 5xx, a
//! database that cannot be reached) is left to the go command, which walks the whole `GOPROXY` list and
//! reports the failure in its own words. A hash that differs from the database's is not: it is an error.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_sumdb::{SumdbError, VerifierKey};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

use crate::error::FetchError;
use crate::growing::ZipTap;
use crate::http::{Got, HttpsClient, error_chain, get_following, get_with, send};
use crate::sumdb_route::{SumdbRoutes, known_key};
use crate::zip_check::check_module_zip;

/// go's own limits (`golang.org/x/mod/zip`): a module zip of at most 500 MiB, a go.mod of at most 16 MiB.
const MAX_ZIP: u64 = ferry_module::MAX_ZIP_FILE;
const MAX_GO_MOD: usize = ferry_module::MAX_GO_MOD as usize;
/// A `.info` is a small JSON object.
const MAX_INFO: usize = 64 << 10;
/// An `@v/list`: the longest real ones hold a few thousand versions (tens of KiB). The go command reads a
/// list whole, without a bound: a `go list` child took 363 MB for a list of one 100 MB line (issue 19).
const MAX_LIST: usize = 4 << 20;

/// The go settings that decide how a module is fetched, as `go env` reports them for Ferry's go.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE", default)]
pub(crate) struct GoSettings {
    pub goproxy: String,
    pub gosumdb: String,
    pub gonosumdb: String,
    pub goprivate: String,
    pub gonoproxy: String,
    pub goroot: String,
}

impl GoSettings {
    /// The arguments of `go env -json` that print these settings.
    pub const NAMES: [&'static str; 6] = [
        "GOPROXY",
        "GOSUMDB",
        "GONOSUMDB",
        "GOPRIVATE",
        "GONOPROXY",
        "GOROOT",
    ];
}

/// Fetches from one GOPROXY upstream over HTTP, verifying against one checksum database (or none).
pub(crate) struct Native {
    client: HttpsClient,
    /// The upstream's base URL, without a trailing `/`.
    proxy: String,
    /// The checksum database verified against (its name), by its verifier in `routes`.
    sumdb: Option<String>,
    routes: Arc<SumdbRoutes>,
    settings: GoSettings,
    /// The metadata of the latest versions fetched: the go command asks for a version's `.mod`, then, a
    /// moment later, for its zip; that zip's fill needs the same `.info`, `.mod` and checksum lines.
    recent: Mutex<Recent>,
    /// Set for a step of an `[[upstreams]]` table: then every answer but a plain 200 or a 404/410 is an
    /// error naming the step (no go command is asked behind it), and its credentials go with each request.
    via: Option<Via>,
}

/// A step of an `[[upstreams]]` table, as the native fetcher reaching it knows it.
pub(crate) struct Via {
    /// The table's name (`corp`, or `corp#2` for its second URL): messages and metrics say this, never
    /// the URL.
    pub label: String,
    /// Sent to this URL only (built by the configuration for this URL's host).
    pub authorization: Option<http::HeaderValue>,
}

/// Metadata kept for the zip fill that often follows, the oldest dropped past the bounds.
#[derive(Default)]
struct Recent {
    by_version: HashMap<(String, String), Arc<Metadata>>,
    order: VecDeque<(String, String)>,
    bytes: usize,
}

/// Versions and bytes (`.info` + `.mod`) of metadata kept.
const RECENT_VERSIONS: usize = 4096;
const RECENT_BYTES: usize = 16 << 20;

impl Recent {
    fn get(&self, key: &(String, String)) -> Option<Arc<Metadata>> {
        self.by_version.get(key).cloned()
    }

    fn keep(&mut self, key: (String, String), metadata: Arc<Metadata>) {
        let size = metadata.info.len() + metadata.go_mod.len();
        if size > RECENT_BYTES || self.by_version.contains_key(&key) {
            return;
        }
        while self.order.len() >= RECENT_VERSIONS || self.bytes + size > RECENT_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.by_version.remove(&old) {
                self.bytes -= gone.info.len() + gone.go_mod.len();
            }
        }
        self.bytes += size;
        self.order.push_back(key.clone());
        self.by_version.insert(key, metadata);
    }
}

impl Native {
    /// The native fetcher for these settings, or why there is none (the log says it; the go command then
    /// fetches everything).
    pub(crate) fn new(
        settings: GoSettings,
        client: HttpsClient,
        routes: Arc<SumdbRoutes>,
    ) -> Result<Native, String> {
        let first = settings
            .goproxy
            .split([',', '|'])
            .next()
            .unwrap_or("")
            .trim();
        if !(first.starts_with("http://") || first.starts_with("https://")) {
            return Err(format!("GOPROXY starts with {first:?}, not a proxy URL"));
        }
        let proxy = first.trim_end_matches('/').to_string();
        let authority = proxy.split("://").nth(1).unwrap_or("").split('/').next();
        if authority.is_some_and(|a| a.contains('@')) {
            return Err(
                "the GOPROXY URL carries credentials, which only the go command sends".into(),
            );
        }
        let sumdb = match settings.gosumdb.trim() {
            "off" => None,
            gosumdb => Some(sumdb_name(gosumdb, &settings.goroot, &routes)?),
        };
        Ok(Native {
            client,
            proxy,
            sumdb,
            routes,
            settings,
            recent: Mutex::default(),
            via: None,
        })
    }

    /// The native fetcher of one URL of an `[[upstreams]]` table: `settings` are the default upstream's
    /// (the same checksum database and private patterns), its proxy this URL.
    pub(crate) fn routed(
        url: &str,
        via: Via,
        mut settings: GoSettings,
        client: HttpsClient,
        routes: Arc<SumdbRoutes>,
    ) -> Result<Native, String> {
        settings.goproxy = url.to_string();
        let mut native = Native::new(settings, client, routes)?;
        native.via = Some(via);
        Ok(native)
    }

    /// The `[[upstreams]]` step this fetcher is, if it is one.
    pub(crate) fn label(&self) -> Option<&str> {
        self.via.as_ref().map(|via| via.label.as_str())
    }

    /// A GET of one of the upstream's files: a routed step follows redirects and sends its credentials.
    async fn get(&self, url: &str, limit: usize) -> Got {
        match &self.via {
            Some(via) => get_following(&self.client, url, limit, via.authorization.as_ref()).await,
            None => get_with(&self.client, url, limit, None).await,
        }
    }

    fn authorization(&self) -> Option<&http::HeaderValue> {
        self.via.as_ref()?.authorization.as_ref()
    }

    /// A routed step's failure, named by its label: the URL (which may name an internal host) is left out.
    fn failure(&self, label: &str, reason: &str) -> FetchError {
        FetchError::Upstream {
            message: format!("upstream {label}: {}", reason.replace(&self.proxy, "")),
        }
    }

    /// The upstream's base URL.
    pub(crate) fn proxy(&self) -> &str {
        &self.proxy
    }

    /// The checksum database verified against, if any.
    pub(crate) fn sumdb(&self) -> Option<&str> {
        self.sumdb.as_deref()
    }

    /// Whether this module is fetched through the proxy at all (`GONOPROXY`, which defaults to `GOPRIVATE`).
    pub(crate) fn handles(&self, module: &str) -> bool {
        if self.via.is_some() {
            return true;
        }
        let noproxy = match self.settings.gonoproxy.as_str() {
            "" => &self.settings.goprivate,
            set => set,
        };
        !ferry_sumdb::match_prefix_patterns(noproxy, module)
    }

    /// The version's `.mod` as soon as it is downloaded (and its `.info` too when `with_info`), and the
    /// checks still to come: the `.info` naming the version, and the checksum database's word on the
    /// go.mod's hash, asked while the files download. A lookup and a tile the database has not served
    /// lately take 30–200 ms, and the upstream may take 100 ms for the `.info` of a version nobody
    /// downloads, against 1–2 ms for a `.mod` (`go mod download -x`, `curl -w`; issue 11). The checks end
    /// with the metadata (kept for the zip fill that usually follows), or `None` when the upstream or the
    /// database did not answer plainly; `None` at once when the upstream did not answer the `.mod` (or a
    /// `.info` waited for) plainly: the go command is asked then.
    pub(crate) async fn metadata_early<'a>(
        &'a self,
        module: &ModulePath,
        version: &Version,
        with_info: bool,
    ) -> Result<Option<(Files, MetadataChecks<'a>)>, FetchError> {
        let key = (module.as_str().to_string(), version.as_str().to_string());
        if let Some(kept) = self.recent.lock().unwrap().get(&key) {
            let files = Files {
                info: Some(kept.info.clone()),
                go_mod: kept.go_mod.clone(),
            };
            return Ok(Some((
                files,
                futures::future::ready(Ok(Some(kept))).boxed(),
            )));
        }
        let base = format!(
            "{}/{}/@v/{}",
            self.proxy,
            module.escaped(),
            version.escaped()
        );
        let (m, v) = (module.clone(), version.clone());
        let mut lookup = async move { self.lookup(&m, &v).await }.boxed();
        let mut info_download = self.file(format!("{base}.info"), MAX_INFO).boxed();
        let mut mod_download = self.file(format!("{base}.mod"), MAX_GO_MOD).boxed();
        let (mut looked_up, mut info, mut go_mod) = (None, None, None);
        while go_mod.is_none() || (with_info && info.is_none()) {
            tokio::select! {
                got = &mut mod_download, if go_mod.is_none() => go_mod = Some(got),
                got = &mut info_download, if info.is_none() => info = Some(got),
                sums = &mut lookup, if looked_up.is_none() => looked_up = Some(sums),
            }
        }
        let Some(go_mod) = go_mod.expect("downloaded")? else {
            return Ok(None);
        };
        let info = match info.transpose()? {
            Some(None) => return Ok(None),
            Some(Some(info)) => {
                check_info(&info, module, version)?;
                Some(info)
            }
            None => None,
        };
        let files = Files {
            info: info.clone(),
            go_mod: go_mod.clone(),
        };
        let (m, v) = (module.clone(), version.clone());
        let checks = async move {
            let info = match info {
                Some(info) => info,
                None => match info_download.await? {
                    Some(info) => {
                        check_info(&info, &m, &v)?;
                        info
                    }
                    None => return Ok(None),
                },
            };
            let sums = match looked_up {
                Some(sums) => sums,
                None => lookup.await,
            };
            let Some(sums) = sums? else {
                return Ok(None);
            };
            sums.check(&m, &v, "go.mod", &ferry_sumdb::hash_go_mod(&go_mod))?;
            let metadata = Arc::new(Metadata { info, go_mod, sums });
            self.recent.lock().unwrap().keep(key, metadata.clone());
            Ok(Some(metadata))
        }
        .boxed();
        Ok(Some((files, checks)))
    }

    /// Streams the version's zip into `zip` (a new file); its size, or `None` when the upstream did not
    /// answer it plainly. Nothing is checked yet: see [`Native::verify_zip`]. `tap` is told of the bytes as
    /// they land.
    pub(crate) async fn download_zip(
        &self,
        module: &ModulePath,
        version: &Version,
        zip: &Path,
        tap: Option<&ZipTap<'_>>,
    ) -> Result<Option<u64>, FetchError> {
        let url = format!(
            "{}/{}/@v/{}.zip",
            self.proxy,
            module.escaped(),
            version.escaped()
        );
        self.download(&url, zip, tap).await
    }

    /// Checks a downloaded zip as a module zip of this version whose go.mod is the metadata's, and its hash
    /// against the database's lines; returns its `h1:` hash.
    pub(crate) async fn verify_zip(
        &self,
        module: &ModulePath,
        version: &Version,
        metadata: &Metadata,
        zip: &Path,
    ) -> Result<String, FetchError> {
        let zip_h1 = hash_module_zip(module, version, &metadata.go_mod, zip).await?;
        metadata.sums.check(module, version, "zip", &zip_h1)?;
        Ok(zip_h1)
    }

    /// The checksum database's lines for the version, when one applies to the module; `None` when the
    /// database could not answer (the go command is asked then).
    async fn lookup(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Option<Sums>, FetchError> {
        let Some(sumdb) = self
            .sumdb
            .as_ref()
            .and_then(|name| self.routes.verifier(name))
        else {
            return Ok(Some(Sums::Unchecked));
        };
        let s = &self.settings;
        if !ferry_sumdb::sumdb_applies(module.as_str(), &s.gonosumdb, &s.goprivate, false) {
            return Ok(Some(Sums::Unchecked));
        }
        let span = tracing::info_span!(
            target: crate::http::SPAN_TARGET,
            "sumdb lookup",
            sumdb = sumdb.key().name(),
            module = module.as_str(),
            version = version.as_str(),
        );
        let looked_up = sumdb.lookup(module.as_str(), version.as_str());
        match tracing::Instrument::instrument(looked_up, span).await {
            Ok(lines) => Ok(Some(Sums::Lines {
                database: sumdb.key().name().to_string(),
                lines,
            })),
            Err(SumdbError::Security(message)) => Err(FetchError::Upstream {
                message: format!("verifying {module}@{version}: {message}"),
            }),
            Err(e) => match self.label() {
                Some(label) => Err(FetchError::Upstream {
                    message: format!(
                        "upstream {label}: verifying {module}@{version}: the checksum database did not answer: {e}"
                    ),
                }),
                None => {
                    tracing::debug!(%module, %version, error = %e, "checksum database not usable natively; asking the go command");
                    Ok(None)
                }
            },
        }
    }

    pub(crate) async fn file(
        &self,
        url: String,
        limit: usize,
    ) -> Result<Option<Bytes>, FetchError> {
        match self.get(&url, limit).await {
            Got::Body(body) => Ok(Some(body)),
            Got::Missing => Ok(None),
            Got::Loop => Err(self.loop_error()),
            Got::TooLarge(reason) | Got::Failed(reason) if self.via.is_some() => {
                Err(self.failure(self.label().unwrap_or_default(), &reason))
            }
            Got::TooLarge(reason) | Got::Failed(reason) => {
                tracing::debug!(%reason, "upstream file not fetched natively; asking the go command");
                Ok(None)
            }
        }
    }

    /// The versions the upstream's `@v/list` holds, as `go list -m -retracted -versions` gives them from a
    /// GOPROXY (`modfetch.proxyRepo.Versions`): each line's first field when it is a canonical
    /// semantic version and not a pseudo-version, in semver order; `None` when the upstream did
    /// not answer it plainly (the go command is asked then: it knows what comes after the first GOPROXY
    /// entry). A list larger than [`MAX_LIST`] is refused, not handed to a go command that would read it
    /// whole.
    pub(crate) async fn list(
        &self,
        module: &ModulePath,
    ) -> Result<Option<Vec<Version>>, FetchError> {
        let url = format!("{}/{}/@v/list", self.proxy, module.escaped());
        let body = match self.get(&url, MAX_LIST).await {
            Got::Body(body) => body,
            Got::Loop => return Err(self.loop_error()),
            Got::TooLarge(reason) => {
                tracing::warn!(%module, %reason, "the upstream's version list is too large");
                return Err(FetchError::Upstream {
                    message: format!(
                        "the upstream's version list of {module} is too large (more than {MAX_LIST} bytes)"
                    ),
                });
            }
            Got::Failed(reason) if self.via.is_some() => {
                return Err(self.failure(self.label().unwrap_or_default(), &reason));
            }
            Got::Missing | Got::Failed(_) => return Ok(None),
        };
        let mut versions: Vec<Version> = String::from_utf8_lossy(&body)
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter_map(|field| Version::new(field).ok())
            .filter(|version| !version.is_pseudo())
            .collect();
        versions.sort();
        Ok(Some(versions))
    }

    /// The upstream answered the fill's own token: it is this Ferry. Not left to the go command, whose
    /// request would join the very fill that waits for it.
    fn loop_error(&self) -> FetchError {
        FetchError::Upstream {
            message: format!(
                "the upstream {} leads back to this Ferry (it answered this fill's own request); set the upstream in [fetcher] go_env GOPROXY",
                self.label().unwrap_or(&self.proxy)
            ),
        }
    }

    /// Streams `url` into the new file `to`; its size, or `None` when the upstream did not answer 200.
    async fn download(
        &self,
        url: &str,
        to: &Path,
        tap: Option<&ZipTap<'_>>,
    ) -> Result<Option<u64>, FetchError> {
        let uri: http::Uri = url.parse().map_err(|e| FetchError::InvalidOutput {
            message: format!("{url}: {e}"),
        })?;
        let span = crate::http::get_span(&uri);
        tracing::Instrument::instrument(self.download_in_span(url, to, tap), span).await
    }

    /// [`Native::download`], in its span.
    async fn download_in_span(
        &self,
        url: &str,
        to: &Path,
        tap: Option<&ZipTap<'_>>,
    ) -> Result<Option<u64>, FetchError> {
        // A routed step follows redirects (a zip sent to a blob store), its credentials kept to its host.
        let sent = send(&self.client, url, self.authorization(), self.via.is_some()).await;
        if let Ok(response) = &sent {
            tracing::Span::current()
                .record("http.response.status_code", response.status().as_u16());
        }
        let response = match sent {
            Ok(response) if response.status() == http::StatusCode::OK => response,
            Ok(response) if response.status() == http::StatusCode::LOOP_DETECTED => {
                return Err(self.loop_error());
            }
            Ok(response) if matches!(response.status().as_u16(), 404 | 410) => return Ok(None),
            Ok(response) if self.via.is_some() => {
                let reason = format!("GET {url}: {}", response.status().as_u16());
                return Err(self.failure(self.label().unwrap_or_default(), &reason));
            }
            Err(reason) if self.via.is_some() => {
                return Err(self.failure(self.label().unwrap_or_default(), &reason));
            }
            Ok(response) => {
                tracing::debug!(%url, status = %response.status(), "zip not fetched natively; asking the go command");
                return Ok(None);
            }
            Err(reason) => {
                tracing::debug!(%url, error = %reason, "zip not fetched natively; asking the go command");
                return Ok(None);
            }
        };
        // A routed step's messages name it, not its URL.
        let shown = self.label().map_or_else(
            || url.to_string(),
            |label| format!("the zip of upstream {label}"),
        );
        let too_large = || FetchError::Upstream {
            message: format!("{shown} is larger than a module zip may be ({MAX_ZIP} bytes)"),
        };
        let expected = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        // Refused before a byte is read (or passed on to a reader).
        if expected.is_some_and(|len| len > MAX_ZIP) {
            return Err(too_large());
        }
        let local = |e: std::io::Error| FetchError::io(format!("writing {}", to.display()), e);
        let mut file = tokio::fs::File::create_new(to).await.map_err(local)?;
        let progress = match tap {
            Some(tap) => Some(tap.start(std::fs::File::open(to).map_err(local)?, expected)),
            None => None,
        };
        let body = response.into_body().into_data_stream();
        let read = |e: hyper::Error| FetchError::Upstream {
            message: format!("reading {shown}: {}", error_chain(&e)),
        };
        let len = write_zip(body, &mut file, progress.as_deref(), read, too_large, local).await?;
        Ok(Some(len))
    }
}

/// The most of a zip's bytes that have come written to its file in one write.
const WRITE_BATCH: usize = 256 << 10;

/// Writes the zip's chunks into `file` as they come, the chunks already there in one write (up to
/// [`WRITE_BATCH`]): a fast upstream costs few writes, a slow one waits for none. When tapped, each write is
/// flushed (tokio writes a file in the background) before its readers are told the bytes are there.
async fn write_zip(
    mut body: impl futures::Stream<Item = Result<Bytes, hyper::Error>> + Unpin,
    file: &mut tokio::fs::File,
    progress: Option<&tokio::sync::watch::Sender<crate::growing::ZipProgress>>,
    read: impl Fn(hyper::Error) -> FetchError,
    too_large: impl Fn() -> FetchError,
    local: impl Fn(std::io::Error) -> FetchError,
) -> Result<u64, FetchError> {
    let mut len = 0u64;
    let mut batch = bytes::BytesMut::new();
    let mut ended = false;
    while !ended {
        match body.next().await {
            Some(chunk) => batch.extend_from_slice(&chunk.map_err(&read)?),
            None => break,
        }
        while batch.len() < WRITE_BATCH {
            match body.next().now_or_never() {
                Some(Some(chunk)) => batch.extend_from_slice(&chunk.map_err(&read)?),
                Some(None) => {
                    ended = true;
                    break;
                }
                None => break,
            }
        }
        len += batch.len() as u64;
        if len > MAX_ZIP {
            return Err(too_large());
        }
        file.write_all(&batch).await.map_err(&local)?;
        batch.clear();
        if let Some(progress) = progress {
            file.flush().await.map_err(&local)?;
            progress.send_modify(|p| p.written = len);
        }
    }
    file.flush().await.map_err(&local)?;
    Ok(len)
}

/// A version's `.mod` (and `.info`, when it was waited for) as downloaded, before any check but the
/// `.info`'s naming the version.
#[derive(Clone)]
pub(crate) struct Files {
    pub info: Option<Bytes>,
    pub go_mod: Bytes,
}

/// The checks of [`Native::metadata_early`] still to come.
pub(crate) type MetadataChecks<'a> = BoxFuture<'a, Result<Option<Arc<Metadata>>, FetchError>>;

/// Checks the zip at `path` as a module zip of `module@version` with this go.mod (on a blocking thread:
/// it inflates and hashes every file) and returns its `h1:` hash.
pub(crate) async fn hash_module_zip(
    module: &ModulePath,
    version: &Version,
    go_mod: &Bytes,
    path: &Path,
) -> Result<String, FetchError> {
    let (p, m, v, expected_mod) = (
        path.to_path_buf(),
        module.as_str().to_string(),
        version.as_str().to_string(),
        go_mod.clone(),
    );
    tokio::task::spawn_blocking(move || check_module_zip(&p, &m, &v, Some(&expected_mod)))
        .await
        .map_err(|e| FetchError::InvalidOutput {
            message: format!("checking the zip of {module}@{version}: {e}"),
        })?
        .map_err(|message| FetchError::Upstream { message })
}

/// A version's `.info` and `.mod` as fetched, and what the checksum database says of it.
pub(crate) struct Metadata {
    pub info: Bytes,
    pub go_mod: Bytes,
    sums: Sums,
}

/// The checksum database's word on a version.
enum Sums {
    /// No database applies (`GOSUMDB=off`, `GONOSUMDB`, `GOPRIVATE`): nothing to check, as with go.
    Unchecked,
    /// The verified go.sum lines of the version.
    Lines {
        database: String,
        lines: Vec<String>,
    },
}

impl Sums {
    /// `what` (`zip` or `go.mod`) of the version hashes to `got`, as the database says. A mismatch is a
    /// security error worded as the go command words it.
    fn check(
        &self,
        module: &ModulePath,
        version: &Version,
        what: &str,
        got: &str,
    ) -> Result<(), FetchError> {
        let Sums::Lines { database, lines } = self else {
            return Ok(());
        };
        let name = match what {
            "go.mod" => format!("{version}/go.mod"),
            _ => version.to_string(),
        };
        let prefix = format!("{module} {name} ");
        let expected: Vec<&str> = lines
            .iter()
            .filter_map(|line| line.strip_prefix(&prefix))
            .collect();
        if expected.contains(&got) {
            return Ok(());
        }
        Err(FetchError::Upstream {
            message: format!(
                "verifying {module}@{name}: checksum mismatch\n\tdownloaded: {got}\n\t{database}: {}\n\n\
                 SECURITY ERROR\nThis download does NOT match the one reported by the checksum server.",
                if expected.is_empty() {
                    "(no hash listed)".to_string()
                } else {
                    expected.join(", ")
                }
            ),
        })
    }
}

/// The `.info` is JSON naming this very version.
fn check_info(info: &[u8], module: &ModulePath, version: &Version) -> Result<(), FetchError> {
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(rename = "Version")]
        version: String,
    }
    match serde_json::from_slice::<Info>(info) {
        Ok(info) if info.version == version.as_str() => Ok(()),
        Ok(info) => Err(FetchError::Upstream {
            message: format!(
                "the upstream's .info of {module}@{version} names version {}",
                info.version
            ),
        }),
        Err(e) => Err(FetchError::Upstream {
            message: format!("the upstream's .info of {module}@{version} is not valid: {e}"),
        }),
    }
}

/// The name of the database `GOSUMDB` (`name`, `key` or `key url`) gives, when its key is known: written
/// in it, or the go command's built-in one for a bare name, read from its `GOROOT` (so that Ferry trusts
/// what its go trusts). `routes` made its verifier from the same settings.
fn sumdb_name(gosumdb: &str, goroot: &str, routes: &SumdbRoutes) -> Result<String, String> {
    let named = gosumdb.split_whitespace().next().unwrap_or("");
    let key_text = if named.contains('+') {
        named.to_string()
    } else {
        known_key(goroot, named).ok_or_else(|| {
            format!("GOSUMDB names {named:?}, whose key the go command here does not know")
        })?
    };
    let key = VerifierKey::parse(&key_text).map_err(|e| format!("GOSUMDB: {e}"))?;
    let name = key.name().to_string();
    if routes.key(&name).is_none() {
        return Err(format!(
            "GOSUMDB names {named:?}, which the routes do not know"
        ));
    }
    Ok(name)
}

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native")
            .field("proxy", &self.proxy)
            .field("sumdb", &self.sumdb())
            .finish_non_exhaustive()
    }
}
