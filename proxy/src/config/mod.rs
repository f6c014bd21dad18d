//! Ferry's configuration: defaults, then the TOML file, then the environment, then command-line flags.
//!
//! Every setting is one row of [`settings::SETTINGS`]; [`Given`] reads each row from its flag, variables
//! and file key, and [`load`] hands each value to its owner's settings. Every value remembers where it
//! came from, so a bad one is reported with its file, line and column (or its variable or flag) and what
//! to write instead. The environment is read through [`Environment`], so tests never change the process
//! environment.

mod env;
mod file;
mod flags;
mod given;
mod oidc;
mod owners;
pub mod settings;
mod upstreams;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use ferry_fetcher::FetcherConfig;
use ferry_policy::{Policy, PolicySources};
use ferry_storage::StorageConfig;

use crate::cache::CacheSettings;
use crate::coordination::CoordinationSettings;
use crate::filler::FillSettings;
use crate::server::ServerSettings;
use crate::sumdb::SumDbSettings;

pub use env::{Environment, process_environment};
use file::ConfigFile;
pub use flags::Flags;
pub use given::Given;
use settings as row;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEFAULT_STORAGE: &str = "file://./ferry-data";
pub const DEFAULT_WORK_DIR: &str = "./ferry-work";

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
    /// Where the admin API is served (none: it is not).
    pub admin_listen: Option<SocketAddr>,
    /// How the ledger keeps in step with other replicas.
    pub ledger: crate::ledger::LedgerSettings,
    /// The retention policy (`[gc]`).
    pub gc: crate::admin::gc::GcSettings,
    /// Requirements fetched ahead (`[prefetch]`).
    pub prefetch: crate::prefetch::PrefetchSettings,
    pub storage: StorageConfig,
    pub log_format: LogFormat,
    /// The OTLP collector's base URL traces go to (none: traces off unless the environment's
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` says; see `traces.rs`).
    pub otlp_endpoint: Option<String>,
    pub server: ServerSettings,
    pub policy: Policy,
    /// What the policy was loaded from, to load it again on SIGHUP.
    pub policy_sources: PolicyGiven,
    pub fetcher: FetcherConfig,
    pub fills: FillSettings,
    pub cache: CacheSettings,
    /// How replicas sharing the store coordinate their fills.
    pub coordination: CoordinationSettings,
    /// The checksum databases relayed under `/sumdb/`.
    pub sumdb: SumDbSettings,
    /// Who may read and administer which modules (`[[access]]`).
    pub access: std::sync::Arc<crate::access::Rules>,
    /// Where the audit trail goes (none: off).
    pub audit_log: Option<crate::audit::AuditTarget>,
    /// The Go vulnerability database's copy under `/vuln/`.
    pub vuln: crate::vuln::VulnSettings,
    /// Every setting that was given, with where it came from (for `ferry config`).
    pub given: Given,
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

/// The download policy's two settings as given, so that it can be loaded again (on SIGHUP).
#[derive(Debug, Clone, Default)]
pub struct PolicyGiven {
    pub mode: Option<(String, Origin)>,
    pub url: Option<(String, Origin)>,
    /// The configuration file, for the policy's messages about its values.
    pub config_file: Option<PathBuf>,
}

impl PolicyGiven {
    /// The policy crate's sources, each value under the source it came from, so that the policy's
    /// messages name it (its precedence is the rows' own: FERRY_*, then ATHENS_*, then the file).
    pub fn sources(&self) -> PolicySources<'_> {
        let mut sources = PolicySources {
            config_file: self.config_file.as_deref(),
            ..PolicySources::default()
        };
        let athens = |row: &settings::Setting| row.variables().nth(1);
        if let Some((mode, origin)) = &self.mode {
            *match origin {
                Origin::Env(name) if Some(*name) == athens(&row::DOWNLOAD_MODE) => {
                    &mut sources.athens_download_mode
                }
                Origin::Env(_) => &mut sources.ferry_download_mode,
                _ => &mut sources.config_download_mode,
            } = Some(mode);
        }
        if let Some((url, origin)) = &self.url {
            *match origin {
                Origin::Env(name) if Some(*name) == athens(&row::DOWNLOAD_URL) => {
                    &mut sources.athens_download_url
                }
                Origin::Env(_) => &mut sources.ferry_download_url,
                _ => &mut sources.config_download_url,
            } = Some(url);
        }
        sources
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
    /// The token file cannot be used: `FILE:LINE:COL: problem; fix` (never a digest).
    #[error("invalid token file: {0}")]
    TokenFile(crate::layers::auth::tokens::TokenFileError),
    /// The TLS certificate or key cannot be used: which setting, its file, what to do.
    #[error("invalid TLS configuration: {0}")]
    Tls(crate::tls::TlsError),
}

/// Reads the configuration: defaults, then the file (`--config` or `FERRY_CONFIG`), then the
/// environment, then the flags.
pub fn load(flags: &Flags, env: &dyn Environment) -> Result<Config, ConfigError> {
    load_with(flags, env, false).map(|(config, _)| config)
}

/// As [`load`], for `ferry config`: a download file (`file:PATH`) that does not exist yet does not stop
/// it, as the report only shows the setting that names the file; the error is handed back to be reported
/// (`ferry serve` stops on it).
pub fn load_for_report(
    flags: &Flags,
    env: &dyn Environment,
) -> Result<(Config, Option<ferry_policy::PolicyError>), ConfigError> {
    load_with(flags, env, true)
}

fn load_with(
    flags: &Flags,
    env: &dyn Environment,
    missing_policy_file_ok: bool,
) -> Result<(Config, Option<ferry_policy::PolicyError>), ConfigError> {
    let file_path = flags
        .config
        .clone()
        .or_else(|| env.var(row::CONFIG.env).map(PathBuf::from));
    let file = file_path.as_deref().map(ConfigFile::read).transpose()?;
    let given = Given::gather(flags, env, file.as_ref());

    let listen = address(
        &given,
        &row::LISTEN,
        "listen address",
        "\"127.0.0.1:3000\" or \"0.0.0.0:3000\"",
    )?;
    let metrics_listen = address(
        &given,
        &row::METRICS_LISTEN,
        "metrics listen address",
        "\"127.0.0.1:9090\"",
    )?;
    let admin_listen = address(
        &given,
        &row::ADMIN_LISTEN,
        "admin listen address",
        "\"127.0.0.1:3001\"",
    )?;
    let (url, origin) = given
        .get(&row::STORAGE)
        .cloned()
        .unwrap_or_else(|| (DEFAULT_STORAGE.to_string(), Origin::Default));
    let storage = owners::storage(&url, origin, file.as_ref(), env)?;
    let log_format = given.parse(&row::LOG_FORMAT, |text| match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!(
            "log format {other:?} is unknown; write \"text\" or \"json\""
        )),
    })?;
    let policy_sources = PolicyGiven {
        mode: given.get(&row::DOWNLOAD_MODE).cloned(),
        url: given.get(&row::DOWNLOAD_URL).cloned(),
        config_file: file.as_ref().map(|f| f.path.clone()),
    };
    let (policy, policy_unread) = policy(&policy_sources, missing_policy_file_ok)?;
    let fills = owners::fills(&given)?;
    let fetcher = owners::fetcher(&given, file.as_ref(), env, &fills)?;
    let lease_time = given.duration(&row::LEASE_TIME)?;
    let lease_time = lease_time.zip(given.origin(&row::LEASE_TIME).cloned());
    let coordination =
        CoordinationSettings::load(given.get(&row::COORDINATION).cloned(), lease_time, &storage)?;
    let sumdb = owners::sumdb(&given, file.as_ref(), &fetcher)?;
    // `sumdb_private` keeps the `[[upstreams]]` fills from asking a checksum database of those modules too.
    let mut fetcher = fetcher;
    fetcher.sumdb_private = sumdb
        .private
        .iter()
        .map(|p| p.pattern.to_string())
        .collect();
    let config = Config {
        listen: listen
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("the default is an address")),
        metrics_listen,
        admin_listen,
        ledger: owners::ledger(&given)?,
        gc: owners::gc(&given)?,
        prefetch: owners::prefetch(&given)?,
        storage,
        log_format: log_format.unwrap_or(LogFormat::Text),
        otlp_endpoint: owners::otlp_endpoint(&given)?,
        server: owners::server(&given, file.as_ref())?,
        policy,
        policy_sources,
        fetcher,
        fills,
        cache: owners::cache(&given)?,
        coordination,
        sumdb,
        access: std::sync::Arc::new(owners::access(file.as_ref())?),
        audit_log: owners::audit_log(&given)?,
        vuln: owners::vuln(&given)?,
        table_entries: file
            .as_ref()
            .map(ConfigFile::table_entries)
            .unwrap_or_default(),
        given,
    };
    Ok((config, policy_unread))
}

/// The `[[access]]` rules of the configuration file at `path`, read again (on SIGHUP): the whole file is
/// checked as at start-up, and a bad rule is reported where it is written.
pub fn access_rules(path: &std::path::Path) -> Result<crate::access::Rules, ConfigError> {
    let file = ConfigFile::read(path)?;
    owners::access(Some(&file))
}

/// The policy the settings name; with `missing_file_ok`, a download file that is not there is handed
/// back and the built-in policy stands in (what the report shows comes from the settings, not from it).
fn policy(
    sources: &PolicyGiven,
    missing_file_ok: bool,
) -> Result<(Policy, Option<ferry_policy::PolicyError>), ConfigError> {
    match sources.load() {
        Ok(policy) => Ok((policy, None)),
        Err(ferry_policy::PolicyError::Unreadable {
            origin,
            path,
            source,
        }) if missing_file_ok && source.kind() == std::io::ErrorKind::NotFound => {
            let fallback = PolicyGiven::default().load().map_err(ConfigError::Policy)?;
            let unread = ferry_policy::PolicyError::Unreadable {
                origin,
                path,
                source,
            };
            Ok((fallback, Some(unread)))
        }
        Err(e) => Err(ConfigError::Policy(e)),
    }
}

/// An `IP:PORT` setting; `what` names it in the message, `example` is what to write.
fn address(
    given: &Given,
    row: &settings::Setting,
    what: &str,
    example: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    given.parse(row, |text| {
        text.parse()
            .map_err(|_| format!("{what} {text:?} is not IP:PORT; write e.g. {example}"))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

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

        let mut flags = flags;
        flags.given.insert("--listen", "127.0.0.1:3".into());
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

        write_file(dir.path(), "path_prefix = \"/goproxy/\"\n");
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}:1:15: path_prefix \"/goproxy/\" ends with /; write it without, e.g. \"/goproxy\"",
                file.display()
            )
        );
        let message = load(&Flags::default(), &env(&[("FERRY_PATH_PREFIX", "goproxy")]))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("environment variable FERRY_PATH_PREFIX: path_prefix \"goproxy\" does not start with /"),
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
    fn prefetch_zips_takes_its_words_and_the_switch_it_was_first() {
        use crate::prefetch::ZipPrefetch;
        let dir = tempfile::tempdir().unwrap();
        let file = write_file(dir.path(), "[prefetch]\nzips = true\n");
        let flags = with_file(&file);
        assert_eq!(
            load(&flags, &env(&[])).unwrap().prefetch.zips,
            ZipPrefetch::All
        );
        write_file(dir.path(), "[prefetch]\nzips = false\n");
        assert_eq!(
            load(&flags, &env(&[])).unwrap().prefetch.zips,
            ZipPrefetch::Off
        );
        write_file(dir.path(), "");
        assert_eq!(
            load(&flags, &env(&[])).unwrap().prefetch.zips,
            ZipPrefetch::Builders
        );
        let config = load(&flags, &env(&[("FERRY_PREFETCH_ZIPS", "all")])).unwrap();
        assert_eq!(config.prefetch.zips, ZipPrefetch::All);
        write_file(dir.path(), "[prefetch]\nzips = \"builder\"\n");
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}:2:8: \"builder\" is not one of builders, all, off; write e.g. \"builders\" (the zips of clients that download zips)",
                file.display()
            )
        );
        write_file(dir.path(), "[prefetch]\nzips = 1\n");
        let message = load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(message.contains(":2:8: invalid type: integer"), "{message}");
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
