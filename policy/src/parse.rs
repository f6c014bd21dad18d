//! The download file: HCL text to a validated [`Policy`], collecting every problem with its
//! line and column.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Block, Body, Structure};
use url::Url;

use crate::download_url::{EXAMPLE_URL, check_download_url};
use crate::error::{Location, PolicyError, Problem, ProblemKind, Severity};
use crate::mode::{MODE_NAMES, Mode, suggest_mode};
use crate::policy::{Policy, Rule, RuleOrigin};
use crate::versions::VERSIONS_BLOCK;
use ferry_module::{Elements, Pattern};

const MODE_KEY: &str = "mode";
const URL_KEY: &str = "downloadURL";
const BLOCK_NAME: &str = "download";

/// Parses and validates a download file's bytes. `origin` names the file in messages (a path,
/// or e.g. `ATHENS_DOWNLOAD_MODE (custom:)`).
pub(crate) fn parse_policy(bytes: &[u8], origin: &str) -> Result<Policy, PolicyError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let valid = &bytes[..error.valid_up_to()];
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let mut reporter = Reporter::new(origin, valid);
            reporter.problem(
                valid.len()..valid.len(),
                ProblemKind::NotText,
                "the file is not UTF-8 text".to_owned(),
                "save the download file as UTF-8".to_owned(),
            );
            return Err(reporter.into_error());
        }
    };
    // A byte-order mark is not HCL, but editors add it; skipping it keeps columns right.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reporter = Reporter::new(origin, text);
    let body = match hcl::edit::parser::parse_body(text) {
        Ok(body) => body,
        Err(error) => {
            let location = error.location();
            // The parser itself rejects a repeated key; say so plainly rather than as syntax.
            let (kind, message, fix) = if error.message().contains("redefined attribute") {
                (
                    ProblemKind::DuplicateKey,
                    "this key is already set earlier in the same body".to_owned(),
                    "keep one of the two".to_owned(),
                )
            } else {
                (
                    ProblemKind::Syntax,
                    format!("HCL syntax error: {}", error.message()),
                    format!(
                        "write one key = \"value\" per line, and blocks as {BLOCK_NAME} \"PATTERN\" {{ ... }} with each key on its own line inside"
                    ),
                )
            };
            reporter.problems.push(Problem {
                severity: Severity::Error,
                location: Location {
                    origin: origin.to_owned(),
                    line_column: Some((location.line(), location.column())),
                },
                kind,
                message,
                fix,
            });
            return Err(reporter.into_error());
        }
    };
    let policy = reporter.file(&body);
    let has_errors = reporter
        .problems
        .iter()
        .any(|problem| problem.severity == Severity::Error);
    match policy {
        Some(policy) if !has_errors => Ok(policy.with_warnings(reporter.into_problems())),
        _ => Err(reporter.into_error()),
    }
}

/// A checked `mode` or `downloadURL` attribute: its value (if valid) and where it is.
struct Setting<T> {
    value: Option<T>,
    span: Range<usize>,
    /// Written as `""`: for `downloadURL`, "none set" (as in Athens), not an error.
    empty: bool,
}

impl<T> Setting<T> {
    /// Written with a value (a valid one or not): `downloadURL = ""` does not count.
    fn is_set(setting: &Option<Setting<T>>) -> bool {
        setting.as_ref().is_some_and(|setting| !setting.empty)
    }
}

/// The settings of one body (top level, or a `download` block).
struct Settings {
    mode: Option<Setting<Mode>>,
    download_url: Option<Setting<Url>>,
}

/// Collects problems while walking the file.
pub(crate) struct Reporter<'t> {
    pub(crate) origin: Arc<str>,
    text: &'t str,
    problems: Vec<Problem>,
}

