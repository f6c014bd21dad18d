//! The process's own figures for a dashboard, read from `/proc/self` at each scrape (Linux; elsewhere
//! they stay 0): CPU seconds, resident memory, open file descriptors, start time; and the build.
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    /// The commit built, when the build said (`FERRY_COMMIT` at compile time), else `unknown`.
    commit: &'static str,
}

/// The kernel's clock ticks per second, in which `/proc/self/stat` counts CPU time: `USER_HZ`, 100 on
/// every Linux architecture Ferry builds for.
const TICKS_PER_SECOND: f64 = 100.0;

/// The process metrics, refreshed by [`ProcessMetrics::refresh`] before each encoding.
pub struct ProcessMetrics {
    cpu_seconds: Counter<f64, AtomicU64>,
    /// The CPU seconds last added to the counter (it only moves up by the difference).
    counted: Mutex<f64>,
    resident_bytes: Gauge,
    open_fds: Gauge,
    start_time_seconds: Gauge<f64, AtomicU64>,
}

impl ProcessMetrics {
    /// Registers the metrics (and the build info, set once) in `registry`.
    pub fn register(registry: &mut Registry) -> ProcessMetrics {
        let metrics = ProcessMetrics {
            cpu_seconds: Counter::default(),
            counted: Mutex::new(0.0),
            resident_bytes: Gauge::default(),
            open_fds: Gauge::default(),
            start_time_seconds: Gauge::default(),
        };
        registry.register(
            "process_cpu_seconds",
            "CPU time the process used, user and system",
            metrics.cpu_seconds.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the process",
            metrics.resident_bytes.clone(),
        );
        registry.register(
            "process_open_fds",
            "File descriptors the process holds open (sockets, files)",
            metrics.open_fds.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "When the process started, in seconds since the Unix epoch",
            metrics.start_time_seconds.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: option_env!("FERRY_COMMIT").unwrap_or("unknown"),
            })
            .set(1);
        registry.register(
            "build_info",
            "The version and commit of this build (always 1)",
            build,
        );
        metrics
    }

    /// Reads `/proc/self` now; what cannot be read keeps its last value.
    pub fn refresh(&self) {
        if let Some(stat) = read_stat() {
            let mut counted = self.counted.lock().expect("never poisoned");
            if stat.cpu_seconds > *counted {
                self.cpu_seconds.inc_by(stat.cpu_seconds - *counted);
                *counted = stat.cpu_seconds;
            }
            if let Some(start) = stat.start_time_seconds {
                self.start_time_seconds.set(start);
            }
        }
        if let Some(resident) = resident_bytes() {
            self.resident_bytes.set(resident);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(i64::try_from(fds.count()).unwrap_or(i64::MAX));
        }
    }
}

struct Stat {
    cpu_seconds: f64,
    start_time_seconds: Option<f64>,
}

/// CPU time and start time from `/proc/self/stat` (the start in ticks after boot, plus `btime`).
fn read_stat() -> Option<Stat> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, field 2, is in parentheses and may hold spaces: count fields after its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 14 (utime), 15 (stime) and 22 (starttime), numbered from 1 with the name as 2.
    let ticks = |field: usize| fields.get(field - 3)?.parse::<f64>().ok();
    let cpu_seconds = (ticks(14)? + ticks(15)?) / TICKS_PER_SECOND;
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("btime ")?.trim().parse::<f64>().ok())
    });
    let start_time_seconds = boot
        .zip(ticks(22))
        .map(|(boot, start)| boot + start / TICKS_PER_SECOND);
    Some(Stat {
        cpu_seconds,
        start_time_seconds,
    })
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: i64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
