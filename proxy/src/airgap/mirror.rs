//! `ferry mirror`: a project's whole module graph filled into the store through the normal, verified fill
//! path. Ferry is built from the configuration `ferry serve` uses and serves on a loopback port of its own
//! for the run; the go command resolves each go.mod through it (so every go.mod it reads is filled, and
//! checked against the checksum database, as a builder's request would be), then each version of the build
//! list is asked of it, a bounded number at once. Going through Ferry's own HTTP path rather than its
//! `Filler` keeps everything a request does (the download policy, blocks, single flight, the ledger) in
//! the mirror too; the zip bytes read back over loopback are the progress bar's measure. Versions stored
//! already are not asked again, so an interrupted mirror resumes where it stopped.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_fetcher::{ModuleVersion, resolve_graph};
use ferry_module::{ModulePath, Version};
use ferry_storage::ModuleStoreExt;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

use super::AirgapError;
use crate::{Config, Proxy, ServerSettings};

/// The module of Go toolchains.
const TOOLCHAIN: &str = "golang.org/toolchain";

/// What to mirror.
#[derive(Debug, Clone, Default)]
pub struct MirrorRequest {
    /// go.mod files (or directories holding one), go.sum files, `MODULE@VERSION`s (a query is resolved).
    pub inputs: Vec<String>,
    /// Each `MODULE@VERSION` with its whole graph (what a module requiring it builds with), not alone.
    pub all: bool,
    /// Go versions (`go1.22.3`) whose toolchains to add, for each of `platforms` (`GOOS/GOARCH`).
    pub toolchains: Vec<String>,
    pub platforms: Vec<String>,
    /// Versions asked at once.
    pub jobs: usize,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// What a mirror did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorSummary {
    /// Versions in the graph (zips and go.mod-only versions).
    pub versions: usize,
    /// Versions filled now.
    pub filled: usize,
    /// Versions the store held already.
    pub already: usize,
    /// Zip bytes filled now.
    pub bytes: u64,
    /// `MODULE@VERSION: why`, for each version that could not be filled.
    pub failed: Vec<String>,
    pub elapsed: Duration,
}

/// What the graph needs: versions with their zips, and versions whose go.mod only is read.
#[derive(Debug, Default)]
struct Work {
    zips: BTreeSet<ModuleVersion>,
    go_mods: BTreeSet<ModuleVersion>,
}

/// Resolves the inputs and fills the store; each version that fails is named in the summary.
pub async fn mirror(
    config: &Config,
    request: &MirrorRequest,
) -> Result<MirrorSummary, AirgapError> {
    if !config.policy.fetches() {
        return Err(AirgapError::new(
            "the download policy never fetches (mode none): ferry mirror fills the store through it; run it with a policy that fetches, e.g. FERRY_DOWNLOAD_MODE=sync",
        ));
    }
    // The mirror fills exactly the graph the go command resolves: fetching requirements ahead would add
    // versions outside the pruned graph to the store (and the bundle) and race the mirror's own fills.
    let config = &Config {
        prefetch: crate::prefetch::PrefetchSettings {
            depth: 0,
            ..config.prefetch.clone()
        },
        ..config.clone()
    };
    let proxy = crate::build_proxy(config)
        .await
        .map_err(|e| AirgapError::new(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| AirgapError::new(format!("cannot listen on 127.0.0.1 for the mirror: {e}")))?;
    let base = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| AirgapError::new(e.to_string()))?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::run(
        listener,
        proxy.clone(),
        ServerSettings::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let started = Instant::now();
    let mirrored = async {
        let work = resolve(config, &base, request).await?;
        Ok::<_, AirgapError>(fill(&proxy, &base, work, request).await)
    }
    .await;
    // Fills still storing finish first; then the server stops, its ledger writing what they recorded.
    proxy.drain(Duration::from_secs(30)).await;
    let _ = stop.send(());
    let _ = server.await;
    mirrored.map(|summary| MirrorSummary {
        elapsed: started.elapsed(),
        ..summary
    })
}

/// The versions every input brings.
async fn resolve(
    config: &Config,
    base: &str,
    request: &MirrorRequest,
) -> Result<Work, AirgapError> {
    let mut work = Work::default();
    let client = ferry_fetcher::https_client(ferry_fetcher::CONNECT_TIMEOUT);
    for input in &request.inputs {
        let path = Path::new(input);
        if input.ends_with("go.sum") {
            let text = read(path)?;
            go_sum_versions(&String::from_utf8_lossy(&text), &mut work);
        } else if input.ends_with("go.mod") || path.is_dir() {
            let go_mod_path = if path.is_dir() {
                path.join("go.mod")
            } else {
                path.to_path_buf()
            };
            let go_mod = without_directory_replacements(&read(&go_mod_path)?);
            let go_sum = std::fs::read(go_mod_path.with_file_name("go.sum")).ok();
            graph(config, base, &go_mod, go_sum.as_deref(), input, &mut work).await?;
        } else if input.contains('@') {
            let (module, version) = canonical(&client, base, input).await?;
            if request.all {
                let go_mod = format!("module ferry.invalid/mirror\n\nrequire {module} {version}\n");
                graph(config, base, go_mod.as_bytes(), None, input, &mut work).await?;
            }
            work.zips
                .insert((module.as_str().to_string(), version.as_str().to_string()));
        } else {
            return Err(AirgapError::new(format!(
                "{input:?} is neither a go.mod or go.sum file, a directory with a go.mod, nor MODULE@VERSION"
            )));
        }
    }
    for toolchain in &request.toolchains {
        let go = format!("go{}", toolchain.trim_start_matches("go"));
        for platform in &request.platforms {
            let platform = platform.replace('/', "-");
            work.zips
                .insert((TOOLCHAIN.to_string(), format!("v0.0.1-{go}.{platform}")));
        }
    }
    work.go_mods.retain(|version| !work.zips.contains(version));
    Ok(work)
}

fn read(path: &Path) -> Result<Vec<u8>, AirgapError> {
    std::fs::read(path).map_err(|e| AirgapError::new(format!("reading {}: {e}", path.display())))
}

/// The graph of a go.mod, resolved by the go command through this Ferry.
async fn graph(
    config: &Config,
    base: &str,
    go_mod: &[u8],
    go_sum: Option<&[u8]>,
    input: &str,
    work: &mut Work,
) -> Result<(), AirgapError> {
    let graph = resolve_graph(&config.fetcher, base, go_mod, go_sum)
        .await
        .map_err(|e| AirgapError::new(format!("{input}: resolving its module graph: {e}")))?;
    work.zips.extend(graph.build_list);
    work.go_mods.extend(graph.go_mods);
    Ok(())
}

/// The go.mod without its replacements by a directory (`=> ../fork`): the scratch module the go command
/// resolves it in has no such directory, and what is there is not a module version to mirror.
fn without_directory_replacements(go_mod: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(go_mod);
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let target = line
                .split_once("=>")
                .map_or("", |(_, target)| target.trim());
            !(target.starts_with("./") || target.starts_with("../") || target.starts_with('/'))
        })
        .collect();
    (kept.join("\n") + "\n").into_bytes()
}

