//! What an operator does to what the store holds: list and size it, delete, block and unblock versions,
//! collect garbage, reindex. The admin API (`api.rs`, on `admin_listen`) and `ferry admin` (`cli.rs`, its
//! client) are two faces of these operations.
//!
//! Every removal goes through the store's layers (so the ledger records it, and every replica honours it
//! within one ledger sync) and holds the version's lease while it runs (so it never removes a version a
//! replica is filling). A delete removes the `.info` first: the version is unlisted before its other files
//! go, and a removal cut short (a kill -9) never leaves a half version visible.

pub mod api;
pub mod cli;
pub mod gc;

use std::sync::Arc;
use std::time::Duration;

use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, ModuleStoreExt, StorageError};
use serde::Serialize;

use crate::coordination::Coordination;
use crate::ledger::{Ledger, Nanos, Reindexed, Status, now};
use gc::{GcSettings, Plan, Victim};

/// The record of the collection in progress: its plan, so a collection cut short resumes.
const GC_PLAN: &str = "gc/plan";
/// The record that makes one replica at a time collect.
const GC_LOCK: &str = "gc/lock";
/// How long a collection's lock holds unless refreshed (it is, every [`LOCK_REFRESH`] removals).
const GC_LOCK_TIME: Duration = Duration::from_secs(600);
const LOCK_REFRESH: usize = 500;

/// Why an admin operation failed: each becomes its own status code in the API.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 404: the version (or block) asked for is not there.
    #[error("not found: {0}")]
    NotFound(String),
    /// 403: the access rules do not let the caller do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 400: the request is not usable.
    #[error("{0}")]
    BadRequest(String),
    /// 409: another replica fills the version, or collects, now.
    #[error("{0}")]
    Busy(String),
    /// 503: the store or the lease engine failed.
    #[error("{0}")]
    Unavailable(String),
}

impl From<StorageError> for AdminError {
    fn from(e: StorageError) -> AdminError {
        AdminError::Unavailable(e.to_string())
    }
}

impl From<crate::coordination::CoordinationError> for AdminError {
    fn from(e: crate::coordination::CoordinationError) -> AdminError {
        AdminError::Unavailable(e.to_string())
    }
}

/// One version as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub module: String,
    pub version: String,
    /// `stored`, `blocked` (then `reason`) or `deleted`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub bytes: u64,
    /// RFC 3339 times; empty when unknown.
    pub stored: String,
    pub used: String,
}

/// One module as `du` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub module: String,
    pub versions: u64,
    pub bytes: u64,
}

/// What a collection did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Collected {
    pub dry_run: bool,
    /// The versions removed (or to remove), least recently used first.
    pub victims: Vec<Victim>,
    pub removed: u64,
    pub bytes: u64,
    /// Versions spared: used since the plan, or being filled by a replica.
    pub spared: u64,
    pub stored_bytes_before: u64,
}

/// The admin operations over one store.
#[derive(Debug, Clone)]
pub struct Admin {
    store: Arc<dyn ModuleStore>,
    ledger: Arc<Ledger>,
    coordination: Coordination,
    gc: GcSettings,
    /// Who may administer which modules (the admin API checks it when authentication is on).
    pub(crate) access: Arc<arc_swap::ArcSwap<crate::access::Rules>>,
    /// Where each operation is recorded.
    pub(crate) audit: crate::audit::Audit,
}

/// A time for people.
fn rfc3339(at: Nanos) -> String {
    if at == 0 {
        return String::new();
    }
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_nanos(at)).to_string()
}

impl Admin {
    /// `store` must be the proxy's (its layers record every removal in `ledger`).
    pub fn new(
        store: Arc<dyn ModuleStore>,
        ledger: Arc<Ledger>,
        coordination: Coordination,
        gc: GcSettings,
    ) -> Admin {
        Admin {
            store,
            ledger,
            coordination,
            gc,
            access: Arc::new(arc_swap::ArcSwap::from_pointee(crate::access::Rules::none())),
            audit: crate::audit::Audit::off(),
        }
    }

    /// The same operations under these access rules, recorded in this audit trail.
    pub(crate) fn with_access(
        mut self,
        access: Arc<arc_swap::ArcSwap<crate::access::Rules>>,
        audit: crate::audit::Audit,
    ) -> Admin {
        self.access = access;
        self.audit = audit;
        self
    }

    pub fn gc_settings(&self) -> &GcSettings {
        &self.gc
    }

