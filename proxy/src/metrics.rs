//! Ferry's Prometheus metrics, all named `ferry_*`, with bounded label values (endpoint kinds, status codes,
//! fill results; never a module path or version). One registry per process: what it measures (requests,
//! connections, fills) belongs to the process, whichever listener or proxy served it.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The in-memory caches by their `cache` label (see `cache`), for the status page.
pub const CACHE_NAMES: [&str; 5] = ["file", "zip", "list", "latest", "query"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The endpoint kind of the request's route (`healthz`, `readyz`, `metrics`, `index`, `catalog`,
    /// `feed`, `sumdb`, `vuln`, `list`, `latest`, `info`, `mod`, `zip`, or `other` for a refused path).
    pub endpoint: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// As in [`RequestLabels`].
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `list`, `latest`, `query`, `file` or `zip`.
    pub cache: &'static str,
}

/// A checksum database by name: the databases Ferry is configured with or relays (a few).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DbLabels {
    pub db: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageLabels {
    /// `list`, `info`, `mod`, `zip`, `exists`, `has_zip`, `save`, `delete`, `check`, `check_writable`.
    pub operation: &'static str,
    /// `file`, `memory`, `s3`, `gcs` or `az`.
    pub backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// An `[[upstreams]]` step: its table's configured name (`NAME#N` past the first URL), never a URL.
    pub upstream: String,
    /// `ok`, `not_found` (404/410) or `error`.
    pub result: &'static str,
}

/// The `upstream` label of the go command's own `GOPROXY` (tables' names are theirs).
pub const DEFAULT_UPSTREAM: &str = "default";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamName {
    /// As in [`UpstreamLabels`].
    pub upstream: String,
}

