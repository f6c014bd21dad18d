//! The `storage` lease engine: a lease object beside the version in the bucket
//! (`<module>/@v/<version>.lease`, ferry-storage's [`BucketLeases`]), taken with a create-only put and
//! renewed, taken over and released with puts conditional on the e-tag (generation on GCS) last seen,
//! so of several replicas racing for one lease exactly one write wins.
//!
//! The body is JSON: the holder, the fencing token (1 when created, one more at each takeover), the
//! holder's wall-clock time of the write and the lease's duration. A lease is expired for a replica once
//! its own wall clock passes `written + duration`. Clock-skew assumption: the replicas' clocks agree to
//! well within a lease time (NTP keeps them within milliseconds). A replica whose clock runs ahead by `d`
//! takes an abandoned lease over `d` early, and would take a live one over only if `d` exceeded the two
//! thirds of the lease time a holder renews ahead of expiry; even then the fencing check keeps the former
//! holder from publishing, so skew costs at most a second upstream fetch, never a mixed version.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use ferry_storage::{BucketLeases, Written};
use serde::{Deserialize, Serialize};

use super::{Acquired, CoordinationError, Coordinator, Lease, LeaseKey};

/// What a lease object holds.
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    holder: String,
    token: u64,
    /// The writer's wall clock at the write, in milliseconds since the Unix epoch.
    written_ms: u64,
    duration_ms: u64,
    /// Given up by its holder (a failed fill): anyone may take it at once.
    #[serde(default)]
    released: bool,
}

impl Body {
    fn bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("a lease body serializes"))
    }

    /// How long until it expires by this replica's clock (zero when it has, or was released).
    fn remaining(&self, now_ms: u64) -> Duration {
        if self.released {
            return Duration::ZERO;
        }
        let end = self.written_ms.saturating_add(self.duration_ms);
        Duration::from_millis(end.saturating_sub(now_ms))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Leases as objects of the store's bucket.
#[derive(Debug)]
pub struct BucketCoordinator {
    leases: BucketLeases,
    holder: String,
}

/// How many times `acquire` tries when the lease object changes under it (removed between the create
/// and the read): each round is a real change by another replica, so a few are plenty.
const ROUNDS: usize = 4;

impl BucketCoordinator {
    pub fn new(leases: BucketLeases, holder: String) -> BucketCoordinator {
        BucketCoordinator { leases, holder }
    }

    fn body(&self, token: u64, time: Duration, released: bool) -> Body {
        Body {
            holder: self.holder.clone(),
            token,
            written_ms: now_ms(),
            duration_ms: time.as_millis() as u64,
            released,
        }
    }
}

#[async_trait]
impl Coordinator for BucketCoordinator {
    async fn acquire(&self, key: &LeaseKey, time: Duration) -> Result<Acquired, CoordinationError> {
        let path = BucketLeases::key(&key.module, &key.version)?;
        for _ in 0..ROUNDS {
            let created = self.body(1, time, false);
            if let Written::Won(tag) = self.leases.create(&path, created.bytes()).await? {
                return Ok(Acquired::Lease(Lease::new(
                    key.clone(),
                    "1".into(),
                    Some(tag),
                )));
            }
            let Some((bytes, tag)) = self.leases.read(&path).await? else {
                continue; // removed since: create again
            };
            // A body that does not parse (a torn or foreign object) counts as expired.
            let found: Option<Body> = serde_json::from_slice(&bytes).ok();
            let remaining = found
                .as_ref()
                .map_or(Duration::ZERO, |b| b.remaining(now_ms()));
            if !remaining.is_zero() {
                return Ok(Acquired::HeldElsewhere {
                    expires_in: remaining,
                });
            }
            let token = found.as_ref().map_or(1, |b| b.token + 1);
            let taken = self.body(token, time, false);
            match self.leases.replace(&path, taken.bytes(), &tag).await? {
                Written::Won(tag) => {
                    if let Some(previous) = &found {
                        tracing::info!(%key, previous = %previous.holder, released = previous.released, token, "took over an expired lease");
                    }
                    return Ok(Acquired::Lease(Lease::new(
                        key.clone(),
                        token.to_string(),
                        Some(tag),
                    )));
                }
                // Another replica took it over first.
                Written::Lost => {
                    return Ok(Acquired::HeldElsewhere { expires_in: time });
                }
            }
        }
        Ok(Acquired::HeldElsewhere { expires_in: time })
    }

    async fn renew(&self, lease: &Lease, time: Duration) -> Result<bool, CoordinationError> {
        let mut tag = lease.tag.lock().await;
        let Some(last) = tag.clone() else {
            return Ok(false);
        };
        let path = BucketLeases::key(&lease.key.module, &lease.key.version)?;
        let token: u64 = lease.token.parse().unwrap_or(0);
        let body = self.body(token, time, false).bytes();
        match self.leases.replace(&path, body.clone(), &last).await? {
            Written::Won(next) => {
                *tag = Some(next);
                return Ok(true);
            }
            Written::Lost => {}
        }
        // A write of ours whose answer was lost (a timeout after the server wrote) leaves the object
        // ours under a tag this holder never saw: it is still ours if it names this holder and token, as
        // a taker writes its own. Then the renewal is done again on the tag found.
        let Some((bytes, found)) = self.leases.read(&path).await? else {
            return Ok(false);
        };
        match serde_json::from_slice::<Body>(&bytes) {
            Ok(body) if body.holder == self.holder && body.token == token && !body.released => {}
            _ => return Ok(false),
        }
        match self.leases.replace(&path, body, &found).await? {
            Written::Won(next) => {
                *tag = Some(next);
                Ok(true)
            }
            Written::Lost => Ok(false),
        }
    }

    async fn release(&self, lease: &Lease, visible: bool) -> Result<(), CoordinationError> {
        let path = BucketLeases::key(&lease.key.module, &lease.key.version)?;
        if visible {
            // Whoever takes the lease from now on finds the version stored and fetches nothing, so the
            // object can go (object_store has no conditional delete; none is needed here).
            return Ok(self.leases.remove(&path).await?);
        }
        let tag = lease.tag.lock().await;
        let Some(tag) = tag.as_ref() else {
            return Ok(());
        };
        let token = lease.token.parse().unwrap_or(0);
        // Marked released only if it is still this holder's write: a waiting replica takes it at once.
        self.leases
            .replace(&path, self.body(token, Duration::ZERO, true).bytes(), tag)
            .await?;
        Ok(())
    }
}