impl<'t> Reporter<'t> {
    fn new(origin: &str, text: &'t str) -> Reporter<'t> {
        Reporter {
            origin: origin.into(),
            text,
            problems: Vec::new(),
        }
    }

    /// The problems found, errors and warnings, in file order.
    fn into_problems(mut self) -> Vec<Problem> {
        self.problems
            .sort_by_key(|problem| problem.location.line_column.unwrap_or((0, 0)));
        self.problems
    }

    fn into_error(self) -> PolicyError {
        PolicyError::Invalid(self.into_problems())
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    pub(crate) fn problem(
        &mut self,
        span: Range<usize>,
        kind: ProblemKind,
        message: String,
        fix: String,
    ) {
        self.report(Severity::Error, span, kind, message, fix);
    }

    fn warning(&mut self, span: Range<usize>, kind: ProblemKind, message: String, fix: String) {
        self.report(Severity::Warning, span, kind, message, fix);
    }

    fn report(
        &mut self,
        severity: Severity,
        span: Range<usize>,
        kind: ProblemKind,
        message: String,
        fix: String,
    ) {
        let line_column = self.line_column(span.start);
        self.problems.push(Problem {
            severity,
            location: Location {
                origin: self.origin.to_string(),
                line_column: Some(line_column),
            },
            kind,
            message,
            fix,
        });
    }

    /// Walks the whole file; returns the policy if the parts needed to build one are valid
    /// (the caller still checks that no problem was reported).
    fn file(&mut self, body: &Body) -> Option<Policy> {
        let top = self.settings(body, None);
        let top_url = top.download_url.as_ref().and_then(|url| url.value.clone());
        let top_url_written = Setting::is_set(&top.download_url);
        if top.mode.is_none() {
            self.problem(
                0..0,
                ProblemKind::MissingMode,
                "the file sets no top-level mode".to_owned(),
                format!(
                    "add {MODE_KEY} = \"sync\" (or another of {MODE_NAMES}) at the top: it applies to modules no {BLOCK_NAME} block matches"
                ),
            );
        }
        let mut rules = Vec::new();
        // The label span of each rule and whether its block sets its own downloadURL, for the
        // warnings that compare blocks.
        let mut blocks = Vec::new();
        // Pattern -> (line, byte offset) of the first block using it.
        let mut first_pattern_line: HashMap<String, (usize, usize)> = HashMap::new();
        let mut version_rules = Vec::new();
        for structure in body.iter() {
            let Structure::Block(block) = structure else {
                continue;
            };
            if block.has_ident(VERSIONS_BLOCK) {
                version_rules.extend(self.versions_block(block));
                continue;
            }
            if !block.has_ident(BLOCK_NAME) {
                let name = block.ident.as_str();
                let fix = if name.eq_ignore_ascii_case(BLOCK_NAME) || name.starts_with("downl") {
                    format!("write {BLOCK_NAME} \"PATTERN\" {{ ... }}")
                } else {
                    format!(
                        "the blocks are {BLOCK_NAME} \"PATTERN\" {{ {MODE_KEY} = \"...\" }} and {VERSIONS_BLOCK} \"PATTERN\" {{ min_age = \"...\" }}; remove this block"
                    )
                };
                self.problem(
                    span_of(&block.ident),
                    ProblemKind::UnknownBlock,
                    format!("unknown block {name:?}"),
                    fix,
                );
                continue;
            }
            if let Some((rule, own_url)) = self.download_block(
                block,
                top_url.as_ref(),
                top_url_written,
                &mut first_pattern_line,
            ) {
                blocks.push(BlockFacts {
                    label_span: block.labels.first().map_or(0..0, span_of),
                    own_url,
                    elements: rule.pattern().and_then(Pattern::elements),
                });
                rules.push(rule);
            }
        }
        self.unreachable_blocks(&rules, &blocks);
        self.athens_url_fallthrough(&rules, &blocks, top_url.as_ref());

        let top_mode = top.mode?;
        let mode = top_mode.value?;
        if mode.redirects() && !top_url_written {
            self.problem(
                top_mode.span.clone(),
                ProblemKind::MissingDownloadUrl,
                format!(
                    "top-level mode {mode} redirects but the file sets no top-level downloadURL (an empty one counts as none)"
                ),
                format!("add {URL_KEY} = {EXAMPLE_URL} at the top of the file"),
            );
        }
        let line = self.line_column(top_mode.span.start).0;
        let fallback = Rule::new(
            None,
            mode,
            top_url,
            RuleOrigin::TopLevel {
                file: self.origin.clone(),
                line,
            },
        );
        Some(Policy::from_rules(rules, fallback).with_version_rules(version_rules))
    }

    fn download_block(
        &mut self,
        block: &Block,
        top_url: Option<&Url>,
        top_url_written: bool,
        first_pattern_line: &mut HashMap<String, (usize, usize)>,
    ) -> Option<(Rule, Option<Url>)> {
        let block_span = span_of(block);
        let line = self.line_column(block_span.start).0;
        let settings = self.settings(&block.body, Some(block));

        let pattern = match block.labels.as_slice() {
            [label] => {
                let label_span = span_of(label);
                match Pattern::new(label.as_str()) {
                    Ok(pattern) => {
                        let (first_line, first_start) = *first_pattern_line
                            .entry(pattern.as_str().to_owned())
                            .or_insert((line, block_span.start));
                        if first_start != block_span.start {
                            self.warning(
                                label_span,
                                ProblemKind::DuplicatePattern,
                                format!(
                                    "pattern {:?} is already used by the block at line {first_line}, so this block never applies",
                                    pattern.as_str()
                                ),
                                "merge the two blocks or delete this one".to_owned(),
                            );
                        } else if let Some((message, fix)) = pattern.never_matches() {
                            self.warning(label_span, ProblemKind::DeadPattern, message, fix);
                        }
                        Some(pattern)
                    }
                    Err(error) => {
                        self.problem(
                            label_span,
                            ProblemKind::BadPattern,
                            format!("malformed pattern {:?}", label.as_str()),
                            error.to_string(),
                        );
                        None
                    }
                }
            }
            labels => {
                let found = labels.len();
                self.problem(
                    span_of(&block.ident),
                    ProblemKind::BadLabel,
                    format!("a {BLOCK_NAME} block needs exactly one pattern, found {found}"),
                    format!("write {BLOCK_NAME} \"github.com/org/*\" {{ ... }}: one quoted pattern per block"),
                );
                None
            }
        };

        let Some(mode_setting) = &settings.mode else {
            self.problem(
                span_of(&block.ident),
                ProblemKind::MissingMode,
                format!("this {BLOCK_NAME} block sets no mode"),
                format!("add {MODE_KEY} = \"sync\" (or another of {MODE_NAMES}) inside the block"),
            );
            return None;
        };
        let mode = mode_setting.value?;
        let block_url_written = Setting::is_set(&settings.download_url);
        if mode.redirects() && !block_url_written && !top_url_written {
            self.problem(
                mode_setting.span.clone(),
                ProblemKind::MissingDownloadUrl,
                format!(
                    "mode {mode} redirects but neither this block nor the top level sets a downloadURL (an empty one counts as none)"
                ),
                format!("add {URL_KEY} = {EXAMPLE_URL} inside the block or at the top of the file"),
            );
        }
        let own_url = settings
            .download_url
            .and_then(|setting| setting.value.filter(|_| !setting.empty));
        let download_url = match &own_url {
            Some(url) => Some(url.clone()),
            None if block_url_written => None,
            None => top_url.cloned(),
        };
        let rule = Rule::new(
            Some(pattern?),
            mode,
            download_url,
            RuleOrigin::Block {
                file: self.origin.clone(),
                line,
            },
        );
        Some((rule, own_url))
    }

    /// Reads the `mode` and `downloadURL` attributes of a body, reporting unknown or repeated
    /// keys, non-string values and bad values. `block` is `None` for the top level, where
    /// blocks are handled by the caller; inside a block, any nested block is unknown.
    fn settings(&mut self, body: &Body, block: Option<&Block>) -> Settings {
        let mut settings = Settings {
            mode: None,
            download_url: None,
        };
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attribute) => self.attribute(attribute, &mut settings, block),
                Structure::Block(nested) => {
                    if block.is_some() {
                        self.problem(
                            span_of(&nested.ident),
                            ProblemKind::UnknownBlock,
                            format!(
                                "unknown block {:?} inside a {BLOCK_NAME} block",
                                nested.ident.as_str()
                            ),
                            format!(
                                "a {BLOCK_NAME} block holds only {MODE_KEY} and {URL_KEY}; {BLOCK_NAME} blocks cannot nest"
                            ),
                        );
                    }
                }
            }
        }
        settings
    }

    fn attribute(&mut self, attribute: &Attribute, settings: &mut Settings, block: Option<&Block>) {
        let key = attribute.key.as_str();
        let key_span = span_of(&attribute.key);
        let value_span = span_of(&attribute.value);
        let previous_span = match key {
            MODE_KEY => settings.mode.as_ref().map(|setting| setting.span.clone()),
            URL_KEY => settings
                .download_url
                .as_ref()
                .map(|setting| setting.span.clone()),
            _ => {
                let fix = if key.eq_ignore_ascii_case(MODE_KEY) {
                    format!("write {MODE_KEY}")
                } else if key.replace(['_', '-'], "").eq_ignore_ascii_case(URL_KEY) {
                    format!("write {URL_KEY}")
                } else if block.is_some() {
                    format!("a {BLOCK_NAME} block holds only {MODE_KEY} and {URL_KEY}; remove it")
                } else {
                    format!(
                        "the top level holds only {MODE_KEY}, {URL_KEY} and {BLOCK_NAME} blocks; remove it"
                    )
                };
                self.problem(
                    key_span,
                    ProblemKind::UnknownKey,
                    format!("unknown key {key:?}"),
                    fix,
                );
                return;
            }
        };
        if let Some(previous) = previous_span {
            let (line, _) = self.line_column(previous.start);
            self.problem(
                key_span,
                ProblemKind::DuplicateKey,
                format!("{key} is already set at line {line}"),
                "keep one of the two".to_owned(),
            );
            return;
        }
        let Expression::String(value) = &attribute.value else {
            let example = if key == MODE_KEY {
                "\"sync\""
            } else {
                EXAMPLE_URL
            };
            self.problem(
                value_span.clone(),
                ProblemKind::NotAString,
                format!("the value of {key} must be a quoted string"),
                format!("write {key} = {example}"),
            );
            // Record the key so a missing-mode problem is not reported on top of this one.
            match key {
                MODE_KEY => {
                    settings.mode = Some(Setting {
                        value: None,
                        span: value_span,
                        empty: false,
                    })
                }
                _ => {
                    settings.download_url = Some(Setting {
                        value: None,
                        span: value_span,
                        empty: false,
                    })
                }
            }
            return;
        };
        let text = value.as_str();
        if key == MODE_KEY {
            let mode = match text.parse::<Mode>() {
                Ok(mode) => Some(mode),
                Err(_) => {
                    let fix = match suggest_mode(text) {
                        Some(mode) => format!("write {MODE_KEY} = \"{mode}\""),
                        None => format!("write one of {MODE_NAMES}"),
                    };
                    self.problem(
                        value_span.clone(),
                        ProblemKind::UnknownMode,
                        format!("unknown mode {text:?}"),
                        fix,
                    );
                    None
                }
            };
            settings.mode = Some(Setting {
                value: mode,
                span: value_span,
                empty: text.is_empty(),
            });
        } else {
            // `downloadURL = ""` means "none set", as in Athens: a block falls back to the top
            // level, and a redirect with no URL reachable is reported where the mode is.
            let url = match check_download_url(text) {
                _ if text.is_empty() => None,
                Ok(url) => Some(url),
                Err((message, fix)) => {
                    self.problem(
                        value_span.clone(),
                        ProblemKind::BadDownloadUrl,
                        message,
                        fix,
                    );
                    None
                }
            };
            settings.download_url = Some(Setting {
                value: url,
                span: value_span,
                empty: text.is_empty(),
            });
        }
    }
}

