//! The check of a module zip before Ferry stores it (and of one stored, for `ferry check-store`): Go's
//! rules of a module zip (`CheckZip` of `golang.org/x/mod/zip`, ported as `ferry_module::ZipRules`), the
//! go.mod against the version's `.mod`, and the `h1:` hash read from every file.

use std::io::Read;
use std::path::Path;

use ferry_module::{ModulePath, Version, ZipEntry, ZipRules};
use ferry_sumdb::DirhashError;

/// Checks a downloaded zip as the go command does before it uses one (`CheckZip` of `golang.org/x/mod/zip`,
/// through `ferry_module::ZipRules`: the path's major version, every entry under `module@version/` with a
/// clean path that Go's `CheckFilePath` accepts, no case-fold collision, go.mod only at the root, the size
/// limits), that each file holds the size its header declares, and, given the version's `.mod`, a go.mod
/// at its root equal to it; returns its `h1:` hash. The first broken rule is the error, in Go's words,
/// naming neither the zip's local path nor anything but the module version. Reads the whole zip
/// synchronously: call it from `spawn_blocking` in async code.
pub fn check_module_zip(
    path: &Path,
    module: &str,
    version: &str,
    go_mod: Option<&[u8]>,
) -> Result<String, String> {
    let what = format!("the zip of {module}@{version}");
    let refused =
        |rule: &dyn std::fmt::Display| format!("{what} is not a valid module zip: {rule}");
    let (Ok(module_path), Ok(canonical)) = (ModulePath::new(module), Version::new(version)) else {
        return Err(format!("{what}: not a module path and canonical version"));
    };
    let mut rules = ZipRules::new(&module_path, &canonical).map_err(|e| refused(&e))?;
    let file = std::fs::File::open(path).map_err(|e| format!("{what}: {e}"))?;
    let len = file.metadata().map_err(|e| format!("{what}: {e}"))?.len();
    ZipRules::check_zip_size(len).map_err(|e| refused(&e))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("{what} is not a zip: {e}"))?;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("{what} cannot be read: {e}"))?;
        let size = entry.size();
        let kind = rules
            .check_entry(entry.name_raw(), size)
            .map_err(|e| refused(&e))?;
        if let (ZipEntry::GoMod, Some(go_mod)) = (kind, go_mod) {
            let mut inside = Vec::new();
            (&mut entry)
                .take(ferry_module::MAX_GO_MOD + 1)
                .read_to_end(&mut inside)
                .map_err(|e| format!("{what}: reading go.mod: {e}"))?;
            if inside != go_mod {
                return Err(format!("{what} holds a go.mod that differs from its .mod"));
            }
        }
    }
    // The hash reads every file; its errors name the zip's local path, kept out of the answer.
    ferry_sumdb::hash_zip(path, module, version).map_err(|e| match e {
        DirhashError::NotAModuleZip { reason, .. } => refused(&reason),
        DirhashError::Zip { source, .. } => format!("{what} is not a zip: {source}"),
        DirhashError::Io { source, .. } => format!("{what} cannot be read: {source}"),
    })
}
