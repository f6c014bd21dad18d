//! Zip read throughput from S3: `ObjectModuleStore::zip` (what Ferry serves) against a raw
//! `object_store` GET of the same object from the same server.
//!
//!     scripts/test-servers.sh start && eval "$(scripts/test-servers.sh env)"
//!     cargo run --release -p ferry-storage --example zip_throughput [SIZE_MB [ROUNDS]]
//!
//! It stores one SIZE_MB (default 256) zip under a fresh prefix of the test bucket, reads it ROUNDS
//! (default 6, even so each goes first equally often) times each way, alternating, prints MB/s per round and the medians, and deletes it.
use std::time::Instant;

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{Environment, StorageConfig, StorageOptions, VersionFiles, ZipSource};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;

const MB: usize = 1_000_000;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/test-servers.sh start and eval \"$(scripts/test-servers.sh env)\"")
    })
}

/// Drains a stream of chunks, returning the byte count and the MB/s.
async fn drain<E: std::fmt::Debug>(
    mut stream: futures::stream::BoxStream<'static, Result<Bytes, E>>,
    started: Instant,
) -> (usize, f64) {
    let mut total = 0;
    while let Some(chunk) = stream.next().await {
        total += chunk.expect("read").len();
    }
    (
        total,
        total as f64 / MB as f64 / started.elapsed().as_secs_f64(),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let size_mb: usize = args.next().map_or(256, |a| a.parse().expect("SIZE_MB"));
    let rounds: usize = args.next().map_or(6, |a| a.parse().expect("ROUNDS"));
    let (endpoint, bucket) = (var("FERRY_TEST_S3_ENDPOINT"), var("FERRY_TEST_S3_BUCKET"));
    let (key_id, secret) = (
        var("FERRY_TEST_S3_ACCESS_KEY_ID"),
        var("FERRY_TEST_S3_SECRET_ACCESS_KEY"),
    );
    let prefix = format!("bench-{}", std::process::id());

    let env: Environment = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
    ]
    .into_iter()
    .collect();
    let url = format!("s3://{bucket}/{prefix}");
    let store = StorageConfig::from_url_with(&url, &StorageOptions::default(), &env)
        .unwrap()
        .open()
        .unwrap();
    let raw = AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(&bucket)
        .with_access_key_id(&key_id)
        .with_secret_access_key(&secret)
        .build()
        .unwrap();

    let (m, v) = (
        ModulePath::new("example.com/bench").unwrap(),
        Version::new("v1.0.0").unwrap(),
    );
    let chunk = Bytes::from((0..MB).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let files = VersionFiles {
        info: Bytes::from_static(b"{\"Version\":\"v1.0.0\",\"Time\":\"2024-01-02T03:04:05Z\"}"),
        go_mod: Bytes::from_static(b"module example.com/bench\n"),
        zip: ZipSource::Stream(
            futures::stream::iter((0..size_mb).map(move |_| Ok(chunk.clone()))).boxed(),
        ),
    };
    let started = Instant::now();
    store.save(&m, &v, files).await.unwrap();
    let upload = size_mb as f64 / started.elapsed().as_secs_f64();
    println!("stored a {size_mb} MB zip in s3://{bucket}/{prefix} at {upload:.0} MB/s");
    let key = Path::from(format!("{prefix}/example.com/bench/@v/v1.0.0.zip"));

    let (mut ferry, mut direct) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Alternate which goes first, so neither always reads a warmer server.
        for ferry_first in [round % 2 == 1, round % 2 == 0] {
            let started = Instant::now();
            let (bytes, rate) = if ferry_first {
                drain(store.zip(&m, &v).await.unwrap().stream, started).await
            } else {
                drain(raw.get(&key).await.unwrap().into_stream(), started).await
            };
            assert_eq!(bytes, size_mb * MB);
            if ferry_first { &mut ferry } else { &mut direct }.push(rate);
        }
        println!(
            "round {round}: ObjectModuleStore::zip {:.0} MB/s, object_store GET {:.0} MB/s",
            ferry[round - 1],
            direct[round - 1]
        );
    }
    // The machine's load drifts between rounds; the ratio within a round (both reads back to back) drifts
    // less than either rate.
    let ratio = median(ferry.iter().zip(&direct).map(|(f, d)| f / d).collect());
    let (ferry, direct) = (median(ferry), median(direct));
    println!(
        "median over {rounds} rounds: ObjectModuleStore::zip {ferry:.0} MB/s, object_store GET {direct:.0} MB/s; \
         median per-round ratio {:+.1} %",
        (ratio - 1.0) * 100.0
    );
    store.delete(&m, &v).await.unwrap();
}
