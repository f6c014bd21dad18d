//! What coordination adds to a cold fill: the lease's own requests (acquire, the fencing renewal before
//! the `.info`, release), timed against each engine `scripts/test-servers.sh` starts. A warm request
//! takes no lease at all (a stored version is served before any fill), so it costs nothing there.
//!
//! ```sh
//! scripts/test-servers.sh start && eval "$(scripts/test-servers.sh env)"
//! cargo run --release -p ferry --example lease_cost [ROUNDS]
//! ```
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::coordination::bucket::BucketCoordinator;
use ferry::coordination::redis::{RedisAddress, RedisCoordinator};
use ferry::coordination::{Acquired, Coordinator, LeaseKey};
use ferry_module::{ModulePath, Version};
use ferry_storage::StorageConfig;
use ferry_testkit::{CloudServer, azure_server, gcs_server, s3_server, server_vars};

fn bucket(server: &CloudServer) -> Arc<dyn Coordinator> {
    let env = server.env.iter().cloned().collect();
    let config =
        StorageConfig::from_url_with(&server.fresh_url(), &Default::default(), &env).unwrap();
    let leases = config.open_leases().unwrap().unwrap();
    Arc::new(BucketCoordinator::new(leases, "lease-cost".into()))
}

/// Milliseconds at the median and the 90th percentile.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    format!("median {:.2} ms, p90 {:.2} ms", at(0.5), at(0.9))
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let mut engines: Vec<(&str, Arc<dyn Coordinator>)> = Vec::new();
    if let Some(server) = s3_server() {
        engines.push(("storage on s3s-fs", bucket(&server)));
    }
    if let Some(server) = gcs_server() {
        engines.push(("storage on fake-gcs-server", bucket(&server)));
    }
    if let Some(server) = azure_server() {
        engines.push(("storage on Azurite", bucket(&server)));
    }
    if let Some([url]) = server_vars("Redis", ["FERRY_TEST_REDIS_URL"]) {
        let address = RedisAddress::parse(&url).unwrap();
        engines.push((
            "redis",
            Arc::new(RedisCoordinator::new(address, "lease-cost".into())),
        ));
    }
    let time = Duration::from_secs(30);
    for (name, engine) in engines {
        let (mut acquire, mut whole) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let key = LeaseKey {
                module: ModulePath::new("example.com/lease-cost").unwrap(),
                version: Version::new(&format!("v1.0.{round}")).unwrap(),
            };
            let started = Instant::now();
            let Acquired::Lease(lease) = engine.acquire(&key, time).await.unwrap() else {
                panic!("{name}: the lease of a fresh key is held elsewhere");
            };
            acquire.push(started.elapsed());
            assert!(
                engine.renew(&lease, time).await.unwrap(),
                "{name}: fencing renewal"
            );
            engine.release(&lease, true).await.unwrap();
            whole.push(started.elapsed());
        }
        println!(
            "{name}: acquire {}; acquire + fencing renewal + release {} ({rounds} fills)",
            summary(acquire),
            summary(whole)
        );
    }
}
