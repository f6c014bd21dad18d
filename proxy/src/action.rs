//! What each download mode does on each endpoint, decided in one place: a pure function of the mode, the
//! kind of request, whether this Ferry has an upstream and whether the request asks for stored modules
//! only (`/cached-only/`, `Disable-Module-Fetch`). The handlers in `service` carry the action out;
//! none of them looks at the mode again. The table test below is the "What each mode does" table of
//! `docs/download-modes.md`, row by row.

use ferry_policy::Mode;

use crate::request::CachedOnly;

/// A module request, as the download modes tell requests apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `.info`, `.mod` or `.zip` of a canonical version.
    File,
    /// `.info` of a query (a branch, a commit hash, `latest`).
    Query,
    /// `@v/list`.
    List,
    /// `@latest`.
    Latest,
}

/// Why a request is answered from the store alone, for the 404 that explains a miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declined {
    /// The policy's mode for the module never fetches (`none`).
    ByPolicy,
    /// The mode fetches, but this Ferry was built without an upstream.
    NoUpstream,
    /// The request asks for stored modules only, whatever the mode: nothing is fetched, queued or
    /// redirected, and `list`/`@latest` are the store's.
    CachedOnly(CachedOnly),
}

/// What to do for one request. `U` is the upstream the action needs (the table test uses `()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<U> {
    /// Ask the upstream before answering. A file: served from the store, else fetched first. A query:
    /// resolved, then served like a file. `list`/`@latest`: the upstream's answer (a list merged with the
    /// stored versions), the store's when the upstream fails.
    Upstream(U),
    /// A file: from the store, else 404 "being fetched" and a background fetch is queued. A query: the same,
    /// without looking in the store (a query names no stored file). Never for `list`/`@latest`.
    Queue(U),
    /// A stored file is served; everything else is redirected to the `downloadURL`, and a background fetch
    /// of the missed file or query is queued when `queue` is set.
    Redirect { queue: Option<U> },
    /// Whatever the store can answer; everything else is a 404 that says why.
    StoreOnly(Declined),
}

/// The one decision of what a request does, given its module's mode, this Ferry's upstream and whether the
/// request is cached-only (which wins over every mode).
pub fn action<U>(
    mode: Mode,
    kind: Kind,
    upstream: Option<U>,
    cached_only: Option<CachedOnly>,
) -> Action<U> {
    if let Some(why) = cached_only {
        return Action::StoreOnly(Declined::CachedOnly(why));
    }
    // A list or @latest is not a version that could be fetched in the background.
    let index = matches!(kind, Kind::List | Kind::Latest);
    match (mode, upstream) {
        (Mode::Redirect, _) => Action::Redirect { queue: None },
        (Mode::AsyncRedirect, upstream) => Action::Redirect {
            queue: upstream.filter(|_| !index),
        },
        (Mode::None, _) => Action::StoreOnly(Declined::ByPolicy),
        (Mode::Sync | Mode::Async, None) => Action::StoreOnly(Declined::NoUpstream),
        (Mode::Async, Some(upstream)) if !index => Action::Queue(upstream),
        (Mode::Sync | Mode::Async, Some(upstream)) => Action::Upstream(upstream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Action::*;
    use Kind::*;

    const KINDS: [Kind; 4] = [File, Query, List, Latest];

    /// The table of `docs/download-modes.md` ("What each mode does"), one row per mode, for a Ferry with an
    /// upstream.
    #[test]
    fn every_mode_on_every_endpoint_does_what_the_readme_table_says() {
        let fetch = Upstream(());
        let redirect = Redirect { queue: None };
        let redirect_and_queue = Redirect { queue: Some(()) };
        let rows: [(Mode, [Action<()>; 4]); 5] = [
            // mode              .info/.mod/.zip     query .info          @v/list   @latest
            (
                Mode::Sync,
                /*   */
                [
                    fetch, /*      */ fetch, /*        */ fetch, /**/ fetch,
                ],
            ),
            (
                Mode::Async,
                /*  */
                [
                    Queue(()),
                    /*  */ Queue(()),
                    /*    */ fetch,
                    /**/ fetch,
                ],
            ),
            (Mode::None, [StoreOnly(Declined::ByPolicy); 4]),
            (Mode::Redirect, [redirect; 4]),
            (
                Mode::AsyncRedirect,
                [redirect_and_queue, redirect_and_queue, redirect, redirect],
            ),
        ];
        for (mode, actions) in rows {
            for (kind, expected) in KINDS.into_iter().zip(actions) {
                assert_eq!(
                    action(mode, kind, Some(()), None),
                    expected,
                    "{mode} {kind:?}"
                );
            }
        }
    }

    #[test]
    fn without_an_upstream_fetching_modes_answer_from_the_store_and_redirects_queue_nothing() {
        for kind in KINDS {
            for (mode, expected) in [
                (Mode::Sync, StoreOnly(Declined::NoUpstream)),
                (Mode::Async, StoreOnly(Declined::NoUpstream)),
                (Mode::None, StoreOnly(Declined::ByPolicy)),
                (Mode::Redirect, Redirect { queue: None }),
                (Mode::AsyncRedirect, Redirect { queue: None }),
            ] {
                assert_eq!(
                    action::<()>(mode, kind, None, None),
                    expected,
                    "{mode} {kind:?}"
                );
            }
        }
    }

    #[test]
    fn a_cached_only_request_answers_from_the_store_in_every_mode() {
        for why in [CachedOnly::Header, CachedOnly::BasePath] {
            for mode in [
                Mode::Sync,
                Mode::Async,
                Mode::None,
                Mode::Redirect,
                Mode::AsyncRedirect,
            ] {
                for kind in KINDS {
                    for upstream in [Some(()), None] {
                        assert_eq!(
                            action(mode, kind, upstream, Some(why)),
                            StoreOnly(Declined::CachedOnly(why)),
                            "{mode} {kind:?} {why:?}"
                        );
                    }
                }
            }
        }
    }
}
