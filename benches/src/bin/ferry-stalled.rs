//! Clients that stop reading: the tool behind `benches/stalled.sh`.
//!
//!     ferry-stalled ADDR PATH HTTP1_READERS H2_CONNECTIONS H2_STREAMS SERVER_PID SECONDS
//!
//! Opens HTTP1_READERS HTTP/1.1 connections (raw sockets) and H2_CONNECTIONS h2c connections with H2_STREAMS
//! streams each, all asking for PATH (a large zip); reads each response's first bytes and then nothing. For
//! SECONDS it prints, every second, the server's resident memory (VmRSS, and VmHWM, the peak), its open
//! sockets, and how many h2c connections it has dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, http1, h2_connections, h2_streams, pid, seconds] = &args[..] else {
        eprintln!(
            "usage: ferry-stalled ADDR PATH HTTP1_READERS H2_CONNECTIONS H2_STREAMS SERVER_PID SECONDS"
        );
        std::process::exit(2);
    };
    let number = |s: &str| s.parse::<usize>().expect("a whole number");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(stall(
        addr.clone(),
        path.clone(),
        number(http1),
        number(h2_connections),
        number(h2_streams),
        pid.clone(),
        number(seconds),
    ));
}

async fn stall(
    addr: String,
    path: String,
    http1: usize,
    h2_connections: usize,
    h2_streams: usize,
    pid: String,
    seconds: usize,
) {
    let opened = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut held = Vec::new();
    for _ in 0..http1 {
        let (addr, path, opened) = (addr.clone(), path.clone(), opened.clone());
        held.push(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // A raw socket: the request, the first bytes of the answer, then nothing read at all (an HTTP
            // client library would read ahead into its own buffers and never let the server stall).
            let mut stream = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            stream
                .write_all(request.as_bytes())
                .await
                .expect("send the request");
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await.expect("a status line");
            opened.fetch_add(1, Ordering::Relaxed);
            // Held, never read, until the end; whether Ferry still holds its side is counted from its
            // file descriptors.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(stream);
        }));
    }
    for _ in 0..h2_connections {
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2c handshake");
        let dropped_connection = dropped.clone();
        let streams = h2_streams;
        held.push(tokio::spawn(async move {
            let _ = connection.await;
            dropped_connection.fetch_add(streams, Ordering::Relaxed);
        }));
        for _ in 0..h2_streams {
            let (mut sender, path, addr, opened) =
                (sender.clone(), path.clone(), addr.clone(), opened.clone());
            held.push(tokio::spawn(async move {
                let uri = format!("http://{addr}{path}");
                let request = http::Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
                if let Ok(response) = sender.send_request(request).await {
                    opened.fetch_add(1, Ordering::Relaxed);
                    // Held, never read, until the end.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    let _ = response.into_body().frame().await;
                }
            }));
        }
    }
    for second in 1..=seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map_or("?".to_string(), |v| v.trim().to_string())
        };
        let sockets = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        });
        println!(
            "{second:>3} s: stalled responses opened {:>5}; h2 connections dropped by ferry {:>3}; ferry sockets {:>5}, VmRSS {:>10}, VmHWM {:>10}",
            opened.load(Ordering::Relaxed),
            dropped.load(Ordering::Relaxed) / h2_streams.max(1),
            sockets,
            field("VmRSS:"),
            field("VmHWM:"),
        );
    }
    held.iter().for_each(tokio::task::JoinHandle::abort);
}
