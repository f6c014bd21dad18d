//! `ferry config`: every setting with its effective value and where it came from, secrets redacted.
//!
//! One line per row of [`SETTINGS`]: the value read back from the loaded [`Config`] by the row's `show`
//! (so it is what `ferry serve` would use), the source from [`Config::given`]. A secret never reaches the report: URLs lose their `user:password@`,
//! storage options whose key names a credential show `<redacted>`, files (the htpasswd file, the TLS key)
//! are shown by path only.

use ferry_storage::StorageConfig;

use crate::config::settings::{Kind, SETTINGS, STORAGE_OPTIONS};
use crate::config::{Config, Origin};

/// One line of the report (in JSON, an object with these three fields in this order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    /// As written in the TOML file (`fetcher.timeout`); the variable for a setting the file cannot hold.
    pub key: String,
    pub value: String,
    /// `default`, `flag --listen`, `env FERRY_LISTEN` or `file PATH:LINE:COL`.
    pub source: String,
}

/// The report: one line per row of the settings table (per entry of an open table that has entries), in
/// the order of `docs/configuration.md`.
pub fn report(config: &Config) -> Vec<Line> {
    let mut lines = Vec::new();
    for row in SETTINGS {
        let entries = match row.kind {
            Kind::Table { also } => open_table_entries(config, row.key, also),
            _ => Vec::new(),
        };
        if !entries.is_empty() {
            lines.extend(entries);
            continue;
        }
        let (value, origin) = match (row.kind, config.given.get(row)) {
            // A go variable is shown as given (its loader is the go command).
            (Kind::GoVariable, Some((value, origin))) => (value.clone(), origin.clone()),
            (_, given) => (
                (row.show)(config),
                given.map_or(Origin::Default, |(_, origin)| origin.clone()),
            ),
        };
        lines.push(Line {
            key: row.name().to_string(),
            value: redact_credentials(&value),
            source: source(&origin),
        });
    }
    lines
}

/// The lines of an open table (`storage_options`, with the older `[s3]`/`[gcs]` and the store's
/// environment; `fetcher.go_env`), secrets redacted; empty when nothing was given.
fn open_table_entries(config: &Config, table: &str, also: &[&str]) -> Vec<Line> {
    let in_table = |key: &str| {
        let (name, _) = key.rsplit_once('.').unwrap_or_default();
        name == table || also.contains(&name)
    };
    let storage = table == STORAGE_OPTIONS.key;
    let mut lines: Vec<Line> = config
        .table_entries
        .iter()
        .filter(|entry| in_table(&entry.key))
        .map(|entry| {
            let name = entry.key.rsplit('.').next().unwrap_or_default();
            // A storage option by the store's own rule; a go_env name by the words of a credential (the
            // store's rule would hide GOPROXY, whose URL credentials are redacted anyway).
            let secret = match storage {
                true => ferry_storage::is_secret(name),
                false => ["SECRET", "TOKEN", "PASSWORD", "CREDENTIAL", "KEY"]
                    .iter()
                    .any(|word| name.to_ascii_uppercase().contains(word)),
            };
            let value = if secret {
                "<redacted>".to_string()
            } else {
                redact_credentials(&entry.value)
            };
            Line {
                key: entry.key.clone(),
                value,
                source: source(&entry.origin),
            }
        })
        .collect();
    if let (true, StorageConfig::Cloud(cloud)) = (storage, &config.storage) {
        lines.extend(cloud.settings_from_environment().into_iter().map(
            |(key, value, variable)| Line {
                key: format!("{table}.{key}"),
                value: redact_credentials(&value),
                source: format!("env {variable}"),
            },
        ));
    }
    lines
}

/// How a source is shown.
fn source(origin: &Origin) -> String {
    match origin {
        Origin::Default => "default".into(),
        Origin::File { .. } => format!("file {origin}"),
        Origin::Env(name) => format!("env {name}"),
        Origin::Flag(name) => format!("flag {name}"),
    }
}

/// `text` with the `user:password@` of every URL in it replaced by `***@` (also in lists such as
/// `GOPROXY=https://u:p@a,direct`).
pub fn redact_credentials(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        shown.push_str(head);
        let authority_end = tail
            .find(|c: char| "/?#,| ".contains(c))
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(credentials_end) => {
                shown.push_str("***");
                rest = &tail[credentials_end..];
            }
            None => rest = tail,
        }
    }
    shown.push_str(rest);
    shown
}

/// The report as aligned columns under a header: KEY, VALUE, SOURCE.
pub fn render_text(lines: &[Line]) -> String {
    let key_width = lines.iter().map(|l| l.key.len()).max().unwrap_or(0).max(3);
    let value_width = lines
        .iter()
        .map(|l| l.value.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut text = format!("{:key_width$}  {:value_width$}  SOURCE\n", "KEY", "VALUE");
    for line in lines {
        text.push_str(&format!(
            "{:key_width$}  {:value_width$}  {}\n",
            line.key, line.value, line.source
        ));
    }
    text
}

/// The report as a JSON array of `{"key", "value", "source"}` objects, in the text's order.
pub fn render_json(lines: &[Line]) -> String {
    let mut text = serde_json::to_string_pretty(lines).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_and_url_lists_are_replaced() {
        assert_eq!(
            redact_credentials("redis://user:hunter2@127.0.0.1:6379/1"),
            "redis://***@127.0.0.1:6379/1"
        );
        assert_eq!(
            redact_credentials("https://u:p@a.example/x,direct|https://b.example"),
            "https://***@a.example/x,direct|https://b.example"
        );
        assert_eq!(
            redact_credentials("plain text, no url"),
            "plain text, no url"
        );
        assert_eq!(
            redact_credentials("https://a.example/p@th"),
            "https://a.example/p@th"
        );
    }
}
