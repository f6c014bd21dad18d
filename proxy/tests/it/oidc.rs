//! JWTs of OIDC issuers (`[[oidc]]`): a fixture issuer on 127.0.0.1 (discovery and JWKS served by the
//! test, RS256 and ES256 keys made by it) signs the tokens; each kind of bad token is a 401 naming its
//! class, an issuer whose keys cannot be fetched has its tokens refused while the rest works, and the real
//! go command fetches with a JWT from a GOAUTH command.

use ferry::config::Flags;
use ferry_testkit::{FixtureModule, IssuerKey, TestIssuer, htpasswd_line};

use crate::harness::{
    Ferry, ferry, ferry_env, go_download_over_tls, go_said, goauth_command, request, save,
    secured_with_stored, write_file,
};

const MODULE: &str = "example.com/private/lib";
const MOD_PATH: &str = "example.com/private/lib/@v/v1.0.0.mod";
const AUDIENCE: &str = "https://goproxy.test";

/// A `[[oidc]]` table for `issuer`, its groups from the `groups` claim.
fn oidc_table(issuer: &str) -> String {
    format!(
        "[[oidc]]\nissuer = \"{issuer}\"\naudience = \"{AUDIENCE}\"\ngroup_claims = [\"groups\"]\ngroup_prefix = \"ci:\"\n"
    )
}

/// Ferry in-process over plain HTTP with the configuration file `toml` and `vars`, one module stored.
async fn with_config(dir: &std::path::Path, toml: &str, vars: &[(&str, &str)]) -> Ferry {
    let config = write_file(dir, "ferry.toml", toml).display().to_string();
    let mut all = vec![
        ("FERRY_DOWNLOAD_MODE", "none"),
        ("FERRY_CONFIG", config.as_str()),
    ];
    all.extend_from_slice(vars);
    let ferry = Ferry::from_env(&ferry_env(dir, None, &all), &Flags::default()).await;
    save(
        ferry.store().as_ref(),
        &FixtureModule::package(MODULE, "v1.0.0"),
    )
    .await;
    ferry
}

