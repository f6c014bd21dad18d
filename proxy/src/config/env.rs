//! The environment, read through [`Environment`] so that tests hand the loader any environment without
//! changing the process's own.

use std::collections::BTreeMap;

/// Read access to environment variables.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable, for what is passed on to the `go` command and the store.
    fn vars(&self) -> BTreeMap<String, String>;
}

/// The process environment, read once: the one snapshot that every setting, the go command's inherited
/// environment and the store's options are then read from (the libraries never read it themselves).
/// Variables that are not valid Unicode are left out (`std::env::vars` would panic on them).
pub fn process_environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

impl Environment for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.is_empty())
    }

    fn vars(&self) -> BTreeMap<String, String> {
        self.clone()
    }
}
