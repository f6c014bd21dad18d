//! Test support for Ferry: fixture Go modules, a fixture GOPROXY upstream and an isolated `go` command.
//!
//! Everything here is deliberately independent of Ferry's own crates (it has its own, minimal path
//! escaping), so tests compare Ferry against a second implementation rather than against itself.

mod fixture;
mod go;
mod servers;
mod upstream;

pub use fixture::{FixtureModule, escape, write_goproxy_tree};
pub use go::{GoHome, go_binary, go_env};
pub use servers::{
    CloudServer, azure_server, closed_port, gcs_server, s3_server, s3_server_at, server_vars,
    unique_prefix,
};
pub use upstream::{Behaviour, Upstream};
