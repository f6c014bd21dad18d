//! The fetcher's error kinds and the rules that sort go's messages into them.

use std::path::PathBuf;
use std::time::Duration;

/// Longest message kept from go's output; go can print whole git transcripts.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Why a fetch, list or latest query failed.
///
/// `NotFound`, `Upstream` and `Timeout` describe the module or the upstream; the other kinds are faults
/// of this machine or of the `go` command itself.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The module, version or query does not exist upstream (404/410, unknown revision, no matching
    /// versions, invalid version). `message` is go's own, trimmed and without URL credentials.
    #[error("not found: {message}")]
    NotFound { message: String },

    /// Any other failure reported by go while talking to the upstream (5xx, network errors, checksum
    /// mismatches, VCS failures). `message` is go's own, trimmed and without URL credentials.
    #[error("upstream error: {message}")]
    Upstream { message: String },

    /// The go command did not finish within the configured deadline; it and its children were killed.
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    Timeout { command: String, timeout: Duration },

    /// The configured go binary could not be run (or `go version` failed) at start-up.
    #[error(
        "cannot run the go binary {}: {reason}; install Go or set the go binary path in Ferry's configuration",
        path.display()
    )]
    GoMissing { path: PathBuf, reason: String },

    /// A local file system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// go printed more than the fetcher reads (an upstream `list` of a million versions); it was killed.
    /// The upstream's answer is the cause, so this is an upstream fault.
    #[error(
        "`{command}` printed more than {limit} bytes on {stream} and was stopped; the upstream's answer is too large"
    )]
    OutputTooLarge {
        command: String,
        /// `stdout` or `stderr`.
        stream: &'static str,
        limit: usize,
    },

    /// Another process (or another `WorkDir` in this one) holds the work dir's lock.
    #[error(
        "the work dir {} is in use by another process (it holds the directory's lock); give each Ferry its own work_dir",
        path.display()
    )]
    WorkDirBusy { path: PathBuf },

    /// go failed on this machine, not upstream: its work dir is full or read-only. `message` is go's own and
    /// names local paths: for the log, never for a client.
    #[error("the go command failed on this machine: {message}")]
    LocalFault { message: String },

    /// go exited without an error but its answer was unusable (not JSON, fields or files missing).
    #[error("unexpected answer from go: {message}")]
    InvalidOutput { message: String },
}

impl FetchError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> FetchError {
        FetchError::Io {
            context: context.into(),
            source,
        }
    }

    /// What a client may be told of this error: go's words on which module failed and how, with every URL,
    /// network address and absolute path in them replaced (`reading <upstream>: 404 Not Found`). The
    /// `Display` form keeps them all and is for the log; the proxy answers clients with this one only.
    pub fn client_message(&self) -> String {
        match self {
            FetchError::NotFound { message } | FetchError::Upstream { message } => {
                redact_for_client(message)
            }
            other => redact_for_client(&other.to_string()),
        }
    }

    /// Sorts a failure message printed by go into `NotFound` or `Upstream`.
    pub(crate) fn from_go_message(raw: &str) -> FetchError {
        let message = clean_message(raw);
        if is_local_fault(&message) {
            FetchError::LocalFault { message }
        } else if is_not_found(&message) {
            FetchError::NotFound { message }
        } else {
            FetchError::Upstream { message }
        }
    }
}

/// The OS errors of a full or read-only work dir, as go prints them (`write /work/go-1/...: no space left on
/// device`). They are Ferry's to fix, so they must not read as an upstream failure (a 502 that blames the
/// upstream, and shows local paths). "permission denied" is left out: over ssh it is the remote's answer.
const LOCAL_FAULTS: &[&str] = &[
    "no space left on device",
    "disk quota exceeded",
    "read-only file system",
    "too many open files",
];

fn is_local_fault(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    LOCAL_FAULTS.iter().any(|fault| lower.contains(fault))
}

/// Phrases go uses when the module, version or query does not exist. Anything else is an upstream
/// failure: answering "not found" for an outage would hide it from users and could be cached.
/// (A GOPROXY upstream's 404/410 is recognised by its status code, see [`read_statuses`].)
const NOT_FOUND_PHRASES: &[&str] = &[
    // Query resolution found nothing (e.g. `latest` of a module without versions, `>v9`).
    "no matching versions",
    // A VCS upstream does not know the revision, or go rejects the version string.
    "unknown revision",
    "invalid version",
    "repository not found",
    "malformed module path",
    // The version's go.mod names another module: proxies answer these with 404/410 too.
    "module declares its path as",
];

