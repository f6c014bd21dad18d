//! The real S3 and GCS servers the cloud backends' tests run against (see `ferry_testkit::server_vars`).
#![allow(unused_imports)] // each backend's test binary uses part of it

pub use ferry_testkit::{closed_port, server_vars, unique_prefix};
