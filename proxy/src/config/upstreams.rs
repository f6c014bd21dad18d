//! The `[[upstreams]]` tables: each one's name, module patterns and `GOPROXY`-syntax list, and the
//! credentials of its URLs (a bearer token from a file or a variable of Ferry's environment, or Basic from
//! a netrc file), read once at start-up. Every mistake stops start-up where it was written, saying what to
//! write; no message repeats a credential.

use std::path::Path;

use base64::Engine;
use ferry_fetcher::{UpstreamHop, UpstreamRoute, authority_of, parse_proxy_list};
use ferry_module::Pattern;

use super::env::Environment;
use super::file::{ConfigFile, Entry, FileValue};
use super::settings as row;
use super::{ConfigError, Origin};

/// The keys a table may hold.
const KEYS: [&str; 6] = [
    "name",
    "modules",
    "proxy",
    "token_file",
    "token_env",
    "netrc",
];

/// Every `[[upstreams]]` table of the file, in order.
pub(super) fn upstreams(
    file: Option<&ConfigFile>,
    env: &dyn Environment,
) -> Result<Vec<UpstreamRoute>, ConfigError> {
    let Some(file) = file else {
        return Ok(Vec::new());
    };
    let count = match file.entries.get(row::UPSTREAMS.key).map(|e| &e.value) {
        Some(FileValue::Text(count)) => count.parse().unwrap_or(0),
        _ => 0,
    };
    let mut routes: Vec<UpstreamRoute> = Vec::new();
    for index in 0..count {
        let table = Table { file, index };
        let route = table.route(env)?;
        if routes.iter().any(|known| known.name == route.name) {
            return Err(table.invalid(
                table.entry("name"),
                format!(
                    "upstream name {:?} is used by an earlier table; give each [[upstreams]] table its own name",
                    route.name
                ),
            ));
        }
        routes.push(route);
    }
    Ok(routes)
}

/// One `[[upstreams]]` table of the file.
struct Table<'a> {
    file: &'a ConfigFile,
    index: usize,
}

impl Table<'_> {
    fn key(&self) -> String {
        format!("{}.{}", row::UPSTREAMS.key, self.index)
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.file.entries.get(&format!("{}.{name}", self.key()))
    }

    /// Where `entry` was written, else where the table starts.
    fn origin(&self, entry: Option<&Entry>) -> Origin {
        let start = entry
            .or_else(|| self.file.entries.get(&self.key()))
            .map_or(0, |e| e.span.start);
        self.file.origin_at(start)
    }

    fn invalid(&self, entry: Option<&Entry>, message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin(entry),
            message,
        }
    }

    /// A string key: `None` when absent; a value of another type is an error.
    fn text(&self, name: &str) -> Result<Option<&str>, ConfigError> {
        match self.entry(name) {
            None => Ok(None),
            Some(Entry {
                value: FileValue::Text(text),
                ..
            }) => Ok(Some(text.as_str())),
            entry => Err(self.invalid(entry, format!("[[upstreams]] {name}: write a string"))),
        }
    }

    fn required(&self, name: &str, example: &str) -> Result<&str, ConfigError> {
        match self.text(name)? {
            Some(text) if !text.trim().is_empty() => Ok(text),
            _ => Err(self.invalid(
                self.entry(name),
                format!(
                    "[[upstreams]] table {} has no {name}; add e.g. {name} = {example}",
                    self.index + 1
                ),
            )),
        }
    }

    fn route(&self, env: &dyn Environment) -> Result<UpstreamRoute, ConfigError> {
        let prefix = format!("{}.", self.key());
        for (key, entry) in self.file.entries.range(prefix.clone()..) {
            let Some(name) = key.strip_prefix(&prefix) else {
                break;
            };
            // `upstreams.10.KEY` sorts among table 1's keys.
            if name.contains('.') {
                continue;
            }
            if !KEYS.contains(&name) {
                return Err(ConfigError::Invalid {
                    origin: self.file.origin_at(entry.key_span.start),
                    message: format!(
                        "[[upstreams]]: unknown key `{name}`, expected one of {}",
                        KEYS.join(", ")
                    ),
                });
            }
        }
        let name = self.required("name", "\"corp\"")?.trim().to_string();
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(self.invalid(
                self.entry("name"),
                format!("upstream name {name:?}: use letters, digits, `-`, `_` and `.` (it is a metric label)"),
            ));
        }
        let modules = self.modules()?;
        let proxy = self.required("proxy", "\"https://proxy.corp.example|direct\"")?;
        let mut steps = parse_proxy_list(proxy)
            .map_err(|why| self.invalid(self.entry("proxy"), format!("upstream {name}: {why}")))?;
        self.credentials(&name, &mut steps, env)?;
        Ok(UpstreamRoute {
            name,
            modules,
            steps,
        })
    }

    fn modules(&self) -> Result<Vec<Pattern>, ConfigError> {
        let entry = self.entry("modules");
        let texts: Vec<String> = match entry.map(|e| &e.value) {
            Some(FileValue::List(items)) => items
                .iter()
                .map(|item| item.clone().ok_or(()))
                .collect::<Result<_, ()>>()
                .map_err(|()| {
                    self.invalid(
                        entry,
                        "[[upstreams]] modules: write a list of strings".into(),
                    )
                })?,
            Some(FileValue::Text(text)) => text.split(',').map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let texts: Vec<&str> = texts
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if texts.is_empty() {
            return Err(self.invalid(
                entry,
                format!("[[upstreams]] table {} serves no modules; add e.g. modules = [\"corp.example/*\"]", self.index + 1),
            ));
        }
        texts
            .into_iter()
            .map(|text| {
                let text = text.strip_suffix('/').unwrap_or(text);
                Pattern::new(text).map_err(|e| {
                    self.invalid(
                        entry,
                        format!(
                            "[[upstreams]] modules: {text:?}: {e}; write e.g. \"corp.example/*\""
                        ),
                    )
                })
            })
            .collect()
    }

    /// Puts the table's credentials on its URLs: a token on those of the first URL's host, a netrc file's
    /// entry on each URL its machine names.
    fn credentials(
        &self,
        name: &str,
        steps: &mut [ferry_fetcher::UpstreamStep],
        env: &dyn Environment,
    ) -> Result<(), ConfigError> {
        let given: Vec<&str> = ["token_file", "token_env", "netrc"]
            .into_iter()
            .filter(|key| self.entry(key).is_some())
            .collect();
        if given.len() > 1 {
            return Err(self.invalid(
                self.entry(given[1]),
                format!(
                    "upstream {name}: {} and {} are both set; keep one",
                    given[0], given[1]
                ),
            ));
        }
        let Some(&key) = given.first() else {
            return Ok(());
        };
        let entry = self.entry(key);
        let text = self.text(key)?.unwrap_or_default().trim();
        let first = steps.iter().find_map(|step| match &step.hop {
            UpstreamHop::Proxy { url, .. } => Some(authority_of(url).to_string()),
            _ => None,
        });
        let Some(first) = first else {
            return Err(self.invalid(
                entry,
                format!("upstream {name}: {key} is set, but proxy names no URL to send it to"),
            ));
        };
        let located = |why: String| self.invalid(entry, format!("upstream {name}: {why}"));
        let (token, netrc) = match key {
            "token_file" => (Some(read_token(text).map_err(located)?), None),
            "token_env" => (Some(token_variable(env, text).map_err(located)?), None),
            _ => (None, Some(Netrc::read(Path::new(text)).map_err(located)?)),
        };
        let mut given_to = 0;
        for step in steps.iter_mut() {
            let UpstreamHop::Proxy { url, authorization } = &mut step.hop else {
                continue;
            };
            let credential = match (&token, &netrc) {
                (Some(token), _) if authority_of(url) == first => Some(format!("Bearer {token}")),
                (_, Some(netrc)) => netrc.basic(authority_of(url)),
                _ => None,
            };
            if let Some(credential) = credential {
                let mut value = http::HeaderValue::from_str(&credential).map_err(|_| {
                    self.invalid(entry, format!("upstream {name}: the credential of {key} holds characters an HTTP header cannot carry"))
                })?;
                value.set_sensitive(true);
                *authorization = Some(value);
                given_to += 1;
            }
        }
        if given_to == 0 {
            return Err(self.invalid(
                entry,
                format!("upstream {name}: the netrc file {text} has no machine entry for the hosts of proxy (nor a default); add `machine HOST login USER password PASSWORD`"),
            ));
        }
        Ok(())
    }
}

