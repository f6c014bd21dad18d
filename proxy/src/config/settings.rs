//! Every setting, declared once: its file key, environment variable, flag, documented default, help line,
//! what the file must hold and how `ferry config` shows its effective value.
//!
//! Everything else follows from this table: the loader reads each row flag first, then the environment,
//! then the file (`given.rs`), the file reader refuses keys no row names (`file.rs`),
//! `ferry config` prints one line per row, and the tests hold `docs/configuration.md` and `ferry --help`
//! to it. What a value means (parsing it into its owner's settings) is the consumer's, in
//! [`super::load`]: a row is referred to there by its constant, never by its spelling.

use std::time::Duration;

use super::Config;
use super::LogFormat;
use crate::coordination::settings::Engine;

/// What the configuration file holds for a setting, and where else it may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string (an address, a path, a duration, a size, a name).
    Text,
    /// A whole number (in the environment, its digits).
    Number,
    /// `true` or `false` (in the environment also `1`/`0`, `on`/`off`).
    Switch,
    /// A list of strings, or one comma-separated string (`sumdbs`).
    List,
    /// One word of a few (`prefetch.zips`); in a file `true` and `false` are taken too, as the words.
    Choice,
    /// One of the download policy's two settings: also read from the Athens variable named (after Ferry's
    /// own, as Athens users expect), and an empty value counts as unset, as `ferry_policy::load` has it.
    Policy { athens: &'static str },
    /// A variable of the `go` command: `[fetcher] go_env` wins over Ferry's environment (the go command
    /// gets both, the table's last).
    GoVariable,
    /// An open table of entries (`[fetcher] go_env`, `[storage_options]`), one `ferry config` line per
    /// entry given; `also` are older names of the same table.
    Table { also: &'static [&'static str] },
    /// An array of tables (`[[access]]`, `[[oidc]]`, `[[upstreams]]`), file only: each table's keys are
    /// recorded as `KEY.N.NAME` (with their places) and read by the row's owner; `ferry config` shows one
    /// line for all of them.
    Tables,
}

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// As written in the TOML file, dotted inside a table (`fetcher.timeout`); empty for a setting the
    /// file cannot hold.
    pub key: &'static str,
    /// Its environment variable; empty for an open table (whose entries have the backend's variables).
    pub env: &'static str,
    /// Its command-line flag with its value's name (`--listen IP:PORT`), for the few that have one.
    pub flag: Option<&'static str>,
    /// The default, as the configuration reference writes it.
    pub default: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
    pub kind: Kind,
    /// The effective value, as `ferry config` prints it (before credentials are redacted).
    pub show: fn(&Config) -> String,
}

impl Setting {
    /// How `ferry config` names it: the file key, else the variable.
    pub fn name(&self) -> &'static str {
        if self.key.is_empty() {
            self.env
        } else {
            self.key
        }
    }

    /// The variables it is read from, in precedence order.
    pub fn variables(&self) -> impl Iterator<Item = &'static str> {
        let athens = match self.kind {
            Kind::Policy { athens } => Some(athens),
            _ => None,
        };
        std::iter::once(self.env)
            .filter(|name| !name.is_empty())
            .chain(athens)
    }
}

