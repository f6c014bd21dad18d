//! What an offline copy of a checksum database needs (Ferry's air-gap bundles): a lookup answer split into
//! its record and its signed tree note, and the size of the tree a note signs. A lookup answer's note is not
//! signed together with its record (the database embeds whichever tree it signed last), so a bundle may
//! give every record one note, the newest, and prove every record against that one tree.

use crate::VerifierKey;
use crate::tlog;

/// The go command's built-in key for `sum.golang.org` (`cmd/go/internal/modfetch/key.go`).
pub const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// A lookup answer split: `record` (`<id>\n<lines>\n\n`, as the database wrote it) and its signed `note`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupParts<'a> {
    pub id: i64,
    pub record: &'a [u8],
    pub note: &'a [u8],
}

/// Splits a lookup answer (Go's `tlog.ParseRecord`); the record text is checked for shape only.
pub fn split_lookup(answer: &[u8]) -> Result<LookupParts<'_>, String> {
    let (id, _, note) = tlog::parse_record(answer)?;
    let record = &answer[..answer.len() - note.len()];
    Ok(LookupParts { id, record, note })
}

/// The number of records in the tree `note` signs, once its signature by `key` is checked.
pub fn signed_tree_size(key: &VerifierKey, note: &[u8]) -> Result<i64, String> {
    crate::check_signed_answer(key, note, false)?;
    let text = key
        .open(note)
        .map_err(|_| "the tree note does not verify".to_string())?;
    tlog::parse_tree(text).map(|tree| tree.n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_splits_into_its_record_and_its_note() {
        let answer =
            b"7\nexample.com/a v1.0.0 h1:x=\n\ngo.sum database tree\n8\nAAAA\n\n\xe2\x80\x94 k x\n";
        let parts = split_lookup(answer).unwrap();
        assert_eq!(parts.id, 7);
        assert_eq!(parts.record, b"7\nexample.com/a v1.0.0 h1:x=\n\n");
        assert!(parts.note.starts_with(b"go.sum database tree\n8\n"));
        assert_eq!([parts.record, parts.note].concat(), answer);
        assert!(split_lookup(b"junk").is_err());
    }

    #[test]
    fn the_built_in_key_parses() {
        assert_eq!(
            VerifierKey::parse(SUM_GOLANG_ORG_KEY).unwrap().name(),
            "sum.golang.org"
        );
    }
}