/// Every metric Ferry keeps.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Family<EndpointLabels, Histogram>,
    pub response_bytes: Family<EndpointLabels, Counter>,
    pub open_connections: Gauge,
    pub fills: Family<ResultLabels, Counter>,
    pub fill_duration: Histogram,
    pub fill_joins: Counter,
    pub fills_in_flight: Gauge,
    pub fill_waiting: Gauge,
    pub sumdb_route_up: Family<DbLabels, Gauge>,
    pub queue_depth: Gauge,
    pub queue_dropped: Counter,
    pub trace_spans: Family<ResultLabels, Counter>,
    pub sumdb_tile_cache_hits: Counter,
    pub sumdb_tile_cache_misses: Counter,
    pub cache_hits: Family<CacheLabels, Counter>,
    pub cache_misses: Family<CacheLabels, Counter>,
    pub storage_operations: Family<StorageLabels, Counter>,
    pub storage_errors: Family<StorageLabels, Counter>,
    pub storage_duration: Family<StorageLabels, Histogram>,
    pub auth_checks: Family<ResultLabels, Counter>,
    pub auth_queued: Gauge,
    pub store_bytes: Gauge,
    pub store_versions: Gauge,
    pub store_modules: Gauge,
    pub ledger_sync_failures: Counter,
    pub blocked_answers: Counter,
    /// Versions refused by a version rule, by the rule's kind (`min_age`, `deny`, `allow`).
    pub version_refusals: Family<ResultLabels, Counter>,
    /// What a dry-run version rule would have refused, by kind.
    pub version_refusals_dry_run: Family<ResultLabels, Counter>,
    /// Audit lines dropped: the writer fell behind (its channel was full) or the file could not be written.
    pub audit_dropped: Counter,
    pub vuln_syncs: Family<ResultLabels, Counter>,
    pub vuln_modified: Gauge,
    pub vuln_entries: Gauge,
    pub fill_budget_refusals: Counter,
    pub collections: Family<ResultLabels, Counter>,
    /// Requirements fetched ahead, by result.
    pub prefetches: Family<ResultLabels, Counter>,
    pub collected_versions: Counter,
    pub collected_bytes: Counter,
    pub upstream_requests: Family<UpstreamLabels, Counter>,
    pub upstream_up: Family<UpstreamName, Gauge>,
    /// Bytes of a file store's hot zips in memory (`sync_hot_zips`).
    cache_zip_bytes: Gauge,
    /// One scrape at a time brings the `zip` counters up to the store's totals.
    hot_zips_synced: std::sync::Mutex<()>,
    process: crate::process_metrics::ProcessMetrics,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ferry");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by endpoint kind and status code",
            requests.clone(),
        );
        // 0.5 ms to about 65 s: small files from memory to a cold fetch.
        let request_duration = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 18))
        });
        registry.register(
            "request_duration_seconds",
            "Time from a request to the end of its response body, by endpoint kind",
            request_duration.clone(),
        );
        let response_bytes = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "response_bytes",
            "Response body bytes sent, by endpoint kind",
            response_bytes.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open now",
            open_connections.clone(),
        );
        let fills = Family::<ResultLabels, Counter>::default();
        registry.register("fills", "Fills from the upstream, by result", fills.clone());
        let fill_duration = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "fill_duration_seconds",
            "Time a fill took, from its start to the version stored or its failure",
            fill_duration.clone(),
        );
        let fill_joins = Counter::default();
        registry.register(
            "fill_joins",
            "Requests that joined a fill already running for the same version (single flight)",
            fill_joins.clone(),
        );
        let fills_in_flight = Gauge::default();
        registry.register(
            "fills_in_flight",
            "Fills running now (one per version or query, however many requests wait on it)",
            fills_in_flight.clone(),
        );
        let fill_waiting = Gauge::default();
        registry.register(
            "fill_waiting_clients",
            "Requests waiting on a running fill now",
            fill_waiting.clone(),
        );
        let sumdb_route_up = Family::<DbLabels, Gauge>::default();
        registry.register(
            "sumdb_route_up",
            "Whether a route to the checksum database was found at its last probe (1) or none was (0), by database",
            sumdb_route_up.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "async_queue_depth",
            "Background fetches queued or running",
            queue_depth.clone(),
        );
        let queue_dropped = Counter::default();
        registry.register(
            "async_queue_dropped",
            "Background fetches dropped because the queue was full",
            queue_dropped.clone(),
        );
        let trace_spans = Family::<ResultLabels, Counter>::default();
        registry.register(
            "trace_spans",
            "Spans handed to the OTLP exporter, by result: exported, failed (the collector refused or was unreachable) or dropped (the export queue was full)",
            trace_spans.clone(),
        );
        let sumdb_tile_cache_hits = Counter::default();
        registry.register(
            "sumdb_tile_cache_hits",
            "Full checksum database tiles answered from memory",
            sumdb_tile_cache_hits.clone(),
        );
        let sumdb_tile_cache_misses = Counter::default();
        registry.register(
            "sumdb_tile_cache_misses",
            "Full checksum database tiles not in memory, asked of the database",
            sumdb_tile_cache_misses.clone(),
        );
        let cache_hits = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_hits",
            "Answers found in an in-memory cache, by cache (list, latest, query, file)",
            cache_hits.clone(),
        );
        let cache_misses = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_misses",
            "Answers not in an in-memory cache (asked of the upstream or the store), by cache",
            cache_misses.clone(),
        );
        let storage_operations = Family::<StorageLabels, Counter>::default();
        registry.register(
            "storage_operations",
            "Calls to the module store, by operation and backend",
            storage_operations.clone(),
        );
        let storage_errors = Family::<StorageLabels, Counter>::default();
        registry.register(
            "storage_errors",
            "Calls to the module store that failed (a file not found is not a failure), by operation and backend",
            storage_errors.clone(),
        );
        // 0.1 ms (memory) to about 6.5 s (a large upload to a bucket).
        let storage_duration = Family::<StorageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 17))
        });
        registry.register(
            "storage_operation_duration_seconds",
            "Time a call to the module store took (a zip: until its stream is open), by operation and backend",
            storage_duration.clone(),
        );
        let auth_checks = Family::<ResultLabels, Counter>::default();
        registry.register(
            "auth_checks",
            "Authentication checks, by result: passwords (remembered, wrong_remembered, joined and busy per request; verified and wrong per bcrypt run), bearer tokens (token, token_unknown), JWTs (jwt, jwt_remembered, jwt_REASON)",
            auth_checks.clone(),
        );
        let auth_queued = Gauge::default();
        registry.register(
            "auth_checks_queued",
            "bcrypt password checks waiting for a verifier",
            auth_queued.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register(
            "store_bytes",
            "Bytes of the versions stored (.info, .mod and zip), from the ledger: no store scan per scrape",
            store_bytes.clone(),
        );
        let store_versions = Gauge::default();
        registry.register(
            "store_versions",
            "Versions stored, from the ledger",
            store_versions.clone(),
        );
        let store_modules = Gauge::default();
        registry.register(
            "store_modules",
            "Modules with at least one version stored, from the ledger",
            store_modules.clone(),
        );
        let ledger_sync_failures = Counter::default();
        registry.register(
            "ledger_sync_failures",
            "Syncs of the ledger with the store that failed (retried at the next interval)",
            ledger_sync_failures.clone(),
        );
        let blocked_answers = Counter::default();
        registry.register(
            "blocked_answers",
            "Requests answered 403 because the version is blocked, or affected by an advisory (vuln.refuse_affected)",
            blocked_answers.clone(),
        );
        let version_refusals = Family::<ResultLabels, Counter>::default();
        registry.register(
            "version_refusals",
            "Versions refused (answered 403 or left out of a list) by a version rule, by kind (min_age, deny, allow)",
            version_refusals.clone(),
        );
        let version_refusals_dry_run = Family::<ResultLabels, Counter>::default();
        registry.register(
            "version_refusals_dry_run",
            "Versions a dry-run version rule would have refused, served all the same, by kind",
            version_refusals_dry_run.clone(),
        );
        let prefetches = Family::<ResultLabels, Counter>::default();
        registry.register(
            "prefetches",
            "Requirements of a filled go.mod fetched before they were asked for, by result (fetched, failed, followed, over_budget)",
            prefetches.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_dropped",
            "Audit trail lines dropped: the writer fell behind or could not write (audit_log)",
            audit_dropped.clone(),
        );
        let vuln_syncs = Family::<ResultLabels, Counter>::default();
        registry.register(
            "vuln_sync",
            "Syncs of the vulnerability database's copy, by result (updated, unchanged, failed)",
            vuln_syncs.clone(),
        );
        let vuln_modified = Gauge::default();
        registry.register(
            "vuln_modified_seconds",
            "The modified time of the vulnerability database copy served (Unix seconds; its db.json's)",
            vuln_modified.clone(),
        );
        let vuln_entries = Gauge::default();
        registry.register(
            "vuln_entries",
            "Advisories in the vulnerability database copy served",
            vuln_entries.clone(),
        );
        let fill_budget_refusals = Counter::default();
        registry.register(
            "fill_budget_refusals",
            "Requests answered 429 because their requester had used its fill budget (fetcher.fill_rate)",
            fill_budget_refusals.clone(),
        );
        let collections = Family::<ResultLabels, Counter>::default();
        registry.register(
            "collections",
            "Garbage collections run, by result (done, dry_run, failed, busy)",
            collections.clone(),
        );
        let collected_versions = Counter::default();
        registry.register(
            "collected_versions",
            "Versions removed by garbage collections",
            collected_versions.clone(),
        );
        let collected_bytes = Counter::default();
        registry.register(
            "collected_bytes",
            "Bytes reclaimed by garbage collections",
            collected_bytes.clone(),
        );
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "Requests to each [[upstreams]] step, by its configured name and result (ok, not_found, error)",
            upstream_requests.clone(),
        );
        // Up until a request says otherwise: a Ferry that has not needed an upstream has no news of it.
        let upstream_up = Family::<UpstreamName, Gauge>::default();
        upstream_up
            .get_or_create(&UpstreamName {
                upstream: DEFAULT_UPSTREAM.to_string(),
            })
            .set(1);
        registry.register(
            "upstream_up",
            "1 while an upstream's last request did not fail, else 0: each [[upstreams]] URL by its name, and `default` (the go command's GOPROXY) by the last fill that reached it",
            upstream_up.clone(),
        );
        let cache_zip_bytes = Gauge::default();
        registry.register(
            "cache_zip_bytes",
            "Bytes of a file store's hot zips in memory: kept, or still being sent",
            cache_zip_bytes.clone(),
        );
        let process = crate::process_metrics::ProcessMetrics::register(&mut registry);
        Metrics {
            cache_zip_bytes,
            hot_zips_synced: std::sync::Mutex::new(()),
            upstream_requests,
            process,
            registry,
            store_bytes,
            store_versions,
            store_modules,
            ledger_sync_failures,
            blocked_answers,
            version_refusals,
            version_refusals_dry_run,
            audit_dropped,
            vuln_syncs,
            vuln_modified,
            vuln_entries,
            fill_budget_refusals,
            collections,
            prefetches,
            collected_versions,
            collected_bytes,
            auth_checks,
            auth_queued,
            cache_hits,
            cache_misses,
            storage_operations,
            storage_errors,
            storage_duration,
            requests,
            request_duration,
            response_bytes,
            open_connections,
            fills,
            fill_duration,
            fill_joins,
            fills_in_flight,
            fill_waiting,
            upstream_up,
            sumdb_route_up,
            queue_depth,
            queue_dropped,
            trace_spans,
            sumdb_tile_cache_hits,
            sumdb_tile_cache_misses,
        }
    }

    /// Counts a lookup in the in-memory cache `cache`.
    pub fn cache_lookup(&self, cache: &'static str, hit: bool) {
        let family = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        family.get_or_create(&CacheLabels { cache }).inc();
    }

    /// Hits and misses of each in-memory cache since start, for the status page.
    pub fn cache_counts(&self) -> Vec<(&'static str, u64, u64)> {
        self.sync_hot_zips();
        CACHE_NAMES
            .iter()
            .map(|&cache| {
                let labels = CacheLabels { cache };
                let count = |family: &Family<CacheLabels, Counter>| {
                    family.get(&labels).map_or(0, |c| c.get())
                };
                (cache, count(&self.cache_hits), count(&self.cache_misses))
            })
            .collect()
    }

    /// Whether a route to the checksum database `db` was found at its last probe.
    pub fn sumdb_route(&self, db: &str, up: bool) {
        self.sumdb_route_up
            .get_or_create(&DbLabels { db: db.to_string() })
            .set(i64::from(up));
    }

    /// The store's totals, as the ledger knows them.
    pub fn store_totals(&self, modules: u64, versions: u64, bytes: u64) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.store_bytes.set(gauge(bytes));
        self.store_versions.set(gauge(versions));
        self.store_modules.set(gauge(modules));
    }

    /// Counts a password check with its result (see `layers::auth`).
    pub fn auth_check(&self, result: &'static str) {
        self.auth_counter(result).inc();
    }

    /// The counter of checks with this result, to keep where a check runs on every request.
    pub fn auth_counter(&self, result: &'static str) -> Counter {
        self.auth_checks
            .get_or_create(&ResultLabels { result })
            .clone()
    }

    /// A version refused by a version rule of this kind (`dry_run`: only logged).
    pub fn version_refused(&self, kind: &'static str, dry_run: bool) {
        let family = if dry_run {
            &self.version_refusals_dry_run
        } else {
            &self.version_refusals
        };
        family.get_or_create(&ResultLabels { result: kind }).inc();
    }

    /// A prefetch event (`fetched`, `failed`, `followed`, `over_budget`).
    pub fn prefetch(&self, result: &'static str) {
        self.prefetches
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// The default upstream (the go command's `GOPROXY`) answered the last fill that reached it (`up`), or
    /// failed or timed out: `ferry_upstream_up{upstream="default"}`.
    pub fn default_upstream(&self, up: bool) {
        let name = UpstreamName {
            upstream: DEFAULT_UPSTREAM.to_string(),
        };
        self.upstream_up.get_or_create(&name).set(i64::from(up));
    }

    /// The observer the fetcher tells of each `[[upstreams]]` step's outcome; each step starts up (1).
    pub fn upstream_observer(&'static self, labels: &[String]) -> ferry_fetcher::UpstreamObserver {
        for upstream in labels {
            let name = UpstreamName {
                upstream: upstream.clone(),
            };
            self.upstream_up.get_or_create(&name).set(1);
        }
        ferry_fetcher::UpstreamObserver(std::sync::Arc::new(move |upstream, result| {
            let labels = UpstreamLabels {
                upstream: upstream.to_string(),
                result: result.as_str(),
            };
            self.upstream_requests.get_or_create(&labels).inc();
            let up = i64::from(result != ferry_fetcher::UpstreamResult::Error);
            let name = UpstreamName {
                upstream: upstream.to_string(),
            };
            self.upstream_up.get_or_create(&name).set(up);
        }))
    }

    /// Brings the `zip` cache's counters and bytes up to the file store's own totals (kept by the store,
    /// which knows no metrics).
    fn sync_hot_zips(&self) {
        let totals = ferry_storage::hot_zip_totals();
        let _one_at_a_time = self.hot_zips_synced.lock();
        for (family, total) in [
            (&self.cache_hits, totals.hits),
            (&self.cache_misses, totals.misses),
        ] {
            let counter = family.get_or_create(&CacheLabels { cache: "zip" });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        self.cache_zip_bytes
            .set(i64::try_from(totals.bytes).unwrap_or(i64::MAX));
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        self.process.refresh();
        self.sync_hot_zips();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
