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
    // The zip crate keeps one entry per name, so a name listed twice never reaches the loop below: the
    // central directory's names, read again, find it (and any rule broken before it, as Go's order has it).
    if archive.has_duplicate_names() {
        let names = central_directory_names(path, archive.central_directory_start())
            .map_err(|e| format!("{what} cannot be read: {e}"))?;
        for name in names {
            rules.check_entry(&name, 0).map_err(|e| refused(&e))?;
        }
        return Err(refused(&"a file name is listed twice"));
    }
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

/// The names of a zip's central directory, in its order, read from `start` (each header: the signature
/// `PK\x01\x02`, 46 bytes with the name's, the extra field's and the comment's lengths at 28, 30 and 32,
/// then the three).
fn central_directory_names(path: &Path, start: u64) -> std::io::Result<Vec<Vec<u8>>> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::io::BufReader::new(std::fs::File::open(path)?);
    file.seek(SeekFrom::Start(start))?;
    let mut names = Vec::new();
    let mut header = [0u8; 46];
    while file.read_exact(&mut header).is_ok() && header[..4] == *b"PK\x01\x02" {
        let length = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let mut name = vec![0u8; length(28).into()];
        file.read_exact(&mut name)?;
        file.seek(SeekFrom::Current(
            i64::from(length(30)) + i64::from(length(32)),
        ))?;
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::check_module_zip;

    /// A zip of example.com/m@v1.0.0 whose entries are named `names`, each holding a line of Go.
    fn zip_named(names: &[&str]) -> tempfile::NamedTempFile {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for name in names {
            zip.start_file(
                format!("example.com/m@v1.0.0/{name}"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            zip.write_all(b"package m\n").unwrap();
        }
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&zip.finish().unwrap().into_inner()).unwrap();
        file
    }

    #[test]
    fn a_file_twice_is_refused_in_gos_words() {
        // The zip crate writes no name twice: the second name is renamed in the bytes, in both headers.
        let zip = zip_named(&["a.go", "b.go"]);
        let mut bytes = std::fs::read(zip.path()).unwrap();
        let (from, to) = (b"m@v1.0.0/b.go", b"m@v1.0.0/a.go");
        let mut renamed = 0;
        for at in 0..bytes.len() - from.len() {
            if &bytes[at..at + from.len()] == from {
                bytes[at..at + to.len()].copy_from_slice(to);
                renamed += 1;
            }
        }
        assert_eq!(renamed, 2);
        std::fs::write(zip.path(), bytes).unwrap();
        let err = check_module_zip(zip.path(), "example.com/m", "v1.0.0", None).unwrap_err();
        assert!(
            err.ends_with(r#"example.com/m@v1.0.0/a.go: multiple entries for file "a.go""#),
            "{err}"
        );
    }

    #[test]
    fn a_module_zip_that_keeps_the_rules_is_hashed() {
        let zip = zip_named(&["m.go", "FOO~1/x.go", "über.go"]);
        let sum = check_module_zip(zip.path(), "example.com/m", "v1.0.0", None).unwrap();
        assert!(sum.starts_with("h1:"), "{sum}");
    }
}