fn is_not_found(message: &str) -> bool {
    // go could not reach the upstream at all (`Get "URL": dial tcp ...`).
    if message.contains("Get \"") {
        return false;
    }
    // The HTTP statuses go got, by code: go itself falls through to the next GOPROXY entry on 404 and 410
    // whatever the reason phrase (`HTTPError.Is(fs.ErrNotExist)`), so Ferry must too. An upstream answering
    // `404 File not found` is as much a miss as `404 Not Found`.
    let statuses = read_statuses(message);
    if !statuses.is_empty() {
        return statuses.iter().all(|&code| code == 404 || code == 410);
    }
    // go words every failed query as "invalid version: <cause>", a 500 or a refused connection too:
    // a status in any other form than go's `reading URL: NNN` still makes it an upstream failure.
    if names_other_status(message) {
        return false;
    }
    if NOT_FOUND_PHRASES
        .iter()
        .any(|phrase| message.contains(phrase))
    {
        return true;
    }
    // A `file://` GOPROXY upstream reports a missing file the way the file system does.
    message.contains("reading file://") && message.contains("no such file or directory")
}

/// The HTTP status codes in go's `reading URL: NNN <reason phrase>` (its `web.HTTPError`), in order. The
/// reason phrase is the upstream's own text and is ignored: it may be anything, empty, or even look like
/// another status. A URL holds no whitespace, so it ends at the first `: ` followed by the code.
fn read_statuses(message: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    for (at, _) in message.match_indices("reading ") {
        let rest = &message[at + "reading ".len()..];
        let url_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let Some(colon) = rest[..url_end].rfind(':') else {
            continue;
        };
        // `reading URL:` then a space, then the status line go got (`404 File not found`).
        if colon + 1 != url_end || !rest[url_end..].starts_with(' ') {
            continue;
        }
        if let Some(code) = status_code_at(&rest[url_end + 1..]) {
            statuses.push(code);
        }
    }
    statuses
}

/// The three-digit status code that starts `text`, when it stands alone (followed by a space, a line
/// break or the end), as in go's `Status` field: `404 Not Found`, `404 File not found`, `404`.
fn status_code_at(text: &str) -> Option<u16> {
    let code = text.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let standalone = text[3..].chars().next().is_none_or(char::is_whitespace);
    standalone.then(|| code.parse().ok()).flatten()
}

/// Whether some `: NNN ` in the message is an HTTP status other than 404/410 (`example.com/x: 500 ...`).
fn names_other_status(message: &str) -> bool {
    message.match_indices(": ").any(|(at, _)| {
        matches!(status_code_at(&message[at + 2..]), Some(code) if code != 404 && code != 410)
    })
}

/// Trims go's message, drops go's `go: ` prefix, removes credentials from URLs and bounds its length.
pub(crate) fn clean_message(raw: &str) -> String {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_prefix("go: ").unwrap_or(trimmed);
    let mut message = strip_unzip_path(&strip_url_userinfo(trimmed));
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" [...]");
    }
    message
}

/// Removes the local path go names when it refuses a zip that breaks the module zip rules (`unzip
/// /work/go-1/gomodcache/cache/download/example.com/m/@v/v1.0.0.zip: example.com/m@v1.0.0/../x: malformed
/// file path ...`): a path inside Ferry's work dir, never for a client; the rule stays.
fn strip_unzip_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("unzip /") {
        out.push_str(&rest[..at + "unzip".len()]);
        rest = &rest[at + "unzip ".len()..];
        match rest.find(".zip: ") {
            Some(end) => rest = &rest[end + ".zip".len()..],
            None => out.push(' '),
        }
    }
    out.push_str(rest);
    out
}

/// Removes `user:password@` from every `scheme://user:password@host/...` in `text`, so tokens in
/// GOPROXY URLs or git remotes never reach logs or HTTP answers.
pub(crate) fn strip_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        // The authority ends at the path, query, fragment, or anything that cannot be in a URL.
        let authority_len = rest
            .find(|c: char| {
                matches!(c, '/' | '?' | '#')
                    || c.is_whitespace()
                    || matches!(c, '"' | '\'' | '`' | '<' | '>')
            })
            .unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        match authority.rfind('@') {
            Some(userinfo_end) => out.push_str(&authority[userinfo_end + 1..]),
            None => out.push_str(authority),
        }
        rest = &rest[authority_len..];
    }
    out.push_str(rest);
    out
}