/// Declares each row as a constant (for its consumer) and [`SETTINGS`], every row in order.
macro_rules! settings {
    ($($(#[$doc:meta])* $name:ident = $row:expr;)*) => {
        $($(#[$doc])* pub const $name: Setting = $row;)*
        /// Every setting, in the order of `docs/configuration.md` and of `ferry config`.
        pub static SETTINGS: &[&Setting] = &[$(&$name),*];
    };
}

/// A row with no flag, of kind [`Kind::Text`]: what most rows are.
const fn text(
    key: &'static str,
    env: &'static str,
    default: &'static str,
    help: &'static str,
    show: fn(&Config) -> String,
) -> Setting {
    Setting {
        key,
        env,
        flag: None,
        default,
        help,
        kind: Kind::Text,
        show,
    }
}

/// A whole-number row with no flag.
const fn number(
    key: &'static str,
    env: &'static str,
    default: &'static str,
    help: &'static str,
    show: fn(&Config) -> String,
) -> Setting {
    Setting {
        kind: Kind::Number,
        ..text(key, env, default, help, show)
    }
}

/// A variable of the `go` command, shown as Ferry's `go` will see it.
/// Its `show` is what is shown when neither Ferry's environment nor `go_env` sets it.
const fn go_variable(
    name: &'static str,
    default: &'static str,
    help: &'static str,
    unset: fn(&Config) -> String,
) -> Setting {
    Setting {
        kind: Kind::GoVariable,
        ..text("", name, default, help, unset)
    }
}

settings! {
    CONFIG = Setting {
        flag: Some("--config FILE"),
        ..text("", "FERRY_CONFIG", "none", "TOML configuration file", |c| path_or_none(c.policy_sources.config_file.as_deref()))
    };
    LISTEN = Setting {
        flag: Some("--listen IP:PORT"),
        ..text("listen", "FERRY_LISTEN", "`127.0.0.1:3000`", "Address to listen on", |c| c.listen.to_string())
    };
    STORAGE = Setting {
        flag: Some("--storage URL"),
        ..text("storage", "FERRY_STORAGE", "`file://./ferry-data`", "Storage URL: file://PATH, memory://, s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX] or az://CONTAINER[/PREFIX]", |c| c.storage.to_string())
    };
    LOG_FORMAT = Setting {
        flag: Some("--log-format FORMAT"),
        ..text("log_format", "FERRY_LOG_FORMAT", "`text`", "Log format: text or json", |c| match c.log_format {
            LogFormat::Text => "text".into(),
            LogFormat::Json => "json".into(),
        })
    };
    HEADER_READ_TIMEOUT = text("header_read_timeout", "FERRY_HEADER_READ_TIMEOUT", "`30s`", "a request's deadline from a connection's opening or last answer", |c| duration(c.server.header_read_timeout));
    METRICS_LISTEN = text("metrics_listen", "FERRY_METRICS_LISTEN", "none", "serve /metrics on this address instead", |c| c.metrics_listen.map_or("none".into(), |a| a.to_string()));
    ADMIN_LISTEN = text("admin_listen", "FERRY_ADMIN_LISTEN", "none", "serve the admin API (/admin/v1/) on this address", |c| c.admin_listen.map_or("none".into(), |a| a.to_string()));
    PATH_PREFIX = text("path_prefix", "FERRY_PATH_PREFIX", "none", "serve every endpoint under this path, behind a reverse proxy", |c| c.server.path_prefix.as_ref().map_or("none".into(), ToString::to_string));
    AUTH_FILE = text("auth_file", "FERRY_AUTH_FILE", "none", "an htpasswd file of bcrypt entries", |c| path_or_none(c.server.auth.as_ref().map(|a| a.path())));
    ACCESS = Setting {
        kind: Kind::Tables,
        ..text("access", "", "none", "[[access]] rules: who may read and administer which module patterns", |c| match c.access.len() {
            0 => "none".into(),
            1 => "1 rule".into(),
            n => format!("{n} rules"),
        })
    };
    AUDIT_LOG = text("audit_log", "FERRY_AUDIT_LOG", "`off`", "the audit trail's JSON lines: stderr, a file's path, or off", |c| c.audit_log.as_ref().map_or("off".into(), ToString::to_string));
    TOKEN_FILE = text("token_file", "FERRY_TOKEN_FILE", "none", "bearer tokens, as `ferry token create` writes them", |c| path_or_none(c.server.tokens.as_ref().map(|t| t.path())));
    OIDC = Setting {
        kind: Kind::Tables,
        ..text("oidc", "", "none", "OIDC issuers whose JWTs are accepted ([[oidc]] tables)", |c| c.server.oidc.as_ref().map_or("none".into(), |o| o.issuer_urls().join(", ")))
    };
    TLS_CERT = text("tls_cert", "FERRY_TLS_CERT", "none", "the server certificate chain, PEM", |c| path_or_none(c.server.tls.as_ref().map(|t| t.cert_path())));
    TLS_KEY = text("tls_key", "FERRY_TLS_KEY", "none", "the certificate's private key, PEM", |c| path_or_none(c.server.tls.as_ref().map(|t| t.key_path())));
    TRUSTED_PROXIES = Setting {
        kind: Kind::List,
        ..text("trusted_proxies", "FERRY_TRUSTED_PROXIES", "none", "proxies (addresses, CIDRs) whose X-Forwarded-For and X-Forwarded-Proto are believed", |c| c.server.trusted_proxies.to_string())
    };
    SEND_TIMEOUT = text("send_timeout", "FERRY_SEND_TIMEOUT", "`60s`", "drop a response the client takes nothing of for this long", |c| duration(c.server.send_timeout));
    MAX_CONNECTIONS = number("max_connections", "FERRY_MAX_CONNECTIONS", "`16384`", "connections open at once", |c| c.server.max_connections.to_string());
    SHUTDOWN_TIMEOUT = text("shutdown_timeout", "FERRY_SHUTDOWN_TIMEOUT", "`30s`", "how long in-flight requests get on shutdown", |c| duration(c.server.shutdown_timeout));
    /// Read by the logger (`main.rs`), not the loader.
    LOG = text("", "FERRY_LOG", "`info`", "log filter, in tracing's EnvFilter syntax", |c| c.given.text(&LOG).unwrap_or("info").to_string());
    /// Handed to the traces (`main.rs`, `traces.rs`), which read the other `OTEL_*` variables themselves.
    OTLP_ENDPOINT = text("otlp_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "none (traces off)", "export traces to this OTLP/HTTP collector, e.g. http://collector:4318", |c| c.otlp_endpoint.clone().unwrap_or_else(|| "none".into()));
    DOWNLOAD_MODE = Setting {
        kind: Kind::Policy { athens: "ATHENS_DOWNLOAD_MODE" },
        ..text("download_mode", "FERRY_DOWNLOAD_MODE", "`sync`", "what to do on a miss: a mode, file:PATH or custom:BASE64", download_mode)
    };
    DOWNLOAD_URL = Setting {
        kind: Kind::Policy { athens: "ATHENS_DOWNLOAD_URL" },
        ..text("download_url", "FERRY_DOWNLOAD_URL", "none", "where a bare redirect mode sends clients", |c| c.policy_sources.url.as_ref().map_or("none".into(), |(url, _)| url.clone()))
    };
    COORDINATION = text("coordination", "FERRY_COORDINATION", "`storage` on an `s3://`, `gs://` or `az://` store, else `local`", "how replicas on one store share fills", |c| match &c.coordination.engine {
        Engine::Local => "local".into(),
        Engine::Storage => "storage".into(),
        Engine::Redis(address) => address.to_string(),
    });
    LEASE_TIME = text("lease_time", "FERRY_LEASE_TIME", "`30s`", "how long a replica's hold on a fill lasts unless renewed", |c| duration(c.coordination.lease_time));
    SUMDBS = Setting {
        kind: Kind::List,
        ..text("sumdbs", "FERRY_SUMDBS", "`sum.golang.org`", "the checksum databases relayed under /sumdb/", |c| {
            let names: Vec<String> = c.sumdb.databases.iter().map(|d| d.to_string()).collect();
            if names.is_empty() { "off".into() } else { names.join(", ") }
        })
    };
    SUMDB_PRIVATE = Setting {
        kind: Kind::List,
        ..text("sumdb_private", "FERRY_SUMDB_PRIVATE", "none", "module path patterns never looked up in a checksum database (403)", |c| {
            let own: Vec<&str> = c.sumdb.private.iter().filter(|p| p.from == SUMDB_PRIVATE.key).map(|p| p.pattern.as_str()).collect();
            if own.is_empty() { "none".into() } else { own.join(", ") }
        })
    };
    SUMDB_TIMEOUT = text("sumdb_timeout", "FERRY_SUMDB_TIMEOUT", "`30s`", "the wait for a checksum database's answer", |c| duration(c.sumdb.timeout));
    VULN_ENABLED = Setting {
        kind: Kind::Switch,
        ..text("vuln.enabled", "FERRY_VULN_ENABLED", "`true`", "serve the Go vulnerability database under /vuln/", |c| c.vuln.enabled.to_string())
    };
    VULN_URL = text("vuln.url", "FERRY_VULN_URL", "`https://vuln.go.dev`", "where the vulnerability database is synced from (none: imports only)", |c| c.vuln.url.clone().unwrap_or_else(|| "none".into()));
    VULN_EVERY = text("vuln.every", "FERRY_VULN_EVERY", "`1h`", "how often the vulnerability database's db.json is checked for a change", |c| duration(c.vuln.every));
    VULN_REFUSE_AFFECTED = Setting {
        kind: Kind::Switch,
        ..text("vuln.refuse_affected", "FERRY_VULN_REFUSE_AFFECTED", "`false`", "refuse (403) the zip of a version an advisory affects when a fix exists", |c| c.vuln.refuse_affected.to_string())
    };
    LEDGER_SYNC_INTERVAL = text("ledger.sync_interval", "FERRY_LEDGER_SYNC_INTERVAL", "`2s`", "how often a replica writes its ledger events and reads the others'", |c| duration(c.ledger.sync_interval));
    LEDGER_ACCESS_INTERVAL = text("ledger.access_interval", "FERRY_LEDGER_ACCESS_INTERVAL", "`1m`", "how often the last uses of served versions are written", |c| duration(c.ledger.access_interval));
    GC_MAX_BYTES = text("gc.max_bytes", "FERRY_GC_MAX_BYTES", "none", "collect the least recently used versions while the store holds more", |c| c.gc.max_bytes.map_or("none".into(), |b| size(usize::try_from(b).unwrap_or(usize::MAX))));
    GC_UNUSED_FOR = text("gc.unused_for", "FERRY_GC_UNUSED_FOR", "none", "collect versions not served for this long", |c| c.gc.unused_for.map_or("none".into(), duration));
    GC_KEEP_LATEST = number("gc.keep_latest", "FERRY_GC_KEEP_LATEST", "`1`", "each module's newest versions never collected", |c| c.gc.keep_latest.to_string());
    GC_PROTECT = Setting {
        kind: Kind::List,
        ..text("gc.protect", "FERRY_GC_PROTECT", "none", "module patterns never collected", |c| if c.gc.protect.is_empty() { "none".into() } else { c.gc.protect.join(", ") })
    };
    GC_EVERY = text("gc.every", "FERRY_GC_EVERY", "none", "collect this often, on one replica at a time", |c| c.gc.every.map_or("none".into(), duration));
    PREFETCH_DEPTH = number("prefetch.depth", "FERRY_PREFETCH_DEPTH", "`1`", "levels of a filled go.mod's requirements fetched before they are asked for (0: off)", |c| c.prefetch.depth.to_string());
    PREFETCH_MAX_CONCURRENT = number("prefetch.max_concurrent", "FERRY_PREFETCH_MAX_CONCURRENT", "`8`", "prefetch fills running at once", |c| c.prefetch.max_concurrent.to_string());
    PREFETCH_ZIPS = Setting {
        kind: Kind::Choice,
        ..text("prefetch.zips", "FERRY_PREFETCH_ZIPS", "`builders`", "whose zips are fetched ahead: `builders` (clients that download zips), `all` (every .mod a client asks for), `off`", |c| c.prefetch.zips.to_string())
    };
    PREFETCH_PER_CLIENT = number("prefetch.per_client", "FERRY_PREFETCH_PER_CLIENT", "`5000`", "versions (.mod, .info or zip) a minute prefetched on behalf of one client address", |c| c.prefetch.per_client.to_string());
    GO = text("fetcher.go", "FERRY_GO", "`go` (looked up in `PATH`)", "the go command", |c| c.fetcher.go_binary.display().to_string());
    WORK_DIR = text("fetcher.work_dir", "FERRY_WORK_DIR", "`./ferry-work`", "where each go command gets its temporary directory", |c| c.fetcher.work_dir.display().to_string());
    FETCH_TIMEOUT = text("fetcher.timeout", "FERRY_FETCH_TIMEOUT", "`10m`", "deadline of one go command", |c| duration(c.fetcher.timeout));
    FETCH_CONCURRENCY = number("fetcher.max_concurrent", "FERRY_FETCH_CONCURRENCY", "4 per CPU, at least 8", "fills that clients wait on, running at once", |c| c.fills.fills.to_string());
    FETCH_SLOT_WAIT = text("fetcher.slot_wait", "FERRY_FETCH_SLOT_WAIT", "`30s`", "how long a request waits for a fetch slot", |c| duration(c.fills.slot_wait));
    FILL_RATE = text("fetcher.fill_rate", "FERRY_FILL_RATE", "`off`", "fills from the upstream each requester may start: off, N/s, N/m or N/h", |c| c.fills.fair_use.map_or("off".into(), |r| format!("{}/s", r.per_second)));
    FILL_BURST = number("fetcher.fill_burst", "FERRY_FILL_BURST", "`100`", "fills a requester may start at once, beyond fill_rate", |c| c.fills.fair_use.map_or("100".into(), |r| r.burst.to_string()));
    ASYNC_WORKERS = number("fetcher.async_workers", "FERRY_ASYNC_WORKERS", "`2`", "background fetches running at once", |c| c.fills.workers.to_string());
    ASYNC_QUEUE_SIZE = number("fetcher.async_queue_size", "FERRY_ASYNC_QUEUE_SIZE", "`1024`", "background fetches waiting at most", |c| c.fills.queue_size.to_string());
    FETCH_NATIVE = Setting {
        kind: Kind::Switch,
        ..text("fetcher.native", "FERRY_FETCH_NATIVE", "`true`", "fetch canonical versions over HTTP, verified", |c| c.fetcher.native.to_string())
    };
    GO_ENV = Setting {
        kind: Kind::Table { also: &[] },
        ..text("fetcher.go_env", "", "empty", "GO* variables for the go command", |_| "empty".into())
    };
    GOPROXY = go_variable("GOPROXY", "the `go` command's", "the go command's upstream", |_| "the go command's default".into());
    GOPRIVATE = go_variable("GOPRIVATE", "none", "the go command's private modules", |_| "none".into());
    GONOSUMDB = go_variable("GONOSUMDB", "none", "modules the go command checks against no checksum database", |_| "none".into());
    UPSTREAMS = Setting {
        kind: Kind::Tables,
        ..text("upstreams", "", "none", "[[upstreams]] tables: module patterns fetched from their own GOPROXY list", upstreams)
    };
    CACHE_TTL = text("cache.ttl", "FERRY_CACHE_TTL", "`60s`", "how long an upstream answer is served without asking again", |c| duration(c.cache.ttl));
    CACHE_STALE = text("cache.stale", "FERRY_CACHE_STALE", "`5m`", "how long past ttl an answer is still served while one refresh runs", |c| duration(c.cache.stale));
    CACHE_NOT_FOUND_TTL = text("cache.not_found_ttl", "FERRY_CACHE_NOT_FOUND_TTL", "`10s`", "how long an upstream not found is remembered", |c| duration(c.cache.not_found_ttl));
    CACHE_MAX_ENTRIES = number("cache.max_entries", "FERRY_CACHE_MAX_ENTRIES", "`10000`", "most upstream answers kept", |c| c.cache.max_entries.to_string());
    CACHE_MAX_BYTES = text("cache.max_bytes", "FERRY_CACHE_MAX_BYTES", "`\"16MiB\"`", "most bytes of upstream answers kept", |c| size(c.cache.max_bytes));
    CACHE_FILE_BYTES = text("cache.file_bytes", "FERRY_CACHE_FILE_BYTES", "`\"64MiB\"`", "most bytes of .info/.mod files kept", |c| size(c.cache.file_bytes));
    CACHE_ZIP_BYTES = text("cache.zip_bytes", "FERRY_CACHE_ZIP_BYTES", "`\"64MiB\"`", "most bytes of a file store's hot zips kept", |c| size(c.cache.zips.max_bytes));
    CACHE_ZIP_MAX = text("cache.zip_max", "FERRY_CACHE_ZIP_MAX", "`\"4MiB\"`", "the largest hot zip kept", |c| size(c.cache.zips.max_zip));
    STORAGE_OPTIONS = Setting {
        kind: Kind::Table { also: &["s3", "gcs"] },
        ..text("storage_options", "", "none", "object_store keys of a cloud store", |_| "none".into())
    };
}

/// The policy's source as given; a `custom:` download file is not echoed (it may hold a URL with
/// credentials, base64-encoded where no redaction would see it).
fn download_mode(config: &Config) -> String {
    match &config.policy_sources.mode {
        None => "sync".into(),
        Some((custom, _)) if custom.trim_start().starts_with("custom:") => {
            format!("custom:<a download file, {} characters>", custom.len())
        }
        Some((mode, _)) => mode.clone(),
    }
}

/// `NAME: PATTERNS -> PROXY LIST` per table; never a credential (the tables hold only where they are).
fn upstreams(config: &Config) -> String {
    use ferry_fetcher::UpstreamHop;
    let tables: Vec<String> = config
        .fetcher
        .upstreams
        .iter()
        .map(|route| {
            let patterns: Vec<String> = route.modules.iter().map(ToString::to_string).collect();
            let mut list = String::new();
            for (index, step) in route.steps.iter().enumerate() {
                list.push_str(match &step.hop {
                    UpstreamHop::Proxy { url, .. } => url,
                    UpstreamHop::Direct => "direct",
                    UpstreamHop::Off => "off",
                });
                if index + 1 < route.steps.len() {
                    list.push(if step.on_any_error { '|' } else { ',' });
                }
            }
            format!("{}: {} -> {list}", route.name, patterns.join(" "))
        })
        .collect();
    if tables.is_empty() {
        "none".into()
    } else {
        tables.join("; ")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_variable_and_flag_is_declared_once() {
        let mut seen = std::collections::BTreeSet::new();
        for row in SETTINGS {
            let names: std::collections::BTreeSet<&str> = [row.name()]
                .into_iter()
                .chain(row.variables())
                .chain(row.flag.map(|_| super::super::flags::long(row)))
                .collect();
            for name in names {
                assert!(seen.insert(name), "{name} declared twice");
            }
        }
    }
}
