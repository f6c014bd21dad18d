//! Bounded waiting: tests wait for a condition, never for a fixed time, and fail with what they waited for.

use std::future::Future;
use std::time::{Duration, Instant};

/// Waits until `check` holds, for at most 10 s, polling every 20 ms.
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
