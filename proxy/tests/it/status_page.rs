//! The status page, the search and the module page, as a person sees them in a real browser (headless
//! Chromium): what the store holds, a fill in flight while the upstream holds it, a failure's reason, a
//! retracted version and a deprecation, and on the admin listener (only there) the delete and block forms,
//! a block made through its form.

use std::path::PathBuf;

use ferry::admin::gc::GcSettings;
use ferry::config::Flags;
use ferry_testkit::{Browser, FixtureModule, InProcess, Upstream, eventually};

use crate::harness::{Ferry, ferry_env, get, go_said, go_with};

const OLD: &str = "example.com/status/old";
const SLOW: &str = "example.com/status/slow";

/// A module whose newest version deprecates it and retracts the one before.
fn fixtures() -> Vec<FixtureModule> {
    let newest = "// Deprecated: use example.com/status/new instead.\nmodule example.com/status/old\n\ngo 1.21\n\n// Published with a broken API.\nretract v1.0.0\n";
    vec![
        FixtureModule::package(OLD, "v1.0.0").with_time("2026-01-02T03:04:05Z"),
        FixtureModule::package(OLD, "v1.1.0")
            .with_go_mod(newest)
            .with_time("2026-02-03T04:05:06Z"),
        FixtureModule::package(SLOW, "v0.1.0"),
    ]
}

/// Where the screenshots are kept: `target/status-page/`.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("status-page")
}

/// The text of the element whose `id` is given, tags left out: what a person reads there.
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in:\n{dom}"));
    let open = dom[..start].rfind('<').unwrap();
    let tag: String = dom[open + 1..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let end = dom[start..].find(&format!("</{tag}>")).unwrap() + start;
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[open..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The table row (as text) of `table` that mentions `needle`.
fn row_of(dom: &str, table: &str, needle: &str) -> String {
    let body = text_of_rows(dom, table);
    body.into_iter()
        .find(|row| row.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle} in #{table}:\n{dom}"))
}

/// The body rows of `table`, as text.
fn text_of_rows(dom: &str, table: &str) -> Vec<String> {
    let start = dom.find(&format!("id=\"{table}\"")).unwrap();
    let start = dom[start..].find("<tbody>").unwrap() + start;
    let end = dom[start..].find("</table>").unwrap() + start;
    dom[start..end]
        .split("<tr>")
        .skip(1)
        .map(|row| text_of(&format!("<tr id=\"r\">{row}"), "r"))
        .collect()
}

/// The HTML of the `action` form (`delete` or `block`) in the versions table's row of `version`.
fn form_in_row<'a>(dom: &'a str, version: &str, action: &str) -> &'a str {
    let row = dom
        .split("<tr>")
        .find(|row| row.contains(&format!("<th scope=\"row\">{version}</th>")))
        .unwrap_or_else(|| panic!("no row of {version}:\n{dom}"));
    let form = &row[row.find(&format!("action=\"/-/admin/{action}\"")).unwrap()..];
    &form[..form.find("</form>").unwrap()]
}

/// Ferry filling from a fixture upstream (the slow module's zip held), with its admin listener serving the
/// pages, and two versions stored by the go command.
struct Served {
    upstream: Upstream,
    ferry: Ferry,
    admin: InProcess,
    dir: tempfile::TempDir,
}

impl Served {
    async fn start() -> Served {
        let upstream = Upstream::start(fixtures()).await;
        upstream.hold("status/slow/@v/v0.1.0.zip");
        let dir = tempfile::tempdir().unwrap();
        let env = ferry_env(dir.path(), Some(&upstream.url()), &[]);
        let ferry = Ferry::from_env(&env, &Flags::default()).await;
        let (admin, proxy) = (ferry.proxy.admin(GcSettings::new()), ferry.proxy.clone());
        let admin = InProcess::start(move |listener, shutdown| {
            ferry::admin::api::run_admin_with(listener, admin, None, Some(proxy), shutdown)
        })
        .await;
        let served = Served {
            upstream,
            ferry,
            admin,
            dir,
        };
        for version in ["v1.0.0", "v1.1.0"] {
            let output = served
                .go(&["mod", "download", &format!("{OLD}@{version}")])
                .await;
            assert!(output.status.success(), "{}", go_said(&output));
        }
        served
    }

