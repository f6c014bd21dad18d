//! Measures how long loading a 1,000-block download file takes (parsing, validation, compiling
//! and indexing the patterns, and the checks that compare every pair of blocks for warnings):
//! `cargo run --release -p ferry-policy --example load_time`.

use std::time::Instant;

/// (name, pattern of block `{i}`, whether odd blocks redirect without their own downloadURL).
const SHAPES: [(&str, &str, bool); 3] = [
    ("literal_hosts", "git{i}.example/team/*", false),
    ("unindexed", "*/org{i}?/*", false),
    ("redirect_without_url", "*/corp{i}/*", true),
];

fn main() {
    const BLOCKS: usize = 1000;
    const LOADS: u32 = 5;
    for (name, shape, redirects) in SHAPES {
        let mut text = String::from("mode = \"sync\"\ndownloadURL = \"https://top.example\"\n");
        for i in 0..BLOCKS {
            let pattern = shape.replace("{i}", &i.to_string());
            let body = match (redirects, i % 2) {
                (false, _) => "mode = \"none\"".to_owned(),
                (true, 0) => {
                    "mode = \"redirect\"\n  downloadURL = \"https://m.example\"".to_owned()
                }
                (true, _) => "mode = \"redirect\"".to_owned(),
            };
            text.push_str(&format!("download \"{pattern}\" {{\n  {body}\n}}\n"));
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("download.hcl");
        std::fs::write(&path, &text).expect("write the download file");
        let start = Instant::now();
        let mut warnings = 0;
        for _ in 0..LOADS {
            let policy = ferry_policy::load_file(&path).unwrap_or_else(|error| panic!("{error}"));
            warnings = policy.warnings().len();
        }
        println!(
            "{name}: {:?} per load of {BLOCKS} blocks ({warnings} warnings)",
            start.elapsed() / LOADS
        );
    }
}
