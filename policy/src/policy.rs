//! The loaded policy and its decisions.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use url::Url;

use crate::error::{PolicyError, Problem, ProblemKind};
use crate::mode::Mode;
use crate::versions::VersionRule;
use ferry_module::{AsciiSet, Pattern};

/// A loaded download policy: the `download` blocks in file order, and the mode for modules no
/// block matches. Immutable; cheap to share behind an `Arc`. To reload, load a new one and swap.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The `download` blocks, in file order (the first match wins).
    rules: Vec<Rule>,
    /// The rule for modules no block matches: the file's top level, or a bare mode.
    fallback: Rule,
    /// Candidate rules by literal leading path elements, so `decide` tries few patterns.
    index: IndexNode,
    /// Candidate rules whose pattern starts with `*.some.host`, by that host suffix.
    by_host_suffix: HashMap<Box<str>, Vec<usize>>,
    /// Candidate rules whose pattern starts with a glob but has a literal element that must
    /// equal the path's element at the same position (`*/org/*`): by position, then element.
    by_element: Vec<HashMap<Box<str>, Vec<usize>>>,
    /// What is dead or redundant in the file it was loaded from (see [`Policy::warnings`]).
    warnings: Vec<Problem>,
    /// The `versions` blocks, in file order (the first match wins).
    version_rules: Vec<VersionRule>,
}

/// One source of a decision: a `download` block, or the default mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pattern: Option<Pattern>,
    mode: Mode,
    /// Present exactly when `mode` redirects (checked at load time).
    download_url: Option<Url>,
    origin: RuleOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RuleOrigin {
    /// A `download` block at this line of this file.
    Block { file: Arc<str>, line: usize },
    /// The top-level `mode` of a file, at this line.
    TopLevel { file: Arc<str>, line: usize },
    /// A bare mode given by this source, e.g. `FERRY_DOWNLOAD_MODE`.
    Source(String),
    /// A bare mode given by the configuration file at this path.
    ConfigFile(String),
    /// Nothing was set anywhere: the built-in default, `sync`.
    BuiltIn,
}

impl Rule {
    pub(crate) fn new(
        pattern: Option<Pattern>,
        mode: Mode,
        download_url: Option<Url>,
        origin: RuleOrigin,
    ) -> Rule {
        // Only redirects use the URL; keeping it elsewhere would suggest a fetch goes there.
        let download_url = download_url.filter(|_| mode.redirects());
        Rule {
            pattern,
            mode,
            download_url,
            origin,
        }
    }

    /// The block's pattern; `None` for the default rule.
    pub fn pattern(&self) -> Option<&Pattern> {
        self.pattern.as_ref()
    }

    /// The mode this rule sets.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The redirect target; present exactly when [`Mode::redirects`].
    pub fn download_url(&self) -> Option<&Url> {
        self.download_url.as_ref()
    }

    /// The file and 1-based line the rule was written at, if it comes from a file.
    pub fn file_line(&self) -> Option<(&str, usize)> {
        match &self.origin {
            RuleOrigin::Block { file, line } | RuleOrigin::TopLevel { file, line } => {
                Some((file, *line))
            }
            RuleOrigin::Source(_) | RuleOrigin::ConfigFile(_) | RuleOrigin::BuiltIn => None,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            RuleOrigin::Block { file, line } => {
                let pattern = self.pattern.as_ref().map_or("", Pattern::as_str);
                write!(f, "download {pattern:?} at {file}:{line}")
            }
            RuleOrigin::TopLevel { file, line } => write!(f, "top-level mode at {file}:{line}"),
            RuleOrigin::Source(source) => write!(f, "default mode from {source}"),
            RuleOrigin::ConfigFile(file) => write!(f, "default mode from download mode in {file}"),
            RuleOrigin::BuiltIn => f.write_str("built-in default mode (no download mode set)"),
        }
    }
}

