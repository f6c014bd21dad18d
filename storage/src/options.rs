//! The storage options table and the environment snapshot, as handed in by the caller, and how their
//! values show in messages (secrets never): a leaf that the URL parsing (`config.rs`) and the cloud
//! backends (`cloud.rs`) both read, so that neither reaches into the other for them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// One option of the configuration file's storage table: a key as written (any spelling `object_store`
/// accepts for the backend, or one of Ferry's own) and its value as text.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StorageOption {
    pub key: String,
    pub value: String,
    /// `Some(scheme)` for an option of a backend-specific table (the older `[s3]` and `[gcs]`): it applies
    /// only to a store of that scheme and is ignored otherwise. `None`: it applies to whichever backend
    /// the URL picks, and must be one of its keys.
    pub only_for: Option<&'static str>,
}

/// The options table of the configuration file (`[storage_options]`), in the order written. An option
/// set here wins over the same key from the environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    options: Vec<StorageOption>,
}

impl StorageOptions {
    /// Adds an option of the generic table; returns its index (the one a [`Culprit`](crate::Culprit) names).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) -> usize {
        self.push_option(StorageOption {
            key: key.into(),
            value: value.into(),
            only_for: None,
        })
    }

    /// Adds an option that applies only to a store whose URL has `scheme` (`"s3"`, `"gs"`, `"az"`).
    pub fn push_for(
        &mut self,
        scheme: &'static str,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> usize {
        self.push_option(StorageOption {
            key: key.into(),
            value: value.into(),
            only_for: Some(scheme),
        })
    }

    fn push_option(&mut self, option: StorageOption) -> usize {
        self.options.push(option);
        self.options.len() - 1
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &StorageOption> {
        self.options.iter()
    }
}

/// A table of `key = value` where a value is a string, a whole number or a boolean (each handed to
/// `object_store` as text), as in `[storage_options]`.
impl<'de> Deserialize<'de> for StorageOptions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Value {
            Text(String),
            Flag(bool),
            Number(u64),
        }
        let table = BTreeMap::<String, Value>::deserialize(deserializer)?;
        let mut options = StorageOptions::default();
        for (key, value) in table {
            let value = match value {
                Value::Text(text) => text,
                Value::Flag(flag) => flag.to_string(),
                Value::Number(n) => n.to_string(),
            };
            options.push(key, value);
        }
        Ok(options)
    }
}

impl fmt::Debug for StorageOptions {
    /// Keys, and the values of keys that hold no secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for option in &self.options {
            list.entry(&format_args!(
                "{} = {}",
                option.key,
                shown_value(&option.key, &option.value)
            ));
        }
        list.finish()
    }
}

impl fmt::Debug for StorageOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = shown_value(&self.key, &self.value);
        write!(f, "{} = {value}", self.key)
    }
}

/// A snapshot of environment variables, taken by the caller (`std::env::vars().collect()`): the crate never
/// reads the process environment, so tests hand it any environment without changing their own.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The non-empty variables whose names start with `prefix` (e.g. `AWS_`), in name order. An empty
    /// variable counts as unset, as it does for a shell user.
    pub(crate) fn starting_with<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .iter()
            .filter(move |(name, value)| name.starts_with(prefix) && !value.is_empty())
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Environment {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl fmt::Debug for Environment {
    /// Names only: values may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

/// Whether a key's value is a credential (or may carry one), by its name: shown as `<redacted>`.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "sas",
        "key",
        "password",
        "proxy",
        "credential",
        "bearer",
        "service_account",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// How a value shows in `Debug` and logs.
pub(crate) fn shown_value(key: &str, value: &str) -> String {
    if is_secret(key) {
        "<redacted>".to_string()
    } else {
        format!("{value:?}")
    }
}