/// Every version a go.sum lists: `MODULE VERSION h1:` (its zip) and `MODULE VERSION/go.mod h1:`.
fn go_sum_versions(text: &str, work: &mut Work) {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(module), Some(version)) = (fields.next(), fields.next()) else {
            continue;
        };
        match version.strip_suffix("/go.mod") {
            Some(version) => work
                .go_mods
                .insert((module.to_string(), version.to_string())),
            None => work.zips.insert((module.to_string(), version.to_string())),
        };
    }
}

/// `MODULE@QUERY` as a canonical version: a query (`latest`, a branch) is resolved by Ferry's `.info`.
async fn canonical(
    client: &ferry_fetcher::HttpsClient,
    base: &str,
    input: &str,
) -> Result<(ModulePath, Version), AirgapError> {
    let (module, query) = input.rsplit_once('@').expect("has @");
    let module = ModulePath::new(module).map_err(|e| AirgapError::new(format!("{input}: {e}")))?;
    if let Ok(version) = Version::new(query) {
        return Ok((module, version));
    }
    let url = format!(
        "{base}/{}/@v/{}.info",
        module.escaped(),
        ferry_module::escape(query)
    );
    let (status, body) = get(client, &url, None).await;
    let said = String::from_utf8_lossy(&body);
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Info {
        version: String,
    }
    let info: Info = match status {
        200 => serde_json::from_slice(&body)
            .map_err(|e| AirgapError::new(format!("{input}: the .info is not JSON: {e}")))?,
        _ => {
            return Err(AirgapError::new(format!(
                "{input}: {status}: {}",
                said.trim()
            )));
        }
    };
    let version =
        Version::new(&info.version).map_err(|e| AirgapError::new(format!("{input}: {e}")))?;
    Ok((module, version))
}

/// GETs `url`; the status and the body (counted into `bytes` as it comes, when given).
async fn get(
    client: &ferry_fetcher::HttpsClient,
    url: &str,
    bytes: Option<&dyn Fn(u64)>,
) -> (u16, Bytes) {
    let request = http::Request::get(url)
        .body(Empty::<Bytes>::new())
        .expect("a valid request");
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(e) => return (0, Bytes::from(format!("GET {url}: {e}"))),
    };
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    // A zip is counted, not kept: only an error's text is read.
                    match (status, bytes) {
                        (200, Some(count)) => count(data.len() as u64),
                        _ => kept.extend_from_slice(data),
                    }
                }
            }
            Err(e) => {
                return (
                    0,
                    Bytes::from(format!("GET {url}: the answer was cut: {e}")),
                );
            }
        }
    }
    (status, Bytes::from(kept))
}

