//! The settings as given, handed to their owners: each function fills one owner's settings from its rows
//! (by their constants), over the owner's own defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_fetcher::FetcherConfig;
use ferry_storage::{Culprit, StorageConfig, StorageError, StorageOptions};

use super::env::Environment;
use super::file::{ConfigFile, FileValue};
use super::settings as row;
use super::{ConfigError, DEFAULT_WORK_DIR, Given, Origin};
use crate::admin::gc::GcSettings;
use crate::cache::CacheSettings;
use crate::filler::FillSettings;
use crate::ledger::LedgerSettings;
use crate::prefetch::PrefetchSettings;
use crate::server::ServerSettings;
use crate::sumdb::{PrivatePattern, SumDb, SumDbSettings};
use crate::vuln::VulnSettings;
use ferry_module::Pattern;

/// The OTLP collector's base URL: an http:// or https:// URL.
pub(super) fn otlp_endpoint(given: &Given) -> Result<Option<String>, ConfigError> {
    given.parse(&row::OTLP_ENDPOINT, |text| {
        if text.starts_with("http://") || text.starts_with("https://") {
            Ok(text.trim_end_matches('/').to_string())
        } else {
            Err(format!(
                "OTLP endpoint {text:?} is not an http:// or https:// URL; write the collector's OTLP/HTTP base URL, e.g. \"http://collector:4318\""
            ))
        }
    })
}

pub(super) fn server(
    given: &Given,
    file: Option<&ConfigFile>,
) -> Result<ServerSettings, ConfigError> {
    let d = ServerSettings::default();
    Ok(ServerSettings {
        header_read_timeout: given
            .duration(&row::HEADER_READ_TIMEOUT)?
            .unwrap_or(d.header_read_timeout),
        send_timeout: given
            .duration(&row::SEND_TIMEOUT)?
            .unwrap_or(d.send_timeout),
        shutdown_timeout: given
            .duration(&row::SHUTDOWN_TIMEOUT)?
            .unwrap_or(d.shutdown_timeout),
        max_connections: given
            .count(&row::MAX_CONNECTIONS)?
            .unwrap_or(d.max_connections),
        auth: auth(given)?,
        tokens: tokens(given)?,
        oidc: oidc(file)?,
        tls: tls(given)?,
        trusted_proxies: Arc::new(trusted_proxies(given, file)?),
        path_prefix: given.parse(&row::PATH_PREFIX, crate::request::PathPrefix::parse)?,
        ..d
    })
}

/// `[[access]]`: the rules, each refused where it was written.
pub(super) fn access(file: Option<&ConfigFile>) -> Result<crate::access::Rules, ConfigError> {
    let Some(file) = file else {
        return Ok(crate::access::Rules::none());
    };
    crate::access::Rules::from_toml(&file.text).map_err(|e| ConfigError::Invalid {
        origin: file.origin_at(e.offset),
        message: e.message,
    })
}

/// `audit_log`: off, stderr, or a file that can be opened for appending now.
pub(super) fn audit_log(given: &Given) -> Result<Option<crate::audit::AuditTarget>, ConfigError> {
    let target = given.parse(&row::AUDIT_LOG, crate::audit::AuditTarget::parse)?;
    let Some(Some(target)) = target else {
        return Ok(None);
    };
    given.parse(&row::AUDIT_LOG, |_| crate::audit::check(&target))?;
    Ok(Some(target))
}

/// `trusted_proxies`: each entry an address or a network, checked where it was written.
fn trusted_proxies(
    given: &Given,
    file: Option<&ConfigFile>,
) -> Result<crate::layers::client::TrustedProxies, ConfigError> {
    let example = "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]";
    let mut networks = Vec::new();
    for (entry, origin) in
        list_entries(given, file, &row::TRUSTED_PROXIES, example)?.unwrap_or_default()
    {
        if entry.trim().is_empty() {
            continue;
        }
        let network = entry.parse().map_err(|why| ConfigError::Invalid {
            origin,
            message: format!("trusted_proxies: {why}"),
        })?;
        networks.push(network);
    }
    Ok(crate::layers::client::TrustedProxies::new(networks))
}