impl Rule {
    /// The rule as a client may read it (in a 404 or 500 body): where it is in the download file, without
    /// the path of the download file or of the configuration file on the server, which [`Rule`]'s own
    /// `Display` gives for the log and the CLI.
    pub fn for_clients(&self) -> impl fmt::Display + '_ {
        ForClients(self)
    }
}

struct ForClients<'r>(&'r Rule);

impl fmt::Display for ForClients<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = self.0;
        match &rule.origin {
            RuleOrigin::Block { line, .. } => {
                let pattern = rule.pattern.as_ref().map_or("", Pattern::as_str);
                write!(
                    f,
                    "download {pattern:?} at line {line} of the download file"
                )
            }
            RuleOrigin::TopLevel { line, .. } => {
                write!(f, "top-level mode at line {line} of the download file")
            }
            RuleOrigin::ConfigFile(_) => {
                f.write_str("default mode from download mode in the configuration file")
            }
            RuleOrigin::Source(_) | RuleOrigin::BuiltIn => write!(f, "{rule}"),
        }
    }
}

/// What to do for one module: the mode, where a redirect goes, and the rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'p> {
    /// The mode for this module.
    pub mode: Mode,
    /// The redirect base URL; `Some` exactly when `mode.redirects()`.
    pub download_url: Option<&'p Url>,
    /// The block (or default) that decided.
    pub rule: &'p Rule,
}

impl Decision<'_> {
    /// The redirect target for a request path, for the redirecting modes: the `downloadURL`
    /// (keeping its own path prefix) joined with the request path as the client sent it
    /// (case-escaped, e.g. `github.com/!azure/x/@v/v1.0.0.zip`). `None` for other modes.
    pub fn redirect_target(&self, escaped_request_path: &str) -> Option<String> {
        let base = self.download_url?;
        let mut target = base.as_str().trim_end_matches('/').to_owned();
        target.push('/');
        target.push_str(escaped_request_path.trim_start_matches('/'));
        Some(target)
    }
}

/// `MODE  URL  RULE`, e.g. `redirect  https://mirror.example/  download "github.com/pkg/*" at f.hcl:9`.
/// The URL column is `-` for modes that do not redirect.
impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.download_url.map_or("-", Url::as_str);
        write!(f, "{}  {url}  {}", self.mode, self.rule)
    }
}

/// A module path being decided, with its characters as a set for quick rejections (computed
/// only once a candidate needs it: most paths meet few candidates).
struct CandidatePath<'a> {
    text: &'a str,
    ascii: Cell<Option<AsciiSet>>,
}

impl CandidatePath<'_> {
    fn ascii(&self) -> AsciiSet {
        match self.ascii.get() {
            Some(set) => set,
            None => {
                let set = AsciiSet::of(self.text);
                self.ascii.set(Some(set));
                set
            }
        }
    }
}

/// A node of the literal-prefix index: the rules whose literal leading elements end here, and
/// the deeper nodes by next element.
#[derive(Debug, Clone, Default)]
struct IndexNode {
    /// Rule indices, ascending (file order).
    rules: Vec<usize>,
    children: HashMap<Box<str>, IndexNode>,
}

impl Policy {
    pub(crate) fn from_rules(rules: Vec<Rule>, fallback: Rule) -> Policy {
        let mut index = IndexNode::default();
        let mut by_host_suffix: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut by_element: Vec<HashMap<Box<str>, Vec<usize>>> = Vec::new();
        for (position, rule) in rules.iter().enumerate() {
            let Some(pattern) = &rule.pattern else {
                continue;
            };
            let mut literal_elements = pattern.literal_elements().peekable();
            if literal_elements.peek().is_none() {
                if let Some(suffix) = pattern.host_suffix() {
                    by_host_suffix
                        .entry(suffix.into())
                        .or_default()
                        .push(position);
                    continue;
                }
                if let Some((at, element)) = pattern.aligned_literal_element() {
                    if by_element.len() <= at {
                        by_element.resize_with(at + 1, HashMap::new);
                    }
                    by_element[at]
                        .entry(element.into())
                        .or_default()
                        .push(position);
                    continue;
                }
            }
            let mut node = &mut index;
            for element in literal_elements {
                node = node.children.entry(element.into()).or_default();
            }
            node.rules.push(position);
        }
        Policy {
            rules,
            fallback,
            index,
            by_host_suffix,
            by_element,
            warnings: Vec::new(),
            version_rules: Vec::new(),
        }
    }

