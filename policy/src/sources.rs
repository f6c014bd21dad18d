//! Where the policy comes from: `FERRY_DOWNLOAD_MODE`, else `ATHENS_DOWNLOAD_MODE`, else the
//! configuration file, else `sync`; each value a bare mode, `file:PATH` or `custom:BASE64`. A
//! bare mode redirects to `FERRY_DOWNLOAD_URL`, else `ATHENS_DOWNLOAD_URL`, else the configured URL.
//!
//! This crate never reads the process environment: the caller passes the values in.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use url::Url;

use crate::download_url::check_download_url;
use crate::error::{PolicyError, Problem, ProblemKind};
use crate::mode::{MODE_NAMES, Mode, suggest_mode};
use crate::parse::parse_policy;
use crate::policy::{Policy, Rule, RuleOrigin};

/// One download-mode value, as Athens spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySpec {
    /// A bare mode, for every module: `sync`.
    Mode(Mode),
    /// A download file to read: `file:/etc/ferry/download.hcl`.
    File(PathBuf),
    /// A download file's text in standard base64: `custom:ZG93bmxvYWRVUkwgPSAi...`.
    Custom(String),
}

const FILE_PREFIX: &str = "file:";
const CUSTOM_PREFIX: &str = "custom:";

impl PolicySpec {
    /// Parses a value; `origin` names it in messages (e.g. `FERRY_DOWNLOAD_MODE`). The value is
    /// taken exactly as given, as Athens takes it: `" sync "` is not a mode name.
    fn parse(value: &str, origin: &str) -> Result<PolicySpec, PolicyError> {
        if let Some(path) = value.strip_prefix(FILE_PREFIX) {
            return Ok(PolicySpec::File(PathBuf::from(path)));
        }
        if let Some(encoded) = value.strip_prefix(CUSTOM_PREFIX) {
            return Ok(PolicySpec::Custom(encoded.to_owned()));
        }
        value.parse::<Mode>().map(PolicySpec::Mode).map_err(|_| {
            let fix = match suggest_mode(value) {
                Some(mode) if value.trim() == mode.as_str() => format!(
                    "write {mode} without the surrounding spaces (mode names are matched exactly, as in Athens)"
                ),
                Some(mode) => format!("write {mode}"),
                None => format!(
                    "write one of {MODE_NAMES}, or {FILE_PREFIX}PATH for a download file, or {CUSTOM_PREFIX}BASE64 for its base64 text"
                ),
            };
            PolicyError::single(Problem::about_value(
                origin,
                ProblemKind::UnknownMode,
                format!("unknown download mode {value:?}"),
                fix,
            ))
        })
    }
}

impl FromStr for PolicySpec {
    type Err = PolicyError;

    /// Parses `sync` (any mode name), `file:PATH` or `custom:BASE64`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        PolicySpec::parse(value, "download mode")
    }
}

/// The values the policy can come from, as the caller found them. Each is named in messages.
/// An empty value counts as unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicySources<'a> {
    /// `FERRY_DOWNLOAD_MODE`: wins over everything.
    pub ferry_download_mode: Option<&'a str>,
    /// `ATHENS_DOWNLOAD_MODE`: used when `FERRY_DOWNLOAD_MODE` is unset, for Athens users.
    pub athens_download_mode: Option<&'a str>,
    /// The configuration file's download mode.
    pub config_download_mode: Option<&'a str>,
    /// `FERRY_DOWNLOAD_URL`: the redirect target of a bare mode, over the two below.
    pub ferry_download_url: Option<&'a str>,
    /// `ATHENS_DOWNLOAD_URL`: used when `FERRY_DOWNLOAD_URL` is unset, so that an Athens
    /// deployment's `ATHENS_DOWNLOAD_MODE=redirect` keeps its target.
    pub athens_download_url: Option<&'a str>,
    /// The configuration file's download URL.
    pub config_download_url: Option<&'a str>,
    /// The configuration file, only to name it in messages.
    pub config_file: Option<&'a Path>,
}

/// The variable names, as messages show them.
const FERRY_MODE: &str = "FERRY_DOWNLOAD_MODE";
const ATHENS_MODE: &str = "ATHENS_DOWNLOAD_MODE";
const FERRY_URL: &str = "FERRY_DOWNLOAD_URL";
const ATHENS_URL: &str = "ATHENS_DOWNLOAD_URL";

impl<'a> PolicySources<'a> {
    /// How the configuration file is named in messages.
    fn config_origin(&self, setting: &str) -> String {
        match self.config_file {
            Some(path) => format!("{setting} in {}", path.display()),
            None => format!("configured {setting}"),
        }
    }

