//! A whole vulnerability database in hand (from a sync or a zip), checked complete before it is published:
//! `db.json` names its `modified`, both indexes parse, and every ID either index lists has its entry.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::Deserialize;

use super::path::{Index, check_id};

/// An OSV entry of a database to publish.
#[derive(Debug, Clone)]
pub enum Body {
    /// Read now (from the source or a zip): to be stored.
    New(Bytes),
    /// The same as in the published copy (its `modified` unchanged): the stored file, by its hash.
    Kept(String),
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// As `index/vulns.json` writes it; compared only for equality, never with a clock.
    pub modified: String,
    pub body: Body,
}

/// A database to publish: the three indexes as read, and every entry.
#[derive(Debug, Clone)]
pub struct Database {
    /// `db.json`'s `modified`.
    pub modified: String,
    pub indexes: BTreeMap<Index, Bytes>,
    pub entries: BTreeMap<String, Entry>,
}

/// What the indexes list.
#[derive(Debug)]
pub struct Listed {
    /// `db.json`'s `modified`.
    pub modified: String,
    /// Each ID of `vulns.json` with its `modified`.
    pub vulns: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct DbJson {
    modified: String,
}

#[derive(Deserialize)]
struct VulnJson {
    id: String,
    modified: String,
}

#[derive(Deserialize)]
struct ModuleJson {
    #[serde(default)]
    vulns: Vec<ModuleVuln>,
}

#[derive(Deserialize)]
struct ModuleVuln {
    id: String,
}

#[derive(Deserialize)]
struct OsvId {
    id: String,
}

/// `db.json`'s `modified`.
pub fn db_modified(db: &[u8]) -> Result<String, String> {
    serde_json::from_slice::<DbJson>(db)
        .map(|db| db.modified)
        .map_err(|e| format!("index/db.json is not the database's db.json ({e})"))
}

/// Reads the three indexes: what they list, each ID checked.
pub fn list(db: &[u8], modules: &[u8], vulns: &[u8]) -> Result<Listed, String> {
    let modified = db_modified(db)?;
    let vulns: Vec<VulnJson> = serde_json::from_slice(vulns)
        .map_err(|e| format!("index/vulns.json is not a list of advisories ({e})"))?;
    let modules: Vec<ModuleJson> = serde_json::from_slice(modules)
        .map_err(|e| format!("index/modules.json is not a list of modules ({e})"))?;
    let module_ids: BTreeSet<String> = modules
        .into_iter()
        .flat_map(|m| m.vulns.into_iter().map(|v| v.id))
        .collect();
    let vulns: BTreeMap<String, String> = vulns.into_iter().map(|v| (v.id, v.modified)).collect();
    for id in vulns.keys().chain(&module_ids) {
        check_id(id).map_err(|e| format!("the indexes list {e}"))?;
    }
    if let Some(id) = module_ids.iter().find(|id| !vulns.contains_key(*id)) {
        return Err(format!(
            "index/modules.json names {id}, which index/vulns.json does not list"
        ));
    }
    Ok(Listed { modified, vulns })
}

/// Checks that `body` is the OSV entry of `id`.
pub fn check_entry(id: &str, body: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<OsvId>(body) {
        Ok(osv) if osv.id == id => Ok(()),
        Ok(osv) => Err(format!("ID/{id}.json holds the entry of {}", osv.id)),
        Err(e) => Err(format!("ID/{id}.json is not an OSV entry ({e})")),
    }
}

/// The IDs `listed` names that `have` lacks, as a message naming the first few.
pub fn missing(listed: &Listed, have: impl Fn(&str) -> bool) -> Option<String> {
    let missing: Vec<&String> = listed.vulns.keys().filter(|id| !have(id)).collect();
    if missing.is_empty() {
        return None;
    }
    let shown: Vec<String> = missing
        .iter()
        .take(5)
        .map(|id| format!("ID/{id}.json"))
        .collect();
    let more = missing.len().saturating_sub(shown.len());
    Some(format!(
        "{} listed entries are missing: {}{}",
        missing.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_indexes_must_agree_and_name_valid_ids() {
        let db = br#"{"modified":"2026-01-01T00:00:00Z"}"#;
        let vulns = br#"[{"id":"GO-1","modified":"2026-01-01T00:00:00Z"}]"#;
        let modules = br#"[{"path":"example.com/a","vulns":[{"id":"GO-1"}]}]"#;
        let listed = list(db, modules, vulns).unwrap();
        assert_eq!(listed.modified, "2026-01-01T00:00:00Z");
        assert_eq!(missing(&listed, |_| true), None);
        assert_eq!(
            missing(&listed, |_| false).unwrap(),
            "1 listed entries are missing: ID/GO-1.json"
        );
        let other = br#"[{"path":"example.com/a","vulns":[{"id":"GO-2"}]}]"#;
        assert!(list(db, other, vulns).unwrap_err().contains("GO-2"));
        let bad = br#"[{"id":"../x","modified":"t"}]"#;
        assert!(
            list(db, b"[]", bad)
                .unwrap_err()
                .contains("not an advisory ID")
        );
        assert!(check_entry("GO-1", br#"{"id":"GO-1"}"#).is_ok());
        assert!(check_entry("GO-1", br#"{"id":"GO-2"}"#).is_err());
    }
}
