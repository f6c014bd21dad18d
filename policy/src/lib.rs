//! Ferry's download policy: what to do when a module version is not in the store.
//!
//! The policy is the Athens download file (HCL): a default `mode` and `downloadURL`, then
//! `download "PATTERN" { ... }` blocks, the first matching one in file order winning. This
//! crate parses and validates it (every problem located by file, line and column), compiles the
//! patterns, and answers [`Policy::decide`] without I/O or allocation. See `README.md`.
//!
//! ```
//! use ferry_policy::{Mode, PolicySources, load};
//!
//! // The caller reads FERRY_DOWNLOAD_MODE, ATHENS_DOWNLOAD_MODE, FERRY_DOWNLOAD_URL, ... and passes them in.
//! let policy = load(&PolicySources {
//!     ferry_download_mode: Some("redirect"),
//!     ferry_download_url: Some("https://mirror.example/prefix"),
//!     ..PolicySources::default()
//! })?;
//! let decision = policy.decide("github.com/pkg/errors");
//! assert_eq!(decision.mode, Mode::Redirect);
//! assert_eq!(
//!     decision.redirect_target("github.com/pkg/errors/@v/list").as_deref(),
//!     Some("https://mirror.example/prefix/github.com/pkg/errors/@v/list"),
//! );
//! assert_eq!(decision.rule.to_string(), "default mode from FERRY_DOWNLOAD_MODE");
//! # Ok::<(), ferry_policy::PolicyError>(())
//! ```

mod download_url;
mod error;
mod mode;
mod parse;
mod parse_versions;
mod policy;
mod sources;
mod versions;

pub use error::{Location, PolicyError, Problem, ProblemKind, Severity};
pub use ferry_module::{Pattern, PatternError, pattern_matches};
pub use mode::{Mode, UnknownMode};
pub use policy::{Decision, Policy, Rule};
pub use sources::{PolicySources, PolicySpec, load, load_file};
pub use versions::{Refusal, Refused, VersionRange, VersionRule};
