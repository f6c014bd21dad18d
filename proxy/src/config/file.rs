//! The TOML file, read against the settings table: a key no row names is refused where it was written,
//! and a value of the wrong type too; every value keeps its place for messages and `ferry config`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::settings::{Kind, SETTINGS, Setting};
use super::{ConfigError, Origin, TableEntry};

/// A value as the file wrote it.
#[derive(Debug, Clone)]
pub(crate) enum FileValue {
    /// A string, or a number or `true`/`false` as written (where the row takes one).
    Text(String),
    /// A list (only a [`Kind::List`] row takes one): each string, `None` for an item that is not one.
    List(Vec<Option<String>>),
    /// Something a [`Kind::List`] row does not take.
    Other,
}

/// One key's value and where it is in the file.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key_span: Range<usize>,
    pub span: Range<usize>,
    pub value: FileValue,
}

/// The configuration file as read.
pub(crate) struct ConfigFile {
    pub path: PathBuf,
    pub text: String,
    /// By dotted key (`fetcher.timeout`; `storage_options.KEY`, `s3.KEY`, `fetcher.go_env.NAME` for an
    /// open table's entries).
    pub entries: BTreeMap<String, Entry>,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut file = ConfigFile {
            path: path.to_path_buf(),
            text,
            entries: BTreeMap::new(),
        };
        let text = file.text.clone();
        let table = DeTable::parse(&text).map_err(|e| ConfigError::Syntax {
            origin: file.origin_at(e.span().map_or(0, |s| s.start)),
            message: e.message().to_string(),
        })?;
        file.walk("", table.get_ref())?;
        Ok(file)
    }

    pub fn origin_at(&self, offset: usize) -> Origin {
        origin_in(&self.path, &self.text, offset)
    }

    /// The entry of a row, if the file gives it.
    pub fn entry(&self, row: &Setting) -> Option<&Entry> {
        self.entries.get(row.key).filter(|_| !row.key.is_empty())
    }

    /// The entries of the open table `table` (`fetcher.go_env`) as (entry name, entry).
    pub fn table<'a>(&'a self, table: &'a str) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        self.entries.iter().filter_map(move |(key, entry)| {
            Some((key.strip_prefix(table)?.strip_prefix('.')?, entry))
        })
    }

    /// The entries of every open table, as written (values raw: whoever shows them redacts).
    pub fn table_entries(&self) -> Vec<TableEntry> {
        let open = SETTINGS.iter().filter_map(|row| match row.kind {
            Kind::Table { also } => Some(std::iter::once(row.key).chain(also.iter().copied())),
            _ => None,
        });
        let mut tables: Vec<&str> = open.flatten().collect();
        // `[storage_options]` and its older names first, as the backend applies them; then `go_env`.
        tables.sort_by_key(|t| t.starts_with("fetcher."));
        tables
            .into_iter()
            .flat_map(|table| {
                self.table(table).map(move |(name, entry)| TableEntry {
                    key: format!("{table}.{name}"),
                    value: match &entry.value {
                        FileValue::Text(text) => text.clone(),
                        _ => String::new(),
                    },
                    origin: self.origin_at(entry.span.start),
                })
            })
            .collect()
    }

    /// Records every key under `prefix` (`""` or `fetcher.`), refusing one no row names.
    fn walk(&mut self, prefix: &str, table: &DeTable<'_>) -> Result<(), ConfigError> {
        for (key, value) in table {
            let full = format!("{prefix}{}", key.get_ref());
            let row = SETTINGS.iter().find(|row| match row.kind {
                Kind::Table { also } => row.key == full || also.contains(&full.as_str()),
                _ => row.key == full && !full.is_empty(),
            });
            match (row, value.get_ref()) {
                (Some(row), DeValue::Table(entries)) if matches!(row.kind, Kind::Table { .. }) => {
                    for (name, entry) in entries {
                        let value = self.table_value(&full, name.get_ref(), entry)?;
                        self.record(format!("{full}.{}", name.get_ref()), name, entry, value);
                    }
                }
                (Some(row), _) if row.kind == Kind::Tables => self.tables(&full, key, value)?,
                (Some(row), _) => {
                    let parsed = self.value(row, value)?;
                    self.record(full, key, value, parsed);
                }
                (None, DeValue::Table(inner)) if is_table_prefix(&full) => {
                    self.walk(&format!("{full}."), inner)?;
                }
                (None, _) => {
                    return Err(ConfigError::Syntax {
                        origin: self.origin_at(key.span().start),
                        message: unknown(prefix, key.get_ref()),
                    });
                }
            }
        }
        Ok(())
    }

    /// An array of tables (`[[upstreams]]`, `[[access]]`, `[[oidc]]`): `KEY` itself (the number of tables), `KEY.N` for each table
    /// (where it starts) and `KEY.N.NAME` for each of its keys, a string or a list of strings.
    fn tables(
        &mut self,
        full: &str,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<(), ConfigError> {
        let example = match full {
            "upstreams" => "[[upstreams]] tables, each with name, modules and proxy".to_string(),
            "access" => "[[access]] tables, each with modules, read and admin".to_string(),
            "oidc" => "[[oidc]] tables, each with issuer and audience".to_string(),
            _ => format!("[[{full}]] tables"),
        };
        let DeValue::Array(items) = value.get_ref() else {
            return Err(ConfigError::Invalid {
                origin: self.origin_at(value.span().start),
                message: format!("{full}: write {example}"),
            });
        };
        self.record(
            full.to_string(),
            key,
            value,
            FileValue::Text(items.len().to_string()),
        );
        for (index, item) in items.iter().enumerate() {
            let DeValue::Table(entries) = item.get_ref() else {
                return Err(ConfigError::Invalid {
                    origin: self.origin_at(item.span().start),
                    message: format!(
                        "{full}: entry {} is not a table; write {example}",
                        index + 1
                    ),
                });
            };
            self.record(format!("{full}.{index}"), key, item, FileValue::Other);
            for (name, entry) in entries {
                let parsed = match entry.get_ref() {
                    DeValue::String(s) => FileValue::Text(s.to_string()),
                    DeValue::Array(list) => FileValue::List(
                        list.iter()
                            .map(|item| item.get_ref().as_str().map(str::to_string))
                            .collect(),
                    ),
                    _ => FileValue::Other,
                };
                self.record(
                    format!("{full}.{index}.{}", name.get_ref()),
                    name,
                    entry,
                    parsed,
                );
            }
        }
        Ok(())
    }

    fn record(
        &mut self,
        key: String,
        name: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
        parsed: FileValue,
    ) {
        self.entries.insert(
            key,
            Entry {
                key_span: name.span(),
                span: value.span(),
                value: parsed,
            },
        );
    }

    /// A row's value, checked against what the row takes.
    fn value(&self, row: &Setting, value: &Spanned<DeValue<'_>>) -> Result<FileValue, ConfigError> {
        let wrong = |expected: &str| ConfigError::Syntax {
            origin: self.origin_at(value.span().start),
            message: format!(
                "invalid type: {}, expected {expected}",
                kind_of(value.get_ref())
            ),
        };
        Ok(match (row.kind, value.get_ref()) {
            (Kind::Number, DeValue::Integer(n)) => match u32::from_str_radix(n.as_str(), n.radix())
            {
                Ok(n) => FileValue::Text(n.to_string()),
                Err(_) => return Err(wrong("a whole number from 0 to 4294967295")),
            },
            (Kind::Number, _) => return Err(wrong("a whole number")),
            (Kind::Switch, DeValue::Boolean(b)) => FileValue::Text(b.to_string()),
            (Kind::Switch, _) => return Err(wrong("true or false")),
            (Kind::Choice, DeValue::Boolean(b)) => FileValue::Text(b.to_string()),
            (Kind::List, DeValue::String(s)) => FileValue::Text(s.to_string()),
            (Kind::List, DeValue::Array(items)) => FileValue::List(
                items
                    .iter()
                    .map(|item| item.get_ref().as_str().map(str::to_string))
                    .collect(),
            ),
            (Kind::List, _) => FileValue::Other,
            (_, DeValue::String(s)) => FileValue::Text(s.to_string()),
            _ => return Err(wrong("a string")),
        })
    }

    /// An entry of an open table: a string (a `go_env` variable); a storage option may also be a whole
    /// number or `true`/`false`.
    fn table_value(
        &self,
        table: &str,
        name: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<FileValue, ConfigError> {
        let go_env = table.starts_with("fetcher.");
        match value.get_ref() {
            DeValue::String(s) => Ok(FileValue::Text(s.to_string())),
            DeValue::Boolean(b) if !go_env => Ok(FileValue::Text(b.to_string())),
            DeValue::Integer(n) if !go_env => Ok(FileValue::Text(
                i64::from_str_radix(n.as_str(), n.radix())
                    .map_or_else(|_| n.to_string(), |n| n.to_string()),
            )),
            other => Err(ConfigError::Invalid {
                origin: self.origin_at(value.span().start),
                message: if go_env {
                    format!(
                        "go_env {name}: invalid type: {}, expected a string",
                        kind_of(other)
                    )
                } else {
                    format!("storage option {name}: write a string, a whole number or true/false")
                },
            }),
        }
    }
}

/// Whether some row's key lies inside the table `prefix` (`fetcher`, `cache`).
fn is_table_prefix(prefix: &str) -> bool {
    SETTINGS.iter().any(|row| {
        row.key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// serde's words for an unknown key, with the keys its table (`prefix`: `""` or `fetcher.`) has.
fn unknown(prefix: &str, key: &str) -> String {
    let mut known: Vec<&str> = Vec::new();
    for row in SETTINGS {
        let also = match row.kind {
            Kind::Table { also } if prefix.is_empty() => also,
            _ => &[],
        };
        let keys = std::iter::once(row.key).chain(also.iter().copied());
        for name in keys.filter_map(|k| k.strip_prefix(prefix)) {
            let first = name.split('.').next().unwrap_or(name);
            if !first.is_empty() && !known.contains(&first) {
                known.push(first);
            }
        }
    }
    let known: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    format!(
        "unknown field `{key}`, expected one of {}",
        known.join(", ")
    )
}

/// How a value's type is named in a message.
fn kind_of(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "string",
        DeValue::Integer(_) => "integer",
        DeValue::Float(_) => "floating point",
        DeValue::Boolean(_) => "boolean",
        DeValue::Datetime(_) => "datetime",
        DeValue::Array(_) => "sequence",
        DeValue::Table(_) => "map",
    }
}

/// `FILE:LINE:COL` of a byte offset into the file's text.
pub(crate) fn origin_in(path: &Path, text: &str, offset: usize) -> Origin {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Origin::File {
        path: path.to_path_buf(),
        line,
        column,
    }
}
