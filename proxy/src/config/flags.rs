//! The command-line flags, made from the settings table: every row with a flag is one `--NAME VALUE`
//! option of `ferry`, `ferry serve` and `ferry config`, its help line and `[env: ...] [default: ...]`
//! taken from the row, so that no flag is spelled outside the table.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};

use super::settings::{self, SETTINGS, Setting};

/// Values given on the command line (each overrides the environment and the file).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    /// `--config`: read before everything else, as it names the file the rest may come from.
    pub config: Option<PathBuf>,
    /// Every other flag given, by its name (`--listen`).
    pub given: BTreeMap<&'static str, String>,
}

impl Flags {
    /// The value given for `flag` (`--listen`).
    pub(crate) fn value(&self, flag: &str) -> Option<String> {
        match flag {
            _ if flag == long(&settings::CONFIG) => {
                self.config.as_ref().map(|p| p.display().to_string())
            }
            _ => self.given.get(flag).cloned(),
        }
    }
}

/// A row's flag name (`--listen`), from its documented form (`--listen IP:PORT`).
pub fn long(row: &Setting) -> &'static str {
    row.flag
        .and_then(|flag| flag.split(' ').next())
        .unwrap_or_default()
}

impl FromArgMatches for Flags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Flags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for row in SETTINGS.iter().filter(|row| row.flag.is_some()) {
            let Some(value) = matches.get_one::<String>(long(row)) else {
                continue;
            };
            if long(row) == long(&settings::CONFIG) {
                self.config = Some(PathBuf::from(value));
            } else {
                self.given.insert(long(row), value.clone());
            }
        }
        Ok(())
    }
}

impl Args for Flags {
    fn augment_args(command: Command) -> Command {
        SETTINGS
            .iter()
            .filter(|row| row.flag.is_some())
            .fold(command, |command, row| {
                let flag = long(row);
                let value_name = row
                    .flag
                    .and_then(|f| f.split(' ').nth(1))
                    .unwrap_or("VALUE");
                let mut help = format!("{} [env: {}]", row.help, row.env);
                if row.default != "none" {
                    help.push_str(&format!(" [default: {}]", row.default.replace('`', "")));
                }
                command.arg(
                    Arg::new(flag)
                        .long(flag.trim_start_matches("--"))
                        .value_name(value_name)
                        .help(help),
                )
            })
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}
