//! Reading the database's `vulndb.zip` bulk copy (for air-gapped networks): `index/db.json`, both indexes
//! and `ID/<id>.json` for every advisory, each checked; a zip that lacks any of them is refused, naming
//! what is missing, before anything is stored. `.json.gz` files and anything else in the zip are ignored
//! (Ferry makes its own gzip of each file).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use bytes::Bytes;

use super::VulnError;
use super::database::{self, Body, Database, Entry};
use super::path::{Index, check_id};

/// The largest file taken from a zip (the public `modules.json` is a few MB).
const FILE_LIMIT: u64 = 256 << 20;

/// The database's files found in a zip: the indexes, and the entries by ID.
type Files = (BTreeMap<Index, Bytes>, BTreeMap<String, Bytes>);

/// Reads and checks the zip at `file` (blocking: call it off the runtime).
pub fn read_zip(file: &Path) -> Result<Database, VulnError> {
    let invalid = |what: String| VulnError::Invalid(format!("{}: {what}", file.display()));
    let (indexes, mut bodies) = read_files(file).map_err(invalid)?;
    let missing: Vec<String> = Index::ALL
        .into_iter()
        .filter(|index| !indexes.contains_key(index))
        .map(|index| format!("index/{}.json", index.name()))
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "not a complete vulnerability database: {} missing; nothing was stored",
            missing.join(", ")
        )));
    }
    let listed = database::list(
        &indexes[&Index::Db],
        &indexes[&Index::Modules],
        &indexes[&Index::Vulns],
    )
    .map_err(|e| invalid(format!("{e}; nothing was stored")))?;
    if let Some(missing) = database::missing(&listed, |id| bodies.contains_key(id)) {
        return Err(invalid(format!(
            "not a complete vulnerability database: {missing}; nothing was stored"
        )));
    }
    let mut entries = BTreeMap::new();
    for (id, modified) in listed.vulns {
        let body = bodies.remove(&id).expect("checked above");
        database::check_entry(&id, &body)
            .map_err(|e| invalid(format!("{e}; nothing was stored")))?;
        let body = Body::New(body);
        entries.insert(id, Entry { modified, body });
    }
    Ok(Database {
        modified: listed.modified,
        indexes,
        entries,
    })
}

/// The indexes and entries in the zip at `file`, each at most [`FILE_LIMIT`] bytes.
fn read_files(file: &Path) -> Result<Files, String> {
    let opened = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let mut archive =
        zip::ZipArchive::new(opened).map_err(|e| format!("not a zip ({e}); nothing was stored"))?;
    // A zip of the database's directory holds its files under one more directory: that is taken off.
    let root = archive
        .file_names()
        .filter_map(Result::ok)
        .find_map(|name| name.strip_suffix("index/db.json").map(str::to_string))
        .filter(|root| {
            root.is_empty() || root.ends_with('/') && !root[..root.len() - 1].contains('/')
        })
        .unwrap_or_default();
    let (mut indexes, mut bodies) = (BTreeMap::new(), BTreeMap::new());
    for i in 0..archive.len() {
        let mut member = archive
            .by_index(i)
            .map_err(|e| format!("reading the zip: {e}"))?;
        let name = member
            .name()
            .map_err(|e| format!("reading the zip: {e}"))?
            .trim_start_matches("./")
            .strip_prefix(root.as_str())
            .unwrap_or_default()
            .to_string();
        let index = Index::ALL
            .into_iter()
            .find(|index| name == format!("index/{}.json", index.name()));
        let id = name
            .strip_prefix("ID/")
            .and_then(|rest| rest.strip_suffix(".json"))
            .filter(|id| check_id(id).is_ok())
            .map(str::to_string);
        if index.is_none() && id.is_none() {
            continue;
        }
        let mut body = Vec::new();
        (&mut member)
            .take(FILE_LIMIT + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("reading {name} from the zip: {e}"))?;
        if body.len() as u64 > FILE_LIMIT {
            return Err(format!("{name} is larger than {FILE_LIMIT} bytes"));
        }
        match (index, id) {
            (Some(index), _) => indexes.insert(index, Bytes::from(body)),
            (None, Some(id)) => bodies.insert(id, Bytes::from(body)),
            (None, None) => None,
        };
    }
    Ok((indexes, bodies))
}
