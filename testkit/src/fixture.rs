//! Fixture Go modules built in memory (go.mod, .info, a real module zip) and GOPROXY trees written from them,
//! with a minimal `!` escaping of their own so tests check Ferry against a second implementation.

use std::io::Write;
use std::path::Path;

/// One version of a Go module, built in memory.
#[derive(Clone, Debug)]
pub struct FixtureModule {
    path: String,
    version: String,
    time: String,
    files: Vec<(String, Vec<u8>)>,
    /// Entries named as they are, not under `<module>@<version>/`.
    raw_entries: Vec<(String, Vec<u8>)>,
    go_mod: Option<String>,
}

impl FixtureModule {
    /// A version whose `go.mod` is `module <path>` and whose zip holds that go.mod plus the files added.
    pub fn new(path: &str, version: &str) -> Self {
        FixtureModule {
            path: path.to_string(),
            version: version.to_string(),
            time: "2024-01-02T03:04:05Z".to_string(),
            files: Vec::new(),
            raw_entries: Vec::new(),
            go_mod: Some(format!("module {path}\n\ngo 1.21\n")),
        }
    }

    /// A small importable package: `package <name>` with `func Version() string` returning the version.
    pub fn package(path: &str, version: &str) -> Self {
        let name = path
            .rsplit('/')
            .next()
            .unwrap_or("x")
            .replace(['-', '.'], "_");
        let source =
            format!("package {name}\n\nfunc Version() string {{ return \"{version}\" }}\n");
        FixtureModule::new(path, version).file(&format!("{name}.go"), source)
    }

    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.to_string(), contents.into()));
        self
    }

    /// An entry of the zip named exactly `name`, not under `<module>@<version>/` (after the files): a zip
    /// that breaks the module zip rules, as a lying upstream serves one.
    pub fn raw_entry(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.raw_entries.push((name.to_string(), contents.into()));
        self
    }

    pub fn with_go_mod(mut self, go_mod: &str) -> Self {
        self.go_mod = Some(go_mod.to_string());
        self
    }

    /// A module without a go.mod (as `+incompatible` versions are): the `.mod` the proxy serves is synthesised.
    pub fn without_go_mod(mut self) -> Self {
        self.go_mod = None;
        self
    }

    pub fn with_time(mut self, time: &str) -> Self {
        self.time = time.to_string();
        self
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn info_json(&self) -> String {
        format!(
            "{{\"Version\":\"{}\",\"Time\":\"{}\"}}\n",
            self.version, self.time
        )
    }

    /// The `.mod` a proxy serves for this version.
    pub fn go_mod(&self) -> String {
        match &self.go_mod {
            Some(go_mod) => go_mod.clone(),
            None => format!("module {}\n", self.path),
        }
    }

    /// A module zip as `golang.org/x/mod/zip` lays it out: every file under `<module>@<version>/`.
    pub fn zip_bytes(&self) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let prefix = format!("{}@{}", self.path, self.version);
        let go_mod = self
            .go_mod
            .as_ref()
            .map(|m| ("go.mod".to_string(), m.clone().into_bytes()));
        let files = go_mod
            .iter()
            .chain(self.files.iter())
            .map(|(name, contents)| (format!("{prefix}/{name}"), contents));
        let raw = self.raw_entries.iter().map(|(name, c)| (name.clone(), c));
        for (name, contents) in files.chain(raw) {
            zip.start_file(name, options).expect("start zip entry");
            zip.write_all(contents).expect("write zip entry");
        }
        zip.finish().expect("finish zip").into_inner()
    }
}

/// `len` bytes that do not compress (an LCG's high bits, the same every call): a file that makes a module
/// zip about that large, for tests that need a zip of some size (ranges, streaming).
pub fn incompressible(len: usize) -> Vec<u8> {
    let mut x = 1u32;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 24) as u8
        })
        .collect()
}

/// Go's case encoding for module paths and versions: every upper-case letter becomes `!` + lower case.
pub fn escape(s: &str) -> String {
    let mut escaped = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            escaped.push('!');
            escaped.push(c.to_ascii_lowercase());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Writes the modules in the GOPROXY layout under `root`: `<escaped path>/@v/<escaped version>.{info,mod,zip}`
/// and `<escaped path>/@v/list` holding every version given for that path, in the order given.
pub fn write_goproxy_tree(root: &Path, modules: &[FixtureModule]) {
    let mut lists: Vec<(String, String)> = Vec::new();
    for module in modules {
        let dir = root.join(escape(&module.path)).join("@v");
        std::fs::create_dir_all(&dir).expect("create @v dir");
        let version = escape(&module.version);
        std::fs::write(dir.join(format!("{version}.mod")), module.go_mod()).expect("write .mod");
        std::fs::write(dir.join(format!("{version}.zip")), module.zip_bytes()).expect("write .zip");
        std::fs::write(dir.join(format!("{version}.info")), module.info_json())
            .expect("write .info");
        let list = dir.join("list").to_string_lossy().into_owned();
        match lists.iter_mut().find(|(path, _)| *path == list) {
            Some((_, versions)) => versions.push_str(&format!("{}\n", module.version)),
            None => lists.push((list, format!("{}\n", module.version))),
        }
    }
    for (path, versions) in lists {
        std::fs::write(path, versions).expect("write list");
    }
}
