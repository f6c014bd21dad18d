//! `ferry export`: the versions a store holds, with their checksum-database records, the tiles proving
//! them and one signed tree note, written as one bundle (see `bundle`). The store is read from the
//! configuration `ferry serve` uses; a version whose records are not in the store has them fetched by
//! Ferry's route to the database (and proven) before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, ModuleStoreExt, VersionFile};
use futures::StreamExt;

use super::bundle::{self, Listed, Manifest};
use super::sumdb_data::{self, StoredOrFetched};
use super::{AirgapError, module_version};
use crate::Config;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub output: PathBuf,
    /// `MODULE@VERSION`s; none: every version in the store.
    pub versions: Vec<String>,
    /// Only versions first stored at or after this time.
    pub since: Option<SystemTime>,
    /// The checksum database (default: Ferry's `GOSUMDB`, else sum.golang.org).
    pub database: Option<String>,
    /// Database keys as `GOSUMDB` takes them, beside the ones Ferry knows.
    pub keys: Vec<String>,
    /// Ask the database for records the store lacks (else such a version fails the export).
    pub fetch_missing: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub versions: usize,
    pub zips: usize,
    pub tiles: usize,
    /// Content bytes (before compression).
    pub bytes: u64,
    pub database: String,
}

/// Writes the bundle; on failure the output file is removed (no partial bundle is left to be imported).
pub async fn export(
    config: &Config,
    request: &ExportRequest,
) -> Result<ExportSummary, AirgapError> {
    let store = config
        .storage
        .open()
        .map_err(|e| AirgapError::new(format!("opening the storage {}: {e}", config.storage)))?;
    store
        .check()
        .await
        .map_err(|e| AirgapError::new(format!("storage {} is not usable: {e}", config.storage)))?;
    let versions = select(store.as_ref(), request).await?;
    if versions.is_empty() {
        return Err(AirgapError::new("nothing to export: no version matches"));
    }
    let name = sumdb_data::database_name(config, request.database.as_deref());
    let key = sumdb_data::trusted_key(config, &name, &request.keys)?;
    let source = StoredOrFetched {
        name: name.clone(),
        records: store.records(),
        routes: request.fetch_missing.then(|| sumdb_data::routes(config)),
        client: ferry_fetcher::https_client(ferry_fetcher::CONNECT_TIMEOUT),
        lookups: Mutex::default(),
        given: Mutex::default(),
        fetched: Mutex::default(),
    };
    let proofs = prove(source, key, &versions).await?;
    let written = write(store.clone(), request, &name, &versions, &proofs).await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&request.output).await;
    }
    let bytes = written?;
    keep(store.records(), &name, &proofs).await;
    Ok(ExportSummary {
        versions: versions.len(),
        zips: versions.iter().filter(|v| v.zip).count(),
        tiles: proofs.tiles.len(),
        bytes,
        database: name,
    })
}

/// Keeps in the store what the database answered and the proofs used (its lookups and full tiles; the
/// next export then finds them there, and proves this bundle's records in its own tree), and this export's
/// note: every later export proves its tree against it (see `prove`). The bundle is written already: a
/// failure here is only logged.
async fn keep(records: ferry_storage::Records, name: &str, proofs: &Proofs) {
    let kept = proofs.fetched.iter().filter(|(path, _)| {
        path.starts_with("lookup/") || (path.starts_with("tile/") && !path.contains(".p/"))
    });
    for (path, data) in kept {
        if let Err(e) = records
            .create(&sumdb_data::record_key(name, path), data.clone())
            .await
        {
            tracing::warn!(error = %e, %path, "a checksum database record was not kept in the store");
        }
    }
    let exported = sumdb_data::record_key(name, &format!("exported/{:020}", proofs.tree));
    if let Err(e) = records.put(&exported, proofs.note.clone()).await {
        tracing::warn!(error = %e, "the bundle is written, but its note was not kept in the store: the next bundle cannot prove this one's tree a prefix of its own");
    }
}

