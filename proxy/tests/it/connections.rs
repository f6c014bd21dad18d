//! Connections that do nothing useful are closed, so they cannot crowd out the clients that do: silent
//! sockets, partial HTTP/2 prefaces, idle keep-alive connections, clients that stop reading a response;
//! and the connection cap makes newcomers wait rather than exhaust the process.

use std::time::Duration;

use ferry::{Proxy, ServerSettings};
use ferry_testkit::FixtureModule;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Ferry, get, memory_store, save};

fn settings(header_read_timeout: Duration, max_connections: usize) -> ServerSettings {
    ServerSettings {
        header_read_timeout,
        send_timeout: Duration::from_secs(1),
        max_connections,
        ..ServerSettings::default()
    }
}

async fn ferry_with(settings: ServerSettings) -> Ferry {
    Ferry::start_with(std::sync::Arc::new(Proxy::new(memory_store())), settings).await
}

/// Reads until the server closes the connection (at most 10 s); returns what was read.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut read = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut read))
        .await
        .expect("the server closes the connection within 10 s")
        .ok();
    read
}

#[tokio::test]
async fn silent_half_spoken_and_idle_connections_are_closed_after_the_header_read_timeout() {
    let ferry = ferry_with(settings(Duration::from_millis(500), 100)).await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for (what, sent) in [
        ("a silent socket", &b""[..]),
        ("half an HTTP/2 preface", &preface[..10]),
        ("an HTTP/2 preface and then nothing", &preface[..]),
        (
            "half an HTTP/1 request head",
            b"GET /healthz HTTP/1.1\r\nHo",
        ),
    ] {
        let mut stream = TcpStream::connect(ferry.addr).await.unwrap();
        stream.write_all(sent).await.unwrap();
        until_closed(&mut stream).await;
        eprintln!("closed: {what}");
    }

    // A keep-alive connection is closed once it stays idle after its answer.
    let mut stream = TcpStream::connect(ferry.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(until_closed(&mut stream).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_silent_sockets_do_not_keep_a_health_check_out() {
    let ferry = ferry_with(settings(Duration::from_secs(30), 16_384)).await;
    let mut silent = Vec::new();
    for _ in 0..500 {
        silent.push(TcpStream::connect(ferry.addr).await.unwrap());
    }
    let health = tokio::time::timeout(
        Duration::from_secs(5),
        get(&format!("{}/healthz", ferry.url())),
    )
    .await
    .expect("a health check is answered while 500 sockets stay silent");
    assert_eq!(health.status, 200);
    drop(silent);
    ferry.stop().await;
}

#[tokio::test]
async fn at_the_connection_cap_a_newcomer_waits_until_a_silent_connection_is_closed() {
    let ferry = ferry_with(settings(Duration::from_secs(2), 2)).await;
    let _silent = [
        TcpStream::connect(ferry.addr).await.unwrap(),
        TcpStream::connect(ferry.addr).await.unwrap(),
    ];
    let mut newcomer = TcpStream::connect(ferry.addr).await.unwrap();
    newcomer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), newcomer.read(&mut first)).await;
    assert!(early.is_err(), "no answer while both slots are taken");
    let answer = String::from_utf8(until_closed(&mut newcomer).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_zip_is_dropped_after_the_send_timeout() {
    // Incompressible content, so the zip is as large as its file: far more than the socket buffers hold.
    let mut noise = Vec::with_capacity(32 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 32 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    let fixture = FixtureModule::package("example.com/big", "v1.0.0").file("noise.bin", noise);
    let ferry = ferry_with(settings(Duration::from_secs(30), 100)).await;
    save(ferry.store().as_ref(), &fixture).await;
    let zip_len = fixture.zip_bytes().len();

    let mut stalled = TcpStream::connect(ferry.addr).await.unwrap();
    stalled
        .write_all(b"GET /example.com/big/@v/v1.0.0.zip HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 64];
    stalled.read_exact(&mut head).await.unwrap();
    assert!(head.starts_with(b"HTTP/1.1 200"));
    // The client stops reading; after the send timeout the server gives up on it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rest = until_closed(&mut stalled).await;
    assert!(
        rest.len() + head.len() < zip_len,
        "the connection was closed before the whole zip ({zip_len} bytes) was sent: got {}",
        rest.len() + head.len()
    );

    // Everyone else is served as before.
    let reply = get(&format!("{}/example.com/big/@v/v1.0.0.zip", ferry.url())).await;
    assert_eq!(reply.body.len(), zip_len);
    ferry.stop().await;
}
