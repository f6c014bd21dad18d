//! Ferry's configuration: defaults, then the TOML file, then the environment, then command-line flags.
//!
//! Every value remembers where it came from, so a bad one is reported with its file, line and column
//! (or its variable or flag) and what to write instead. The environment is read through [`Environment`],
//! so tests never change the process environment.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_fetcher::FetcherConfig;
use ferry_policy::{Policy, PolicySources};
use ferry_storage::{Culprit, StorageConfig, StorageError, StorageOptions};
use serde::Deserialize;
use toml::Spanned;

use crate::cache::CacheSettings;
use crate::coordination::CoordinationSettings;
use crate::server::ServerSettings;
use crate::sumdb::{SumDb, SumDbSettings};
use crate::upstream::FillSettings;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEFAULT_STORAGE: &str = "file://./ferry-data";
pub const DEFAULT_WORK_DIR: &str = "./ferry-work";

/// Read access to environment variables.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable, for what is passed on to the `go` command.
    fn vars(&self) -> BTreeMap<String, String>;
}

/// The process environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn vars(&self) -> BTreeMap<String, String> {
        // `std::env::vars` panics on a variable that is not UTF-8; such a variable is skipped instead.
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }
}

impl Environment for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.is_empty())
    }

    fn vars(&self) -> BTreeMap<String, String> {
        self.clone()
    }
}

/// Values given on the command line (each overrides the environment and the file).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub storage: Option<String>,
    pub log_format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The complete, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `/metrics` is served instead of on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    pub storage: StorageConfig,
    pub log_format: LogFormat,
    pub server: ServerSettings,
    pub policy: Policy,
    /// What the policy was loaded from, to load it again on SIGHUP.
    pub policy_sources: PolicySourceValues,
    pub fetcher: FetcherConfig,
    pub fills: FillSettings,
    pub cache: CacheSettings,
    /// How replicas sharing the store coordinate their fills.
    pub coordination: CoordinationSettings,
    /// The checksum databases relayed under `/sumdb/`.
    pub sumdb: SumDbSettings,
    /// Where each setting that was given came from (for `ferry config`).
    pub origins: Origins,
}

/// Where the settings that were given came from; a setting not listed has its default.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// By the setting's environment variable, its one name whatever the source (`FERRY_LISTEN` for
    /// `--listen`, `FERRY_LISTEN` and `listen` alike).
    pub by_variable: BTreeMap<&'static str, Origin>,
    /// The entries of the file's open tables as written: `storage_options.KEY`, `s3.KEY`, `gcs.KEY`,
    /// `fetcher.go_env.NAME`. Values are raw (they may be secrets): whoever shows them redacts.
    pub table_entries: Vec<TableEntry>,
}

/// One entry of an open table in the configuration file.
#[derive(Debug, Clone)]
pub struct TableEntry {
    /// `TABLE.KEY`, as a dotted TOML key.
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

/// The download-mode settings as found, owned, so the policy can be loaded again (on SIGHUP).
#[derive(Debug, Clone, Default)]
pub struct PolicySourceValues {
    pub ferry_download_mode: Option<String>,
    pub athens_download_mode: Option<String>,
    pub config_download_mode: Option<String>,
    pub ferry_download_url: Option<String>,
    pub athens_download_url: Option<String>,
    pub config_download_url: Option<String>,
    pub config_file: Option<PathBuf>,
}

impl PolicySourceValues {
    pub fn sources(&self) -> PolicySources<'_> {
        PolicySources {
            ferry_download_mode: self.ferry_download_mode.as_deref(),
            athens_download_mode: self.athens_download_mode.as_deref(),
            config_download_mode: self.config_download_mode.as_deref(),
            ferry_download_url: self.ferry_download_url.as_deref(),
            athens_download_url: self.athens_download_url.as_deref(),
            config_download_url: self.config_download_url.as_deref(),
            config_file: self.config_file.as_deref(),
        }
    }