/// A token from a variable of Ferry's environment.
fn token_variable(env: &dyn Environment, name: &str) -> Result<String, String> {
    let token = env.var(name).map(|t| t.trim().to_string());
    token.filter(|t| !t.is_empty()).ok_or_else(|| {
        format!("token_env {name} is not set in Ferry's environment; set it, or use token_file")
    })
}

/// A token file's first line.
fn read_token(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("token_file {path} cannot be read: {e}; check the path and its permissions")
    })?;
    match text.lines().next().map(str::trim) {
        Some(token) if !token.is_empty() => Ok(token.to_string()),
        _ => Err(format!(
            "token_file {path} is empty; write the token on its first line"
        )),
    }
}

/// A netrc file's entries: (machine, or `None` for `default`, login, password).
struct Netrc(Vec<(Option<String>, String, String)>);

impl Netrc {
    fn read(path: &Path) -> Result<Netrc, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "the netrc file {} cannot be read: {e}; check the path and its permissions",
                path.display()
            )
        })?;
        let mut entries = Vec::new();
        let mut words = text.split_whitespace();
        let mut current: Option<(Option<String>, String, String)> = None;
        while let Some(word) = words.next() {
            match word {
                "machine" | "default" => {
                    entries.extend(current.take());
                    let machine = match word {
                        "machine" => words.next().map(str::to_string),
                        _ => None,
                    };
                    current = Some((machine, String::new(), String::new()));
                }
                "login" | "password" | "account" => {
                    let value = words.next().unwrap_or_default().to_string();
                    if let Some(entry) = current.as_mut() {
                        match word {
                            "login" => entry.1 = value,
                            "password" => entry.2 = value,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        entries.extend(current);
        Ok(Netrc(entries))
    }

    /// `Basic …` for `authority` (`host[:port]`): the entry of its host, else the default one, as the go
    /// command picks it.
    fn basic(&self, authority: &str) -> Option<String> {
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(host, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    host
                } else {
                    authority
                }
            });
        let entry = self
            .0
            .iter()
            .find(|(machine, ..)| {
                machine.as_deref() == Some(host) || machine.as_deref() == Some(authority)
            })
            .or_else(|| self.0.iter().find(|(machine, ..)| machine.is_none()))?;
        let pair = format!("{}:{}", entry.1, entry.2);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_netrc_entry_is_picked_by_host_else_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        std::fs::write(
            &path,
            "machine corp.example login ci password s3cret\ndefault login anon password x\n",
        )
        .unwrap();
        let netrc = Netrc::read(&path).unwrap();
        let corp = netrc.basic("corp.example:8443").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(corp.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"ci:s3cret");
        assert_ne!(netrc.basic("other.example"), Some(corp));
        std::fs::write(&path, "machine corp.example login ci password s3cret\n").unwrap();
        assert_eq!(Netrc::read(&path).unwrap().basic("other.example"), None);
    }
}
