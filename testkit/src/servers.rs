//! The real S3 and GCS servers the storage tests run against, started by `scripts/test-servers.sh start`,
//! which exports where they are in `FERRY_TEST_*` variables.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The values of `names`, or `None` when one is missing: then the test fails under
/// `FERRY_TEST_REQUIRE_SERVERS=1` (the project's test command), and is skipped loudly otherwise.
pub fn server_vars<const N: usize>(server: &str, names: [&str; N]) -> Option<[String; N]> {
    let values = names.map(|name| std::env::var(name).ok());
    if values.iter().all(Option::is_some) {
        return Some(values.map(Option::unwrap));
    }
    let missing: Vec<&str> = names
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect();
    if std::env::var("FERRY_TEST_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!(
            "the {server} test server is required (FERRY_TEST_REQUIRE_SERVERS=1) but {} is not set; \
             run scripts/test-servers.sh start and eval \"$(scripts/test-servers.sh env)\"",
            missing.join(", ")
        );
    }
    // Straight to the process's stderr: libtest would hide an `eprintln!` of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {server} backend test: {} not set; run scripts/test.sh (or scripts/test-servers.sh start \
         and eval \"$(scripts/test-servers.sh env)\") to run it against a real server",
        missing.join(", ")
    );
    None
}

/// A key prefix no other test (in this or another run) uses, so every test starts on an empty store.
pub fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "test-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `127.0.0.1` port nothing listens on: bound by the OS, then released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