    /// Loads the policy these values name (reading its file, for `file:`).
    pub fn load(&self) -> Result<Policy, ferry_policy::PolicyError> {
        ferry_policy::load(&self.sources())
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the default"),
            Origin::File { path, line, column } => write!(f, "{}:{line}:{column}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the configuration file: {source}; check the --config path", path = .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key: `FILE:LINE:COLUMN: message`.
    #[error("{origin}: {message}")]
    Syntax { origin: Origin, message: String },
    /// A value is not acceptable: where it came from, what is wrong, what to write instead.
    #[error("{origin}: {message}")]
    Invalid { origin: Origin, message: String },
    /// The download policy is invalid; every problem is listed with its location and fix.
    #[error("invalid download policy:\n{0}")]
    Policy(ferry_policy::PolicyError),
    /// The authentication file cannot be used: `FILE:LINE:COL: problem; fix` (never a hash).
    #[error("invalid authentication file: {0}")]
    AuthFile(crate::layers::auth::AuthFileError),
    /// The TLS certificate or key cannot be used: which setting, its file, what to do.
    #[error("invalid TLS configuration: {0}")]
    Tls(crate::tls::TlsError),
}

/// The file's keys; every one optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    storage: Option<Spanned<String>>,
    log_format: Option<Spanned<String>>,
    shutdown_timeout: Option<Spanned<String>>,
    header_read_timeout: Option<Spanned<String>>,
    send_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<u32>>,
    download_mode: Option<Spanned<String>>,
    download_url: Option<Spanned<String>>,
    fetcher: Option<FetcherSettings>,
    /// `[storage_options]`: object_store keys (and Ferry's own) for whichever cloud backend the storage
    /// URL picks, over its `AWS_*` / `GOOGLE_*` / `AZURE_*` environment.
    storage_options: Option<OptionsTable>,
    /// The older `[s3]` and `[gcs]` tables: the same keys, applied only to an `s3://` or `gs://` store.
    s3: Option<OptionsTable>,
    gcs: Option<OptionsTable>,
    cache: Option<CacheTable>,
    /// `local`, `storage` or `redis://...` (see coordination::settings).
    coordination: Option<Spanned<String>>,
    lease_time: Option<Spanned<String>>,
    /// The checksum databases to relay: a list of `NAME` / `NAME=URL` entries, or one comma-separated string.
    sumdbs: Option<Spanned<toml::Value>>,
    sumdb_timeout: Option<Spanned<String>>,
    auth_file: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
}

/// A storage options table as written, each key and value with its place in the file.
type OptionsTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// The `[fetcher]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FetcherSettings {
    go: Option<Spanned<String>>,
    work_dir: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    max_concurrent: Option<Spanned<u32>>,
    slot_wait: Option<Spanned<String>>,
    async_workers: Option<Spanned<u32>>,
    async_queue_size: Option<Spanned<u32>>,
    /// Fetch from a GOPROXY upstream over HTTP (verified) instead of through `go mod download`.
    native: Option<Spanned<bool>>,
    /// `GO*` variables for the `go` command, overriding Ferry's own environment.
    go_env: Option<BTreeMap<String, Spanned<String>>>,
}

/// The configuration file as read: its settings and what is needed to point into it.
struct ConfigFile {
    path: PathBuf,
    text: String,
    settings: FileSettings,
}

impl ConfigFile {
    fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let settings = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            origin: origin_in(path, &text, e.span().map_or(0, |s| s.start)),
            message: e.message().to_string(),
        })?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            text,
            settings,
        })
    }

    fn origin<T>(&self, value: &Spanned<T>) -> Origin {
        origin_in(&self.path, &self.text, value.span().start)
    }
}

fn origin_in(path: &Path, text: &str, offset: usize) -> Origin {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Origin::File {
        path: path.to_path_buf(),
        line,
        column,
    }
}

/// One setting, looked up flag first, then environment, then file.
struct Lookup<'a> {
    env: &'a dyn Environment,
    file: Option<&'a ConfigFile>,
    /// Where each setting found came from, by its environment variable.
    found: RefCell<BTreeMap<&'static str, Origin>>,
}

