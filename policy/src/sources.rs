//! Where the policy comes from: `FERRY_DOWNLOAD_MODE`, else `ATHENS_DOWNLOAD_MODE`, else the
//! configuration file, else `sync`; each value a bare mode, `file:PATH` or `custom:BASE64`.
//!
//! This crate never reads the process environment: the caller passes the values in.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use url::Url;

use crate::error::{Location, PolicyError, Problem, ProblemKind};
use crate::mode::{MODE_NAMES, Mode, suggest_mode};
use crate::parse::{check_download_url, parse_policy};
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
    /// Parses a value; `origin` names it in messages (e.g. `FERRY_DOWNLOAD_MODE`).
    fn parse(value: &str, origin: &str) -> Result<PolicySpec, PolicyError> {
        let value = value.trim();
        if let Some(path) = value.strip_prefix(FILE_PREFIX) {
            return Ok(PolicySpec::File(PathBuf::from(path)));
        }
        if let Some(encoded) = value.strip_prefix(CUSTOM_PREFIX) {
            return Ok(PolicySpec::Custom(encoded.to_owned()));
        }
        value.parse::<Mode>().map(PolicySpec::Mode).map_err(|_| {
            let fix = match suggest_mode(value) {
                Some(mode) => format!("write {mode}"),
                None => format!(
                    "write one of {MODE_NAMES}, or {FILE_PREFIX}PATH for a download file, or {CUSTOM_PREFIX}BASE64 for its base64 text"
                ),
            };
            PolicyError::single(Problem {
                location: Location {
                    origin: origin.to_owned(),
                    line_column: None,
                },
                kind: ProblemKind::UnknownMode,
                message: format!("unknown download mode {value:?}"),
                fix,
            })
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
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicySources<'a> {
    /// `FERRY_DOWNLOAD_MODE`: wins over everything.
    pub ferry_download_mode: Option<&'a str>,
    /// `ATHENS_DOWNLOAD_MODE`: used when `FERRY_DOWNLOAD_MODE` is unset, for Athens users.
    pub athens_download_mode: Option<&'a str>,
    /// The configuration file's download mode.
    pub config_download_mode: Option<&'a str>,
    /// `FERRY_DOWNLOAD_URL` or the configuration's download URL: the redirect target when the
    /// mode is a bare mode. A download file sets its own `downloadURL` and ignores this.
    pub download_url: Option<&'a str>,
    /// The configuration file, only to name it in messages.
    pub config_file: Option<&'a Path>,
}

/// Loads the policy from the first set source (`FERRY_DOWNLOAD_MODE`, `ATHENS_DOWNLOAD_MODE`,
/// configuration; an empty value counts as unset), or `sync` for every module when none is set.
/// Reads the download file once if the value is `file:PATH`; that is the only I/O.
///
/// Call it again (with the same sources) to reload: it never changes anything by itself.
pub fn load(sources: &PolicySources) -> Result<Policy, PolicyError> {
    let config_origin = match sources.config_file {
        Some(path) => format!("download mode in {}", path.display()),
        None => "configured download mode".to_owned(),
    };
    let chosen = [
        ("FERRY_DOWNLOAD_MODE", sources.ferry_download_mode),
        ("ATHENS_DOWNLOAD_MODE", sources.athens_download_mode),
        (config_origin.as_str(), sources.config_download_mode),
    ]
    .into_iter()
    .find_map(|(origin, value)| {
        value
            .filter(|value| !value.trim().is_empty())
            .map(|value| (origin, value))
    });
    let Some((origin, value)) = chosen else {
        let download_url = bare_download_url(sources.download_url)?;
        let rule = Rule::new(None, Mode::Sync, download_url, RuleOrigin::BuiltIn);
        return Ok(Policy::from_rules(Vec::new(), rule));
    };
    match PolicySpec::parse(value, origin)? {
        PolicySpec::Mode(mode) => {
            let download_url = bare_download_url(sources.download_url)?;
            if mode.redirects() && download_url.is_none() {
                return Err(PolicyError::single(Problem {
                    location: Location {
                        origin: origin.to_owned(),
                        line_column: None,
                    },
                    kind: ProblemKind::MissingDownloadUrl,
                    message: format!("mode {mode} redirects but no download URL is set"),
                    fix: "set FERRY_DOWNLOAD_URL (or the configuration's download URL) to an absolute http(s) URL such as https://mirror.example/prefix".to_owned(),
                }));
            }
            let rule = Rule::new(
                None,
                mode,
                download_url,
                RuleOrigin::Source(origin.to_owned()),
            );
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
            PolicyError::single(Problem {
                location: Location {
                    origin: origin.to_owned(),
                    line_column: None,
                },
                kind: ProblemKind::BadBase64,
                message: format!("the value after {CUSTOM_PREFIX} is not standard base64 ({error})"),
                fix: format!(
                    "write {CUSTOM_PREFIX} followed by the download file in standard base64 with padding, e.g. the output of `base64 -w0 download.hcl`"
                ),
            })
        })
}

fn bare_download_url(text: Option<&str>) -> Result<Option<Url>, PolicyError> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    check_download_url(text)
        .map(Some)
        .map_err(|(message, fix)| {
            PolicyError::single(Problem {
                location: Location {
                    origin: "download URL (FERRY_DOWNLOAD_URL or configuration)".to_owned(),
                    line_column: None,
                },
                kind: ProblemKind::BadDownloadUrl,
                message,
                fix,
            })
        })
}
