//! The `ferry` binary: parses arguments, reads the configuration, binds and serves until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry::config::{self, Flags, LogFormat};

/// Ferry, a Go module proxy. Point the go command at it with GOPROXY=http://HOST:PORT.
///
/// Configuration is read from defaults, then the TOML file (--config or FERRY_CONFIG), then environment
/// variables, then these flags; later sources override earlier ones. `ferry config` prints every setting
/// with its effective value and where it came from (secrets redacted).
#[derive(Debug, Parser)]
#[command(name = "ferry", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Flags,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the GOPROXY protocol (what `ferry` with no subcommand does).
    Serve(Flags),
    /// Print every setting with its effective value and where it came from, secrets redacted.
    ///
    /// One line per setting: its key as written in the TOML file, its value, and its source (default, flag
    /// --NAME, env NAME or file FILE:LINE:COL). The configuration is loaded as `ferry serve` loads it, with
    /// the same flags, environment and file, stopping at the same errors; nothing is bound or run.
    Config {
        #[command(flatten)]
        args: Flags,
        /// Output format: text (aligned columns) or json (an array of {key, value, source})
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Check every zip in the store against the module zip rules; exit non-zero while a bad one remains.
    ///
    /// Reads the configuration `ferry serve` reads (the same flags, environment and file) and walks the
    /// whole store: each zip is checked as a fill checks a zip before storing it (Go's module zip rules:
    /// file paths, case-insensitive collisions, go.mod only at the root, sizes; the go.mod against the
    /// stored .mod). Prints `bad MODULE@VERSION: RULE` for each zip that breaks one. With --remove, each bad
    /// version is deleted (.info, .mod and zip), so the next request fetches it again.
    CheckStore {
        #[command(flatten)]
        args: Flags,
        /// Delete each bad version from the store
        #[arg(long)]
        remove: bool,
    },
    /// Operate what the store holds through a server's admin API (its admin_listen): list, size, delete,
    /// block, unblock, collect garbage, reindex.
    Admin(ferry::admin::cli::AdminArgs),
    #[command(flatten)]
    Airgap(ferry::airgap::cli::Command),
    /// The Go vulnerability database served under /vuln/: import a vulndb.zip, or sync once.
    #[command(subcommand)]
    Vuln(ferry::vuln::cli::Command),
    /// Inspect a download policy (the Athens-compatible download file).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Make, list and revoke the bearer tokens of a token file (token_file).
    ///
    /// A running Ferry puts the file's changes in force on SIGHUP.
    #[command(subcommand)]
    Token(TokenCommand),
    /// GET a health endpoint: exit 0 on a 2xx answer, else 1 with a one-line reason (for container health
    /// checks in images without curl).
    ///
    /// An https:// URL is probed over TLS, trusting the CA of --ca; without it, on the loopback address, the
    /// certificate in FERRY_TLS_CERT's file (the one Ferry serves) is trusted.
    Healthcheck {
        /// The URL to probe [default: /readyz on FERRY_LISTEN's port (0.0.0.0 probed as 127.0.0.1), https
        /// when FERRY_TLS_CERT is set, else http://127.0.0.1:3000/readyz]
        #[arg(value_name = "URL")]
        url: Option<String>,
        /// Give up after this long (connect, handshake, send and answer together)
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// For an https:// URL: trust the CA certificates in this PEM file [default: on the loopback
        /// address, FERRY_TLS_CERT's certificate]
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a token, print it once on stdout and append its hashed entry to the file (made, mode 600, if
    /// missing). Only its SHA-256 digest is kept: a token lost is revoked and made again.
    Create {
        #[command(flatten)]
        file: TokenFile,
        /// The token's name: what access rules (`token:NAME`), the access log and `ls` call it
        #[arg(long, value_name = "NAME")]
        name: String,
        /// A group the token belongs to (for access rules' `group:`); repeat for more
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// List the tokens: name, when it was made, groups (never a token or digest).
    Ls {
        #[command(flatten)]
        file: TokenFile,
    },
    /// Remove the token named NAME from the file; a running Ferry refuses it after its next SIGHUP.
    Revoke {
        #[command(flatten)]
        file: TokenFile,
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, clap::Args)]
struct TokenFile {
    /// The token file (what token_file names)
    #[arg(long, value_name = "FILE", env = "FERRY_TOKEN_FILE")]
    file: PathBuf,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print, for each module, the mode, the download URL and the rule that decides it.
    ///
    /// Without --file, the policy is the one `ferry serve` would load (FERRY_DOWNLOAD_MODE, else
    /// ATHENS_DOWNLOAD_MODE, else download_mode in --config, else sync).
    Check {
        /// A download file to check instead of the configured policy.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// TOML configuration file whose download_mode / download_url to use [env: FERRY_CONFIG]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Module paths, e.g. github.com/pkg/errors
        #[arg(required = true, value_name = "MODULE")]
        modules: Vec<String>,
    },
    /// Check a download file; exits non-zero and lists every problem (FILE:LINE:COL) when it is invalid.
    ///
    /// Warnings (blocks that never apply: a repeated pattern, a trailing `/`, a block an earlier broader
    /// pattern makes unreachable) are printed on stderr as FILE:LINE:COL: warning: ...; the file is still
    /// valid and the exit status is 0.
    Validate {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    // The one rustls provider compiled in (see the workspace Cargo.toml), as the process default for the
    // clients that take it (object_store's reqwest, redis).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(flags) => serve(flags),
        Command::Config { args, format } => show_config(args, &format),
        Command::CheckStore { args, remove } => check_store(args, remove),
        Command::Policy(command) => policy(command),
        Command::Token(command) => token(command),
        Command::Admin(mut args) => {
            // The password comes from the environment only: a command line is visible to every user.
            args.password = std::env::var("FERRY_ADMIN_PASSWORD").ok();
            args.token = std::env::var("FERRY_ADMIN_TOKEN").ok();
            ferry::admin::cli::run(args)
        }
        Command::Airgap(command) => airgap(command),
        Command::Vuln(command) => vuln(command),
        Command::Healthcheck { url, timeout, ca } => healthcheck(url, timeout, ca),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { file, name, groups } => {
            let token = ferry::tokens::create(&file.file, &name, &groups)?;
            println!("{token}");
            eprintln!(
                "token {name:?} added to {}; it is shown only now. Send SIGHUP to a running Ferry to put it in force.",
                file.file.display()
            );
        }
        TokenCommand::Ls { file } => {
            let entries = ferry::tokens::list(&file.file)?;
            let width = entries
                .iter()
                .map(|e| e.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            println!("{:width$}  {:20}  GROUPS", "NAME", "CREATED");
            for entry in entries {
                println!(
                    "{:width$}  {:20}  {}",
                    entry.name,
                    entry.created,
                    entry.groups.join(",")
                );
            }
        }
        TokenCommand::Revoke { file, name } => {
            ferry::tokens::revoke(&file.file, &name)?;
            eprintln!(
                "token {name:?} removed from {}; send SIGHUP to a running Ferry to refuse it",
                file.file.display()
            );
        }
    }
    Ok(())
}

fn policy(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check {
            file: Some(file),
            modules,
            ..
        } => {
            let policy = ferry_policy::load_file(&file)?;
            print_warnings(&policy);
            print!("{}", policy.check_report(&modules));
        }
        PolicyCommand::Check {
            file: None,
            config,
            modules,
        } => {
            let config = config::load(
                &Flags {
                    config,
                    ..Flags::default()
                },
                &config::process_environment(),
            )?;
            print_warnings(&config.policy);
            print!("{}", config.policy.check_report(&modules));
        }
        PolicyCommand::Validate { file } => {
            let policy = ferry_policy::load_file(&file)?;
            print_warnings(&policy);
            match policy.warnings().len() {
                0 => println!("{}: valid", file.display()),
                1 => println!("{}: valid, with 1 warning", file.display()),
                count => println!("{}: valid, with {count} warnings", file.display()),
            }
            // The summary is one line without its end: end it, so the shell prompt starts on a line of its own.
            println!("{}", policy.summary());
        }
    }
    Ok(())
}

/// `ferry config`: the configuration `ferry serve` would load, with the sources of its values.
fn show_config(flags: Flags, format: &str) -> anyhow::Result<()> {
    let (config, unread) = config::load_for_report(&flags, &config::process_environment())?;
    if let Some(e) = unread {
        eprintln!("ferry config: {e}; ferry serve stops until the download file exists");
    }
    let lines = ferry::config_report::report(&config);
    match format {
        "json" => print!("{}", ferry::config_report::render_json(&lines)),
        _ => print!("{}", ferry::config_report::render_text(&lines)),
    }
    Ok(())
}

/// `ferry check-store [--remove]`: the store `ferry serve` would open, every zip in it checked.
fn check_store(flags: Flags, remove: bool) -> anyhow::Result<()> {
    let config = config::load(&flags, &config::process_environment())?;
    let store = config
        .storage
        .open()
        .with_context(|| format!("opening the storage {}", config.storage))?;
    let scratch = tempfile::Builder::new()
        .prefix("ferry-check-store-")
        .tempdir_in(std::env::temp_dir())
        .context("creating a scratch directory for the zips checked")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let checked = runtime.block_on(async {
        store
            .check()
            .await
            .with_context(|| format!("storage {} is not usable", config.storage))?;
        let mut out = std::io::stdout();
        ferry::check_store::check_store(store.as_ref(), scratch.path(), remove, &mut out)
            .await
            .with_context(|| format!("walking the storage {}", config.storage))
    })?;
    let remaining = checked.bad - checked.removed;
    if remaining > 0 {
        let hint = if remove {
            ""
        } else {
            "; run with --remove to delete them"
        };
        anyhow::bail!("{remaining} bad zips remain in the store{hint}");
    }
    if checked.failed > 0 {
        anyhow::bail!(
            "{} zips could not be checked or removed (listed above); run the check again",
            checked.failed
        );
    }
    Ok(())
}

/// `ferry mirror|export|import`: the configuration `ferry serve` loads, logging warnings only (a progress
/// bar and a summary are the output).
fn airgap(command: ferry::airgap::cli::Command) -> anyhow::Result<()> {
    let config = config::load(command.flags(), &config::process_environment())?;
    init_logging(config.log_format, "warn", None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(ferry::airgap::cli::run(
        command,
        &config,
        std::env::temp_dir(),
    ))
}

/// `ferry vuln import|sync`: the configuration `ferry serve` loads, logging warnings only.
fn vuln(command: ferry::vuln::cli::Command) -> anyhow::Result<()> {
    let config = config::load(command.flags(), &config::process_environment())?;
    init_logging(config.log_format, "warn", None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(ferry::vuln::cli::run(command, &config))
}

/// `ferry healthcheck`: the URL and the certificate Ferry serves come from the environment Ferry runs with
/// (`FERRY_LISTEN`, `FERRY_TLS_CERT`), as the image's and the chart's probes run beside it.
fn healthcheck(
    url: Option<String>,
    timeout: std::time::Duration,
    ca: Option<PathBuf>,
) -> anyhow::Result<()> {
    let own_cert = std::env::var_os(config::settings::TLS_CERT.env)
        .filter(|cert| !cert.is_empty())
        .map(PathBuf::from);
    let url = url.unwrap_or_else(|| {
        std::env::var(config::settings::LISTEN.env)
            .ok()
            .and_then(|listen| ferry::healthcheck::readyz_url(&listen, own_cert.is_some()))
            .unwrap_or_else(|| ferry::healthcheck::DEFAULT_URL.to_string())
    });
    let trust = ferry::healthcheck::Trust { ca, own_cert };
    let verdict = ferry::healthcheck::check(&url, timeout, &trust).map_err(anyhow::Error::msg)?;
    println!("{verdict}");
    Ok(())
}

/// Prints a policy's warnings on stderr, one per line (`FILE:LINE:COL: warning: ...; fix`), so that
/// stdout keeps only the answer.
fn print_warnings(policy: &ferry_policy::Policy) {
    for warning in policy.warnings() {
        eprintln!("{warning}");
    }
}

/// Logs a policy's warnings (dead or redundant blocks) at WARN, one event each.
fn log_warnings(warnings: &[ferry_policy::Problem], when: &str) {
    for warning in warnings {
        tracing::warn!(%warning, "{when}: the download policy has a block that never applies");
    }
}

fn serve(flags: Flags) -> anyhow::Result<()> {
    let environment = config::process_environment();
    let config = config::load(&flags, &environment)?;
    let settings = ferry::traces::TraceSettings::from_environment(
        &environment,
        config.otlp_endpoint.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("traces: {e}"))?;
    let traces = settings
        .as_ref()
        .map(ferry::traces::Traces::start)
        .transpose()
        .map_err(|e| anyhow::anyhow!("traces: {e}"))?;
    init_logging(config.log_format, "info", traces.as_ref());
    if let Some(settings) = &settings {
        // A URL's credentials are not logged (the headers, where an API key usually goes, never are).
        let endpoint = ferry::config_report::redact_credentials(&settings.endpoint);
        tracing::info!(%endpoint, service = %settings.service_name, "exporting traces over OTLP");
    }
    let served = serve_with(config);
    // The spans still queued go to the collector, within a bounded time.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    served
}

fn serve_with(config: ferry::Config) -> anyhow::Result<()> {
    log_warnings(config.policy.warnings(), "start-up");
    refuse_own_address(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    raise_open_file_limit();
    runtime.block_on(async {
        // Bind first: a Ferry that cannot have its address must stop before it touches the work dir
        // another Ferry may be using.
        let listener = bind(config.listen, "", "--listen or FERRY_LISTEN").await?;
        let admin_listener = match config.admin_listen {
            Some(address) => Some(bind(address, " for the admin API", "admin_listen or FERRY_ADMIN_LISTEN").await?),
            None => None,
        };
        let metrics_listener = match config.metrics_listen {
            Some(address) => Some(bind(address, " for metrics", "metrics_listen or FERRY_METRICS_LISTEN").await?),
            None => None,
        };
        let proxy = ferry::build_proxy(&config).await?;
        // Every signal handler is installed before Ferry says it is serving: a SIGHUP or SIGTERM sent as soon
        // as that line appears (a supervisor's reload right after start) must find its handler, not the
        // default action that kills the process.
        use tokio::signal::unix::{SignalKind, signal};
        let hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        tokio::spawn(reload_on_sighup(
            hangup,
            proxy.clone(),
            config.policy_sources.clone(),
            Reloadable { auth: config.server.auth.clone(), tokens: config.server.tokens.clone(), tls: config.server.tls.clone() },
        ));
        let beside = Beside::start(&config, &proxy, metrics_listener, admin_listener)?;
        log_configuration(&config);
        let scheme = log_access(&config.server);
        tracing::info!(listen = %listener.local_addr()?, %scheme, storage = %config.storage, "ferry is serving");
        let mut server = config.server.clone();
        server.serve_metrics = beside.serve_metrics;
        ferry::run(listener, proxy, server, shutdown_signal(interrupt, terminate)).await;
        beside.stop();
        Ok(())
    })
}

/// Stops start-up when the upstream this Ferry would fetch from is this Ferry itself: it would wait for its
/// own fills until the fetch timeout.
fn refuse_own_address(config: &ferry::Config) -> anyhow::Result<()> {
    if config.policy.fetches()
        && let Some(entry) = ferry::self_upstream::own_address_in_upstream(config)
    {
        anyhow::bail!(
            "the go command's GOPROXY entry {entry} is this Ferry's own address ({}): Ferry would fetch from itself and wait until the fetch timeout; set the upstream for Ferry alone in the configuration file, e.g. [fetcher] go_env = {{ GOPROXY = \"https://goproxy.internal.example\" }}, or unset GOPROXY in Ferry's environment",
            config.listen
        );
    }
    if let Some((name, url)) = ferry::self_upstream::own_address_in_tables(config) {
        anyhow::bail!(
            "the proxy of [[upstreams]] {name} lists {url}, this Ferry's own address ({}): its modules would be asked of Ferry itself; name the upstream that holds them",
            config.listen
        );
    }
    Ok(())
}

/// A listener on `address` (`purpose`: what for, after the address, in the error), or an error naming the
/// settings (`setting`) that pick another.
async fn bind(
    address: std::net::SocketAddr,
    purpose: &str,
    setting: &str,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!("cannot listen on {address}{purpose}; pick another address with {setting}")
        })
}

/// What runs beside the module listener: the metrics listener (`metrics_listen`), the admin API
/// (`admin_listen`) and the scheduled garbage collection (`[gc] every`), each stopped with the server.
struct Beside {
    /// Whether the module listener answers `/metrics` (no listener of their own).
    serve_metrics: bool,
    stop_metrics: tokio::sync::oneshot::Sender<()>,
    stop_admin: tokio::sync::watch::Sender<bool>,
}

impl Beside {
    fn start(
        config: &ferry::Config,
        proxy: &std::sync::Arc<ferry::Proxy>,
        metrics_listener: Option<tokio::net::TcpListener>,
        admin_listener: Option<tokio::net::TcpListener>,
    ) -> anyhow::Result<Beside> {
        let serve_metrics = metrics_listener.is_none() && config.server.serve_metrics;
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(metrics_listener) = metrics_listener {
            tracing::info!(metrics_listen = %metrics_listener.local_addr()?, "serving /metrics");
            tokio::spawn(ferry::run_metrics(metrics_listener, async {
                let _ = metrics_stopped.await;
            }));
        }
        let (stop_admin, admin_stopped) = tokio::sync::watch::channel(false);
        let admin = proxy.admin(config.gc.clone());
        if let Some(admin_listener) = admin_listener {
            tracing::info!(admin_listen = %admin_listener.local_addr()?, "serving the admin API (/admin/v1/)");
            let gate = ferry::Gate::of(
                config.server.auth.clone(),
                config.server.tokens.clone(),
                config.server.oidc.clone(),
            );
            let mut stopped = admin_stopped.clone();
            tokio::spawn(ferry::admin::api::run_admin_with(
                admin_listener,
                admin.clone(),
                gate,
                Some(proxy.clone()),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            ));
        }
        if let Some(every) = config.gc.every.filter(|_| config.gc.collects()) {
            tracing::info!(every = %humantime::format_duration(every), "garbage collection scheduled");
            let mut stopped = admin_stopped.clone();
            tokio::spawn(admin.run_schedule(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }));
        }
        Ok(Beside {
            serve_metrics,
            stop_metrics,
            stop_admin,
        })
    }

    fn stop(self) {
        let _ = self.stop_metrics.send(());
        let _ = self.stop_admin.send(true);
    }
}

/// Logs the configuration's summary at start: the version, the download policy, the upstream, the access
/// rules and audit trail (and a warning when rules meet anonymous callers only).
fn log_configuration(config: &ferry::Config) {
    let upstream = ferry::self_upstream::goproxy_for_log(config);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        policy = %config.policy.summary().trim_end(),
        upstream = %upstream,
        "configuration"
    );
    if !config.access.is_empty() || config.audit_log.is_some() {
        let audit_log = config
            .audit_log
            .as_ref()
            .map_or("off".to_string(), ToString::to_string);
        tracing::info!(access_rules = config.access.len(), %audit_log, "access rules and audit trail");
    }
    if !config.access.is_empty() && config.server.auth.is_none() {
        tracing::warn!(
            "access rules without auth_file: every request is anonymous, so only the rules that list \"anonymous\" in read let a module be read; set auth_file to tell callers apart"
        );
    }
}

/// Logs who may come in and how (authentication, TLS, the proxies believed); the URL scheme clients use.
/// Authentication without TLS is warned about: the go command never sends credentials to an http:// URL.
fn log_access(server: &ferry::ServerSettings) -> &'static str {
    if let Some(auth) = &server.auth {
        tracing::info!(auth_file = %auth.path().display(), users = auth.user_count(), "HTTP Basic authentication required (but for /healthz and /readyz)");
    }
    if let Some(tokens) = &server.tokens {
        tracing::info!(token_file = %tokens.path().display(), tokens = tokens.count(), "bearer tokens accepted (Authorization: Bearer)");
    }
    if let Some(oidc) = &server.oidc {
        tracing::info!(issuers = %oidc.issuer_urls().join(", "), "JWTs of these OIDC issuers accepted (Authorization: Bearer)");
    }
    let authenticates = server.auth.is_some() || server.tokens.is_some() || server.oidc.is_some();
    if authenticates && server.tls.is_none() {
        tracing::warn!(
            "authentication is on but Ferry serves plain HTTP: the go command sends credentials over HTTPS only, so it cannot log in at an http:// address; set tls_cert and tls_key, or serve clients through a proxy that terminates TLS (listed in trusted_proxies, so that Ferry knows they came over HTTPS)"
        );
    }
    if !server.trusted_proxies.is_empty() {
        tracing::info!(trusted_proxies = %server.trusted_proxies, "X-Forwarded-For and X-Forwarded-Proto believed from these proxies");
    }
    match &server.tls {
        Some(tls) => {
            tracing::info!(tls_cert = %tls.cert_path().display(), "serving HTTPS (HTTP/2 and HTTP/1.1)");
            "https"
        }
        None => "http",
    }
}

/// Raises the soft limit on open files to the hard limit: each connection is a descriptor, and the usual
/// soft default (1024) would let a thousand idle sockets lock every other client out.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!(limit = ?limit.maximum, "raised the open file limit"),
        Err(e) => {
            tracing::warn!(error = %e, soft = ?limit.current, "cannot raise the open file limit")
        }
    }
}

