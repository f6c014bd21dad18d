//! Zip throughput served by Ferry from S3 (HTTP GET through Ferry, which streams from the bucket) against a
//! direct `object_store` GET of the same object from the same server: Ferry's overhead on the S3 path.
//!
//!     scripts/test-servers.sh start && eval "$(scripts/test-servers.sh env)"
//!     cargo run --release -p ferry --example s3_serve_throughput [SIZE_MB [ROUNDS]]
//!
//! Stores one SIZE_MB (default 256) zip under a fresh prefix of the test bucket, reads it ROUNDS (default 6)
//! times each way, alternating which goes first, and prints MB/s per round, the medians and the ratio.
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ferry_module::{ModulePath, Version};
use ferry_storage::{Environment, StorageConfig, StorageOptions, VersionFiles, ZipSource};
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;

const MB: f64 = 1_000_000.0;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test-servers.sh start and eval \"$(scripts/test-servers.sh env)\""))
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
    let prefix = format!("serve-bench-{}", std::process::id());

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
    let (module, version) = (
        ModulePath::new("example.com/bench").unwrap(),
        Version::new("v1.0.0").unwrap(),
    );
    let chunk = Bytes::from(vec![7u8; 1 << 20]);
    let chunks = (0..size_mb).map(move |_| Ok(chunk.clone()));
    let files = VersionFiles {
        info: Bytes::from_static(b"{\"Version\":\"v1.0.0\",\"Time\":\"2024-01-02T03:04:05Z\"}"),
        go_mod: Bytes::from_static(b"module example.com/bench\n"),
        zip: ZipSource::Stream(futures::stream::iter(chunks).boxed()),
    };
    store
        .save(&module, &version, files)
        .await
        .expect("store the zip");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = Arc::new(ferry::Proxy::new(store.clone()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ferry::run(
        listener,
        proxy,
        ferry::ServerSettings::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let direct = AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(&bucket)
        .with_access_key_id(&key_id)
        .with_secret_access_key(&secret)
        .build()
        .unwrap();
    let key = object_store::path::Path::parse(format!("{prefix}/example.com/bench/@v/v1.0.0.zip"))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let zip_url: http::Uri = format!("http://{addr}/example.com/bench/@v/v1.0.0.zip")
        .parse()
        .unwrap();

    let read_direct = || async {
        let started = Instant::now();
        let mut stream = direct.get(&key).await.unwrap().into_stream();
        let mut total = 0;
        while let Some(chunk) = stream.next().await {
            total += chunk.unwrap().len();
        }
        total as f64 / MB / started.elapsed().as_secs_f64()
    };
    let read_through_ferry = || async {
        let started = Instant::now();
        let mut body = client.get(zip_url.clone()).await.unwrap().into_body();
        let mut total = 0;
        while let Some(frame) = body.frame().await {
            total += frame.unwrap().data_ref().map_or(0, Bytes::len);
        }
        total as f64 / MB / started.elapsed().as_secs_f64()
    };

    let (mut direct_rates, mut ferry_rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (d, f) = if round % 2 == 0 {
            let d = read_direct().await;
            (d, read_through_ferry().await)
        } else {
            let f = read_through_ferry().await;
            (read_direct().await, f)
        };
        println!("round {round}: direct GET {d:.0} MB/s, through Ferry {f:.0} MB/s");
        direct_rates.push(d);
        ferry_rates.push(f);
    }
    let (d, f) = (median(direct_rates), median(ferry_rates));
    println!(
        "{size_mb} MB zip, {rounds} rounds: median direct GET {d:.0} MB/s, through Ferry {f:.0} MB/s ({:+.1} %)",
        (f / d - 1.0) * 100.0
    );

    store.delete(&module, &version).await.unwrap();
    let _ = stop.send(());
    server.await.unwrap();
}
