//! The configuration as the status page shows it: what an operator checks at a glance, never a secret
//! (no credential, token, storage key or URL that may hold one, no path of a secret file: only whether
//! authentication and TLS are on).

use std::time::Duration;

use super::view::Summary;
use crate::config::Config;
use crate::coordination::Engine;

fn on_off(on: bool) -> String {
    if on { "on" } else { "off" }.to_string()
}

/// The summary of `config`, made once at start-up (`build_proxy`).
pub fn of(config: &Config) -> Summary {
    let duration = |d: Duration| humantime::format_duration(d).to_string();
    let policy = match (
        &config.policy_sources.config_file,
        &config.policy_sources.mode,
    ) {
        (Some(_), _) => "a download file".to_string(),
        (None, Some((mode, _))) => mode.clone(),
        (None, None) => "sync (the default)".to_string(),
    };
    let engine = match &config.coordination.engine {
        Engine::Local => None,
        Engine::Storage => Some("storage (leases in the store)".to_string()),
        // The Redis address may carry a password: only the kind is shown.
        Engine::Redis(_) => Some("redis".to_string()),
    };
    let sumdbs: Vec<String> = config
        .sumdb
        .databases
        .iter()
        .map(|db| db.name.clone())
        .collect();
    let server = &config.server;
    let rows = [
        ("Download mode", policy),
        ("Storage backend", config.storage.metric_label().to_string()),
        (
            "Path prefix",
            server
                .path_prefix
                .as_ref()
                .map_or("none".to_string(), |p| p.to_string()),
        ),
        ("Authentication", on_off(server.auth.is_some())),
        ("TLS", on_off(server.tls.is_some())),
        ("Fetch timeout", duration(config.fetcher.timeout)),
        (
            "Fills at once",
            format!(
                "{} (and {} background workers)",
                config.fills.fills, config.fills.workers
            ),
        ),
        ("Cache lifetime", duration(config.cache.ttl)),
        (
            "Checksum databases relayed",
            if sumdbs.is_empty() {
                "none".to_string()
            } else {
                sumdbs.join(", ")
            },
        ),
        (
            "Replicas",
            engine
                .clone()
                .unwrap_or_else(|| "one Ferry (no coordination)".to_string()),
        ),
        (
            "Metrics",
            if config.metrics_listen.is_some() {
                "on a listener of their own".to_string()
            } else {
                "at /metrics".to_string()
            },
        ),
        ("Admin API", on_off(config.admin_listen.is_some())),
        ("Garbage collection", on_off(config.gc.collects())),
    ];
    Summary {
        rows: rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        backend: config.storage.metric_label().to_string(),
        coordination: engine.map(|engine| (engine, config.coordination.lease_time)),
    }
}
