//! `ferry import`: a bundle checked whole, then stored. Nothing is stored before every version has passed:
//! the bundle is complete and undamaged (its end entry), the manifest's database key is the one this Ferry
//! trusts, each zip's `h1:` hash (dirhash) and each go.mod's hash equal the database's record, and each
//! record is proven in the tree of a note signed by that key, by the bundle's tiles. Then each version is
//! saved as a fill saves one (complete or not visible), followed by the records and tiles proven and, when
//! it is newer than the store's, the signed note.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, ModuleStoreExt, Records, Saved, VersionFiles, ZipSource};
use ferry_sumdb::VerifierKey;

use super::bundle::{self, Unpacked};
use super::sumdb_data::{InBundle, record_key, trusted_key};
use super::{AirgapError, module_version};
use crate::Config;

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    pub file: PathBuf,
    /// Where the bundle's zips are staged while they are checked (a directory of the caller's choosing,
    /// e.g. the system's temporary directory): on the store's filesystem, a file store links them in.
    pub staging: PathBuf,
    /// Database keys as `GOSUMDB` takes them, beside the ones Ferry knows (its `GOSUMDB`, sum.golang.org's).
    pub keys: Vec<String>,
}

/// What an import stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Versions in the bundle.
    pub versions: usize,
    /// Versions (or zips of versions listed before) written.
    pub written: usize,
    /// Versions the store held already.
    pub already: usize,
    /// Versions blocked in this store, not stored.
    pub blocked: Vec<String>,
    /// Content bytes read from the bundle.
    pub bytes: u64,
    pub database: String,
}

/// One version of the bundle, checked.
struct Checked {
    module: ModulePath,
    version: Version,
    info: Bytes,
    go_mod: Bytes,
    zip: Option<PathBuf>,
}

/// Imports the bundle: checks it all, then stores it.
pub async fn import(
    config: &Config,
    request: &ImportRequest,
) -> Result<ImportSummary, AirgapError> {
    let staging = tempfile::Builder::new()
        .prefix("ferry-import-")
        .tempdir_in(&request.staging)
        .map_err(|e| {
            AirgapError::new(format!(
                "creating a staging directory in {}: {e}",
                request.staging.display()
            ))
        })?;
    let (file, dir) = (request.file.clone(), staging.path().to_path_buf());
    let unpacked = tokio::task::spawn_blocking(move || bundle::unpack(&file, &dir))
        .await
        .map_err(|e| AirgapError::new(format!("reading the bundle failed: {e}")))??;
    let name = unpacked.manifest.database.clone();
    let key = trusted_key(config, &name, &request.keys)?;
    if unpacked.manifest.key != key.as_str() {
        return Err(AirgapError::new(format!(
            "the bundle is proven with key {:?} for checksum database {name}, but this Ferry trusts {:?}; nothing was stored",
            unpacked.manifest.key,
            key.as_str()
        )));
    }
    let (checked, proven) = check(&unpacked, &key).await?;
    let store = open_store(config).await?;
    let mut summary = ImportSummary {
        versions: checked.len(),
        bytes: unpacked.bytes,
        database: name.clone(),
        ..ImportSummary::default()
    };
    store_versions(&store, checked, &mut summary).await?;
    store_records(&store.0.records(), &name, &key, &unpacked, &proven).await?;
    store.1.sync().await.map_err(|e| {
        AirgapError::new(format!("the versions are stored, but the store's index was not written: {e}; run `ferry admin reindex`"))
    })?;
    Ok(summary)
}

/// Every version of the manifest: its files present, its hashes those of the database's record, the
/// record proven by the bundle's tiles in a note signed by `key`. Returns the versions and the lookups and tiles the proofs used.
async fn check(
    unpacked: &Unpacked,
    key: &VerifierKey,
) -> Result<(Vec<Checked>, BTreeMap<String, Bytes>), AirgapError> {
    let latest = unpacked.sumdb.get("latest").ok_or_else(|| {
        AirgapError::new("the bundle holds no signed tree note (latest); nothing was stored")
    })?;
    ferry_sumdb::signed_tree_size(key, latest).map_err(|e| {
        AirgapError::new(format!(
            "the bundle's signed tree note (latest): {e}; nothing was stored"
        ))
    })?;
    let listed_files = unpacked
        .manifest
        .versions
        .iter()
        .map(|l| l.zip as usize + 2)
        .sum::<usize>();
    if listed_files != unpacked.small.len() + unpacked.zips.len() {
        return Err(AirgapError::new(format!(
            "the bundle holds {} module files where its manifest lists {listed_files}; nothing was stored",
            unpacked.small.len() + unpacked.zips.len()
        )));
    }
    let transport = Arc::new(InBundle {
        entries: unpacked.sumdb.clone(),
        used: Mutex::default(),
    });
    let client = ferry_sumdb::Client::new(key.clone(), transport.clone());
    let mut checked = Vec::with_capacity(unpacked.manifest.versions.len());
    for listed in &unpacked.manifest.versions {
        let (module, version) = module_version(&format!("{}@{}", listed.module, listed.version))?;
        let refused = |what: String| {
            AirgapError::new(format!(
                "{module}@{version}: {what}; the bundle is refused and nothing was stored"
            ))
        };
        let file = |extension: &str| bundle::module_file(&module, &version, extension);
        let info = unpacked
            .small
            .get(&file("info"))
            .cloned()
            .ok_or_else(|| refused("its .info is missing".into()))?;
        let go_mod = unpacked
            .small
            .get(&file("mod"))
            .cloned()
            .ok_or_else(|| refused("its .mod is missing".into()))?;
        check_info(&info, &version).map_err(refused)?;
        let zip = match listed.zip {
            true => Some(
                unpacked
                    .zips
                    .get(&file("zip"))
                    .cloned()
                    .ok_or_else(|| refused("its zip is missing".into()))?,
            ),
            false => None,
        };
        let zip_h1 = match &zip {
            Some(path) => Some(
                hash_zip(path.clone(), &module, &version)
                    .await
                    .map_err(refused)?,
            ),
            None => None,
        };
        let go_mod_h1 = ferry_sumdb::hash_go_mod(&go_mod);
        client
            .verify(
                module.as_str(),
                version.as_str(),
                zip_h1.as_deref(),
                Some(&go_mod_h1),
            )
            .await
            .map_err(|e| refused(format!("checksum database {}: {e}", key.name())))?;
        checked.push(Checked {
            module,
            version,
            info,
            go_mod,
            zip,
        });
    }
    let used = std::mem::take(&mut *transport.used.lock().unwrap());
    Ok((checked, used))
}

