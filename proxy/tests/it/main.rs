//! Ferry's integration tests: one binary, one module per area, one harness (`harness` over
//! `ferry-testkit`). Servers listen on 127.0.0.1 only, and the real `go` command is the client.

mod harness;

mod access;
mod airgap;
mod auth;
mod binary;
mod caching;
mod config_cmd;
mod connections;
mod deploy;
mod docs;
mod fetching;
mod go_client;
mod hardening_fetch;
mod hardening_store;
mod healthcheck;
mod layout;
mod ledger_backends;
mod lifecycle;
mod metrics;
mod modes;
mod oidc;
mod policy_cli;
mod prefetch;
mod private;
mod protocol;
mod replicas;
mod routing;
mod status_page;
mod storage_backends;
mod storage_messages;
mod streaming;
mod sumdb;
mod sumdb_kept;
mod sumdb_route;
mod tls;
mod tokens;
mod traces;
mod upstreams;
mod version_rules;
mod vuln;
mod zip_rules;
