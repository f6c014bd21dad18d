//! The `[[oidc]]` tables of the configuration file: one per issuer whose JWTs are accepted, each checked
//! where it is written (a missing or unknown key, a value of the wrong type, an issuer URL that is not
//! `https://`).

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigError;
use super::file::ConfigFile;
use crate::layers::auth::oidc::IssuerSettings;

/// What each `[[oidc]]` table may hold, for the message about a key that is none of them.
const KEYS: &str = "issuer, audience, jwks_url, name_claim, group_claims, group_prefix";
const EXAMPLE: &str = "[[oidc]]\nissuer = \"https://token.actions.githubusercontent.com\"\naudience = \"https://goproxy.corp.example\"";

/// The issuers the file's `[[oidc]]` tables configure (none without a file or tables).
pub(super) fn issuers(file: Option<&ConfigFile>) -> Result<Vec<IssuerSettings>, ConfigError> {
    let Some(file) = file else {
        return Ok(Vec::new());
    };
    let text = file.text.clone();
    let table = DeTable::parse(&text).map_err(|e| ConfigError::Syntax {
        origin: file.origin_at(e.span().map_or(0, |s| s.start)),
        message: e.message().to_string(),
    })?;
    let Some(value) = table.get_ref().get("oidc") else {
        return Ok(Vec::new());
    };
    let invalid = |offset: usize, message: String| ConfigError::Invalid {
        origin: file.origin_at(offset),
        message,
    };
    let DeValue::Array(tables) = value.get_ref() else {
        return Err(invalid(
            value.span().start,
            format!("oidc is a list of tables, one per issuer; write\n{EXAMPLE}"),
        ));
    };
    let mut issuers: Vec<IssuerSettings> = Vec::new();
    for entry in tables {
        let DeValue::Table(keys) = entry.get_ref() else {
            return Err(invalid(
                entry.span().start,
                format!("each oidc entry is a table; write\n{EXAMPLE}"),
            ));
        };
        let issuer = one_issuer(keys, entry.span().start, &invalid)?;
        if issuers.iter().any(|known| known.issuer == issuer.issuer) {
            return Err(invalid(
                entry.span().start,
                format!(
                    "oidc: the issuer {} is configured twice; keep one table",
                    issuer.issuer
                ),
            ));
        }
        issuers.push(issuer);
    }
    Ok(issuers)
}

/// One `[[oidc]]` table, starting at `start` in the file.
fn one_issuer(
    keys: &DeTable<'_>,
    start: usize,
    invalid: &dyn Fn(usize, String) -> ConfigError,
) -> Result<IssuerSettings, ConfigError> {
    let mut settings = IssuerSettings {
        issuer: String::new(),
        audience: String::new(),
        jwks_url: None,
        name_claim: "sub".to_string(),
        group_claims: Vec::new(),
        group_prefix: String::new(),
    };
    for (key, value) in keys {
        let at = value.span().start;
        match key.get_ref().as_ref() {
            "issuer" => settings.issuer = url(value, "issuer", invalid)?,
            "audience" => settings.audience = string(value, "audience", invalid)?,
            "jwks_url" => settings.jwks_url = Some(url(value, "jwks_url", invalid)?),
            "name_claim" => settings.name_claim = string(value, "name_claim", invalid)?,
            "group_prefix" => settings.group_prefix = string(value, "group_prefix", invalid)?,
            "group_claims" => {
                let DeValue::Array(items) = value.get_ref() else {
                    return Err(invalid(
                        at,
                        "oidc: group_claims is a list of claim names, e.g. [\"repository_owner\"]"
                            .into(),
                    ));
                };
                for item in items {
                    settings
                        .group_claims
                        .push(string(item, "group_claims", invalid)?);
                }
            }
            other => {
                return Err(invalid(
                    key.span().start,
                    format!("oidc: unknown key `{other}`, expected one of {KEYS}"),
                ));
            }
        }
    }
    for (missing, what) in [
        (
            settings.issuer.is_empty(),
            "issuer (the `iss` its tokens carry)",
        ),
        (
            settings.audience.is_empty(),
            "audience (what the tokens' `aud` must hold)",
        ),
    ] {
        if missing {
            return Err(invalid(
                start,
                format!("oidc: this table has no {what}; write\n{EXAMPLE}"),
            ));
        }
    }
    Ok(settings)
}

fn string(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    invalid: &dyn Fn(usize, String) -> ConfigError,
) -> Result<String, ConfigError> {
    match value.get_ref() {
        DeValue::String(text) if !text.is_empty() => Ok(text.to_string()),
        _ => Err(invalid(
            value.span().start,
            format!("oidc: {key} is a non-empty string"),
        )),
    }
}

/// An `https://` URL, or `http://` on the loopback address (a test issuer, a sidecar).
fn url(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    invalid: &dyn Fn(usize, String) -> ConfigError,
) -> Result<String, ConfigError> {
    let text = string(value, key, invalid)?;
    let parsed = url::Url::parse(&text).map_err(|e| {
        invalid(
            value.span().start,
            format!("oidc: {key} {text:?} is not a URL: {e}"),
        )
    })?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(text),
        "http" if loopback => Ok(text),
        _ => Err(invalid(
            value.span().start,
            format!(
                "oidc: {key} {text:?} must be https:// (plain http:// only on the loopback address): the keys that prove every token come from it"
            ),
        )),
    }
}
