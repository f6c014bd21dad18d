//! `s3://BUCKET[/PREFIX]`: Amazon S3 and S3-compatible servers (MinIO, Ceph, R2, ...).
use std::fmt;

use object_store::ClientOptions;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use serde::Deserialize;

use crate::config::{Environment, Network, parse_bool, redacted};
use crate::error::StorageError;

/// The `[s3]` table of the configuration file; each option falls back to its environment
/// variable. Everything is optional: on AWS the region and credentials may come from the instance.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    /// `AWS_ENDPOINT` / `AWS_ENDPOINT_URL`: the server of an S3-compatible service; unset for AWS.
    pub endpoint: Option<String>,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION` (object_store's default is `us-east-1`).
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`: `bucket.endpoint/key` when true; path-style
    /// (`endpoint/bucket/key`, what most S3-compatible servers want) when false, the default.
    pub virtual_hosted_style_request: Option<bool>,
    /// `AWS_ALLOW_HTTP`: allow a plain `http://` endpoint.
    pub allow_http: Option<bool>,
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

impl S3Options {
    /// These options, each unset one taken from `fallback`.
    fn or(self, fallback: S3Options) -> S3Options {
        S3Options {
            endpoint: self.endpoint.or(fallback.endpoint),
            region: self.region.or(fallback.region),
            access_key_id: self.access_key_id.or(fallback.access_key_id),
            secret_access_key: self.secret_access_key.or(fallback.secret_access_key),
            session_token: self.session_token.or(fallback.session_token),
            virtual_hosted_style_request: self
                .virtual_hosted_style_request
                .or(fallback.virtual_hosted_style_request),
            allow_http: self.allow_http.or(fallback.allow_http),
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

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field(
                "virtual_hosted_style_request",
                &self.virtual_hosted_style_request,
            )
            .field("allow_http", &self.allow_http)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("read_timeout_secs", &self.read_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// `s3://BUCKET[/PREFIX]` with its options resolved: the configuration file's over the environment's.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (empty for the bucket's root).
    pub prefix: String,
    pub options: S3Options,
    /// Further `AWS_*` variables object_store understands (web identity and container credentials,
    /// proxy settings, ...), handed to it as they are.
    pub other_variables: Vec<(String, String)>,
}

impl S3Config {
    pub(crate) fn new(
        bucket: String,
        prefix: String,
        explicit: &S3Options,
        env: &Environment,
    ) -> Result<S3Config, StorageError> {
        let mut from_env = S3Options::default();
        let mut default_region = None;
        let mut other_variables = Vec::new();
        for (name, value) in env.starting_with("AWS_") {
            // object_store's own names, so every variable means what it means to object_store.
            let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() else {
                continue;
            };
            let value = value.to_string();
            match key {
                AmazonS3ConfigKey::Endpoint => from_env.endpoint = Some(value),
                AmazonS3ConfigKey::Region => from_env.region = Some(value),
                AmazonS3ConfigKey::DefaultRegion => default_region = Some(value),
                AmazonS3ConfigKey::AccessKeyId => from_env.access_key_id = Some(value),
                AmazonS3ConfigKey::SecretAccessKey => from_env.secret_access_key = Some(value),
                AmazonS3ConfigKey::Token => from_env.session_token = Some(value),
                AmazonS3ConfigKey::VirtualHostedStyleRequest => {
                    from_env.virtual_hosted_style_request = Some(parse_bool(name, &value)?)
                }
                AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp) => {
                    from_env.allow_http = Some(parse_bool(name, &value)?)
                }
                // The URL names the bucket.
                AmazonS3ConfigKey::Bucket => {}
                _ => other_variables.push((name.to_string(), value)),
            }
        }
        from_env.region = from_env.region.or(default_region);
        Ok(S3Config {
            bucket,
            prefix,
            options: explicit.clone().or(from_env),
            other_variables,
        })
    }

    pub(crate) fn build(&self) -> Result<AmazonS3, StorageError> {
        let options = &self.options;
        let mut builder = AmazonS3Builder::new();
        let mut env_client = Vec::new();
        for (name, value) in &self.other_variables {
            match name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                Ok(AmazonS3ConfigKey::Client(key)) => env_client.push((key, value.clone())),
                Ok(key) => builder = builder.with_config(key, value),
                Err(_) => {}
            }
        }
        let network = options.network();
        builder = builder
            .with_bucket_name(&self.bucket)
            .with_client_options(network.client_options(ClientOptions::new(), env_client))
            .with_retry(network.retry());
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &options.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &options.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &options.session_token {
            builder = builder.with_token(token);
        }
        if let Some(virtual_hosted) = options.virtual_hosted_style_request {
            builder = builder.with_virtual_hosted_style_request(virtual_hosted);
        }
        if let Some(allow_http) = options.allow_http {
            builder = builder.with_allow_http(allow_http);
        }
        builder
            .build()
            .map_err(|e| StorageError::Config(format!("{self}: {e}")))
    }
}

impl fmt::Display for S3Config {
    /// The URL and the endpoint, never credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = self.options.endpoint.as_deref();
        crate::config::fmt_bucket(f, "s3", &self.bucket, &self.prefix, endpoint)
    }
}

impl fmt::Debug for S3Config {
    /// Variable names only for the further variables: their values may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = crate::config::variable_names(&self.other_variables);
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("options", &self.options)
            .field("other_variables", &names)
            .finish()
    }
}