impl Lookup<'_> {
    fn get<T: ToString>(
        &self,
        flag: (&'static str, Option<&String>),
        env_name: &'static str,
        file_value: impl Fn(&FileSettings) -> Option<&Spanned<T>>,
    ) -> Option<(String, Origin)> {
        let found = if let Some(value) = flag.1 {
            (value.clone(), Origin::Flag(flag.0))
        } else if let Some(value) = self.env.var(env_name) {
            (value, Origin::Env(env_name))
        } else {
            let file = self.file?;
            let value = file_value(&file.settings)?;
            (value.get_ref().to_string(), file.origin(value))
        };
        self.found.borrow_mut().insert(env_name, found.1.clone());
        Some(found)
    }

    /// Where every setting given came from: what `get` found, and the settings read without it.
    fn origins(self, flags: &Flags) -> Origins {
        let (env, file) = (self.env, self.file);
        let mut by_variable = self.found.into_inner();
        if flags.config.is_some() {
            by_variable.insert("FERRY_CONFIG", Origin::Flag("--config"));
        } else if env.var("FERRY_CONFIG").is_some() {
            by_variable.insert("FERRY_CONFIG", Origin::Env("FERRY_CONFIG"));
        }
        // Where a file key was written (an empty value counts as unset, as for the policy's variables).
        let at = |value: fn(&FileSettings) -> Option<&Spanned<String>>| {
            let f = file?;
            let written = value(&f.settings).filter(|v| !v.get_ref().is_empty())?;
            Some(f.origin(written))
        };
        // The policy's precedence (ferry_policy::load): FERRY_*, then ATHENS_*, then the file.
        let policy = [
            (
                "FERRY_DOWNLOAD_MODE",
                "ATHENS_DOWNLOAD_MODE",
                at(|f| f.download_mode.as_ref()),
            ),
            (
                "FERRY_DOWNLOAD_URL",
                "ATHENS_DOWNLOAD_URL",
                at(|f| f.download_url.as_ref()),
            ),
        ];
        for (ferry, athens, in_file) in policy {
            let origin = [ferry, athens]
                .into_iter()
                .find(|name| env.var(name).is_some())
                .map(Origin::Env)
                .or(in_file);
            by_variable.extend(origin.map(|origin| (ferry, origin)));
        }
        // As load_sumdb reads them: the variable, else the file.
        let sumdbs = match env.var("FERRY_SUMDBS") {
            Some(_) => Some(Origin::Env("FERRY_SUMDBS")),
            None => file.and_then(|f| Some(f.origin(f.settings.sumdbs.as_ref()?))),
        };
        by_variable.extend(sumdbs.map(|origin| ("FERRY_SUMDBS", origin)));
        Origins {
            by_variable,
            table_entries: file.map(ConfigFile::table_entries).unwrap_or_default(),
        }
    }
}

impl ConfigFile {
    /// `[fetcher] go_env`: the variables for the `go` command (their places are for `table_entries`).
    fn go_env(&self) -> BTreeMap<String, String> {
        let table = self
            .settings
            .fetcher
            .as_ref()
            .and_then(|f| f.go_env.as_ref());
        table
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.clone(), value.get_ref().clone()))
            .collect()
    }

    /// The entries of the open tables (`[storage_options]`, `[s3]`, `[gcs]`, `[fetcher.go_env]`).
    fn table_entries(&self) -> Vec<TableEntry> {
        let settings = &self.settings;
        let options = [
            ("storage_options", &settings.storage_options),
            ("s3", &settings.s3),
            ("gcs", &settings.gcs),
        ];
        let mut entries: Vec<TableEntry> = options
            .into_iter()
            .flat_map(|(table, options)| options.iter().flatten().map(move |(k, v)| (table, k, v)))
            .map(|(table, key, value)| TableEntry {
                key: format!("{table}.{}", key.get_ref()),
                value: match value.get_ref() {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                },
                origin: self.origin(value),
            })
            .collect();
        let go_env = settings.fetcher.as_ref().and_then(|f| f.go_env.as_ref());
        entries.extend(
            go_env
                .into_iter()
                .flatten()
                .map(|(name, value)| TableEntry {
                    key: format!("fetcher.go_env.{name}"),
                    value: value.get_ref().clone(),
                    origin: self.origin(value),
                }),
        );
        entries
    }
}

