//! The rules of a module zip, as `CheckZip` of `golang.org/x/mod/zip` applies them (and `Unzip`, which the
//! go command runs on every zip it downloads, before it extracts one): ported from `checkZip` and its
//! `collisionChecker`, over a stream of (entry name, uncompressed size) so that a caller can check a zip
//! while it reads the zip's directory and stop at the first broken rule. The messages are Go's.

use std::collections::HashMap;

use crate::file_path::{InvalidFilePath, check_file_path_bytes, fold, quote};
use crate::{ModulePath, Version};

/// The largest module zip, and the largest total of its files' uncompressed sizes (`MaxZipFile`).
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// The largest `go.mod` in a module zip (`MaxGoMod`).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// The largest `LICENSE` at the root of a module zip (`MaxLICENSE`).
pub const MAX_LICENSE: u64 = 16 << 20;

/// A broken rule of a module zip, worded as Go's `CheckZip` words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipRuleError {
    /// `module.Check`: the version's major version is not the one the path's suffix (`/v2`, `.v3`) names.
    #[error("{module}@{version}: invalid version: should be {want}, not {got}")]
    MajorVersion {
        module: String,
        version: String,
        want: String,
        got: String,
    },
    #[error("module zip file is too large ({size} bytes; limit is {MAX_ZIP_FILE} bytes)")]
    ZipTooLarge { size: u64 },
    #[error(
        "total uncompressed size of module contents too large (max size is {MAX_ZIP_FILE} bytes)"
    )]
    ContentsTooLarge,
    /// One entry breaks a rule; `entry` is its whole name in the zip (Go's `FileError`).
    #[error("{entry}: {rule}")]
    Entry { entry: String, rule: EntryRule },
}

/// The rule a zip entry breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryRule {
    #[error("path does not have prefix {}", quote(.0.as_bytes()))]
    NoPrefix(String),
    #[error("file path is not clean")]
    NotClean,
    #[error(transparent)]
    Malformed(#[from] InvalidFilePath),
    #[error("case-insensitive file name collision: {} and {}", quote(.0.as_bytes()), quote(.1.as_bytes()))]
    CaseCollision(String, String),
    #[error("entry {} is both a file and a directory", quote(.0.as_bytes()))]
    FileAndDirectory(String),
    #[error("multiple entries for file {}", quote(.0.as_bytes()))]
    Duplicate(String),
    #[error("go.mod file not in module root directory")]
    GoModNotInRoot,
    #[error("go.mod files must have lowercase names")]
    GoModCase,
    #[error("go.mod file too large (max size is {MAX_GO_MOD} bytes)")]
    GoModTooLarge,
    #[error("LICENSE file too large (max size is {MAX_LICENSE} bytes)")]
    LicenseTooLarge,
}

/// What an entry that keeps the rules is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipEntry {
    /// A directory, or the bare prefix: it extracts to nothing.
    Directory,
    /// A file other than the root `go.mod`.
    File,
    /// The module's `go.mod` (at the root, named in lower case): the caller may compare it with the `.mod`.
    GoMod,
}

/// The checks of one module zip, fed its entries in the order of the zip's central directory.
///
/// Like Go's `checkZip`, an entry that breaks a rule leaves the checker as it was, so a caller may go on to
/// list every broken rule; the go command refuses a zip with any.
#[derive(Debug)]
pub struct ZipRules {
    prefix: String,
    /// Every file and directory seen, by its fold: its path and whether it is a directory.
    seen: HashMap<String, (String, bool)>,
    /// The uncompressed size of the files so far.
    size: u64,
    /// Whether the total size already went over (reported once, as Go keeps one size error).
    too_large: bool,
}

impl ZipRules {
    /// The rules for a zip of `module@version` (`module.Check`: the version agrees with the path's major
    /// version suffix; the path and version are already valid and canonical by their types).
    pub fn new(module: &ModulePath, version: &Version) -> Result<ZipRules, ZipRuleError> {
        check_path_major(version.as_str(), path_major(module.as_str())).map_err(
            |(want, got)| ZipRuleError::MajorVersion {
                module: module.to_string(),
                version: version.to_string(),
                want,
                got,
            },
        )?;
        Ok(ZipRules {
            prefix: format!("{module}@{version}/"),
            seen: HashMap::new(),
            size: 0,
            too_large: false,
        })
    }

