//! Fetching a module that an `[[upstreams]]` table serves: the table's steps in order, as the go command
//! walks `GOPROXY` (a 404/410 moves on; another error moves on only after a `|`; `off` refuses), each URL
//! fetched over HTTP with its own credentials and verified exactly as the default upstream is (`native.rs`),
//! `direct` through the go command. A version list is the union of every step's; `latest` is the go
//! command's latest of that union. Each step's outcome goes to the observer (the proxy's metrics).

use std::sync::Arc;

use ferry_module::{ModulePath, Version, latest_of};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::error::FetchError;
use crate::http::HttpsClient;
use crate::native::{GoSettings, Native, Via};
use crate::sumdb_route::SumdbRoutes;
use crate::upstreams::{Hop, UpstreamResult, UpstreamRoute};
use crate::{
    EarlyMetadata, FetchedMetadata, FetchedVersion, Fetcher, LatestVersion, NativeChecks,
    Unverified,
};

/// A `.info` is a small JSON object.
const MAX_INFO: usize = 64 << 10;

/// An `[[upstreams]]` table ready to fetch.
pub(crate) struct Route {
    pub config: UpstreamRoute,
    steps: Vec<RouteStep>,
}

struct RouteStep {
    /// The table's name, `NAME#N` past its first step.
    label: String,
    hop: RouteHop,
    on_any_error: bool,
}

enum RouteHop {
    Native(Box<Native>),
    Direct,
    Off,
}

/// The tables, each URL a native fetcher verifying as the default upstream does (`settings`).
pub(crate) fn build(
    configs: &[UpstreamRoute],
    settings: &GoSettings,
    sumdb_private: &[String],
    client: &HttpsClient,
    sumdb_routes: &Arc<SumdbRoutes>,
) -> Result<Vec<Route>, String> {
    // The modules looked up in no database: the go command's (GONOSUMDB, else GOPRIVATE) and Ferry's own.
    let mut settings = settings.clone();
    let mut private: Vec<&str> = match settings.gonosumdb.as_str() {
        "" => vec![settings.goprivate.as_str()],
        set => vec![set],
    };
    private.extend(sumdb_private.iter().map(String::as_str));
    private.retain(|p| !p.trim().is_empty());
    settings.gonosumdb = private.join(",");
    let mut routes = Vec::new();
    for config in configs {
        let mut steps = Vec::new();
        for (index, step) in config.steps.iter().enumerate() {
            let label = config.step_label(index);
            let hop = match &step.hop {
                Hop::Proxy { url, authorization } => {
                    let via = Via {
                        label: label.clone(),
                        authorization: authorization.clone(),
                    };
                    let native = Native::routed(
                        url,
                        via,
                        settings.clone(),
                        client.clone(),
                        sumdb_routes.clone(),
                    )
                    .map_err(|why| format!("upstream {label}: {why}"))?;
                    RouteHop::Native(Box::new(native))
                }
                Hop::Direct => RouteHop::Direct,
                Hop::Off => RouteHop::Off,
            };
            steps.push(RouteStep {
                label,
                hop,
                on_any_error: step.on_any_error,
            });
        }
        routes.push(Route {
            config: config.clone(),
            steps,
        });
    }
    Ok(routes)
}

/// What one step gives: `None` when it does not have it (404/410).
type Attempt<'a, T> = BoxFuture<'a, Result<Option<T>, FetchError>>;

impl Fetcher {
    /// The first table serving `module`, if any.
    pub(crate) fn route_of(&self, module: &ModulePath) -> Option<&Route> {
        let routes = &self.inner.routes;
        routes.iter().find(|r| r.config.serves(module.as_str()))
    }

    fn observe(&self, label: &str, result: UpstreamResult) {
        if let Some(observer) = &self.inner.config.upstream_observer {
            (observer.0)(label, result);
        }
    }