    async fn go(&self, args: &[&str]) -> std::process::Output {
        let work = tempfile::tempdir_in(self.dir.path()).unwrap();
        go_with(work.path(), &self.ferry.url(), &[], args).await
    }
}

#[tokio::test]
async fn a_person_sees_the_store_a_fill_in_flight_a_failure_and_a_deprecated_module() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let served = Served::start().await;
    let (ferry, upstream) = (&served.ferry, &served.upstream);
    // A version the upstream does not have: its fill fails, with go's reason.
    let missing = ferry.get("example.com/status/missing/@v/v1.0.0.info").await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    // A fill the upstream holds: in flight, one client waiting.
    let url = format!("{}/{SLOW}/@v/v0.1.0.zip", ferry.url());
    let waiting = tokio::spawn(async move { get(&url).await });
    eventually("the upstream holds the slow zip", async || {
        upstream.held() == 1
    })
    .await;

    // The gauges say it too (the registry is the process's: other tests' fills may add to them).
    let metrics = get(&format!("{}/metrics", ferry.url())).await.text();
    for gauge in ["ferry_fills_in_flight", "ferry_fill_waiting_clients"] {
        let value: f64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{gauge} ")))
            .unwrap_or_else(|| panic!("no {gauge} in {metrics}"))
            .parse()
            .unwrap();
        assert!(value >= 1.0, "{gauge} {value}");
    }
    let dom = browser.dom(&format!("{}/", ferry.url())).await;
    assert!(dom.contains("<html lang=\"en\">"), "{dom}");
    let totals = ferry.proxy.ledger().read(|state| state.totals());
    assert_eq!(text_of(&dom, "store-versions"), "2");
    assert_eq!(text_of(&dom, "store-modules"), "1");
    assert!(
        text_of(&dom, "store-size").contains(&format!("({} bytes)", totals.bytes)),
        "{}",
        text_of(&dom, "store-size")
    );
    let flight = row_of(&dom, "flights", SLOW);
    assert!(
        flight.contains("v0.1.0") && flight.ends_with(" 1"),
        "{flight}"
    );
    let failure = row_of(&dom, "failure-list", "example.com/status/missing");
    assert!(
        failure.contains("not_found") && failure.contains("404"),
        "{failure}"
    );
    assert!(text_of(&dom, "stored-list").contains(&format!("{OLD} v1.1.0")));
    assert!(text_of(&dom, "upstream").starts_with("up"), "{dom}");
    assert!(dom.contains(&format!("go env -w GOPROXY={}", ferry.url())));
    assert!(
        !dom.contains("/-/admin/"),
        "no admin action on the public listener"
    );
    let shots = artifacts();
    browser
        .screenshot(
            &format!("{}/", ferry.url()),
            &shots.join("status-phone.png"),
            412,
            1600,
        )
        .await;
    browser
        .screenshot(
            &format!("{}/", ferry.url()),
            &shots.join("status-desktop.png"),
            1280,
            1400,
        )
        .await;

    upstream.release();
    let reply = waiting.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let dom = browser.dom(&format!("{}/", ferry.url())).await;
    assert!(dom.contains("No fill is running."), "{dom}");

    let page = browser
        .dom(&format!("{}/-/module/{OLD}", ferry.url()))
        .await;
    assert_eq!(
        text_of(&page, "deprecated"),
        "Deprecated: use example.com/status/new instead."
    );
    let retracted = row_of(&page, "versions", "v1.0.0");
    assert!(
        retracted.contains("retracted") && retracted.contains("Published with a broken API."),
        "{retracted}"
    );
    assert!(
        retracted.contains("2026-01-02T03:04:05Z"),
        "the .info time: {retracted}"
    );
    let newest = row_of(&page, "versions", "v1.1.0");
    assert!(!newest.contains("retracted"), "{newest}");
    assert!(
        !page.contains("/-/admin/"),
        "no admin action on the public listener"
    );
    browser
        .screenshot(
            &format!("{}/-/module/{OLD}", ferry.url()),
            &shots.join("module-phone.png"),
            412,
            1000,
        )
        .await;

    let found = browser
        .dom(&format!("{}/-/search?q=example.com/status/o", ferry.url()))
        .await;
    assert_eq!(text_of_rows(&found, "results"), vec![format!("{OLD} 2")]);
    let none = browser
        .dom(&format!("{}/-/search?q=example.org/", ferry.url()))
        .await;
    assert!(
        text_of(&none, "results").starts_with("No stored module starts with"),
        "{none}"
    );
    served.ferry.stop().await;
    served.admin.stop().await;
}