    /// The size of the zip file itself, checked before it is opened.
    pub fn check_zip_size(size: u64) -> Result<(), ZipRuleError> {
        if size > MAX_ZIP_FILE {
            return Err(ZipRuleError::ZipTooLarge { size });
        }
        Ok(())
    }

    /// Checks the next entry: its raw name as stored in the zip (Go takes the bytes, without the code page
    /// decoding some zip readers apply) and its declared uncompressed size.
    pub fn check_entry(&mut self, name: &[u8], size: u64) -> Result<ZipEntry, ZipRuleError> {
        let shown = String::from_utf8_lossy(name);
        let fail = |rule: EntryRule| ZipRuleError::Entry {
            entry: shown.to_string(),
            rule,
        };
        let Some(inner) = name.strip_prefix(self.prefix.as_bytes()) else {
            return Err(fail(EntryRule::NoPrefix(self.prefix.clone())));
        };
        if inner.is_empty() {
            return Ok(ZipEntry::Directory);
        }
        let (inner, is_dir) = match inner.strip_suffix(b"/") {
            Some(dir) => (dir, true),
            None => (inner, false),
        };
        // Cleaning only looks at `/` and `.`, which a lossy decoding keeps, so a name that is not UTF-8 is
        // judged as Go judges its bytes; `check_file_path_bytes` then refuses it.
        let lossy = String::from_utf8_lossy(inner);
        if clean(&lossy) != lossy {
            return Err(fail(EntryRule::NotClean));
        }
        check_file_path_bytes(inner).map_err(|e| fail(e.into()))?;
        let inner = lossy.as_ref();
        self.check_collisions(inner, is_dir).map_err(fail)?;
        if is_dir {
            return Ok(ZipEntry::Directory);
        }
        // Go compares with `strings.EqualFold`; no non-ASCII rune folds to a letter of "go.mod".
        let base = inner.rsplit('/').next().unwrap_or(inner);
        let is_go_mod = base.eq_ignore_ascii_case("go.mod");
        if is_go_mod && base != inner {
            return Err(fail(EntryRule::GoModNotInRoot));
        }
        if is_go_mod && inner != "go.mod" {
            return Err(fail(EntryRule::GoModCase));
        }
        if MAX_ZIP_FILE - self.size >= size {
            self.size += size;
        } else if !self.too_large {
            self.too_large = true;
            return Err(ZipRuleError::ContentsTooLarge);
        }
        if inner == "go.mod" && size > MAX_GO_MOD {
            return Err(fail(EntryRule::GoModTooLarge));
        }
        if inner == "LICENSE" && size > MAX_LICENSE {
            return Err(fail(EntryRule::LicenseTooLarge));
        }
        Ok(if is_go_mod {
            ZipEntry::GoMod
        } else {
            ZipEntry::File
        })
    }

    /// Go's `collisionChecker.check`: the path and each of its parent directories, as directories, must not
    /// equal another under case folding, nor be both a file and a directory, nor a file twice.
    fn check_collisions(&mut self, path: &str, is_dir: bool) -> Result<(), EntryRule> {
        let (mut path, mut is_dir) = (path, is_dir);
        loop {
            match self.seen.get(fold(path).as_ref()) {
                Some((other, _)) if other != path => {
                    return Err(EntryRule::CaseCollision(other.clone(), path.to_string()));
                }
                Some((_, other_is_dir)) if *other_is_dir != is_dir => {
                    return Err(EntryRule::FileAndDirectory(path.to_string()));
                }
                Some(_) if !is_dir => return Err(EntryRule::Duplicate(path.to_string())),
                Some(_) => {}
                None => {
                    self.seen
                        .insert(fold(path).into_owned(), (path.to_string(), is_dir));
                }
            }
            match path.rfind('/') {
                Some(slash) => (path, is_dir) = (&path[..slash], true),
                None => return Ok(()),
            }
        }
    }
}