impl Reporter<'_> {
    /// Warns about each block that an earlier block's broader pattern makes unreachable: every
    /// module it matches is already taken by the earlier one (a conservative check: see
    /// [`Pattern::is_covered_by`]). Repeated and dead patterns have their own warnings.
    fn unreachable_blocks(&mut self, rules: &[Rule], blocks: &[BlockFacts]) {
        let mut seen = HashSet::new();
        for (position, rule) in rules.iter().enumerate() {
            let Some(pattern) = rule.pattern() else {
                continue;
            };
            // A repeated pattern has its own warning.
            if !seen.insert(pattern.as_str()) {
                continue;
            }
            let Some(elements) = &blocks[position].elements else {
                continue;
            };
            let earlier = rules[..position]
                .iter()
                .zip(blocks)
                .find(|(_, facts)| {
                    facts
                        .elements
                        .as_ref()
                        .is_some_and(|earlier| earlier.covers(elements))
                })
                .map(|(earlier, _)| earlier);
            let Some(earlier) = earlier else { continue };
            let earlier_pattern = earlier.pattern().map_or("", Pattern::as_str);
            let earlier_line = earlier.file_line().map_or(0, |(_, line)| line);
            self.warning(
                blocks[position].label_span.clone(),
                ProblemKind::UnreachableBlock,
                format!(
                    "every module pattern {:?} matches is already matched by {earlier_pattern:?} in the block at line {earlier_line} ({}), so this block ({}) never applies",
                    pattern.as_str(),
                    earlier.mode(),
                    rule.mode(),
                ),
                format!(
                    "move this block above line {earlier_line} if it is meant to win (the first matching block decides), or delete it"
                ),
            );
        }
    }
}