#[tokio::test]
async fn the_admin_listener_offers_delete_and_block_and_a_block_through_its_form_holds() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let served = Served::start().await;
    served.upstream.release();
    let admin_page = format!("{}/-/module/{OLD}", served.admin.url());
    let dom = browser.dom(&admin_page).await;
    assert!(dom.contains("(admin listener)"), "{dom}");
    let row = row_of(&dom, "versions", "v1.1.0");
    assert!(
        row.contains("Delete v1.1.0") && row.contains("Block v1.1.0"),
        "{row}"
    );
    // The status page is served there too.
    let status = browser.dom(&format!("{}/", served.admin.url())).await;
    assert_eq!(text_of(&status, "store-versions"), "2");

    // The block form of v1.1.0, posted as the browser posts it: to its action, its hidden fields, a reason.
    let block = form_in_row(&dom, "v1.1.0", "block");
    let field = |name: &str| {
        let at = block.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        block[at..block[at..].find('"').unwrap() + at].to_string()
    };
    assert!(block.contains("name=\"reason\""), "{block}");
    let origin = served.admin.url();
    let posted = ferry_testkit::http::post(
        &format!("{origin}/-/admin/block"),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", &origin),
            ("sec-fetch-site", "same-origin"),
        ],
        &format!(
            "module={}&version={}&reason=Leaked+a+secret",
            field("module"),
            field("version")
        ),
    )
    .await;
    assert_eq!(posted.status, 303, "{}", posted.text());
    assert_eq!(posted.header("location"), format!("/-/module/{OLD}"));
    // From another site, the same form is refused.
    let forged = ferry_testkit::http::post(
        &format!("{origin}/-/admin/delete"),
        &[("sec-fetch-site", "cross-site")],
        &format!("module={OLD}&version=v1.0.0"),
    )
    .await;
    assert_eq!(forged.status, 400, "{}", forged.text());
    // And from a page elsewhere that the administrator's browser opens, posting the delete form itself.
    let elsewhere = served.dir.path().join("forged.html");
    std::fs::write(
        &elsewhere,
        format!(
            "<!DOCTYPE html><form method=post action=\"{origin}/-/admin/delete\"><input name=module value={OLD}>\
<input name=version value=v1.0.0></form><script>document.forms[0].submit()</script>"
        ),
    )
    .unwrap();
    let answer = browser
        .dom(&format!("file://{}", elsewhere.display()))
        .await;
    assert!(answer.contains("is refused"), "{answer}");

    let output = served
        .go(&["mod", "download", &format!("{OLD}@v1.1.0")])
        .await;
    assert!(!output.status.success(), "a blocked version is refused");
    assert!(go_said(&output).contains("403"), "{}", go_said(&output));
    let public = browser
        .dom(&format!("{}/-/module/{OLD}", served.ferry.url()))
        .await;
    let row = row_of(&public, "versions", "v1.1.0");
    assert!(row.contains("blocked: Leaked a secret"), "{row}");
    assert!(row_of(&public, "versions", "v1.0.0").contains("stored"));
    served.ferry.stop().await;
    served.admin.stop().await;
}

