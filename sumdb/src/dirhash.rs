//! The `h1:` hashes of go.sum, ported from `golang.org/x/mod/sumdb/dirhash` (`Hash1`, `HashZip`): SHA-256
//! of the lines `<hex sha256 of file>  <name>\n`, sorted by name, in standard base64 after `h1:`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// Why a module zip could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum DirhashError {
    #[error("reading module zip {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("module zip {path} is not a valid zip: {source}")]
    Zip {
        path: String,
        source: zip::result::ZipError,
    },
    #[error("module zip {path}: {reason}")]
    NotAModuleZip { path: String, reason: String },
}

/// Go's `Hash1` over files given as (name, SHA-256 of contents); names are unique and newline-free.
fn hash1(files: &BTreeMap<String, [u8; 32]>) -> String {
    let mut summary = Sha256::new();
    for (name, sum) in files {
        let mut line = String::with_capacity(64 + 3 + name.len());
        for byte in sum {
            line.push_str(&format!("{byte:02x}"));
        }
        line.push_str("  ");
        line.push_str(name);
        line.push('\n');
        summary.update(line.as_bytes());
    }
    format!("h1:{}", STANDARD.encode(summary.finalize()))
}

/// The go.sum hash of a `.mod` file (`<module> <version>/go.mod h1:…`): [`Hash1`] over one file named
/// `go.mod`, as the go command computes it.
///
/// [`Hash1`]: https://pkg.go.dev/golang.org/x/mod/sumdb/dirhash#Hash1
pub fn hash_go_mod(go_mod: &[u8]) -> String {
    let mut files = BTreeMap::new();
    files.insert("go.mod".to_string(), Sha256::digest(go_mod).into());
    hash1(&files)
}

/// The go.sum hash of a module zip (`<module> <version> h1:…`), Go's `dirhash.HashZip` with `Hash1`.
///
/// Every entry must sit under `<module>@<version>/` and appear once, as the go command requires of a
/// module zip before it hashes one; a zip that breaks this is refused rather than given a hash. Reads the
/// whole file synchronously: call it from `spawn_blocking` in async code.
pub fn hash_zip(path: &Path, module: &str, version: &str) -> Result<String, DirhashError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| DirhashError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|source| {
        DirhashError::Zip {
            path: shown.clone(),
            source,
        }
    })?;
    let prefix = format!("{module}@{version}/");
    // The zip crate keeps one entry per name: a name listed twice would be hashed once, where Go refuses it.
    if archive.has_duplicate_names() {
        return Err(DirhashError::NotAModuleZip {
            path: shown,
            reason: "a file name is listed twice".to_string(),
        });
    }
    let not_module_zip = |reason: String| DirhashError::NotAModuleZip {
        path: shown.clone(),
        reason,
    };
    let mut files = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|source| DirhashError::Zip {
                path: shown.clone(),
                source,
            })?;
        // Go takes the stored bytes as the name, without the code-page decoding the zip crate applies.
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| not_module_zip("an entry's name is not UTF-8".to_string()))?
            .to_string();
        if !name.starts_with(&prefix) {
            return Err(not_module_zip(format!(
                "entry {name:?} is not under {prefix}"
            )));
        }
        if name.contains('\n') {
            return Err(not_module_zip(format!("entry {name:?} has a newline")));
        }
        let mut sum = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(|source| DirhashError::Io {
                path: format!("{shown} ({name})"),
                source,
            })?;
            if n == 0 {
                break;
            }
            read += n as u64;
            sum.update(&buf[..n]);
        }
        // Go's zip reader fails a file whose data is not the size its header declares (and so `HashZip`
        // and the go command's `Unzip`), whatever its CRC.
        if read != entry.size() {
            return Err(not_module_zip(format!(
                "zip: not a valid zip file: {name:?} holds {read} bytes, its header declares {}",
                entry.size()
            )));
        }
        if files.insert(name.clone(), sum.finalize().into()).is_some() {
            return Err(not_module_zip(format!("entry {name:?} appears twice")));
        }
    }
    Ok(hash1(&files))
}
