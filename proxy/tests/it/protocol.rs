//! The GOPROXY protocol over HTTP, as a client sees it: bodies, status codes, headers.

use crate::harness::{Ferry, get, memory_store, raw_request, request, save};
use ferry_testkit::{FixtureModule, curl, incompressible};

const PSEUDO: &str = "v0.0.0-20240102030405-abcdefabcdef";

async fn ferry_with(fixtures: &[FixtureModule]) -> Ferry {
    let store = memory_store();
    for fixture in fixtures {
        save(&*store, fixture).await;
    }
    Ferry::start(store).await
}

#[tokio::test]
async fn every_endpoint_answers_with_its_content_type_and_bytes() {
    let fixture = FixtureModule::package("example.com/Hello", "v1.0.0");
    let ferry = ferry_with(std::slice::from_ref(&fixture)).await;
    let base = format!("{}/example.com/!hello", ferry.url());

    let list = get(&format!("{base}/@v/list")).await;
    assert_eq!(
        (
            list.status,
            list.header("content-type"),
            list.text().as_str()
        ),
        (200, "text/plain; charset=utf-8", "v1.0.0\n")
    );
    assert_eq!(list.header("cache-control"), "public, max-age=60");

    let info = get(&format!("{base}/@v/v1.0.0.info")).await;
    assert_eq!(
        (info.status, info.header("content-type")),
        (200, "application/json")
    );
    assert_eq!(info.text(), fixture.info_json());

    let go_mod = get(&format!("{base}/@v/v1.0.0.mod")).await;
    assert_eq!(
        (go_mod.status, go_mod.header("content-type")),
        (200, "text/plain; charset=utf-8")
    );
    assert_eq!(go_mod.text(), fixture.go_mod());

    let zip = get(&format!("{base}/@v/v1.0.0.zip")).await;
    assert_eq!(
        (zip.status, zip.header("content-type")),
        (200, "application/zip")
    );
    assert_eq!(
        zip.header("content-length"),
        fixture.zip_bytes().len().to_string()
    );
    assert_eq!(zip.body.as_ref(), fixture.zip_bytes().as_slice());

    let latest = get(&format!("{base}/@latest")).await;
    assert_eq!(
        (latest.status, latest.header("content-type")),
        (200, "application/json")
    );
    assert_eq!(latest.text(), fixture.info_json());
}