/// Reads the configuration: defaults, then the file (`--config` or `FERRY_CONFIG`), then the
/// environment, then the flags.
pub fn load(flags: &Flags, env: &dyn Environment) -> Result<Config, ConfigError> {
    let file_path = flags
        .config
        .clone()
        .or_else(|| env.var("FERRY_CONFIG").map(PathBuf::from));
    let file = file_path.as_deref().map(ConfigFile::read).transpose()?;
    let lookup = Lookup {
        env,
        file: file.as_ref(),
        found: RefCell::default(),
    };

    let (listen, origin) = lookup
        .get(("--listen", flags.listen.as_ref()), "FERRY_LISTEN", |f| {
            f.listen.as_ref()
        })
        .unwrap_or_else(|| (DEFAULT_LISTEN.to_string(), Origin::Default));
    let listen = listen.parse().map_err(|_| ConfigError::Invalid {
        origin,
        message: format!("listen address {listen:?} is not IP:PORT; write e.g. \"127.0.0.1:3000\" or \"0.0.0.0:3000\""),
    })?;
    let metrics_listen = match lookup.get(("", None), "FERRY_METRICS_LISTEN", |f| {
        f.metrics_listen.as_ref()
    }) {
        None => None,
        Some((text, origin)) => Some(text.parse().map_err(|_| ConfigError::Invalid {
            origin,
            message: format!(
                "metrics listen address {text:?} is not IP:PORT; write e.g. \"127.0.0.1:9090\""
            ),
        })?),
    };

    let (storage, origin) = lookup
        .get(
            ("--storage", flags.storage.as_ref()),
            "FERRY_STORAGE",
            |f| f.storage.as_ref(),
        )
        .unwrap_or_else(|| (DEFAULT_STORAGE.to_string(), Origin::Default));
    let storage = load_storage(&storage, origin, file.as_ref(), env)?;

    let (log_format, origin) = lookup
        .get(
            ("--log-format", flags.log_format.as_ref()),
            "FERRY_LOG_FORMAT",
            |f| f.log_format.as_ref(),
        )
        .unwrap_or_else(|| ("text".to_string(), Origin::Default));
    let log_format = match log_format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(ConfigError::Invalid {
                origin,
                message: format!("log format {other:?} is unknown; write \"text\" or \"json\""),
            });
        }
    };

    let defaults = ServerSettings::default();
    let duration = |env_name: &'static str,
                    file_value: fn(&FileSettings) -> Option<&Spanned<String>>,
                    default: Duration| {
        match lookup.get(("", None), env_name, file_value) {
            None => Ok(default),
            Some((text, origin)) => parse_duration(&text, origin),
        }
    };
    let server = ServerSettings {
        header_read_timeout: duration(
            "FERRY_HEADER_READ_TIMEOUT",
            |f| f.header_read_timeout.as_ref(),
            defaults.header_read_timeout,
        )?,
        send_timeout: duration(
            "FERRY_SEND_TIMEOUT",
            |f| f.send_timeout.as_ref(),
            defaults.send_timeout,
        )?,
        shutdown_timeout: duration(
            "FERRY_SHUTDOWN_TIMEOUT",
            |f| f.shutdown_timeout.as_ref(),
            defaults.shutdown_timeout,
        )?,
        ..defaults
    };

    let file_text = |value: fn(&FileSettings) -> Option<&Spanned<String>>| {
        file.as_ref()
            .and_then(|f| value(&f.settings))
            .map(|v| v.get_ref().clone())
    };
    // Every source as found: their precedence is the policy crate's (ferry_policy::load).
    let policy_sources = PolicySourceValues {
        ferry_download_mode: env.var("FERRY_DOWNLOAD_MODE"),
        athens_download_mode: env.var("ATHENS_DOWNLOAD_MODE"),
        config_download_mode: file_text(|f| f.download_mode.as_ref()),
        ferry_download_url: env.var("FERRY_DOWNLOAD_URL"),
        athens_download_url: env.var("ATHENS_DOWNLOAD_URL"),
        config_download_url: file_text(|f| f.download_url.as_ref()),
        config_file: file.as_ref().map(|f| f.path.clone()),
    };
    let policy = policy_sources.load().map_err(ConfigError::Policy)?;

    let count = |env_name: &'static str,
                 file_value: fn(&FileSettings) -> Option<&Spanned<u32>>,
                 default: usize| {
        match lookup.get(("", None), env_name, file_value) {
            None => Ok(default),
            Some((text, origin)) => match text.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(ConfigError::Invalid {
                    origin,
                    message: format!("{text:?} is not a positive whole number; write e.g. 4"),
                }),
            },
        }
    };
    let work_dir = lookup
        .get(("", None), "FERRY_WORK_DIR", |f| {
            f.fetcher.as_ref()?.work_dir.as_ref()
        })
        .map_or_else(
            || PathBuf::from(DEFAULT_WORK_DIR),
            |(dir, _)| PathBuf::from(dir),
        );
    let mut fetcher = FetcherConfig::new(work_dir);
    if let Some((go, _)) = lookup.get(("", None), "FERRY_GO", |f| f.fetcher.as_ref()?.go.as_ref()) {
        fetcher.go_binary = PathBuf::from(go);
    }
    if let Some((text, origin)) = lookup.get(("", None), "FERRY_FETCH_TIMEOUT", |f| {
        f.fetcher.as_ref()?.timeout.as_ref()
    }) {
        fetcher.timeout = parse_duration(&text, origin)?;
    }
    if let Some((text, origin)) = lookup.get(("", None), "FERRY_FETCH_NATIVE", |f| {
        f.fetcher.as_ref()?.native.as_ref()
    }) {
        fetcher.native = match text.as_str() {
            "true" | "1" | "on" => true,
            "false" | "0" | "off" => false,
            _ => {
                return Err(ConfigError::Invalid {
                    origin,
                    message: format!("{text:?} is not on or off; write true or false"),
                });
            }
        };
    }
    fetcher.go_env = file.as_ref().map(ConfigFile::go_env).unwrap_or_default();
    fetcher.inherited_env = env.vars();
    let server = ServerSettings {
        max_connections: count(
            "FERRY_MAX_CONNECTIONS",
            |f| f.max_connections.as_ref(),
            server.max_connections,
        )?,
        ..server
    };
    let fill_defaults = FillSettings::default();
    let fills = FillSettings {
        fills: count(
            "FERRY_FETCH_CONCURRENCY",
            |f| f.fetcher.as_ref()?.max_concurrent.as_ref(),
            fill_defaults.fills,
        )?,
        slot_wait: match lookup.get(("", None), "FERRY_FETCH_SLOT_WAIT", |f| {
            f.fetcher.as_ref()?.slot_wait.as_ref()
        }) {
            Some((text, origin)) => parse_duration(&text, origin)?,
            None => fill_defaults.slot_wait,
        },
        workers: count(
            "FERRY_ASYNC_WORKERS",
            |f| f.fetcher.as_ref()?.async_workers.as_ref(),
            fill_defaults.workers,
        )?,
        queue_size: count(
            "FERRY_ASYNC_QUEUE_SIZE",
            |f| f.fetcher.as_ref()?.async_queue_size.as_ref(),
            fill_defaults.queue_size,
        )?,
    };
    let lease_time = match lookup.get(("", None), "FERRY_LEASE_TIME", |f| f.lease_time.as_ref()) {
        Some((text, origin)) => Some((parse_duration(&text, origin.clone())?, origin)),
        None => None,
    };
    let coordination = CoordinationSettings::load(
        lookup.get(("", None), "FERRY_COORDINATION", |f| {
            f.coordination.as_ref()
        }),
        lease_time,
        &storage,
    )?;
    // The fetcher's own limit covers every budget, so that it never makes one kind of work wait for another.
    fetcher.max_concurrent = fills.go_commands();
    let server = ServerSettings {
        auth: load_auth(&lookup)?,
        tls: load_tls(&lookup)?,
        ..server
    };
    Ok(Config {
        listen,
        metrics_listen,
        storage,
        log_format,
        server,
        policy,
        policy_sources,
        fetcher,
        fills,
        cache: load_cache(&lookup)?,
        coordination,
        sumdb: load_sumdb(&lookup)?,
        origins: lookup.origins(flags),
    })
}