    /// The first set (non-empty) value of `values`, with its name.
    fn first_set(values: [(String, Option<&'a str>); 3]) -> Option<(String, &'a str)> {
        values.into_iter().find_map(|(origin, value)| {
            value
                .filter(|value| !value.is_empty())
                .map(|value| (origin, value))
        })
    }

    /// The download mode value that decides: `FERRY_DOWNLOAD_MODE`, else `ATHENS_DOWNLOAD_MODE`,
    /// else the configuration's; with its name.
    fn chosen_mode(&self) -> Option<(String, &'a str)> {
        Self::first_set([
            (FERRY_MODE.to_owned(), self.ferry_download_mode),
            (ATHENS_MODE.to_owned(), self.athens_download_mode),
            (
                self.config_origin("download mode"),
                self.config_download_mode,
            ),
        ])
    }

    /// The redirect target of a bare mode: `FERRY_DOWNLOAD_URL`, else `ATHENS_DOWNLOAD_URL`,
    /// else the configuration's; checked like a file's `downloadURL`.
    fn chosen_url(&self) -> Result<Option<Url>, PolicyError> {
        let chosen = Self::first_set([
            (FERRY_URL.to_owned(), self.ferry_download_url),
            (ATHENS_URL.to_owned(), self.athens_download_url),
            (self.config_origin("download_url"), self.config_download_url),
        ]);
        let Some((origin, text)) = chosen else {
            return Ok(None);
        };
        check_download_url(text)
            .map(Some)
            .map_err(|(message, fix)| {
                PolicyError::single(Problem::about_value(
                    &origin,
                    ProblemKind::BadDownloadUrl,
                    message,
                    fix,
                ))
            })
    }
}

/// Loads the policy from the first set source (`FERRY_DOWNLOAD_MODE`, `ATHENS_DOWNLOAD_MODE`,
/// configuration; an empty value counts as unset), or `sync` for every module when none is set.
/// A bare mode's redirect target is the first set of `FERRY_DOWNLOAD_URL`,
/// `ATHENS_DOWNLOAD_URL` and the configuration's download URL. Reads the download file once if
/// the value is `file:PATH`; that is the only I/O.
///
/// Call it again (with the same sources) to reload: it never changes anything by itself.
pub fn load(sources: &PolicySources) -> Result<Policy, PolicyError> {
    let Some((origin, value)) = sources.chosen_mode() else {
        let download_url = sources.chosen_url()?;
        let rule = Rule::new(None, Mode::Sync, download_url, RuleOrigin::BuiltIn);
        return Ok(Policy::from_rules(Vec::new(), rule));
    };
    match PolicySpec::parse(value, &origin)? {
        PolicySpec::Mode(mode) => {
            let download_url = sources.chosen_url()?;
            if mode.redirects() && download_url.is_none() {
                return Err(PolicyError::single(Problem::about_value(
                    &origin,
                    ProblemKind::MissingDownloadUrl,
                    format!("mode {mode} redirects but no download URL is set"),
                    format!(
                        "set {FERRY_URL} or {ATHENS_URL} (or download_url in the configuration) to an absolute http(s) URL such as https://mirror.example/prefix"
                    ),
                )));
            }
            // The configuration file is named by its path for the log and the CLI only (see
            // `Rule::for_clients`).
            let rule_origin = match sources.config_file {
                Some(path) if origin == sources.config_origin("download mode") => {
                    RuleOrigin::ConfigFile(path.display().to_string())
                }
                _ => RuleOrigin::Source(origin),
            };
            let rule = Rule::new(None, mode, download_url, rule_origin);
            Ok(Policy::from_rules(Vec::new(), rule))
        }
        PolicySpec::File(path) => {
            let bytes = read(&path, &format!("{origin}={FILE_PREFIX}{}", path.display()))?;
            parse_policy(&bytes, &path.display().to_string())
        }
        PolicySpec::Custom(encoded) => {
            let custom_origin = format!("{origin} ({CUSTOM_PREFIX})");
            let bytes = decode_custom(&encoded, &custom_origin)?;
            parse_policy(&bytes, &custom_origin)
        }
    }
}

/// Loads a download file by path: for `ferry policy validate` and for reloading a `file:`
/// policy. Reads the file once.
pub fn load_file(path: &Path) -> Result<Policy, PolicyError> {
    let bytes = read(path, &path.display().to_string())?;
    parse_policy(&bytes, &path.display().to_string())
}

fn read(path: &Path, origin: &str) -> Result<Vec<u8>, PolicyError> {
    std::fs::read(path).map_err(|source| PolicyError::Unreadable {
        origin: origin.to_owned(),
        path: path.to_owned(),
        source,
    })
}

/// Decodes a `custom:` value. Whitespace is ignored, so a value wrapped by `base64` still works.
fn decode_custom(encoded: &str, origin: &str) -> Result<Vec<u8>, PolicyError> {
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|error| {
            PolicyError::single(Problem::about_value(
                origin,
                ProblemKind::BadBase64,
                format!("the value after {CUSTOM_PREFIX} is not standard base64 ({error})"),
                format!(
                    "write {CUSTOM_PREFIX} followed by the download file in standard base64 with padding, e.g. the output of `base64 -w0 download.hcl`"
                ),
            ))
        })
}
