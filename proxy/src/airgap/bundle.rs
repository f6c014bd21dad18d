//! The bundle file: a tar stream in gzip. Its first entry is the manifest (`ferry-bundle.json`: the
//! database, its key, the tree every record is proven in, the versions); then each version's `.info`,
//! `.mod` and zip under `modules/` in the GOPROXY layout; then the database's data under `sumdb/NAME/`
//! (`latest`, `lookup/…`, `tile/…`); its last entry (`ferry-bundle.end`) counts the entries before it and
//! holds a SHA-256 over their names, sizes and contents, so a bundle cut short, even between two entries,
//! or damaged is told from a whole one before anything in it is used.
//!
//! gzip, not zstd: flate2 over zlib-rs is pure Rust and already in the tree (zstd would bring a C library);
//! module zips are compressed already, so the bundle's own compression mostly shrinks the text (`.mod`,
//! records) and is run at its fastest level.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AirgapError;

const MANIFEST: &str = "ferry-bundle.json";
const END: &str = "ferry-bundle.end";
const FORMAT: &str = "ferry-bundle/1";
/// The most a small entry (`.info`, `.mod`, a record, a tile, the manifest) may hold.
const MAX_SMALL: u64 = 64 << 20;

/// What a bundle holds, listed first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: String,
    /// The checksum database (`GOSUMDB`'s name) every version is proven in.
    pub database: String,
    /// Its public key, as `GOSUMDB` takes it: told, never trusted (import trusts its own).
    pub key: String,
    /// The size of the tree of the signed note (`sumdb/NAME/latest`) every lookup carries.
    pub tree: i64,
    pub versions: Vec<Listed>,
}

impl Manifest {
    pub fn new(database: String, key: String, tree: i64, versions: Vec<Listed>) -> Manifest {
        Manifest {
            format: FORMAT.to_string(),
            database,
            key,
            tree,
            versions,
        }
    }
}

/// A version in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Listed {
    pub module: String,
    pub version: String,
    /// Whether its zip is in the bundle (else only its `.info` and `.mod`).
    pub zip: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct End {
    entries: u64,
    digest: String,
}

/// The entry of a version's file (`info`, `mod`, `zip`).
pub(crate) fn module_file(module: &ModulePath, version: &Version, extension: &str) -> String {
    format!(
        "modules/{}/@v/{}.{extension}",
        module.escaped(),
        version.escaped()
    )
}

/// The entry of a database's `path` (`latest`, `lookup/…`, `tile/…`).
pub(crate) fn sumdb_file(database: &str, path: &str) -> String {
    format!("sumdb/{database}/{path}")
}

/// The running digest of the entries: one line per entry (name, size, SHA-256 of its content).
#[derive(Default)]
struct Digest256 {
    lines: Sha256,
    entries: u64,
}

impl Digest256 {
    fn entry(&mut self, name: &str, size: u64, content: Sha256) {
        let line = format!("{name}\0{size}\0{}\n", hex(&content.finalize()));
        self.lines.update(line.as_bytes());
        self.entries += 1;
    }

