//! Traces: OpenTelemetry spans exported over OTLP (HTTP, protobuf bodies), off unless an OTLP endpoint is
//! set in the environment (the standard `OTEL_*` variables, read from the binary's one snapshot by
//! [`TraceSettings::from_environment`]).
//!
//! The spans are `tracing` spans of one target, [`TARGET`], bridged by `tracing-opentelemetry`: one per
//! request (`layers/trace.rs`), one per fill (`filler.rs`; a request that joins a running fill has a span
//! linked to it), the fetcher's upstream requests, go command runs and checksum database lookups, the
//! checksum database proofs, and the store's writes (`metered_store.rs`). The log never shows that target,
//! and with traces off no layer wants it: each span is then a disabled callsite, one atomic load.
//!
//! Spans go through a bounded queue (`Bounded`) to the SDK's batch processor, which exports them from a
//! thread of its own: a slow or unreachable collector costs the requests nothing; spans that find the queue
//! full are dropped and counted (`ferry_trace_spans_total{result="dropped"}`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, Span, SpanData,
    SpanExporter, SpanProcessor,
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::{ResultLabels, metrics};

/// The target of every span exported as a trace (the fetcher's and the checksum database's too).
pub const TARGET: &str = ferry_fetcher::SPAN_TARGET;

/// Spans waiting for export at most; the next ones are dropped (and counted) until the exporter catches up.
const MAX_QUEUED: usize = 2048;

/// How long shutdown waits for the last spans to be exported.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the environment asks of traces (see [Traces](../../docs/operations.md#traces)).
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// The full URL spans are posted to (`.../v1/traces`).
    pub endpoint: String,
    pub headers: HashMap<String, String>,
    pub service_name: String,
    pub sampler: Sampler,
    pub timeout: Duration,
}

impl TraceSettings {
    /// The settings the environment (the binary's snapshot, `config::process_environment`) and `endpoint`
    /// give, or none
    /// when traces are off: no endpoint set, `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. An
    /// error names the variable and the fix.
    /// `endpoint` is the `otlp_endpoint` setting (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the file's).
    pub fn from_environment(
        environment: &BTreeMap<String, String>,
        endpoint: Option<&str>,
    ) -> Result<Option<TraceSettings>, String> {
        let env = Vars(environment);
        if env
            .var("OTEL_SDK_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env.var("OTEL_TRACES_EXPORTER").as_deref() == Some("none")
        {
            return Ok(None);
        }
        if let Some(exporter) = env.var("OTEL_TRACES_EXPORTER").filter(|e| e != "otlp") {
            return Err(format!(
                "OTEL_TRACES_EXPORTER={exporter}: Ferry exports traces over OTLP only; set it to otlp or none"
            ));
        }
        let endpoint = match (env.var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), endpoint) {
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(format!(
                "OTLP endpoint {endpoint}: not an http:// or https:// URL; set OTEL_EXPORTER_OTLP_ENDPOINT to the collector's base URL, e.g. http://collector:4318"
            ));
        }
        let protocol = signal_var(&env, "PROTOCOL").unwrap_or_else(|| "http/protobuf".into());
        if protocol != "http/protobuf" {
            return Err(format!(
                "OTLP protocol {protocol}: Ferry exports traces as http/protobuf only; unset OTEL_EXPORTER_OTLP_PROTOCOL (and OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) or set it to http/protobuf, and point the endpoint at the collector's OTLP/HTTP port (4318)"
            ));
        }
        let timeout = match signal_var(&env, "TIMEOUT") {
            Some(ms) => Duration::from_millis(ms.parse().map_err(|_| {
                format!("OTLP timeout {ms}: not a number of milliseconds; set OTEL_EXPORTER_OTLP_TIMEOUT to e.g. 10000")
            })?),
            None => Duration::from_secs(10),
        };
        Ok(Some(TraceSettings {
            endpoint,
            headers: headers(&signal_var(&env, "HEADERS").unwrap_or_default())?,
            service_name: env
                .var("OTEL_SERVICE_NAME")
                .unwrap_or_else(|| "ferry".into()),
            sampler: sampler(&env)?,
            timeout,
        }))
    }
}

/// The environment's variables, an empty one counting as unset (as the OpenTelemetry specification has it).
struct Vars<'a>(&'a BTreeMap<String, String>);

impl Vars<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|value| !value.is_empty()).cloned()
    }
}

/// `OTEL_EXPORTER_OTLP_TRACES_{name}`, else `OTEL_EXPORTER_OTLP_{name}`.
fn signal_var(env: &Vars, name: &str) -> Option<String> {
    env.var(&format!("OTEL_EXPORTER_OTLP_TRACES_{name}"))
        .or_else(|| env.var(&format!("OTEL_EXPORTER_OTLP_{name}")))
}

/// `key=value,key2=value2`, values percent-decoded (the OTLP exporter's header format).
fn headers(text: &str) -> Result<HashMap<String, String>, String> {
    let mut headers = HashMap::new();
    for pair in text.split(',').filter(|pair| !pair.trim().is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_HEADERS: {:?} is not key=value; write the headers as key=value,key2=value2",
                pair.split_once('=').map_or(pair.trim(), |(key, _)| key)
            ));
        };
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8_lossy()
            .into_owned();
        headers.insert(key.trim().to_string(), value);
    }
    Ok(headers)
}

