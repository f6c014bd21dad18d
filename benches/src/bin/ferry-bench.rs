//! The small tool behind `benches/load.sh` and the ratios of `benches/README.md`:
//!
//! ```text
//! ferry-bench tree DIR            writes the load harness's store: a GOPROXY tree (= a Ferry file store)
//! ferry-bench zip-tree DIR MIB    a GOPROXY tree of one module, example.com/big@v1.0.0, whose zip is MIB
//!                                 MiB of incompressible data (benches/stream.sh's upstream)
//! ferry-bench free-port           prints a 127.0.0.1 port nothing listens on
//! ferry-bench table DIR           one table from DIR/<target>.<server>.json (oha's JSON output), or
//!                                 from the slices <target>.<server>.<k>.json and .durations
//!                                 (benches/load.sh's LOAD_SLICES)
//! ferry-bench delay-proxy --to URL --delay DURATION --log FILE
//!                                 forwards to URL after DURATION per request (benches/graph.sh's upstream
//!                                 made further away), one `STATUS PATH` line per request in FILE
//! ferry-bench ratios [DIR]        each criterion result of `cargo bench -p ferry-benches --bench serve`
//!                                 (DIR: target/criterion) as a fraction of its group's ceiling
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferry_benches::{MIB, SMALL_MODULE, small_modules, zip_module};
use serde_json::Value;