    fn end(self) -> End {
        End {
            entries: self.entries,
            digest: hex(&self.lines.finalize()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes what it gives.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Writes a bundle, entry by entry, never holding a zip whole.
pub(crate) struct Writer<W: Write> {
    tar: tar::Builder<flate2::write::GzEncoder<W>>,
    digest: Digest256,
    /// Bytes of content written (before compression).
    pub bytes: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, manifest: &Manifest) -> io::Result<Writer<W>> {
        let gzip = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        let mut writer = Writer {
            tar: tar::Builder::new(gzip),
            digest: Digest256::default(),
            bytes: 0,
        };
        let manifest = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
        writer.add_bytes(MANIFEST, &manifest)?;
        Ok(writer)
    }

    /// Adds an entry of `size` bytes read from `data`: fewer or more bytes is an error.
    pub fn add(&mut self, name: &str, size: u64, data: impl Read) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let mut hashing = Hashing {
            inner: data.take(size),
            hash: Sha256::new(),
            read: 0,
        };
        self.tar.append_data(&mut header, name, &mut hashing)?;
        if hashing.read != size {
            return Err(io::Error::other(format!(
                "{name}: {} bytes read where the store said {size}",
                hashing.read
            )));
        }
        self.digest.entry(name, size, hashing.hash);
        self.bytes += size;
        Ok(())
    }

    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.add(name, data.len() as u64, data)
    }

    /// Adds the end entry and flushes: the bundle is whole only now.
    pub fn finish(mut self) -> io::Result<W> {
        let end = std::mem::take(&mut self.digest).end();
        let end = serde_json::to_vec(&end).map_err(io::Error::other)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(end.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        self.tar.append_data(&mut header, END, &end[..])?;
        self.tar.into_inner()?.finish()
    }
}

/// A bundle read whole and checked for completeness: small entries in memory, zips in `staging`.
pub(crate) struct Unpacked {
    pub manifest: Manifest,
    /// `.info` and `.mod` contents by entry name.
    pub small: BTreeMap<String, Bytes>,
    /// Zips by entry name, as files under the staging directory.
    pub zips: BTreeMap<String, PathBuf>,
    /// The database's entries by their path under `sumdb/NAME/` (`latest`, `lookup/…`, `tile/…`).
    pub sumdb: BTreeMap<String, Bytes>,
    /// Bytes of content read.
    pub bytes: u64,
}

/// Reads the bundle at `file`, its zips written into `staging`. Fails on anything but a whole, undamaged
/// bundle of this format: nothing in it is to be trusted before that (and its proofs) are checked.
pub(crate) fn unpack(file: &Path, staging: &Path) -> Result<Unpacked, AirgapError> {
    let opened = std::fs::File::open(file)
        .map_err(|e| AirgapError::new(format!("cannot open the bundle {}: {e}", file.display())))?;
    let gzip = flate2::read::GzDecoder::new(io::BufReader::with_capacity(1 << 20, opened));
    let mut archive = tar::Archive::new(gzip);
    let mut reading = Reading::default();
    let mut ended = false;
    for entry in archive.entries().map_err(|e| reading.damaged(e))? {
        let entry = entry.map_err(|e| reading.damaged(e))?;
        // Entries after the end entry are refused by `take`.
        ended |= reading.take(entry, staging)?;
    }
    if !ended {
        return Err(AirgapError::new(format!(
            "the bundle is cut short: it ends after {} entries{}, without its end entry; nothing was stored",
            reading.digest.entries,
            reading.last_named()
        )));
    }
    // The rest (the tar's end blocks, gzip's trailer with its CRC) is read too: a file cut after its last
    // entry, or damaged there, is not whole either.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| reading.damaged(e))?;
    reading.finish()
}

#[derive(Default)]
struct Reading {
    manifest: Option<Manifest>,
    small: BTreeMap<String, Bytes>,
    zips: BTreeMap<String, PathBuf>,
    sumdb: BTreeMap<String, Bytes>,
    digest: Digest256,
    last: Option<String>,
    bytes: u64,
    end: Option<End>,
}

impl Reading {
    fn last_named(&self) -> String {
        self.last
            .as_ref()
            .map(|last| format!(" (the last: {last})"))
            .unwrap_or_default()
    }

    fn damaged(&self, error: io::Error) -> AirgapError {
        AirgapError::new(format!(
            "the bundle is cut short or damaged after {} entries{}: {error}; nothing was stored",
            self.digest.entries,
            self.last_named()
        ))
    }

    /// Reads one entry; `true` once the end entry is read.
    fn take(
        &mut self,
        mut entry: tar::Entry<'_, impl Read>,
        staging: &Path,
    ) -> Result<bool, AirgapError> {
        let name = entry
            .path()
            .map_err(|e| self.damaged(e))?
            .to_string_lossy()
            .into_owned();
        let size = entry.size();
        if self.manifest.is_none() && name != MANIFEST {
            return Err(AirgapError::new(format!(
                "not a Ferry bundle: its first entry is {name:?}, not {MANIFEST}"
            )));
        }
        if self.end.is_some() {
            return Err(AirgapError::new(format!(
                "the bundle goes on after its end entry ({name})"
            )));
        }
        if name == END {
            let mut text = Vec::new();
            (&mut entry)
                .take(4096)
                .read_to_end(&mut text)
                .map_err(|e| self.damaged(e))?;
            self.end = Some(serde_json::from_slice(&text).map_err(|e| {
                AirgapError::new(format!("the bundle's end entry is damaged: {e}"))
            })?);
            return Ok(true);
        }
        let mut hashing = Hashing {
            inner: &mut entry,
            hash: Sha256::new(),
            read: 0,
        };
        if name.ends_with(".zip") && name.starts_with("modules/") {
            let path = staging.join(format!("{}.zip", self.zips.len()));
            let mut out = std::fs::File::create(&path).map_err(|e| {
                AirgapError::new(format!("cannot stage {name} in {}: {e}", staging.display()))
            })?;
            io::copy(&mut hashing, &mut out).map_err(|e| self.damaged(e))?;
            self.zips.insert(name.clone(), path);
        } else {
            if size > MAX_SMALL {
                return Err(AirgapError::new(format!(
                    "{name}: {size} bytes is too large for a {name:?} entry"
                )));
            }
            let mut data = Vec::with_capacity(size as usize);
            hashing
                .read_to_end(&mut data)
                .map_err(|e| self.damaged(e))?;
            self.keep_small(&name, Bytes::from(data))?;
        }
        let (read, hash) = (hashing.read, hashing.hash);
        if read != size {
            return Err(self.damaged(io::Error::other(format!("{name}: {read} of {size} bytes"))));
        }
        self.digest.entry(&name, size, hash);
        self.bytes += size;
        self.last = Some(name);
        Ok(false)
    }

    fn keep_small(&mut self, name: &str, data: Bytes) -> Result<(), AirgapError> {
        if name == MANIFEST {
            let manifest: Manifest = serde_json::from_slice(&data)
                .map_err(|e| AirgapError::new(format!("the bundle's manifest is damaged: {e}")))?;
            if manifest.format != FORMAT {
                return Err(AirgapError::new(format!(
                    "the bundle is in format {:?}; this Ferry reads {FORMAT}",
                    manifest.format
                )));
            }
            self.manifest = Some(manifest);
        } else if name.starts_with("modules/") {
            self.small.insert(name.to_string(), data);
        } else if let Some(path) = self
            .manifest
            .as_ref()
            .and_then(|m| name.strip_prefix(&format!("sumdb/{}/", m.database)))
        {
            self.sumdb.insert(path.to_string(), data);
        } else {
            return Err(AirgapError::new(format!(
                "the bundle holds an unexpected entry {name:?}"
            )));
        }
        Ok(())
    }

    fn finish(self) -> Result<Unpacked, AirgapError> {
        let end = self.end.expect("read");
        let (entries, digest) = (
            self.digest.entries,
            hex(&self.digest.lines.clone().finalize()),
        );
        if end.entries != entries || end.digest != digest {
            return Err(AirgapError::new(format!(
                "the bundle is damaged: its end entry counts {} entries and digest {}, the entries read are {entries} with digest {digest}; nothing was stored",
                end.entries, end.digest
            )));
        }
        Ok(Unpacked {
            manifest: self.manifest.expect("the first entry"),
            small: self.small,
            zips: self.zips,
            sumdb: self.sumdb,
            bytes: self.bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(dir: &Path) -> PathBuf {
        let listed = Listed {
            module: "example.com/a".into(),
            version: "v1.0.0".into(),
            zip: true,
        };
        let manifest = Manifest::new("sum.example".into(), "k".into(), 3, vec![listed]);
        let path = dir.join("b.tar.gz");
        let mut writer = Writer::new(std::fs::File::create(&path).unwrap(), &manifest).unwrap();
        let (m, v) = (
            ModulePath::new("example.com/a").unwrap(),
            Version::new("v1.0.0").unwrap(),
        );
        writer
            .add_bytes(&module_file(&m, &v, "info"), b"{}")
            .unwrap();
        writer
            .add(&module_file(&m, &v, "zip"), 5, &b"zipped"[..])
            .unwrap();
        writer
            .add_bytes(&sumdb_file("sum.example", "latest"), b"note")
            .unwrap();
        writer.finish().unwrap();
        path
    }

    #[test]
    fn a_bundle_reads_back_as_written_and_a_short_entry_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let unpacked = unpack(&written(dir.path()), dir.path()).unwrap();
        assert_eq!(unpacked.manifest.tree, 3);
        assert_eq!(unpacked.sumdb["latest"], Bytes::from_static(b"note"));
        let zip = &unpacked.zips["modules/example.com/a/@v/v1.0.0.zip"];
        assert_eq!(std::fs::read(zip).unwrap(), b"zippe");
        let manifest = Manifest::new("s".into(), "k".into(), 1, Vec::new());
        let mut writer = Writer::new(Vec::new(), &manifest).unwrap();
        assert!(writer.add("modules/x", 10, &b"short"[..]).is_err());
    }

    #[test]
    fn a_bundle_cut_anywhere_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let whole = std::fs::read(written(dir.path())).unwrap();
        let cut = dir.path().join("cut.tar.gz");
        for len in [0, 10, whole.len() / 2, whole.len() - 9] {
            std::fs::write(&cut, &whole[..len]).unwrap();
            let error = unpack(&cut, dir.path()).err().expect("refused");
            assert!(
                error.0.contains("cut short") || error.0.contains("damaged"),
                "{len}: {error}"
            );
        }
    }
}
