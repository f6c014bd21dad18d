//! What a span of the traces costs a request when traces are off: the request's span as
//! `proxy/src/layers/trace.rs` opens it, under the subscriber the binary installs without a collector (the
//! log's layer with its filter and `ferry_span=off`, as `init_logging` in `proxy/src/main.rs` builds it),
//! against nothing at all.
//!
//!     cargo bench -p ferry-benches --bench traces_off
//!
//! `request_span_off`: the span made (a disabled callsite) and found disabled, as every request does.
//! `no_span`: the same loop without it. Compare with the CPU time of one warm `.mod` request (about 28 µs:
//! see the ledger bench).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn bench(criterion: &mut Criterion) {
    let filter = tracing_subscriber::EnvFilter::new("info,object_store=warn")
        .add_directive(format!("{}=off", ferry::traces::TARGET).parse().unwrap());
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(filter);
    tracing_subscriber::registry().with(log).init();
    criterion.bench_function("request_span_off", |b| {
        b.iter(|| {
            let span = tracing::info_span!(
                target: ferry::traces::TARGET,
                "request",
                otel.name = tracing::field::Empty,
                otel.kind = "server",
                http.request.method = tracing::field::Empty,
                ferry.endpoint = tracing::field::Empty,
                http.response.status_code = tracing::field::Empty,
            );
            black_box(span.is_disabled())
        })
    });
    criterion.bench_function("no_span", |b| b.iter(|| black_box(black_box(1u8) == 1)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
