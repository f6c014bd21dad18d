//! What authentication's let-in path costs a request, in the server's own CPU: the authentication layer
//! (`AuthLayer`, as the server's stack puts it in front of the handler) over a handler that answers at once,
//! for a request with no authentication configured (`off`), with credentials that verified before
//! (`password`: a remembered HTTP Basic check), with a bearer token of `token_file` (`bearer`), and with an
//! RS256 JWT of an `[[oidc]]` issuer (the testkit's, on 127.0.0.1) that verified before (`jwt`).
//!
//!     cargo bench -p ferry-benches --bench auth_check
//!
//! The difference to `off` is what the check, the identity and their bookkeeping cost a request; compare
//! with the CPU time of one warm `.mod` request (13–16 µs in `benches/load.sh`'s CPU column). End-to-end
//! runs (`benches/auth.sh`) cannot resolve a few percent on a shared 2-core machine; this can.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use tower::{Layer, Service, ServiceExt};

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// The handler: an empty 200 at once.
async fn answer(_request: Request<()>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    ))
}

fn bench(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        format!(
            "{}\n",
            ferry_testkit::htpasswd_line("builder", "correct-horse")
        ),
    )
    .unwrap();
    let tokens = dir.path().join("tokens");
    let token = ferry::tokens::create(&tokens, "bench", &[]).unwrap();
    let issuer = runtime.block_on(ferry_testkit::TestIssuer::start(dir.path()));
    let oidc = Arc::new(ferry::Oidc::new(vec![ferry::IssuerSettings {
        issuer: issuer.url(),
        audience: "bench".into(),
        jwks_url: None,
        name_claim: "sub".into(),
        group_claims: Vec::new(),
        group_prefix: String::new(),
    }]));
    let jwt = issuer.sign(
        ferry_testkit::IssuerKey::Rsa,
        &issuer.claims("bench-job", "bench", 3600),
    );
    let gate = ferry::Gate::of(
        Some(Arc::new(ferry::Auth::load(&users).unwrap())),
        Some(Arc::new(ferry::Tokens::load(&tokens).unwrap())),
        Some(oidc),
    );
    let basic = {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode("builder:correct-horse");
        http::HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    };
    let bearer = http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let jwt = http::HeaderValue::from_str(&format!("Bearer {jwt}")).unwrap();
    let handler = tower::service_fn(answer);
    let cases = [
        ("off", ferry::AuthLayer(None), None),
        ("password", ferry::AuthLayer(gate.clone()), Some(basic)),
        ("bearer", ferry::AuthLayer(gate.clone()), Some(bearer)),
        ("jwt", ferry::AuthLayer(gate), Some(jwt)),
    ];
    for (name, layer, authorization) in cases {
        let mut service = layer.layer(handler);
        let request = || {
            let mut request = Request::get("/example.com/small/@v/v1.0.0.mod")
                .body(())
                .unwrap();
            if let Some(value) = &authorization {
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value.clone());
            }
            request
        };
        // The first request with the password runs bcrypt, the JWT's fetches the issuer's keys and verifies
        // it; every later one is let in as remembered.
        let first =
            runtime.block_on(async { service.ready().await.unwrap().call(request()).await });
        assert_eq!(first.unwrap().status(), 200, "{name}");
        criterion.bench_function(name, |b| {
            b.iter(|| {
                let response = runtime.block_on(async {
                    service
                        .ready()
                        .await
                        .unwrap()
                        .call(black_box(request()))
                        .await
                });
                black_box(response.unwrap().status())
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
