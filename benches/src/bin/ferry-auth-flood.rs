//! Wrong-password floods and SIGHUPs against a Ferry with `auth_file`: the tool behind
//! `benches/auth-flood.sh`.
//!
//!     ferry-auth-flood users FILE COST LOGINS
//!     ferry-auth-flood flood ADDR PATH RATE SECONDS LOGINS SERVER_PID
//!     ferry-auth-flood sighup ADDR PATH CONNECTIONS SECONDS SIGHUPS SERVER_PID
//!
//! `users` writes an htpasswd file at bcrypt cost COST: `builder`, `alice`, `bob` and `login-1` to
//! `login-LOGINS`, each with the password `USER-password`.
//!
//! `flood` sends RATE requests/s for PATH for SECONDS, each with a new wrong password, as `alice`, `bob`
//! or an unknown name in turn, on pooled HTTP/1.1 connections, not waiting for answers (at most 4096 in
//! flight); meanwhile it logs in as `login-1`, `login-2`, ... one at a time, each a user Ferry has not seen,
//! and times each first login (status 0: no answer within a minute). Prints the flood's answers, the first logins' latencies and the server's
//! resident memory (VmRSS before, and its peak during the flood).
//!
//! `sighup` keeps CONNECTIONS HTTP/1.1 keep-alive connections busy with PATH as `builder` (verified once
//! before they start), for SECONDS in three equal windows: quiet, SIGHUPS SIGHUPs spread evenly, quiet.
//! Prints each window's requests, their p50, p99 and slowest latency, and any answer that is not a 200.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |s: &String| s.parse::<u64>().expect("a whole number");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    match &args[..] {
        [mode, file, cost, logins] if mode == "users" => {
            users(file, number(cost) as u32, number(logins))
        }
        [mode, addr, path, rate, seconds, logins, pid] if mode == "flood" => {
            runtime.block_on(flood(
                addr,
                path,
                number(rate),
                number(seconds),
                number(logins),
                pid,
            ))
        }
        [mode, addr, path, connections, seconds, sighups, pid] if mode == "sighup" => runtime
            .block_on(sighup(
                addr,
                path,
                number(connections),
                number(seconds),
                number(sighups),
                pid,
            )),
        _ => {
            eprintln!(
                "usage: ferry-auth-flood users FILE COST LOGINS | flood ADDR PATH RATE SECONDS LOGINS SERVER_PID | sighup ADDR PATH CONNECTIONS SECONDS SIGHUPS SERVER_PID"
            );
            std::process::exit(2);
        }
    }
}

fn users(file: &str, cost: u32, logins: u64) {
    let names = ["builder", "alice", "bob"]
        .map(String::from)
        .into_iter()
        .chain((1..=logins).map(|n| format!("login-{n}")));
    let lines: Vec<String> = names
        .map(|user| ferry_testkit::htpasswd_line_at_cost(&user, &format!("{user}-password"), cost))
        .collect();
    std::fs::write(file, lines.join("\n") + "\n").expect("write the users file");
}

/// How long a first login is waited for.
const LOGIN_WAIT: Duration = Duration::from_secs(60);

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

type Pooled = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

/// GET `url` as `user`/`password`: the status, or 0 when the request failed.
async fn get(client: &Pooled, url: &str, user: &str, password: &str) -> u16 {
    let request = http::Request::get(url)
        .header("authorization", basic(user, password))
        .body(Empty::new())
        .expect("a request");
    match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            status
        }
        Err(_) => 0,
    }
}

