//! The pages written out: one HTML document each, its style inline (no other request, no script), every
//! value escaped. Semantic markup for screen readers and keyboards: landmarks, one `h1`, a heading per
//! section, tables with captions and header cells, labelled form fields, a visible focus ring.

use std::fmt::Write;

use super::view::{Body, Failure, Flight, Module, Page, Search, Seen, Status, Upstream};

/// Text for HTML, in an element or a quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a path element keeps unencoded in a link: RFC 3986's unreserved characters.
const ELEMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A module path in a link: each element percent-encoded (a path's `/` kept).
fn href_path(module: &str) -> String {
    module
        .split('/')
        .map(|e| percent_encoding::utf8_percent_encode(e, ELEMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Bytes for people, with the exact count.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {} ({bytes} bytes)", UNITS[unit])
    }
}

const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1b1b1b;--bg:#fff;--muted:#4a4a4a;--line:#c8c8c8;--link:#0b57d0;--up:#0a6b2b;--down:#b3261e;--panel:#f3f4f6}
@media (prefers-color-scheme:dark){:root{--fg:#ececec;--bg:#141414;--muted:#c2c2c2;--line:#4a4a4a;--link:#9ec2ff;--up:#7ddc8f;--down:#ffb4ab;--panel:#1f1f1f}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--link)}a:focus,button:focus,input:focus{outline:3px solid var(--link);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--bg);padding:4px}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between;border-bottom:1px solid var(--line)}
h1{font-size:1.4rem;margin:.6rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .4rem}
nav ul{list-style:none;display:flex;gap:1rem;margin:0;padding:0}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.95rem}caption{text-align:left;color:var(--muted);padding:.2rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,monospace}pre{background:var(--panel);padding:.6rem;overflow-x:auto;border-radius:4px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.up{color:var(--up);font-weight:600}.down{color:var(--down);font-weight:600}.muted{color:var(--muted)}
form.inline{display:inline-flex;gap:.3rem;flex-wrap:wrap;margin:.1rem 0}input,button{font:inherit;padding:.2rem .4rem}
.grid{display:grid;gap:0 2rem;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr))}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
@media (max-width:40rem){dl{grid-template-columns:1fr;gap:0}dd{margin-bottom:.5rem}.grid{grid-template-columns:1fr}}";

/// The page as a whole document.
pub fn render(page: &Page) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let base = esc(&page.base);
    let title = esc(&page.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body>\
<a class=\"skip\" href=\"#main\">Skip to content</a>\
<header><p><strong>Ferry</strong>{admin}</p><nav aria-label=\"Ferry\"><ul><li><a href=\"{base}/\">Status</a></li></ul></nav>\
<form role=\"search\" method=\"get\" action=\"{base}/-/search\"><label for=\"q\">Module prefix</label> \
<input id=\"q\" name=\"q\" type=\"search\" value=\"{q}\" placeholder=\"example.com/team\"> <button type=\"submit\">Search</button></form></header>\
<main id=\"main\"><h1>{title}</h1>",
        admin = if page.admin {
            " <span class=\"muted\">(admin listener)</span>"
        } else {
            ""
        },
        q = match &page.body {
            Body::Search(search) => esc(&search.prefix),
            _ => String::new(),
        },
    );
    match &page.body {
        Body::Status(status) => status_body(&mut out, &base, status),
        Body::Search(search) => search_body(&mut out, &base, search),
        Body::Module(module) => module_body(&mut out, &base, page.admin, module),
    }
    out.push_str(
        "</main><footer><p class=\"muted\">Ferry, a Go module proxy.</p></footer></body></html>\n",
    );
    out
}

fn module_link(base: &str, module: &str) -> String {
    format!(
        "<a href=\"{base}/-/module/{}\">{}</a>",
        esc(&href_path(module)),
        esc(module)
    )
}

fn status_body(out: &mut String, base: &str, status: &Status) {
    let _ = write!(
        out,
        "<p>Version {}. Point the go command at this Ferry:</p><pre><code>go env -w GOPROXY={}</code></pre><div class=\"grid\">",
        esc(status.version),
        esc(&status.goproxy)
    );
    let store = &status.store;
    let _ = write!(
        out,
        "<section aria-labelledby=\"store\"><h2 id=\"store\">Store</h2><dl>\
<dt>Backend</dt><dd>{}</dd><dt>Size</dt><dd id=\"store-size\">{}</dd><dt>Versions</dt><dd id=\"store-versions\">{}</dd>\
<dt>Modules</dt><dd id=\"store-modules\">{}</dd></dl>{}</section>",
        esc(&store.backend),
        size(store.bytes),
        store.versions,
        store.modules,
        if store.ready {
            ""
        } else {
            "<p class=\"down\">The index is being built from a walk of the store; the figures are partial.</p>"
        }
    );
    health(out, status);
    out.push_str("</div>");
    flights(out, base, &status.flights);
    failures(out, base, &status.failures);
    caches(out, &status.caches);
    out.push_str("<div class=\"grid\">");
    seen(out, base, "stored", "Recently stored", &status.stored);
    seen(
        out,
        base,
        "requested",
        "Recently requested",
        &status.requested,
    );
    out.push_str("</div>");
    if let Some(c) = &status.coordination {
        replicas(out, c);
    }
    out.push_str("<section aria-labelledby=\"config\"><h2 id=\"config\">Configuration</h2><dl>");
    for (key, value) in &status.summary {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(key), esc(value));
    }
    out.push_str("</dl></section>");
}