pub(super) fn fills(given: &Given) -> Result<FillSettings, ConfigError> {
    let d = FillSettings::default();
    Ok(FillSettings {
        fills: given.count(&row::FETCH_CONCURRENCY)?.unwrap_or(d.fills),
        slot_wait: given
            .duration(&row::FETCH_SLOT_WAIT)?
            .unwrap_or(d.slot_wait),
        workers: given.count(&row::ASYNC_WORKERS)?.unwrap_or(d.workers),
        queue_size: given.count(&row::ASYNC_QUEUE_SIZE)?.unwrap_or(d.queue_size),
        fair_use: fair_use(given)?,
    })
}

/// The `[prefetch]` table: how far and how fast requirements are fetched ahead.
pub(super) fn prefetch(given: &Given) -> Result<PrefetchSettings, ConfigError> {
    let d = PrefetchSettings::default();
    let depth = given.parse(&row::PREFETCH_DEPTH, |text| {
        text.parse::<u32>().map_err(|_| {
            format!("{text:?} is not a whole number; write e.g. 1 (0 turns prefetching off)")
        })
    })?;
    let per_client = given.parse(&row::PREFETCH_PER_CLIENT, |text| {
        match text.parse::<u32>() {
            Ok(0) | Err(_) => Err(format!("{text:?} is not a positive whole number; write e.g. 5000, or prefetch.depth = 0 to turn prefetching off")),
            Ok(n) => Ok(n),
        }
    })?;
    Ok(PrefetchSettings {
        depth: depth.unwrap_or(d.depth),
        max_concurrent: given
            .count(&row::PREFETCH_MAX_CONCURRENT)?
            .unwrap_or(d.max_concurrent),
        per_client: per_client.unwrap_or(d.per_client),
        zips: given
            .parse(&row::PREFETCH_ZIPS, crate::prefetch::ZipPrefetch::parse)?
            .unwrap_or(d.zips),
    })
}

/// `fetcher.fill_rate` and `fetcher.fill_burst`: each requester's budget of fills; none when the rate is
/// off (the default).
fn fair_use(given: &Given) -> Result<Option<crate::fair_use::FillRate>, ConfigError> {
    let rate = given.parse(&row::FILL_RATE, crate::fair_use::FillRate::parse_rate)?;
    let burst = given.count(&row::FILL_BURST)?.unwrap_or(100);
    Ok(rate.flatten().map(|per_second| crate::fair_use::FillRate {
        per_second,
        burst: u32::try_from(burst.max(1)).unwrap_or(u32::MAX),
    }))
}

/// The fetcher: its rows, `[fetcher] go_env`, and Ferry's environment for what the go command inherits.
pub(super) fn fetcher(
    given: &Given,
    file: Option<&ConfigFile>,
    env: &dyn Environment,
    fills: &FillSettings,
) -> Result<FetcherConfig, ConfigError> {
    let work_dir = given.text(&row::WORK_DIR).unwrap_or(DEFAULT_WORK_DIR);
    let mut fetcher = FetcherConfig::new(work_dir);
    if let Some(go) = given.text(&row::GO) {
        fetcher.go_binary = PathBuf::from(go);
    }
    fetcher.timeout = given
        .duration(&row::FETCH_TIMEOUT)?
        .unwrap_or(fetcher.timeout);
    fetcher.native = given.switch(&row::FETCH_NATIVE)?.unwrap_or(fetcher.native);
    fetcher.go_env = file
        .into_iter()
        .flat_map(|file| file.table(row::GO_ENV.key))
        .filter_map(|(name, entry)| match &entry.value {
            FileValue::Text(value) => Some((name.to_string(), value.clone())),
            _ => None,
        })
        .collect();
    fetcher.inherited_env = env.vars();
    fetcher.upstreams = super::upstreams::upstreams(file, env)?;
    let labels: Vec<String> = fetcher
        .upstreams
        .iter()
        .flat_map(|route| (0..route.steps.len()).map(|i| route.step_label(i)))
        .collect();
    if !labels.is_empty() {
        fetcher.upstream_observer = Some(crate::metrics::metrics().upstream_observer(&labels));
    }
    // The fetcher's own limit covers every budget, so that it never makes one kind of work wait for another.
    fetcher.max_concurrent = fills.go_commands();
    Ok(fetcher)
}

