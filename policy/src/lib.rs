//! Ferry's download policy: what to do when a module version is not in the store.
//!
//! The policy is the Athens download file (HCL): a default `mode` and `downloadURL`, then
//! `download "PATTERN" { ... }` blocks, the first matching one in file order winning. This
//! crate parses and validates it (every problem located by file, line and column), compiles the
//! patterns, and answers [`Policy::decide`] without I/O or allocation. See `README.md`.

mod error;
mod mode;
mod parse;
mod pattern;
mod policy;
mod sources;

pub use error::{Location, PolicyError, Problem, ProblemKind};
pub use mode::{Mode, UnknownMode};
pub use pattern::{Pattern, PatternError, pattern_matches};
pub use policy::{Decision, Policy, Rule};
pub use sources::{PolicySources, PolicySpec, load, load_file};
