//! What fsync costs a cold fill on a `file://` store: saves of fresh versions (the fetcher's zip file
//! linked into place, as a fill does), with fsync on and off, interleaved in one run, on the same disk.
//!
//! `cargo run --release -p ferry-storage --example save_cost [DIR [ROUNDS]]` (DIR defaults to
//! `target/save-cost`; it is emptied first and removed at the end).
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{FileConfig, ModuleStoreExt, VersionFiles, ZipSource};

/// Zip sizes to try: a small module, a typical one, a large one.
const SIZES: [usize; 3] = [16 * 1024, 512 * 1024, 16 * 1024 * 1024];

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/save-cost".into()));
    let rounds: usize = args.next().map_or(40, |r| r.parse().expect("ROUNDS"));
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.join("store");
    let durable = FileConfig { root: root.clone() }.open_store().unwrap();
    let fast = FileConfig { root: root.clone() }
        .open_store()
        .unwrap()
        .with_fsync(false);
    println!(
        "save_cost: {rounds} saves per size and mode, store {}",
        root.display()
    );
    println!("zip size   fsync on (median)   fsync off (median)   ratio");
    for size in SIZES {
        let mut on = Vec::new();
        let mut off = Vec::new();
        for round in 0..rounds {
            for (mode, store, samples) in [("on", &durable, &mut on), ("off", &fast, &mut off)] {
                // A fresh zip file each time, written (and not synced) as the fetcher leaves it.
                let zip = dir.join(format!("fetched-{size}-{mode}-{round}.zip"));
                let data: Vec<u8> = (0..size).map(|i| (i * 31 + round) as u8).collect();
                std::fs::write(&zip, &data).unwrap();
                let module =
                    ModulePath::new(&format!("example.com/cost{size}/{mode}/m{round}")).unwrap();
                let version = Version::new("v1.0.0").unwrap();
                let files = VersionFiles {
                    info: Bytes::from_static(b"{\"Version\":\"v1.0.0\"}\n"),
                    go_mod: Bytes::from(format!("module {module}\n")),
                    zip: Some(ZipSource::File(zip.clone())),
                };
                let started = Instant::now();
                store.save(&module, &version, files).await.unwrap();
                samples.push(started.elapsed());
                std::fs::remove_file(&zip).unwrap();
            }
        }
        let (on, off) = (median(on), median(off));
        println!(
            "{:>7} KiB   {:>14.2} ms   {:>15.2} ms   {:>5.1}x",
            size / 1024,
            on.as_secs_f64() * 1e3,
            off.as_secs_f64() * 1e3,
            on.as_secs_f64() / off.as_secs_f64()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
