//! The pages for people: the status page at `/`, a search by module prefix (`/-/search?q=`) and a module
//! page (`/-/module/PATH`), server-rendered HTML. Everything shown comes from memory: the ledger (what the
//! store holds, without a walk of it), the fills' single-flight map and failure ring, the metrics, the
//! checksum databases' route choices; only a module page reads the store (its newest go.mod, and the
//! `.info` of its newest versions).
//!
//! Every module a page lists goes through [`Watched::visible`], the one filter a viewer's access rules
//! plug into. On the admin listener (`admin_listen`) the same pages are served with delete and block forms
//! on the module page (`admin_forms`); on the public listener no admin action appears.

pub mod admin_forms;
pub mod html;
pub mod summary;
mod view;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use ferry_fetcher::SumdbRouteState;
use ferry_module::{ModulePath, Version, latest_of, read_go_mod};
use ferry_storage::{ModuleStore, ModuleStoreExt};
use futures::StreamExt;
use http::StatusCode;

use crate::answer::{Answer, HTML, PRIVATE};
use crate::filler::Filler;
use crate::layers::auth::Identity;
use crate::layers::client::Client;
use crate::ledger::{Ledger, Nanos, Status};
use crate::request::{Endpoint, PathPrefix};
use crate::service::{Pages, Proxy};
use crate::sumdb::SumDbs;
use futures::future::BoxFuture;
pub use view::Summary;
use view::{Body, Page};

/// How many versions the recent lists show.
const RECENT: usize = 15;
/// How many modules a search lists.
const SEARCH_LIMIT: usize = 200;
/// How many of a module's newest versions have their `.info` read for its time, and how many at once.
const INFO_TIMES: usize = 50;
const INFO_READS_AT_ONCE: usize = 8;

/// The pages, as the proxy serves them (given by `build_proxy`), with the configuration they show.
#[derive(Debug)]
pub struct StatusPages {
    pub summary: Summary,
}

impl Pages for StatusPages {
    fn answer<'a>(
        &'a self,
        proxy: &'a Proxy,
        request: &'a http::request::Parts,
        endpoint: &'a Endpoint,
        admin: bool,
    ) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let viewer = Viewer::of(request, admin);
            self.watched(proxy).page(&viewer, endpoint).await
        })
    }
}

impl StatusPages {
    /// What the pages read of `proxy`.
    fn watched<'a>(&'a self, proxy: &'a Proxy) -> Watched<'a> {
        Watched {
            store: proxy.store(),
            ledger: proxy.ledger(),
            filler: proxy.filler(),
            sumdbs: proxy.sumdbs(),
            summary: &self.summary,
            access: proxy.access(),
        }
    }
}

/// What the pages read, borrowed from the proxy.
pub struct Watched<'a> {
    pub store: &'a Arc<dyn ModuleStore>,
    pub ledger: &'a Ledger,
    pub filler: Option<&'a Filler>,
    pub sumdbs: &'a SumDbs,
    pub summary: &'a Summary,
    /// The access rules in force when the page was asked for.
    pub access: Arc<crate::access::Rules>,
}

/// Who asks, and how they reached this Ferry.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The authenticated identity, when authentication is on.
    pub identity: Option<Identity>,
    /// On the admin listener.
    pub admin: bool,
    /// The path prefix links start with.
    pub base: String,
    /// `scheme://host/prefix`, for the `GOPROXY` snippet.
    pub goproxy: String,
}

impl Viewer {
    /// The viewer of a request: its identity and `Client` (put there by the layers), its `Host`, and the
    /// path prefix the routing layer put beside a page's route.
    pub fn of(request: &http::request::Parts, admin: bool) -> Viewer {
        let https = request
            .extensions
            .get::<Client>()
            .is_some_and(|client| client.https);
        let host = request
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| request.uri.authority().map(ToString::to_string))
            .unwrap_or_else(|| "HOST".to_string());
        let base = request
            .extensions
            .get::<PathPrefix>()
            .map_or(String::new(), |p| p.as_str().to_string());
        let scheme = if https { "https" } else { "http" };
        Viewer {
            identity: request.extensions.get::<Identity>().cloned(),
            admin,
            goproxy: format!("{scheme}://{host}{base}"),
            base,
        }
    }
}

/// A time for people: RFC 3339 to the second, UTC.
fn when(at: Nanos) -> String {
    if at == 0 {
        return String::new();
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_nanos(at)).to_string()
}

