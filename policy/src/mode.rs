//! The five download modes of the Athens download file.

use std::fmt;
use std::str::FromStr;

/// What Ferry does when a module version (or a module's list / `@latest`) is not in its store.
///
/// A version that *is* stored is served from the store in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Fetch from the upstream, store, then answer.
    Sync,
    /// Answer 404 and fetch in the background, so a later request finds it stored.
    Async,
    /// Answer 404 and never contact the upstream.
    None,
    /// Answer a temporary redirect to the `downloadURL`; store nothing.
    Redirect,
    /// Answer a temporary redirect to the `downloadURL` and fetch in the background.
    AsyncRedirect,
}

impl Mode {
    /// Every mode, in the order the documentation lists them.
    pub const ALL: [Mode; 5] = [
        Mode::Sync,
        Mode::Async,
        Mode::None,
        Mode::Redirect,
        Mode::AsyncRedirect,
    ];

    /// The name used in the download file and in `FERRY_DOWNLOAD_MODE` (Athens' spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
            Mode::None => "none",
            Mode::Redirect => "redirect",
            Mode::AsyncRedirect => "async_redirect",
        }
    }

    /// True for the modes that answer a miss with a redirect to the `downloadURL`.
    pub fn redirects(self) -> bool {
        matches!(self, Mode::Redirect | Mode::AsyncRedirect)
    }

    /// True for the modes that fetch a missing version from the upstream into the store,
    /// either before answering (`sync`) or in the background (`async`, `async_redirect`).
    pub fn fetches(self) -> bool {
        matches!(self, Mode::Sync | Mode::Async | Mode::AsyncRedirect)
    }

    /// True for the modes that enqueue a background fetch instead of fetching before answering.
    pub fn fetches_in_background(self) -> bool {
        matches!(self, Mode::Async | Mode::AsyncRedirect)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The error of [`Mode::from_str`]: the text is not one of the five mode names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {given:?}; write one of {}", MODE_NAMES)]
pub struct UnknownMode {
    /// The text that was given.
    pub given: String,
}

/// The list of mode names as shown in messages.
pub(crate) const MODE_NAMES: &str = "sync, async, none, redirect, async_redirect";

impl FromStr for Mode {
    type Err = UnknownMode;

    /// Parses a mode name exactly as Athens spells it (lower case, `async_redirect` with an underscore).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| UnknownMode {
                given: text.to_owned(),
            })
    }
}

/// A guess at the mode a misspelt name meant, for the "what to write instead" half of a message.
pub(crate) fn suggest_mode(text: &str) -> Option<Mode> {
    let normalised: String = text
        .trim()
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let normalised = match normalised.as_str() {
        "asyncredirect" => "async_redirect",
        other => other,
    };
    normalised.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for mode in Mode::ALL {
            assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode));
        }
    }

    #[test]
    fn names_are_exact() {
        assert!("Sync".parse::<Mode>().is_err());
        assert!("async-redirect".parse::<Mode>().is_err());
        assert!(" sync".parse::<Mode>().is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest_mode("SYNC"), Some(Mode::Sync));
        assert_eq!(suggest_mode("async-redirect"), Some(Mode::AsyncRedirect));
        assert_eq!(suggest_mode("AsyncRedirect"), Some(Mode::AsyncRedirect));
        assert_eq!(suggest_mode("fast"), None);
    }

    #[test]
    fn properties() {
        let table = [
            (Mode::Sync, false, true, false),
            (Mode::Async, false, true, true),
            (Mode::None, false, false, false),
            (Mode::Redirect, true, false, false),
            (Mode::AsyncRedirect, true, true, true),
        ];
        for (mode, redirects, fetches, background) in table {
            assert_eq!(mode.redirects(), redirects, "{mode}");
            assert_eq!(mode.fetches(), fetches, "{mode}");
            assert_eq!(mode.fetches_in_background(), background, "{mode}");
        }
    }
}