/// `sumdbs` (`FERRY_SUMDBS`) and `sumdb_timeout` (`FERRY_SUMDB_TIMEOUT`); each entry is checked by
/// [`SumDb::parse`] and a bad one reported where it was written.
fn load_sumdb(lookup: &Lookup<'_>) -> Result<SumDbSettings, ConfigError> {
    let defaults = SumDbSettings::default();
    // Every entry with where it was written.
    let entries: Vec<(String, Origin)> = if let Some(text) = lookup.env.var("FERRY_SUMDBS") {
        let origin = Origin::Env("FERRY_SUMDBS");
        // `off`, as in GOSUMDB=off: an environment variable cannot say `[]`.
        if text.trim() == "off" {
            Vec::new()
        } else {
            text.split(',')
                .map(|entry| (entry.to_string(), origin.clone()))
                .collect()
        }
    } else if let Some((file, value)) = lookup
        .file
        .and_then(|file| Some((file, file.settings.sumdbs.as_ref()?)))
    {
        let at = file.origin(value);
        let span = value.span();
        // The place of one entry: its text inside the value, else the value's start.
        let place = |entry: &str| {
            file.text
                .get(span.clone())
                .and_then(|written| written.find(entry))
                .map_or_else(
                    || at.clone(),
                    |i| origin_in(&file.path, &file.text, span.start + i),
                )
        };
        match value.get_ref() {
            toml::Value::String(text) if text.trim() == "off" => Vec::new(),
            toml::Value::String(text) => text
                .split(',')
                .map(|entry| (entry.to_string(), place(entry.trim())))
                .collect(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(entry) => Ok((entry.clone(), place(entry))),
                    _ => Err(ConfigError::Invalid {
                        origin: at.clone(),
                        message: "sumdbs: each entry is a string; write e.g. sumdbs = [\"sum.golang.org\", \"sum.corp.example=https://sum.corp.example\"]".into(),
                    }),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(ConfigError::Invalid {
                    origin: at,
                    message: "sumdbs is a list of strings or one comma-separated string; write e.g. sumdbs = [\"sum.golang.org\"]".into(),
                });
            }
        }
    } else {
        return Ok(SumDbSettings {
            timeout: sumdb_timeout(lookup, defaults.timeout)?,
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
        timeout: sumdb_timeout(lookup, defaults.timeout)?,
    })
}

fn sumdb_timeout(lookup: &Lookup<'_>, default: Duration) -> Result<Duration, ConfigError> {
    match lookup.get(("", None), "FERRY_SUMDB_TIMEOUT", |f| {
        f.sumdb_timeout.as_ref()
    }) {
        Some((text, origin)) => match parse_duration(&text, origin.clone())? {
            Duration::ZERO => Err(ConfigError::Invalid {
                origin,
                message: "sumdb_timeout of 0 would fail every request; write e.g. \"30s\"".into(),
            }),
            timeout => Ok(timeout),
        },
        None => Ok(default),
    }
}

/// `auth_file` / `FERRY_AUTH_FILE`: the htpasswd file, read and checked now.
fn load_auth(
    lookup: &Lookup<'_>,
) -> Result<Option<std::sync::Arc<crate::layers::auth::Auth>>, ConfigError> {
    let Some((path, _)) = lookup.get(("", None), "FERRY_AUTH_FILE", |f| f.auth_file.as_ref())
    else {
        return Ok(None);
    };
    crate::layers::auth::Auth::load(Path::new(&path))
        .map(|auth| Some(std::sync::Arc::new(auth)))
        .map_err(ConfigError::AuthFile)
}

/// `tls_cert` / `tls_key` (`FERRY_TLS_CERT` / `FERRY_TLS_KEY`): both or neither; the pair read and checked.
fn load_tls(lookup: &Lookup<'_>) -> Result<Option<std::sync::Arc<crate::tls::Tls>>, ConfigError> {
    let cert = lookup.get(("", None), "FERRY_TLS_CERT", |f| f.tls_cert.as_ref());
    let key = lookup.get(("", None), "FERRY_TLS_KEY", |f| f.tls_key.as_ref());
    match (cert, key) {
        (None, None) => Ok(None),
        (Some((cert, _)), Some((key, _))) => crate::tls::Tls::load(Path::new(&cert), Path::new(&key))
            .map(|tls| Some(std::sync::Arc::new(tls)))
            .map_err(ConfigError::Tls),
        (Some((_, origin)), None) => Err(ConfigError::Invalid {
            origin,
            message: "tls_cert is set but tls_key is not; set both (tls_key or FERRY_TLS_KEY: the certificate's private key, PEM), or neither to serve plain HTTP".to_string(),
        }),
        (None, Some((_, origin))) => Err(ConfigError::Invalid {
            origin,
            message: "tls_key is set but tls_cert is not; set both (tls_cert or FERRY_TLS_CERT: the certificate chain, PEM), or neither to serve plain HTTP".to_string(),
        }),
    }
}

/// The `[cache]` table (see `docs/operations.md`, "Caching"); each key also a `FERRY_CACHE_*` variable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheTable {
    ttl: Option<Spanned<String>>,
    stale: Option<Spanned<String>>,
    not_found_ttl: Option<Spanned<String>>,
    max_entries: Option<Spanned<u32>>,
    max_bytes: Option<Spanned<String>>,
    file_bytes: Option<Spanned<String>>,
}

