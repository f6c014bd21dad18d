//! Fetcher configuration and the environment each go command runs with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default deadline for one go command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Default bound on what is read of each of go's stdout and stderr: 4 MiB holds the `go list -m -versions
/// -json` answer of about 250,000 versions (the largest modules have a few thousand), while an upstream
/// list of a million versions is refused: go prints 15 MiB of JSON for it, which raised Ferry's peak RSS
/// from 19 to 141 MiB when read whole, and by 5 MiB with this bound (measured with
/// `cargo test -p ferry --test hardening_fetch million -- --nocapture`, once with the bound lifted).
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 4 << 20;

/// Variables passed from Ferry's environment to go unchanged, when set. `HOME` is not among them: go
/// gets a home of its own (see [`FetcherConfig::go_command_env`]).
const PASSED_VARIABLES: &[&str] = &[
    "PATH",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "NETRC",
    // Where go (and git) find CA certificates, for upstreams behind a private CA.
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Prefixes of variables passed unchanged: git's and ssh's own settings (`GIT_SSH_COMMAND`,
/// `SSH_AUTH_SOCK`, ...).
const PASSED_PREFIXES: &[&str] = &["GIT_", "SSH_"];

/// go variables that shape fetching. Taken from Ferry's environment unless `go_env` sets them.
pub const GO_FETCH_VARIABLES: &[&str] = &[
    "GOPROXY",
    "GONOPROXY",
    "GOPRIVATE",
    "GONOSUMDB",
    "GOSUMDB",
    "GOINSECURE",
    "GOFLAGS",
    "GOAUTH",
    "GOTOOLCHAIN",
    "GOVCS",
];

/// How the fetcher runs go.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// The go binary: a path, or a bare name looked up in `PATH`. Default `go`.
    pub go_binary: PathBuf,
    /// Directory under which each go command gets its own temporary directory. Created if missing.
    pub work_dir: PathBuf,
    /// Deadline for one go command, after which it and its children are killed. Default 10 minutes.
    pub timeout: Duration,
    /// Most go commands running at once. Default: the number of CPUs, at least 2.
    pub max_concurrent: usize,
    /// Most bytes read of each of go's stdout and stderr; a command printing more is killed and fails
    /// with `OutputTooLarge`. Default [`DEFAULT_MAX_OUTPUT_BYTES`].
    pub max_output_bytes: usize,
    /// go variables set by Ferry's configuration; they win over `inherited_env`.
    pub go_env: BTreeMap<String, String>,
    /// A snapshot of Ferry's own environment; only the variables named in the README are passed on.
    /// Empty by default: the caller fills it with its own snapshot of the environment (the crate never reads it).
    pub inherited_env: BTreeMap<String, String>,
    /// Fetch canonical versions from a GOPROXY upstream over HTTP, verified as the go command verifies
    /// them, instead of through `go mod download` (see `native.rs`). Default on.
    pub native: bool,
    /// The `[[upstreams]]` tables: modules they serve are fetched from them, not from `GOPROXY`.
    pub upstreams: Vec<crate::upstreams::UpstreamRoute>,
    /// Module patterns no `[[upstreams]]` table looks up in a checksum database, besides the go command's
    /// `GONOSUMDB` (else `GOPRIVATE`): the proxy's `sumdb_private`.
    pub sumdb_private: Vec<String>,
    /// Told of each `[[upstreams]]` step's outcome.
    pub upstream_observer: Option<crate::upstreams::UpstreamObserver>,
}

impl FetcherConfig {
    /// A configuration with the defaults and an empty inherited environment.
    pub fn new(work_dir: impl Into<PathBuf>) -> FetcherConfig {
        FetcherConfig {
            go_binary: PathBuf::from("go"),
            work_dir: work_dir.into(),
            timeout: DEFAULT_TIMEOUT,
            max_concurrent: default_max_concurrent(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            go_env: BTreeMap::new(),
            inherited_env: BTreeMap::new(),
            native: true,
            upstreams: Vec::new(),
            sumdb_private: Vec::new(),
            upstream_observer: None,
        }
    }

    /// A go variable as the go command gets it from Ferry's configuration: `go_env`, else the inherited
    /// environment; `None` when neither sets it (the go command's own default then applies).
    pub fn go_variable(&self, name: &str) -> Option<&str> {
        self.go_env
            .get(name)
            .or_else(|| self.inherited_env.get(name))
            .map(String::as_str)
    }

    /// The complete environment of a go command whose temporary directory is `scratch`.
    ///
    /// Order of precedence: the isolation variables (always ours), then `go_env`, then
    /// `inherited_env`, then defaults. `GOFLAGS` always ends up with `-mod=mod`.
    ///
    /// `HOME` is the command's own (`<temp>/home`, where telemetry is off), unless `go_env` sets it: go
    /// writes its telemetry counters and reads its `go env` configuration there, and Ferry's home is not
    /// go's to write. The credentials a home usually holds stay where they were: `NETRC` defaults to
    /// `<inherited HOME>/.netrc` and `GIT_CONFIG_GLOBAL` to `<inherited HOME>/.gitconfig`.
    pub(crate) fn go_command_env(&self, scratch: &ScratchLayout) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for (key, value) in &self.inherited_env {
            let passed = PASSED_VARIABLES.contains(&key.as_str())
                || GO_FETCH_VARIABLES.contains(&key.as_str())
                || PASSED_PREFIXES.iter().any(|prefix| key.starts_with(prefix));
            if passed {
                env.insert(key.clone(), value.clone());
            }
        }
        for (key, value) in &self.go_env {
            env.insert(key.clone(), value.clone());
        }
        if !self.go_env.contains_key("HOME") {
            if let Some(home) = self.inherited_env.get("HOME").filter(|h| !h.is_empty()) {
                let home = Path::new(home);
                env.entry("NETRC".to_owned())
                    .or_insert_with(|| path_string(&home.join(".netrc")));
                env.entry("GIT_CONFIG_GLOBAL".to_owned())
                    .or_insert_with(|| path_string(&home.join(".gitconfig")));
            }
            env.insert("HOME".to_owned(), path_string(&scratch.home));
        }
        // A newer toolchain named by an upstream go.mod must not be downloaded and run.
        env.entry("GOTOOLCHAIN".to_owned())
            .or_insert_with(|| "local".to_owned());
        let flags = with_mod_mod(env.get("GOFLAGS").map(String::as_str).unwrap_or(""));
        env.insert("GOFLAGS".to_owned(), flags);
        // Everything go uses must be visible in Ferry's configuration: no `go env -w` file, no
        // workspace file, module mode always.
        env.entry("GOENV".to_owned())
            .or_insert_with(|| "off".to_owned());
        env.insert("GOWORK".to_owned(), "off".to_owned());
        env.insert("GO111MODULE".to_owned(), "on".to_owned());
        // Each command has caches of its own, so no two commands share (or corrupt) a module cache.
        env.insert("GOPATH".to_owned(), path_string(&scratch.gopath));
        env.insert("GOMODCACHE".to_owned(), path_string(&scratch.gomodcache));
        env.insert("GOCACHE".to_owned(), path_string(&scratch.gocache));
        env
    }
}

/// Default limit of concurrent go commands: one per CPU, at least 2.
pub fn default_max_concurrent() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// `flags` with any `-mod=...` replaced by `-mod=mod`: a `-mod=vendor` or `-mod=readonly` from the
/// environment would make module queries outside a module fail.
fn with_mod_mod(flags: &str) -> String {
    let mut kept: Vec<&str> = flags
        .split_whitespace()
        .filter(|flag| !flag.starts_with("-mod=") && !flag.starts_with("--mod="))
        .collect();
    kept.push("-mod=mod");
    kept.join(" ")
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The directories inside one go command's temporary directory.
#[derive(Debug, Clone)]
pub(crate) struct ScratchLayout {
    /// The empty working directory go runs in (outside any module).
    pub cwd: PathBuf,
    pub gopath: PathBuf,
    pub gomodcache: PathBuf,
    pub gocache: PathBuf,
    /// go's `HOME`, holding `.config/go/telemetry/mode` = `off`.
    pub home: PathBuf,
}

impl ScratchLayout {
    pub fn under(root: &Path) -> ScratchLayout {
        ScratchLayout {
            home: root.join("home"),
            cwd: root.join("cwd"),
            gopath: root.join("gopath"),
            gomodcache: root.join("gomodcache"),
            gocache: root.join("gocache"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn env_of(config: &FetcherConfig) -> BTreeMap<String, String> {
        config.go_command_env(&ScratchLayout::under(Path::new("/w/fetch-1")))
    }

    #[test]
    fn only_named_variables_are_inherited() {
        let mut config = FetcherConfig::new("/w");
        config.inherited_env = map(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/ferry"),
            ("https_proxy", "http://proxy.test:3128"),
            ("HTTPS_PROXY", "http://proxy.test:3128"),
            ("NO_PROXY", "localhost"),
            ("GIT_SSH_COMMAND", "ssh -i key"),
            ("SSH_AUTH_SOCK", "/run/agent"),
            ("NETRC", "/etc/ferry/netrc"),
            ("GOPRIVATE", "corp.test/*"),
            ("GOPROXY", "http://up.test"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("FERRY_TOKEN", "secret"),
            ("GOOS", "plan9"),
            ("GOMODCACHE", "/shared/cache"),
            ("LD_PRELOAD", "/evil.so"),
        ]);
        let env = env_of(&config);
        for key in [
            "PATH",
            "https_proxy",
            "HTTPS_PROXY",
            "NO_PROXY",
            "GIT_SSH_COMMAND",
            "SSH_AUTH_SOCK",
            "NETRC",
            "GOPRIVATE",
        ] {
            assert_eq!(env.get(key), config.inherited_env.get(key), "{key}");
        }
        assert_eq!(env["GOPROXY"], "http://up.test");
        for key in ["AWS_SECRET_ACCESS_KEY", "FERRY_TOKEN", "GOOS", "LD_PRELOAD"] {
            assert!(!env.contains_key(key), "{key} leaked");
        }
        assert_eq!(env["GOMODCACHE"], "/w/fetch-1/gomodcache");
        assert_eq!(env["HOME"], "/w/fetch-1/home");
    }

    #[test]
    fn go_gets_its_own_home_and_keeps_the_netrc_and_gitconfig_of_ferrys() {
        let mut config = FetcherConfig::new("/w");
        config.inherited_env = map(&[("HOME", "/home/ferry")]);
        let env = env_of(&config);
        assert_eq!(env["HOME"], "/w/fetch-1/home");
        assert_eq!(env["NETRC"], "/home/ferry/.netrc");
        assert_eq!(env["GIT_CONFIG_GLOBAL"], "/home/ferry/.gitconfig");

        // Set explicitly, they are kept.
        config.inherited_env = map(&[
            ("HOME", "/home/ferry"),
            ("NETRC", "/etc/ferry/netrc"),
            ("GIT_CONFIG_GLOBAL", "/etc/ferry/gitconfig"),
        ]);
        let env = env_of(&config);
        assert_eq!(env["NETRC"], "/etc/ferry/netrc");
        assert_eq!(env["GIT_CONFIG_GLOBAL"], "/etc/ferry/gitconfig");
        assert_eq!(env["HOME"], "/w/fetch-1/home");

        // No home to take them from: none is made up.
        let env = env_of(&FetcherConfig::new("/w"));
        assert_eq!(env["HOME"], "/w/fetch-1/home");
        assert!(!env.contains_key("NETRC") && !env.contains_key("GIT_CONFIG_GLOBAL"));

        // A HOME in go_env is the operator's explicit choice: go gets it, and nothing is redirected.
        let mut config = FetcherConfig::new("/w");
        config.inherited_env = map(&[("HOME", "/home/ferry")]);
        config.go_env = map(&[("HOME", "/srv/go-home")]);
        let env = env_of(&config);
        assert_eq!(env["HOME"], "/srv/go-home");
        assert!(!env.contains_key("NETRC") && !env.contains_key("GIT_CONFIG_GLOBAL"));
    }

    #[test]
    fn configured_go_env_wins_over_inherited() {
        let mut config = FetcherConfig::new("/w");
        config.inherited_env = map(&[
            ("GOPROXY", "http://inherited.test"),
            ("GOSUMDB", "sum.inherited.test"),
        ]);
        config.go_env = map(&[
            ("GOPROXY", "http://configured.test"),
            ("GONOSUMDB", "corp.test"),
        ]);
        let env = env_of(&config);
        assert_eq!(env["GOPROXY"], "http://configured.test");
        assert_eq!(env["GOSUMDB"], "sum.inherited.test");
        assert_eq!(env["GONOSUMDB"], "corp.test");
        assert_eq!(
            config.go_variable("GOPROXY"),
            Some("http://configured.test")
        );
        assert_eq!(config.go_variable("GOSUMDB"), Some("sum.inherited.test"));
        assert_eq!(config.go_variable("GOPRIVATE"), None);
    }

    #[test]
    fn isolation_variables_cannot_be_overridden() {
        let mut config = FetcherConfig::new("/w");
        config.go_env = map(&[
            ("GOPATH", "/elsewhere"),
            ("GOCACHE", "/elsewhere"),
            ("GOWORK", "/x/go.work"),
        ]);
        let env = env_of(&config);
        assert_eq!(env["GOPATH"], "/w/fetch-1/gopath");
        assert_eq!(env["GOCACHE"], "/w/fetch-1/gocache");
        assert_eq!(env["GOMODCACHE"], "/w/fetch-1/gomodcache");
        assert_eq!(env["GOWORK"], "off");
        assert_eq!(env["GO111MODULE"], "on");
    }

    #[test]
    fn defaults_for_toolchain_goenv_and_flags() {
        let env = env_of(&FetcherConfig::new("/w"));
        assert_eq!(env["GOTOOLCHAIN"], "local");
        assert_eq!(env["GOENV"], "off");
        assert_eq!(env["GOFLAGS"], "-mod=mod");
        assert!(
            !env.contains_key("PATH"),
            "nothing is inherited from an empty snapshot"
        );

        let mut config = FetcherConfig::new("/w");
        config.inherited_env = map(&[("GOTOOLCHAIN", "go1.99.0")]);
        assert_eq!(env_of(&config)["GOTOOLCHAIN"], "go1.99.0");
    }

    #[test]
    fn goflags_always_gets_mod_mod() {
        assert_eq!(with_mod_mod(""), "-mod=mod");
        assert_eq!(with_mod_mod("-insecure  -x"), "-insecure -x -mod=mod");
        assert_eq!(with_mod_mod("-mod=vendor -x"), "-x -mod=mod");
        assert_eq!(with_mod_mod("-mod=mod"), "-mod=mod");

        let mut config = FetcherConfig::new("/w");
        config.go_env = map(&[("GOFLAGS", "-mod=readonly -modcacherw")]);
        assert_eq!(env_of(&config)["GOFLAGS"], "-modcacherw -mod=mod");
    }

    #[test]
    fn default_concurrency_is_at_least_two() {
        assert!(FetcherConfig::new("/w").max_concurrent >= 2);
        assert_eq!(FetcherConfig::new("/w").timeout, Duration::from_secs(600));
        assert_eq!(FetcherConfig::new("/w").max_output_bytes, 4 << 20);
    }
}
