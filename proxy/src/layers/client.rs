//! Who a request comes from, decided once per request and put in its extensions as a [`Client`]: the
//! client's address and whether it reached Ferry over HTTPS. The address is the connection's peer; when
//! that peer is a trusted proxy (`trusted_proxies`), it is the address the proxy forwarded in
//! `X-Forwarded-For` (the right-most one that is not itself a trusted proxy), and the scheme is the one it
//! forwarded in `X-Forwarded-Proto`. From any other peer both headers are ignored: a client cannot name
//! another address.
//!
//! A plain layer, not a [`Hook`](super::hook::Hook): it has no work after the response, and passing the
//! inner service's future through boxes nothing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use http::header::{HeaderMap, HeaderName};
use tower::{Layer, Service};

use crate::connection::ClientAddress;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The client of a request, in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the peer's, or the one a trusted proxy forwarded.
    pub address: IpAddr,
    /// Whether the client's request came over HTTPS: Ferry's own TLS, or a trusted proxy's that says so.
    pub https: bool,
}

/// One network of `trusted_proxies`: an address and a prefix length (`10.0.0.0/8`, `fd00::/8`; a bare
/// address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `ADDRESS/PREFIX` or `ADDRESS`; the address bits past the prefix must be zero, so that what is
    /// written is what is trusted.
    fn from_str(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| {
            format!("{text:?} is not an address or a network; write e.g. \"10.0.0.0/8\", \"192.0.2.7\" or \"fd00::/8\"")
        })?;
        let network = network.to_canonical();
        let bits: u8 = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= bits)
                .ok_or_else(|| {
                    format!("{text:?}: the prefix length must be a number from 0 to {bits}")
                })?,
        };
        let cidr = Cidr { network, prefix };
        let masked = match network {
            IpAddr::V4(v4) => IpAddr::V4(std::net::Ipv4Addr::from(
                u32::from(v4) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0),
            )),
            IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0),
            )),
        };
        if masked != network {
            return Err(format!(
                "{text:?} has bits set past its /{prefix} prefix; write \"{masked}/{prefix}\""
            ));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose forwarding headers are believed (`trusted_proxies`); none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(networks: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    /// The client of a request from `peer` with these headers (see the module's documentation);
    /// `tls`: whether the connection itself is TLS.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap, tls: bool) -> Client {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return Client {
                address: peer,
                https: tls,
            };
        }
        // Every X-Forwarded-For header, in order, each a comma-separated list of hops: the right-most hop
        // was added by the nearest proxy. Walk left while the hops are trusted proxies; a hop that is not
        // an address stops the walk at the last trusted one.
        let hops: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let mut address = peer;
        for hop in hops.iter().rev() {
            let Some(hop) = hop_address(hop) else { break };
            address = hop;
            if !self.contains(hop) {
                break;
            }
        }
        // The scheme the nearest proxy saw (the last value given).
        let forwarded_https = headers
            .get_all(&X_FORWARDED_PROTO)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .next_back()
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        Client {
            address,
            https: tls || forwarded_https,
        }
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, network) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{network}")?;
        }
        Ok(())
    }
}

/// A hop of `X-Forwarded-For`: an address, or an address with a port (`192.0.2.7:4711`, `[2001:db8::7]:80`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Decides every request's [`Client`] (see the module's documentation).
#[derive(Debug, Clone)]
pub struct ClientLayer {
    pub trusted: Arc<TrustedProxies>,
    /// Whether the listener serves TLS.
    pub tls: bool,
}

impl<S> Layer<S> for ClientLayer {
    type Service = WithClient<S>;

    fn layer(&self, inner: S) -> WithClient<S> {
        WithClient {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service a [`ClientLayer`] makes.
#[derive(Debug, Clone)]
pub struct WithClient<S> {
    inner: S,
    layer: ClientLayer,
}

impl<S, B> Service<Request<B>> for WithClient<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        // The connection's peer (put there by the server); a request from outside the server has none.
        if let Some(&ClientAddress(peer)) = request.extensions().get::<ClientAddress>() {
            let client = self
                .layer
                .trusted
                .client(peer, request.headers(), self.layer.tls);
            request.extensions_mut().insert(client);
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_are_parsed_exactly_and_a_written_host_bit_is_refused_with_the_fix() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "192.0.2.7".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!("fd00::/8".parse::<Cidr>().unwrap().to_string(), "fd00::/8");
        assert_eq!(
            "0.0.0.0/0".parse::<Cidr>().unwrap().to_string(),
            "0.0.0.0/0"
        );
        let error = "10.1.2.3/8".parse::<Cidr>().unwrap_err();
        assert!(error.contains("write \"10.0.0.0/8\""), "{error}");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("ten/8".parse::<Cidr>().is_err());
        assert!("".parse::<Cidr>().is_err());
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_peer_and_the_walk_stops_at_the_first_untrusted_hop()
     {
        let proxies = trusted(&["10.0.0.0/8", "::1"]);
        let forwarded = headers(&[
            ("x-forwarded-for", "203.0.113.9, 198.51.100.4"),
            ("x-forwarded-for", "10.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        // From a trusted proxy: the right-most hop that is not a proxy; the client's own claim (203.0.113.9)
        // is not believed.
        assert_eq!(
            proxies.client(ip("10.9.9.9"), &forwarded, false),
            Client {
                address: ip("198.51.100.4"),
                https: true
            }
        );
        assert_eq!(
            proxies
                .client(ip("::ffff:10.9.9.9"), &forwarded, false)
                .address,
            ip("198.51.100.4")
        );
        // From anyone else: the peer, and the scheme of the connection.
        assert_eq!(
            proxies.client(ip("192.0.2.1"), &forwarded, false),
            Client {
                address: ip("192.0.2.1"),
                https: false
            }
        );
        // No header: the proxy itself; a hop that is no address stops the walk; a hop with a port.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &HeaderMap::new(), true),
            Client {
                address: ip("10.0.0.1"),
                https: true
            }
        );
        let garbled = headers(&[("x-forwarded-for", "198.51.100.4, garbage, 10.2.2.2")]);
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &garbled, false).address,
            ip("10.2.2.2")
        );
        let ported = headers(&[("x-forwarded-for", "[2001:db8::7]:443")]);
        assert_eq!(
            proxies.client(ip("::1"), &ported, false).address,
            ip("2001:db8::7")
        );
        // Nothing trusted: the headers never count.
        assert_eq!(
            TrustedProxies::default()
                .client(ip("10.0.0.1"), &forwarded, false)
                .address,
            ip("10.0.0.1")
        );
    }
}