pub(super) fn cache(given: &Given) -> Result<CacheSettings, ConfigError> {
    let d = CacheSettings::default();
    let max_entries = given.parse(&row::CACHE_MAX_ENTRIES, |text| {
        text.parse().map_err(|_| {
            format!("{text:?} is not a whole number; write e.g. 10000 (0: nothing kept)")
        })
    })?;
    Ok(CacheSettings {
        ttl: given.duration(&row::CACHE_TTL)?.unwrap_or(d.ttl),
        stale: given.duration(&row::CACHE_STALE)?.unwrap_or(d.stale),
        not_found_ttl: given
            .duration(&row::CACHE_NOT_FOUND_TTL)?
            .unwrap_or(d.not_found_ttl),
        max_entries: max_entries.unwrap_or(d.max_entries),
        max_bytes: given.size(&row::CACHE_MAX_BYTES)?.unwrap_or(d.max_bytes),
        file_bytes: given.size(&row::CACHE_FILE_BYTES)?.unwrap_or(d.file_bytes),
        zips: ferry_storage::HotZipSettings {
            max_bytes: given
                .size(&row::CACHE_ZIP_BYTES)?
                .unwrap_or(d.zips.max_bytes),
            max_zip: given.size(&row::CACHE_ZIP_MAX)?.unwrap_or(d.zips.max_zip),
        },
    })
}

/// `sumdbs`, `sumdb_private` and `sumdb_timeout`; each entry is checked by [`SumDb::parse`] (each pattern by
/// [`Pattern::new`]) and a bad one reported where it was written. The private paths are `sumdb_private`'s
/// and those the go command keeps from the checksum database in Ferry's own environment (`GONOSUMDB`, else
/// `GOPRIVATE`, as in `go help private`).
pub(super) fn sumdb(
    given: &Given,
    file: Option<&ConfigFile>,
    fetcher: &FetcherConfig,
) -> Result<SumDbSettings, ConfigError> {
    let defaults = SumDbSettings::default();
    let timeout = given.parse(&row::SUMDB_TIMEOUT, |text| {
        match super::given::duration(text)? {
            std::time::Duration::ZERO => {
                Err("sumdb_timeout of 0 would fail every request; write e.g. \"30s\"".into())
            }
            timeout => Ok(timeout),
        }
    })?;
    let timeout = timeout.unwrap_or(defaults.timeout);
    let private = sumdb_private(given, file, fetcher)?;
    let example = "sumdbs = [\"sum.golang.org\", \"sum.corp.example=https://sum.corp.example\"]";
    let Some(entries) = list_entries(given, file, &row::SUMDBS, example)? else {
        return Ok(SumDbSettings {
            timeout,
            private,
            ..defaults
        });
    };
    let mut databases: Vec<SumDb> = Vec::new();
    for (entry, origin) in entries {
        let db = SumDb::parse(&entry).map_err(|message| ConfigError::Invalid {
            origin: origin.clone(),
            message,
        })?;
        if databases.iter().any(|known| known.name == db.name) {
            return Err(ConfigError::Invalid {
                origin,
                message: format!(
                    "checksum database {} is listed twice; keep one entry for it",
                    db.name
                ),
            });
        }
        databases.push(db);
    }
    Ok(SumDbSettings {
        databases,
        private,
        timeout,
    })
}

