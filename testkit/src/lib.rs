//! Test support for Ferry, the one harness every test binary shares: fixture Go modules, a fixture GOPROXY
//! upstream, a fixture checksum database, an isolated `go` command, test certificates and credentials, a
//! fixture OIDC issuer, an in-process server, a headless browser, a program run as a process, HTTP clients,
//! bounded waiting, captured logs and the test-server lookup.
//!
//! Everything here is deliberately independent of Ferry's own crates (it has its own, minimal path
//! escaping), so tests compare Ferry against a second implementation rather than against itself.

mod browser;
mod files;
mod fixture;
mod git_host;
mod go;
pub mod http;
mod in_process;
mod logs;
mod oidc;
mod process;
mod servers;
mod sumdb;
mod tls;
mod upstream;
mod wait;

pub use browser::Browser;
pub use files::{Tmpfs, entries, processes_under};
pub use fixture::{FixtureModule, escape, incompressible, write_goproxy_tree};
pub use git_host::{Counts, GitHttpHost};
pub use go::{GoHome, go_binary, go_env, mod_download_args};
pub use in_process::InProcess;
pub use logs::{capture_logs, logged};
pub use oidc::{IssuerKey, TestIssuer};
pub use process::{Process, clean_command};
pub use servers::{
    CloudServer, azure_server, closed_port, gcs_server, s3_server, s3_server_at, server_vars,
    tool_path, unique_prefix,
};
pub use sumdb::{SumDbFixture, fixture_binary, go_program};
pub use tls::{ServerPair, TestCa, curl, htpasswd_line, htpasswd_line_at_cost};
pub use upstream::{Behaviour, Upstream};
pub use wait::eventually;