/// The server's resident memory in MB (VmRSS), 0 when it cannot be read.
fn resident_mb(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn flood(addr: &str, path: &str, rate: u64, seconds: u64, logins: u64, pid: &str) {
    let url = format!("http://{addr}{path}");
    let client: Pooled = Client::builder(TokioExecutor::new()).build_http();
    let before = resident_mb(pid);
    // Answers by status: 401, 503, anything else, failed requests, not sent (4096 already in flight).
    let counts: Arc<[AtomicUsize; 5]> = Arc::new(Default::default());
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4096));
    let end = Instant::now() + Duration::from_secs(seconds);
    let sender = {
        let (client, url, counts) = (client.clone(), url.clone(), counts.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
            let mut sent = 0usize;
            while Instant::now() < end {
                tick.tick().await;
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    counts[4].fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                sent += 1;
                let user = match sent % 3 {
                    0 => "alice".to_string(),
                    1 => "bob".to_string(),
                    _ => format!("intruder-{sent}"),
                };
                let (client, url, counts) = (client.clone(), url.clone(), counts.clone());
                tokio::spawn(async move {
                    let status = get(&client, &url, &user, &format!("guess-{sent}")).await;
                    let slot = match status {
                        401 => 0,
                        503 => 1,
                        0 => 3,
                        _ => 2,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            sent
        })
    };
    let mut peak = before;
    let mut logged_in = Vec::new();
    let interval = Duration::from_secs(seconds) / (logins as u32 + 1);
    let mut next_login = Instant::now() + interval;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(resident_mb(pid));
        if Instant::now() >= next_login && (logged_in.len() as u64) < logins {
            let user = format!("login-{}", logged_in.len() + 1);
            // A client of its own: a new connection, as a new builder would open.
            let own: Pooled = Client::builder(TokioExecutor::new()).build_http();
            let started = Instant::now();
            let password = format!("{user}-password");
            // At most a minute (the single queue before issue 19 kept a login for longer): 0 then.
            let status = tokio::time::timeout(LOGIN_WAIT, get(&own, &url, &user, &password))
                .await
                .unwrap_or(0);
            logged_in.push((status, started.elapsed()));
            next_login += interval;
        }
    }
    let sent = sender.await.expect("the flood");
    // The answers still in flight, for at most 10 s.
    let counted = || {
        counts
            .iter()
            .take(4)
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<usize>()
    };
    let drain = Instant::now() + Duration::from_secs(10);
    while counted() < sent && Instant::now() < drain {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(resident_mb(pid));
    }
    let count = |slot: usize| counts[slot].load(Ordering::Relaxed);
    println!(
        "flood: {rate} req/s for {seconds}s, sent {sent}: 401 {}, 503 {}, other {}, failed {}, unanswered {}, not sent (4096 in flight) {}",
        count(0),
        count(1),
        count(2),
        count(3),
        sent - counted(),
        count(4)
    );
    let mut latencies: Vec<Duration> = logged_in.iter().map(|(_, took)| *took).collect();
    latencies.sort();
    let statuses: Vec<u16> = logged_in.iter().map(|(status, _)| *status).collect();
    println!(
        "first logins during the flood: {} (statuses {statuses:?}): median {:.0} ms, slowest {:.0} ms",
        logged_in.len(),
        millis(latencies.get(latencies.len() / 2)),
        millis(latencies.last())
    );
    println!("ferry resident memory: {before:.0} MB before, {peak:.0} MB at its peak");
}

fn millis(duration: Option<&Duration>) -> f64 {
    duration.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// One keep-alive HTTP/1.1 connection asking for `path` as builder until `end`: (start, latency, status)
/// of each request.
async fn keep_asking(
    addr: String,
    path: String,
    origin: Instant,
    end: Instant,
) -> Vec<(Duration, Duration, u16)> {
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let authorization = basic("builder", "builder-password");
    let mut seen = Vec::new();
    while Instant::now() < end {
        let request = http::Request::get(&path)
            .header("host", &addr)
            .header("authorization", &authorization)
            .body(Empty::<Bytes>::new())
            .expect("a request");
        let started = Instant::now();
        let status = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.into_body().collect().await;
                status
            }
            Err(_) => 0,
        };
        seen.push((started - origin, started.elapsed(), status));
        if status == 0 {
            break;
        }
    }
    seen
}

async fn sighup(addr: &str, path: &str, connections: u64, seconds: u64, sighups: u64, pid: &str) {
    let client: Pooled = Client::builder(TokioExecutor::new()).build_http();
    let primed = get(
        &client,
        &format!("http://{addr}{path}"),
        "builder",
        "builder-password",
    )
    .await;
    assert_eq!(primed, 200, "builder's first request");
    let origin = Instant::now();
    let window = Duration::from_secs(seconds) / 3;
    let end = origin + window * 3;
    let workers: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(keep_asking(addr.to_string(), path.to_string(), origin, end)))
        .collect();
    tokio::time::sleep_until((origin + window).into()).await;
    for n in 0..sighups {
        let at = origin + window + window * n as u32 / sighups as u32;
        tokio::time::sleep_until(at.into()).await;
        let killed = std::process::Command::new("kill")
            .args(["-HUP", pid])
            .status()
            .expect("kill");
        assert!(killed.success(), "kill -HUP {pid}");
    }
    let mut seen = Vec::new();
    for worker in workers {
        seen.extend(worker.await.expect("a connection"));
    }
    println!(
        "{connections} connections, {sighups} SIGHUPs spread over the middle {:.1}s of {seconds}s",
        window.as_secs_f64()
    );
    println!(
        "{:<16} {:>9} {:>8} {:>8} {:>9} {:>8}",
        "window", "requests", "p50-ms", "p99-ms", "max-ms", "not-200"
    );
    for (index, name) in ["before", "during-sighups", "after"].iter().enumerate() {
        let from = window * index as u32;
        let to = from + window;
        let mut latencies: Vec<Duration> = Vec::new();
        let mut not_ok = 0;
        for (start, took, status) in &seen {
            if *start >= from && *start < to {
                latencies.push(*took);
                not_ok += usize::from(*status != 200);
            }
        }
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
        };
        println!(
            "{name:<16} {:>9} {:>8.2} {:>8.2} {:>9.2} {not_ok:>8}",
            latencies.len(),
            millis(at(0.5)),
            millis(at(0.99)),
            millis(latencies.last()),
        );
    }
}
