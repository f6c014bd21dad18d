//! `ferry admin …`: the admin API's client, for people. Each command is one request to `--url` (the
//! address of `admin_listen`); long ones (`gc`, `reindex`) show a progress bar on a terminal.
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// What `ferry admin` does.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The admin API's address, as `admin_listen` serves it, e.g. http://127.0.0.1:3001
    #[arg(long, value_name = "URL", env = "FERRY_ADMIN_URL", global = true)]
    pub url: Option<String>,
    /// Print the API's JSON answer instead of a table
    #[arg(long, global = true)]
    pub json: bool,
    /// Log in as this user of the server's auth_file (HTTP Basic), with the password in
    /// FERRY_ADMIN_PASSWORD; needed when the server has authentication on
    #[arg(long, value_name = "USER", env = "FERRY_ADMIN_USER", global = true)]
    pub user: Option<String>,
    /// The password for --user (read from the environment only, never from the command line)
    #[arg(skip)]
    pub password: Option<String>,
    /// A bearer token to log in with instead of --user: a token of the server's token_file or a JWT of one
    /// of its `[[oidc]]` issuers, from FERRY_ADMIN_TOKEN (the environment only, like the password)
    #[arg(skip)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// List the versions stored (and blocked) under a module prefix: status, size, stored, last used.
    Ls {
        /// A module path prefix (whole path elements); all modules when omitted
        #[arg(value_name = "PREFIX", default_value = "")]
        prefix: String,
    },
    /// Versions and bytes per module under a module prefix, and the total.
    Du {
        #[arg(value_name = "PREFIX", default_value = "")]
        prefix: String,
    },
    /// Delete stored versions; the next request fills them again under the download policy.
    Delete {
        #[arg(value_name = "MODULE@VERSION", required = true)]
        versions: Vec<String>,
    },
    /// Block a version: answered 403 with the reason, never filled again, listed nowhere; its files go.
    Block {
        #[arg(value_name = "MODULE@VERSION")]
        version: String,
        /// Why: what the go command shows the builder
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Lift a block: the version is filled again on the next request.
    Unblock {
        #[arg(value_name = "MODULE@VERSION")]
        version: String,
    },
    /// Collect garbage with the `[gc]` policy of the server.
    Gc {
        /// Only list what would go and the bytes reclaimed
        #[arg(long)]
        dry_run: bool,
    },
    /// Reconcile the catalog and index with what the store holds (a walk of the whole store).
    Reindex,
}

/// Runs one admin command.
pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let url = args.url.clone().context(
        "no admin URL: give --url http://HOST:PORT (the server's admin_listen) or set FERRY_ADMIN_URL",
    )?;
    let base = url::Url::parse(&url).with_context(|| format!("--url {url:?} is not a URL"))?;
    if base.scheme() != "http" {
        bail!("--url {url}: the admin API is served over plain HTTP on admin_listen; use http://");
    }
    let authorization = match (&args.user, &args.password) {
        (None, _) => args
            .token
            .as_deref()
            .map(str::trim)
            .map(bearer)
            .transpose()?,
        (Some(user), _) if args.token.is_some() => {
            bail!("--user {user} and FERRY_ADMIN_TOKEN are both set: log in with one of them")
        }
        (Some(user), Some(password)) => {
            use base64::Engine;
            let pair = format!("{user}:{password}");
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            Some(format!("Basic {encoded}"))
        }
        (Some(user), None) => {
            bail!("--user {user}: set its password in FERRY_ADMIN_PASSWORD")
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let api = Api {
        base,
        authorization,
    };
    runtime.block_on(command(&api, &args))
}

/// The `Authorization` value for a bearer token, which must be one header line.
fn bearer(token: &str) -> anyhow::Result<String> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        bail!(
            "FERRY_ADMIN_TOKEN is not a token: give the token `ferry token create` printed, or a JWT (printable characters, no spaces)"
        );
    }
    Ok(format!("Bearer {token}"))
}

/// Where the admin API is, and the credentials sent to it.
struct Api {
    base: url::Url,
    /// The `Authorization` header's value, when logging in.
    authorization: Option<String>,
}

