//! The `redis://` lease engine: `SET key token NX PX ms` takes a lease, and two compare-and-set Lua
//! scripts renew it (`PEXPIRE` only if the key still holds this holder's token) and release it (`DEL`
//! only if so). Redis runs a script atomically and judges expiry by its own clock, so replicas' clocks
//! play no part. One Redis (or one database number) serves one store: keys are
//! `ferry:lease:<escaped module>@<escaped version>`.
//!
//! The client is a minimal RESP2 one over one TCP connection (commands are serialized on it; lease
//! traffic is a few small commands per fill), reconnected after any error, each command bounded by
//! `TIMEOUT`. Lighter than the `redis` crate and its dependency tree for five commands.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Acquired, CoordinationError, Coordinator, Lease, LeaseKey};

/// Connecting, and each command's round trip, end within this.
const TIMEOUT: Duration = Duration::from_secs(2);

const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Where the server is: from `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
#[derive(Clone)]
pub struct RedisAddress {
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
        let credentials = if self.password.is_some() { "***@" } else { "" };
        write!(
            f,
            "redis://{credentials}{}:{}/{}",
            self.host, self.port, self.db
        )
    }
}

impl RedisAddress {
    /// Parses a `redis://` URL; the error names what to write and never repeats a password.
    pub fn parse(text: &str) -> Result<RedisAddress, String> {
        const FORM: &str = "write redis://HOST[:PORT][/DB], with :PASSWORD@ or USER:PASSWORD@ before the host when the server needs one";
        let url = url::Url::parse(text).map_err(|e| format!("not a URL ({e}); {FORM}"))?;
        if url.scheme() != "redis" {
            return Err(format!(
                "scheme {:?} is not supported (TLS `rediss://` neither); {FORM}",
                url.scheme()
            ));
        }
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
            host,
            port: url.port().unwrap_or(6379),
            user: Some(url.username())
                .filter(|u| !u.is_empty())
                .and_then(decode),
            password: url.password().and_then(decode),
            db,
        })
    }
}

/// A RESP2 reply.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// One connection, opened on first use and again after a failure.
#[derive(Debug)]
pub struct RedisClient {
    address: RedisAddress,
    connection: tokio::sync::Mutex<Option<BufReader<TcpStream>>>,
}

impl RedisClient {
    pub fn new(address: RedisAddress) -> RedisClient {
        RedisClient {
            address,
            connection: tokio::sync::Mutex::new(None),
        }
    }

    fn fail(&self, what: impl std::fmt::Display) -> CoordinationError {
        CoordinationError::new(format!(
            "redis at {}:{}: {what}",
            self.address.host, self.address.port
        ))
    }

    /// Runs one command; a failure drops the connection, so the next command reconnects.
    async fn command(&self, args: &[&[u8]]) -> Result<Reply, CoordinationError> {
        let mut connection = self.connection.lock().await;
        let result = tokio::time::timeout(TIMEOUT, async {
            if connection.is_none() {
                *connection = Some(self.connect().await?);
            }
            let stream = connection.as_mut().expect("connected above");
            round_trip(stream, args).await.map_err(|e| self.fail(e))
        })
        .await
        .unwrap_or_else(|_| Err(self.fail(format_args!("no answer within {TIMEOUT:?}"))));
        if result.is_err() {
            *connection = None;
        }
        match result? {
            Reply::Simple(s) if s.starts_with('-') => Err(self.fail(&s[1..])),
            reply => Ok(reply),
        }
    }