/// `text` without what only the operator may see: URLs (the upstream's address; a `file://` upstream's local
/// path) become `<upstream>`, network addresses (`dial tcp 10.0.0.7:443`, `lookup proxy.corp`) `<address>`,
/// absolute paths (the work dir, go's module cache) `<local path>`. Works word by word: go's messages put
/// each of these in a word of its own, at most quoted (`Get "URL":`) or followed by a colon.
pub(crate) fn redact_for_client(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous_word = "";
    for piece in text.split_inclusive(char::is_whitespace) {
        let word = piece.trim_end_matches(char::is_whitespace);
        let space = &piece[word.len()..];
        // The word without the quotes and punctuation around it, which stay.
        let core = word
            .trim_start_matches(['"', '\'', '`', '(', '<'])
            .trim_end_matches(['"', '\'', '`', ')', '>', ':', ',', ';', '.']);
        let start = word.find(core).unwrap_or(0);
        let replacement = if core.contains("://") {
            Some("<upstream>")
        } else if core.starts_with('/') && core.len() > 1 {
            Some("<local path>")
        } else if is_ip_address(core)
            || (matches!(previous_word, "tcp" | "udp" | "on") && is_host_and_port(core))
            || previous_word == "lookup" && !core.is_empty()
        {
            Some("<address>")
        } else {
            None
        };
        match replacement {
            Some(replacement) => {
                out.push_str(&word[..start]);
                out.push_str(replacement);
                out.push_str(&word[start + core.len()..]);
            }
            None => out.push_str(word),
        }
        out.push_str(space);
        previous_word = word;
    }
    out
}

/// Whether `word` is an IP address as Go's net package prints one: an IPv4 address or `[IPv6]`, either
/// with a port or not, or a connection's `local->remote`. (Go dials addresses: a host name shows only in
/// `lookup NAME`, or after `tcp`/`on` with its port, both handled by the caller; a bare `NAME:N` may be a
/// file and line, `go.mod:3`.)
fn is_ip_address(word: &str) -> bool {
    if let Some((local, remote)) = word.split_once("->") {
        return is_ip_address(local) || is_ip_address(remote);
    }
    let host = match word.rsplit_once(':') {
        Some((host, port)) if is_port(port) => host,
        _ => word,
    };
    is_ipv4(host) || host.starts_with('[') && host.ends_with(']')
}

