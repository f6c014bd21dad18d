//! `gs://BUCKET[/PREFIX]`: Google Cloud Storage and its emulators.
use std::fmt;

use object_store::ClientOptions;
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder, GoogleConfigKey};
use serde::Deserialize;

use crate::config::{Environment, Network, redacted};
use crate::error::StorageError;

/// The `[gcs]` table of the configuration file; each option falls back to its environment
/// variable. With none set, object_store looks for application default credentials.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsOptions {
    /// `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_SERVICE_ACCOUNT_PATH`: a service-account JSON file. For an
    /// emulator, the file may say `"gcs_base_url": "http://127.0.0.1:4443"` and `"disable_oauth": true`.
    pub service_account_path: Option<String>,
    /// `GOOGLE_SERVICE_ACCOUNT_KEY`: the service-account JSON itself.
    pub service_account_key: Option<String>,
    /// `GOOGLE_APPLICATION_CREDENTIALS`: an application-default-credentials file.
    pub application_credentials: Option<String>,
    /// `GOOGLE_BASE_URL`: the server, when not `https://storage.googleapis.com` (an emulator).
    pub base_url: Option<String>,
    /// Seconds allowed to connect (default 5).
    pub connect_timeout_secs: Option<u64>,
    /// Seconds allowed between two reads from the server (default 30).
    pub read_timeout_secs: Option<u64>,
    /// Seconds allowed for a whole request, body included (default: no limit, so large zips stream to
    /// slow clients).
    pub request_timeout_secs: Option<u64>,
    /// Retries of a failed request, with backoff (default 2).
    pub max_retries: Option<usize>,
}

impl GcsOptions {
    /// These options, each unset one taken from `fallback`.
    fn or(self, fallback: GcsOptions) -> GcsOptions {
        GcsOptions {
            service_account_path: self.service_account_path.or(fallback.service_account_path),
            service_account_key: self.service_account_key.or(fallback.service_account_key),
            application_credentials: self
                .application_credentials
                .or(fallback.application_credentials),
            base_url: self.base_url.or(fallback.base_url),
            connect_timeout_secs: self.connect_timeout_secs.or(fallback.connect_timeout_secs),
            read_timeout_secs: self.read_timeout_secs.or(fallback.read_timeout_secs),
            request_timeout_secs: self.request_timeout_secs.or(fallback.request_timeout_secs),
            max_retries: self.max_retries.or(fallback.max_retries),
        }
    }

    fn network(&self) -> Network {
        Network {
            connect_timeout_secs: self.connect_timeout_secs,
            read_timeout_secs: self.read_timeout_secs,
            request_timeout_secs: self.request_timeout_secs,
            max_retries: self.max_retries,
        }
    }
}

impl fmt::Debug for GcsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsOptions")
            .field("service_account_path", &self.service_account_path)
            .field("service_account_key", &redacted(&self.service_account_key))
            .field("application_credentials", &self.application_credentials)
            .field("base_url", &self.base_url)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("read_timeout_secs", &self.read_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// `gs://BUCKET[/PREFIX]` with its options resolved: the configuration file's over the environment's.
#[derive(Clone, PartialEq, Eq)]
pub struct GcsConfig {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (empty for the bucket's root).
    pub prefix: String,
    pub options: GcsOptions,
    /// Further `GOOGLE_*` variables object_store understands (a bearer token, proxy settings, ...),
    /// handed to it as they are.
    pub other_variables: Vec<(String, String)>,
}

impl GcsConfig {
    pub(crate) fn new(
        bucket: String,
        prefix: String,
        explicit: &GcsOptions,
        env: &Environment,
    ) -> Result<GcsConfig, StorageError> {
        let mut from_env = GcsOptions::default();
        let mut other_variables = Vec::new();
        for (name, value) in env.starting_with("GOOGLE_") {
            // object_store's own names, so every variable means what it means to object_store.
            let Ok(key) = name.to_ascii_lowercase().parse::<GoogleConfigKey>() else {
                continue;
            };
            let value = value.to_string();
            match key {
                GoogleConfigKey::ServiceAccount => from_env.service_account_path = Some(value),
                GoogleConfigKey::ServiceAccountKey => from_env.service_account_key = Some(value),
                GoogleConfigKey::ApplicationCredentials => {
                    from_env.application_credentials = Some(value)
                }
                GoogleConfigKey::BaseUrl => from_env.base_url = Some(value),
                // The URL names the bucket.
                GoogleConfigKey::Bucket => {}
                _ => other_variables.push((name.to_string(), value)),
            }
        }
        Ok(GcsConfig {
            bucket,
            prefix,
            options: explicit.clone().or(from_env),
            other_variables,
        })
    }

    pub(crate) fn build(&self) -> Result<GoogleCloudStorage, StorageError> {
        let options = &self.options;
        let mut builder = GoogleCloudStorageBuilder::new();
        let mut env_client = Vec::new();
        for (name, value) in &self.other_variables {
            match name.to_ascii_lowercase().parse::<GoogleConfigKey>() {
                Ok(GoogleConfigKey::Client(key)) => env_client.push((key, value.clone())),
                Ok(key) => builder = builder.with_config(key, value),
                Err(_) => {}
            }
        }
        let network = options.network();
        // Plain HTTP stays allowed, as object_store's GCS default has it: the base URL comes from the
        // service-account file, and only an emulator's is `http://`.
        let client = network.client_options(ClientOptions::new().with_allow_http(true), env_client);
        builder = builder
            .with_bucket_name(&self.bucket)
            .with_client_options(client)
            .with_retry(network.retry());
        if let Some(path) = &options.service_account_path {
            builder = builder.with_service_account_path(path);
        }
        if let Some(key) = &options.service_account_key {
            builder = builder.with_service_account_key(key);
        }
        if let Some(path) = &options.application_credentials {
            builder = builder.with_application_credentials(path);
        }
        if let Some(base_url) = &options.base_url {
            builder = builder.with_base_url(base_url);
        }
        builder
            .build()
            .map_err(|e| StorageError::Config(format!("{self}: {e}")))
    }
}

impl fmt::Display for GcsConfig {
    /// The URL and the endpoint, never credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = self.options.base_url.as_deref();
        crate::config::fmt_bucket(f, "gs", &self.bucket, &self.prefix, endpoint)
    }
}

impl fmt::Debug for GcsConfig {
    /// Variable names only for the further variables: their values may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = crate::config::variable_names(&self.other_variables);
        f.debug_struct("GcsConfig")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("options", &self.options)
            .field("other_variables", &names)
            .finish()
    }
}
