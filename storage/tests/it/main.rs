//! ferry-storage's integration tests, one binary: the conformance suite run on every backend (memory,
//! file, and the real S3, GCS and Azure servers `scripts/test-servers.sh` starts), what only one backend
//! can show, and the configuration's checks.
#[macro_use]
mod conformance;
#[macro_use]
mod cloud;

mod azure;
mod config;
mod filesystem;
mod gcs;
mod hardening;
mod memory;
mod s3;
mod values;
