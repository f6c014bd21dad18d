//! Go's `module.CheckFilePath` (`golang.org/x/mod/module`): which file paths a module zip may hold, so that
//! it extracts the same on every platform and file system the go command runs on. Ported line by line from
//! `checkPath`/`checkElem` with `kind == filePath`; the messages are Go's.

use crate::unicode_tables::{FOLD, LETTERS};

/// A file path Go refuses in a module, worded as Go words it:
/// `malformed file path "../x": invalid path element ".."`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed file path {quoted}: {reason}")]
pub struct InvalidFilePath {
    /// The path as Go's `%q` prints it.
    quoted: String,
    reason: String,
}

impl InvalidFilePath {
    /// Why the path was refused (`invalid path element ".."`, `invalid char '\\'`, ...).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Checks a slash-separated path of a file inside a module (`module.CheckFilePath`): valid UTF-8, not
/// empty, no empty element (so no leading, trailing or double slash), no element of dots only (`.`,
/// `..`), none ending in a dot, only ASCII letters, digits and `!#$%&()+,-.=@[]^_{}~ ` or Unicode letters,
/// and no element that Windows reserves (`con`, `aux.go`, `COM1.txt`: the part before the first dot,
/// case ignored). Windows short names (`FOO~1`) are allowed in file paths, as Go allows them: it checks
/// them in import paths only.
pub fn check_file_path(path: &str) -> Result<(), InvalidFilePath> {
    check_file_path_bytes(path.as_bytes())
}

/// [`check_file_path`] over the raw bytes of a zip entry's name, which need not be UTF-8.
pub fn check_file_path_bytes(path: &[u8]) -> Result<(), InvalidFilePath> {
    check_path(path).map_err(|reason| InvalidFilePath {
        quoted: quote(path),
        reason,
    })
}

fn check_path(path: &[u8]) -> Result<(), String> {
    let Ok(path) = std::str::from_utf8(path) else {
        return Err("invalid UTF-8".into());
    };
    if path.is_empty() {
        return Err("empty string".into());
    }
    if path.contains("//") {
        return Err("double slash".into());
    }
    if path.ends_with('/') {
        return Err("trailing slash".into());
    }
    path.split('/').try_for_each(check_elem)
}

fn check_elem(elem: &str) -> Result<(), String> {
    if elem.is_empty() {
        return Err("empty path element".into());
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(format!("invalid path element {}", quote(elem.as_bytes())));
    }
    if elem.ends_with('.') {
        return Err("trailing dot in path element".into());
    }
    if let Some(c) = elem.chars().find(|&c| !file_name_ok(c)) {
        return Err(format!("invalid char {}", quote_rune(c)));
    }
    // Windows reserves these names whatever the extension. Go compares with `strings.EqualFold`; the
    // only non-ASCII runes that fold to ASCII are U+212A (k) and U+017F (s), letters none of these names
    // holds, so an ASCII comparison is the same.
    const BAD_WINDOWS_NAMES: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    let short = elem.split('.').next().unwrap_or_default();
    if BAD_WINDOWS_NAMES
        .iter()
        .any(|bad| bad.eq_ignore_ascii_case(short))
    {
        return Err(format!(
            "{} disallowed as path element component on Windows",
            quote(short.as_bytes())
        ));
    }
    Ok(())
}

/// Go's `fileNameOK`: ASCII letters and digits, the punctuation `!#$%&()+,-.=@[]^_{}~` and space, or any
/// Unicode letter (`unicode.IsLetter`, from Go's own tables). Shell specials (`"'*<>?`|`) and the path
/// separators `/ : \` are refused.
fn file_name_ok(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c);
    }
    is_letter(c)
}

/// Go's `unicode.IsLetter`.
pub(crate) fn is_letter(c: char) -> bool {
    let c = c as u32;
    LETTERS
        .binary_search_by(|&(low, high)| {
            if high < c {
                std::cmp::Ordering::Less
            } else if low > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `strToFold` of `golang.org/x/mod/zip`: two paths are equal under Unicode simple case folding
/// (`strings.EqualFold`) exactly when their folds are equal.
pub(crate) fn fold(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return std::borrow::Cow::Borrowed(s);
    }
    let folded = s
        .chars()
        .map(
            |c| match FOLD.binary_search_by_key(&(c as u32), |&(from, _)| from) {
                Ok(i) => char::from_u32(FOLD[i].1).unwrap_or(c),
                Err(_) => c,
            },
        )
        .collect();
    std::borrow::Cow::Owned(folded)
}

/// Go's `strconv.Quote` (what `%q` prints for a string), bytes that are not UTF-8 as `\xNN`.
pub(crate) fn quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_quoted(&mut out, c, '"');
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` (what `%q` prints for a rune).
fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_quoted(&mut out, c, '\'');
    out.push('\'');
    out
}

fn push_quoted(out: &mut String, c: char, quote: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_ascii() && (c == ' ' || c.is_ascii_graphic()) => out.push(c),
        c if c.is_ascii() => out.push_str(&format!("\\x{:02x}", c as u32)),
        // Go prints what `unicode.IsPrint` accepts as it is; Rust's `escape_debug` keeps the same runes but
        // for rare ones (combining marks at the start of a string, some format characters), which only a
        // message's wording depends on.
        c if c.escape_debug().len() == 1 => out.push(c),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}