fn init_logging(format: LogFormat, level: &str, traces: Option<&ferry::traces::Traces>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        // object_store notes each retry at INFO in its own words ("error sending request"); Ferry's one
        // message on the failure says what it means and what to do.
        .unwrap_or_else(|_| format!("{level},object_store=warn").into())
        // The spans exported as traces are not the log's: with traces off no layer wants them, and each is
        // a disabled callsite (see `ferry::traces`).
        .add_directive(
            format!("{}=off", ferry::traces::TARGET)
                .parse()
                .expect("a valid directive"),
        );
    // Colours only on a terminal: journald, files and log collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A log line that cannot be written (stderr closed, collector gone) is dropped: reporting that failure
    // on stderr would panic inside the request that logged it and lose the response.
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .log_internal_errors(false);
    let log = match format {
        LogFormat::Text => log.with_filter(filter).boxed(),
        LogFormat::Json => log.json().flatten_event(true).with_filter(filter).boxed(),
    };
    let registry = tracing_subscriber::registry().with(log);
    match traces {
        Some(traces) => registry.with(traces.layer()).init(),
        None => registry.init(),
    }
}

/// What SIGHUP reads again besides the policy: the authentication file and the TLS certificate.
struct Reloadable {
    auth: Option<std::sync::Arc<ferry::Auth>>,
    tokens: Option<std::sync::Arc<ferry::Tokens>>,
    tls: Option<std::sync::Arc<ferry::Tls>>,
}

