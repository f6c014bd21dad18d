//! `ferry config`: every setting with its effective value and where it came from, secrets redacted.
//!
//! The values are read back from the loaded [`Config`] (so they are what `ferry serve` would use), the
//! sources from [`Config::origins`]. A secret never reaches the report: URLs lose their `user:password@`,
//! storage options whose key names a credential show `<redacted>`, files (the htpasswd file, the TLS key)
//! are shown by path only.

use std::time::Duration;

use ferry_storage::StorageConfig;

use crate::config::{Config, Environment, LogFormat, Origin};
use crate::coordination::settings::Engine;

/// One line of the report (in JSON, an object with these three fields in this order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    /// As written in the TOML file (`fetcher.timeout`); the variable for a setting the file cannot hold.
    pub key: String,
    pub value: String,
    /// `default`, `flag --listen`, `env FERRY_LISTEN` or `file PATH:LINE:COL`.
    pub source: String,
}

/// How a setting's effective value is read back from the configuration.
type Show = fn(&Config) -> String;

/// Every setting: its key, its environment variable (the name its origin is recorded under) and its
/// value. `storage_options` and `fetcher.go_env` are open tables, one line per entry given.
const SETTINGS: &[(&str, &str, Show)] = &[
    ("FERRY_CONFIG", "FERRY_CONFIG", |c| {
        path_or_none(c.policy_sources.config_file.as_deref())
    }),
    ("listen", "FERRY_LISTEN", |c| c.listen.to_string()),
    ("storage", "FERRY_STORAGE", |c| c.storage.to_string()),
    ("log_format", "FERRY_LOG_FORMAT", |c| match c.log_format {
        LogFormat::Text => "text".into(),
        LogFormat::Json => "json".into(),
    }),
    ("header_read_timeout", "FERRY_HEADER_READ_TIMEOUT", |c| {
        duration(c.server.header_read_timeout)
    }),
    ("metrics_listen", "FERRY_METRICS_LISTEN", |c| {
        c.metrics_listen.map_or("none".into(), |a| a.to_string())
    }),
    ("auth_file", "FERRY_AUTH_FILE", |c| {
        path_or_none(c.server.auth.as_ref().map(|a| a.path()))
    }),
    ("tls_cert", "FERRY_TLS_CERT", |c| {
        path_or_none(c.server.tls.as_ref().map(|t| t.cert_path()))
    }),
    ("tls_key", "FERRY_TLS_KEY", |c| {
        path_or_none(c.server.tls.as_ref().map(|t| t.key_path()))
    }),
    ("send_timeout", "FERRY_SEND_TIMEOUT", |c| {
        duration(c.server.send_timeout)
    }),
    ("max_connections", "FERRY_MAX_CONNECTIONS", |c| {
        c.server.max_connections.to_string()
    }),
    ("shutdown_timeout", "FERRY_SHUTDOWN_TIMEOUT", |c| {
        duration(c.server.shutdown_timeout)
    }),
    // Read by the logger, not the loader: shown from the environment in `report`.
    ("FERRY_LOG", "FERRY_LOG", |_| "info".into()),
    ("download_mode", "FERRY_DOWNLOAD_MODE", download_mode),
    ("download_url", "FERRY_DOWNLOAD_URL", |c| {
        let s = &c.policy_sources;
        first_set([
            &s.ferry_download_url,
            &s.athens_download_url,
            &s.config_download_url,
        ])
        .unwrap_or("none")
        .to_string()
    }),
    ("coordination", "FERRY_COORDINATION", |c| {
        match &c.coordination.engine {
            Engine::Local => "local".into(),
            Engine::Storage => "storage".into(),
            Engine::Redis(address) => address.to_string(),
        }
    }),
    ("lease_time", "FERRY_LEASE_TIME", |c| {
        duration(c.coordination.lease_time)
    }),
    ("sumdbs", "FERRY_SUMDBS", |c| {
        let names: Vec<String> = c.sumdb.databases.iter().map(|d| d.to_string()).collect();
        if names.is_empty() {
            "off".into()
        } else {
            names.join(", ")
        }
    }),
    ("sumdb_timeout", "FERRY_SUMDB_TIMEOUT", |c| {
        duration(c.sumdb.timeout)
    }),
    ("fetcher.go", "FERRY_GO", |c| {
        c.fetcher.go_binary.display().to_string()
    }),
    ("fetcher.work_dir", "FERRY_WORK_DIR", |c| {
        c.fetcher.work_dir.display().to_string()
    }),
    ("fetcher.timeout", "FERRY_FETCH_TIMEOUT", |c| {
        duration(c.fetcher.timeout)
    }),
    ("fetcher.max_concurrent", "FERRY_FETCH_CONCURRENCY", |c| {
        c.fills.fills.to_string()
    }),
    ("fetcher.slot_wait", "FERRY_FETCH_SLOT_WAIT", |c| {
        duration(c.fills.slot_wait)
    }),
    ("fetcher.async_workers", "FERRY_ASYNC_WORKERS", |c| {
        c.fills.workers.to_string()
    }),
    ("fetcher.async_queue_size", "FERRY_ASYNC_QUEUE_SIZE", |c| {
        c.fills.queue_size.to_string()
    }),
    ("fetcher.native", "FERRY_FETCH_NATIVE", |c| {
        c.fetcher.native.to_string()
    }),
    ("fetcher.go_env", "", |_| "empty".into()),
    ("cache.ttl", "FERRY_CACHE_TTL", |c| duration(c.cache.ttl)),
    ("cache.stale", "FERRY_CACHE_STALE", |c| {
        duration(c.cache.stale)
    }),
    ("cache.not_found_ttl", "FERRY_CACHE_NOT_FOUND_TTL", |c| {
        duration(c.cache.not_found_ttl)
    }),
    ("cache.max_entries", "FERRY_CACHE_MAX_ENTRIES", |c| {
        c.cache.max_entries.to_string()
    }),
    ("cache.max_bytes", "FERRY_CACHE_MAX_BYTES", |c| {
        size(c.cache.max_bytes)
    }),
    ("cache.file_bytes", "FERRY_CACHE_FILE_BYTES", |c| {
        size(c.cache.file_bytes)
    }),
    ("storage_options", "", |_| "none".into()),
];