/// `sumdb_private`'s patterns (a bad one stops start-up), then Ferry's `GONOSUMDB`, else `GOPRIVATE`
/// (a malformed glob there is skipped, as the go command never matches it).
fn sumdb_private(
    given: &Given,
    file: Option<&ConfigFile>,
    fetcher: &FetcherConfig,
) -> Result<Vec<PrivatePattern>, ConfigError> {
    let example = "sumdb_private = [\"corp.example/*\"]";
    let mut private = Vec::new();
    for (entry, origin) in
        list_entries(given, file, &row::SUMDB_PRIVATE, example)?.unwrap_or_default()
    {
        let text = entry.trim();
        let text = text.strip_suffix('/').unwrap_or(text);
        // As in GONOSUMDB: an empty entry (a trailing comma) is no pattern.
        if text.is_empty() {
            continue;
        }
        let bad = |why: String| ConfigError::Invalid {
            origin: origin.clone(),
            message: format!("sumdb_private: pattern {text:?} {why}; {example}"),
        };
        let pattern = Pattern::new(text).map_err(|e| bad(e.to_string()))?;
        if let Some((problem, fix)) = pattern.never_matches() {
            return Err(bad(format!(
                "never matches a module path ({problem}; {fix})"
            )));
        }
        private.push(PrivatePattern {
            pattern,
            from: row::SUMDB_PRIVATE.key,
        });
    }
    let go = [
        ("GONOSUMDB", fetcher.go_variable("GONOSUMDB")),
        ("GOPRIVATE", fetcher.go_variable("GOPRIVATE")),
    ];
    if let Some((from, globs)) = go
        .into_iter()
        .find_map(|(n, v)| Some((n, v.filter(|v| !v.trim().is_empty())?)))
    {
        let patterns = globs
            .split(',')
            .map(|g| g.trim())
            .map(|g| g.strip_suffix('/').unwrap_or(g));
        for pattern in patterns.filter_map(|g| Pattern::new(g).ok()) {
            if pattern.never_matches().is_none() {
                private.push(PrivatePattern { pattern, from });
            }
        }
    }
    Ok(private)
}

/// The entries of a list setting, each with where it was written: the file's list (or comma-separated
/// string), else the variable's comma-separated value; `off` is the empty list (an environment variable
/// cannot say `[]`). `None` when the setting is not given.
fn list_entries(
    given: &Given,
    file: Option<&ConfigFile>,
    setting: &row::Setting,
    example: &str,
) -> Result<Option<Vec<(String, Origin)>>, ConfigError> {
    let Some((text, origin)) = given.get(setting) else {
        return Ok(None);
    };
    let entries = match (origin, file.and_then(|f| Some((f, f.entry(setting)?)))) {
        (Origin::File { .. }, Some((file, entry))) => file_entries(file, entry, setting, example)?,
        _ if text.trim() == "off" => Vec::new(),
        _ => text
            .split(',')
            .map(|entry| (entry.to_string(), origin.clone()))
            .collect(),
    };
    Ok(Some(entries))
}

/// A list setting's entries in the file, each at the place its text is written (else the value's start).
fn file_entries(
    file: &ConfigFile,
    entry: &super::file::Entry,
    setting: &row::Setting,
    example: &str,
) -> Result<Vec<(String, Origin)>, ConfigError> {
    let key = setting.key;
    let at = file.origin_at(entry.span.start);
    let place = |text: &str| {
        file.text
            .get(entry.span.clone())
            .and_then(|written| written.find(text))
            .map_or_else(|| at.clone(), |i| file.origin_at(entry.span.start + i))
    };
    match &entry.value {
        FileValue::Text(text) if text.trim() == "off" => Ok(Vec::new()),
        FileValue::Text(text) => Ok(text
            .split(',')
            .map(|entry| (entry.to_string(), place(entry.trim())))
            .collect()),
        FileValue::List(items) => items
            .iter()
            .map(|item| match item {
                Some(entry) => Ok((entry.clone(), place(entry))),
                None => Err(ConfigError::Invalid {
                    origin: at.clone(),
                    message: format!("{key}: each entry is a string; write e.g. {example}"),
                }),
            })
            .collect(),
        FileValue::Other => Err(ConfigError::Invalid {
            origin: at,
            message: format!(
                "{key} is a list of strings or one comma-separated string; write e.g. {example}"
            ),
        }),
    }
}

/// `auth_file`: the htpasswd file, read and checked now.
fn auth(given: &Given) -> Result<Option<Arc<crate::layers::auth::Auth>>, ConfigError> {
    let Some(path) = given.text(&row::AUTH_FILE) else {
        return Ok(None);
    };
    crate::layers::auth::Auth::load(Path::new(path))
        .map(|auth| Some(Arc::new(auth)))
        .map_err(ConfigError::AuthFile)
}

/// `token_file`: the bearer tokens, read and checked now.
fn tokens(given: &Given) -> Result<Option<Arc<crate::layers::auth::tokens::Tokens>>, ConfigError> {
    let Some(path) = given.text(&row::TOKEN_FILE) else {
        return Ok(None);
    };
    crate::layers::auth::tokens::Tokens::load(Path::new(path))
        .map(|tokens| Some(Arc::new(tokens)))
        .map_err(ConfigError::TokenFile)
}