    /// Every version under `prefix` (a whole path element; empty: all) the ledger knows, deleted ones
    /// left out unless blocked.
    pub fn list(&self, prefix: &str) -> Vec<Listed> {
        self.ledger.read(|state| {
            state
                .under(prefix)
                .filter(|(_, _, e)| e.status != Status::Deleted)
                .map(|(m, v, e)| Listed {
                    module: m.to_string(),
                    version: v.to_string(),
                    status: match e.status {
                        Status::Present => "stored",
                        Status::Blocked(_) => "blocked",
                        Status::Deleted => "deleted",
                    },
                    reason: match &e.status {
                        Status::Blocked(reason) => Some(reason.to_string()),
                        _ => None,
                    },
                    bytes: if e.status == Status::Present {
                        e.bytes
                    } else {
                        0
                    },
                    stored: rfc3339(e.stored_at),
                    used: rfc3339(e.used_at()),
                })
                .collect()
        })
    }

    /// Stored versions and bytes per module under `prefix`, and their total (module `""`).
    pub fn usage(&self, prefix: &str) -> (Vec<Usage>, Usage) {
        let mut modules: Vec<Usage> = Vec::new();
        let mut total = Usage::default();
        self.ledger.read(|state| {
            for (m, _, e) in state.under(prefix) {
                if e.status != Status::Present {
                    continue;
                }
                if modules.last().is_none_or(|u| u.module != m.as_str()) {
                    modules.push(Usage {
                        module: m.to_string(),
                        ..Usage::default()
                    });
                }
                let usage = modules.last_mut().expect("pushed above");
                usage.versions += 1;
                usage.bytes += e.bytes;
                total.versions += 1;
                total.bytes += e.bytes;
            }
        });
        (modules, total)
    }

    /// Deletes a stored version: its files (`.info` first) and its cache entries on every replica; the next
    /// request fills it again under the policy.
    pub async fn delete(&self, module: &ModulePath, version: &Version) -> Result<(), AdminError> {
        let known = matches!(self.ledger.status(module, version), Some(Status::Present));
        if !known && !self.store.exists(module, version).await? {
            return Err(AdminError::NotFound(format!(
                "{module}@{version} is not stored"
            )));
        }
        self.remove(module, version).await?;
        self.ledger.sync().await?;
        Ok(())
    }

    /// Removes a version's files holding its lease; `Busy` while a replica fills it.
    async fn remove(&self, module: &ModulePath, version: &Version) -> Result<(), AdminError> {
        let removed = self
            .coordination
            .try_exclusive(module, version, || self.store.delete(module, version))
            .await?;
        match removed {
            Some(done) => Ok(done?),
            None => Err(AdminError::Busy(format!(
                "{module}@{version} is being filled by a replica; try again in a moment"
            ))),
        }
    }

