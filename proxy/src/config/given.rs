//! Every setting as given, read the one way the table implies: its flag, else its variables in order,
//! else its file key; with where it came from.

use std::collections::BTreeMap;
use std::time::Duration;

use super::env::Environment;
use super::file::{ConfigFile, FileValue};
use super::settings::{Kind, SETTINGS, Setting};
use super::{ConfigError, Flags, Origin};

/// The settings that were given, by name ([`Setting::name`]); one not here has its default.
#[derive(Debug, Clone, Default)]
pub struct Given {
    values: BTreeMap<&'static str, (String, Origin)>,
}

impl Given {
    pub(crate) fn gather(flags: &Flags, env: &dyn Environment, file: Option<&ConfigFile>) -> Given {
        let mut values = BTreeMap::new();
        for row in SETTINGS {
            let flag = super::flags::long(row);
            let from_flag = row
                .flag
                .and_then(|_| Some((flags.value(flag)?, Origin::Flag(flag))));
            let from_env = || {
                row.variables()
                    .find_map(|name| Some((env.var(name)?, Origin::Env(name))))
            };
            let from_file = || {
                let file = file?;
                let entry = match row.kind {
                    // `go_env` is the go command's last word over Ferry's environment.
                    Kind::GoVariable => {
                        file.entries
                            .get(&format!("{}.{}", super::settings::GO_ENV.key, row.env))?
                    }
                    _ => file.entry(row)?,
                };
                let text = match &entry.value {
                    FileValue::Text(text) => text.clone(),
                    // A list is shown as written; its loader reads the entries themselves.
                    _ => file.text.get(entry.span.clone())?.to_string(),
                };
                let blank = matches!(row.kind, Kind::Policy { .. }) && text.is_empty();
                (!blank).then(|| (text, file.origin_at(entry.span.start)))
            };
            let found = match row.kind {
                Kind::Table { .. } => None,
                Kind::Tables => from_file(),
                Kind::GoVariable => from_file().or_else(from_env),
                _ => from_flag.or_else(from_env).or_else(from_file),
            };
            values.extend(found.map(|found| (row.name(), found)));
        }
        Given { values }
    }

    /// The value given for `row`, with where it came from.
    pub fn get(&self, row: &Setting) -> Option<&(String, Origin)> {
        self.values.get(row.name())
    }

    pub fn text(&self, row: &Setting) -> Option<&str> {
        self.get(row).map(|(text, _)| text.as_str())
    }

    pub fn origin(&self, row: &Setting) -> Option<&Origin> {
        self.get(row).map(|(_, origin)| origin)
    }

    /// The value given, parsed by `parse`; its error message is reported where the value came from.
    pub fn parse<T>(
        &self,
        row: &Setting,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((text, origin)) = self.get(row) else {
            return Ok(None);
        };
        parse(text)
            .map(Some)
            .map_err(|message| ConfigError::Invalid {
                origin: origin.clone(),
                message,
            })
    }

    pub fn duration(&self, row: &Setting) -> Result<Option<Duration>, ConfigError> {
        self.parse(row, duration)
    }

    /// A positive whole number.
    pub fn count(&self, row: &Setting) -> Result<Option<usize>, ConfigError> {
        self.parse(row, |text| match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{text:?} is not a positive whole number; write e.g. 4"
            )),
        })
    }

    /// A number of bytes: `64MiB`, `512KiB`, `1GiB`, `10MB` or plain bytes.
    pub fn size(&self, row: &Setting) -> Result<Option<usize>, ConfigError> {
        self.parse(row, |text| {
            parse_size(text).ok_or_else(|| format!(
                "size {text:?} is not a number of bytes; write e.g. \"64MiB\", \"512KiB\" or \"0\" (nothing kept)"
            ))
        })
    }

    pub fn switch(&self, row: &Setting) -> Result<Option<bool>, ConfigError> {
        self.parse(row, |text| match text {
            "true" | "1" | "on" => Ok(true),
            "false" | "0" | "off" => Ok(false),
            _ => Err(format!("{text:?} is not on or off; write true or false")),
        })
    }
}

/// A duration as written in the configuration, or its message.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("duration {text:?}: {e}; write e.g. \"30s\", \"2m\" or \"1h 30m\""))
}

/// `64MiB`, `512KiB`, `1GiB`, `10MB` or a plain number of bytes.
pub(crate) fn parse_size(text: &str) -> Option<usize> {
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