#[tokio::test]
async fn immutable_files_carry_strong_etags_and_revalidate_with_304() {
    let ferry = ferry_with(&[FixtureModule::package("example.com/etag", "v1.0.0")]).await;
    for file in ["v1.0.0.info", "v1.0.0.mod", "v1.0.0.zip"] {
        let url = format!("{}/example.com/etag/@v/{file}", ferry.url());
        let first = get(&url).await;
        let etag = first.header("etag").to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{file}: strong ETag, got {etag:?}"
        );
        assert!(
            first.header("cache-control").contains("immutable"),
            "{file}"
        );
        let again = request("GET", &url, &[("if-none-match", &etag)]).await;
        assert_eq!((again.status, again.body.len()), (304, 0), "{file}");
        assert_eq!(again.header("etag"), etag);
        let other = request("GET", &url, &[("if-none-match", "\"something-else\"")]).await;
        assert_eq!(other.status, 200, "{file}");
        let any = request(
            "GET",
            &format!("{}/example.com/etag/@v/v9.9.9.{}", ferry.url(), &file[7..]),
            &[("if-none-match", "*")],
        )
        .await;
        assert_eq!(
            any.status, 404,
            "{file}: `*` is no proof that a missing file is cached"
        );
    }
    // An ETag is computed from the file's name: a client holding it from another proxy that stores v9.9.9
    // gets no 304 from a Ferry that does not.
    let other = ferry_with(&[FixtureModule::package("example.com/etag", "v9.9.9")]).await;
    for file in ["v9.9.9.info", "v9.9.9.mod", "v9.9.9.zip"] {
        let path = format!("example.com/etag/@v/{file}");
        let etag = other.get(&path).await.header("etag").to_string();
        let missing = request(
            "GET",
            &format!("{}/{path}", ferry.url()),
            &[("if-none-match", &etag)],
        )
        .await;
        assert_eq!(
            missing.status, 404,
            "{file}: no 304 for a file that is not stored"
        );
    }
    let info = get(&format!("{}/example.com/etag/@v/v1.0.0.info", ferry.url())).await;
    let zip = get(&format!("{}/example.com/etag/@v/v1.0.0.zip", ferry.url())).await;
    assert_ne!(
        info.header("etag"),
        zip.header("etag"),
        "each file has its own ETag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_zip_is_served_in_parts_and_a_cut_download_resumes_with_curl() {
    let fixture = FixtureModule::package("example.com/ranged", "v1.0.0")
        .file("data.bin", incompressible(200_000));
    let zip = fixture.zip_bytes();
    let len = zip.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    // A file store (read with pread from the part's first byte) and a memory one (object_store's ranged
    // GET, as on S3, GCS and Azure).
    let file_store = Ferry::on_dir(&dir.path().join("store")).await;
    save(file_store.store().as_ref(), &fixture).await;
    let memory = ferry_with(std::slice::from_ref(&fixture)).await;
    for (store, ferry) in [("file", &file_store), ("memory", &memory)] {
        let url = format!("{}/example.com/ranged/@v/v1.0.0.zip", ferry.url());
        let whole = get(&url).await;
        assert_eq!(whole.status, 200, "{store}");
        assert_eq!(whole.header("accept-ranges"), "bytes", "{store}");
        assert!(whole.body == zip, "{store}");
        let etag = whole.header("etag").to_string();

        for (range, part) in [
            ("bytes=0-99", 0..100),
            ("bytes=1000-", 1000..len),
            ("bytes=-300", len - 300..len),
            ("bytes=150000-99999999", 150_000..len),
        ] {
            let reply = request("GET", &url, &[("range", range)]).await;
            assert_eq!(reply.status, 206, "{store} {range}: {}", reply.text());
            let content_range = format!("bytes {}-{}/{len}", part.start, part.end - 1);
            assert_eq!(
                (
                    reply.header("content-range"),
                    reply.header("content-length"),
                    reply.header("accept-ranges"),
                    reply.header("etag"),
                ),
                (
                    content_range.as_str(),
                    (part.end - part.start).to_string().as_str(),
                    "bytes",
                    etag.as_str()
                ),
                "{store} {range}"
            );
            assert!(
                reply.body == zip[part.start as usize..part.end as usize],
                "{store} {range}: the bytes of the zip in that range"
            );
        }

        // If-Range: a part of this very zip only; another ETag or a date gets the whole zip.
        let resumed = request(
            "GET",
            &url,
            &[("range", "bytes=10-19"), ("if-range", &etag)],
        )
        .await;
        assert_eq!(resumed.status, 206, "{store}");
        for other in ["\"zip-0000000000000000\"", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            let reply = request(
                "GET",
                &url,
                &[("range", "bytes=10-19"), ("if-range", other)],
            )
            .await;
            assert_eq!(reply.status, 200, "{store} {other}");
            assert!(reply.body == zip, "{store} {other}");
        }
        // Several ranges: the whole zip, which HTTP allows.
        let several = request("GET", &url, &[("range", "bytes=0-9,20-29")]).await;
        assert_eq!(several.status, 200, "{store}");
        assert!(several.body == zip, "{store}");
        // A range past the end: 416, saying the length.
        for range in [format!("bytes={len}-"), "bytes=-0".to_string()] {
            let reply = request("GET", &url, &[("range", &range)]).await;
            assert_eq!(reply.status, 416, "{store} {range}: {}", reply.text());
            assert_eq!(reply.header("content-range"), format!("bytes */{len}"));
        }
        // `.mod` and `.info` are small: always whole.
        let go_mod = request(
            "GET",
            &url.replace(".zip", ".mod"),
            &[("range", "bytes=0-3")],
        )
        .await;
        assert_eq!((go_mod.status, go_mod.text()), (200, fixture.go_mod()));

        // A download cut a third of the way in, resumed with `curl -C -`: the same zip.
        let download = dir.path().join(format!("{store}.zip"));
        std::fs::write(&download, &zip[..zip.len() / 3]).unwrap();
        let output = {
            let (download, url) = (download.clone(), url.clone());
            tokio::task::spawn_blocking(move || {
                curl(&["-f", "-C", "-", "-o", download.to_str().unwrap(), &url])
            })
            .await
            .unwrap()
        };
        assert!(output.status.success(), "{store}: {output:?}");
        assert!(
            std::fs::read(&download).unwrap() == zip,
            "{store}: the resumed download is the zip"
        );
    }
    file_store.stop().await;
    memory.stop().await;
}

