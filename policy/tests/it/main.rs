//! The policy crate's integration tests, one binary: invalid files and their messages, warnings,
//! matching, sources and precedence, property tests, and the Athens reference cases.

mod athens;
mod fuzz;
mod invalid;
mod matching;
mod sources;
mod support;
mod warnings;