fn replicas(out: &mut String, c: &super::view::Coordination) {
    let _ = write!(
        out,
        "<section aria-labelledby=\"replicas\"><h2 id=\"replicas\">Replicas and leases</h2><dl><dt>Lease engine</dt><dd>{}</dd>\
<dt>Lease time</dt><dd>{}</dd><dt>Leases held here</dt><dd id=\"leases\">{}</dd><dt>This replica</dt><dd>{}</dd><dt>Other replicas</dt><dd id=\"other-replicas\">",
        esc(&c.engine),
        esc(&c.lease_time),
        if c.leases.is_empty() {
            "none".to_string()
        } else {
            esc(&c.leases.join(", "))
        },
        esc(&c.this_replica)
    );
    if c.others.is_empty() {
        out.push_str("none has written to the ledger since this one started");
    }
    for (i, (name, at)) in c.others.iter().enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        let _ = write!(out, "{sep}{} (last wrote {})", esc(name), esc(at));
    }
    out.push_str("</dd></dl></section>");
}

fn up_down(up: bool) -> &'static str {
    if up {
        "<span class=\"up\">up</span>"
    } else {
        "<span class=\"down\">down</span>"
    }
}

fn health(out: &mut String, status: &Status) {
    out.push_str("<section aria-labelledby=\"health\"><h2 id=\"health\">Health</h2><dl><dt>Upstream</dt><dd id=\"upstream\">");
    match &status.upstream {
        Upstream::None => out.push_str("none: the download policy never fetches"),
        Upstream::NotAskedYet => out.push_str("not asked yet"),
        Upstream::Answered { up, at } => {
            let _ = write!(out, "{} (last fill {})", up_down(*up), esc(at));
        }
    }
    out.push_str("</dd>");
    for db in &status.sumdbs {
        let shown = match db.up {
            Some(up) => format!("{}: {}", up_down(up), esc(&db.state)),
            None => esc(&db.state),
        };
        let _ = write!(
            out,
            "<dt>Checksum database {}</dt><dd>{shown}</dd>",
            esc(&db.name)
        );
    }
    if status.sumdbs.is_empty() {
        out.push_str("<dt>Checksum databases</dt><dd>none known</dd>");
    }
    out.push_str("</dl></section>");
}