impl Watched<'_> {
    /// Whether `viewer` may see `module` on a page: every module list goes through here, so that access
    /// rules (who may read which module pattern) are applied in one place, as for `/catalog`.
    pub fn visible(&self, viewer: &Viewer, module: &ModulePath) -> bool {
        self.access.may_read(viewer.identity.as_ref(), module)
    }

    /// The page `endpoint` names (`Index`, `Search` or `ModulePage`), as `viewer` may see it.
    pub(crate) async fn page(&self, viewer: &Viewer, endpoint: &Endpoint) -> Answer {
        let (title, body, status) = match endpoint {
            Endpoint::Search(prefix) => (
                format!("Modules starting with {prefix}"),
                Body::Search(self.search(viewer, prefix)),
                StatusCode::OK,
            ),
            Endpoint::ModulePage(module) => {
                let (shown, status) = self.module(viewer, module).await;
                (module.to_string(), Body::Module(shown), status)
            }
            _ => (
                "Ferry status".to_string(),
                Body::Status(Box::new(self.status(viewer))),
                StatusCode::OK,
            ),
        };
        let page = Page {
            title,
            base: viewer.base.clone(),
            admin: viewer.admin,
            body,
        };
        let mut answer = Answer::ok(HTML, PRIVATE, Bytes::from(html::render(&page)));
        answer.status = status;
        answer
    }

    fn status(&self, viewer: &Viewer) -> view::Status {
        let (totals, stored) = self
            .ledger
            .read(|state| (state.totals(), state.newest(4 * RECENT)));
        let stored = stored
            .into_iter()
            .filter(|(_, module, _)| self.visible(viewer, module))
            .take(RECENT)
            .map(|(at, module, version)| seen(at, &module, &version))
            .collect();
        let flights = self.filler.map_or_else(Vec::new, Filler::flights);
        view::Status {
            version: env!("CARGO_PKG_VERSION"),
            goproxy: viewer.goproxy.clone(),
            summary: self.summary.rows.clone(),
            store: view::Store {
                backend: self.summary.backend.clone(),
                ready: self.ledger.is_ready(),
                modules: totals.modules,
                versions: totals.versions,
                bytes: totals.bytes,
            },
            coordination: self.coordination(&flights),
            flights: flights
                .into_iter()
                .filter(|f| self.visible(viewer, &f.module))
                .map(|f| view::Flight {
                    module: f.module.to_string(),
                    query: f.query,
                    metadata_only: f.metadata_only,
                    elapsed: format!("{:.1} s", f.elapsed.as_secs_f64()),
                    waiting: f.waiting,
                })
                .collect(),
            failures: self.failures(viewer),
            caches: crate::metrics::metrics().cache_counts(),
            upstream: self.upstream(),
            sumdbs: self.sumdbs(viewer),
            stored,
            requested: self.requested(viewer),
        }
    }

    fn failures(&self, viewer: &Viewer) -> Vec<view::Failure> {
        let Some(filler) = self.filler else {
            return Vec::new();
        };
        filler
            .watch()
            .failures()
            .into_iter()
            .filter(|f| self.visible(viewer, &f.module))
            .map(|f| view::Failure {
                module: f.module.to_string(),
                query: f.query,
                at: humantime::format_rfc3339_seconds(f.at).to_string(),
                result: f.result,
                reason: f.reason,
            })
            .collect()
    }

    fn upstream(&self) -> view::Upstream {
        match self.filler.map(|filler| filler.watch().upstream()) {
            None => view::Upstream::None,
            Some(None) => view::Upstream::NotAskedYet,
            Some(Some(seen)) => view::Upstream::Answered {
                up: seen.up,
                at: humantime::format_rfc3339_seconds(seen.at).to_string(),
            },
        }
    }

    /// Each checksum database's route; where it goes and why there is none only on the admin listener
    /// (they name the upstream's or the database's address).
    fn sumdbs(&self, viewer: &Viewer) -> Vec<view::Sumdb> {
        self.sumdbs
            .route_states()
            .into_iter()
            .map(|(name, state)| {
                let (up, state) = match state {
                    SumdbRouteState::Unknown => (None, "not probed since start".to_string()),
                    SumdbRouteState::Probing => (None, "being probed".to_string()),
                    SumdbRouteState::Chosen { via, base } if viewer.admin => {
                        (Some(true), format!("through {via} ({base})"))
                    }
                    SumdbRouteState::Chosen { via, .. } => (Some(true), format!("through {via}")),
                    SumdbRouteState::NoRoute { why } if viewer.admin => (Some(false), why),
                    SumdbRouteState::NoRoute { .. } => {
                        (Some(false), "no route (the log says why)".to_string())
                    }
                };
                view::Sumdb { name, up, state }
            })
            .collect()
    }

    /// The replicas on this store and the leases held here: shown when fills are coordinated, or when
    /// another replica writes to the same ledger.
    fn coordination(&self, flights: &[crate::filler::Flight]) -> Option<view::Coordination> {
        let others = self.ledger.other_writers();
        if self.summary.coordination.is_none() && others.is_empty() {
            return None;
        }
        let (engine, lease_time) = match &self.summary.coordination {
            Some((engine, time)) => (
                engine.clone(),
                humantime::format_duration(*time).to_string(),
            ),
            None => ("none: fills are not coordinated".to_string(), String::new()),
        };
        Some(view::Coordination {
            engine,
            lease_time,
            this_replica: self.ledger.writer().to_string(),
            others: others
                .into_iter()
                .map(|(writer, at)| (writer, when(at)))
                .collect(),
            leases: flights
                .iter()
                .filter(|f| !f.metadata_only && Version::new(&f.query).is_ok())
                .map(|f| format!("{}@{}", f.module, f.query))
                .collect(),
        })
    }

    /// The versions served last: those since the last access flush (in memory), then the ledger's.
    fn requested(&self, viewer: &Viewer) -> Vec<view::Seen> {
        let mut used: Vec<(Nanos, String, String)> = self.ledger.touched_lately();
        used.extend(self.ledger.read(|state| {
            state
                .last_used(4 * RECENT)
                .into_iter()
                .map(|(at, m, v)| (at, m.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        }));
        used.sort_by_key(|u| std::cmp::Reverse(u.0));
        let mut shown: Vec<view::Seen> = Vec::new();
        for (at, module, version) in used {
            if shown.len() == RECENT {
                break;
            }
            let Ok(path) = ModulePath::new(&module) else {
                continue;
            };
            if shown
                .iter()
                .any(|s| s.module == module && s.version == version)
                || !self.visible(viewer, &path)
            {
                continue;
            }
            shown.push(view::Seen {
                module,
                version,
                at: when(at),
            });
        }
        shown
    }

    fn search(&self, viewer: &Viewer, prefix: &str) -> view::Search {
        let mut modules = self.ledger.read(|state| {
            state.modules_starting(prefix, SEARCH_LIMIT + 1, |m| self.visible(viewer, m))
        });
        let more = modules.len() > SEARCH_LIMIT;
        modules.truncate(SEARCH_LIMIT);
        view::Search {
            prefix: prefix.to_string(),
            modules: modules
                .into_iter()
                .map(|(m, count)| (m.to_string(), count))
                .collect(),
            more,
        }
    }

    /// A module's versions with their status, `.info` time and retraction, and its deprecation; a 404
    /// (the same page as for a module never stored) when none is known or the viewer may not see it.
    async fn module(&self, viewer: &Viewer, module: &ModulePath) -> (view::Module, StatusCode) {
        let versions = if self.visible(viewer, module) {
            self.ledger.read(|state| state.versions_of(module))
        } else {
            Vec::new()
        };
        let present: Vec<Version> = versions
            .iter()
            .filter(|(_, e)| e.status == Status::Present)
            .map(|(v, _)| v.clone())
            .collect();
        let newest = latest_of(&present).cloned();
        let notes = match &newest {
            Some(v) => match self.store.go_mod(module, v).await {
                Ok(text) => read_go_mod(&String::from_utf8_lossy(&text)),
                Err(e) => {
                    tracing::warn!(%module, version = %v, error = %e, "status page: go.mod not read");
                    Default::default()
                }
            },
            None => Default::default(),
        };
        let timed: Vec<Version> = present.iter().rev().take(INFO_TIMES).cloned().collect();
        let times: Vec<(Version, Option<String>)> = futures::stream::iter(timed)
            .map(|v| async move {
                let time = self.store.info(module, &v).await.ok().and_then(|info| {
                    let json: serde_json::Value = serde_json::from_slice(&info).ok()?;
                    json.get("Time")?.as_str().map(str::to_string)
                });
                (v, time)
            })
            .buffered(INFO_READS_AT_ONCE)
            .collect()
            .await;
        let rows: Vec<view::VersionRow> = versions
            .iter()
            .map(|(version, entry)| {
                let (status, reason) = match &entry.status {
                    Status::Present => ("stored", None),
                    Status::Deleted => ("deleted", None),
                    Status::Blocked(reason) => ("blocked", Some(reason.to_string())),
                };
                view::VersionRow {
                    version: version.to_string(),
                    status,
                    reason,
                    time: times
                        .iter()
                        .find(|(v, _)| v == version)
                        .and_then(|(_, t)| t.clone()),
                    stored_at: when(entry.stored_at),
                    bytes: entry.bytes,
                    retracted: notes.retraction(version.as_str()).map(str::to_string),
                }
            })
            .collect();
        let status = if rows.is_empty() {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        let shown = view::Module {
            module: module.to_string(),
            notes_from: newest.map(|v| v.to_string()),
            deprecated: notes.deprecated,
            times_left_out: present.len().saturating_sub(INFO_TIMES),
            versions: rows,
        };
        (shown, status)
    }
}

fn seen(at: Nanos, module: &ModulePath, version: &Version) -> view::Seen {
    view::Seen {
        module: module.to_string(),
        version: version.to_string(),
        at: when(at),
    }
}
