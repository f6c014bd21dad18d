//! The JSON objects printed by `go mod download -json` and `go list -m -json`.

use std::path::PathBuf;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// One object of `go mod download -json` (go's `moduleJSON`). Empty fields are left out by go.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ModDownload {
    #[serde(default)]
    pub path: String,
    pub version: Option<String>,
    /// The query as asked, when it was not a canonical version (kept for debugging output).
    #[allow(dead_code)]
    pub query: Option<String>,
    pub error: Option<String>,
    pub info: Option<PathBuf>,
    pub go_mod: Option<PathBuf>,
    pub zip: Option<PathBuf>,
    pub sum: Option<String>,
    pub go_mod_sum: Option<String>,
}

/// go list's `ModuleError`.
#[derive(Debug, Deserialize)]
pub(crate) struct ModuleError {
    #[serde(rename = "Err", default)]
    pub err: String,
}

/// `go list -m -versions -json module`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListVersions {
    pub versions: Option<Vec<String>>,
    pub error: Option<ModuleError>,
}

/// `go list -m -json module@latest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListLatest {
    pub version: Option<String>,
    pub time: Option<String>,
    pub origin: Option<serde_json::Value>,
    /// The version's `.mod` file in go's module cache (`cache/download/.../@v/V.mod`), next to its `.info`.
    pub go_mod: Option<PathBuf>,
    pub error: Option<ModuleError>,
}

/// A `go list -m` answer that may carry an error.
pub(crate) trait ListAnswer: DeserializeOwned {
    fn error_message(&self) -> Option<String>;
}

impl ListAnswer for ListVersions {
    fn error_message(&self) -> Option<String> {
        self.error.as_ref().map(|e| e.err.clone())
    }
}

impl ListAnswer for ListLatest {
    fn error_message(&self) -> Option<String> {
        self.error.as_ref().map(|e| e.err.clone())
    }
}

/// The first JSON object in `stdout`, `None` if there is none (go prints one object per module,
/// and we ask about one module).
pub(crate) fn first_object<T: DeserializeOwned>(
    stdout: &[u8],
) -> Option<Result<T, serde_json::Error>> {
    serde_json::Deserializer::from_slice(stdout)
        .into_iter::<T>()
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_successful_download() {
        let stdout = br#"{
	"Path": "example.com/hello",
	"Version": "v0.0.0-20240101000000-abcdefabcdef",
	"Query": "master",
	"Info": "/w/go-1/gomodcache/cache/download/example.com/hello/@v/v0.0.0-20240101000000-abcdefabcdef.info",
	"GoMod": "/w/go-1/gomodcache/cache/download/example.com/hello/@v/v0.0.0-20240101000000-abcdefabcdef.mod",
	"Zip": "/w/go-1/gomodcache/cache/download/example.com/hello/@v/v0.0.0-20240101000000-abcdefabcdef.zip",
	"Dir": "/w/go-1/gomodcache/example.com/hello@v0.0.0-20240101000000-abcdefabcdef",
	"Sum": "h1:v/u/g2S1hZaWZImyAVXAGG42N1pWX/UTgAYidytBT84=",
	"GoModSum": "h1:fpu2YBs8Cn+uPELS7pdczZmF9hlK1PibTkwahffYMfo=",
	"Origin": {"VCS": "git", "URL": "https://h.test/r", "Hash": "abcdefabcdef"}
}
"#;
        let answer: ModDownload = first_object(stdout).unwrap().unwrap();
        assert_eq!(answer.path, "example.com/hello");
        assert_eq!(
            answer.version.as_deref(),
            Some("v0.0.0-20240101000000-abcdefabcdef")
        );
        assert_eq!(answer.query.as_deref(), Some("master"));
        assert!(answer.error.is_none());
        assert!(
            answer
                .zip
                .unwrap()
                .ends_with("v0.0.0-20240101000000-abcdefabcdef.zip")
        );
        assert_eq!(
            answer.go_mod_sum.as_deref(),
            Some("h1:fpu2YBs8Cn+uPELS7pdczZmF9hlK1PibTkwahffYMfo=")
        );
    }

    #[test]
    fn parses_a_failed_download() {
        let stdout = br#"{
	"Path": "example.com/hello",
	"Version": "v1.9.9",
	"Error": "example.com/hello@v1.9.9: reading http://127.0.0.1:1/example.com/hello/@v/v1.9.9.info: 404 Not Found"
}"#;
        let answer: ModDownload = first_object(stdout).unwrap().unwrap();
        assert!(answer.error.unwrap().ends_with("404 Not Found"));
        assert!(answer.zip.is_none() && answer.sum.is_none());
    }

    #[test]
    fn parses_list_answers() {
        let versions: ListVersions =
            first_object(br#"{"Path": "example.com/hello", "Versions": ["v1.0.0", "v1.1.0"]}"#)
                .unwrap()
                .unwrap();
        assert_eq!(versions.versions.unwrap(), ["v1.0.0", "v1.1.0"]);
        let empty: ListVersions = first_object(br#"{"Path": "example.com/hello"}"#)
            .unwrap()
            .unwrap();
        assert!(empty.versions.is_none() && empty.error_message().is_none());

        let latest: ListLatest = first_object(
            br#"{"Path": "example.com/hello", "Version": "v1.1.0", "Query": "latest", "Time": "2024-01-01T00:00:00Z", "Origin": {"VCS": "git"}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(latest.version.as_deref(), Some("v1.1.0"));
        assert_eq!(latest.time.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(latest.origin, Some(serde_json::json!({"VCS": "git"})));

        let failed: ListLatest =
            first_object(br#"{"Path": "example.com/x", "Error": {"Err": "no matching versions for query \"latest\""}}"#)
                .unwrap()
                .unwrap();
        assert_eq!(
            failed.error_message().as_deref(),
            Some("no matching versions for query \"latest\"")
        );
    }

    #[test]
    fn empty_or_broken_output() {
        assert!(first_object::<ModDownload>(b"").is_none());
        assert!(first_object::<ModDownload>(b"  \n").is_none());
        assert!(first_object::<ModDownload>(b"go: oops").unwrap().is_err());
    }
}