impl Reporter<'_> {
    /// Warns about each redirecting block without its own `downloadURL` that a later block with
    /// one may also match (see [`Pattern::may_overlap`]). Athens's `URL()` does not stop at the
    /// block that decides the mode: it returns the first matching block's URL that is not empty,
    /// so Athens would redirect the modules both match to the later block's URL, where Ferry
    /// (like Athens's documentation) uses the top-level one.
    fn athens_url_fallthrough(
        &mut self,
        rules: &[Rule],
        blocks: &[BlockFacts],
        top_url: Option<&Url>,
    ) {
        for (position, rule) in rules.iter().enumerate() {
            let Some(pattern) = rule.pattern() else {
                continue;
            };
            if !rule.mode().redirects() || blocks[position].own_url.is_some() {
                continue;
            }
            let later = rules
                .iter()
                .zip(blocks)
                .skip(position + 1)
                .find_map(|(later, facts)| {
                    let later_pattern = later.pattern()?;
                    let url = facts.own_url.as_ref()?;
                    let may_overlap = match (&blocks[position].elements, &facts.elements) {
                        (Some(this), Some(later)) => this.may_overlap(later),
                        _ => pattern.may_overlap(later_pattern),
                    };
                    (Some(url) != top_url && may_overlap).then_some((later, url))
                });
            let Some((later, url)) = later else { continue };
            let later_line = later.file_line().map_or(0, |(_, line)| line);
            let top = top_url.map_or("none".to_owned(), |url| url.to_string());
            self.warning(
                blocks[position].label_span.clone(),
                ProblemKind::AthensUrlDiffers,
                format!(
                    "this {} block has no downloadURL, and the block at line {later_line} (downloadURL {url}) may match some of the same modules: Athens would redirect those to {url}, Ferry redirects them to the top-level downloadURL ({top})",
                    rule.mode()
                ),
                format!("write the downloadURL this block means inside it, e.g. {URL_KEY} = \"{url}\" or \"{top}\""),
            );
        }
    }
}

/// What the checks comparing blocks need of each block besides its rule.
struct BlockFacts {
    label_span: Range<usize>,
    /// The block's own valid, non-empty `downloadURL`, whatever its mode (Athens's `URL()`
    /// returns it for any mode).
    own_url: Option<Url>,
    /// The pattern's elements, computed once: the checks compare every pair of blocks.
    elements: Option<Elements>,
}

/// The byte range of a parsed item (the parser always sets one; `0..0` is a safe fallback).
pub(crate) fn span_of(item: &impl hcl::edit::Span) -> Range<usize> {
    item.span().unwrap_or(0..0)
}
