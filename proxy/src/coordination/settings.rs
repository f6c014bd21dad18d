//! The `coordination` and `lease_time` settings: which lease engine, checked against the store, and
//! the engine built from them at start-up.
use std::sync::Arc;
use std::time::Duration;

use ferry_storage::{ModuleStore, StorageConfig};

use super::bucket::BucketCoordinator;
use super::redis::{RedisAddress, RedisCoordinator};
use super::{Coordination, holder_id};
use crate::config::{ConfigError, Origin};

/// The lease engine.
#[derive(Debug, Clone)]
pub enum Engine {
    Local,
    Storage,
    Redis(RedisAddress),
}

#[derive(Debug, Clone)]
pub struct CoordinationSettings {
    pub engine: Engine,
    pub lease_time: Duration,
}

/// The default lease time: a holder that dies holds its versions up this long; it renews every third.
pub const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(30);
/// Below this, a renewal (a bucket write) could not keep up.
const MIN_LEASE_TIME: Duration = Duration::from_millis(300);

impl CoordinationSettings {
    /// From the `coordination` value (`local`, `storage` or `redis://...`; `None`: the default for the
    /// store) and `lease_time` (already parsed), checked against the store.
    pub fn load(
        coordination: Option<(String, Origin)>,
        lease_time: Option<(Duration, Origin)>,
        storage: &StorageConfig,
    ) -> Result<CoordinationSettings, ConfigError> {
        let bucket = matches!(storage, StorageConfig::Cloud(_));
        let engine = match coordination {
            None if bucket => Engine::Storage,
            None => Engine::Local,
            Some((text, origin)) => parse_engine(&text, &origin, storage)?,
        };
        let lease_time = match lease_time {
            None => DEFAULT_LEASE_TIME,
            Some((time, origin)) if time < MIN_LEASE_TIME => {
                return Err(ConfigError::Invalid {
                    origin,
                    message: format!(
                        "lease time {time:?} is too short for a renewal to keep up; write {MIN_LEASE_TIME:?} or more (e.g. \"30s\")"
                    ),
                });
            }
            Some((time, _)) => time,
        };
        Ok(CoordinationSettings { engine, lease_time })
    }

    /// The engine, reached once (start-up stops when Redis does not answer), for fills that write
    /// through `store` and whose fetches end within `fetch_timeout`.
    pub async fn open(
        &self,
        storage: &StorageConfig,
        store: Arc<dyn ModuleStore>,
        fetch_timeout: Duration,
    ) -> Result<Coordination, String> {
        let holder = holder_id();
        let engine: Arc<dyn super::Coordinator> = match &self.engine {
            Engine::Local => return Ok(Coordination::local()),
            Engine::Storage => {
                let leases = storage
                    .open_leases()
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("storage {storage} has no lease objects"))?;
                Arc::new(BucketCoordinator::new(leases, holder))
            }
            Engine::Redis(address) => {
                let redis = RedisCoordinator::new(address.clone(), holder);
                redis.ping().await.map_err(|e| e.to_string())?;
                Arc::new(redis)
            }
        };
        Ok(Coordination::new(
            engine,
            self.lease_time,
            fetch_timeout,
            store,
        ))
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Local => f.write_str("local"),
            Engine::Storage => f.write_str("storage"),
            Engine::Redis(address) => write!(f, "{address}"),
        }
    }
}

fn parse_engine(
    text: &str,
    origin: &Origin,
    storage: &StorageConfig,
) -> Result<Engine, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.clone(),
        message,
    };
    let engine = match text {
        "local" => return Ok(Engine::Local),
        "storage" => Engine::Storage,
        url if url.starts_with("redis://") || url.starts_with("rediss://") => Engine::Redis(
            RedisAddress::parse(url).map_err(|e| invalid(format!("coordination: {e}")))?,
        ),
        _ => {
            // The value may be a URL with a password: not repeated.
            return Err(invalid(
                "coordination must be \"local\", \"storage\" or a redis://HOST[:PORT][/DB] URL"
                    .to_string(),
            ));
        }
    };
    match (storage, &engine) {
        (StorageConfig::Memory, _) => Err(invalid(
            "a memory:// store is this process's own and never shared between replicas, so there is nothing to coordinate; write coordination = \"local\"".to_string(),
        )),
        (StorageConfig::File(_), Engine::Storage) => Err(invalid(format!(
            "coordination = \"storage\" needs a bucket store (s3://, gs:// or az://): a file store ({storage}) cannot take a lease over atomically; for replicas on a shared directory write coordination = \"redis://HOST:PORT\", for one Ferry \"local\""
        ))),
        _ => Ok(engine),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::Engine;
    use crate::config::{Flags, load};

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_default_is_storage_on_a_bucket_and_local_otherwise() {
        let bucket = load(
            &Flags::default(),
            &env(&[
                ("FERRY_STORAGE", "gs://b/p"),
                ("FERRY_DOWNLOAD_MODE", "none"),
            ]),
        )
        .unwrap();
        assert!(matches!(bucket.coordination.engine, Engine::Storage));
        assert_eq!(bucket.coordination.lease_time, super::DEFAULT_LEASE_TIME);
        let file = load(&Flags::default(), &env(&[("FERRY_DOWNLOAD_MODE", "none")])).unwrap();
        assert!(matches!(file.coordination.engine, Engine::Local));
    }

    #[test]
    fn the_file_keys_are_read_and_a_bad_one_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(
            &path,
            "storage = \"file://./d\"\ncoordination = \"redis://cache:6390/1\"\nlease_time = \"10s\"\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(path.clone()),
            ..Flags::default()
        };
        let config = load(&flags, &env(&[("FERRY_DOWNLOAD_MODE", "none")])).unwrap();
        assert_eq!(
            config.coordination.engine.to_string(),
            "redis://cache:6390/1"
        );
        assert_eq!(config.coordination.lease_time.as_secs(), 10);

        std::fs::write(&path, "storage = \"file://./d\"\nlease_time = \"50ms\"\n").unwrap();
        let error = load(&flags, &env(&[("FERRY_DOWNLOAD_MODE", "none")])).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "{}:2:14: lease time 50ms is too short",
                path.display()
            )),
            "{message}"
        );
    }
}
