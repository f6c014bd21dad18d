//! The `redis://` lease engine: `SET key token NX PX ms` takes a lease, and two compare-and-set Lua
//! scripts renew it (`PEXPIRE` only if the key still holds this holder's token) and release it (`DEL`
//! only if so). Redis runs a script atomically and judges expiry by its own clock, so replicas' clocks
//! play no part. One Redis (or one database number) serves one store: keys are
//! `ferry:lease:<escaped module>@<escaped version>`.
//!
//! The client is the `redis` crate: one multiplexed connection (`rediss://` over rustls with the ring
//! provider, `AUTH` with a password or an ACL user), opened on first use and again after a failure, each
//! command (the connect included) bounded by `TIMEOUT`. It sends what the hand-written client sent:
//! `AUTH` and `SELECT` on connecting (no `CLIENT SETINFO`), then `PING`, `SET`, `PTTL` and `EVAL`, so
//! an ACL user needs those commands only.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::{Acquired, CoordinationError, Coordinator, Lease, LeaseKey};

/// Connecting, and each command's round trip, end within this.
const TIMEOUT: Duration = Duration::from_secs(2);

const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Where the server is: from `redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
#[derive(Clone)]
pub struct RedisAddress {
    /// `rediss://`: TLS, the server's certificate checked against the system's roots (or
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR`).
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

impl std::fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for RedisAddress {
    /// The URL without its credentials (`***@` in their place).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let credentials = if self.password.is_some() { "***@" } else { "" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "{scheme}://{credentials}{host}:{}/{}",
            self.port, self.db
        )
    }
}

impl RedisAddress {
    /// Parses a `redis://` or `rediss://` URL; the error names what to write and never repeats a
    /// password.
    pub fn parse(text: &str) -> Result<RedisAddress, String> {
        const FORM: &str = "write redis://HOST[:PORT][/DB] (rediss:// for TLS), with :PASSWORD@ or USER:PASSWORD@ before the host when the server needs one";
        let url = url::Url::parse(text).map_err(|e| format!("not a URL ({e}); {FORM}"))?;
        let tls = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            scheme => return Err(format!("scheme {scheme:?} is not supported; {FORM}")),
        };
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.trim_matches(['[', ']']).to_string(),
            _ => return Err(format!("no host; {FORM}")),
        };
        let db = match url.path().trim_matches('/') {
            "" => 0,
            db => db
                .parse()
                .map_err(|_| format!("database {db:?} is not a number; {FORM}"))?,
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("a query or fragment is not supported; {FORM}"));
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        Ok(RedisAddress {
            tls,
            host,
            port: url.port().unwrap_or(6379),
            user: Some(url.username())
                .filter(|u| !u.is_empty())
                .and_then(decode),
            password: url.password().and_then(decode),
            db,
        })
    }

    /// What the `redis` crate connects with.
    fn client(&self) -> Result<redis::Client, redis::RedisError> {
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        let mut settings = RedisConnectionInfo::default()
            .set_db(i64::from(self.db))
            .set_skip_set_lib_name();
        if let Some(user) = &self.user {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        redis::Client::open(addr.into_connection_info()?.set_redis_settings(settings))
    }
}

/// One multiplexed connection, opened on first use and again after a failure.
pub struct RedisClient {
    address: RedisAddress,
    client: Result<redis::Client, String>,
    /// The open connection and its number: a failure drops only the connection it happened on.
    connection: tokio::sync::Mutex<(u64, Option<MultiplexedConnection>)>,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl RedisClient {
    pub fn new(address: RedisAddress) -> RedisClient {
        if address.tls {
            // The crate builds its rustls config with the process's default provider: ring, unless
            // the process chose one already.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = address.client().map_err(|e| e.to_string());
        RedisClient {
            address,
            client,
            connection: tokio::sync::Mutex::new((0, None)),
        }
    }

    /// An error naming the server, never a credential. The crate's messages hold none (the server's
    /// words, I/O errors); a password found in one all the same is masked (one of 4 characters or more:
    /// masking a shorter one would garble the message).
    fn fail(&self, what: impl std::fmt::Display) -> CoordinationError {
        let mut what = what.to_string();
        if let Some(password) = self.address.password.as_deref().filter(|p| p.len() >= 4) {
            what = what.replace(password, "***");
        }
        CoordinationError::new(format!(
            "redis at {}:{}: {what}",
            self.address.host, self.address.port
        ))
    }

    /// The open connection (and its number), connecting first when there is none.
    async fn connection(&self) -> Result<(u64, MultiplexedConnection), CoordinationError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = &slot.1 {
            return Ok((slot.0, connection.clone()));
        }
        let client = self.client.as_ref().map_err(|e| self.fail(e))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.fail(e))?;
        slot.0 += 1;
        slot.1 = Some(connection.clone());
        Ok((slot.0, connection))
    }

    /// Runs `command` on the connection within `TIMEOUT`; a failure other than the server's own error
    /// answer drops the connection, so the next command reconnects.
    async fn run<T, F>(
        &self,
        command: impl FnOnce(MultiplexedConnection) -> F,
    ) -> Result<T, CoordinationError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let mut used = None;
        let result = tokio::time::timeout(TIMEOUT, async {
            let (number, connection) = self.connection().await?;
            used = Some(number);
            command(connection).await.map_err(|e| {
                // The server's own error answer: the connection is fine.
                if matches!(e.kind(), redis::ErrorKind::Server(_)) {
                    used = None;
                }
                self.fail(e)
            })
        })
        .await
        .unwrap_or_else(|_| Err(self.fail(format_args!("no answer within {TIMEOUT:?}"))));
        if result.is_err()
            && let Some(number) = used
        {
            let mut slot = self.connection.lock().await;
            if slot.0 == number {
                slot.1 = None;
            }
        }
        result
    }

    /// `PING`, for start-up.
    pub async fn ping(&self) -> Result<(), CoordinationError> {
        let reply: String = self
            .run(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await?;
        match reply.as_str() {
            "PONG" => Ok(()),
            other => Err(self.fail(format_args!("unexpected answer to PING: {other:?}"))),
        }
    }
}