fn load_cache(lookup: &Lookup<'_>) -> Result<CacheSettings, ConfigError> {
    let defaults = CacheSettings::default();
    let duration =
        |env_name, value: fn(&CacheTable) -> Option<&Spanned<String>>, default| match lookup.get(
            ("", None),
            env_name,
            |f| value(f.cache.as_ref()?),
        ) {
            Some((text, origin)) => parse_duration(&text, origin),
            None => Ok(default),
        };
    let size = |env_name, value: fn(&CacheTable) -> Option<&Spanned<String>>, default| {
        match lookup.get(("", None), env_name, |f| value(f.cache.as_ref()?)) {
            Some((text, origin)) => parse_size(&text).ok_or_else(|| ConfigError::Invalid {
                origin,
                message: format!(
                    "size {text:?} is not a number of bytes; write e.g. \"64MiB\", \"512KiB\" or \"0\" (nothing kept)"
                ),
            }),
            None => Ok(default),
        }
    };
    let max_entries = match lookup.get(("", None), "FERRY_CACHE_MAX_ENTRIES", |f| {
        f.cache.as_ref()?.max_entries.as_ref()
    }) {
        Some((text, origin)) => text.parse().map_err(|_| ConfigError::Invalid {
            origin,
            message: format!("{text:?} is not a whole number; write e.g. 10000 (0: nothing kept)"),
        })?,
        None => defaults.max_entries,
    };
    Ok(CacheSettings {
        ttl: duration("FERRY_CACHE_TTL", |c| c.ttl.as_ref(), defaults.ttl)?,
        stale: duration("FERRY_CACHE_STALE", |c| c.stale.as_ref(), defaults.stale)?,
        not_found_ttl: duration(
            "FERRY_CACHE_NOT_FOUND_TTL",
            |c| c.not_found_ttl.as_ref(),
            defaults.not_found_ttl,
        )?,
        max_entries,
        max_bytes: size(
            "FERRY_CACHE_MAX_BYTES",
            |c| c.max_bytes.as_ref(),
            defaults.max_bytes,
        )?,
        file_bytes: size(
            "FERRY_CACHE_FILE_BYTES",
            |c| c.file_bytes.as_ref(),
            defaults.file_bytes,
        )?,
    })
}