    pub(crate) fn with_warnings(mut self, warnings: Vec<Problem>) -> Policy {
        self.warnings = warnings;
        self
    }

    pub(crate) fn with_version_rules(mut self, rules: Vec<VersionRule>) -> Policy {
        self.version_rules = rules;
        self
    }

    /// The version rules for a module: the first `versions` block whose pattern matches it. `None` (the
    /// common case, one check of an empty list) when no block does: every version may be served.
    pub fn versions(&self, module_path: &str) -> Option<&VersionRule> {
        self.version_rules
            .iter()
            .find(|rule| rule.pattern().matches(module_path))
    }

    /// Whether any `versions` block judges ages (so that first sightings are worth recording).
    pub fn judges_ages(&self) -> bool {
        self.version_rules.iter().any(VersionRule::has_min_age)
    }

    /// The warnings of the download file it was loaded from, in file order: blocks that never
    /// apply (a repeated pattern, a pattern that matches no module path, a block an earlier
    /// broader pattern makes unreachable). The policy decides as Athens would with them; they
    /// are worth fixing. Each displays as `FILE:LINE:COL: warning: problem; fix`.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Whether any mode of the policy (a block's or the default) fetches from the upstream, so
    /// that whoever serves it needs an upstream (see [`Mode::fetches`]).
    pub fn fetches(&self) -> bool {
        self.rules
            .iter()
            .chain([&self.fallback])
            .any(|rule| rule.mode.fetches())
    }

    /// A policy with no `download` blocks: every module gets `mode` (and `download_url`, which a
    /// redirecting mode requires).
    pub fn single(mode: Mode, download_url: Option<Url>) -> Result<Policy, PolicyError> {
        let origin = "the given default mode";
        if let Some(url) = &download_url
            && let Err((message, fix)) = crate::download_url::check_download_url(url.as_str())
        {
            return Err(PolicyError::single(Problem::about_value(
                origin,
                ProblemKind::BadDownloadUrl,
                message,
                fix,
            )));
        }
        if mode.redirects() && download_url.is_none() {
            return Err(PolicyError::single(Problem::about_value(
                origin,
                ProblemKind::MissingDownloadUrl,
                format!("mode {mode} redirects but no download URL is given"),
                "give a download URL such as https://mirror.example/prefix".to_owned(),
            )));
        }
        let rule = Rule::new(
            None,
            mode,
            download_url,
            RuleOrigin::Source("the server's settings".to_owned()),
        );
        Ok(Policy::from_rules(Vec::new(), rule))
    }