/// The versions to export, in order: those named, or every listed version (first stored since `since`).
async fn select(
    store: &dyn ModuleStore,
    request: &ExportRequest,
) -> Result<Vec<Listed>, AirgapError> {
    let mut chosen = BTreeSet::new();
    let failed =
        |e: ferry_storage::StorageError| AirgapError::new(format!("reading the store: {e}"));
    for text in &request.versions {
        let (module, version) = module_version(text)?;
        if !store.exists(&module, &version).await.map_err(failed)? {
            return Err(AirgapError::new(format!("{text}: not in the store")));
        }
        let zip = store.has_zip(&module, &version).await.map_err(failed)?;
        chosen.insert(listed(&module, &version, zip));
    }
    if !request.versions.is_empty() {
        return Ok(chosen.into_iter().collect());
    }
    // A walk of the store: a version is listed by its `.info` (written last, when it was first stored).
    let mut infos = BTreeMap::new();
    let mut zips = BTreeSet::new();
    let mut files = store.files();
    while let Some(file) = files.next().await {
        let file = file.map_err(failed)?;
        let key = (file.module.clone(), file.version.clone());
        match file.file {
            VersionFile::Info => {
                infos.insert(key, file.modified);
            }
            VersionFile::Zip => {
                zips.insert(key);
            }
            VersionFile::Mod => {}
        }
    }
    Ok(infos
        .into_iter()
        .filter(|(_, stored)| request.since.is_none_or(|since| *stored >= since))
        .map(|((module, version), _)| {
            let zip = zips.contains(&(module.clone(), version.clone()));
            listed(&module, &version, zip)
        })
        .collect())
}

fn listed(module: &ModulePath, version: &Version, zip: bool) -> Listed {
    Listed {
        module: module.as_str().to_string(),
        version: version.as_str().to_string(),
        zip,
    }
}

/// Every lookup re-noted with the newest note among them, and the tiles proving each in that tree.
struct Proofs {
    key: String,
    tree: i64,
    note: Bytes,
    lookups: BTreeMap<String, Bytes>,
    tiles: BTreeMap<String, Bytes>,
    /// What the database answered where the store lacked it.
    fetched: BTreeMap<String, Bytes>,
}

/// Gathers each version's lookup (the store's, else the database's) and picks the newest signed note
/// among them and the notes of earlier exports; gives every lookup that note (a lookup's note is not signed
/// with its record: the database embeds whichever tree it signed last) and proves every record in that one
/// tree, keeping the tiles read. An importer, and a go command reading the lookups in any order, then needs
/// that tree's tiles only. For the bundles imported before on the other side, the tiles also prove every
/// record the store holds (exported before, or not) in that tree, and each earlier export's tree a prefix
/// of it: a go command there that remembers an older tree, or reads an older lookup, accepts this one.
async fn prove(
    source: StoredOrFetched,
    key: ferry_sumdb::VerifierKey,
    versions: &[Listed],
) -> Result<Proofs, AirgapError> {
    let selected = selected_lookups(&source, &key, versions).await?;
    let stored = stored_lookups(&source, &key, &selected).await?;
    let exported = exported_notes(&source, &key).await?;
    let (tree, note) = selected
        .values()
        .chain(stored.values())
        .map(|(tree, answer)| (*tree, note_of(answer)))
        .chain(exported.iter().cloned())
        .max_by_key(|(tree, _)| *tree)
        .expect("at least one version");
    let renote = |answer: &Bytes| {
        let parts = ferry_sumdb::split_lookup(answer).expect("split before");
        Bytes::from([parts.record, &note[..]].concat())
    };
    let renoted = |lookups: &BTreeMap<String, (i64, Bytes)>| -> BTreeMap<String, Bytes> {
        lookups
            .iter()
            .map(|(path, (_, answer))| (path.clone(), renote(answer)))
            .collect()
    };
    let bundled = renoted(&selected);
    *source.lookups.lock().unwrap() = bundled
        .clone()
        .into_iter()
        .chain(renoted(&stored))
        .collect();
    let source = Arc::new(source);
    let client = ferry_sumdb::Client::new(key.clone(), source.clone());
    for path in selected.keys().chain(stored.keys()) {
        let (module, version) = lookup_module_version(path)?;
        client
            .lookup(module.as_str(), version.as_str())
            .await
            .map_err(|e| AirgapError::new(format!("{module}@{version}: {e}")))?;
    }
    // Each earlier export's tree, proven a prefix of this one: its note given to a lookup, as a go command
    // that remembers it would hold it against this one.
    let (first, (_, answer)) = selected.iter().next().expect("at least one version");
    let (module, version) = lookup_module_version(first)?;
    for (older, older_note) in exported.iter().filter(|(older, _)| *older < tree) {
        let parts = ferry_sumdb::split_lookup(answer).expect("split before");
        let with_older = Bytes::from([parts.record, &older_note[..]].concat());
        source
            .lookups
            .lock()
            .unwrap()
            .insert(first.clone(), with_older);
        client.lookup(module.as_str(), version.as_str()).await.map_err(|e| {
            AirgapError::new(format!("the tree of an earlier export ({older} records) is not a prefix of this one's ({tree}): {e}"))
        })?;
    }
    let tiles = std::mem::take(&mut *source.given.lock().unwrap());
    let fetched = std::mem::take(&mut *source.fetched.lock().unwrap());
    Ok(Proofs {
        key: key.as_str().to_string(),
        tree,
        note,
        lookups: bundled,
        tiles,
        fetched,
    })
}

