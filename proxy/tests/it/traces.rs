//! Traces over OTLP: the `ferry` binary, run as an operator runs it with the standard `OTEL_*` variables,
//! in front of a fixture upstream, and an OTLP collector stand-in made here (`POST /v1/traces`, protobuf
//! bodies decoded with `opentelemetry-proto`). The spans arrive when Ferry stops (the batch delay is set
//! longer than any test, so only the shutdown's flush sends them).

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_testkit::{
    FixtureModule, Process, SumDbFixture, Upstream, eventually, write_goproxy_tree,
};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use crate::harness::{
    ferry, ferry_env, go_said, go_with, request, run_async, serve_memory, serving, write_file,
};

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
    /// Each link's trace and span ids.
    links: Vec<(String, String)>,
    attributes: Vec<(String, String)>,
    service: String,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The OTLP/HTTP collector stand-in on 127.0.0.1: every span of every `POST /v1/traces`, and how many
/// requests came at all.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    posts: Arc<Mutex<usize>>,
}

impl Collector {
    /// Serves until the test ends; its base URL (for `OTEL_EXPORTER_OTLP_ENDPOINT`).
    async fn start() -> (Collector, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let collector = Collector::default();
        let serving = collector.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let collector = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let collector = collector.clone();
                        async move { Ok::<_, Infallible>(collector.receive(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (collector, url)
    }

    async fn receive(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<Full<Bytes>> {
        *self.posts.lock().unwrap() += 1;
        let path_ok =
            request.method() == hyper::Method::POST && request.uri().path() == "/v1/traces";
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let (status, answer) = match ExportTraceServiceRequest::decode(body) {
            Ok(export) if path_ok => {
                self.spans.lock().unwrap().extend(spans_of(export));
                (200, Bytes::new())
            }
            _ => (400, Bytes::from_static(b"not an OTLP trace export\n")),
        };
        let mut response = hyper::Response::new(Full::new(answer));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        response
            .headers_mut()
            .insert("content-type", "application/x-protobuf".parse().unwrap());
        response
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    fn posts(&self) -> usize {
        *self.posts.lock().unwrap()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn spans_of(export: ExportTraceServiceRequest) -> Vec<Span> {
    let mut spans = Vec::new();
    for resource in export.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            spans.push(Span {
                name: span.name,
                trace: hex(&span.trace_id),
                id: hex(&span.span_id),
                parent: hex(&span.parent_span_id),
                links: span
                    .links
                    .iter()
                    .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                    .collect(),
                attributes: span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                    .collect(),
                service: service.clone(),
            });
        }
    }
    spans
}

/// `ferry` serving a memory store from `dir` in front of `upstream`, with `vars` (the OTEL ones) set; the
/// batch delay is longer than a test unless `vars` say, so spans leave only at shutdown.
async fn start_ferry(dir: &Path, upstream: &Upstream, vars: &[(&str, &str)]) -> (Process, String) {
    let mut settings = vec![("OTEL_BSP_SCHEDULE_DELAY", "600000")];
    settings.extend_from_slice(vars);
    let env = ferry_env(dir, Some(&upstream.url()), &settings);
    let mut command = serve_memory(dir, &[]);
    command.envs(&env);
    let (process, addr) = tokio::task::spawn_blocking(move || serving(command))
        .await
        .unwrap();
    (process, format!("http://{addr}"))
}

/// SIGTERM and its exit, off the runtime (the collector and the upstream are served on it).
async fn stop(mut process: Process) -> String {
    tokio::task::spawn_blocking(move || {
        let status = process.terminate();
        let log = process.log();
        assert!(status.success(), "ferry exited with {status}; log:\n{log}");
        log
    })
    .await
    .unwrap()
}

fn hello() -> FixtureModule {
    FixtureModule::package("example.com/hello", "v1.2.3")
}

/// `go mod download` of example.com/hello through `ferry`.
async fn go_download(dir: &Path, ferry: &str) {
    let output = go_with(
        dir,
        ferry,
        &[],
        &["mod", "download", "-json", "example.com/hello@v1.2.3"],
    )
    .await;
    assert!(output.status.success(), "{}", go_said(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_download_is_traced_from_request_to_fill_upstream_and_store() {
    let (collector, endpoint) = Collector::start().await;
    let upstream = Upstream::start(vec![hello()]).await;
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "ferry-test"),
    ];
    let (ferry, url) = start_ferry(dir.path(), &upstream, &vars).await;
    go_download(dir.path(), &url).await;
    let log = stop(ferry).await;
    assert!(log.contains("exporting traces over OTLP"), "{log}");
    let spans = collector.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let by_name = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    // One span per request the go command made, named by method and endpoint kind, with the module.
    for name in ["GET info", "GET mod", "GET zip"] {
        let span = by_name(name);
        let span = span
            .first()
            .unwrap_or_else(|| panic!("no {name} span in {names:?}; log:\n{log}"));
        assert_eq!(
            span.attribute("ferry.module"),
            Some("example.com/hello"),
            "{span:?}"
        );
        assert_eq!(span.attribute("ferry.version"), Some("v1.2.3"), "{span:?}");
        assert_eq!(
            span.attribute("http.response.status_code"),
            Some("200"),
            "{span:?}"
        );
        assert_eq!(span.service, "ferry-test");
    }
    // The fill is the child of the request that started it; the upstream's answers and the store's write
    // are the fill's children (or their descendants).
    let fills = by_name("fill");
    assert!(!fills.is_empty(), "no fill span in {names:?}");
    let requests: Vec<_> = spans
        .iter()
        .filter(|s| s.name.starts_with("GET "))
        .collect();
    for fill in &fills {
        assert!(
            requests
                .iter()
                .any(|r| r.id == fill.parent && r.trace == fill.trace),
            "{fill:?} has no request parent"
        );
    }
    let under_a_fill = |span: &Span| {
        let mut parent = span.parent.clone();
        for _ in 0..8 {
            if fills.iter().any(|f| f.id == parent) {
                return true;
            }
            match spans.iter().find(|s| s.id == parent) {
                Some(up) => parent = up.parent.clone(),
                None => return false,
            }
        }
        false
    };
    let gets = by_name("upstream GET");
    assert!(
        gets.iter().any(|s| under_a_fill(s)),
        "no upstream GET under a fill: {names:?}"
    );
    let writes = by_name("store write");
    assert!(
        writes
            .iter()
            .any(|s| under_a_fill(s) && s.attribute("ferry.module") == Some("example.com/hello")),
        "no store write under a fill: {names:?}"
    );
    // What the upstream received carried the trace: the parent it names is an upstream GET span.
    let sent = upstream.header_values("traceparent");
    assert!(
        !sent.is_empty(),
        "the upstream received no traceparent: {:?}",
        upstream.requests()
    );
    for (path, traceparent) in &sent {
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert!(
            gets.iter().any(|g| g.trace == parts[1] && g.id == parts[2]),
            "{path}: traceparent {traceparent} names no upstream GET span"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_traceparent_is_the_parent_and_a_request_joining_the_fill_is_linked_to_it() {
    let (collector, endpoint) = Collector::start().await;
    let upstream = Upstream::start(vec![hello()]).await;
    upstream.hold(".zip");
    let dir = tempfile::tempdir().unwrap();
    // The collector named in the configuration file this time.
    let file = write_file(
        dir.path(),
        "ferry.toml",
        &format!("otlp_endpoint = \"{endpoint}\"\n"),
    );
    let file = file.display().to_string();
    let (ferry, url) = start_ferry(dir.path(), &upstream, &[("FERRY_CONFIG", file.as_str())]).await;
    let zip = format!("{url}/example.com/hello/@v/v1.2.3.zip");
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{client_span}-01");
    let first = {
        let (zip, traceparent) = (zip.clone(), traceparent.clone());
        tokio::spawn(async move { request("GET", &zip, &[("traceparent", &traceparent)]).await })
    };
    eventually("the fill waits on the upstream's zip", || async {
        upstream.held() == 1
    })
    .await;
    let second = tokio::spawn({
        let zip = zip.clone();
        async move { request("GET", &zip, &[]).await }
    });
    let metrics = format!("{url}/metrics");
    eventually("the second request joined the fill", || {
        let metrics = metrics.clone();
        async move {
            request("GET", &metrics, &[])
                .await
                .text()
                .contains("ferry_fill_joins_total 1")
        }
    })
    .await;
    upstream.release();
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(second.await.unwrap().status, 200);
    let log = stop(ferry).await;
    let spans = collector.spans();
    let zips: Vec<_> = spans.iter().filter(|s| s.name == "GET zip").collect();
    assert_eq!(zips.len(), 2, "{spans:?}\nlog:\n{log}");
    // The client's traceparent: the first request's span is its child, in its trace.
    let traced = zips
        .iter()
        .find(|s| s.trace == trace)
        .unwrap_or_else(|| panic!("no request span in the client's trace: {zips:?}"));
    assert_eq!(traced.parent, client_span);
    let fill = spans
        .iter()
        .find(|s| s.name == "fill")
        .expect("a fill span");
    assert_eq!(
        (fill.trace.as_str(), fill.parent.as_str()),
        (trace, traced.id.as_str())
    );
    // The second request waited on that fill: its join span is linked to the fill's span.
    let other = zips
        .iter()
        .find(|s| s.trace != trace)
        .expect("the second request's span");
    let join = spans
        .iter()
        .find(|s| s.name == "fill join")
        .unwrap_or_else(|| panic!("no fill join span: {spans:?}"));
    assert_eq!(
        (join.trace.as_str(), join.parent.as_str()),
        (other.trace.as_str(), other.id.as_str())
    );
    assert_eq!(join.links, vec![(fill.trace.clone(), fill.id.clone())]);
    // The upstream's zip request went out in the client's trace.
    let sent = upstream.header_values("traceparent");
    let zip_sent = sent
        .iter()
        .find(|(path, _)| path.ends_with(".zip"))
        .expect("the zip request's traceparent");
    assert!(
        zip_sent.1.starts_with(&format!("00-{trace}-")),
        "{zip_sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_traces_off_no_request_reaches_the_collector() {
    let (collector, endpoint) = Collector::start().await;
    let upstream = Upstream::start(vec![hello()]).await;
    let dir = tempfile::tempdir().unwrap();
    // The SDK is disabled: the endpoint set changes nothing.
    let vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SDK_DISABLED", "true"),
    ];
    let (ferry, url) = start_ferry(dir.path(), &upstream, &vars).await;
    go_download(dir.path(), &url).await;
    stop(ferry).await;
    assert!(upstream.header_values("traceparent").is_empty());
    // And with no endpoint at all (the default).
    let (ferry, url) = start_ferry(dir.path(), &upstream, &[]).await;
    let reply = request(
        "GET",
        &format!("{url}/example.com/hello/@v/v1.2.3.mod"),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200);
    stop(ferry).await;
    assert_eq!(collector.posts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_fails_no_request() {
    let upstream = Upstream::start(vec![hello()]).await;
    let dir = tempfile::tempdir().unwrap();
    let down = format!("http://127.0.0.1:{}", ferry_testkit::closed_port());
    let vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", down.as_str()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let (ferry, url) = start_ferry(dir.path(), &upstream, &vars).await;
    go_download(dir.path(), &url).await;
    // The spans are still made (their context goes to the upstream), only not delivered: counted.
    assert!(!upstream.header_values("traceparent").is_empty());
    let metrics = format!("{url}/metrics");
    eventually("the failed export is counted", || {
        let metrics = metrics.clone();
        async move {
            let text = request("GET", &metrics, &[]).await.text();
            text.contains("ferry_trace_spans_total{result=\"failed\"}")
        }
    })
    .await;
    let reply = request(
        "GET",
        &format!("{url}/example.com/hello/@v/v1.2.3.mod"),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200);
    stop(ferry).await;
}

#[tokio::test]
async fn an_unusable_traces_setting_stops_start_up_naming_where_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "ferry.toml",
        "storage = \"memory://\"\notlp_endpoint = \"collector:4318\"\n",
    );
    let mut command = ferry();
    command
        .current_dir(dir.path())
        .arg("--config")
        .arg(&file)
        .args(["--listen", "127.0.0.1:0"]);
    let (ok, said) = run_async(command).await;
    assert!(!ok);
    assert!(said.contains(&format!("{}:2:17", file.display())), "{said}");
    assert!(said.contains("e.g. \"http://collector:4318\""), "{said}");
    // A sampler Ferry does not know, from the environment: the variable and the samplers it knows.
    let mut command = ferry();
    command
        .current_dir(dir.path())
        .args(["--listen", "127.0.0.1:0", "--storage", "memory://"])
        .env("FERRY_DOWNLOAD_MODE", "none")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_TRACES_SAMPLER", "sometimes");
    let (ok, said) = run_async(command).await;
    assert!(!ok);
    assert!(
        said.contains("OTEL_TRACES_SAMPLER=sometimes") && said.contains("parentbased_always_on"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_database_lookups_and_proofs_are_spans_of_the_fill() {
    let (collector, endpoint) = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_goproxy_tree(&dir.path().join("tree"), &[hello()]);
    let sumdb = SumDbFixture::start("sum.fixture.example", &dir.path().join("tree"), 0);
    let upstream = Upstream::start(vec![hello()]).await;
    let gosumdb = format!("{} {}", sumdb.key, sumdb.url);
    let vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("GOSUMDB", gosumdb.as_str()),
    ];
    let (ferry, url) = start_ferry(dir.path(), &upstream, &vars).await;
    let reply = request(
        "GET",
        &format!("{url}/example.com/hello/@v/v1.2.3.zip"),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let log = stop(ferry).await;
    let spans = collector.spans();
    let span = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:?}\nlog:\n{log}"))
    };
    let (fill, lookup, proof) = (span("fill"), span("sumdb lookup"), span("sumdb proof"));
    assert_eq!(lookup.parent, fill.id);
    assert_eq!(lookup.attribute("sumdb"), Some("sum.fixture.example"));
    assert_eq!(proof.parent, lookup.id);
    // The database's answer was asked under the lookup, in the same trace.
    let asked = spans
        .iter()
        .find(|s| {
            s.name == "upstream GET"
                && s.attribute("url.path") == Some("/lookup/example.com/hello@v1.2.3")
        })
        .unwrap_or_else(|| panic!("no GET of the lookup in {spans:?}"));
    assert_eq!(
        (asked.trace.as_str(), asked.parent.as_str()),
        (fill.trace.as_str(), lookup.id.as_str())
    );
}
