//! Go module paths and versions: case encoding, validation and ordering, as the `go` command defines them
//! (`golang.org/x/mod/module` and `golang.org/x/mod/semver`).
//!
//! Only values that passed these checks can name a storage key, which is what keeps every request inside
//! the store: a validated path has no empty, `.` or `..` element, no leading `-`, and only the characters
//! Go allows in module paths.
//!
//! The rules of the files inside a module zip are here too: [`check_file_path`] (Go's
//! `module.CheckFilePath`) and [`ZipRules`] (`CheckZip` of `golang.org/x/mod/zip`).

use std::cmp::Ordering;
use std::fmt;

mod file_path;
mod go_mod;
mod pattern;
mod requirements;
mod unicode_tables;
mod zip_rules;

pub use file_path::{InvalidFilePath, check_file_path, check_file_path_bytes};
pub use go_mod::{GoModNotes, Retract, read_go_mod};
pub use pattern::{
    AsciiSet, Elements, Pattern, PatternError, match_prefix_patterns, pattern_matches,
};
pub use requirements::{prunes_graph, requirements};
pub use zip_rules::{
    EntryRule, MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE, ZipEntry, ZipRuleError, ZipRules,
};

/// Why a module path, version or query was rejected; shown to the client in a 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?}: {reason}")]
pub struct InvalidInput {
    what: &'static str,
    value: String,
    reason: String,
}

impl InvalidInput {
    fn new(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        // Long hostile inputs are cut so that error messages and logs stay small.
        let value = match value.char_indices().nth(200) {
            Some((cut, _)) => format!("{}...", &value[..cut]),
            None => value.to_string(),
        };
        InvalidInput {
            what,
            value,
            reason: reason.into(),
        }
    }
}

/// A valid module path (Go's `module.CheckPath`), in its real, case-sensitive form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModulePath(String);

impl ModulePath {
    /// Checks a real (unescaped) module path.
    pub fn new(path: &str) -> Result<Self, InvalidInput> {
        check_module_path(path).map_err(|reason| InvalidInput::new("module path", path, reason))?;
        Ok(ModulePath(path.to_string()))
    }