/// The report: one line per setting (per entry of an open table that has entries), in the order of
/// `docs/configuration.md`.
pub fn report(config: &Config, env: &dyn Environment) -> Vec<Line> {
    let origins = &config.origins;
    let mut lines = Vec::new();
    for (key, variable, show) in SETTINGS {
        let entries = open_table_entries(config, key);
        if !entries.is_empty() {
            lines.extend(entries);
            continue;
        }
        let (value, origin) = if *key == "FERRY_LOG"
            && let Some(filter) = env.var("FERRY_LOG")
        {
            (filter, Origin::Env("FERRY_LOG"))
        } else {
            let origin = origins.by_variable.get(variable).cloned();
            (show(config), origin.unwrap_or(Origin::Default))
        };
        lines.push(Line {
            key: key.to_string(),
            value: redact_credentials(&value),
            source: source(&origin),
        });
    }
    lines
}

/// The lines of an open table (`storage_options`, with the older `[s3]`/`[gcs]` and the store's
/// environment; `fetcher.go_env`), secrets redacted; empty when nothing was given.
fn open_table_entries(config: &Config, table: &str) -> Vec<Line> {
    let in_table = |key: &str| match table {
        "storage_options" => ["storage_options.", "s3.", "gcs."]
            .iter()
            .any(|t| key.starts_with(t)),
        _ => key.starts_with(&format!("{table}.")),
    };
    let mut lines: Vec<Line> = config
        .origins
        .table_entries
        .iter()
        .filter(|entry| in_table(&entry.key))
        .map(|entry| {
            let name = entry.key.rsplit('.').next().unwrap_or_default();
            // A storage option by the store's own rule; a go_env name by the words of a credential (the
            // store's rule would hide GOPROXY, whose URL credentials are redacted anyway).
            let secret = match table {
                "storage_options" => ferry_storage::is_secret(name),
                _ => ["SECRET", "TOKEN", "PASSWORD", "CREDENTIAL", "KEY"]
                    .iter()
                    .any(|word| name.to_ascii_uppercase().contains(word)),
            };
            let value = if secret {
                "<redacted>".to_string()
            } else {
                redact_credentials(&entry.value)
            };
            Line {
                key: entry.key.clone(),
                value,
                source: source(&entry.origin),
            }
        })
        .collect();
    if let ("storage_options", StorageConfig::Cloud(cloud)) = (table, &config.storage) {
        lines.extend(cloud.settings_from_environment().into_iter().map(
            |(key, value, variable)| Line {
                key: format!("storage_options.{key}"),
                value: redact_credentials(&value),
                source: format!("env {variable}"),
            },
        ));
    }
    lines
}

