//! Writes a GOPROXY tree of fixture modules (real module zips, made by the testkit) for a static server
//! to serve as an upstream: `scripts/fault-runs.sh` uses it.
//!
//! `cargo run --release -p ferry-storage --example goproxy_tree DIR [COUNT [SIZE_KIB]]`: modules
//! `example.com/fault/m00` ... each at `v1.0.0`, each holding SIZE_KIB of bytes that do not compress.
use ferry_testkit::{FixtureModule, write_goproxy_tree};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: goproxy_tree DIR [COUNT [SIZE_KIB]]");
    let count: usize = args.next().map_or(30, |c| c.parse().expect("COUNT"));
    let kib: usize = args.next().map_or(2048, |s| s.parse().expect("SIZE_KIB"));
    let modules: Vec<FixtureModule> = (0..count)
        .map(|n| {
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (n as u64 + 1);
            let data: Vec<u8> = (0..kib * 1024)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            FixtureModule::package(&format!("example.com/fault/m{n:02}"), "v1.0.0")
                .file("data.bin", data)
        })
        .collect();
    write_goproxy_tree(std::path::Path::new(&dir), &modules);
    println!("wrote {count} modules of {kib} KiB to {dir}");
}
