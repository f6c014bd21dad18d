//! `ferry check-store`: every zip of the store checked against the rules a fill applies before it stores
//! one (Go's module zip rules, the go.mod against the stored `.mod`, each file's declared size), so that
//! zips stored before those rules (or put there by hand) are found, and with `--remove` deleted: the next
//! request for such a version fetches it again, and the fill refuses it if the upstream still serves it.

use std::io::Write;
use std::path::Path;

use ferry_module::{ModulePath, Version};
use ferry_storage::{ModuleStore, ModuleStoreExt, StorageError, VersionFile};
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

/// What a check found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Zips checked.
    pub zips: u64,
    /// Zips that break a rule.
    pub bad: u64,
    /// Bad versions deleted (with `--remove`).
    pub removed: u64,
    /// Zips that could not be read or deleted (the store's error is printed).
    pub failed: u64,
}

/// Checks every zip of `store`, one at a time, each copied into `scratch` (a directory of its own) first;
/// prints one line per bad zip (`bad MODULE@VERSION: RULE`), per removal and per failure to `out`, then a
/// summary. With `remove`, each bad version is deleted (`.info` first: unlisted, then its `.mod` and zip).
/// A walk of the store that fails is an error; a zip that cannot be read is counted and the walk goes on.
pub async fn check_store(
    store: &dyn ModuleStore,
    scratch: &Path,
    remove: bool,
    out: &mut (dyn Write + Send),
) -> Result<Checked, StorageError> {
    let mut checked = Checked::default();
    let mut files = store.files();
    while let Some(found) = files.try_next().await? {
        let (module, version) = match found.file {
            VersionFile::Zip => (found.module, found.version),
            VersionFile::Info | VersionFile::Mod => continue,
        };
        checked.zips += 1;
        let verdict = match check_one(store, scratch, &module, &version).await {
            Ok(verdict) => verdict,
            Err(e) => {
                checked.failed += 1;
                let _ = writeln!(out, "unreadable {module}@{version}: {e}");
                continue;
            }
        };
        let Err(rule) = verdict else { continue };
        checked.bad += 1;
        let _ = writeln!(out, "bad {module}@{version}: {rule}");
        if !remove {
            continue;
        }
        match store.delete(&module, &version).await {
            Ok(()) => {
                checked.removed += 1;
                let _ = writeln!(out, "removed {module}@{version}");
            }
            Err(e) => {
                checked.failed += 1;
                let _ = writeln!(out, "not removed {module}@{version}: {e}");
            }
        }
    }
    let _ = writeln!(
        out,
        "checked {} zips: {} bad, {} removed, {} failed",
        checked.zips, checked.bad, checked.removed, checked.failed
    );
    Ok(checked)
}

/// The verdict on one stored zip: `Ok(Err(rule))` when it breaks one; `Err` when the store failed.
async fn check_one(
    store: &dyn ModuleStore,
    scratch: &Path,
    module: &ModulePath,
    version: &Version,
) -> Result<Result<(), String>, StorageError> {
    let path = scratch.join("checked.zip");
    let local = |e: std::io::Error| {
        StorageError::Unavailable(ferry_storage::Failure::new(
            "writing the zip to check into the scratch directory",
            e,
        ))
    };
    let zip = store.zip(module, version).await?;
    let mut file = tokio::fs::File::create(&path).await.map_err(local)?;
    let mut chunks = zip.stream;
    while let Some(chunk) = chunks.next().await {
        file.write_all(&chunk?).await.map_err(local)?;
    }
    file.flush().await.map_err(local)?;
    drop(file);
    // A zip stored without its `.mod` (a save cut short) is checked by the rules alone.
    let go_mod = match store.go_mod(module, version).await {
        Ok(go_mod) => Some(go_mod),
        Err(StorageError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let (m, v) = (module.to_string(), version.to_string());
    let verdict = tokio::task::spawn_blocking(move || {
        ferry_fetcher::check_module_zip(&path, &m, &v, go_mod.as_deref()).map(drop)
    })
    .await
    .map_err(|e| StorageError::Unavailable(ferry_storage::Failure::new("checking a zip", e)))?;
    Ok(verdict)
}