impl Reloadable {
    /// Reads each file again; one that is invalid is reported and what was in force stays.
    fn reload(&self) {
        if let Some(auth) = &self.auth {
            match auth.reload() {
                Ok(users) => {
                    tracing::info!(users, auth_file = %auth.path().display(), "SIGHUP: authentication file reloaded")
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the authentication file is invalid; keeping the users in force")
                }
            }
        }
        if let Some(tokens) = &self.tokens {
            match tokens.reload() {
                Ok(count) => {
                    tracing::info!(tokens = count, token_file = %tokens.path().display(), "SIGHUP: token file reloaded")
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the token file is invalid; keeping the tokens in force")
                }
            }
        }
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!(tls_cert = %tls.cert_path().display(), "SIGHUP: TLS certificate reloaded; new connections get it")
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the TLS certificate or key is invalid; keeping the one in force")
                }
            }
        }
    }
}

/// On SIGHUP, loads the download policy again from the same sources, the access rules from the
/// configuration file, and the authentication file and the TLS certificate from their files; whatever is invalid is reported and the old one stays in force.
async fn reload_on_sighup(
    mut hangup: tokio::signal::unix::Signal,
    proxy: std::sync::Arc<ferry::Proxy>,
    sources: config::PolicyGiven,
    files: Reloadable,
) {
    let reload = std::sync::Arc::new((files, sources));
    while hangup.recv().await.is_some() {
        // Reading and parsing the files blocks: on the blocking pool, not on a thread that serves requests.
        // What is read goes in force by pointer swaps (`ArcSwap`), which requests in flight do not wait for.
        let reload = reload.clone();
        let (loaded, rules) = tokio::task::spawn_blocking(move || {
            let (files, sources) = &*reload;
            files.reload();
            let rules = sources.config_file.as_deref().map(config::access_rules);
            (sources.load(), rules)
        })
        .await
        .expect("a reload does not panic");
        match rules {
            None => {}
            Some(Ok(rules)) => {
                tracing::info!(access_rules = rules.len(), "SIGHUP: access rules reloaded");
                proxy.set_access(rules);
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "SIGHUP: the access rules are invalid; keeping the ones in force")
            }
        }
        match loaded {
            Ok(policy) => {
                let summary = policy.summary();
                let warnings = policy.warnings().to_vec();
                match proxy.set_policy(policy) {
                    Ok(()) => {
                        tracing::info!(policy = %summary.trim_end(), "SIGHUP: download policy reloaded");
                        log_warnings(&warnings, "SIGHUP");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: the new download policy cannot be used; keeping the old one")
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: the new download policy is invalid; keeping the old one")
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal(
    mut interrupt: tokio::signal::unix::Signal,
    mut terminate: tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}
