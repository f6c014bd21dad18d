//! Static bearer tokens (`token_file`): each a name, the SHA-256 digest of the token, when it was made and
//! the groups it belongs to. `ferry token create` makes a token (32 random bytes, so a plain digest is the
//! right store: nothing can be guessed from it, and it costs a microsecond where bcrypt would cost
//! milliseconds on every request), prints it once and appends its entry; `ferry token revoke` removes the
//! entry; SIGHUP puts the file in force.
//!
//! The file, one token a line (blank lines and `#` comments allowed):
//!
//! ```text
//! NAME sha256:HEX CREATED [GROUP,GROUP...]
//! ci-release sha256:9f86d0…0f00a08 2026-12-06T15:07:26Z release,ci
//! ```
//!
//! A presented token is looked up by the first bytes of its digest, then compared whole in constant time:
//! the lookup's timing can tell at most something about the digest, which says nothing about the token.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every token Ferry makes starts with: a secret scanner can tell it, and a person too.
pub const TOKEN_PREFIX: &str = "ferry_";

/// One token of the file.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub name: Arc<str>,
    digest: [u8; 32],
    /// When it was made, RFC 3339, as the file has it.
    pub created: String,
    pub groups: Arc<[Arc<str>]>,
}

/// The tokens of a token file, reloadable.
pub struct Tokens {
    path: PathBuf,
    table: ArcSwap<Table>,
}

#[derive(Default)]
struct Table {
    /// By the first 8 bytes of the digest.
    /// Shared, so that a request let in copies no entry.
    by_prefix: HashMap<u64, Vec<Arc<TokenEntry>>>,
    count: usize,
}

