//! Fair use of fills: a token bucket per requester (who authenticated, else the client's address) for the
//! requests that would start a fill from the upstream. Answers from the store never count. Beyond the
//! budget a request is answered 429 with `Retry-After`, so one runaway job cannot take every fill slot
//! from the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before the full ones (requesters idle long enough to have their whole burst back) are
/// forgotten: a forgotten bucket is the same as a full one.
const BUCKETS: usize = 65_536;

/// Who a fill is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Requester {
    /// An authenticated identity: how it was proved and its name (`user:alice`, `token:ci`,
    /// `oidc:ISSUER:NAME`).
    Identity(String),
    /// An anonymous client (authentication off): its address, an IPv6 client's /64.
    Address(IpAddr),
}

impl Requester {
    /// The anonymous requester at `address`.
    pub fn address(address: IpAddr) -> Requester {
        Requester::Address(match address.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            v4 => v4,
        })
    }
}

impl std::fmt::Display for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requester::Identity(name) => f.write_str(name),
            Requester::Address(address) => write!(f, "address {address}"),
        }
    }
}

/// A request refused for its requester's spent budget: who, and in how many seconds it has a fill again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    pub requester: String,
    pub retry_after: u64,
}

/// The budget: `rate` fills a second, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FillRate {
    pub per_second: f64,
    pub burst: u32,
}

impl FillRate {
    /// `off`, or `N/s`, `N/m`, `N/h` (fills per second, minute, hour).
    pub fn parse_rate(text: &str) -> Result<Option<f64>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let wrong =
            || format!("{text:?} is not a rate: write off, or N/s, N/m or N/h (e.g. 600/m)");
        let (count, unit) = text.split_once('/').ok_or_else(wrong)?;
        let count: f64 = count.trim().parse().map_err(|_| wrong())?;
        let seconds = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(wrong()),
        };
        if !(count.is_finite() && count > 0.0) {
            return Err(wrong());
        }
        Ok(Some(count / seconds))
    }
}

/// The buckets.
#[derive(Debug)]
pub struct FairUse {
    rate: FillRate,
    buckets: Mutex<HashMap<Requester, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl FairUse {
    pub fn new(rate: FillRate) -> FairUse {
        FairUse {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one fill from `requester`'s budget; if it has none left, how long until it has one.
    pub fn take(&self, requester: &Requester) -> Result<(), Duration> {
        self.take_at(requester, Instant::now())
    }

    fn take_at(&self, requester: &Requester, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.rate.burst.max(1));
        let mut buckets = self.buckets.lock().expect("never poisoned");
        if buckets.len() >= BUCKETS && !buckets.contains_key(requester) {
            let rate = self.rate.per_second;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(requester.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * self.rate.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            (1.0 - bucket.tokens) / self.rate.per_second,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requester_gets_its_burst_then_one_fill_per_interval_and_others_are_unaffected() {
        let fair = FairUse::new(FillRate {
            per_second: 2.0,
            burst: 3,
        });
        let (job, other) = (
            Requester::Identity("token:runaway".into()),
            Requester::address("2001:db8::1".parse().unwrap()),
        );
        let start = Instant::now();
        for _ in 0..3 {
            assert!(fair.take_at(&job, start).is_ok());
        }
        let wait = fair.take_at(&job, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(fair.take_at(&other, start).is_ok());
        // The same /64 is the same client.
        let neighbour = Requester::address("2001:db8::2".parse().unwrap());
        assert_eq!(neighbour, other);
        assert!(
            fair.take_at(&job, start + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            fair.take_at(&job, start + Duration::from_millis(600))
                .is_err()
        );
    }

    #[test]
    fn rates_are_off_or_a_count_per_second_minute_or_hour() {
        assert_eq!(FillRate::parse_rate("off"), Ok(None));
        assert_eq!(FillRate::parse_rate("10/s"), Ok(Some(10.0)));
        assert_eq!(FillRate::parse_rate("600/m"), Ok(Some(10.0)));
        assert_eq!(FillRate::parse_rate("3600/h"), Ok(Some(1.0)));
        for bad in ["10", "0/s", "-1/m", "ten/s", "5/d"] {
            assert!(FillRate::parse_rate(bad).is_err(), "{bad}");
        }
    }
}
