//! The audit trail (`audit_log`): one JSON line per decision that matters (a zip served, a fill started,
//! an access denied, a version deleted, blocked or unblocked, a collection), with who asked, from where,
//! for what, the request id and the time. Apart from the access log, on its own stream or file.
//!
//! The request path never waits for the trail: a line is made on the request's task and handed to a bounded
//! channel, which a writer thread of its own drains to the file. When the channel is full (the file is
//! slower than the requests), the line is dropped and counted (`ferry_audit_dropped_total`), never lost
//! silently.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use http::{Extensions, HeaderMap};

use crate::layers::auth::{Credential, Identity};
use crate::layers::client::Client;
use crate::metrics::metrics;

/// Lines waiting for the writer at most; more are dropped and counted.
const CAPACITY: usize = 4096;

/// Where the trail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    Stderr,
    /// Appended to.
    File(PathBuf),
}

impl AuditTarget {
    /// An `audit_log` value: `off` (none), `stderr`, or a file's path.
    pub fn parse(text: &str) -> Result<Option<AuditTarget>, String> {
        match text.trim() {
            "" => Err("audit_log is empty; write \"stderr\", a file's path, or \"off\"".into()),
            "off" => Ok(None),
            "stderr" => Ok(Some(AuditTarget::Stderr)),
            path => Ok(Some(AuditTarget::File(PathBuf::from(path)))),
        }
    }

    /// Opens the target for appending (a file is created when missing).
    fn open(&self) -> std::io::Result<Box<dyn Write + Send>> {
        Ok(match self {
            AuditTarget::Stderr => Box::new(std::io::stderr()),
            AuditTarget::File(path) => Box::new(append(path)?),
        })
    }
}

impl std::fmt::Display for AuditTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditTarget::Stderr => f.write_str("stderr"),
            AuditTarget::File(path) => write!(f, "{}", path.display()),
        }
    }
}

fn append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Checks, when the configuration is read, that the trail's file can be written: an existing file opens for
/// appending, a new one has a directory to be made in (it is made when serving starts, not by `ferry config`).
pub fn check(target: &AuditTarget) -> Result<(), String> {
    let AuditTarget::File(path) = target else {
        return Ok(());
    };
    let shown = path.display();
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| {
                format!("audit_log {shown}: cannot open the file for appending: {e}; check Ferry's user may write it")
            });
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if parent.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "audit_log {shown}: the directory {} does not exist; create it, or name a file in an existing directory",
            parent.display()
        ))
    }
}

/// The trail's sending end: cheap to clone; off, it does nothing.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    lines: Option<SyncSender<String>>,
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A zip served.
    Fetch,
    /// A fill from the upstream started for the request (several requests may share one fetch).
    Fill,
    /// A module the caller may not read or administer.
    Denied,
    Delete,
    Block,
    Unblock,
    Gc,
    Reindex,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Fetch => "fetch",
            Action::Fill => "fill",
            Action::Denied => "denied",
            Action::Delete => "delete",
            Action::Block => "block",
            Action::Unblock => "unblock",
            Action::Gc => "gc",
            Action::Reindex => "reindex",
        }
    }
}

/// Who asked, from where, in which request: read from a request's extensions and headers once.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub identity: Option<&'a Identity>,
    pub client: Option<IpAddr>,
    pub request_id: Option<&'a str>,
}

impl<'a> Caller<'a> {
    /// The caller of a request: its [`Identity`] and [`Client`] (put there by the layers) and its
    /// `X-Request-Id` (set by the request id layer).
    pub fn of(extensions: &'a Extensions, headers: &'a HeaderMap) -> Caller<'a> {
        Caller {
            identity: extensions.get::<Identity>(),
            client: extensions.get::<Client>().map(|client| client.address),
            request_id: headers
                .get(&crate::layers::X_REQUEST_ID)
                .and_then(|id| id.to_str().ok()),
        }
    }
}

impl Audit {
    /// No trail.
    pub fn off() -> Audit {
        Audit::default()
    }

    /// A trail written to `target` by a thread of its own.
    pub fn start(target: &AuditTarget) -> std::io::Result<Audit> {
        let out = target.open()?;
        let (lines, received) = std::sync::mpsc::sync_channel(CAPACITY);
        std::thread::Builder::new()
            .name("ferry-audit".into())
            .spawn(move || write_lines(received, out))?;
        Ok(Audit { lines: Some(lines) })
    }

    pub fn is_on(&self) -> bool {
        self.lines.is_some()
    }

    /// Records one decision; `module` and `version` as the request named them (a version may be a query).
    pub fn record(
        &self,
        action: Action,
        caller: &Caller<'_>,
        module: Option<&str>,
        version: Option<&str>,
    ) {
        let Some(lines) = &self.lines else {
            return;
        };
        let (user, via, issuer) = match caller.identity {
            None => (None, "anonymous", None),
            Some(identity) => {
                let (via, issuer) = match &identity.via {
                    Credential::Password => ("password", None),
                    Credential::Token => ("token", None),
                    Credential::Oidc { issuer } => ("oidc", Some(&**issuer)),
                };
                (Some(&*identity.user), via, issuer)
            }
        };
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let mut line = serde_json::json!({
            "time": now,
            "action": action.as_str(),
            "user": user,
            "via": via,
            "client": caller.client.map(|address| address.to_string()),
            "module": module,
            "version": version,
            "request_id": caller.request_id,
        });
        if let Some(issuer) = issuer {
            line["issuer"] = issuer.into();
        }
        match lines.try_send(line.to_string()) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                metrics().audit_dropped.inc();
            }
        }
    }
}

/// The writer thread: each line as it comes, flushed whenever no more are waiting; ends with the last
/// sender.
fn write_lines(received: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(out);
    let mut failing = false;
    while let Ok(first) = received.recv() {
        let mut result = writeln!(out, "{first}");
        while let Ok(line) = received.try_recv() {
            result = result.and_then(|()| writeln!(out, "{line}"));
        }
        result = result.and_then(|()| out.flush());
        match result {
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "audit_log: writing the audit trail failed; its lines are lost until a write succeeds");
            }
            Err(_) => {}
            Ok(()) => failing = false,
        }
        if failing {
            metrics().audit_dropped.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_the_writer_cannot_take_are_dropped_and_counted_never_blocking_the_request() {
        let (lines, received) = std::sync::mpsc::sync_channel(2);
        let audit = Audit { lines: Some(lines) };
        let identity = Identity {
            user: "ci".into(),
            via: Credential::Oidc {
                issuer: "https://issuer.example".into(),
            },
            groups: std::sync::Arc::from([]),
        };
        let caller = Caller {
            identity: Some(&identity),
            client: Some(IpAddr::from([10, 0, 0, 7])),
            request_id: Some("abc"),
        };
        let before = metrics().audit_dropped.get();
        // Nobody reads the channel: the third line on finds it full, and returns at once.
        for _ in 0..5 {
            audit.record(Action::Fetch, &caller, Some("a.example/m"), Some("v1.0.0"));
        }
        assert_eq!(metrics().audit_dropped.get() - before, 3);
        let line: serde_json::Value = serde_json::from_str(&received.try_recv().unwrap()).unwrap();
        assert_eq!(line["action"], "fetch");
        assert_eq!(line["user"], "ci");
        assert_eq!(line["via"], "oidc");
        assert_eq!(line["issuer"], "https://issuer.example");
        assert_eq!(line["client"], "10.0.0.7");
        assert_eq!(line["module"], "a.example/m");
        assert_eq!(line["request_id"], "abc");
    }
}
