//! Athens's own download-mode cases, each with Athens's answer, run through Ferry.
//!
//! Sources (gomods/athens): `pkg/download/mode/mode_test.go` (`TestMode`, `TestNewFile_err`),
//! `pkg/download/mode/mode.go` (what `NewFile`, `parseFile`, `validate`, `Match` and `URL` do),
//! `pkg/paths/path.go` (`MatchesPattern`: `path.Match`, its error ignored),
//! `docs/content/configuration/download.md` and `download.example.hcl` (the documented files), and
//! `config.dev.toml` (`DownloadURL`, `ATHENS_DOWNLOAD_URL`). A case passes when Ferry gives
//! Athens's answer, or when it gives the answer `policy/README.md` documents as a difference (the
//! test checks that the README names it).
//!
//! Athens's `URL(mod)` is consulted only when the mode redirects (`pkg/download/version_*.go`
//! call it on `KindRedirect`), so the URL is compared for redirecting modes only.

use ferry_policy::{Mode, PolicySources, load};
use url::Url;

use crate::support::encode;

/// How the policy is given, as an Athens user gives it.
enum Input {
    /// A download file (given to Ferry as `ATHENS_DOWNLOAD_MODE=custom:BASE64`).
    File(&'static str),
    /// `ATHENS_DOWNLOAD_MODE` and `ATHENS_DOWNLOAD_URL`.
    Bare {
        mode: &'static str,
        url: &'static str,
    },
}

/// An answer for one module path.
#[derive(Debug, PartialEq)]
enum Answer {
    /// The mode, and for a redirecting mode the URL (as Athens's tests write it).
    Decides(Mode, &'static str),
    /// The policy does not load.
    Refused,
    /// Athens loads the policy and then does what this says (no mode of the five).
    Otherwise(&'static str),
}

use Answer::{Decides, Otherwise, Refused};

struct Case {
    /// The Athens file the case comes from, and the case's name there.
    source: &'static str,
    input: Input,
    module: &'static str,
    athens: Answer,
    /// Where Ferry answers otherwise: a phrase `policy/README.md` holds, and Ferry's answer.
    difference: Option<(&'static str, Answer)>,
}

/// Ferry's answer for the case, compared like Athens's: the URL only for redirecting modes.
fn ferry_answer(case: &Case) -> Result<(Mode, Option<Url>), String> {
    let custom;
    let sources = match case.input {
        Input::File(text) => {
            custom = format!("custom:{}", encode(text));
            PolicySources {
                athens_download_mode: Some(&custom),
                ..PolicySources::default()
            }
        }
        Input::Bare { mode, url } => PolicySources {
            athens_download_mode: Some(mode),
            athens_download_url: Some(url),
            ..PolicySources::default()
        },
    };
    let policy = load(&sources).map_err(|error| error.to_string())?;
    let decision = policy.decide(case.module);
    Ok((decision.mode, decision.download_url.cloned()))
}

fn agrees(answer: &Answer, ferry: &Result<(Mode, Option<Url>), String>) -> bool {
    match (answer, ferry) {
        (Refused, Err(_)) => true,
        (Decides(mode, url), Ok((ferry_mode, ferry_url))) if mode == ferry_mode => {
            !mode.redirects() || Url::parse(url).ok().as_ref() == ferry_url.as_ref()
        }
        _ => false,
    }
}

/// The documented example (`docs/content/configuration/download.md`, `download.example.hcl`).
const DOCS_EXAMPLE: &str = r#"downloadURL = "https://proxy.golang.org"

mode = "async_redirect"

download "github.com/gomods/*" {
    mode = "sync"
}

download "golang.org/x/*" {
    mode = "none"
}

download "github.com/pkg/*" {
    mode = "redirect"
    downloadURL = "https://gocenter.io"
}
"#;

const NO_SCHEME: &str = "a downloadURL without a scheme";

fn cases() -> Vec<Case> {
    vec![
        // mode_test.go, TestMode "sync": DownloadFile{Mode: Sync}, i.e. NewFile(Sync, "").
        Case {
            source: "mode_test.go TestMode sync (bare mode)",
            input: Input::Bare {
                mode: "sync",
                url: "",
            },
            module: "github.com/gomods/athens",
            athens: Decides(Mode::Sync, ""),
            difference: None,
        },
        // The same as a file: Athens's decoder requires the top-level downloadURL; "" = none.
        Case {
            source: "mode_test.go TestMode sync (as a file)",
            input: Input::File("mode = \"sync\"\ndownloadURL = \"\"\n"),
            module: "github.com/gomods/athens",
            athens: Decides(Mode::Sync, ""),
            difference: None,
        },
        // mode_test.go, TestMode "redirect": DownloadURL "gomods.io" (no scheme).
        Case {
            source: "mode_test.go TestMode redirect",
            input: Input::Bare {
                mode: "redirect",
                url: "gomods.io",
            },
            module: "github.com/gomods/athens",
            athens: Decides(Mode::Redirect, "gomods.io"),
            difference: Some((NO_SCHEME, Refused)),
        },
        Case {
            source: "mode_test.go TestMode redirect, https:// added",
            input: Input::Bare {
                mode: "redirect",
                url: "https://gomods.io",
            },
            module: "github.com/gomods/athens",
            athens: Decides(Mode::Redirect, "https://gomods.io"),
            difference: None,
        },
        // mode_test.go, TestMode "redirect with download url suffix".
        Case {
            source: "mode_test.go TestMode redirect with download url suffix",
            input: Input::Bare {
                mode: "redirect",
                url: "internal.domain/repository/gonexus",
            },
            module: "github.com/gomods/athens",
            athens: Decides(Mode::Redirect, "internal.domain/repository/gonexus"),
            difference: Some((NO_SCHEME, Refused)),
        },
        Case {
            source: "mode_test.go TestMode redirect with download url suffix, https:// added",
            input: Input::Bare {
                mode: "redirect",
                url: "https://internal.domain/repository/gonexus",
            },
            module: "github.com/gomods/athens",
            athens: Decides(Mode::Redirect, "https://internal.domain/repository/gonexus"),
            difference: None,
        },
        // mode_test.go, TestMode "pattern match".
        Case {
            source: "mode_test.go TestMode pattern match",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"github.com/gomods/*\" {\n  mode = \"none\"\n}\n",
            ),
            module: "github.com/gomods/athens",
            athens: Decides(Mode::None, ""),
            difference: None,
        },
        // mode_test.go, TestMode "multiple depth pattern match".
        Case {
            source: "mode_test.go TestMode multiple depth pattern match",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"github.com/*\" {\n  mode = \"none\"\n}\n",
            ),
            module: "github.com/gomods/athens/pkg/mode",
            athens: Decides(Mode::None, ""),
            difference: None,
        },
        // mode_test.go, TestMode "subdomain pattern match".
        Case {
            source: "mode_test.go TestMode subdomain pattern match",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"*.github.com/gomods/*\" {\n  mode = \"none\"\n}\n",
            ),
            module: "athens.github.com/gomods/pkg/mode",
            athens: Decides(Mode::None, ""),
            difference: None,
        },
        // mode_test.go, TestMode "pattern fallback".
        Case {
            source: "mode_test.go TestMode pattern fallback",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"github.com/gomods/*\" {\n  mode = \"none\"\n}\n",
            ),
            module: "github.com/athens-artifacts/maturelib",
            athens: Decides(Mode::Sync, ""),
            difference: None,
        },
        // mode_test.go, TestMode "pattern redirect".
        Case {
            source: "mode_test.go TestMode pattern redirect",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"github.com/gomods/*\" {\n  mode = \"async_redirect\"\n  downloadURL = \"gomods.io\"\n}\n",
            ),
            module: "github.com/gomods/athens",
            athens: Decides(Mode::AsyncRedirect, "gomods.io"),
            difference: Some((NO_SCHEME, Refused)),
        },
        Case {
            source: "mode_test.go TestMode pattern redirect, https:// added",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"github.com/gomods/*\" {\n  mode = \"async_redirect\"\n  downloadURL = \"https://gomods.io\"\n}\n",
            ),
            module: "github.com/gomods/athens",
            athens: Decides(Mode::AsyncRedirect, "https://gomods.io"),
            difference: None,
        },
        // mode_test.go, TestMode "redirect fallback".
        Case {
            source: "mode_test.go TestMode redirect fallback",
            input: Input::File(
                "mode = \"redirect\"\ndownloadURL = \"proxy.golang.org\"\ndownload \"github.com/gomods/*\" {\n  mode = \"async_redirect\"\n  downloadURL = \"gomods.io\"\n}\n",
            ),
            module: "github.com/athens-artifacts/maturelib",
            athens: Decides(Mode::Redirect, "proxy.golang.org"),
            difference: Some((NO_SCHEME, Refused)),
        },
        Case {
            source: "mode_test.go TestMode redirect fallback, https:// added",
            input: Input::File(
                "mode = \"redirect\"\ndownloadURL = \"https://proxy.golang.org\"\ndownload \"github.com/gomods/*\" {\n  mode = \"async_redirect\"\n  downloadURL = \"https://gomods.io\"\n}\n",
            ),
            module: "github.com/athens-artifacts/maturelib",
            athens: Decides(Mode::Redirect, "https://proxy.golang.org"),
            difference: None,
        },
        // mode_test.go, TestNewFile_err "empty mode": NewFile("") is "download mode is not set".
        Case {
            source: "mode_test.go TestNewFile_err empty mode",
            input: Input::Bare { mode: "", url: "" },
            module: "github.com/gomods/athens",
            athens: Refused,
            difference: Some(("an empty value counts as unset", Decides(Mode::Sync, ""))),
        },
        // mode_test.go, TestNewFile_err "invalid mode".
        Case {
            source: "mode_test.go TestNewFile_err invalid mode",
            input: Input::Bare {
                mode: "invalidMode",
                url: "github.com/gomods/athens",
            },
            module: "github.com/gomods/athens",
            athens: Refused,
            difference: None,
        },
        // mode.go NewFile: the mode is matched exactly (`switch m`), no trimming.
        Case {
            source: "mode.go NewFile: \" sync \"",
            input: Input::Bare {
                mode: " sync ",
                url: "",
            },
            module: "github.com/gomods/athens",
            athens: Refused,
            difference: None,
        },
        // mode.go validate: a block's mode must be one of the five, exactly.
        Case {
            source: "mode.go validate: block mode \"Sync\"",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"a/*\" {\n  mode = \"Sync\"\n}\n",
            ),
            module: "a/b",
            athens: Refused,
            difference: None,
        },
        // mode.go validate checks only the blocks: Athens loads an unknown top-level mode, and
        // processDownload then matches no case for every module no block takes.
        Case {
            source: "mode.go validate: top-level mode \"Sync\"",
            input: Input::File("mode = \"Sync\"\ndownloadURL = \"\"\n"),
            module: "a/b",
            athens: Otherwise(
                "loads; Match answers Mode(\"Sync\"), which processDownload has no case for",
            ),
            difference: Some(("an unknown top-level mode", Refused)),
        },
        // mode.go DownloadFile: `downloadURL` has no `optional` tag, so gohcl requires it.
        Case {
            source: "mode.go DownloadFile: no top-level downloadURL",
            input: Input::File("mode = \"sync\"\n"),
            module: "a/b",
            athens: Refused,
            difference: Some((
                "a top-level `downloadURL` is optional",
                Decides(Mode::Sync, ""),
            )),
        },
        // mode.go URL: a block's empty downloadURL is skipped, so the top-level one applies.
        Case {
            source: "mode.go URL: block downloadURL \"\"",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"https://top.example\"\ndownload \"a/*\" {\n  mode = \"redirect\"\n  downloadURL = \"\"\n}\n",
            ),
            module: "a/b",
            athens: Decides(Mode::Redirect, "https://top.example"),
            difference: None,
        },
        // mode.go URL: the loop does not stop at the first matching block; it returns the first
        // matching block that has a downloadURL, so a later block's URL can apply.
        Case {
            source: "mode.go URL: a later matching block's downloadURL",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"https://top.example\"\ndownload \"*/corp/*\" {\n  mode = \"redirect\"\n}\ndownload \"github.com/*\" {\n  mode = \"sync\"\n  downloadURL = \"https://later.example\"\n}\n",
            ),
            module: "github.com/corp/x",
            athens: Decides(Mode::Redirect, "https://later.example"),
            difference: Some((
                "the URL of the block that decides",
                Decides(Mode::Redirect, "https://top.example"),
            )),
        },
        // mode.go Match: the first matching block in file order decides (a repeat never does).
        Case {
            source: "mode.go Match: a repeated pattern",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"a/*\" {\n  mode = \"none\"\n}\ndownload \"a/*\" {\n  mode = \"async\"\n}\n",
            ),
            module: "a/b",
            athens: Decides(Mode::None, ""),
            difference: None,
        },
        Case {
            source: "mode.go Match: a block an earlier broader one covers",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"github.com/*\" {\n  mode = \"none\"\n}\ndownload \"github.com/gomods/*\" {\n  mode = \"async\"\n}\n",
            ),
            module: "github.com/gomods/athens",
            athens: Decides(Mode::None, ""),
            difference: None,
        },
        // paths.go MatchesPattern: a pattern ending in `/` never matches a module path.
        Case {
            source: "paths.go MatchesPattern: trailing /",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"github.com/gomods/\" {\n  mode = \"none\"\n}\n",
            ),
            module: "github.com/gomods/athens",
            athens: Decides(Mode::Sync, ""),
            difference: None,
        },
        // paths.go MatchesPattern: `matched, _ := path.Match(...)`: ErrBadPattern is dropped,
        // so a malformed glob never matches, at load time or later.
        Case {
            source: "paths.go MatchesPattern: malformed glob",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"github.com/[gomods\" {\n  mode = \"none\"\n}\n",
            ),
            module: "github.com/gomods/athens",
            athens: Decides(Mode::Sync, ""),
            difference: Some(("a malformed glob is refused", Refused)),
        },
        // handler.go getRedirectURL keeps the URL's user:password; Athens loads it.
        Case {
            source: "handler.go getRedirectURL: credentials in downloadURL",
            input: Input::File(
                "mode = \"redirect\"\ndownloadURL = \"https://ops:secret@mirror.example\"\n",
            ),
            module: "a/b",
            athens: Decides(Mode::Redirect, "https://ops:secret@mirror.example"),
            difference: Some(("credentials (`user:password@`)", Refused)),
        },
        Case {
            source: "handler.go getRedirectURL: a GOPROXY list in downloadURL",
            input: Input::Bare {
                mode: "redirect",
                url: "https://proxy.golang.org,direct",
            },
            module: "a/b",
            athens: Decides(Mode::Redirect, "https://proxy.golang.org,direct"),
            difference: Some(("a GOPROXY list", Refused)),
        },
        Case {
            source: "handler.go getRedirectURL: a line break in downloadURL",
            input: Input::File(
                "mode = \"redirect\"\ndownloadURL = \"https://mirror.example/\\n\"\n",
            ),
            module: "a/b",
            athens: Otherwise("loads; url.Parse refuses the URL on each redirect"),
            difference: Some(("a line break", Refused)),
        },
        // config.dev.toml: "DownloadURL is the URL that will be used if DownloadMode is set to
        // redirect. Env override: ATHENS_DOWNLOAD_URL".
        Case {
            source: "config.dev.toml DownloadURL / ATHENS_DOWNLOAD_URL",
            input: Input::Bare {
                mode: "redirect",
                url: "https://proxy.golang.org",
            },
            module: "github.com/pkg/errors",
            athens: Decides(Mode::Redirect, "https://proxy.golang.org"),
            difference: None,
        },
        // docs/content/configuration/download.md and download.example.hcl: the example file.
        Case {
            source: "download.md example: github.com/gomods/*",
            input: Input::File(DOCS_EXAMPLE),
            module: "github.com/gomods/athens",
            athens: Decides(Mode::Sync, ""),
            difference: None,
        },
        Case {
            source: "download.md example: golang.org/x/*",
            input: Input::File(DOCS_EXAMPLE),
            module: "golang.org/x/text",
            athens: Decides(Mode::None, ""),
            difference: None,
        },
        Case {
            source: "download.md example: github.com/pkg/*",
            input: Input::File(DOCS_EXAMPLE),
            module: "github.com/pkg/errors",
            athens: Decides(Mode::Redirect, "https://gocenter.io"),
            difference: None,
        },
        Case {
            source: "download.md example: other modules",
            input: Input::File(DOCS_EXAMPLE),
            module: "github.com/other/module",
            athens: Decides(Mode::AsyncRedirect, "https://proxy.golang.org"),
            difference: None,
        },
        // download.md "Blocking certain modules": the snippet alone has no top-level mode or
        // downloadURL, which Athens's decoder requires.
        Case {
            source: "download.md Blocking certain modules (snippet alone)",
            input: Input::File("download \"bad/module/repo/*\" {\n    mode = \"none\"\n}\n"),
            module: "bad/module/repo/x",
            athens: Refused,
            difference: None,
        },
        // download.md "Preventing storage overflow": `url` is not a key of a download block.
        Case {
            source: "download.md Preventing storage overflow (url = ...)",
            input: Input::File(
                "mode = \"sync\"\ndownloadURL = \"\"\ndownload \"very/large/*\" {\n    mode = \"redirect\"\n    url = \"https://reliable.proxy.com\"\n}\n",
            ),
            module: "very/large/x",
            athens: Refused,
            difference: None,
        },
    ]
}

#[test]
fn athens_download_mode_cases_give_athens_answers_or_a_documented_difference() {
    let readme = include_str!("../../README.md");
    let mut failures = Vec::new();
    for case in cases() {
        let ferry = ferry_answer(&case);
        let expected = match &case.difference {
            None => &case.athens,
            Some((phrase, ferry_answer)) => {
                if !readme.contains(phrase) {
                    failures.push(format!(
                        "{}: policy/README.md does not document the difference {phrase:?}",
                        case.source
                    ));
                }
                ferry_answer
            }
        };
        if !agrees(expected, &ferry) {
            failures.push(format!(
                "{} ({}): expected {expected:?} (Athens: {:?}), Ferry gives {ferry:?}",
                case.source, case.module, case.athens
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