/// How a source is shown.
fn source(origin: &Origin) -> String {
    match origin {
        Origin::Default => "default".into(),
        Origin::File { .. } => format!("file {origin}"),
        Origin::Env(name) => format!("env {name}"),
        Origin::Flag(name) => format!("flag {name}"),
    }
}

/// The policy's source as given; a `custom:` download file is not echoed (it may hold a URL with
/// credentials, base64-encoded where no redaction would see it).
fn download_mode(config: &Config) -> String {
    let s = &config.policy_sources;
    match first_set([
        &s.ferry_download_mode,
        &s.athens_download_mode,
        &s.config_download_mode,
    ]) {
        None => "sync".into(),
        Some(custom) if custom.trim_start().starts_with("custom:") => {
            format!("custom:<a download file, {} characters>", custom.len())
        }
        Some(mode) => mode.to_string(),
    }
}

/// The first value set and not empty: the policy's precedence (FERRY_*, ATHENS_*, the file).
fn first_set<const N: usize>(values: [&Option<String>; N]) -> Option<&str> {
    values
        .into_iter()
        .find_map(|v| v.as_deref().filter(|v| !v.is_empty()))
}

fn path_or_none(path: Option<&std::path::Path>) -> String {
    path.map_or("none".into(), |p| p.display().to_string())
}

fn duration(value: Duration) -> String {
    humantime::format_duration(value).to_string()
}

/// `64MiB` for a whole number of MiB (KiB), else bytes.
fn size(bytes: usize) -> String {
    match bytes {
        0 => "0".into(),
        b if b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => b.to_string(),
    }
}

/// `text` with the `user:password@` of every URL in it replaced by `***@` (also in lists such as
/// `GOPROXY=https://u:p@a,direct`).
pub fn redact_credentials(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        shown.push_str(head);
        let authority_end = tail
            .find(|c: char| "/?#,| ".contains(c))
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(credentials_end) => {
                shown.push_str("***");
                rest = &tail[credentials_end..];
            }
            None => rest = tail,
        }
    }
    shown.push_str(rest);
    shown
}

/// The report as aligned columns under a header: KEY, VALUE, SOURCE.
pub fn render_text(lines: &[Line]) -> String {
    let key_width = lines.iter().map(|l| l.key.len()).max().unwrap_or(0).max(3);
    let value_width = lines
        .iter()
        .map(|l| l.value.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut text = format!("{:key_width$}  {:value_width$}  SOURCE\n", "KEY", "VALUE");
    for line in lines {
        text.push_str(&format!(
            "{:key_width$}  {:value_width$}  {}\n",
            line.key, line.value, line.source
        ));
    }
    text
}

/// The report as a JSON array of `{"key", "value", "source"}` objects, in the text's order.
pub fn render_json(lines: &[Line]) -> String {
    let mut text = serde_json::to_string_pretty(lines).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loader reads a setting by its variable: one it names that the report lacks fails here (the
    /// documentation's side is `config_cmd.rs`'s test).
    #[test]
    fn every_variable_the_loader_reads_has_a_line_in_the_report() {
        let loader = include_str!("config.rs");
        let mut read: Vec<&str> = loader
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|text| {
                text.starts_with("FERRY_")
                    && text[6..]
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_')
            })
            .collect();
        read.sort_unstable();
        read.dedup();
        assert!(read.len() > 30, "{read:?}");
        let reported: Vec<&str> = SETTINGS.iter().map(|(_, variable, _)| *variable).collect();
        let missing: Vec<&&str> = read.iter().filter(|v| !reported.contains(v)).collect();
        assert!(missing.is_empty(), "not in ferry config: {missing:?}");
    }

    #[test]
    fn credentials_in_urls_and_url_lists_are_replaced() {
        assert_eq!(
            redact_credentials("redis://user:hunter2@127.0.0.1:6379/1"),
            "redis://***@127.0.0.1:6379/1"
        );
        assert_eq!(
            redact_credentials("https://u:p@a.example/x,direct|https://b.example"),
            "https://***@a.example/x,direct|https://b.example"
        );
        assert_eq!(
            redact_credentials("plain text, no url"),
            "plain text, no url"
        );
        assert_eq!(
            redact_credentials("https://a.example/p@th"),
            "https://a.example/p@th"
        );
    }
}