    /// Walks the table's steps: up to the first that has it (`all` false), or through every step,
    /// gathering each answer (`all`). An error stops the walk unless its step was written before a `|`.
    async fn walk<'a, T>(
        &'a self,
        route: &'a Route,
        what: &str,
        all: bool,
        mut attempt: impl FnMut(&'a RouteStep, &'a Native) -> Attempt<'a, T>,
        mut direct: impl FnMut() -> Attempt<'a, T>,
    ) -> Result<Vec<T>, FetchError> {
        let (mut found, mut failed) = (Vec::new(), None);
        for step in &route.steps {
            let outcome = match &step.hop {
                // Nothing is asked of it: no outcome to count.
                RouteHop::Off => {
                    if !found.is_empty() {
                        break;
                    }
                    return Err(FetchError::NotFound {
                        message: format!(
                            "{what}: upstream {} is off (proxy = \"off\"): nothing is fetched for it",
                            step.label
                        ),
                    });
                }
                RouteHop::Native(native) => attempt(step, native).await,
                RouteHop::Direct => direct().await,
            };
            match outcome {
                Ok(Some(answer)) => {
                    self.observe(&step.label, UpstreamResult::Ok);
                    found.push(answer);
                    if !all {
                        break;
                    }
                }
                Ok(None) | Err(FetchError::NotFound { .. }) => {
                    self.observe(&step.label, UpstreamResult::NotFound);
                }
                // This machine's fault is no upstream's: the answer, without counting against the step.
                Err(error) if is_local(&error) => return Err(error),
                Err(error) => {
                    self.observe(&step.label, UpstreamResult::Error);
                    tracing::warn!(upstream = %step.label, %what, %error, "upstream failed");
                    // As with the go command, a version that fails its checks is the answer: the checks
                    // run on what was fetched, after the `GOPROXY` list has been walked.
                    if !step.on_any_error || failed_its_checks(&error) {
                        return Err(error);
                    }
                    failed = Some(error);
                }
            }
        }
        match (found.is_empty(), failed) {
            (false, _) => Ok(found),
            (true, Some(error)) => Err(error),
            (true, None) => Err(FetchError::NotFound {
                message: format!("{what}: no upstream of {} has it", route.config.name),
            }),
        }
    }

    /// A step's deadline, named by the step (never its URL).
    async fn step_deadline<T>(
        &self,
        step: &RouteStep,
        what: &str,
        work: impl std::future::Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let command = format!("GET {what} from upstream {}", step.label);
        self.within_deadline(command, work).await
    }

    /// `module@query` from the table: a query other than a canonical version is resolved first.
    pub(crate) async fn routed_fetch(
        &self,
        route: &Route,
        module: &ModulePath,
        query: &str,
    ) -> Result<FetchedVersion, FetchError> {
        let version = match Version::new(query) {
            Ok(version) => version,
            Err(_) => {
                let resolved = self.routed_resolve(route, module, query).await?;
                Version::new(&resolved.version).map_err(|e| FetchError::Upstream {
                    message: format!(
                        "{module}@{query}: the upstream answered an unusable version: {e}"
                    ),
                })?
            }
        };
        let what = format!("{module}@{version}");
        let found = self
            .walk(
                route,
                &what,
                false,
                |step, native| {
                    let (what, version) = (what.clone(), version.clone());
                    async move {
                        let fetch = self.fetch_native(native, module, &version, None);
                        let Some(checks) = self.step_deadline(step, &what, fetch).await? else {
                            return Ok(None);
                        };
                        match self.step_deadline(step, &what, checks).await? {
                            NativeChecks::Verified(fetched) => Ok(Some(*fetched)),
                            NativeChecks::Unconfirmed { .. } => Err(FetchError::Upstream {
                                message: format!(
                                    "upstream {}: it serves the .mod and zip of {what} but not its .info",
                                    step.label
                                ),
                            }),
                        }
                    }
                    .boxed()
                },
                || {
                    let version = version.clone();
                    async move {
                        let fetched = self.fetch_with_go_via(module.as_str(), version.as_str(), Some("direct"));
                        fetched.await.map(Some)
                    }
                    .boxed()
                },
            )
            .await?;
        Ok(found
            .into_iter()
            .next()
            .expect("a walk that succeeds found one"))
    }

    /// The `.mod` of `module@version` from the first step that has it, its checks to come.
    pub(crate) async fn routed_metadata<'a>(
        &'a self,
        route: &'a Route,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Unverified<'a, EarlyMetadata, FetchedMetadata>, FetchError> {
        let what = format!("{module}@{version}");
        let (m, v) = (module.clone(), version.clone());
        let found = self
            .walk(
                route,
                &what,
                false,
                |step, native| {
                    let (m, v, what) = (m.clone(), v.clone(), what.clone());
                    async move {
                        let early = native.metadata_early(&m, &v, false);
                        let Some((files, checks)) = self.step_deadline(step, &what, early).await?
                        else {
                            return Ok(None);
                        };
                        let early = EarlyMetadata {
                            version: v.to_string(),
                            go_mod: files.go_mod,
                        };
                        let checks = async move {
                            match self.step_deadline(step, &what, checks).await? {
                                Some(metadata) => Ok(FetchedMetadata {
                                    version: v.to_string(),
                                    info: metadata.info.clone(),
                                    go_mod: metadata.go_mod.clone(),
                                }),
                                None => Err(FetchError::Upstream {
                                    message: format!(
                                        "upstream {}: it serves the .mod of {what} but not its .info",
                                        step.label
                                    ),
                                }),
                            }
                        };
                        Ok(Some(Unverified {
                            early,
                            checks: checks.boxed(),
                            checked: false,
                        }))
                    }
                    .boxed()
                },
                || {
                    let (m, v) = (m.clone(), v.clone());
                    async move {
                        let fetched = self.metadata_with_go_via(m.as_str(), v.as_str(), Some("direct"));
                        let fetched = fetched.await?;
                        let early = EarlyMetadata {
                            version: fetched.version.clone(),
                            go_mod: fetched.go_mod.clone(),
                        };
                        Ok(Some(Unverified::checked(early, fetched)))
                    }
                    .boxed()
                },
            )
            .await?;
        Ok(found
            .into_iter()
            .next()
            .expect("a walk that succeeds found one"))
    }

    /// The union of every step's version list, in semver order.
    pub(crate) async fn routed_list(
        &self,
        route: &Route,
        module: &ModulePath,
    ) -> Result<Vec<Version>, FetchError> {
        let what = format!("{module}/@v/list");
        let lists = self
            .walk(
                route,
                &what,
                true,
                |step, native| {
                    let what = what.clone();
                    async move { self.step_deadline(step, &what, native.list(module)).await }
                        .boxed()
                },
                || {
                    async move {
                        self.list_with_go_via(module, Some("direct"))
                            .await
                            .map(Some)
                    }
                    .boxed()
                },
            )
            .await?;
        let mut versions: Vec<Version> = lists.into_iter().flatten().collect();
        versions.sort();
        versions.dedup();
        Ok(versions)
    }

    /// What a query resolves to: `latest` is the go command's latest of the merged list (its `.info` from
    /// the first step that has it), or, with no version listed, the first step's own `@latest`; any other
    /// query, the first step's answer to it.
    pub(crate) async fn routed_resolve(
        &self,
        route: &Route,
        module: &ModulePath,
        query: &str,
    ) -> Result<LatestVersion, FetchError> {
        // The path asked of each URL, and the query asked of the go command for `direct`.
        let (tail, query) = if query == "latest" {
            let listed = match self.routed_list(route, module).await {
                Ok(listed) => listed,
                Err(FetchError::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            match latest_of(&listed) {
                Some(latest) => (format!("@v/{}.info", latest.escaped()), latest.to_string()),
                None => ("@latest".to_string(), "latest".to_string()),
            }
        } else {
            let tail = format!("@v/{}.info", escape_query(query));
            (tail, query.to_string())
        };
        let what = format!("{module}@{query}");
        let found = self
            .walk(
                route,
                &what,
                false,
                |step, native| {
                    let (what, tail) = (what.clone(), tail.clone());
                    async move {
                        let url = format!("{}/{}/{tail}", native.proxy(), module.escaped());
                        let info = self.step_deadline(step, &what, native.file(url, MAX_INFO));
                        match info.await? {
                            Some(info) => parse_info(&info, &step.label, &what).map(Some),
                            None => Ok(None),
                        }
                    }
                    .boxed()
                },
                || {
                    let query = query.clone();
                    async move {
                        self.resolve_with_go_via(module, &query, Some("direct"))
                            .await
                            .map(Some)
                    }
                    .boxed()
                },
            )
            .await?;
        Ok(found
            .into_iter()
            .next()
            .expect("a walk that succeeds found one"))
    }
}

/// A version the checksum database or the module zip rules refused (`native.rs`'s words for them).
fn failed_its_checks(error: &FetchError) -> bool {
    let message = error.to_string();
    message.contains("SECURITY ERROR") || message.contains("is not a valid module zip")
}

/// A failure of this machine (its work dir, a missing go command), not of the upstream.
fn is_local(error: &FetchError) -> bool {
    matches!(
        error,
        FetchError::Io { .. }
            | FetchError::LocalFault { .. }
            | FetchError::GoMissing { .. }
            | FetchError::WorkDirBusy { .. }
    )
}

/// A `.info` answer: its `Version` (canonical) and `Time`, and `Origin` when present.
fn parse_info(info: &[u8], label: &str, what: &str) -> Result<LatestVersion, FetchError> {
    let bad = |why: &str| FetchError::Upstream {
        message: format!("upstream {label}: its answer for {what} {why}"),
    };
    let value: serde_json::Value = serde_json::from_slice(info).map_err(|_| bad("is not JSON"))?;
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let version = field("Version").ok_or_else(|| bad("has no Version"))?;
    Version::new(&version).map_err(|_| bad("names no canonical version"))?;
    Ok(LatestVersion {
        version,
        time: field("Time").ok_or_else(|| bad("has no Time"))?,
        origin: value.get("Origin").cloned(),
    })
}

/// A query (a branch, a tag, a commit) as a URL path element: the module zip's `!` case-escaping, then
/// anything but unreserved characters percent-encoded (a branch may hold a `/`).
fn escape_query(query: &str) -> String {
    ferry_module::escape(query)
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'!' | b'+' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
