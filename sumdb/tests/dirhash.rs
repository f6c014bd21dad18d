//! `hash_zip`/`hash_go_mod` against the real go command: it downloads fixture modules from a loopback
//! GOPROXY and reports `Sum` and `GoModSum`, which must be the hashes this crate computes.

mod support;

use std::io::Write;

use ferry_sumdb::{DirhashError, hash_go_mod, hash_zip};
use ferry_testkit::{FixtureModule, GoHome, Upstream};

/// Modules whose hashes exercise the format: names whose order differs between byte order and other
/// orders, nested directories, an empty file, a larger file, upper case (escaped paths) and no go.mod.
fn modules() -> Vec<FixtureModule> {
    let mut modules = support::fixture_modules(20);
    modules.push(
        FixtureModule::package("example.com/order", "v0.3.0")
            .file("Z.go", "package order\n")
            .file("a-b.txt", "")
            .file("a/b.txt", "nested\n")
            .file("a.b", "dot\n")
            .file("a0", "zero\n")
            .file("sub/deeper/big.bin", vec![0xa5u8; 300_000]),
    );
    modules
}

#[tokio::test]
async fn hashes_of_module_zips_and_go_mods_equal_the_sums_the_go_command_reports() {
    let modules = modules();
    let upstream = Upstream::start(modules.clone()).await;
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let go = GoHome::new(work.path(), &upstream.url());
    let args = ferry_testkit::mod_download_args(&modules);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = go.run_async(work.path(), &args).await;

    let mut checked = 0;
    for download in serde_json::Deserializer::from_str(&output).into_iter::<serde_json::Value>() {
        let download = download.expect("go printed JSON");
        let field = |name: &str| download[name].as_str().unwrap_or_default().to_string();
        let (path, version) = (field("Path"), field("Version"));
        assert_eq!(field("Error"), "", "{path}@{version}");
        let module = modules
            .iter()
            .find(|m| m.path() == path && m.version() == version)
            .unwrap_or_else(|| panic!("go downloaded {path}@{version}, not a fixture"));

        // The zip go downloaded (into its module cache) and the fixture's own bytes hash alike.
        let zip = hash_zip(std::path::Path::new(&field("Zip")), &path, &version).unwrap();
        assert_eq!(zip, field("Sum"), "{path}@{version} zip");
        let copy = work.path().join(format!("fixture-{checked}.zip"));
        std::fs::write(&copy, module.zip_bytes()).unwrap();
        assert_eq!(hash_zip(&copy, &path, &version).unwrap(), zip);

        assert_eq!(
            hash_go_mod(module.go_mod().as_bytes()),
            field("GoModSum"),
            "{path}@{version} go.mod"
        );
        assert_eq!(
            hash_go_mod(&std::fs::read(field("GoMod")).unwrap()),
            field("GoModSum")
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        modules.len(),
        "go reported every module:\n{output}"
    );
}

fn zip_of(entries: &[(&str, &str)]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, contents) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(contents.as_bytes()).unwrap();
    }
    file.write_all(&zip.finish().unwrap().into_inner()).unwrap();
    file
}

#[test]
fn a_zip_that_is_not_a_module_zip_for_that_version_gets_no_hash() {
    let outside = zip_of(&[
        ("example.com/a@v1.0.0/go.mod", "module example.com/a\n"),
        ("evil.go", ""),
    ]);
    let err = hash_zip(outside.path(), "example.com/a", "v1.0.0").unwrap_err();
    assert!(
        matches!(&err, DirhashError::NotAModuleZip { reason, .. } if reason.contains("\"evil.go\" is not under example.com/a@v1.0.0/")),
        "{err}"
    );
    let other_version = zip_of(&[("example.com/a@v1.0.0/go.mod", "module example.com/a\n")]);
    assert!(hash_zip(other_version.path(), "example.com/a", "v1.0.1").is_err());
    let not_zip = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::write(not_zip.path(), "not a zip").unwrap();
    let err = hash_zip(not_zip.path(), "example.com/a", "v1.0.0").unwrap_err();
    assert!(matches!(err, DirhashError::Zip { .. }), "{err}");
}

/// Go's `size_is_a_lie` case (TestUnzipSizeLimitsSpecial, zip/zip_test.go of golang.org/x/mod): a go.mod
/// of 0x0BAD zeros whose headers declare 0x00AC bytes (and one that declares a byte more). Go's zip reader
/// fails both ("not a valid zip file"), so the go command never hashes or extracts them; nor does Ferry.
#[test]
fn a_file_whose_data_is_not_its_declared_size_gets_no_hash() {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("example.com/m@v1.0.0/go.mod", deflated)
        .unwrap();
    zip.write_all(&[0u8; 0x0BAD]).unwrap();
    let honest = zip.finish().unwrap().into_inner();
    let lie = |declared: [u8; 2]| {
        // The size is stored twice (local header and central directory), little-endian, as Go's test finds it.
        let mut bytes = honest.clone();
        let spots: Vec<usize> = bytes
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == [0xAD, 0x0B])
            .map(|(i, _)| i)
            .collect();
        assert_eq!(spots.len(), 2, "the size appears twice");
        for at in spots {
            bytes[at..at + 2].copy_from_slice(&declared);
        }
        let mut file = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        file.write_all(&bytes).unwrap();
        file
    };
    let honest_file = lie([0xAD, 0x0B]);
    assert!(hash_zip(honest_file.path(), "example.com/m", "v1.0.0").is_ok());
    for declared in [[0xAC, 0x00], [0xAE, 0x0B]] {
        let lying = lie(declared);
        let err = hash_zip(lying.path(), "example.com/m", "v1.0.0").unwrap_err();
        // The zip crate stops reading past the declared size itself; a file short of it is ours to catch.
        assert!(err.to_string().contains("declare"), "{err}");
    }
}
