//! What each request for a version's file costs the ledger (`ferry::ledger::Ledger`, no I/O): the check
//! for a deleted or blocked version and the record of its last use.
//!
//!     cargo bench -p ferry-benches --bench ledger
//!
//! `removal_none`: nothing deleted or blocked (one atomic load). `removal_some`: 1,000 versions blocked,
//! the one asked for not among them (a lookup in the map of removed versions). `touch_again`: a version
//! served before in the interval (two lookups by `&str`, no allocation). `touch_first`: a version not yet
//! served in the interval (its names copied once). Compare with the CPU time of one warm `.mod` request
//! (`benches/load.sh`: about 70,000 a second on this machine's 2 cores, so about 28 µs of CPU each).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use ferry::ledger::{Ledger, LedgerSettings};
use ferry_module::{ModulePath, Version};
use ferry_storage::StorageConfig;

fn ledger() -> Arc<Ledger> {
    let store = StorageConfig::Memory.open().expect("a memory store");
    Arc::new(Ledger::new(store.records(), LedgerSettings::default()))
}

fn bench(criterion: &mut Criterion) {
    let module = ModulePath::new("github.com/example/module").unwrap();
    let version = Version::new("v1.2.3").unwrap();
    let quiet = ledger();
    criterion.bench_function("removal_none", |b| {
        b.iter(|| black_box(quiet.removal(black_box(&module), black_box(&version))))
    });
    let blocking = ledger();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for i in 0..1000 {
            let blocked = ModulePath::new(&format!("github.com/blocked/m{i}")).unwrap();
            blocking.block(&blocked, &version, "bench").await.unwrap();
        }
    });
    criterion.bench_function("removal_some", |b| {
        b.iter(|| black_box(blocking.removal(black_box(&module), black_box(&version))))
    });
    let touched = ledger();
    touched.touch(&module, &version);
    criterion.bench_function("touch_again", |b| {
        b.iter(|| touched.touch(black_box(&module), black_box(&version)))
    });
    let versions: Vec<Version> = (0..100_000)
        .map(|i| Version::new(&format!("v0.0.{i}")).unwrap())
        .collect();
    let mut next = 0;
    let fresh = ledger();
    criterion.bench_function("touch_first", |b| {
        b.iter(|| {
            fresh.touch(black_box(&module), &versions[next % versions.len()]);
            next += 1;
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
