//! A `downloadURL`'s checks, shared by the parser (the download file) and the other policy sources: a leaf,
//! so that `policy.rs` and `parse.rs` need not reach into each other.

use url::Url;

/// What a message suggests writing instead.
pub(crate) const EXAMPLE_URL: &str = "\"https://mirror.example/prefix\"";

/// Checks a `downloadURL` (given, not empty): an absolute http(s) URL with a host, and no query
/// or fragment (redirects append the request path to it); nothing that would leak or break in a
/// `Location` header sent to every client: no credentials, no line break or other control
/// character or space, no GOPROXY list. Returns `(problem, fix)` when it is not; messages show
/// the URL with any `user:password@` part replaced by `***@`.
pub(crate) fn check_download_url(text: &str) -> Result<Url, (String, String)> {
    let shown = redact_userinfo(text);
    let fix = || format!("write an absolute http(s) URL such as {EXAMPLE_URL}");
    // Checked on the text itself: URL parsers strip tabs and line breaks, and Ferry refuses
    // rather than guess what a URL with a line break in it was meant to be.
    if let Some((position, c)) = text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        let what = match c {
            '\r' | '\n' => "a line break (CR or LF)",
            ' ' => "a space",
            _ => "a control character or space",
        };
        return Err((
            format!(
                "downloadURL {shown:?} holds {what} at character {}",
                position + 1
            ),
            "remove it (Ferry does not strip it: in a Location header it would break the answer), and percent-encode a space in a path as %20".to_owned(),
        ));
    }
    if let Some(separator) = text.find([',', '|']) {
        let first = redact_userinfo(&text[..separator]);
        let rest = &text[separator + 1..];
        let is_list = rest
            .split([',', '|'])
            .any(|part| part == "direct" || part == "off" || part.contains("://"));
        let message = if is_list {
            format!("downloadURL {shown:?} is a GOPROXY list, not one URL")
        } else {
            format!(
                "downloadURL {shown:?} holds a `{}`",
                &text[separator..=separator]
            )
        };
        return Err((
            message,
            format!(
                "a redirect goes to one URL: write one, e.g. {first:?} (a client's own GOPROXY=ferry,direct or ferry|direct gives the fallback); percent-encode a `,` or `|` that belongs to the path as %2C or %7C"
            ),
        ));
    }
    let url = Url::parse(text).map_err(|error| {
        (
            format!("downloadURL {shown:?} is not a URL ({error})"),
            fix(),
        )
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err((
            format!(
                "downloadURL {shown:?} has scheme {:?}, not http or https",
                url.scheme()
            ),
            fix(),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err((format!("downloadURL {shown:?} has no host"), fix()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err((
            format!(
                "downloadURL {shown:?} holds credentials (user:password@): every redirected client would receive them in the Location header"
            ),
            "remove the user:password@ part; clients authenticate to the mirror with their own .netrc or GOAUTH".to_owned(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err((
            format!("downloadURL {shown:?} has a query or fragment"),
            "remove the ?... or #... part: redirects append the request path to the URL's path"
                .to_owned(),
        ));
    }
    Ok(url)
}

/// `text` with the user information of a URL (`user:password@`) replaced by `***@`, so that no
/// message shows a password or token. Works on text that is not a valid URL too, and on each URL
/// of a `,` or `|` separated list.
fn redact_userinfo(text: &str) -> String {
    text.split_inclusive([',', '|']).map(redact_one).collect()
}

fn redact_one(text: &str) -> String {
    let authority_start = text.find("://").map_or(0, |at| at + 3);
    let authority_end = text[authority_start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |at| authority_start + at);
    match text[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &text[..authority_start],
            &text[authority_start + at..]
        ),
        None => text.to_owned(),
    }
}
