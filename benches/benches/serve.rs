//! Ferry serving from its store, through the real server over loopback (`ferry::run` on `127.0.0.1:0`,
//! driven by a pooled hyper client), next to its ceiling: the same bytes from a bare hyper handler with no
//! storage. Each group holds `ceiling` and one benchmark per backend (memory, file, and s3 / gcs when their
//! test servers are configured), so each figure reads as a fraction of what the HTTP stack alone does.
//!
//! Groups: `info/c1`, `info/c64`, `mod/c1`, `mod/c64` (requests/s), `zip-1MiB/c1`, `zip-1MiB/c16`,
//! `zip-64MiB/c1`, `zip-64MiB/c16` (bytes/s; `s3-store-only`/`gcs-store-only` read the zip through
//! `ModuleStoreExt::zip` without HTTP), `revalidate-304/c64`, `list/c64`, `latest/c64`.
//! `cN` is N requests in flight (N pooled connections); one iteration is one request per connection.
//!
//!     cargo bench -p ferry-benches --bench serve [-- FILTER] [--measurement-time S] [--warm-up-time S]

use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use ferry_benches::{
    Backend, Fixture, MIB, OpenStore, Probe, Routes, SMALL_MODULE, Server, capture, client, drive,
    drive_store_zip, runtime, small_modules, zip_module,
};
use ferry_storage::ModuleStore;
use tokio::runtime::Runtime;

/// A server to measure: the ceiling, or Ferry over one backend's store.
struct Target {
    name: &'static str,
    server: Server,
    store: Option<OpenStore>,
}

