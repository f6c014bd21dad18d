//! Errors of loading a policy. Every problem carries where it is and what to write instead.

use std::fmt;
use std::path::PathBuf;

/// Why a policy could not be loaded. `Display` lists every problem, one per line, as
/// `WHERE:LINE:COL: problem; fix` (or `WHERE: problem; fix` when there is no line); the file's
/// warnings are listed among them as `WHERE:LINE:COL: warning: problem; fix`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The download file named by `file:PATH` (or given to [`crate::load_file`]) cannot be read.
    #[error(
        "{origin}: cannot read the download file {}: {source}; check the path and its permissions",
        path.display()
    )]
    Unreadable {
        /// Where the path came from, e.g. `FERRY_DOWNLOAD_MODE` or the path itself.
        origin: String,
        /// The path that could not be read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The policy was read but is invalid; every problem found is listed.
    #[error("{}", DisplayProblems(.0))]
    Invalid(Vec<Problem>),
}

impl PolicyError {
    /// The problems of an invalid policy, errors and warnings in file order (empty for an
    /// unreadable file).
    pub fn problems(&self) -> &[Problem] {
        match self {
            PolicyError::Invalid(problems) => problems,
            PolicyError::Unreadable { .. } => &[],
        }
    }

    pub(crate) fn single(problem: Problem) -> PolicyError {
        PolicyError::Invalid(vec![problem])
    }
}

struct DisplayProblems<'a>(&'a [Problem]);

impl fmt::Display for DisplayProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Whether a problem stops the policy from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The policy is refused.
    Error,
    /// The policy loads (and decides as Athens would), but part of it is dead or redundant: a block
    /// that can never apply. Listed by [`crate::Policy::warnings`], printed by `ferry policy
    /// validate` and logged at start-up and on reload.
    Warning,
}

/// One problem of a policy, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Whether it stops the policy from loading.
    pub severity: Severity,
    /// Where it is.
    pub location: Location,
    /// What kind of problem it is.
    pub kind: ProblemKind,
    /// What is wrong, e.g. `unknown mode "syncc"`.
    pub message: String,
    /// What to write instead, e.g. `write one of sync, async, none, redirect, async_redirect`.
    pub fix: String,
}

impl Problem {
    /// An error about a whole value (a variable, a setting) rather than a place in a file.
    pub(crate) fn about_value(
        origin: &str,
        kind: ProblemKind,
        message: String,
        fix: String,
    ) -> Problem {
        Problem {
            severity: Severity::Error,
            location: Location {
                origin: origin.to_owned(),
                line_column: None,
            },
            kind,
            message,
            fix,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(
            f,
            "{}: {label}{}; {}",
            self.location, self.message, self.fix
        )
    }
}

/// Where a problem is: a file (or a variable holding the file), and a 1-based line and column
/// (in characters) when the problem is inside the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file path, or a name such as `ATHENS_DOWNLOAD_MODE (custom:)`.
    pub origin: String,
    /// Line and column, both 1-based.
    pub line_column: Option<(usize, usize)>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_column {
            Some((line, column)) => write!(f, "{}:{line}:{column}", self.origin),
            None => f.write_str(&self.origin),
        }
    }
}

/// The kinds of problem, for callers and tests that act on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The text is not valid HCL.
    Syntax,
    /// The file is not UTF-8 text.
    NotText,
    /// An attribute other than `mode` / `downloadURL`.
    UnknownKey,
    /// A block other than `download "PATTERN" { ... }`.
    UnknownBlock,
    /// A `download` block without exactly one label.
    BadLabel,
    /// The same key twice in one body.
    DuplicateKey,
    /// A value that must be a plain quoted string is something else.
    NotAString,
    /// A required `mode` is missing.
    MissingMode,
    /// A mode name that is not one of the five.
    UnknownMode,
    /// A malformed glob pattern.
    BadPattern,
    /// The same pattern in two blocks: the later block never applies (a warning).
    DuplicatePattern,
    /// A pattern that can never match a module path: empty, or with an empty element such as a
    /// trailing `/` (a warning: Athens loads it and never applies the block either).
    DeadPattern,
    /// A block whose every module an earlier block's broader pattern already takes (a warning).
    UnreachableBlock,
    /// A redirecting block without its own `downloadURL` that a later block with one may also
    /// match: Athens would redirect the modules both match to the later block's URL, Ferry to the
    /// top-level one (a warning).
    AthensUrlDiffers,
    /// A redirecting mode with no `downloadURL` reachable for it.
    MissingDownloadUrl,
    /// A `downloadURL` that is not an absolute http(s) URL without query or fragment, or that
    /// would leak or break in a `Location` header: credentials, a line break, a GOPROXY list.
    BadDownloadUrl,
    /// A `custom:` value that is not standard base64.
    BadBase64,
    /// A `versions` block's value that is not a duration, version or range.
    BadVersionRule,
}
