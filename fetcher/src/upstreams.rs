//! Upstreams per module pattern (`[[upstreams]]` in Ferry's configuration): which modules go where, the
//! `GOPROXY`-syntax list of each table (`,` falls through on 404/410 only, `|` on any error, `direct`,
//! `off`), the credentials each URL gets, and how each step's health is reported. Pure: the configuration
//! builds these values (reading token files and netrc files); `routed.rs` walks them.

use std::fmt;
use std::sync::Arc;

use ferry_module::Pattern;

/// One `[[upstreams]]` table: the modules it serves (first matching table wins) and its steps.
#[derive(Debug, Clone)]
pub struct UpstreamRoute {
    /// The table's `name`: what messages, logs and metrics say, never a URL.
    pub name: String,
    /// `path.Match` prefix patterns, as `GOPRIVATE`'s.
    pub modules: Vec<Pattern>,
    /// The `proxy` list, in order.
    pub steps: Vec<Step>,
}

impl UpstreamRoute {
    /// Whether this table serves `module`.
    pub fn serves(&self, module: &str) -> bool {
        self.modules.iter().any(|pattern| pattern.matches(module))
    }

    /// The name of step `index` in messages and metrics: the table's name for its first step, `NAME#N`
    /// for the N-th after it.
    pub fn step_label(&self, index: usize) -> String {
        match index {
            0 => self.name.clone(),
            n => format!("{}#{}", self.name, n + 1),
        }
    }
}

/// One entry of a `proxy` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub hop: Hop,
    /// Written before a `|`: any error moves on to the next step. Before a `,` (or last), only a 404 or 410
    /// does.
    pub on_any_error: bool,
}

/// Where a step fetches from.
#[derive(Clone, PartialEq, Eq)]
pub enum Hop {
    /// A GOPROXY server, fetched over HTTP and verified; `authorization` is sent to it alone.
    Proxy {
        url: String,
        authorization: Option<http::HeaderValue>,
    },
    /// The version control origin, through the go command (`GOPROXY=direct`).
    Direct,
    /// Refuses: nothing is fetched for the table's modules.
    Off,
}

impl fmt::Debug for Hop {
    /// Never prints a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hop::Proxy { url, authorization } => f
                .debug_struct("Proxy")
                .field("url", url)
                .field(
                    "authorization",
                    &authorization.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
            Hop::Direct => f.write_str("Direct"),
            Hop::Off => f.write_str("Off"),
        }
    }
}

/// Parses a `proxy` list in `GOPROXY`'s syntax: URLs (`http://`, `https://`), `direct` and `off`,
/// separated by `,` or `|`. The message says what to write instead; it never repeats a URL's userinfo.
pub fn parse_proxy_list(text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(
            "proxy is empty; write e.g. \"https://proxy.corp.example\" or \"https://a.example|direct\""
                .into(),
        );
    }
    loop {
        let (item, separator, tail) = match rest.find([',', '|']) {
            Some(at) => (&rest[..at], Some(&rest[at..=at]), &rest[at + 1..]),
            None => (rest, None, ""),
        };
        steps.push(Step {
            hop: parse_hop(item.trim(), steps.len() + 1)?,
            on_any_error: separator == Some("|"),
        });
        if separator.is_none() {
            return Ok(steps);
        }
        rest = tail;
    }
}

fn parse_hop(item: &str, position: usize) -> Result<Hop, String> {
    match item {
        "" => Err(format!(
            "entry {position} of proxy is empty; separate the entries with one `,` or `|`"
        )),
        "direct" => Ok(Hop::Direct),
        "off" => Ok(Hop::Off),
        url if url.starts_with("http://") || url.starts_with("https://") => {
            let authority = authority_of(url);
            if authority.contains('@') {
                return Err(format!(
                    "entry {position} of proxy carries credentials in its URL; remove them and set token_file, token_env or netrc in this table"
                ));
            }
            if authority.is_empty() || url.parse::<http::Uri>().is_err() {
                return Err(format!(
                    "entry {position} of proxy, {url:?}, is not a URL; write e.g. \"https://proxy.corp.example\""
                ));
            }
            Ok(Hop::Proxy {
                url: url.trim_end_matches('/').to_string(),
                authorization: None,
            })
        }
        other => Err(format!(
            "entry {position} of proxy, {other:?}, is not an http:// or https:// URL, direct or off"
        )),
    }
}

/// `host[:port]` of an `http(s)://` URL.
pub fn authority_of(url: &str) -> &str {
    let after = url.split_once("://").map_or(url, |(_, rest)| rest);
    after.split(['/', '?', '#']).next().unwrap_or("")
}

/// What one request to a step came to, for its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamResult {
    /// It answered.
    Ok,
    /// 404 or 410: it does not have it (the step is healthy).
    NotFound,
    /// Any other failure (a status, a refused connection, a check that failed, a timeout).
    Error,
}

impl UpstreamResult {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamResult::Ok => "ok",
            UpstreamResult::NotFound => "not_found",
            UpstreamResult::Error => "error",
        }
    }
}

/// What an [`UpstreamObserver`] calls: the step's label and the outcome.
pub type ObserveFn = dyn Fn(&str, UpstreamResult) + Send + Sync;

/// Told of every step's outcome (the proxy's metrics), by the step's label.
#[derive(Clone)]
pub struct UpstreamObserver(pub Arc<ObserveFn>);

impl fmt::Debug for UpstreamObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpstreamObserver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops(text: &str) -> Vec<(String, bool)> {
        parse_proxy_list(text)
            .unwrap()
            .into_iter()
            .map(|step| {
                let hop = match step.hop {
                    Hop::Proxy { url, .. } => url,
                    Hop::Direct => "direct".into(),
                    Hop::Off => "off".into(),
                };
                (hop, step.on_any_error)
            })
            .collect()
    }

    #[test]
    fn goproxy_separators_say_when_to_fall_through() {
        assert_eq!(
            hops("https://a.example/, http://b.example:8080|direct"),
            vec![
                ("https://a.example".to_string(), false),
                ("http://b.example:8080".to_string(), true),
                ("direct".to_string(), false),
            ]
        );
        assert_eq!(hops("off"), vec![("off".to_string(), false)]);
    }

    #[test]
    fn bad_lists_say_what_to_write_and_never_echo_credentials() {
        for (text, words) in [
            ("", "proxy is empty"),
            ("https://a.example,,direct", "entry 2 of proxy is empty"),
            ("file:///srv/goproxy", "is not an http:// or https:// URL"),
            ("https://user:s3cret@a.example", "carries credentials"),
            ("https://", "is not a URL"),
        ] {
            let message = parse_proxy_list(text).unwrap_err();
            assert!(message.contains(words), "{text}: {message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
    }

    #[test]
    fn the_first_matching_pattern_serves_and_steps_are_labelled_by_name() {
        let route = UpstreamRoute {
            name: "corp".into(),
            modules: vec![Pattern::new("corp.example/*").unwrap()],
            steps: parse_proxy_list("https://a.example,https://b.example").unwrap(),
        };
        assert!(route.serves("corp.example/lib/v2"));
        assert!(!route.serves("corp.example"));
        assert_eq!(route.step_label(0), "corp");
        assert_eq!(route.step_label(1), "corp#2");
        assert_eq!(
            authority_of("https://a.example:8443/path"),
            "a.example:8443"
        );
    }
}