/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`; `parentbased_always_on` when unset.
fn sampler(env: &Vars) -> Result<Sampler, String> {
    let ratio = || -> Result<f64, String> {
        match env.var("OTEL_TRACES_SAMPLER_ARG") {
            None => Ok(1.0),
            Some(arg) => arg
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| format!("OTEL_TRACES_SAMPLER_ARG={arg}: not a ratio; set a number from 0 to 1, e.g. 0.1")),
        }
    };
    let name = env
        .var("OTEL_TRACES_SAMPLER")
        .unwrap_or_else(|| "parentbased_always_on".into());
    Ok(match name.as_str() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio()?)))
        }
        other => {
            return Err(format!(
                "OTEL_TRACES_SAMPLER={other}: not a sampler Ferry knows; use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
            ));
        }
    })
}

/// The exporting pipeline while traces are on; [`Traces::shutdown`] flushes it.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Builds the exporter and the provider (no connection is made yet), and makes the fetcher's requests
    /// carry the trace context.
    pub fn start(settings: &TraceSettings) -> Result<Traces, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(settings.endpoint.clone())
            .with_headers(settings.headers.clone())
            .with_timeout(settings.timeout)
            .build()
            .map_err(|e| format!("OTLP exporter for {}: {e}", settings.endpoint))?;
        let queued = Arc::new(AtomicUsize::new(0));
        let exporter = Counted {
            inner: exporter,
            queued: queued.clone(),
        };
        let batch = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(MAX_QUEUED)
                    .build(),
            )
            .build();
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(settings.service_name.clone())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Bounded {
                inner: batch,
                queued,
            })
            .with_sampler(settings.sampler.clone())
            .with_resource(resource)
            .build();
        ferry_fetcher::propagate_trace_context(inject_current);
        Ok(Traces { provider })
    }

    /// The `tracing` layer that turns [`TARGET`]'s spans into this pipeline's spans (and no other).
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use opentelemetry::trace::TracerProvider;
        use tracing_subscriber::Layer;
        let tracer = self.provider.tracer("ferry");
        // What a span says is its own attributes: not the source line, thread nor busy time of each.
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(TARGET, tracing::Level::INFO),
            )
    }

    /// Exports the spans still queued, waiting at most [`FLUSH_TIMEOUT`].
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            tracing::warn!(error = %e, "traces: the last spans could not all be exported");
        }
    }
}

/// The batch processor behind a bound: a span that finds [`MAX_QUEUED`] spans waiting is dropped and
/// counted, so a collector that does not keep up costs memory no further.
#[derive(Debug)]
struct Bounded {
    inner: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        // The batch processor exports sampled spans only: others do not count against the bound.
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            count("dropped", 1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter, telling [`Bounded`] how many spans left the queue and counting what became of them.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        self.queued.fetch_sub(spans, Ordering::AcqRel);
        match &result {
            Ok(()) => count("exported", spans),
            Err(e) => {
                count("failed", spans);
                tracing::debug!(error = %e, spans, "traces: a batch could not be exported");
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// Adds `spans` to `ferry_trace_spans_total{result}`.
fn count(result: &'static str, spans: usize) {
    metrics()
        .trace_spans
        .get_or_create(&ResultLabels { result })
        .inc_by(spans as u64);
}

/// Makes `span` the child of the trace context a client sent (`traceparent`, `tracestate`), if any.
/// Nothing is read when the span is disabled (traces off).
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    // Only fails for a span already started or disabled: neither can be here.
    let _ = span.set_parent(parent);
}

/// Links `span` to `to` (a request that joined a running fill, to the fill's span).
pub fn link(span: &tracing::Span, to: &tracing::Span) {
    if span.is_disabled() || to.is_disabled() {
        return;
    }
    use opentelemetry::trace::TraceContextExt;
    span.add_link(to.context().span().span_context().clone());
}

/// Writes the current span's trace context into `headers` (the fetcher's outbound requests).
fn inject_current(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeadersMut(headers));
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Writes the current span's trace context into `headers`, when traces are on (the relay's requests to a
/// checksum database).
pub fn inject(headers: &mut http::HeaderMap) {
    if !tracing::Span::current().is_disabled() {
        inject_current(headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn off_unless_an_endpoint_is_set_and_not_disabled() {
        let off = TraceSettings::from_environment(&env(&[]), None).unwrap();
        assert!(off.is_none());
        let on = Some("http://c:4318/");
        let settings = TraceSettings::from_environment(&env(&[]), on)
            .unwrap()
            .unwrap();
        assert_eq!(settings.endpoint, "http://c:4318/v1/traces");
        assert_eq!(settings.service_name, "ferry");
        let disabled = env(&[("OTEL_SDK_DISABLED", "true")]);
        assert!(
            TraceSettings::from_environment(&disabled, on)
                .unwrap()
                .is_none()
        );
        let none = env(&[("OTEL_TRACES_EXPORTER", "none")]);
        assert!(
            TraceSettings::from_environment(&none, on)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_traces_variables_win_and_bad_values_name_the_fix() {
        let c = Some("http://c:4318");
        let vars = env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318/custom"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x=y"),
            ("OTEL_SERVICE_NAME", "proxy-eu"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ]);
        let settings = TraceSettings::from_environment(&vars, c).unwrap().unwrap();
        assert_eq!(settings.endpoint, "http://t:4318/custom");
        assert_eq!(settings.headers["api-key"], "a b");
        assert_eq!(settings.headers["x"], "y");
        assert_eq!(settings.service_name, "proxy-eu");
        assert_eq!(format!("{:?}", settings.sampler), "TraceIdRatioBased(0.25)");
        let grpc = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        let error = TraceSettings::from_environment(&grpc, c).unwrap_err();
        assert!(error.contains("http/protobuf only"), "{error}");
        let sampler = env(&[("OTEL_TRACES_SAMPLER", "sometimes")]);
        let error = TraceSettings::from_environment(&sampler, c).unwrap_err();
        assert!(error.contains("OTEL_TRACES_SAMPLER=sometimes"), "{error}");
    }
}