struct Bench {
    /// The small module's versions; the first one's `.info` and `.mod` are measured.
    small: Vec<Fixture>,
    zips: [(&'static str, Fixture); 2],
    routes: Routes,
    /// The ceiling first, then Ferry on each backend present.
    targets: Vec<Target>,
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let runtime = runtime();
    let bench = runtime.block_on(Bench::start());
    bench.small_files(&mut criterion, &runtime);
    bench.zips(&mut criterion, &runtime);
    bench.revalidation(&mut criterion, &runtime);
    bench.listings(&mut criterion, &runtime);
    runtime.block_on(bench.stop());
    criterion.final_summary();
}

impl Bench {
    async fn start() -> Bench {
        let small: Vec<Fixture> = small_modules().iter().map(Fixture::build).collect();
        let zips = [
            (
                "zip-1MiB",
                Fixture::build(&zip_module("example.com/zip1m", MIB)),
            ),
            (
                "zip-64MiB",
                Fixture::build(&zip_module("example.com/zip64m", 64 * MIB)),
            ),
        ];
        let mut targets = Vec::new();
        for backend in Backend::ALL {
            let Some(open) = backend.open() else {
                eprintln!(
                    "serve: no {} benchmarks (its test server is not configured)",
                    backend.name()
                );
                continue;
            };
            for fixture in small.iter().chain(zips.iter().map(|(_, f)| f)) {
                fixture.save_into(&*open.store).await;
            }
            targets.push(Target {
                name: backend.name(),
                server: Server::ferry(open.store.clone()).await,
                store: Some(open),
            });
        }
        let first = &small[0];
        let mut paths = vec![
            first.path("info"),
            first.path("mod"),
            format!("/{SMALL_MODULE}/@v/list"),
            format!("/{SMALL_MODULE}/@latest"),
        ];
        paths.extend(zips.iter().map(|(_, zip)| zip.path("zip")));
        // The memory backend is always there; the ceiling serves what it answered.
        let routes = capture(&client(), &targets[0].server, &paths).await;
        for (_, zip) in &zips {
            assert_eq!(
                routes[&zip.path("zip")].body,
                zip.zip,
                "Ferry serves the stored zip"
            );
        }
        let ceiling = Target {
            name: "ceiling",
            server: Server::ceiling(routes.clone()).await,
            store: None,
        };
        targets.insert(0, ceiling);
        Bench {
            small,
            zips,
            routes,
            targets,
        }
    }

    fn small_files(&self, criterion: &mut Criterion, runtime: &Runtime) {
        for ext in ["info", "mod"] {
            let path = self.small[0].path(ext);
            for concurrency in [1, 64] {
                let mut group = criterion.benchmark_group(format!("{ext}/c{concurrency}"));
                group.throughput(Throughput::Elements(concurrency as u64));
                self.each_target(&mut group, runtime, concurrency, &path, None);
                group.finish();
            }
        }
    }

    fn zips(&self, criterion: &mut Criterion, runtime: &Runtime) {
        for (name, zip) in &self.zips {
            let path = zip.path("zip");
            for concurrency in [1, 16] {
                let mut group = criterion.benchmark_group(format!("{name}/c{concurrency}"));
                group.throughput(Throughput::Bytes((concurrency * zip.zip.len()) as u64));
                group.sample_size(10);
                if zip.zip.len() > 8 * MIB {
                    // An iteration of 16 × 64 MiB takes a second or more: the same count in every sample.
                    group.sampling_mode(SamplingMode::Flat);
                }
                self.each_target(&mut group, runtime, concurrency, &path, None);
                for target in &self.targets {
                    let Some(open) = &target.store else { continue };
                    if matches!(open.backend, Backend::S3 | Backend::Gcs) {
                        let store: &Arc<dyn ModuleStore> = &open.store;
                        group.bench_function(format!("{}-store-only", target.name), |b| {
                            b.iter_custom(|rounds| {
                                runtime.block_on(drive_store_zip(store, zip, concurrency, rounds))
                            })
                        });
                    }
                }
                group.finish();
            }
        }
    }

    /// `If-None-Match` with the 1 MiB zip's ETag: a 304 and no body.
    fn revalidation(&self, criterion: &mut Criterion, runtime: &Runtime) {
        let path = self.zips[0].1.path("zip");
        let etag = self.routes[&path]
            .etag
            .clone()
            .expect("Ferry gives a zip an ETag");
        let mut group = criterion.benchmark_group("revalidate-304/c64");
        group.throughput(Throughput::Elements(64));
        self.each_target(&mut group, runtime, 64, &path, Some(etag));
        group.finish();
    }

    /// `list` and `@latest` of a module with ten stored versions.
    fn listings(&self, criterion: &mut Criterion, runtime: &Runtime) {
        for (name, path) in [
            ("list", format!("/{SMALL_MODULE}/@v/list")),
            ("latest", format!("/{SMALL_MODULE}/@latest")),
        ] {
            let mut group = criterion.benchmark_group(format!("{name}/c64"));
            group.throughput(Throughput::Elements(64));
            self.each_target(&mut group, runtime, 64, &path, None);
            group.finish();
        }
    }

    /// One benchmark per target: `concurrency` requests in flight for `path`, each checked against the
    /// answer Ferry gave when the ceiling was captured.
    fn each_target(
        &self,
        group: &mut BenchmarkGroup<'_, WallTime>,
        runtime: &Runtime,
        concurrency: usize,
        path: &str,
        if_none_match: Option<http::HeaderValue>,
    ) {
        for target in &self.targets {
            let uri = target.server.uri(path);
            let probe = match &if_none_match {
                Some(etag) => Probe::revalidate(uri, etag.clone()),
                None => Probe::get(uri, self.routes[path].body.len()),
            };
            let client = client();
            group.bench_function(target.name, |b| {
                b.iter_custom(|rounds| {
                    runtime.block_on(drive(&client, &probe, concurrency, rounds))
                })
            });
        }
    }

    async fn stop(self) {
        for target in self.targets {
            target.server.stop().await;
            if let Some(open) = target.store
                && matches!(open.backend, Backend::S3 | Backend::Gcs)
            {
                // Leave the test bucket as it was.
                for zip in self.zips.iter().map(|(_, zip)| zip) {
                    let _ = open
                        .store
                        .delete(&zip.module_path(), &zip.version_value())
                        .await;
                }
                for small in &self.small {
                    let _ = open
                        .store
                        .delete(&small.module_path(), &small.version_value())
                        .await;
                }
            }
        }
    }
}