impl std::ops::Deref for Api {
    type Target = url::Url;

    fn deref(&self) -> &url::Url {
        &self.base
    }
}

async fn command(base: &Api, args: &AdminArgs) -> anyhow::Result<()> {
    let enc = |text: &str| -> String {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    match &args.command {
        AdminCommand::Ls { prefix } => {
            let answer = call(
                base,
                Method::GET,
                &format!("versions?prefix={}", enc(prefix)),
                None,
            )
            .await?;
            print_or(args.json, &answer, print_versions)
        }
        AdminCommand::Du { prefix } => {
            let answer = call(
                base,
                Method::GET,
                &format!("usage?prefix={}", enc(prefix)),
                None,
            )
            .await?;
            print_or(args.json, &answer, print_usage)
        }
        AdminCommand::Delete { versions } => {
            for target in versions {
                let answer = call(
                    base,
                    Method::DELETE,
                    &format!("versions/{}", enc_target(target)),
                    None,
                )
                .await?;
                print_or(args.json, &answer, |_| println!("deleted {target}"))?;
            }
            Ok(())
        }
        AdminCommand::Block { version, reason } => {
            let body = serde_json::json!({ "reason": reason }).to_string();
            let answer = call(
                base,
                Method::PUT,
                &format!("blocks/{}", enc_target(version)),
                Some(body),
            )
            .await?;
            print_or(args.json, &answer, |_| {
                println!("blocked {version}: {}", reason.trim())
            })
        }
        AdminCommand::Unblock { version } => {
            let answer = call(
                base,
                Method::DELETE,
                &format!("blocks/{}", enc_target(version)),
                None,
            )
            .await?;
            print_or(args.json, &answer, |_| println!("unblocked {version}"))
        }
        AdminCommand::Gc { dry_run } => {
            let path = format!("gc?dry_run={dry_run}");
            let result = streamed(base, &path, "collecting").await?;
            print_or(args.json, &result, print_collected)
        }
        AdminCommand::Reindex => {
            let result = streamed(base, "reindex", "walking the store").await?;
            print_or(args.json, &result, |r| {
                println!(
                    "walked {} files: {} versions indexed, {} removed from the index, {} blocks restored",
                    r["files"], r["added"], r["removed"], r["blocks"]
                );
            })
        }
    }
}

/// `MODULE@VERSION` for a path: each element escaped, the `/` and `@` kept.
fn enc_target(target: &str) -> String {
    target
        .split('/')
        .map(|part| {
            percent_encoding::utf8_percent_encode(part, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%40", "@")
                .replace("%2E", ".")
                .replace("%2D", "-")
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn print_or(json: bool, answer: &Value, print: impl FnOnce(&Value)) -> anyhow::Result<()> {
    if json {
        println!("{answer}");
    } else {
        print(answer);
    }
    Ok(())
}

/// Bytes for people: `1.5 MiB`.
fn size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn print_versions(answer: &Value) {
    let rows = answer.as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    for row in &rows {
        let status = match row["status"].as_str() {
            Some("blocked") => format!("blocked: {}", row["reason"].as_str().unwrap_or("")),
            other => other.unwrap_or("").to_string(),
        };
        let _ = writeln!(
            out,
            "{}@{}\t{}\t{}\tstored {}\tused {}",
            row["module"].as_str().unwrap_or(""),
            row["version"].as_str().unwrap_or(""),
            size(row["bytes"].as_u64().unwrap_or(0)),
            status,
            row["stored"].as_str().unwrap_or("-"),
            row["used"].as_str().unwrap_or("-"),
        );
    }
    let _ = writeln!(out, "{} versions", rows.len());
}

fn print_usage(answer: &Value) {
    let mut out = std::io::stdout().lock();
    for row in answer["modules"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:>10}  {:>5} versions  {}",
            size(row["bytes"].as_u64().unwrap_or(0)),
            row["versions"],
            row["module"].as_str().unwrap_or("")
        );
    }
    let total = &answer["total"];
    let _ = writeln!(
        out,
        "{:>10}  {:>5} versions  total",
        size(total["bytes"].as_u64().unwrap_or(0)),
        total["versions"]
    );
}

fn print_collected(result: &Value) {
    let dry = result["dry_run"].as_bool().unwrap_or(false);
    for victim in result["victims"].as_array().into_iter().flatten() {
        println!(
            "{} {}@{} ({}, {})",
            if dry { "would remove" } else { "removed" },
            victim["module"].as_str().unwrap_or(""),
            victim["version"].as_str().unwrap_or(""),
            size(victim["bytes"].as_u64().unwrap_or(0)),
            victim["rule"].as_str().unwrap_or("")
        );
    }
    let verb = if dry { "would reclaim" } else { "reclaimed" };
    println!(
        "{} versions, {verb} {} of {}{}",
        result["removed"],
        size(result["bytes"].as_u64().unwrap_or(0)),
        size(result["stored_bytes_before"].as_u64().unwrap_or(0)),
        match result["spared"].as_u64() {
            Some(n) if n > 0 => format!("; {n} spared (used since the plan, or being filled)"),
            _ => String::new(),
        }
    );
}

/// One connection, one request: the API's JSON answer, or its `error` as this command's failure.
async fn call(
    base: &Api,
    method: Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<Value> {
    let (status, bytes) = send(base, method, path, body).await?;
    let answer: Value = serde_json::from_slice(&bytes).with_context(|| {
        format!("the admin API answered {status} with something other than JSON")
    })?;
    if !status.is_success() {
        bail!(
            "{status}: {}",
            answer["error"].as_str().unwrap_or("(no reason given)")
        );
    }
    Ok(answer)
}

type Connection = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(base: &url::Url) -> anyhow::Result<Connection> {
    let host = base.host_str().context("the admin URL has no host")?;
    let port = base.port_or_known_default().unwrap_or(80);
    let stream = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)),
    )
    .await
    .with_context(|| format!("{base}: no connection within 10s"))?
    .with_context(|| {
        format!("cannot connect to the admin API at {base} (is admin_listen set there?)")
    })?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("the admin API's connection failed")?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn send(
    base: &Api,
    method: Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let response = request(base, method, path, body).await?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .context("reading the admin API's answer")?
        .to_bytes();
    Ok((status, bytes))
}

async fn request(
    base: &Api,
    method: Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
    let mut sender = connect(base).await?;
    let uri = format!("{}/admin/v1/{path}", base.as_str().trim_end_matches('/'));
    let mut request = Request::builder()
        .method(method)
        .uri(&uri)
        .header(http::header::HOST, base.host_str().unwrap_or("localhost"));
    if let Some(authorization) = &base.authorization {
        request = request.header(http::header::AUTHORIZATION, authorization);
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .context("building the request")?;
    sender
        .send_request(request)
        .await
        .with_context(|| format!("{uri}: the request failed"))
}

/// A long operation: its progress lines shown as a bar (on a terminal), its result returned.
async fn streamed(base: &Api, path: &str, what: &str) -> anyhow::Result<Value> {
    let response = request(base, Method::POST, path, None).await?;
    let status = response.status();
    let mut body = response.into_body();
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(what.to_string());
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the admin API's answer")?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let value: Value = serde_json::from_slice(&line).with_context(|| {
                format!("the admin API answered {status} with something other than JSON lines")
            })?;
            if let Some(progress) = value.get("progress") {
                show_progress(&bar, progress);
            } else if let Some(result) = value.get("result") {
                bar.finish_and_clear();
                return Ok(result.clone());
            } else if let Some(error) = value.get("error") {
                bar.finish_and_clear();
                bail!(
                    "{status}: {}",
                    error.as_str().unwrap_or("(no reason given)")
                );
            }
        }
    }
    bar.finish_and_clear();
    bail!("the admin API's answer ended before its result ({status})")
}

fn show_progress(bar: &indicatif::ProgressBar, progress: &Value) {
    if let (Some(done), Some(total)) = (progress["done"].as_u64(), progress["total"].as_u64()) {
        if bar.length() != Some(total) {
            bar.set_length(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} versions, ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
        }
        bar.set_position(done);
    } else if let Some(files) = progress["files"].as_u64() {
        bar.set_message(format!("walking the store: {files} files"));
        bar.tick();
    }
}