    /// Decodes a case-encoded path as it appears in proxy URLs (`github.com/!azure/x`) and checks it.
    pub fn from_escaped(escaped: &str) -> Result<Self, InvalidInput> {
        let path = unescape(escaped)
            .map_err(|reason| InvalidInput::new("module path", escaped, reason))?;
        ModulePath::new(&path)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-encoded form used in URLs and storage keys.
    pub fn escaped(&self) -> String {
        escape(&self.0)
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A canonical semantic version as `.mod` and `.zip` requests carry it: `vMAJOR.MINOR.PATCH[-PRE]`, with
/// `+incompatible` as the only build suffix allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    pub fn new(version: &str) -> Result<Self, InvalidInput> {
        let parsed = parse_semver(version)
            .ok_or_else(|| InvalidInput::new("version", version, "not a semantic version"))?;
        if !parsed.canonical || !(parsed.build.is_empty() || parsed.build == "+incompatible") {
            return Err(InvalidInput::new(
                "version",
                version,
                "not canonical (want vMAJOR.MINOR.PATCH[-PRERELEASE][+incompatible])",
            ));
        }
        Ok(Version(version.to_string()))
    }

    pub fn from_escaped(escaped: &str) -> Result<Self, InvalidInput> {
        let version =
            unescape(escaped).map_err(|reason| InvalidInput::new("version", escaped, reason))?;
        Version::new(&version)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn escaped(&self) -> String {
        escape(&self.0)
    }

    /// A pseudo-version (`v0.0.0-20240102030405-abcdefabcdef` and its two other forms) names a commit,
    /// not a release: the `go` command leaves these out of `@v/list`.
    pub fn is_pseudo(&self) -> bool {
        is_pseudo_version(&self.0)
    }

    pub fn is_prerelease(&self) -> bool {
        parse_semver(&self.0).is_some_and(|v| !v.prerelease.is_empty())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ord for Version {
    /// Semantic version order; ties (which differ only in build metadata) fall back to the text.
    fn cmp(&self, other: &Self) -> Ordering {
        compare_semver(&self.0, &other.0).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What an `.info` request may ask for: a canonical version, or a query the upstream resolves (a branch,
/// a tag, a commit hash, `latest`). It must be a single, safe path element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionQuery {
    Canonical(Version),
    Query(String),
}

impl VersionQuery {
    pub fn from_escaped(escaped: &str) -> Result<Self, InvalidInput> {
        let query =
            unescape(escaped).map_err(|reason| InvalidInput::new("version", escaped, reason))?;
        if let Ok(version) = Version::new(&query) {
            return Ok(VersionQuery::Canonical(version));
        }
        check_query(&query).map_err(|reason| InvalidInput::new("version", &query, reason))?;
        Ok(VersionQuery::Query(query))
    }

    pub fn as_str(&self) -> &str {
        match self {
            VersionQuery::Canonical(version) => version.as_str(),
            VersionQuery::Query(query) => query,
        }
    }
}

/// Go's case encoding: every upper-case ASCII letter becomes `!` followed by its lower case.
pub fn escape(s: &str) -> String {
    let mut escaped = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            escaped.push('!');
            escaped.push(c.to_ascii_lowercase());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// The inverse of [`escape`], as strict as Go's `unescapeString`: no raw upper case, `!` only before a-z,
/// ASCII only.
pub fn unescape(escaped: &str) -> Result<String, String> {
    let mut out = String::with_capacity(escaped.len());
    let mut bang = false;
    for c in escaped.chars() {
        if !c.is_ascii() {
            return Err("non-ASCII character".into());
        }
        if bang {
            bang = false;
            if !c.is_ascii_lowercase() {
                return Err("'!' must be followed by a lower-case letter".into());
            }
            out.push(c.to_ascii_uppercase());
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return Err("upper-case letters must be escaped as '!' + lower case".into());
        } else {
            out.push(c);
        }
    }
    if bang {
        return Err("'!' at the end".into());
    }
    Ok(out)
}

fn check_module_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty string".into());
    }
    if path.starts_with('-') {
        return Err("leading dash".into());
    }
    if path.contains("//") {
        return Err("double slash".into());
    }
    if path.ends_with('/') {
        return Err("trailing slash".into());
    }
    if path.starts_with('/') {
        return Err("leading slash".into());
    }
    for element in path.split('/') {
        check_path_element(element)?;
    }
    let first = path.split('/').next().unwrap_or_default();
    if !first.contains('.') {
        return Err(format!("missing dot in first path element {first:?}"));
    }
    if let Some(c) = first
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '.'))
    {
        return Err(format!("invalid char {c:?} in first path element"));
    }
    if !has_valid_major_suffix(path) {
        return Err("invalid major version suffix".into());
    }
    Ok(())
}

fn check_path_element(element: &str) -> Result<(), String> {
    if element.is_empty() {
        return Err("empty path element".into());
    }
    if element.chars().all(|c| c == '.') {
        return Err(format!("invalid path element {element:?}"));
    }
    if element.starts_with('.') {
        return Err("leading dot in path element".into());
    }
    if element.ends_with('.') {
        return Err("trailing dot in path element".into());
    }
    if let Some(c) = element
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
    {
        return Err(format!("invalid char {c:?}"));
    }
    // Go refuses names Windows reserves, so that module zips extract everywhere.
    let short = element.split('.').next().unwrap_or_default();
    const WINDOWS_RESERVED: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    if WINDOWS_RESERVED
        .iter()
        .any(|bad| bad.eq_ignore_ascii_case(short))
    {
        return Err(format!(
            "{element:?} disallowed as path element component on Windows"
        ));
    }
    Ok(())
}

/// Go's `module.SplitPathVersion` validity: a trailing `/vN` must have N >= 2 without a leading zero, and
/// `gopkg.in/` paths must end in `.vN` (optionally `-unstable`).
fn has_valid_major_suffix(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("gopkg.in/") {
        let rest = rest.strip_suffix("-unstable").unwrap_or(rest);
        return match rest.rfind(".v") {
            Some(i) => {
                let digits = &rest[i + 2..];
                !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'))
            }
            None => false,
        };
    }
    let bytes = path.as_bytes();
    let mut i = bytes.len();
    let mut dot = false;
    while i > 0 && (bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.') {
        dot |= bytes[i - 1] == b'.';
        i -= 1;
    }
    if i <= 1 || i == bytes.len() || bytes[i - 1] != b'v' || bytes[i - 2] != b'/' {
        return true;
    }
    let major = &path[i - 2..];
    !(dot || major.len() <= 2 || major.as_bytes()[2] == b'0' || major == "/v1")
}

fn check_query(query: &str) -> Result<(), String> {
    if query.is_empty() {
        return Err("empty version".into());
    }
    if query.len() > 256 {
        return Err("version too long".into());
    }
    if query.starts_with(['.', '-']) || query.ends_with('.') {
        return Err("version must not start with '.' or '-' nor end with '.'".into());
    }
    if let Some(c) = query
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+' | '~')))
    {
        return Err(format!("invalid char {c:?} in version"));
    }
    Ok(())
}

struct Semver<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    prerelease: &'a str,
    build: &'a str,
    /// False for the shorthands `v1` and `v1.2`, which Go accepts but never serves.
    canonical: bool,
}

/// Go's `semver` parser: `v` then MAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]], numbers without leading zeros.
fn parse_semver(v: &str) -> Option<Semver<'_>> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = take_number(rest)?;
    if rest.is_empty() {
        return Some(Semver {
            major,
            minor: "0",
            patch: "0",
            prerelease: "",
            build: "",
            canonical: false,
        });
    }
    let (minor, rest) = take_number(rest.strip_prefix('.')?)?;
    if rest.is_empty() {
        return Some(Semver {
            major,
            minor,
            patch: "0",
            prerelease: "",
            build: "",
            canonical: false,
        });
    }
    let (patch, rest) = take_number(rest.strip_prefix('.')?)?;
    let (prerelease, build) = match rest.find('+') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !prerelease.is_empty() {
        let identifiers = prerelease.strip_prefix('-')?;
        if !identifiers.split('.').all(|id| valid_identifier(id, true)) {
            return None;
        }
    }
    if !build.is_empty() && !build[1..].split('.').all(|id| valid_identifier(id, false)) {
        return None;
    }
    Some(Semver {
        major,
        minor,
        patch,
        prerelease,
        build,
        canonical: true,
    })
}

fn take_number(s: &str) -> Option<(&str, &str)> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let number = &s[..end];
    if number.is_empty() || (number.len() > 1 && number.starts_with('0')) {
        return None;
    }
    Some((number, &s[end..]))
}