#[tokio::test]
async fn behind_a_reverse_proxy_the_page_names_its_https_url_and_links_under_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let env = ferry_env(
        dir.path(),
        None,
        &[
            ("FERRY_DOWNLOAD_MODE", "none"),
            ("FERRY_PATH_PREFIX", "/goproxy"),
            ("FERRY_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    let ferry = Ferry::from_env(&env, &Flags::default()).await;
    let headers = [
        ("host", "proxy.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    let page = crate::harness::request("GET", &format!("{}/goproxy/", ferry.url()), &headers).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    let page = page.text();
    assert!(
        page.contains("go env -w GOPROXY=https://proxy.example.com/goproxy</code>"),
        "{page}"
    );
    assert!(page.contains("action=\"/goproxy/-/search\""), "{page}");
    assert!(
        page.contains("Upstream</dt><dd id=\"upstream\">none"),
        "{page}"
    );
    // The pages are under the prefix only; at the root the prefix is named.
    let outside = ferry.get("-/search?q=x").await;
    assert_eq!(outside.status, 404, "{}", outside.text());
    let search = ferry.get("goproxy/-/search?q=example.com/").await;
    assert!(
        search.text().contains("No stored module starts with"),
        "{}",
        search.text()
    );
    let unknown = ferry.get("goproxy/-/module/example.com/none").await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .text()
            .contains("No version of this module is known here.")
    );
    let bad = ferry.get("goproxy/-/module/-bad").await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    ferry.stop().await;
}

#[tokio::test]
async fn with_replicas_the_page_names_the_lease_engine_the_leases_held_and_the_other_replicas() {
    let Some([redis]) = ferry_testkit::server_vars("Redis", ["FERRY_TEST_REDIS_URL"]) else {
        return;
    };
    let upstream = Upstream::start(vec![
        FixtureModule::package("example.com/status/first", "v1.0.0"),
        FixtureModule::package(SLOW, "v0.1.0"),
    ])
    .await;
    upstream.hold(".zip");
    let (store, one_dir, two_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let storage = format!("file://{}", store.path().display());
    let vars = [
        ("FERRY_STORAGE", storage.as_str()),
        ("FERRY_COORDINATION", redis.as_str()),
        ("FERRY_LEDGER_SYNC_INTERVAL", "200ms"),
    ];
    let start = async |dir: &std::path::Path| {
        Ferry::from_env(
            &ferry_env(dir, Some(&upstream.url()), &vars),
            &Flags::default(),
        )
        .await
    };
    let (one, two) = (start(one_dir.path()).await, start(two_dir.path()).await);
    // The first replica stores a version (a ledger record of its own); the second fills one held upstream.
    let info = one.get("example.com/status/first/@v/v1.0.0.info").await;
    assert_eq!(info.status, 200, "{}", info.text());
    let url = format!("{}/{SLOW}/@v/v0.1.0.zip", two.url());
    let waiting = tokio::spawn(async move { get(&url).await });
    let writer = one.proxy.ledger().writer().to_string();
    let page_of_two = format!("{}/", two.url());
    eventually(
        "the second replica's page names the first and its own lease",
        async || {
            let page = get(&page_of_two).await.text();
            text_of(&page, "other-replicas").contains(&writer)
                && text_of(&page, "leases").contains(&format!("{SLOW}@v0.1.0"))
        },
    )
    .await;
    let page = get(&page_of_two).await.text();
    assert!(
        page.contains("<dt>Lease engine</dt><dd>redis</dd>"),
        "{page}"
    );
    assert!(
        !page.contains(redis.trim_start_matches("redis://")),
        "never the Redis address"
    );
    upstream.release();
    assert_eq!(waiting.await.unwrap().status, 200);
    one.stop().await;
    two.stop().await;
}