/// A `.info` is JSON naming its version (the checksum database does not cover it).
fn check_info(info: &[u8], version: &Version) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Info {
        version: String,
    }
    match serde_json::from_slice::<Info>(info) {
        Ok(parsed) if parsed.version == version.as_str() => Ok(()),
        Ok(parsed) => Err(format!("its .info names version {:?}", parsed.version)),
        Err(e) => Err(format!("its .info is not a version's JSON: {e}")),
    }
}

/// The zip's `h1:` hash (a module zip's dirhash), on a blocking thread.
async fn hash_zip(path: PathBuf, module: &ModulePath, version: &Version) -> Result<String, String> {
    let (m, v) = (module.as_str().to_string(), version.as_str().to_string());
    tokio::task::spawn_blocking(move || ferry_sumdb::hash_zip(&path, &m, &v))
        .await
        .map_err(|e| format!("hashing its zip failed: {e}"))?
        .map_err(|e| format!("its zip: {e}"))
}

/// The store as `ferry serve` opens it, with its ledger (the catalog and index learn what is imported).
async fn open_store(
    config: &Config,
) -> Result<(Arc<dyn ModuleStore>, Arc<crate::ledger::Ledger>), AirgapError> {
    let url = &config.storage;
    let store = config
        .storage
        .open()
        .map_err(|e| AirgapError::new(format!("opening the storage {url}: {e}")))?;
    let ledger = Arc::new(crate::ledger::Ledger::new(store.records(), config.ledger));
    let store = crate::store_stack(&config.storage, store, &ledger);
    store.check_writable().await.map_err(|e| {
        AirgapError::new(format!(
            "storage {url} does not take writes: {e}; nothing was stored"
        ))
    })?;
    ledger.load().await.map_err(|e| {
        AirgapError::new(format!(
            "reading the store's index: {e}; nothing was stored"
        ))
    })?;
    Ok((store, ledger))
}

/// Saves each version as a fill does: its zip, then `.mod`, then `.info` (which lists it), so a failure
/// (a full disk) leaves every version complete or invisible.
async fn store_versions(
    (store, ledger): &(Arc<dyn ModuleStore>, Arc<crate::ledger::Ledger>),
    checked: Vec<Checked>,
    summary: &mut ImportSummary,
) -> Result<(), AirgapError> {
    for version in checked {
        let (module, v) = (&version.module, &version.version);
        if ledger.blocked(module, v).is_some() {
            summary.blocked.push(format!("{module}@{v}"));
            continue;
        }
        let files = VersionFiles {
            info: version.info,
            go_mod: version.go_mod,
            zip: version.zip.map(ZipSource::File),
        };
        match store.save(module, v, files).await {
            Ok(Saved::Written) => summary.written += 1,
            Ok(Saved::AlreadyStored) => summary.already += 1,
            Err(e) => {
                return Err(AirgapError::new(format!(
                    "{module}@{v}: storing it failed: {e}; the {} versions before it are stored (each whole), it and those after are not: import the bundle again once the store takes writes",
                    summary.written + summary.already
                )));
            }
        }
    }
    Ok(())
}

/// The lookups and tiles the proofs used (no other entry of the bundle is trusted), and the note when it
/// is at least as new as the store's.
async fn store_records(
    records: &Records,
    name: &str,
    key: &VerifierKey,
    unpacked: &Unpacked,
    proven: &BTreeMap<String, Bytes>,
) -> Result<(), AirgapError> {
    let fail = |e: ferry_storage::StorageError| {
        AirgapError::new(format!(
            "the versions are stored, but the checksum database's records were not: {e}; import the bundle again"
        ))
    };
    let latest = &unpacked.sumdb["latest"];
    let ours = ferry_sumdb::signed_tree_size(key, latest).unwrap_or(0);
    let stored = records
        .get(&record_key(name, "latest"))
        .await
        .map_err(fail)?;
    let theirs = stored.and_then(|note| ferry_sumdb::signed_tree_size(key, &note).ok());
    let newer = theirs.is_none_or(|theirs| ours >= theirs);
    for (path, data) in proven {
        let record = record_key(name, path);
        // A bundle's lookups carry its note, and its tiles prove the store's other records in that tree:
        // a lookup stored before with an older note is replaced when this note is at least as new, so the
        // go command finds every record on one tree. Tiles never change.
        if newer && path.starts_with("lookup/") {
            records.put(&record, data.clone()).await.map_err(fail)?;
        } else {
            records.create(&record, data.clone()).await.map_err(fail)?;
        }
    }
    if newer {
        records
            .put(&record_key(name, "latest"), latest.clone())
            .await
            .map_err(fail)?;
    }
    Ok(())
}