/// Leases as Redis keys with a time to live.
#[derive(Debug)]
pub struct RedisCoordinator {
    client: RedisClient,
    holder: String,
    next: AtomicU64,
}

impl RedisCoordinator {
    pub fn new(address: RedisAddress, holder: String) -> RedisCoordinator {
        RedisCoordinator {
            client: RedisClient::new(address),
            holder,
            next: AtomicU64::new(1),
        }
    }

    /// Whether the server answers (start-up).
    pub async fn ping(&self) -> Result<(), CoordinationError> {
        self.client.ping().await
    }

    fn key(key: &LeaseKey) -> String {
        format!(
            "ferry:lease:{}@{}",
            key.module.escaped(),
            key.version.escaped()
        )
    }

    /// Runs a compare-and-set script on the lease's key with its token and `extra`; its integer answer.
    async fn script(
        &self,
        script: &str,
        lease: &Lease,
        extra: &str,
    ) -> Result<i64, CoordinationError> {
        let key = Self::key(&lease.key);
        let reply: redis::Value = self
            .client
            .run(|mut c| {
                let mut eval = redis::cmd("EVAL");
                eval.arg(script)
                    .arg(1)
                    .arg(key)
                    .arg(&lease.token)
                    .arg(extra);
                async move { eval.query_async(&mut c).await }
            })
            .await?;
        match reply {
            redis::Value::Int(n) => Ok(n),
            other => Err(self.client.fail(format_args!(
                "unexpected answer to a lease script: {other:?}"
            ))),
        }
    }
}

#[async_trait]
impl Coordinator for RedisCoordinator {
    async fn acquire(&self, key: &LeaseKey, time: Duration) -> Result<Acquired, CoordinationError> {
        let name = Self::key(key);
        let token = format!(
            "{}/{}",
            self.holder,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let ms = time.as_millis().max(1).to_string();
        // Twice at most: the key can expire between a refused SET and the PTTL.
        for _ in 0..2 {
            let set: redis::Value = self
                .client
                .run(|mut c| {
                    let mut set = redis::cmd("SET");
                    set.arg(&name).arg(&token).arg("NX").arg("PX").arg(&ms);
                    async move { set.query_async(&mut c).await }
                })
                .await?;
            if set == redis::Value::Okay {
                return Ok(Acquired::Lease(Lease::new(key.clone(), token, None)));
            }
            let left: redis::Value = self
                .client
                .run(|mut c| {
                    let mut pttl = redis::cmd("PTTL");
                    pttl.arg(&name);
                    async move { pttl.query_async(&mut c).await }
                })
                .await?;
            match left {
                redis::Value::Int(left) if left >= 0 => {
                    return Ok(Acquired::HeldElsewhere {
                        expires_in: Duration::from_millis(left as u64),
                    });
                }
                // -2: gone since the SET; -1: no expiry (not Ferry's), wait a lease time.
                redis::Value::Int(-1) => return Ok(Acquired::HeldElsewhere { expires_in: time }),
                _ => {}
            }
        }
        Ok(Acquired::HeldElsewhere { expires_in: time })
    }

    async fn renew(&self, lease: &Lease, time: Duration) -> Result<bool, CoordinationError> {
        let ms = time.as_millis().max(1).to_string();
        Ok(self.script(RENEW, lease, &ms).await? == 1)
    }

    async fn release(&self, lease: &Lease, _visible: bool) -> Result<(), CoordinationError> {
        self.script(RELEASE, lease, "").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::RedisAddress;

    #[test]
    fn a_redis_url_is_read_and_shown_without_its_password() {
        let address = RedisAddress::parse("redis://:s3cret@127.0.0.1:6390/2").unwrap();
        assert_eq!(
            (address.host.as_str(), address.port, address.db),
            ("127.0.0.1", 6390, 2)
        );
        assert_eq!(address.password.as_deref(), Some("s3cret"));
        assert_eq!(address.to_string(), "redis://***@127.0.0.1:6390/2");
        let plain = RedisAddress::parse("redis://cache.internal").unwrap();
        assert_eq!(plain.to_string(), "redis://cache.internal:6379/0");
        for bad in [
            "redis://",
            "redis://h/x",
            "http://h",
            "redis://h/0?x=1",
            "rediss://h#insecure",
        ] {
            let error = RedisAddress::parse(bad).unwrap_err();
            assert!(error.contains("redis://HOST"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_rediss_url_with_an_acl_user_is_read_and_shown_without_its_credentials() {
        let address = RedisAddress::parse("rediss://ferry:p%40ss@cache.internal:6380/1").unwrap();
        assert!(address.tls);
        assert_eq!(address.user.as_deref(), Some("ferry"));
        assert_eq!(address.password.as_deref(), Some("p@ss"));
        assert_eq!(address.to_string(), "rediss://***@cache.internal:6380/1");
        assert!(!RedisAddress::parse("redis://h").unwrap().tls);
        let v6 = RedisAddress::parse("rediss://[::1]:6380").unwrap();
        assert_eq!(v6.to_string(), "rediss://[::1]:6380/0");
    }
}
