//! Request ids: each request carries one, taken from its `X-Request-Id` header when it has a usable one
//! (a load balancer's), else made here; it is put on the request for the layers inside (the access log
//! logs it) and sent back on the response, so a client's report and a log line can be matched.

use std::sync::atomic::{AtomicU64, Ordering};

use http::header::HeaderValue;
use http::{HeaderName, Request, Response};

use super::hook::Hook;
use crate::body::Body;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longer ids, or ids with other than visible ASCII, are replaced: they end up in logs.
const MAX_LEN: usize = 128;

/// Gives every request an id.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestId;

impl Hook for RequestId {
    type State = HeaderValue;

    fn before<B>(&self, request: &mut Request<B>) -> (HeaderValue, Option<Response<Body>>) {
        let id = match request.headers().get(&X_REQUEST_ID) {
            Some(given) if usable(given) => given.clone(),
            _ => generate(),
        };
        request
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), id.clone());
        (id, None)
    }

    fn after(&self, id: HeaderValue, mut response: Response<Body>) -> Response<Body> {
        response.headers_mut().insert(X_REQUEST_ID.clone(), id);
        response
    }
}

fn usable(id: &HeaderValue) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.as_bytes().iter().all(|b| b.is_ascii_graphic())
}

/// A new id: unique within the process (a counter) and unlikely to repeat across restarts and replicas
/// (mixed with the start time and process id); 16 hex digits.
fn generate() -> HeaderValue {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    // splitmix64 of seed + counter: consecutive ids look unrelated.
    let mut x = seed.wrapping_add(
        COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    HeaderValue::from_bytes(&hex(x)).expect("hex digits are a valid header value")
}

/// `x` as 16 lower-case hex digits, without the formatting machinery (a request's id and ETag are made on
/// every request: `format!` and its String were 1.5 % of a warm `.mod`'s CPU in a profile under load.sh).
pub(crate) fn hex(x: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[((x >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_what_format_writes() {
        for x in [0, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(super::hex(x), format!("{x:016x}").as_bytes());
        }
    }
}