/// A lookup answer's signed note.
fn note_of(answer: &Bytes) -> Bytes {
    let parts = ferry_sumdb::split_lookup(answer).expect("split before");
    answer.slice(answer.len() - parts.note.len()..)
}

/// The lookup of each version to export (the store's, else the database's), with its note's tree size.
async fn selected_lookups(
    source: &StoredOrFetched,
    key: &ferry_sumdb::VerifierKey,
    versions: &[Listed],
) -> Result<BTreeMap<String, (i64, Bytes)>, AirgapError> {
    use ferry_sumdb::Transport;
    let mut lookups = BTreeMap::new();
    for listed in versions {
        let shown = format!("{}@{}", listed.module, listed.version);
        let path = lookup_path(listed)?;
        let answer = source.get(&path).await.map_err(|e| {
            AirgapError::new(format!(
                "{shown}: no record in checksum database {} ({e}); export it where the database is reachable (without --offline), or leave it out",
                source.name
            ))
        })?;
        let tree = noted_tree(key, &answer)
            .map_err(|e| AirgapError::new(format!("{shown}: its lookup record: {e}")))?;
        lookups.insert(path, (tree, answer));
    }
    Ok(lookups)
}

/// The tree size of a lookup answer's note, its signature checked.
fn noted_tree(key: &ferry_sumdb::VerifierKey, answer: &[u8]) -> Result<i64, String> {
    let parts = ferry_sumdb::split_lookup(answer)?;
    ferry_sumdb::signed_tree_size(key, parts.note)
}

/// The other lookups the store holds (their records proven in the bundle's tree too); one that does not
/// verify is left out, and said so.
async fn stored_lookups(
    source: &StoredOrFetched,
    key: &ferry_sumdb::VerifierKey,
    selected: &BTreeMap<String, (i64, Bytes)>,
) -> Result<BTreeMap<String, (i64, Bytes)>, AirgapError> {
    let prefix = sumdb_data::record_key(&source.name, "lookup");
    let failed = |e: ferry_storage::StorageError| {
        AirgapError::new(format!("reading the store's records: {e}"))
    };
    let mut lookups = BTreeMap::new();
    for record in source.records.list(&prefix, None).await.map_err(failed)? {
        let path = record.key[prefix.len() - "lookup".len()..].to_string();
        if selected.contains_key(&path) || lookup_module_version(&path).is_err() {
            continue;
        }
        let Some(answer) = source.records.get(&record.key).await.map_err(failed)? else {
            continue;
        };
        match noted_tree(key, &answer) {
            Ok(tree) => {
                lookups.insert(path, (tree, answer));
            }
            Err(e) => {
                tracing::warn!(record = %record.key, error = %e, "a stored lookup does not verify; left out of the proofs")
            }
        }
    }
    Ok(lookups)
}

/// The signed notes of earlier exports from this store (`sumdb/NAME/exported/TREE`), by tree size.
async fn exported_notes(
    source: &StoredOrFetched,
    key: &ferry_sumdb::VerifierKey,
) -> Result<Vec<(i64, Bytes)>, AirgapError> {
    let prefix = sumdb_data::record_key(&source.name, "exported");
    let failed = |e: ferry_storage::StorageError| {
        AirgapError::new(format!("reading the store's records: {e}"))
    };
    let mut notes = Vec::new();
    for record in source.records.list(&prefix, None).await.map_err(failed)? {
        if let Some(note) = source.records.get(&record.key).await.map_err(failed)?
            && let Ok(tree) = ferry_sumdb::signed_tree_size(key, &note)
        {
            notes.push((tree, note));
        }
    }
    Ok(notes)
}

