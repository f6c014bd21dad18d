//! The log lines of a whole test binary, captured from `tracing`: tests run in parallel in one process,
//! so each looks for lines that name its own module or request.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Installs (once) the global subscriber that captures INFO and above; returns the captured bytes.
pub fn capture_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        struct Sink(&'static Mutex<Vec<u8>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Sink(logs))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        logs
    })
}

/// Whether one captured log line holds every one of `parts`.
pub fn logged(parts: &[&str]) -> bool {
    let logs = capture_logs().lock().unwrap();
    String::from_utf8_lossy(&logs)
        .lines()
        .any(|line| parts.iter().all(|part| line.contains(part)))
}