fn is_ipv4(host: &str) -> bool {
    host.split('.').count() == 4
        && host.split('.').all(|octet| {
            !octet.is_empty() && octet.len() <= 3 && octet.bytes().all(|b| b.is_ascii_digit())
        })
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// `name:port`, a host name being letters, digits, dots and dashes.
fn is_host_and_port(word: &str) -> bool {
    word.rsplit_once(':').is_some_and(|(host, port)| {
        is_port(port)
            && !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_or_read_only_work_dir_is_a_local_fault_not_the_upstreams() {
        for message in [
            "go: example.com/x@v1.0.0: write /var/lib/ferry/work/go-7/pkg/mod/cache/download/example.com/x/@v/v1.0.0.zip: no space left on device",
            "go: creating work dir: mkdir /w/go-1/tmp: read-only file system",
            "go: example.com/x@v1.0.0: open /w/go-2/pkg/mod/cache/download/example.com/x/@v/v1.0.0.lock: disk quota exceeded",
        ] {
            let e = FetchError::from_go_message(message);
            assert!(
                matches!(e, FetchError::LocalFault { .. }),
                "{message}: {e:?}"
            );
        }
        // A remote's refusal over ssh is the upstream's.
        let e = FetchError::from_go_message(
            "go: git.corp.example/x@v1.0.0: git ls-remote: git@git.corp.example: Permission denied (publickey).",
        );
        assert!(matches!(e, FetchError::Upstream { .. }), "{e:?}");
    }

    #[test]
    fn a_refused_zip_is_named_by_its_rule_without_the_local_path() {
        let e = FetchError::from_go_message(
            "go: example.com/m@v1.0.0: unzip /work/go-1Y5Wlx/gomodcache/cache/download/example.com/m/@v/v1.0.0.zip: example.com/m@v1.0.0/../x: malformed file path \"../x\": invalid path element \"..\"",
        );
        assert_eq!(
            e.to_string(),
            "upstream error: example.com/m@v1.0.0: unzip: example.com/m@v1.0.0/../x: malformed file path \"../x\": invalid path element \"..\""
        );
    }

    #[test]
    fn http_404_and_410_are_not_found() {
        let e = FetchError::from_go_message(
            "example.com/hello@v1.9.9: reading http://127.0.0.1:4000/example.com/hello/@v/v1.9.9.info: 404 Not Found\n\tserver response: not found",
        );
        assert!(matches!(e, FetchError::NotFound { .. }), "{e:?}");
        let e = FetchError::from_go_message(
            "example.com/x@v1.0.0: reading https://p/example.com/x/@v/v1.0.0.info: 410 Gone",
        );
        assert!(matches!(e, FetchError::NotFound { .. }), "{e:?}");
    }

    #[test]
    fn a_404_or_410_is_not_found_whatever_its_reason_phrase() {
        for status in [
            "404 File not found",
            "404 ",
            "404",
            "410 Gone Fishing",
            "404 Internal Server Error",
            "410 500 Internal Server Error",
        ] {
            for message in [
                format!(
                    "example.com/hello@v1.0.0: reading http://127.0.0.1:4000/example.com/hello/@v/v1.0.0.info: {status}"
                ),
                format!(
                    "example.com/hello@v1.0.0: reading http://127.0.0.1:4000/example.com/hello/@v/v1.0.0.info: {status}\n\tserver response: not found: example.com/hello"
                ),
                format!(
                    "example.com/hello@master: invalid version: reading http://u:p@127.0.0.1:4000/example.com/hello/@v/master.info: {status}"
                ),
            ] {
                let e = FetchError::from_go_message(&message);
                assert!(matches!(e, FetchError::NotFound { .. }), "{message}: {e:?}");
            }
        }
    }

    #[test]
    fn another_status_is_upstream_even_with_a_not_found_reason_phrase() {
        for status in ["500 Not Found", "503 404 Not Found", "403 Gone", "502 "] {
            let message = format!(
                "example.com/hello@master: invalid version: reading http://127.0.0.1:4000/example.com/hello/@v/master.info: {status}"
            );
            let e = FetchError::from_go_message(&message);
            assert!(matches!(e, FetchError::Upstream { .. }), "{message}: {e:?}");
        }
    }

    #[test]
    fn query_and_revision_failures_are_not_found() {
        for message in [
            "go: example.com/hello@latest: no matching versions for query \"latest\"",
            "example.com/nope@master: invalid version: unknown revision master",
            "github.com/a/b@v1.0.0: invalid version: git ls-remote -q origin: exit status 128:\n\tremote: Repository not found.\n\trepository not found",
            "example.com/x@v1.0.0: parsing go.mod:\n\tmodule declares its path as: example.com/y\n\t        but was required as: example.com/x",
            "example.com/nope@master: reading file:///tmp/proxy/example.com/nope/@v/master.info: no such file or directory",
        ] {
            let e = FetchError::from_go_message(message);
            assert!(matches!(e, FetchError::NotFound { .. }), "{message}: {e:?}");
        }
    }

    #[test]
    fn server_and_network_failures_are_upstream() {
        for message in [
            "example.com/hello@v1.0.0: reading http://127.0.0.1:4000/example.com/hello/@v/v1.0.0.info: 500 Internal Server Error",
            "example.com/hello@v1.0.0: Get \"http://127.0.0.1:9/example.com/hello/@v/v1.0.0.info\": dial tcp 127.0.0.1:9: connect: connection refused",
            "verifying example.com/hello@v1.0.0: checksum mismatch",
            "example.com/hello@v1.0.0: open /tmp/x/no such file or directory",
            // Queries wrap every failure in "invalid version:", upstream outages included.
            "example.com/hello@master: invalid version: reading http://127.0.0.1:4000/example.com/hello/@v/master.info: 500 Internal Server Error\n\tserver response: down",
            "example.com/hello@master: invalid version: reading http://127.0.0.1:4000/example.com/hello/@v/master.info: 403 Forbidden",
            "example.com/hello@master: invalid version: Get \"http://127.0.0.1:9/example.com/hello/@v/master.info\": dial tcp 127.0.0.1:9: connect: connection refused",
        ] {
            let e = FetchError::from_go_message(message);
            assert!(matches!(e, FetchError::Upstream { .. }), "{message}: {e:?}");
        }
    }

    #[test]
    fn messages_are_trimmed_and_lose_the_go_prefix() {
        let e = FetchError::from_go_message("  go: example.com/x: 500 Internal Server Error\n\n");
        assert_eq!(
            e.to_string(),
            "upstream error: example.com/x: 500 Internal Server Error"
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let message = clean_message(&"é".repeat(MAX_MESSAGE_BYTES));
        assert!(message.len() <= MAX_MESSAGE_BYTES + " [...]".len());
        assert!(message.ends_with(" [...]"));
    }

    #[test]
    fn a_client_message_keeps_the_module_and_the_failure_but_no_url_address_or_path() {
        for (message, client) in [
            (
                "example.com/hello@v1.9.9: reading http://127.0.0.1:4000/example.com/hello/@v/v1.9.9.info: 404 Not Found\n\tserver response: not found",
                "example.com/hello@v1.9.9: reading <upstream>: 404 Not Found\n\tserver response: not found",
            ),
            (
                "example.com/hello@v1.0.0: Get \"https://proxy.corp.example/go/example.com/hello/@v/v1.0.0.info\": dial tcp 10.1.2.3:443: connect: connection refused",
                "example.com/hello@v1.0.0: Get \"<upstream>\": dial tcp <address>: connect: connection refused",
            ),
            (
                "example.com/hello@v1.0.0: Get \"https://proxy.corp.example/x\": dial tcp: lookup proxy.corp.example on 127.0.0.53:53: no such host",
                "example.com/hello@v1.0.0: Get \"<upstream>\": dial tcp: lookup <address> on <address>: no such host",
            ),
            (
                "example.com/hello@v1.0.0: read tcp 127.0.0.1:5000->127.0.0.1:4000: read: connection reset by peer",
                "example.com/hello@v1.0.0: read tcp <address>: read: connection reset by peer",
            ),
            (
                "git.corp.example/x@v1.0.0: git init --bare in /var/lib/ferry/work/go-3/pkg/mod/cache/vcs/0a1b: exit status 128",
                "git.corp.example/x@v1.0.0: git init --bare in <local path>: exit status 128",
            ),
            (
                "example.com/nope@master: reading file:///srv/proxy/example.com/nope/@v/master.info: no such file or directory",
                "example.com/nope@master: reading <upstream>: no such file or directory",
            ),
            (
                "example.com/hello@v1.0.0: Get \"https://proxy.corp.example/x\": dial tcp proxy.corp.example:443: i/o timeout",
                "example.com/hello@v1.0.0: Get \"<upstream>\": dial tcp <address>: i/o timeout",
            ),
            (
                "example.com/hello@v1.0.0: Get \"http://[::1]:3000/x\": dial tcp [::1]:3000: connect: connection refused",
                "example.com/hello@v1.0.0: Get \"<upstream>\": dial tcp <address>: connect: connection refused",
            ),
            (
                "example.com/hello@v1.0.0: parsing go.mod: go.mod:5: unknown directive: frob",
                "example.com/hello@v1.0.0: parsing go.mod: go.mod:5: unknown directive: frob",
            ),
            (
                "verifying example.com/hello@v1.0.0: checksum mismatch\n\tdownloaded: h1:abc=\n\tsum.golang.org: h1:def=",
                "verifying example.com/hello@v1.0.0: checksum mismatch\n\tdownloaded: h1:abc=\n\tsum.golang.org: h1:def=",
            ),
        ] {
            let e = FetchError::from_go_message(message);
            assert_eq!(e.client_message(), client, "{message}");
            assert!(e.to_string().contains(message), "the log keeps it all: {e}");
        }
        let e = FetchError::Timeout {
            command: "GET example.com/hello@v1.0.0 from http://10.0.0.9:3000".into(),
            timeout: std::time::Duration::from_secs(2),
        };
        assert_eq!(
            e.client_message(),
            "`GET example.com/hello@v1.0.0 from <upstream>` did not finish within 2s and was killed"
        );
    }

    #[test]
    fn userinfo_is_removed_from_urls() {
        assert_eq!(
            strip_url_userinfo(
                "reading https://bob:s3cret@proxy.test/a/@v/list: 401 and git://tok@h.test and ssh://git@h.test:22/r"
            ),
            "reading https://proxy.test/a/@v/list: 401 and git://h.test and ssh://h.test:22/r"
        );
        assert_eq!(
            strip_url_userinfo("Get \"https://u:p@h.test\": EOF"),
            "Get \"https://h.test\": EOF"
        );
        // A password may contain '@' when written unescaped: everything up to the last '@' goes.
        assert_eq!(
            strip_url_userinfo("http://u:p@ss@h.test/x"),
            "http://h.test/x"
        );
        assert_eq!(
            strip_url_userinfo("no urls here, user@host"),
            "no urls here, user@host"
        );
        assert_eq!(strip_url_userinfo("http://h.test/a@b"), "http://h.test/a@b");
    }
}