/// The module and version of `lookup/MODULE@VERSION` (escaped).
fn lookup_module_version(path: &str) -> Result<(ModulePath, Version), AirgapError> {
    let bad = || AirgapError::new(format!("{path:?} is not lookup/MODULE@VERSION"));
    let (module, version) = path
        .strip_prefix("lookup/")
        .and_then(|rest| rest.rsplit_once('@'))
        .ok_or_else(bad)?;
    let module = ModulePath::from_escaped(module).map_err(|_| bad())?;
    let version = Version::from_escaped(version).map_err(|_| bad())?;
    Ok((module, version))
}

/// `lookup/MODULE@VERSION`, escaped.
fn lookup_path(listed: &Listed) -> Result<String, AirgapError> {
    let (module, version) = module_version(&format!("{}@{}", listed.module, listed.version))?;
    Ok(format!("lookup/{}@{}", module.escaped(), version.escaped()))
}

/// Writes the bundle on a blocking thread (tar and gzip are synchronous), reading the store through the
/// runtime: a zip is streamed from the store into the bundle, never held whole.
async fn write(
    store: Arc<dyn ModuleStore>,
    request: &ExportRequest,
    name: &str,
    versions: &[Listed],
    proofs: &Proofs,
) -> Result<u64, AirgapError> {
    let manifest = Manifest::new(
        name.to_string(),
        proofs.key.clone(),
        proofs.tree,
        versions.to_vec(),
    );
    let output = request.output.clone();
    let (name, proofs) = (
        name.to_string(),
        (
            proofs.note.clone(),
            proofs.lookups.clone(),
            proofs.tiles.clone(),
        ),
    );
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let shown = output.display().to_string();
        let io = |e: std::io::Error| AirgapError::new(format!("writing the bundle {shown}: {e}"));
        let file = std::fs::File::create(&output).map_err(io)?;
        let buffered = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut writer = bundle::Writer::new(buffered, &manifest).map_err(io)?;
        for listed in &manifest.versions {
            write_version(&runtime, store.as_ref(), &mut writer, listed)?;
        }
        let (note, lookups, tiles) = proofs;
        writer
            .add_bytes(&bundle::sumdb_file(&name, "latest"), &note)
            .map_err(io)?;
        for (path, data) in lookups.iter().chain(tiles.iter()) {
            writer
                .add_bytes(&bundle::sumdb_file(&name, path), data)
                .map_err(io)?;
        }
        let bytes = writer.bytes;
        let file = writer
            .finish()
            .map_err(io)?
            .into_inner()
            .map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        Ok(bytes)
    })
    .await
    .map_err(|e| AirgapError::new(format!("the export failed: {e}")))?
}

/// One version's `.info`, `.mod` and (when stored) zip.
fn write_version<W: std::io::Write>(
    runtime: &tokio::runtime::Handle,
    store: &dyn ModuleStore,
    writer: &mut bundle::Writer<W>,
    listed: &Listed,
) -> Result<(), AirgapError> {
    let (module, version) = module_version(&format!("{}@{}", listed.module, listed.version))?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        AirgapError::new(format!("{module}@{version}: {what}: {e}"))
    };
    let info = runtime
        .block_on(store.info(&module, &version))
        .map_err(|e| fail("reading its .info", &e))?;
    let go_mod = runtime
        .block_on(store.go_mod(&module, &version))
        .map_err(|e| fail("reading its .mod", &e))?;
    writer
        .add_bytes(&bundle::module_file(&module, &version, "info"), &info)
        .map_err(|e| fail("writing", &e))?;
    writer
        .add_bytes(&bundle::module_file(&module, &version, "mod"), &go_mod)
        .map_err(|e| fail("writing", &e))?;
    if listed.zip {
        let zip = runtime
            .block_on(store.zip(&module, &version))
            .map_err(|e| fail("reading its zip", &e))?;
        let reader = BlockingStream {
            runtime: runtime.clone(),
            stream: zip.stream,
            chunk: Bytes::new(),
        };
        writer
            .add(
                &bundle::module_file(&module, &version, "zip"),
                zip.len,
                reader,
            )
            .map_err(|e| fail("copying its zip into the bundle", &e))?;
    }
    Ok(())
}

/// A store's zip stream read synchronously, chunk by chunk, from a blocking thread.
struct BlockingStream {
    runtime: tokio::runtime::Handle,
    stream: futures::stream::BoxStream<'static, Result<Bytes, ferry_storage::StorageError>>,
    chunk: Bytes,
}

impl Read for BlockingStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}
