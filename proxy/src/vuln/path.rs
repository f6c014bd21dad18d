//! The paths of the vulnerability database under `/vuln/`, as `govulncheck -db URL` asks for them:
//! `index/db.json`, `index/modules.json`, `index/vulns.json` and `ID/<id>.json`, each also `.json.gz`.

use crate::refusal::Refusal;

/// One of the three indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Index {
    Db,
    Modules,
    Vulns,
}

impl Index {
    pub const ALL: [Index; 3] = [Index::Db, Index::Modules, Index::Vulns];

    /// Its name in `index/<name>.json`.
    pub fn name(self) -> &'static str {
        match self {
            Index::Db => "db",
            Index::Modules => "modules",
            Index::Vulns => "vulns",
        }
    }
}

/// A file of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VulnFile {
    Index(Index),
    /// `ID/<id>.json`: an OSV entry, its ID checked by [`check_id`].
    Entry(String),
}

/// What a request under `/vuln/` asks for: a file, plain or gzipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnPath {
    pub file: VulnFile,
    pub gz: bool,
}

impl VulnPath {
    /// Parses the path after `vuln/`; anything but a file of the database is a 404 naming what is served.
    pub fn parse(rest: &str) -> Result<VulnPath, Refusal> {
        let (name, gz) = match rest.strip_suffix(".json.gz") {
            Some(name) => (name, true),
            None => match rest.strip_suffix(".json") {
                Some(name) => (name, false),
                None => return Err(not_a_file(rest)),
            },
        };
        let file = match name {
            "index/db" => VulnFile::Index(Index::Db),
            "index/modules" => VulnFile::Index(Index::Modules),
            "index/vulns" => VulnFile::Index(Index::Vulns),
            _ => match name.strip_prefix("ID/") {
                Some(id) if check_id(id).is_ok() => VulnFile::Entry(id.to_string()),
                _ => return Err(not_a_file(rest)),
            },
        };
        Ok(VulnPath { file, gz })
    }

    /// The path as the database names it (`index/db.json`, `ID/GO-2024-0001.json.gz`).
    pub fn display(&self) -> String {
        let name = match &self.file {
            VulnFile::Index(index) => format!("index/{}", index.name()),
            VulnFile::Entry(id) => format!("ID/{id}"),
        };
        format!("{name}.json{}", if self.gz { ".gz" } else { "" })
    }
}

fn not_a_file(rest: &str) -> Refusal {
    Refusal::NotFound(format!(
        "vuln/{rest} is no file of the vulnerability database (index/db.json, index/modules.json, index/vulns.json, ID/<id>.json, each also .json.gz)"
    ))
}

/// An advisory ID as the database writes them (`GO-2024-1234`): letters, digits, `-`, `_` and `.`, not
/// starting with a dot, at most 128 bytes. What a source or a zip names otherwise is refused.
pub fn check_id(id: &str) -> Result<(), String> {
    let fine = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not an advisory ID (letters, digits, -, _ and ., e.g. GO-2024-1234)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_govulncheck_asks_for_parse_and_nothing_else() {
        let path = |gz, file| VulnPath { file, gz };
        assert_eq!(
            VulnPath::parse("index/db.json"),
            Ok(path(false, VulnFile::Index(Index::Db)))
        );
        assert_eq!(
            VulnPath::parse("index/modules.json.gz"),
            Ok(path(true, VulnFile::Index(Index::Modules)))
        );
        assert_eq!(
            VulnPath::parse("ID/GO-2024-0001.json"),
            Ok(path(false, VulnFile::Entry("GO-2024-0001".into())))
        );
        for bad in [
            "",
            "index/db",
            "index/other.json",
            "ID/.x.json",
            "ID/a/b.json",
            "ID/.json",
            "ID/a b.json",
        ] {
            assert!(
                matches!(VulnPath::parse(bad), Err(Refusal::NotFound(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            VulnPath::parse("ID/GO-1.json.gz").unwrap().display(),
            "ID/GO-1.json.gz"
        );
    }
}