#[tokio::test]
async fn head_answers_headers_without_a_body() {
    let fixture = FixtureModule::package("example.com/head", "v1.0.0");
    let ferry = ferry_with(std::slice::from_ref(&fixture)).await;
    let url = format!("{}/example.com/head/@v/v1.0.0.zip", ferry.url());
    let head = request("HEAD", &url, &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        fixture.zip_bytes().len().to_string()
    );
    assert!(head.body.is_empty());
    let missing = request(
        "HEAD",
        &format!("{}/example.com/head/@v/v9.0.0.zip", ferry.url()),
        &[],
    )
    .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn list_is_semver_sorted_without_pseudo_versions_and_isolated_from_neighbours() {
    let ferry = ferry_with(&[
        FixtureModule::package("example.com/a", "v1.10.0"),
        FixtureModule::package("example.com/a", "v1.2.0"),
        FixtureModule::package("example.com/a", "v1.2.0-rc.1"),
        FixtureModule::package("example.com/a", PSEUDO),
        FixtureModule::package("example.com/a/b", "v3.0.0"),
        FixtureModule::package("example.com/a-b", "v4.0.0"),
        FixtureModule::package("example.com/A", "v5.0.0"),
    ])
    .await;
    assert_eq!(
        get(&format!("{}/example.com/a/@v/list", ferry.url()))
            .await
            .text(),
        "v1.2.0-rc.1\nv1.2.0\nv1.10.0\n"
    );
    assert_eq!(
        get(&format!("{}/example.com/a/b/@v/list", ferry.url()))
            .await
            .text(),
        "v3.0.0\n"
    );
    assert_eq!(
        get(&format!("{}/example.com/a-b/@v/list", ferry.url()))
            .await
            .text(),
        "v4.0.0\n"
    );
    assert_eq!(
        get(&format!("{}/example.com/!a/@v/list", ferry.url()))
            .await
            .text(),
        "v5.0.0\n"
    );
}

#[tokio::test]
async fn latest_follows_the_go_command_rule() {
    let ferry = ferry_with(&[
        FixtureModule::package("example.com/rel", "v1.0.0"),
        FixtureModule::package("example.com/rel", "v1.1.0-rc.1"),
        FixtureModule::package("example.com/pre", "v1.1.0-rc.1"),
        FixtureModule::package("example.com/pre", "v1.0.0-rc.1"),
        FixtureModule::package("example.com/pseudo", PSEUDO),
    ])
    .await;
    let latest = |m: &'static str| {
        let url = format!("{}/{m}/@latest", ferry.url());
        async move {
            serde_json::from_slice::<serde_json::Value>(&get(&url).await.body).unwrap()["Version"]
                .clone()
        }
    };
    assert_eq!(latest("example.com/rel").await, "v1.0.0");
    assert_eq!(latest("example.com/pre").await, "v1.1.0-rc.1");
    assert_eq!(latest("example.com/pseudo").await, PSEUDO);
    // Only a pseudo-version stored: the list is empty, @latest names the pseudo-version.
    let list = get(&format!("{}/example.com/pseudo/@v/list", ferry.url())).await;
    assert_eq!((list.status, list.text().as_str()), (200, ""));
}

#[tokio::test]
async fn missing_things_are_404_with_a_not_found_text_body() {
    let ferry = ferry_with(&[FixtureModule::package("example.com/here", "v1.0.0")]).await;
    for path in [
        "example.com/nothing/@v/list",
        "example.com/nothing/@latest",
        "example.com/here/@v/v2.0.0.info",
        "example.com/here/@v/v2.0.0.mod",
        "example.com/here/@v/v2.0.0.zip",
        "example.com/here/@v/master.info",
        "sumdb/sum.example.org/supported",
        "favicon.ico",
    ] {
        let reply = get(&format!("{}/{path}", ferry.url())).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(
            reply.header("content-type"),
            "text/plain; charset=utf-8",
            "{path}"
        );
        assert!(
            reply.text().starts_with("not found: "),
            "{path}: {}",
            reply.text()
        );
    }
    // A store-only Ferry (mode none) says why an empty list is not fetched.
    let list = get(&format!("{}/example.com/nothing/@v/list", ferry.url())).await;
    assert!(
        list.text()
            .contains("the download policy does not fetch it"),
        "{}",
        list.text()
    );
}

#[tokio::test]
async fn invalid_paths_and_versions_are_400_with_a_reason() {
    let ferry = ferry_with(&[]).await;
    for (path, reason) in [
        ("github.com/Azure/x/@v/list", "upper-case"),
        (
            "github.com/!/x/@v/list",
            "'!' must be followed by a lower-case letter",
        ),
        ("-x.com/a/@v/list", "leading dash"),
        ("example.com/a/@v/v1.0.0.tar", "unknown file"),
        ("example.com/a/@v/master.zip", "not a semantic version"),
        ("example.com/a/@v/v1.0.mod", "not canonical"),
        ("nodot/a/@v/list", "missing dot"),
    ] {
        let reply = get(&format!("{}/{path}", ferry.url())).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.header("content-type"), "text/plain; charset=utf-8");
        assert!(
            reply.text().starts_with("bad request: ") && reply.text().contains(reason),
            "{path}: {}",
            reply.text()
        );
    }
    let post = request(
        "POST",
        &format!("{}/example.com/a/@v/list", ferry.url()),
        &[],
    )
    .await;
    assert_eq!((post.status, post.header("allow")), (405, "GET, HEAD"));
}