/// `64MiB`, `512KiB`, `1GiB`, `10MB` or a plain number of bytes.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.parse::<usize>().ok()?.checked_mul(unit)
}

/// The store the URL names, configured by the environment and the file's storage tables; a bad value is
/// reported where it was written.
fn load_storage(
    url: &str,
    url_origin: Origin,
    file: Option<&ConfigFile>,
    env: &dyn Environment,
) -> Result<StorageConfig, ConfigError> {
    let mut options = StorageOptions::default();
    // For each option's index: where its key and its value are in the file.
    let mut places: Vec<(Origin, Origin)> = Vec::new();
    if let Some(file) = file {
        let tables = [
            (None, &file.settings.storage_options),
            (Some("s3"), &file.settings.s3),
            (Some("gs"), &file.settings.gcs),
        ];
        for (scheme, table) in tables {
            for (key, value) in table.iter().flatten() {
                let text = match value.get_ref() {
                    toml::Value::String(text) => text.clone(),
                    toml::Value::Boolean(flag) => flag.to_string(),
                    toml::Value::Integer(n) => n.to_string(),
                    _ => {
                        return Err(ConfigError::Invalid {
                            origin: file.origin(value),
                            message: format!(
                                "storage option {}: write a string, a whole number or true/false",
                                key.get_ref()
                            ),
                        });
                    }
                };
                let key_text = key.get_ref().clone();
                match scheme {
                    None => options.push(key_text, text),
                    Some(scheme) => options.push_for(scheme, key_text, text),
                };
                places.push((file.origin(key), file.origin(value)));
            }
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

pub(crate) fn parse_duration(text: &str, origin: Origin) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text).map_err(|e| ConfigError::Invalid {
        origin,
        message: format!("duration {text:?}: {e}; write e.g. \"30s\", \"2m\" or \"1h 30m\""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write_file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("ferry.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The flags of `ferry --config FILE`.
    fn with_file(file: &Path) -> Flags {
        Flags {
            config: Some(file.to_path_buf()),
            ..Flags::default()
        }
    }

    #[test]
    fn defaults_serve_localhost_from_ferry_data() {
        let config = load(&Flags::default(), &env(&[])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(config.storage.to_string(), "file://./ferry-data");
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn half_a_tls_pair_in_the_file_is_refused_where_it_was_written_and_a_missing_auth_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_file(
            dir.path(),
            "storage = \"memory://\"\ntls_cert = \"cert.pem\"\n",
        );
        let flags = with_file(&file);
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "{}:2:12: tls_cert is set but tls_key is not; set both",
                file.display()
            )),
            "{message}"
        );
        let missing = dir.path().join("users");
        let environment = env(&[("FERRY_AUTH_FILE", &missing.display().to_string())]);
        let message = load(&Flags::default(), &environment)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!(
                "invalid authentication file: {}: cannot read the authentication file",
                missing.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn flags_override_env_which_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_file(
            dir.path(),
            "listen = \"127.0.0.1:1\"\nstorage = \"memory://\"\nlog_format = \"json\"\nshutdown_timeout = \"5s\"\n",
        );
        let flags = with_file(&file);
        let config = load(&flags, &env(&[])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:1");
        assert_eq!(config.storage, StorageConfig::Memory);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.server.shutdown_timeout, Duration::from_secs(5));

        let environment = env(&[
            ("FERRY_LISTEN", "127.0.0.1:2"),
            ("FERRY_LOG_FORMAT", "text"),
        ]);
        let config = load(&flags, &environment).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:2");
        assert_eq!(config.log_format, LogFormat::Text);

        let flags = Flags {
            listen: Some("127.0.0.1:3".into()),
            ..flags
        };
        assert_eq!(
            load(&flags, &environment).unwrap().listen.to_string(),
            "127.0.0.1:3"
        );
    }

    #[test]
    fn errors_name_the_file_line_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_file(
            dir.path(),
            "# Ferry\nstorage = \"memory://\"\nlisten = \"localhost\"\n",
        );
        let flags = with_file(&file);
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}:3:10: listen address \"localhost\" is not IP:PORT; write e.g. \"127.0.0.1:3000\" or \"0.0.0.0:3000\"",
                file.display()
            )
        );

        write_file(dir.path(), "listen = \"127.0.0.1:3000\"\nlisen = 1\n");
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("{}:2:1: unknown field `lisen`", file.display())),
            "{message}"
        );

        write_file(dir.path(), "storage = \"s4://bucket\"\n");
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("{}:1:11: ", file.display()))
                && message.contains("unknown storage scheme"),
            "{message}"
        );

        write_file(dir.path(), "shutdown_timeout = \"soon\"\n");
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(
            message.contains(":1:20: duration \"soon\"") && message.contains("write e.g. \"30s\""),
            "{message}"
        );

        let message = load(&Flags::default(), &env(&[("FERRY_LOG_FORMAT", "xml")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "environment variable FERRY_LOG_FORMAT: log format \"xml\" is unknown; write \"text\" or \"json\""
        );

        write_file(
            dir.path(),
            "storage = \"s3://bucket\"\n[storage_options]\nendpont = \"http://127.0.0.1:9000\"\n",
        );
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}:3:1: invalid storage configuration: unknown S3 storage option \"endpont\"; did you mean \"endpoint\"?",
                file.display()
            )
        );

        let missing = Flags {
            config: Some(dir.path().join("nope.toml")),
            ..Flags::default()
        };
        let message = load(&missing, &env(&[])).unwrap_err().to_string();
        assert!(
            message.contains("nope.toml: cannot read the configuration file"),
            "{message}"
        );
    }

    #[test]
    fn a_storage_value_that_would_panic_object_store_is_refused_where_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_file(
            dir.path(),
            "storage = \"s3://bucket/p\"\n\n[storage_options]\nendpoint = \"127.0.0.1:9000\"\n",
        );
        let flags = with_file(&file);
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "{}:4:12: invalid storage configuration: storage option aws_endpoint: endpoint \"127.0.0.1:9000\" needs http:// or https://",
                file.display()
            )),
            "{message}"
        );
        let message = load(
            &Flags::default(),
            &env(&[
                ("FERRY_STORAGE", "s3://bucket"),
                ("AWS_ENDPOINT", "minio:9000"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            message.starts_with("environment variable AWS_ENDPOINT: invalid storage configuration: endpoint \"minio:9000\" needs http:// or https://"),
            "{message}"
        );
        write_file(
            dir.path(),
            "storage = \"s3://bucket\"\n[storage_options]\nallow_http = [1]\n",
        );
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "{}:3:14: storage option allow_http: write a string",
                file.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn storage_options_and_the_older_s3_table_reach_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_file(
            dir.path(),
            "storage = \"s3://bucket\"\n[storage_options]\nallow_http = true\nmax_retries = 1\n\
             [s3]\nendpoint = \"http://127.0.0.1:9000\"\nconnect_timeout_secs = 3\n\
             [gcs]\nbase_url = \"http://127.0.0.1:4443\"\n",
        );
        let flags = with_file(&file);
        let environment = env(&[
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ]);
        let config = load(&flags, &environment).unwrap();
        let StorageConfig::Cloud(s3) = &config.storage else {
            panic!("{:?}", config.storage)
        };
        assert_eq!(s3.setting("aws_endpoint"), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.setting("allow_http"), Some("true"));
        assert_eq!(s3.setting("connect_timeout"), Some("3s"));
        assert_eq!(
            s3.setting("google_base_url"),
            None,
            "[gcs] is for gs:// only"
        );
        assert_eq!(s3.max_retries(), 1);
        assert_eq!(
            config.storage.to_string(),
            "s3://bucket (endpoint http://127.0.0.1:9000)"
        );
    }
}