fn flights(out: &mut String, base: &str, flights: &[Flight]) {
    out.push_str("<section aria-labelledby=\"fills\"><h2 id=\"fills\">Fills in flight</h2>");
    if flights.is_empty() {
        out.push_str("<p id=\"no-fills\">No fill is running.</p></section>");
        return;
    }
    out.push_str("<div class=\"scroll\" tabindex=\"0\"><table id=\"flights\"><caption>Fetches from the upstream running now, longest first</caption><thead><tr>\
<th scope=\"col\">Module</th><th scope=\"col\">Version or query</th><th scope=\"col\">What</th><th scope=\"col\" class=\"n\">Elapsed</th><th scope=\"col\" class=\"n\">Waiting clients</th></tr></thead><tbody>");
    for f in flights {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            module_link(base, &f.module),
            esc(&f.query),
            if f.metadata_only {
                ".info and .mod"
            } else {
                "whole version"
            },
            esc(&f.elapsed),
            f.waiting
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn failures(out: &mut String, base: &str, failures: &[Failure]) {
    out.push_str(
        "<section aria-labelledby=\"failures\"><h2 id=\"failures\">Recent fill failures</h2>",
    );
    if failures.is_empty() {
        out.push_str("<p>No fill has failed since start.</p></section>");
        return;
    }
    out.push_str("<div class=\"scroll\" tabindex=\"0\"><table id=\"failure-list\"><caption>The last failures, newest first (the log has every one)</caption><thead><tr>\
<th scope=\"col\">When</th><th scope=\"col\">Module</th><th scope=\"col\">Version or query</th><th scope=\"col\">Result</th><th scope=\"col\">Reason</th></tr></thead><tbody>");
    for f in failures {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.at),
            module_link(base, &f.module),
            esc(&f.query),
            f.result,
            esc(&f.reason)
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn caches(out: &mut String, caches: &[(&'static str, u64, u64)]) {
    out.push_str("<section aria-labelledby=\"caches\"><h2 id=\"caches\">Cache hit ratios</h2><div class=\"scroll\" tabindex=\"0\"><table><caption>In-memory caches since start</caption><thead><tr>\
<th scope=\"col\">Cache</th><th scope=\"col\" class=\"n\">Hits</th><th scope=\"col\" class=\"n\">Misses</th><th scope=\"col\" class=\"n\">Hit ratio</th></tr></thead><tbody>");
    for (name, hits, misses) in caches {
        let ratio = match hits + misses {
            0 => "–".to_string(),
            total => format!("{:.1} %", *hits as f64 * 100.0 / total as f64),
        };
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{name}</th><td class=\"n\">{hits}</td><td class=\"n\">{misses}</td><td class=\"n\">{ratio}</td></tr>"
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn seen(out: &mut String, base: &str, id: &str, title: &str, rows: &[Seen]) {
    let _ = write!(
        out,
        "<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{title}</h2>"
    );
    if rows.is_empty() {
        out.push_str("<p>None yet.</p></section>");
        return;
    }
    let _ = write!(out, "<ol id=\"{id}-list\">");
    for row in rows {
        let _ = write!(
            out,
            "<li>{} {} <span class=\"muted\">{}</span></li>",
            module_link(base, &row.module),
            esc(&row.version),
            esc(&row.at)
        );
    }
    out.push_str("</ol></section>");
}

fn search_body(out: &mut String, base: &str, search: &Search) {
    if search.modules.is_empty() {
        let _ = write!(
            out,
            "<p id=\"results\">No stored module starts with <code>{}</code>.</p>",
            esc(&search.prefix)
        );
        return;
    }
    out.push_str("<div class=\"scroll\" tabindex=\"0\"><table id=\"results\"><caption>Stored modules, in path order</caption><thead><tr>\
<th scope=\"col\">Module</th><th scope=\"col\" class=\"n\">Versions stored</th></tr></thead><tbody>");
    for (module, count) in &search.modules {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{count}</td></tr>",
            module_link(base, module)
        );
    }
    out.push_str("</tbody></table></div>");
    if search.more {
        out.push_str("<p>More modules match: give a longer prefix.</p>");
    }
}

fn module_body(out: &mut String, base: &str, admin: bool, module: &Module) {
    if let Some(message) = &module.deprecated {
        let _ = write!(
            out,
            "<p id=\"deprecated\" role=\"note\"><strong class=\"down\">Deprecated:</strong> {}</p>",
            esc(message)
        );
    }
    if let Some(from) = &module.notes_from {
        let _ = write!(
            out,
            "<p class=\"muted\">Retractions and deprecation as the go.mod of {} says.</p>",
            esc(from)
        );
    }
    let _ = write!(
        out,
        "<p>Fetch it through this Ferry: <code>go get {}@latest</code></p>",
        esc(&module.module)
    );
    if module.versions.is_empty() {
        out.push_str("<p>No version of this module is known here.</p>");
        return;
    }
    let actions = if admin {
        "<th scope=\"col\">Admin</th>"
    } else {
        ""
    };
    let _ = write!(
        out,
        "<div class=\"scroll\" tabindex=\"0\"><table id=\"versions\"><caption>Versions, newest first</caption><thead><tr><th scope=\"col\">Version</th>\
<th scope=\"col\">Status</th><th scope=\"col\">Time (.info)</th><th scope=\"col\">Stored</th><th scope=\"col\" class=\"n\">Size</th>{actions}</tr></thead><tbody>"
    );
    for row in module.versions.iter().rev() {
        version_row(out, base, admin, &module.module, row);
    }
    out.push_str("</tbody></table></div>");
    if module.times_left_out > 0 {
        let _ = write!(
            out,
            "<p class=\"muted\">The .info time of {} older versions is not read here.</p>",
            module.times_left_out
        );
    }
}

fn version_row(
    out: &mut String,
    base: &str,
    admin: bool,
    module: &str,
    row: &super::view::VersionRow,
) {
    let mut status = row.status.to_string();
    if let Some(reason) = &row.reason {
        status = format!("{status}: {}", esc(reason));
    }
    if let Some(rationale) = &row.retracted {
        let why = if rationale.is_empty() {
            String::new()
        } else {
            format!(": {}", esc(rationale))
        };
        status = format!("{status}; <strong class=\"down\">retracted</strong>{why}");
    }
    let _ = write!(
        out,
        "<tr><th scope=\"row\">{}</th><td>{status}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>",
        esc(&row.version),
        esc(row.time.as_deref().unwrap_or("")),
        esc(&row.stored_at),
        if row.bytes > 0 {
            size(row.bytes)
        } else {
            String::new()
        },
    );
    if admin {
        let (m, v) = (esc(module), esc(&row.version));
        let _ = write!(
            out,
            "<td><form class=\"inline\" method=\"post\" action=\"{base}/-/admin/delete\">\
<input type=\"hidden\" name=\"module\" value=\"{m}\"><input type=\"hidden\" name=\"version\" value=\"{v}\">\
<button type=\"submit\">Delete {v}</button></form> \
<form class=\"inline\" method=\"post\" action=\"{base}/-/admin/block\">\
<input type=\"hidden\" name=\"module\" value=\"{m}\"><input type=\"hidden\" name=\"version\" value=\"{v}\">\
<input name=\"reason\" required aria-label=\"Reason to block {v}\" placeholder=\"reason\">\
<button type=\"submit\">Block {v}</button></form></td>"
        );
    }
    out.push_str("</tr>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_sizes_read_well() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(2048), "2.0 KiB (2048 bytes)");
        assert_eq!(href_path("example.com/a b/c~"), "example.com/a%20b/c~");
    }
}
