//! Helpers shared by the test modules: loading a download file from text, as a file or as a
//! `custom:` value.

use base64::Engine as _;
use ferry_policy::{Policy, PolicyError, PolicySources, load, load_file};

/// Standard base64 with padding, as `custom:` takes it.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Loads a download file given as bytes through `custom:` in the configuration's download mode.
pub fn load_custom(bytes: &[u8]) -> Result<Policy, PolicyError> {
    let value = format!("custom:{}", encode(bytes));
    load(&PolicySources {
        config_download_mode: Some(&value),
        ..PolicySources::default()
    })
}

/// Loads a valid download file given as text (panics with the problems if it is not).
pub fn policy_from_text(text: &str) -> Policy {
    load_custom(text.as_bytes()).unwrap_or_else(|error| panic!("{error}"))
}

/// Writes `text` to a download file in a temporary directory and loads it with `load_file`;
/// returns the result and the path as messages show it.
pub fn load_written(text: &str) -> (Result<Policy, PolicyError>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("download.hcl");
    std::fs::write(&path, text).unwrap();
    (load_file(&path), path.display().to_string())
}

/// Like [`load_written`] for a file that must be refused: the error and the path.
pub fn load_text(text: &str) -> (PolicyError, String) {
    let (result, path) = load_written(text);
    (result.expect_err("the file is invalid"), path)
}