    /// Decides what to do for `module_path` (the real, decoded, case-sensitive path): the first
    /// `download` block in file order whose pattern matches, else the default. Allocates nothing.
    pub fn decide(&self, module_path: &str) -> Decision<'_> {
        let rule = self
            .first_match(module_path)
            .map_or(&self.fallback, |position| &self.rules[position]);
        Decision {
            mode: rule.mode,
            download_url: rule.download_url.as_ref(),
            rule,
        }
    }

    /// The index of the first rule whose pattern matches. Only candidates are tried: rules whose
    /// literal leading elements equal the path's, rules whose `*.host` suffix ends the path's
    /// first element (found by looking up the element from each of its dots), and rules with a
    /// literal element equal to the path's element at its position. Each
    /// candidate list is in file order, so it is scanned only up to its first match or up to
    /// the best match found so far.
    fn first_match(&self, module_path: &str) -> Option<usize> {
        let path = CandidatePath {
            text: module_path,
            ascii: Cell::new(None),
        };
        let mut best: Option<usize> = None;
        let mut node = &self.index;
        let mut elements = path.text.split('/');
        let first_element = path.text.split('/').next().unwrap_or_default();
        loop {
            self.scan(&node.rules, &path, &mut best);
            match elements
                .next()
                .and_then(|element| node.children.get(element))
            {
                Some(child) => node = child,
                None => break,
            }
        }
        if !self.by_host_suffix.is_empty() {
            for (dot, _) in first_element.match_indices('.') {
                if let Some(candidates) = self.by_host_suffix.get(&first_element[dot..]) {
                    self.scan(candidates, &path, &mut best);
                }
            }
        }
        for (by_this_element, element) in self.by_element.iter().zip(path.text.split('/')) {
            if let Some(candidates) = by_this_element.get(element) {
                self.scan(candidates, &path, &mut best);
            }
        }
        best
    }

    /// Scans candidates (ascending rule positions) for the first match before `best`.
    fn scan(&self, candidates: &[usize], path: &CandidatePath, best: &mut Option<usize>) {
        for &position in candidates {
            if best.is_some_and(|best| position >= best) {
                return;
            }
            let matches = self.rules[position]
                .pattern
                .as_ref()
                .is_some_and(|pattern| pattern.matches_with(path.text, path.ascii()));
            if matches {
                *best = Some(position);
                return;
            }
        }
    }

    /// The same as [`Policy::decide`] by trying every block in order; for tests of the index.
    #[doc(hidden)]
    pub fn decide_by_scan(&self, module_path: &str) -> Decision<'_> {
        let rule = self
            .rules
            .iter()
            .find(|rule| {
                rule.pattern
                    .as_ref()
                    .is_some_and(|pattern| pattern.matches(module_path))
            })
            .unwrap_or(&self.fallback);
        Decision {
            mode: rule.mode,
            download_url: rule.download_url.as_ref(),
            rule,
        }
    }

    /// The `download` blocks, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule for modules no block matches.
    pub fn default_rule(&self) -> &Rule {
        &self.fallback
    }

    /// One line describing the policy, for `ferry policy validate` and start-up logs, e.g.
    /// `3 download blocks; other modules: async_redirect https://upstream.example/ (top-level mode at f.hcl:2)`.
    pub fn summary(&self) -> String {
        let blocks = match self.rules.len() {
            1 => "1 download block".to_owned(),
            count => format!("{count} download blocks"),
        };
        let url = self
            .fallback
            .download_url
            .as_ref()
            .map(|url| format!(" {url}"))
            .unwrap_or_default();
        format!(
            "{blocks}; other modules: {}{url} ({})",
            self.fallback.mode, self.fallback
        )
    }

    /// The table `ferry policy check MODULE...` prints: a header, then one line per module
    /// with its mode, redirect URL (`-` when the mode does not redirect) and deciding rule.
    pub fn check_report<S: AsRef<str>>(&self, module_paths: &[S]) -> String {
        let mut rows: Vec<[String; 4]> = vec![[
            "MODULE".to_owned(),
            "MODE".to_owned(),
            "URL".to_owned(),
            "RULE".to_owned(),
        ]];
        for module_path in module_paths {
            let module_path = module_path.as_ref();
            let decision = self.decide(module_path);
            rows.push([
                module_path.to_owned(),
                decision.mode.to_string(),
                decision
                    .download_url
                    .map_or_else(|| "-".to_owned(), |url| url.to_string()),
                decision.rule.to_string(),
            ]);
        }
        let mut widths = [0usize; 3];
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut report = String::new();
        for [module, mode, url, rule] in &rows {
            let _ = writeln!(
                report,
                "{module:<w0$}  {mode:<w1$}  {url:<w2$}  {rule}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
        }
        report
    }
}