#[tokio::test]
async fn hostile_requests_get_400_or_404_and_the_server_stays_up() {
    const SECRET: &str = "classified-7f3a9c";
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    // A secret next to the store, which no request may reach.
    std::fs::write(dir.path().join("secret.info"), SECRET).unwrap();
    std::fs::create_dir_all(dir.path().join("outside/@v")).unwrap();
    std::fs::write(dir.path().join("outside/@v/v1.0.0.info"), SECRET).unwrap();
    let ferry = Ferry::on_dir(&store_dir).await;
    let long = format!("/example.com/{}/@v/list", "a".repeat(9 * 1024));
    let hostile: Vec<(String, &str)> = vec![
        ("/../secret.info".into(), "40"),
        ("/example.com/../../outside/@v/v1.0.0.info".into(), "400"),
        (
            "/example.com/%2e%2e/%2e%2e/outside/@v/v1.0.0.info".into(),
            "400",
        ),
        ("/..%2f..%2foutside/@v/v1.0.0.info".into(), "400"),
        ("/example.com/a/@v/..%2f..%2f..%2fsecret.info".into(), "400"),
        ("/example.com/a%00/@v/list".into(), "400"),
        ("/example.com/a%0d%0aSet-Cookie:%20x/@v/list".into(), "400"),
        (long, "400"),
        // An element no file system stores: a 400 with a reason, not a store error naming its path.
        (format!("/example.com/{}/@v/list", "a".repeat(256)), "400"),
        (
            format!("/example.com/a/@v/v1.0.0-{}.info", "a".repeat(250)),
            "400",
        ),
    ];
    for (path, status) in &hostile {
        let answer = raw_request(
            ferry.addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        let status_line = answer.lines().next().unwrap_or_default().to_string();
        assert!(
            status_line.starts_with(&format!("HTTP/1.1 {status}")),
            "{path:.80}: {status_line}"
        );
        assert!(
            !answer.contains(SECRET),
            "{path:.80} leaked a file outside the store"
        );
        assert!(
            !answer.to_lowercase().contains("set-cookie: x"),
            "{path:.80} injected a header"
        );
    }
    // Bytes no HTTP client would send: a raw NUL and a raw CR in the request line.
    for raw in [
        &b"GET /example.com/a\0b/@v/list HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /example.com/a\rb/@v/list HTTP/1.1\r\n\r\n",
    ] {
        let answer = raw_request(ferry.addr, raw).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
            "{answer:.80}"
        );
    }
    assert_eq!(
        get(&format!("{}/healthz", ferry.url())).await.status,
        200,
        "still serving"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let ferry = ferry_with(&[]).await;
    let health = get(&format!("{}/healthz", ferry.url())).await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let ready = get(&format!("{}/readyz", ferry.url())).await;
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));
}

#[tokio::test]
async fn http2_without_tls_is_served() {
    let fixture = FixtureModule::package("example.com/h2", "v1.0.0");
    let ferry = ferry_with(std::slice::from_ref(&fixture)).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let url = format!("{}/example.com/h2/@v/v1.0.0.zip", ferry.url());
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body.as_ref(), fixture.zip_bytes().as_slice());
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_download_finish() {
    let store = memory_store();
    let big = FixtureModule::package("example.com/big", "v1.0.0")
        .file("blob.bin", vec![7u8; 4 * 1024 * 1024]);
    save(&*store, &big).await;
    let ferry = Ferry::start(store).await;
    let url = format!("{}/example.com/big/@v/v1.0.0.zip", ferry.url());
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    // The headers are in; now ask the server to stop while the body is still to be read.
    let stopping = tokio::spawn(ferry.stop());
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body.len(), big.zip_bytes().len());
    stopping.await.unwrap();
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_usable_given_one_is_kept() {
    let ferry = ferry_with(&[]).await;
    let url = format!("{}/healthz", ferry.url());
    let first = get(&url).await.header("x-request-id").to_string();
    let second = get(&url).await.header("x-request-id").to_string();
    assert!(first.len() == 16 && second.len() == 16, "{first} {second}");
    assert_ne!(first, second, "each request gets its own id");
    let given = request("GET", &url, &[("x-request-id", "lb-7f3a-0001")]).await;
    assert_eq!(given.header("x-request-id"), "lb-7f3a-0001");
    // An id that is too long for a log line is replaced, not echoed.
    let long = "x".repeat(300);
    let replaced = request("GET", &url, &[("x-request-id", &long)]).await;
    assert_eq!(replaced.header("x-request-id").len(), 16);
    // Errors carry one too.
    let missing = get(&format!("{}/example.com/none/@v/list", ferry.url())).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-request-id").len(), 16);
}