    /// Blocks a version (stored or not: a version known to be bad can be blocked before anyone asks for
    /// it): answered 403 with `reason`, never filled, listed nowhere; its files are removed.
    pub async fn block(
        &self,
        module: &ModulePath,
        version: &Version,
        reason: &str,
    ) -> Result<(), AdminError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AdminError::BadRequest(
                "a block needs a reason (it is what clients are told); give --reason TEXT".into(),
            ));
        }
        self.ledger.block(module, version, reason).await?;
        // Blocked from here on; a fill that holds the lease now finishes, and its files stay unserved.
        match self.remove(module, version).await {
            Ok(()) | Err(AdminError::Busy(_)) => {}
            Err(e) => return Err(e),
        }
        self.ledger.sync().await?;
        Ok(())
    }

    /// Lifts a block: the version is then filled again on the next request, under the policy.
    pub async fn unblock(&self, module: &ModulePath, version: &Version) -> Result<(), AdminError> {
        if self.ledger.blocked(module, version).is_none() {
            return Err(AdminError::NotFound(format!(
                "{module}@{version} is not blocked"
            )));
        }
        self.ledger.unblock(module, version).await?;
        Ok(())
    }

    /// Reconciles the ledger with the store (see `Ledger::reindex`).
    pub async fn reindex(&self, progress: impl FnMut(u64) + Send) -> Result<Reindexed, AdminError> {
        Ok(self.ledger.reindex(self.store.as_ref(), progress).await?)
    }

    /// Runs a collection with the `[gc]` policy: with `dry_run`, only the plan. Otherwise on one replica at
    /// a time (the lock record), finishing first the plan of a collection that was cut short; `progress`
    /// is called with (versions done, versions planned).
    pub async fn collect(
        &self,
        dry_run: bool,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<Collected, AdminError> {
        if !self.gc.collects() {
            return Err(AdminError::BadRequest(
                "no retention policy: set gc.max_bytes or gc.unused_for in the [gc] table".into(),
            ));
        }
        let metrics = crate::metrics::metrics();
        let result_label = |result| crate::metrics::ResultLabels { result };
        if dry_run {
            let plan = self.ledger.read(|state| gc::plan(state, &self.gc, now()));
            metrics
                .collections
                .get_or_create(&result_label("dry_run"))
                .inc();
            return Ok(Collected {
                dry_run,
                removed: plan.victims.len() as u64,
                bytes: plan.bytes,
                stored_bytes_before: plan.stored_bytes,
                victims: plan.victims,
                spared: 0,
            });
        }
        if !self.lock().await? {
            metrics
                .collections
                .get_or_create(&result_label("busy"))
                .inc();
            return Err(AdminError::Busy(
                "another replica is collecting now; try again when it is done".into(),
            ));
        }
        let result = self.collect_locked(&mut progress).await;
        let _ = self.ledger.records_handle().delete(GC_LOCK).await;
        let label = if result.is_ok() { "done" } else { "failed" };
        metrics
            .collections
            .get_or_create(&result_label(label))
            .inc();
        if let Ok(done) = &result {
            metrics.collected_versions.inc_by(done.removed);
            metrics.collected_bytes.inc_by(done.bytes);
        }
        result
    }

    /// Takes the collection lock: a create-only record, taken over once it has expired.
    async fn lock(&self) -> Result<bool, AdminError> {
        let records = self.ledger.records_handle();
        let body = || -> bytes::Bytes {
            let expires = now() + u64::try_from(GC_LOCK_TIME.as_nanos()).unwrap_or(u64::MAX);
            expires.to_string().into()
        };
        if records.create(GC_LOCK, body()).await? {
            return Ok(true);
        }
        let expired = records
            .get(GC_LOCK)
            .await?
            .and_then(|held| std::str::from_utf8(&held).ok()?.trim().parse::<u64>().ok())
            .is_none_or(|expires| expires < now());
        if !expired {
            return Ok(false);
        }
        records.delete(GC_LOCK).await?;
        Ok(records.create(GC_LOCK, body()).await?)
    }

    /// The collection under the lock: the plan of one cut short first, else a new one, kept in the store
    /// until every victim is done.
    async fn collect_locked(
        &self,
        progress: &mut (impl FnMut(u64, u64) + Send),
    ) -> Result<Collected, AdminError> {
        let records = self.ledger.records_handle();
        self.ledger.sync().await?;
        let plan = match records.get(GC_PLAN).await? {
            Some(saved) => match serde_json::from_slice::<Plan>(&saved) {
                Ok(plan) => {
                    tracing::info!(
                        versions = plan.victims.len(),
                        "resuming a collection that was cut short"
                    );
                    plan
                }
                Err(_) => self.ledger.read(|state| gc::plan(state, &self.gc, now())),
            },
            None => self.ledger.read(|state| gc::plan(state, &self.gc, now())),
        };
        let saved =
            serde_json::to_vec(&plan).map_err(|e| AdminError::Unavailable(e.to_string()))?;
        records.put(GC_PLAN, saved.into()).await?;
        let total = plan.victims.len() as u64;
        let mut done = Collected {
            stored_bytes_before: plan.stored_bytes,
            ..Collected::default()
        };
        for (i, victim) in plan.victims.into_iter().enumerate() {
            if i > 0 && i % LOCK_REFRESH == 0 {
                let expires = now() + u64::try_from(GC_LOCK_TIME.as_nanos()).unwrap_or(u64::MAX);
                records.put(GC_LOCK, expires.to_string().into()).await?;
            }
            progress(i as u64, total);
            if self.collect_one(&victim).await? {
                done.removed += 1;
                done.bytes += victim.bytes;
                done.victims.push(victim);
            } else {
                done.spared += 1;
            }
        }
        progress(total, total);
        self.ledger.sync().await?;
        records.delete(GC_PLAN).await?;
        Ok(done)
    }

    /// Removes one planned version unless it was used since the plan, is no longer stored, or a replica
    /// fills it now.
    async fn collect_one(&self, victim: &Victim) -> Result<bool, AdminError> {
        let (Ok(module), Ok(version)) = (
            ModulePath::new(&victim.module),
            Version::new(&victim.version),
        ) else {
            return Ok(false);
        };
        let current = self.ledger.read(|state| {
            state
                .entry(&module, &version)
                .map(|e| (e.status.clone(), e.used_at()))
        });
        match current {
            Some((Status::Present, used_at)) if used_at <= victim.used_at => {}
            _ => return Ok(false),
        }
        match self.remove(&module, &version).await {
            Ok(()) => Ok(true),
            Err(AdminError::Busy(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Collects every `gc.every` until `shutdown` (when set and the policy collects): on one replica at a
    /// time, the others finding the lock taken.
    pub async fn run_schedule(self, shutdown: impl std::future::Future<Output = ()>) {
        let (Some(every), true) = (self.gc.every, self.gc.collects()) else {
            return;
        };
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut shutdown => return,
            }
            match self.collect(false, |_, _| {}).await {
                Ok(done) => tracing::info!(
                    removed = done.removed,
                    bytes = done.bytes,
                    spared = done.spared,
                    "scheduled collection done"
                ),
                Err(AdminError::Busy(_)) => {
                    tracing::debug!("another replica collects now; skipping this round")
                }
                Err(e) => tracing::warn!(error = %e, "scheduled collection failed"),
            }
        }
    }
}