/// Go's `path.Clean`: the shortest path naming the same file, by lexical processing alone.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut kept: Vec<&str> = Vec::new();
    for elem in path.split('/') {
        match elem {
            "" | "." => {}
            ".." if kept.last().is_some_and(|last| *last != "..") => {
                kept.pop();
            }
            ".." if rooted => {}
            elem => kept.push(elem),
        }
    }
    let joined = kept.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `module.CheckPathMajor`: `Err((want, got))` when the version's major version is not the one of
/// the path's major suffix.
fn check_path_major(version: &str, path_major: &str) -> Result<(), (String, String)> {
    let mut path_major = path_major;
    if path_major.starts_with(".v") {
        path_major = path_major.strip_suffix("-unstable").unwrap_or(path_major);
    }
    // An old bug made v0.0.0 pseudo-versions for gopkg.in .v1 paths; go.mod files still require them.
    if version.starts_with("v0.0.0-") && path_major == ".v1" {
        return Ok(());
    }
    let digits = version[1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or_default();
    let major = format!("v{digits}");
    let want = match path_major {
        "" if major == "v0" || major == "v1" || version.ends_with("+incompatible") => return Ok(()),
        "" => "v0 or v1".to_string(),
        suffix if suffix[1..] == major => return Ok(()),
        suffix => suffix[1..].to_string(),
    };
    Err((want, major))
}

/// The major version suffix of a valid module path, as `module.SplitPathVersion` splits it: `/v2`,
/// `.v1` (gopkg.in, possibly `-unstable`), or empty.
fn path_major(path: &str) -> &str {
    if path.starts_with("gopkg.in/") {
        let end = path.strip_suffix("-unstable").map_or(path.len(), str::len);
        let digits = path[..end]
            .bytes()
            .rev()
            .take_while(u8::is_ascii_digit)
            .count();
        let start = end - digits;
        return match path[..start].strip_suffix(".v") {
            Some(_) if digits > 0 => &path[start - 2..],
            _ => "",
        };
    }
    let tail = path
        .bytes()
        .rev()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let start = path.len() - tail;
    match path[..start].strip_suffix("/v") {
        Some(_)
            if tail > 0
                && !path[start..].contains('.')
                && !path[start..].starts_with('0')
                && &path[start..] != "1" =>
        {
            &path[start - 2..]
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_is_go_path_clean() {
        // Go's path.Clean examples (path/path_test.go).
        for (path, want) in [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ] {
            assert_eq!(clean(path), want, "path.Clean({path:?})");
        }
    }

    #[test]
    fn path_major_is_go_split_path_version() {
        // Go's splitPathVersionTests (module/module_test.go), and suffixes it does not split off.
        for (prefix, major) in [
            ("x.y/z", ""),
            ("x.y/z", "/v2"),
            ("x.y/z", "/v3"),
            ("x.y/v", ""),
            ("gopkg.in/yaml", ".v0"),
            ("gopkg.in/yaml", ".v1"),
            ("gopkg.in/yaml", ".v2"),
            ("gopkg.in/yaml", ".v3"),
            ("gopkg.in/check", ".v1-unstable"),
            ("x.y/z/v1", ""),
            ("x.y/z/v0", ""),
            ("x.y/z/v02", ""),
            ("x.y/z/v2.0", ""),
        ] {
            assert_eq!(
                path_major(&format!("{prefix}{major}")),
                major,
                "{prefix}{major}"
            );
        }
    }

    #[test]
    fn check_path_major_is_go_match_path_major() {
        // Go's TestMatchPathMajor (module/module_test.go).
        for (version, path_major, want) in [
            ("v0.0.0", "", true),
            ("v0.0.0", "/v2", false),
            ("v0.0.0", ".v0", true),
            ("v0.0.0-20190510104115-cbcb75029529", ".v1", true),
            ("v1.0.0", "/v2", false),
            ("v1.0.0", ".v1", true),
            ("v1.0.0", ".v1-unstable", true),
            ("v2.0.0+incompatible", "", true),
            ("v2.0.0", "", false),
            ("v2.0.0", "/v2", true),
            ("v2.0.0", ".v2", true),
        ] {
            assert_eq!(
                check_path_major(version, path_major).is_ok(),
                want,
                "MatchPathMajor({version:?}, {path_major:?})"
            );
        }
        assert_eq!(
            check_path_major("v2.0.0", ""),
            Err(("v0 or v1".to_string(), "v2".to_string()))
        );
    }
}
