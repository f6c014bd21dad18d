//! Refusing an upstream that is Ferry itself. The README's quick start says `export
//! GOPROXY=http://127.0.0.1:3000`; a Ferry started from that shell hands the same `GOPROXY` to its `go`,
//! which then asks Ferry for the very version Ferry is filling, joins that fill, and waits for itself until
//! the fetch timeout. Start-up says so instead, with the fix.

use std::net::{IpAddr, SocketAddr};

use crate::config::Config;

/// The `GOPROXY` Ferry's `go` gets: `[fetcher] go_env` wins over Ferry's environment.
fn goproxy(config: &Config) -> Option<&String> {
    config
        .fetcher
        .go_env
        .get("GOPROXY")
        .or_else(|| config.fetcher.inherited_env.get("GOPROXY"))
}

/// The `GOPROXY` entry of Ferry's `go` that points at `config.listen`, if any.
pub fn own_address_in_upstream(config: &Config) -> Option<String> {
    goproxy(config)?
        .split([',', '|'])
        .map(str::trim)
        .find(|entry| names(entry, config.listen))
        .map(redact)
}

/// The `[[upstreams]]` table (its name) and URL that point at `config.listen`, if any: such a table's fills
/// would be answered by Ferry's own loop detection at once (502), never fetched.
pub fn own_address_in_tables(config: &Config) -> Option<(String, String)> {
    config.fetcher.upstreams.iter().find_map(|route| {
        route.steps.iter().find_map(|step| match &step.hop {
            ferry_fetcher::UpstreamHop::Proxy { url, .. } if names(url, config.listen) => {
                Some((route.name.clone(), url.clone()))
            }
            _ => None,
        })
    })
}

/// The go command's `GOPROXY` for the log: every entry's credentials (`user:token@`) replaced by `***@`.
pub fn goproxy_for_log(config: &Config) -> String {
    let Some(goproxy) = goproxy(config) else {
        return "the go command's default".to_string();
    };
    let mut shown = String::new();
    let mut rest = goproxy.as_str();
    // Entries and their separators (`,` or `|`) are kept as written.
    while !rest.is_empty() {
        let end = rest.find([',', '|']).unwrap_or(rest.len());
        shown.push_str(&redact(&rest[..end]));
        shown.push_str(&rest[end..(end + 1).min(rest.len())]);
        rest = &rest[(end + 1).min(rest.len())..];
    }
    shown
}

/// One `GOPROXY` entry with its credentials (`user:token@`) replaced by `***@`.
fn redact(entry: &str) -> String {
    match entry.rfind('@').zip(entry.find("://")) {
        Some((at, scheme)) if at > scheme => {
            format!("{}***{}", &entry[..scheme + 3], &entry[at..])
        }
        _ => entry.to_string(),
    }
}

/// Whether the GOPROXY entry `entry` (a URL, `direct` or `off`) reaches `listen`.
fn names(entry: &str, listen: SocketAddr) -> bool {
    let Ok(url) = url::Url::parse(entry) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https")
        || url.port_or_known_default() != Some(listen.port())
    {
        return false;
    }
    let local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified() || ip == listen.ip();
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => local(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => local(IpAddr::V6(ip)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn credentials_in_the_upstream_are_not_logged() {
        let mut config = crate::config::load(
            &crate::config::Flags::default(),
            &std::collections::BTreeMap::from([(
                "GOPROXY".to_string(),
                "https://ci:s3cr3t@goproxy.internal.example/,direct|off".to_string(),
            )]),
        )
        .unwrap();
        assert_eq!(
            super::goproxy_for_log(&config),
            "https://***@goproxy.internal.example/,direct|off"
        );
        config.fetcher.inherited_env.clear();
        assert_eq!(super::goproxy_for_log(&config), "the go command's default");
    }

    #[test]
    fn an_entry_is_ferry_itself_when_it_reaches_the_listen_port_on_this_machine() {
        let listen = "127.0.0.1:3000".parse().unwrap();
        for entry in [
            "http://127.0.0.1:3000",
            "http://localhost:3000/",
            "http://[::1]:3000",
            "http://0.0.0.0:3000",
        ] {
            assert!(names(entry, listen), "{entry}");
        }
        for entry in [
            "direct",
            "off",
            "http://127.0.0.1:3001",
            "https://goproxy.internal.example",
            "file:///srv/goproxy",
        ] {
            assert!(!names(entry, listen), "{entry}");
        }
        let any = "0.0.0.0:80".parse().unwrap();
        assert!(names("http://127.0.0.1", any));
    }
}