    async fn connect(&self) -> Result<BufReader<TcpStream>, CoordinationError> {
        let stream = TcpStream::connect((self.address.host.as_str(), self.address.port))
            .await
            .map_err(|e| self.fail(e))?;
        let _ = stream.set_nodelay(true);
        let mut stream = BufReader::new(stream);
        let mut setup: Vec<Vec<&[u8]>> = Vec::new();
        if let Some(password) = &self.address.password {
            match &self.address.user {
                Some(user) => setup.push(vec![b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => setup.push(vec![b"AUTH", password.as_bytes()]),
            }
        }
        let db = self.address.db.to_string();
        if self.address.db != 0 {
            setup.push(vec![b"SELECT", db.as_bytes()]);
        }
        for command in setup {
            match round_trip(&mut stream, &command)
                .await
                .map_err(|e| self.fail(e))?
            {
                // The server's words (e.g. WRONGPASS ...), never the password.
                Reply::Simple(s) if s.starts_with('-') => {
                    return Err(self.fail(format_args!(
                        "{} refused: {}",
                        String::from_utf8_lossy(command[0]),
                        &s[1..]
                    )));
                }
                _ => {}
            }
        }
        Ok(stream)
    }

    /// `PING`, for start-up.
    pub async fn ping(&self) -> Result<(), CoordinationError> {
        match self.command(&[b"PING"]).await? {
            Reply::Simple(s) if s == "+PONG" => Ok(()),
            other => Err(self.fail(format_args!("unexpected answer to PING: {other:?}"))),
        }
    }
}

async fn round_trip(stream: &mut BufReader<TcpStream>, args: &[&[u8]]) -> std::io::Result<Reply> {
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg);
        request.extend_from_slice(b"\r\n");
    }
    stream.get_mut().write_all(&request).await?;
    read_reply(stream).await
}

fn protocol_error(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

/// Reads one reply; an error reply is a `Simple` starting with `-`. Nesting is bounded (lease replies
/// are flat).
fn read_reply(
    stream: &mut BufReader<TcpStream>,
) -> futures::future::BoxFuture<'_, std::io::Result<Reply>> {
    Box::pin(async move {
        let mut line = String::new();
        // A line longer than this is not a lease reply.
        let n = (&mut *stream).take(64 * 1024).read_line(&mut line).await?;
        if n == 0 {
            return Err(protocol_error("the connection was closed"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| protocol_error(format!("bad length in {line:?}")))
        };
        match kind {
            "+" => Ok(Reply::Simple(format!("+{rest}"))),
            "-" => Ok(Reply::Simple(format!("-{rest}"))),
            ":" => Ok(Reply::Integer(number()?)),
            "$" => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                if len > 1024 * 1024 {
                    return Err(protocol_error("a reply over 1 MiB"));
                }
                let mut data = vec![0; len as usize + 2];
                stream.read_exact(&mut data).await?;
                data.truncate(len as usize);
                Ok(Reply::Bulk(Some(data)))
            }
            "*" => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Array(None));
                }
                let mut items = Vec::new();
                for _ in 0..len.min(1024) {
                    items.push(read_reply(stream).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(protocol_error(format!("unexpected reply {line:?}"))),
        }
    })
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

    async fn script(
        &self,
        script: &str,
        lease: &Lease,
        extra: &str,
    ) -> Result<i64, CoordinationError> {
        let key = Self::key(&lease.key);
        let reply = self
            .client
            .command(&[
                b"EVAL",
                script.as_bytes(),
                b"1",
                key.as_bytes(),
                lease.token.as_bytes(),
                extra.as_bytes(),
            ])
            .await?;
        match reply {
            Reply::Integer(n) => Ok(n),
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
            let set = self
                .client
                .command(&[
                    b"SET",
                    name.as_bytes(),
                    token.as_bytes(),
                    b"NX",
                    b"PX",
                    ms.as_bytes(),
                ])
                .await?;
            if set == Reply::Simple("+OK".into()) {
                return Ok(Acquired::Lease(Lease::new(key.clone(), token, None)));
            }
            match self.client.command(&[b"PTTL", name.as_bytes()]).await? {
                Reply::Integer(left) if left >= 0 => {
                    return Ok(Acquired::HeldElsewhere {
                        expires_in: Duration::from_millis(left as u64),
                    });
                }
                // -2: gone since the SET; -1: no expiry (not Ferry's), wait a lease time.
                Reply::Integer(-1) => return Ok(Acquired::HeldElsewhere { expires_in: time }),
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
        for bad in ["rediss://h", "redis://", "redis://h/x", "http://h"] {
            let error = RedisAddress::parse(bad).unwrap_err();
            assert!(error.contains("redis://HOST"), "{bad}: {error}");
        }
    }
}