/// Why a token file cannot be used. Never holds a digest or a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error(
        "{path}: cannot read the token file: {source}; check token_file / FERRY_TOKEN_FILE (`ferry token create` makes it)",
        path = .path.display()
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}", path = .path.display())]
    Entry {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}", path = .path.display())]
    Edit { path: PathBuf, message: String },
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("path", &self.path)
            .field("tokens", &self.count())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Reads the token file at `path`; a malformed entry is refused with its place.
    pub fn load(path: &Path) -> Result<Tokens, TokenFileError> {
        let table = Table::from(read_entries(path)?);
        Ok(Tokens {
            path: path.to_path_buf(),
            table: ArcSwap::from_pointee(table),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn count(&self) -> usize {
        self.table.load().count
    }

    /// Reads the file again and puts it in force; on an error the tokens in force stay.
    pub fn reload(&self) -> Result<usize, TokenFileError> {
        let table = Table::from(read_entries(&self.path)?);
        let count = table.count;
        self.table.store(Arc::new(table));
        Ok(count)
    }

    /// The entry of the token `presented`, if the file in force lists it.
    pub fn find(&self, presented: &str) -> Option<Arc<TokenEntry>> {
        let digest = digest(presented);
        let table = self.table.load();
        let candidates = table.by_prefix.get(&prefix(&digest))?;
        candidates
            .iter()
            .find(|entry| bool::from(entry.digest.ct_eq(&digest)))
            .cloned()
    }
}

impl From<Vec<(usize, TokenEntry)>> for Table {
    fn from(entries: Vec<(usize, TokenEntry)>) -> Table {
        let mut table = Table::default();
        for (_, entry) in entries {
            table.count += 1;
            table
                .by_prefix
                .entry(prefix(&entry.digest))
                .or_default()
                .push(Arc::new(entry));
        }
        table
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn prefix(digest: &[u8; 32]) -> u64 {
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// A name or a group: what a rule can match and a log line can carry unquoted.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'/'))
}

/// Reads and checks every entry of a token file, with the line each is on.
fn read_entries(path: &Path) -> Result<Vec<(usize, TokenEntry)>, TokenFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entries: Vec<(usize, TokenEntry)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let located = |column: usize, message: String| TokenFileError::Entry {
            path: path.to_path_buf(),
            line: number,
            column,
            message,
        };
        let Some(entry) = parse_line(line).map_err(|(column, message)| located(column, message))?
        else {
            continue;
        };
        if let Some((first, _)) = entries.iter().find(|(_, e)| e.name == entry.name) {
            return Err(located(
                1,
                format!(
                    "token {:?} is listed again (first on line {first}); keep one entry, or `ferry token revoke {}`",
                    entry.name, entry.name
                ),
            ));
        }
        entries.push((number, entry));
    }
    Ok(entries)
}

/// One line: an entry, none for a blank line or a comment, or the column and what is wrong.
fn parse_line(line: &str) -> Result<Option<TokenEntry>, (usize, String)> {
    let line = line.trim_end_matches('\r');
    if line.trim().is_empty() || line.trim_start().starts_with('#') {
        return Ok(None);
    }
    // Each field with its column (1-based, in characters).
    let mut fields = Vec::new();
    let mut start = None;
    for (at, (byte, c)) in line.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some((at + 1, byte)),
            (true, Some((column, from))) => {
                fields.push((column, &line[from..byte]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some((column, from)) = start {
        fields.push((column, &line[from..]));
    }
    let shape = "an entry is NAME sha256:HEX CREATED [GROUP,GROUP...]; make entries with `ferry token create`";
    let [
        (name_at, name),
        (digest_at, hashed),
        (created_at, created),
        rest @ ..,
    ] = &fields[..]
    else {
        return Err((1, format!("this line is not a token entry: {shape}")));
    };
    if !valid_name(name) {
        return Err((
            *name_at,
            format!("the name {name:?} is not letters, digits and `-_.@/` (at most 128)"),
        ));
    }
    let digest = hashed
        .strip_prefix("sha256:")
        .and_then(parse_hex)
        .ok_or_else(|| (*digest_at, format!("token {name:?}: the second field is not sha256: and 64 hex digits (the token itself is never stored); {shape}")))?;
    if humantime::parse_rfc3339(created).is_err() {
        return Err((
            *created_at,
            format!("token {name:?}: {created:?} is not an RFC 3339 time (2026-12-06T15:07:26Z)"),
        ));
    }
    let groups = match rest {
        [] => Vec::new(),
        [(at, groups)] => {
            let groups: Vec<&str> = groups.split(',').collect();
            if let Some(bad) = groups.iter().find(|g| !valid_name(g)) {
                return Err((
                    *at,
                    format!("token {name:?}: the group {bad:?} is not letters, digits and `-_.@/`"),
                ));
            }
            groups
        }
        [_, (at, _), ..] => {
            return Err((
                *at,
                format!(
                    "token {name:?}: too many fields: {shape} (groups separated by commas, no spaces)"
                ),
            ));
        }
    };
    Ok(Some(TokenEntry {
        name: Arc::from(*name),
        digest,
        created: created.to_string(),
        groups: groups.into_iter().map(Arc::from).collect(),
    }))
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a token named `name` in `groups`, appends its entry to the file at `path` (made, mode 600, if
/// missing) and returns the token: the only time it exists outside its holder.
pub fn create(path: &Path, name: &str, groups: &[String]) -> Result<String, TokenFileError> {
    let edit = |message: String| TokenFileError::Edit {
        path: path.to_path_buf(),
        message,
    };
    if !valid_name(name) {
        return Err(edit(format!(
            "the name {name:?} is not letters, digits and `-_.@/` (at most 128)"
        )));
    }
    if let Some(bad) = groups.iter().find(|g| !valid_name(g)) {
        return Err(edit(format!(
            "the group {bad:?} is not letters, digits and `-_.@/`"
        )));
    }
    let existing = if path.exists() {
        read_entries(path)?
    } else {
        Vec::new()
    };
    if existing.iter().any(|(_, e)| &*e.name == name) {
        return Err(edit(format!(
            "a token named {name:?} exists; revoke it first (`ferry token revoke {name}`) or pick another name"
        )));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| edit(format!("no random bytes: {e}")))?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let mut line = format!("{name} sha256:{} {created}", to_hex(&digest(&token)));
    if !groups.is_empty() {
        line.push(' ');
        line.push_str(&groups.join(","));
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| edit(format!("cannot write the token file: {e}")))?;
    // A file whose last line has no newline gets one first.
    let ends_open = std::fs::read(path)
        .map(|bytes| bytes.last().is_some_and(|b| *b != b'\n'))
        .unwrap_or(false);
    let text = format!("{}{line}\n", if ends_open { "\n" } else { "" });
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| edit(format!("cannot write the token file: {e}")))?;
    Ok(token)
}

/// The entries of the file, in its order.
pub fn list(path: &Path) -> Result<Vec<TokenEntry>, TokenFileError> {
    Ok(read_entries(path)?.into_iter().map(|(_, e)| e).collect())
}

/// Removes the token named `name` from the file (written anew, then renamed over it); the server drops it
/// at its next SIGHUP.
pub fn revoke(path: &Path, name: &str) -> Result<(), TokenFileError> {
    let entries = read_entries(path)?;
    let Some((line, _)) = entries.iter().find(|(_, e)| &*e.name == name) else {
        return Err(TokenFileError::Edit {
            path: path.to_path_buf(),
            message: format!("no token is named {name:?} (`ferry token ls` lists them)"),
        });
    };
    let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(index, _)| index + 1 != *line)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let edit = |e: std::io::Error| TokenFileError::Edit {
        path: path.to_path_buf(),
        message: format!("cannot write the token file: {e}"),
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let mut temporary =
        tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new("."))).map_err(edit)?;
    temporary.write_all(kept.as_bytes()).map_err(edit)?;
    temporary.as_file().sync_all().map_err(edit)?;
    let mode = std::fs::metadata(path).map_err(edit)?.permissions();
    std::fs::set_permissions(temporary.path(), mode).map_err(edit)?;
    temporary.persist(path).map_err(|e| edit(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_token_is_found_by_its_value_and_revoked_it_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let token = create(&path, "ci", &["release".into(), "ci".into()]).unwrap();
        let other = create(&path, "nightly", &[]).unwrap();
        assert!(
            token.starts_with(TOKEN_PREFIX) && token.len() == 49,
            "{token}"
        );
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&token));
        assert!(create(&path, "ci", &[]).is_err());
        let tokens = Tokens::load(&path).unwrap();
        let found = tokens.find(&token).unwrap();
        assert_eq!(&*found.name, "ci");
        assert_eq!(found.groups.len(), 2);
        assert!(tokens.find("ferry_nope").is_none());
        revoke(&path, "ci").unwrap();
        assert_eq!(tokens.reload().unwrap(), 1);
        assert!(tokens.find(&token).is_none());
        assert_eq!(&*tokens.find(&other).unwrap().name, "nightly");
    }

    #[test]
    fn a_malformed_entry_is_refused_with_its_line_and_column_and_never_echoes_a_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let hex = "ab".repeat(32);
        for (line, column, words) in [
            ("ci".to_string(), 1, "not a token entry"),
            (
                format!("c i sha256:{hex} 2026-12-06T15:07:26Z"),
                3,
                "not sha256:",
            ),
            (
                format!("ci md5:{hex} 2026-12-06T15:07:26Z"),
                4,
                "not sha256:",
            ),
            (format!("ci sha256:{hex} yesterday"), 76, "RFC 3339"),
            (
                format!("ci sha256:{hex} 2026-12-06T15:07:26Z a,b c"),
                101,
                "too many",
            ),
            (
                format!("ci  sha256:{hex} 2026-12-06T15:07:26Z a,,b"),
                98,
                "group",
            ),
        ] {
            std::fs::write(&path, format!("# tokens\n{line}\n")).unwrap();
            let message = Tokens::load(&path).err().unwrap().to_string();
            assert!(
                message.starts_with(&format!("{}:2:{column}: ", path.display())),
                "{message}"
            );
            assert!(message.contains(words), "{message}");
        }
        std::fs::write(&path, format!("ci sha256:{hex} 2026-12-06T15:07:26Z\n")).unwrap();
        let message = Tokens::load(&path).err();
        assert!(message.is_none());
    }
}