/// The status and body of a GET of `path` with `Authorization: AUTHORIZATION`.
async fn get_with(ferry: &Ferry, path: &str, authorization: &str) -> (u16, String) {
    let reply = request(
        "GET",
        &format!("{}/{path}", ferry.url()),
        &[("authorization", authorization)],
    )
    .await;
    (reply.status, reply.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_signed_rs256_and_es256_are_let_in_and_each_bad_token_is_401_naming_its_class() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::start(dir.path()).await;
    let ferry = with_config(dir.path(), &oidc_table(&issuer.url()), &[]).await;
    let mut claims = issuer.claims("repo:acme/app:ref:refs/heads/main", AUDIENCE, 600);
    claims["groups"] = serde_json::json!(["builders", "release"]);
    for key in [IssuerKey::Rsa, IssuerKey::Ec] {
        let token = issuer.sign(key, &claims);
        let (status, body) = get_with(&ferry, MOD_PATH, &format!("Bearer {token}")).await;
        assert_eq!(status, 200, "{key:?}: {body}");
        assert!(body.starts_with("module example.com/private/lib"), "{body}");
    }
    // The same token again is remembered: no more fetches of the keys.
    let fetches = issuer.jwks_fetches();
    let token = issuer.sign(IssuerKey::Ec, &claims);
    assert_eq!(
        get_with(&ferry, MOD_PATH, &format!("Bearer {token}"))
            .await
            .0,
        200
    );
    assert_eq!(
        get_with(&ferry, MOD_PATH, &format!("Bearer {token}"))
            .await
            .0,
        200
    );
    assert_eq!(issuer.jwks_fetches(), fetches);

    let elsewhere = {
        let mut claims = claims.clone();
        claims["iss"] = "http://127.0.0.1:9/not-trusted".into();
        claims
    };
    let tampered = {
        let good = issuer.sign(IssuerKey::Rsa, &claims);
        let other = issuer.sign(
            IssuerKey::Rsa,
            &issuer.claims("someone-else", AUDIENCE, 600),
        );
        let parts: Vec<&str> = good.split('.').collect();
        let other: Vec<&str> = other.split('.').collect();
        format!("{}.{}.{}", parts[0], other[1], parts[2])
    };
    let cases = [
        (
            issuer.sign(IssuerKey::Rsa, &issuer.claims("ci", AUDIENCE, -300)),
            "the token has expired",
        ),
        (
            issuer.sign(
                IssuerKey::Ec,
                &issuer.claims("ci", "https://other.test", 600),
            ),
            "the token is for another audience",
        ),
        (
            issuer.sign(IssuerKey::Ec, &elsewhere),
            "the token's issuer is not one this Ferry trusts",
        ),
        (tampered, "the token's signature does not verify"),
        (
            issuer.sign(IssuerKey::Unpublished, &claims),
            "signed with a key its issuer does not publish",
        ),
        (
            "eyJub3QiOiJqc29uIn0.e30.c2ln".to_string(),
            "the bearer token is not a well-formed JWT",
        ),
    ];
    for (token, reason) in &cases {
        let reply = request(
            "GET",
            &format!("{}/{MOD_PATH}", ferry.url()),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        let body = reply.text();
        assert_eq!(reply.status, 401, "{reason}: {body}");
        assert!(
            body.starts_with("unauthorized: ") && body.contains(reason),
            "{body}"
        );
        assert!(!body.contains(token.as_str()), "{body}");
        assert!(
            reply.header("www-authenticate").contains("invalid_token"),
            "{:?}",
            reply.headers
        );
    }
    // Unknown kids fetch the keys again, at most once per 30 s however many arrive.
    let before = issuer.jwks_fetches();
    for _ in 0..5 {
        let token = issuer.sign(IssuerKey::Unpublished, &claims);
        assert_eq!(
            get_with(&ferry, MOD_PATH, &format!("Bearer {token}"))
                .await
                .0,
            401
        );
    }
    assert!(
        issuer.jwks_fetches() <= before + 1,
        "{} fetches",
        issuer.jwks_fetches() - before
    );
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_whose_keys_cannot_be_fetched_has_its_tokens_refused_while_passwords_and_other_issuers_work()
 {
    let dir = tempfile::tempdir().unwrap();
    let up = TestIssuer::start(dir.path()).await;
    let down = TestIssuer::start(dir.path()).await;
    down.set_jwks_available(false);
    let users = write_file(dir.path(), "users", &htpasswd_line("builder", "s3cret"));
    let users = users.display().to_string();
    let toml = format!("{}\n{}", oidc_table(&up.url()), oidc_table(&down.url()));
    let ferry = with_config(dir.path(), &toml, &[("FERRY_AUTH_FILE", &users)]).await;

    let token = down.sign(IssuerKey::Rsa, &down.claims("ci", AUDIENCE, 600));
    let reply = request(
        "GET",
        &format!("{}/{MOD_PATH}", ferry.url()),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), "30");
    assert!(
        reply
            .text()
            .contains("cannot be reached for its signing keys"),
        "{}",
        reply.text()
    );

    let token = up.sign(IssuerKey::Ec, &up.claims("ci", AUDIENCE, 600));
    assert_eq!(
        get_with(&ferry, MOD_PATH, &format!("Bearer {token}"))
            .await
            .0,
        200
    );
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "builder:s3cret")
    );
    assert_eq!(get_with(&ferry, MOD_PATH, &basic).await.0, 200);

    let ready = ferry.get("readyz").await;
    assert_eq!(ready.status, 200);
    assert!(
        ready.text().contains(&format!(
            "OIDC issuer {}: its signing keys cannot be fetched; its tokens are refused",
            down.url()
        )),
        "{}",
        ready.text()
    );
    assert!(!ready.text().contains(&up.url()), "{}", ready.text());
    ferry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_downloads_with_a_jwt_from_goauth() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::start(dir.path()).await;
    let config = write_file(dir.path(), "ferry.toml", &oidc_table(&issuer.url()));
    let config = config.display().to_string();
    let (ferry, ca) = secured_with_stored(dir.path(), &[("FERRY_CONFIG", &config)], MODULE).await;
    let url = ferry.https_url();
    let token = issuer.sign(IssuerKey::Rsa, &issuer.claims("ci", AUDIENCE, 600));
    let goauth = goauth_command(dir.path(), "goauth.sh", &url, &format!("Bearer {token}"));
    let output = go_download_over_tls(dir.path(), &url, &ca, MODULE, &[("GOAUTH", &goauth)]).await;
    assert!(output.status.success(), "{}", go_said(&output));

    let expired = issuer.sign(IssuerKey::Rsa, &issuer.claims("ci", AUDIENCE, -300));
    let goauth = goauth_command(dir.path(), "expired.sh", &url, &format!("Bearer {expired}"));
    let output = go_download_over_tls(dir.path(), &url, &ca, MODULE, &[("GOAUTH", &goauth)]).await;
    let said = go_said(&output);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("401 Unauthorized") && said.contains("the token has expired"),
        "{said}"
    );
    ferry.stop().await;
}

#[test]
fn an_oidc_table_without_an_audience_or_with_a_plain_http_issuer_stops_start_up_where_it_is_written()
 {
    let dir = tempfile::tempdir().unwrap();
    for (toml, at, words) in [
        (
            "listen = \"127.0.0.1:0\"\n\n[[oidc]]\nissuer = \"https://issuer.test\"\n",
            ":3:1: ",
            "oidc: this table has no audience",
        ),
        (
            "[[oidc]]\nissuer = \"http://issuer.test\"\naudience = \"x\"\n",
            ":2:10: ",
            "must be https://",
        ),
        (
            "[[oidc]]\nissuer = \"https://issuer.test\"\naudience = \"x\"\nclaims = 1\n",
            ":4:1: ",
            "unknown key `claims`",
        ),
    ] {
        let config = write_file(dir.path(), "ferry.toml", toml);
        let output = ferry()
            .arg("config")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{said}");
        assert!(
            said.contains(&format!("{}{at}", config.display())),
            "{said}"
        );
        assert!(said.contains(words), "{said}");
    }
    // Valid tables: `ferry config` shows the issuers and where they are written.
    let config = write_file(
        dir.path(),
        "ferry.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\n\n{}\n{}",
            oidc_table("https://a.test"),
            oidc_table("https://b.test")
        ),
    );
    let output = ferry()
        .arg("config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}");
    let line = said
        .lines()
        .find(|l| l.starts_with("oidc "))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(line.contains("https://a.test, https://b.test"), "{line}");
    assert!(
        line.contains(&format!("file {}:3:1", config.display())),
        "{line}"
    );
}