fn valid_identifier(id: &str, prerelease: bool) -> bool {
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !(prerelease
            && id.len() > 1
            && id.bytes().all(|b| b.is_ascii_digit())
            && id.starts_with('0'))
}

/// Go's `semver.Compare`: invalid versions sort before valid ones; build metadata is ignored.
pub fn compare_semver(a: &str, b: &str) -> Ordering {
    match (parse_semver(a), parse_semver(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => compare_numbers(a.major, b.major)
            .then_with(|| compare_numbers(a.minor, b.minor))
            .then_with(|| compare_numbers(a.patch, b.patch))
            .then_with(|| compare_prerelease(a.prerelease, b.prerelease)),
    }
}

fn compare_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut a_ids = a[1..].split('.');
    let mut b_ids = b[1..].split('.');
    loop {
        match (a_ids.next(), b_ids.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let x_num = x.bytes().all(|c| c.is_ascii_digit());
                let y_num = y.bytes().all(|c| c.is_ascii_digit());
                let order = match (x_num, y_num) {
                    (true, true) => compare_numbers(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// Go's `module.IsPseudoVersion`: the pre-release ends in `yyyymmddhhmmss-revision`, preceded by nothing
/// (for `vX.0.0-`) or by an identifier `0`.
fn is_pseudo_version(v: &str) -> bool {
    let Some(parsed) = parse_semver(v) else {
        return false;
    };
    let Some(pre) = parsed.prerelease.strip_prefix('-') else {
        return false;
    };
    let Some((left, revision)) = pre.rsplit_once('-') else {
        return false;
    };
    if revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    if left.len() < 14 || !left[left.len() - 14..].bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let base = &left[..left.len() - 14];
    if base.is_empty() {
        parsed.minor == "0" && parsed.patch == "0"
    } else {
        base == "0." || base.ends_with(".0.")
    }
}

/// The version `@latest` names among stored ones, by the `go` command's rule: the highest release, else the
/// highest pre-release, else the highest pseudo-version.
pub fn latest_of(versions: &[Version]) -> Option<&Version> {
    let releases = versions
        .iter()
        .filter(|v| !v.is_pseudo() && !v.is_prerelease())
        .max();
    let prereleases = || versions.iter().filter(|v| !v.is_pseudo()).max();
    releases
        .or_else(prereleases)
        .or_else(|| versions.iter().max())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Module paths and whether Go's `module.CheckPath` accepts them (taken from Go's own test table).
    const CHECK_PATH: &[(&str, bool)] = &[
        ("x.y/z", true),
        ("x.y", true),
        ("", false),
        ("x.y/\u{FFFD}z", false),
        ("/x.y/z", false),
        ("x./z", false),
        (".x/z", false),
        ("-x/z", false),
        ("x..y/z", true),
        ("x.y/z/../../w", false),
        ("x.y//z", false),
        ("x.y/z//w", false),
        ("x.y/z/", false),
        ("x.y/z/v0", false),
        ("x.y/z/v1", false),
        ("x.y/z/v2", true),
        ("x.y/z/v2.0", false),
        ("X.y/z", false),
        ("!x.y/z", false),
        ("_x.y/z", false),
        ("x.y!/z", false),
        ("x.y\"/z", false),
        ("x.y#/z", false),
        ("x.y%/z", false),
        ("x.y:/z", false),
        ("x.y@/z", false),
        ("x.y\\/z", false),
        ("x.y-/z", true),
        ("x.y/z-", true),
        ("x.y/z.t", true),
        ("x.y/z/t", true),
        ("x.y/z_", true),
        ("x.y/z~", true),
        ("x.y/Z", true),
        ("x.y/z+", false),
        ("x.y/z ", false),
        ("x.y/z\0", false),
        ("x.y/z\r\nx", false),
        ("x.y/x.foo", true),
        ("x.y/aux.foo", false),
        ("x.y/prn", false),
        ("x.y/com1", false),
        ("x.y/calm4", true),
        ("example.com/..", false),
        ("example.com/.", false),
        ("example.com/.hidden", false),
        ("localhost/x", false),
        ("gopkg.in/yaml.v2", true),
        ("gopkg.in/yaml.v2-unstable", true),
        ("gopkg.in/yaml", false),
        ("github.com/pkg/errors", true),
        ("github.com/Azure/azure-sdk-for-go", true),
    ];

    #[test]
    fn module_paths_are_checked_like_go() {
        for &(path, ok) in CHECK_PATH {
            assert_eq!(
                ModulePath::new(path).is_ok(),
                ok,
                "CheckPath({path:?}) should be ok={ok}"
            );
        }
    }

    #[test]
    fn case_encoding_round_trips_and_rejects_what_go_rejects() {
        let cases = [
            (
                "github.com/GoogleCloudPlatform/omega",
                "github.com/!google!cloud!platform/omega",
            ),
            ("github.com/Azure/x", "github.com/!azure/x"),
            ("example.com/a", "example.com/a"),
        ];
        for (real, escaped) in cases {
            assert_eq!(escape(real), escaped);
            assert_eq!(ModulePath::from_escaped(escaped).unwrap().as_str(), real);
            assert_eq!(ModulePath::new(real).unwrap().escaped(), escaped);
        }
        for bad in [
            "github.com/GoogleCloudPlatform/omega",     // raw upper case
            "github.com/!google!cloud!platform!/omega", // '!' before '/'
            "github.com/!0/x",
            "github.com/x!",
            "github.com/\u{e9}/x",
            "github.com/!!x/y",
        ] {
            assert!(
                ModulePath::from_escaped(bad).is_err(),
                "{bad:?} must be rejected"
            );
        }
        assert_eq!(
            Version::from_escaped("v1.0.0-!r!c1").unwrap().as_str(),
            "v1.0.0-RC1"
        );
        assert!(Version::from_escaped("v1.0.0-RC1").is_err());
    }

    #[test]
    fn versions_must_be_canonical() {
        for ok in [
            "v0.0.0",
            "v1.2.3",
            "v1.2.3-pre.1",
            "v2.0.0+incompatible",
            "v0.0.0-20240102030405-abcdefabcdef",
        ] {
            assert!(Version::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1.2.3",
            "v1",
            "v1.2",
            "v01.2.3",
            "v1.2.3-",
            "v1.2.3-01",
            "v1.2.3+build",
            "v1.2.3.4",
            "latest",
            "v1.2.3/..",
        ] {
            assert!(Version::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_are_single_safe_elements() {
        assert_eq!(
            VersionQuery::from_escaped("v1.0.0").unwrap(),
            VersionQuery::Canonical(Version::new("v1.0.0").unwrap())
        );
        for query in [
            "master",
            "latest",
            "abcdef123456",
            "v1.2",
            "release-1.0",
            "v1.0.0+meta",
        ] {
            assert_eq!(
                VersionQuery::from_escaped(query).unwrap(),
                VersionQuery::Query(query.to_string()),
                "{query}"
            );
        }
        for bad in [
            "",
            ".",
            "..",
            "-x",
            "a/b",
            "a\0b",
            "a b",
            "x%y",
            "a\nb",
            "v1.0.0.",
            &"x".repeat(300),
        ] {
            assert!(VersionQuery::from_escaped(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn semver_order_follows_go() {
        let mut versions: Vec<Version> = [
            "v1.10.0",
            "v1.2.0",
            "v1.2.0-rc.1",
            "v1.2.0-beta.2",
            "v1.2.0-beta.11",
            "v1.2.0-alpha",
            "v0.9.0",
            "v2.0.0+incompatible",
            "v1.2.0-rc.1.x",
            "v1.2.0-1",
        ]
        .iter()
        .map(|v| Version::new(v).unwrap())
        .collect();
        versions.sort();
        let sorted: Vec<&str> = versions.iter().map(Version::as_str).collect();
        assert_eq!(
            sorted,
            [
                "v0.9.0",
                "v1.2.0-1",
                "v1.2.0-alpha",
                "v1.2.0-beta.2",
                "v1.2.0-beta.11",
                "v1.2.0-rc.1",
                "v1.2.0-rc.1.x",
                "v1.2.0",
                "v1.10.0",
                "v2.0.0+incompatible",
            ]
        );
        assert_eq!(compare_semver("bad", "v0.0.1"), Ordering::Less);
    }

    #[test]
    fn pseudo_versions_are_recognised_in_all_three_forms() {
        for pseudo in [
            "v0.0.0-20240102030405-abcdefabcdef",
            "v1.2.4-0.20240102030405-abcdefabcdef",
            "v1.2.3-pre.0.20240102030405-abcdefabcdef",
            "v2.0.0-20240102030405-abcdefabcdef+incompatible",
        ] {
            assert!(Version::new(pseudo).unwrap().is_pseudo(), "{pseudo}");
        }
        for not_pseudo in [
            "v1.0.0",
            "v1.0.0-rc.1",
            "v1.2.3-20240102030405-abcdefabcdef",
            "v0.0.0-2024010203040-abc",
        ] {
            assert!(
                !Version::new(not_pseudo).unwrap().is_pseudo(),
                "{not_pseudo}"
            );
        }
    }

    #[test]
    fn latest_prefers_release_then_prerelease_then_pseudo() {
        let v = |list: &[&str]| {
            list.iter()
                .map(|s| Version::new(s).unwrap())
                .collect::<Vec<_>>()
        };
        let pick = |list: &[&str]| latest_of(&v(list)).map(|v| v.to_string());
        assert_eq!(
            pick(&[
                "v1.0.0",
                "v1.1.0-rc.1",
                "v0.0.0-20990101000000-abcdefabcdef"
            ])
            .as_deref(),
            Some("v1.0.0")
        );
        assert_eq!(
            pick(&[
                "v1.1.0-rc.1",
                "v1.0.0-rc.2",
                "v1.2.0-0.20990101000000-abcdefabcdef"
            ])
            .as_deref(),
            Some("v1.1.0-rc.1")
        );
        assert_eq!(
            pick(&[
                "v0.0.0-20240101000000-aaaaaaaaaaaa",
                "v0.0.0-20240202000000-bbbbbbbbbbbb"
            ])
            .as_deref(),
            Some("v0.0.0-20240202000000-bbbbbbbbbbbb")
        );
        assert_eq!(pick(&[]), None);
    }
}