/// One version to fill: with its zip, or its `.info` and `.mod` only.
#[derive(Debug, Clone)]
enum Item {
    Zip(ModuleVersion),
    GoMod(ModuleVersion),
}

/// How one version went.
enum Outcome {
    Filled,
    Already,
    Failed(String),
}

/// Asks Ferry for every version, `jobs` at once, with a progress bar.
async fn fill(
    proxy: &Arc<Proxy>,
    base: &str,
    work: Work,
    request: &MirrorRequest,
) -> MirrorSummary {
    let items: Vec<Item> = work
        .zips
        .into_iter()
        .map(Item::Zip)
        .chain(work.go_mods.into_iter().map(Item::GoMod))
        .collect();
    let bar = progress_bar(items.len() as u64, request.progress);
    let bytes = AtomicU64::new(0);
    let started = Instant::now();
    let client = ferry_fetcher::https_client(ferry_fetcher::CONNECT_TIMEOUT);
    let count = |n: u64| {
        let total = bytes.fetch_add(n, Ordering::Relaxed) + n;
        let rate = total as f64 / started.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!(
            "{} at {}/s",
            HumanBytes(total),
            HumanBytes(rate as u64)
        ));
    };
    let outcomes: Vec<(Item, Outcome)> = futures::stream::iter(items)
        .map(|item| {
            let (client, bar, count) = (&client, &bar, &count);
            async move {
                let outcome = fill_one(proxy, client, base, &item, count).await;
                bar.inc(1);
                (item, outcome)
            }
        })
        .buffer_unordered(request.jobs.max(1))
        .collect()
        .await;
    bar.finish();
    let mut summary = MirrorSummary {
        versions: outcomes.len(),
        bytes: bytes.load(Ordering::Relaxed),
        ..MirrorSummary::default()
    };
    for (item, outcome) in outcomes {
        match outcome {
            Outcome::Filled => summary.filled += 1,
            Outcome::Already => summary.already += 1,
            Outcome::Failed(why) => {
                let (Item::Zip((m, v)) | Item::GoMod((m, v))) = item;
                summary.failed.push(format!("{m}@{v}: {why}"));
            }
        }
    }
    summary.failed.sort();
    summary
}

fn progress_bar(len: u64, shown: bool) -> ProgressBar {
    if !shown {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} versions, {msg}, ETA {eta}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message("0 B");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// One version: skipped when stored, else its zip (or `.info`) asked of Ferry, which fills it.
async fn fill_one(
    proxy: &Arc<Proxy>,
    client: &ferry_fetcher::HttpsClient,
    base: &str,
    item: &Item,
    count: &dyn Fn(u64),
) -> Outcome {
    let (Item::Zip((module, version)) | Item::GoMod((module, version))) = item;
    let (module, version) = match (ModulePath::new(module), Version::new(version)) {
        (Ok(m), Ok(v)) => (m, v),
        (Err(e), _) | (_, Err(e)) => return Outcome::Failed(e.to_string()),
    };
    let (stored, extension) = match item {
        Item::Zip(_) => (proxy.store().has_zip(&module, &version).await, "zip"),
        Item::GoMod(_) => (proxy.store().exists(&module, &version).await, "info"),
    };
    match stored {
        Ok(true) => return Outcome::Already,
        Ok(false) => {}
        Err(e) => return Outcome::Failed(format!("reading the store: {e}")),
    }
    let url = format!(
        "{base}/{}/@v/{}.{extension}",
        module.escaped(),
        version.escaped()
    );
    match get(client, &url, Some(count)).await {
        (200, _) => Outcome::Filled,
        (0, said) => Outcome::Failed(String::from_utf8_lossy(&said).into_owned()),
        (status, said) => {
            let said = String::from_utf8_lossy(&said);
            Outcome::Failed(format!(
                "{status}: {}",
                said.lines().take(3).collect::<Vec<_>>().join(" ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_by_a_directory_are_left_out_of_the_scratch_module() {
        let go_mod = b"module app\n\nrequire example.com/a v1.0.0\n\nreplace example.com/a => ../a\n\nreplace (\n\texample.com/b => example.com/fork v1.0.0\n\texample.com/c v1.0.0 => ./c\n)\n";
        let kept = String::from_utf8(without_directory_replacements(go_mod)).unwrap();
        assert!(!kept.contains("../a") && !kept.contains("./c"), "{kept}");
        assert!(
            kept.contains("example.com/b => example.com/fork v1.0.0"),
            "{kept}"
        );
    }

    #[test]
    fn a_go_sum_lists_zips_and_go_mods() {
        let mut work = Work::default();
        go_sum_versions(
            "example.com/a v1.0.0 h1:x=\nexample.com/a v1.0.0/go.mod h1:y=\nexample.com/b v0.1.0/go.mod h1:z=\n",
            &mut work,
        );
        assert_eq!(work.zips.len(), 1);
        assert_eq!(work.go_mods.len(), 2);
    }
}