/// The load targets: a name, the request path, and the file the `tree` writes for it.
const LOAD_TARGETS: [(&str, &str); 4] = [
    ("mod", "/example.com/small/@v/v1.0.0.mod"),
    ("info", "/example.com/small/@v/v1.0.0.info"),
    ("zip-1MiB", "/example.com/zip1m/@v/v1.0.0.zip"),
    ("zip-32MiB", "/example.com/zip32m/@v/v1.0.0.zip"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["tree", dir] => {
            tree(Path::new(dir));
            Ok(())
        }
        ["zip-tree", dir, mib] => zip_tree(Path::new(dir), mib),
        ["free-port"] => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            println!("{}", listener.local_addr().expect("an address").port());
            Ok(())
        }
        ["targets"] => {
            for (name, path) in LOAD_TARGETS {
                println!("{name} {path}");
            }
            Ok(())
        }
        ["table", dir] => table(Path::new(dir)),
        ["delay-proxy", "--to", to, "--delay", delay, "--log", log] => delay_proxy(to, delay, log),
        ["ratios"] => ratios(Path::new("target/criterion")),
        ["ratios", dir] => ratios(Path::new(dir)),
        _ => Err(
            "usage: ferry-bench tree DIR | zip-tree DIR MIB | free-port | targets | table DIR | ratios [DIR] | \
             delay-proxy --to URL --delay DURATION --log FILE"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ferry-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn delay_proxy(to: &str, delay: &str, log: &str) -> Result<(), String> {
    let delay = humantime::parse_duration(delay).map_err(|e| format!("--delay {delay}: {e}"))?;
    ferry_benches::runtime().block_on(ferry_benches::delay_proxy::run(to, delay, Path::new(log)))
}

/// The small module's versions, a 1 MiB and a 32 MiB zip, in the GOPROXY layout under `dir`.
fn tree(dir: &Path) {
    let mut modules = small_modules();
    modules.push(zip_module("example.com/zip1m", MIB));
    modules.push(zip_module("example.com/zip32m", 32 * MIB));
    if std::env::var_os("FERRY_BENCH_ZIP64").is_some() {
        // For benches/stalled.sh: the issue's stalled readers hold a 64 MB zip.
        modules.push(zip_module("example.com/zip64m", 64 * MIB));
    }
    ferry_testkit::write_goproxy_tree(dir, &modules);
    assert!(dir.join(SMALL_MODULE).join("@v/list").is_file());
}

/// One module with a zip of `mib` MiB, in the GOPROXY layout under `dir`.
fn zip_tree(dir: &Path, mib: &str) -> Result<(), String> {
    let mib: usize = mib
        .parse()
        .map_err(|e| format!("zip-tree: MIB {mib:?}: {e}"))?;
    ferry_testkit::write_goproxy_tree(dir, &[zip_module("example.com/big", mib * MIB)]);
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn number(value: &Value, pointer: &str, file: &Path) -> Result<f64, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("{}: no number at {pointer}", file.display()))
}

/// One load run as oha reports it, or the slices of one added up (`LOAD_SLICES`).
struct Run {
    requests_per_sec: f64,
    bytes_per_sec: f64,
    p99_ms: f64,
    /// The server's CPU time per request (user and system, every process and thread of it), in
    /// microseconds, when load.sh recorded it (`NAME.SERVER.cpu`: CPU seconds over the run).
    cpu_us: Option<f64>,
}

/// What one oha report counted: requests, bytes and seconds, and its p99.
struct Slice {
    requests: f64,
    bytes: f64,
    seconds: f64,
    p99_ms: f64,
}

fn load_slice(file: &Path) -> Result<Slice, String> {
    let json = read_json(file)?;
    // A run that got anything but 200s measured the wrong thing.
    let codes = json
        .get("statusCodeDistribution")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{}: no statusCodeDistribution", file.display()))?;
    if codes.is_empty() || codes.keys().any(|code| code != "200") {
        return Err(format!(
            "{}: statuses {codes:?}, want only 200",
            file.display()
        ));
    }
    // oha cuts the requests in flight when its duration ends ("aborted due to deadline"): not a fault.
    if let Some(errors) = json.get("errorDistribution").and_then(Value::as_object)
        && errors
            .keys()
            .any(|error| error != "aborted due to deadline")
    {
        return Err(format!("{}: errors {errors:?}", file.display()));
    }
    let seconds = number(&json, "/summary/total", file)?;
    Ok(Slice {
        requests: seconds * number(&json, "/summary/requestsPerSec", file)?,
        bytes: seconds * number(&json, "/summary/sizePerSec", file)?,
        seconds,
        p99_ms: number(&json, "/latencyPercentiles/p99", file)? * 1000.0,
    })
}

/// The run of `server` on target `name` in `dir`: `NAME.SERVER.json`, or the slices `NAME.SERVER.1.json`,
/// `NAME.SERVER.2.json`, ... added up, their p99 that of every request of theirs (`NAME.SERVER.durations`,
/// one duration in seconds a line); `None` when the server did not run the target.
fn load_run(dir: &Path, name: &str, server: &str) -> Result<Option<Run>, String> {
    let whole = dir.join(format!("{name}.{server}.json"));
    let slices: Vec<Slice> = if whole.exists() {
        vec![load_slice(&whole)?]
    } else {
        (1..)
            .map(|k| dir.join(format!("{name}.{server}.{k}.json")))
            .take_while(|file| file.exists())
            .map(|file| load_slice(&file))
            .collect::<Result<_, _>>()?
    };
    if slices.is_empty() {
        return Ok(None);
    }
    let requests: f64 = slices.iter().map(|s| s.requests).sum();
    let seconds: f64 = slices.iter().map(|s| s.seconds).sum();
    let p99_ms = if let [one] = &slices[..] {
        one.p99_ms
    } else {
        let file = dir.join(format!("{name}.{server}.durations"));
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let durations = text
            .lines()
            .map(|line| line.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        percentile(durations, 0.99).ok_or_else(|| format!("{}: no requests", file.display()))?
            * 1000.0
    };
    Ok(Some(Run {
        requests_per_sec: requests / seconds,
        bytes_per_sec: slices.iter().map(|s| s.bytes).sum::<f64>() / seconds,
        p99_ms,
        cpu_us: cpu_seconds(&dir.join(format!("{name}.{server}.cpu")))
            .map(|cpu| cpu * 1e6 / requests.max(1.0)),
    }))
}

/// The `p` quantile (0 to 1) of `values`, the nearest rank's (`None` when there are none).
fn percentile(mut values: Vec<f64>, p: f64) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let rank = ((p * values.len() as f64).ceil() as usize).max(1);
    values.get(rank - 1).copied()
}

/// The CPU seconds in a load run's `.cpu` file, if load.sh wrote one.
fn cpu_seconds(file: &Path) -> Option<f64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// The side-by-side table: each load target on each server (Ferry, Athens and nginx with `sendfile off`
/// when load.sh ran them, nginx), and each server's fraction of nginx.
fn table(dir: &Path) -> Result<(), String> {
    println!(
        "{:<10} {:<10} {:>12} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "target", "server", "requests/s", "MB/s", "p99 ms", "of nginx", "cpu us/req", "of nginx"
    );
    for (name, _) in LOAD_TARGETS {
        let Some(nginx) = load_run(dir, name, "nginx")? else {
            continue;
        };
        for server in ["ferry", "athens", "nginx", "nginx-nosf"] {
            let Some(run) = load_run(dir, name, server)? else {
                continue;
            };
            let (ratio, cpu_ratio) = if server == "nginx" {
                (String::new(), String::new())
            } else {
                let cpu = run.cpu_us.zip(nginx.cpu_us);
                (
                    format!("{:.2}×", run.requests_per_sec / nginx.requests_per_sec),
                    cpu.map_or(String::new(), |(ours, theirs)| {
                        format!("{:.2}×", ours / theirs)
                    }),
                )
            };
            let cpu = run.cpu_us.map_or(String::new(), |us| format!("{us:.1}"));
            println!(
                "{name:<10} {server:<10} {:>12.0} {:>10.1} {:>10.2} {ratio:>10} {cpu:>12} {cpu_ratio:>10}",
                run.requests_per_sec,
                run.bytes_per_sec / 1e6,
                run.p99_ms
            );
        }
    }
    Ok(())
}

/// Throughput per second of one criterion benchmark: its throughput per iteration over the time of an
/// iteration (the regression slope when criterion fitted one, as it reports, else the mean).
fn criterion_rate(dir: &Path) -> Result<(String, String, f64, &'static str), String> {
    let benchmark = read_json(&dir.join("benchmark.json"))?;
    let estimates = read_json(&dir.join("estimates.json"))?;
    let group = benchmark["group_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let function = benchmark["function_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let nanos = estimates
        .pointer("/slope/point_estimate")
        .and_then(Value::as_f64)
        .or_else(|| {
            estimates
                .pointer("/mean/point_estimate")
                .and_then(Value::as_f64)
        })
        .ok_or_else(|| format!("{}: no estimate", dir.display()))?;
    let (per_iteration, unit) = match &benchmark["throughput"] {
        Value::Object(t) if t.contains_key("Bytes") => {
            (t["Bytes"].as_f64().unwrap_or(0.0) / 1e6, "MB/s")
        }
        Value::Object(t) if t.contains_key("Elements") => {
            (t["Elements"].as_f64().unwrap_or(0.0), "req/s")
        }
        _ => (1.0, "iter/s"),
    };
    Ok((group, function, per_iteration / (nanos / 1e9), unit))
}

/// Every `<group>/<function>/new` criterion left under `root`, grouped, each as a fraction of `ceiling`.
fn ratios(root: &Path) -> Result<(), String> {
    let mut found: Vec<PathBuf> = Vec::new();
    collect_new_dirs(root, &mut found);
    let mut groups: BTreeMap<String, Vec<(String, f64, &'static str)>> = BTreeMap::new();
    for dir in found {
        let (group, function, rate, unit) = criterion_rate(&dir)?;
        groups
            .entry(group)
            .or_default()
            .push((function, rate, unit));
    }
    if groups.is_empty() {
        return Err(format!("no criterion results under {}", root.display()));
    }
    println!(
        "{:<22} {:<18} {:>14} {:>8} {:>12}",
        "group", "benchmark", "rate", "unit", "of ceiling"
    );
    for (group, mut results) in groups {
        // The ceiling first, then the backends in the order the bench runs them.
        let order = ["ceiling", "memory", "file", "s3", "gcs"];
        results.sort_by_key(|r| (order.iter().position(|o| r.0.starts_with(o)), r.0.clone()));
        let ceiling = results.iter().find(|(f, _, _)| f == "ceiling").map(|r| r.1);
        for (function, rate, unit) in &results {
            let ratio = ceiling.map_or(String::new(), |c| format!("{:.2}×", rate / c));
            println!("{group:<22} {function:<18} {rate:>14.1} {unit:>8} {ratio:>12}");
        }
    }
    Ok(())
}

fn collect_new_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() || path.file_name().is_some_and(|n| n == "report") {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") && path.join("benchmark.json").is_file() {
            found.push(path);
        } else {
            collect_new_dirs(&path, found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oha_report(dir: &Path, file: &str, seconds: f64, requests: f64, p99: f64) {
        let report = serde_json::json!({
            "summary": {
                "total": seconds,
                "requestsPerSec": requests / seconds,
                "sizePerSec": requests * 1000.0 / seconds,
            },
            "latencyPercentiles": { "p99": p99 },
            "statusCodeDistribution": { "200": requests },
            "errorDistribution": { "aborted due to deadline": 3 },
        });
        std::fs::write(dir.join(file), report.to_string()).unwrap();
    }

    #[test]
    fn slices_add_up_to_one_run_with_the_p99_of_all_their_requests() {
        let dir = tempfile::tempdir().unwrap();
        // Two slices of 1 s: 300 and 100 requests; their own p99s say nothing of the whole.
        oha_report(dir.path(), "zip.ferry.1.json", 1.0, 300.0, 0.001);
        oha_report(dir.path(), "zip.ferry.2.json", 1.0, 100.0, 0.001);
        let durations: Vec<String> = (1..=400)
            .map(|ms| format!("{}", ms as f64 / 1000.0))
            .collect();
        std::fs::write(dir.path().join("zip.ferry.durations"), durations.join("\n")).unwrap();
        std::fs::write(dir.path().join("zip.ferry.cpu"), "0.4\n").unwrap();
        let run = load_run(dir.path(), "zip", "ferry").unwrap().unwrap();
        assert_eq!(run.requests_per_sec, 200.0);
        assert_eq!(run.bytes_per_sec, 200_000.0);
        assert_eq!(
            run.p99_ms, 396.0,
            "the 396th of 400 requests, by nearest rank"
        );
        assert_eq!(run.cpu_us, Some(1000.0));
        // A single report stands alone; a server that did not run the target is none.
        oha_report(dir.path(), "mod.nginx.json", 2.0, 1000.0, 0.002);
        let run = load_run(dir.path(), "mod", "nginx").unwrap().unwrap();
        assert_eq!((run.requests_per_sec, run.p99_ms), (500.0, 2.0));
        assert!(load_run(dir.path(), "mod", "athens").unwrap().is_none());
    }

    #[test]
    fn a_slice_with_another_status_than_200_stops_the_table() {
        let dir = tempfile::tempdir().unwrap();
        oha_report(dir.path(), "zip.ferry.1.json", 1.0, 300.0, 0.001);
        let mut report = read_json(&dir.path().join("zip.ferry.1.json")).unwrap();
        report["statusCodeDistribution"] = serde_json::json!({ "200": 290, "503": 10 });
        std::fs::write(dir.path().join("zip.ferry.2.json"), report.to_string()).unwrap();
        let error = load_run(dir.path(), "zip", "ferry").err().unwrap();
        assert!(error.contains("zip.ferry.2.json: statuses"), "{error}");
    }
}