/// `[[oidc]]`: the issuers whose JWTs are accepted, checked where they are written.
fn oidc(
    file: Option<&ConfigFile>,
) -> Result<Option<Arc<crate::layers::auth::oidc::Oidc>>, ConfigError> {
    let issuers = super::oidc::issuers(file)?;
    Ok((!issuers.is_empty()).then(|| Arc::new(crate::layers::auth::oidc::Oidc::new(issuers))))
}

/// `tls_cert` / `tls_key`: both or neither; the pair read and checked.
fn tls(given: &Given) -> Result<Option<Arc<crate::tls::Tls>>, ConfigError> {
    match (given.get(&row::TLS_CERT), given.get(&row::TLS_KEY)) {
        (None, None) => Ok(None),
        (Some((cert, _)), Some((key, _))) => crate::tls::Tls::load(Path::new(cert), Path::new(key))
            .map(|tls| Some(Arc::new(tls)))
            .map_err(ConfigError::Tls),
        (Some((_, origin)), None) => Err(ConfigError::Invalid {
            origin: origin.clone(),
            message: "tls_cert is set but tls_key is not; set both (tls_key or FERRY_TLS_KEY: the certificate's private key, PEM), or neither to serve plain HTTP".to_string(),
        }),
        (None, Some((_, origin))) => Err(ConfigError::Invalid {
            origin: origin.clone(),
            message: "tls_key is set but tls_cert is not; set both (tls_cert or FERRY_TLS_CERT: the certificate chain, PEM), or neither to serve plain HTTP".to_string(),
        }),
    }
}

/// The store the URL names, configured by the environment and the file's storage tables; a bad value is
/// reported where it was written.
pub(super) fn storage(
    url: &str,
    url_origin: Origin,
    file: Option<&ConfigFile>,
    env: &dyn Environment,
) -> Result<StorageConfig, ConfigError> {
    let mut options = StorageOptions::default();
    // For each option's index: where its key and its value are in the file.
    let mut places: Vec<(Origin, Origin)> = Vec::new();
    // `[storage_options]` for any backend; the older `[s3]` and `[gcs]` only for their scheme.
    for (table, scheme) in [
        ("storage_options", None),
        ("s3", Some("s3")),
        ("gcs", Some("gs")),
    ] {
        for (key, entry) in file.into_iter().flat_map(|file| file.table(table)) {
            let FileValue::Text(text) = &entry.value else {
                continue;
            };
            match scheme {
                None => options.push(key, text.clone()),
                Some(scheme) => options.push_for(scheme, key, text.clone()),
            };
            let file = file.expect("an entry is in a file");
            places.push((
                file.origin_at(entry.key_span.start),
                file.origin_at(entry.span.start),
            ));
        }
    }
    let storage_env: ferry_storage::Environment = env.vars().into_iter().collect();
    StorageConfig::from_url_with(url, &options, &storage_env).map_err(|e| {
        let mut message = e.to_string();
        let origin = match &e {
            StorageError::Config(config) => match &config.culprit {
                Culprit::OptionKey(i) => places[*i].0.clone(),
                Culprit::OptionValue(i) => places[*i].1.clone(),
                Culprit::Variable(name) => {
                    // The origin names the variable; the message need not say it twice.
                    let named = format!("environment variable {name}: ");
                    message = message.replacen(&named, "", 1);
                    // Origin names a variable by a static name; this one is leaked once, as start-up stops.
                    Origin::Env(Box::leak(name.clone().into_boxed_str()))
                }
                Culprit::Url => url_origin,
            },
            _ => url_origin,
        };
        ConfigError::Invalid { origin, message }
    })
}

/// The `[vuln]` table: whether `/vuln/` is served, its source (an `http(s)://` URL, or `none`) and how
/// often it is read (at least a second).
pub(super) fn vuln(given: &Given) -> Result<VulnSettings, ConfigError> {
    let d = VulnSettings::default();
    let enabled = given.switch(&row::VULN_ENABLED)?.unwrap_or(d.enabled);
    let url = given.parse(&row::VULN_URL, |text| {
        if text == "none" {
            return Ok(None);
        }
        match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Ok(Some(text.trim_end_matches('/').to_string()))
            }
            _ => Err(format!(
                "vuln.url {text:?} is not an http(s):// URL; write e.g. \"https://vuln.go.dev\", or \"none\" to fill the copy with ferry vuln import only"
            )),
        }
    })?;
    let every = given.parse(&row::VULN_EVERY, |text| {
        match super::given::duration(text)? {
            d if d < std::time::Duration::from_secs(1) => Err(
                "vuln.every under a second would read the source without pause; write e.g. \"1h\""
                    .into(),
            ),
            d => Ok(d),
        }
    })?;
    Ok(VulnSettings {
        enabled,
        url: url.unwrap_or(d.url),
        every: every.unwrap_or(d.every),
        refuse_affected: given
            .switch(&row::VULN_REFUSE_AFFECTED)?
            .unwrap_or(d.refuse_affected),
    })
}

/// The ledger's intervals: positive durations.
pub(super) fn ledger(given: &Given) -> Result<LedgerSettings, ConfigError> {
    let d = LedgerSettings::default();
    let positive = |what: &'static str| {
        move |text: &str| match super::given::duration(text)? {
            std::time::Duration::ZERO => {
                Err(format!("{what} of 0 would never wait; write e.g. \"2s\""))
            }
            interval => Ok(interval),
        }
    };
    Ok(LedgerSettings {
        sync_interval: given
            .parse(&row::LEDGER_SYNC_INTERVAL, positive("ledger.sync_interval"))?
            .unwrap_or(d.sync_interval),
        access_interval: given
            .parse(
                &row::LEDGER_ACCESS_INTERVAL,
                positive("ledger.access_interval"),
            )?
            .unwrap_or(d.access_interval),
    })
}

/// The `[gc]` table. A policy that would collect everything (`max_bytes = 0`, `unused_for = 0`) is refused
/// where it is written.
pub(super) fn gc(given: &Given) -> Result<GcSettings, ConfigError> {
    let d = GcSettings::new();
    let max_bytes = given.parse(&row::GC_MAX_BYTES, |text| {
        match super::given::parse_size(text) {
            Some(0) => Err("gc.max_bytes = 0 would delete every version; write the size the store may keep, e.g. \"500GiB\", or remove it".into()),
            Some(n) => Ok(n as u64),
            None => Err(format!("size {text:?} is not a number of bytes; write e.g. \"500GiB\"")),
        }
    })?;
    let unused_for = given.parse(&row::GC_UNUSED_FOR, |text| {
        match super::given::duration(text)? {
            std::time::Duration::ZERO => Err("gc.unused_for = 0 would delete every version; write how long an unused version is kept, e.g. \"90d\", or remove it".into()),
            d => Ok(d),
        }
    })?;
    let keep_latest = given.parse(&row::GC_KEEP_LATEST, |text| {
        text.parse::<usize>().map_err(|_| format!("{text:?} is not a whole number; write e.g. 1 (0: a module's newest versions may go too)"))
    })?;
    let every = given.parse(&row::GC_EVERY, |text| match super::given::duration(text)? {
        std::time::Duration::ZERO => {
            Err("gc.every of 0 would collect without pause; write e.g. \"24h\"".into())
        }
        d => Ok(d),
    })?;
    let protect = given.parse(&row::GC_PROTECT, |text| {
        let patterns = list_items(text);
        for pattern in &patterns {
            ferry_module::Pattern::new(pattern)
                .map_err(|e| format!("gc.protect pattern {pattern:?}: {e}"))?;
        }
        Ok(patterns)
    })?;
    Ok(GcSettings {
        max_bytes,
        unused_for,
        keep_latest: keep_latest.unwrap_or(d.keep_latest),
        protect: protect.unwrap_or_default(),
        every,
    })
}

/// The items of a list setting: a TOML array as written in the file, or a comma-separated string.
fn list_items(text: &str) -> Vec<String> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        #[derive(serde::Deserialize)]
        struct Wrapped {
            v: Vec<String>,
        }
        if let Ok(wrapped) = toml::from_str::<Wrapped>(&format!("v = {trimmed}")) {
            return wrapped
                .v
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect();
        }
    }
    trimmed
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
