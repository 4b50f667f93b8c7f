//! Who the client is: the socket peer, or, when that peer is a trusted proxy, the address the
//! proxy's header names. A header from anyone else is ignored, since any client can send one.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::config::ClientIpSource;
use crate::state::AppState;

/// The client's address: the socket's, or the configured proxy header's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

impl ClientAddr {
    /// The key rate limiters count this client under (see [`crate::limits::address_key`]).
    pub fn limit_key(&self) -> String {
        crate::limits::address_key(self.0)
    }

    /// Decides the address from the socket peer and the headers.
    pub fn resolve(
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        source: ClientIpSource,
        trusted: &[IpNet],
    ) -> Self {
        let peer = peer.map(|ip| ip.to_canonical());
        let name = match source {
            ClientIpSource::Socket => return Self(peer),
            ClientIpSource::CfConnectingIp => "cf-connecting-ip",
            ClientIpSource::XForwardedFor => "x-forwarded-for",
            ClientIpSource::XRealIp => "x-real-ip",
        };
        let Some(proxy) = peer.filter(|p| is_trusted(*p, trusted)) else {
            return Self(peer);
        };
        let found = if source == ClientIpSource::XForwardedFor {
            match forwarded_for(headers, trusted) {
                Ok(found) => found,
                Err(()) => return Self(None),
            }
        } else {
            single(headers, name)
        };
        Self(Some(found.unwrap_or(proxy)))
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// A header a proxy sets to one address (cf-connecting-ip, x-real-ip). Several lines, or a
/// value that is not one address, mean something else wrote it too: believe none of it.
fn single(headers: &HeaderMap, name: &str) -> Option<IpAddr> {
    let mut lines = headers.get_all(name).iter();
    let v = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    parse_ip(v.to_str().ok()?)
}

/// X-Forwarded-For over all its lines, read from the right: each trusted proxy appends the
/// address it saw, so the right-most entry that is not a trusted proxy is the client. Entries
/// further left were written by the client and prove nothing, so they are never read: the
/// header is split on the raw bytes, and a non-ASCII byte a client put in its own part
/// cannot spoil the proxies' entries (a header that had to be text as a whole made the
/// client count as the proxy). If the first untrusted entry is not an address, no client
/// address can be known: `Err(())`, and the client counts as unknown, not as the proxy (whose
/// budget everyone else behind it shares). `Ok(None)`: no header.
fn forwarded_for(headers: &HeaderMap, trusted: &[IpNet]) -> Result<Option<IpAddr>, ()> {
    let lines: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|l| l.as_bytes())
        .collect();
    let mut leftmost = None;
    for line in lines.iter().rev() {
        for entry in line.rsplit(|b| *b == b',') {
            let ip = std::str::from_utf8(entry)
                .ok()
                .and_then(parse_ip)
                .ok_or(())?;
            if !is_trusted(ip, trusted) {
                return Ok(Some(ip));
            }
            leftmost = Some(ip);
        }
    }
    // Every hop is a trusted proxy: the first of them is the client (as nginx's
    // real_ip_recursive decides).
    Ok(leftmost)
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self::resolve(
            peer,
            &parts.headers,
            state.settings.client_ip,
            &state.settings.trusted_proxies,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CLOUDFLARE_RANGES, parse_trusted_proxies};
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &'static str, lines: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(name, HeaderValue::from_static(l));
        }
        h
    }

    fn loopback() -> Vec<IpNet> {
        parse_trusted_proxies("loopback").unwrap()
    }

    #[test]
    fn limit_keys_are_the_ipv4_address_or_the_ipv6_slash_64() {
        assert_eq!(
            ClientAddr(Some(ip("203.0.113.9"))).limit_key(),
            "203.0.113.9"
        );
        assert_eq!(
            ClientAddr(Some(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"))).limit_key(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            ClientAddr(Some(ip("2001:db8:1:2::1"))).limit_key(),
            ClientAddr(Some(ip("2001:db8:1:2:ffff::9"))).limit_key()
        );
        assert_ne!(
            ClientAddr(Some(ip("2001:db8:1:2::1"))).limit_key(),
            ClientAddr(Some(ip("2001:db8:1:3::1"))).limit_key()
        );
        assert_eq!(
            ClientAddr(Some(ip("::ffff:198.51.100.7"))).limit_key(),
            "198.51.100.7"
        );
        assert_eq!(ClientAddr(None).limit_key(), "unknown");
    }

    #[test]
    fn trusted_proxies_parse_cidrs_addresses_and_keywords() {
        let nets = parse_trusted_proxies(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(is_trusted(ip("10.200.3.4"), &nets));
        assert!(is_trusted(ip("192.0.2.7"), &nets));
        assert!(!is_trusted(ip("192.0.2.8"), &nets));
        assert!(is_trusted(ip("fd12::1"), &nets));
        let cf = parse_trusted_proxies("cloudflare").unwrap();
        assert_eq!(cf.len(), CLOUDFLARE_RANGES.len());
        assert!(is_trusted(ip("104.16.1.1"), &cf));
        assert!(is_trusted(ip("2606:4700::1"), &cf));
        assert!(!is_trusted(ip("127.0.0.1"), &cf));
        // Host bits are dropped, not refused: 10.1.2.3/8 is 10.0.0.0/8.
        assert!(is_trusted(
            ip("10.9.9.9"),
            &parse_trusted_proxies("10.1.2.3/8").unwrap()
        ));
        for bad in ["10.0.0.0/33", "nginx", "10.0.0", "", " , "] {
            assert!(parse_trusted_proxies(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_header_counts_only_from_a_trusted_peer() {
        let h = headers("cf-connecting-ip", &["198.51.100.7"]);
        let src = ClientIpSource::CfConnectingIp;
        assert_eq!(
            ClientAddr::resolve(Some(ip("127.0.0.1")), &h, src, &loopback()).0,
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            ClientAddr::resolve(Some(ip("192.0.2.1")), &h, src, &loopback()).0,
            Some(ip("192.0.2.1"))
        );
        // Without a header setting, nothing is read even from a trusted peer.
        assert_eq!(
            ClientAddr::resolve(
                Some(ip("127.0.0.1")),
                &h,
                ClientIpSource::Socket,
                &loopback()
            )
            .0,
            Some(ip("127.0.0.1"))
        );
        // An IPv4-mapped peer (a dual-stack listener) is the IPv4 proxy.
        assert_eq!(
            ClientAddr::resolve(Some(ip("::ffff:127.0.0.1")), &h, src, &loopback()).0,
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn single_address_headers_refuse_garbage_and_repeats() {
        let src = ClientIpSource::XRealIp;
        let peer = Some(ip("127.0.0.1"));
        for lines in [
            &["not-an-ip"][..],
            &["198.51.100.7, 10.0.0.1"],
            &["1.2.3.4", "5.6.7.8"],
            &[],
        ] {
            let h = headers("x-real-ip", lines);
            assert_eq!(
                ClientAddr::resolve(peer, &h, src, &loopback()).0,
                peer,
                "{lines:?}"
            );
        }
    }

    #[test]
    fn forwarded_for_takes_the_right_most_untrusted_entry_across_lines() {
        let trusted = parse_trusted_proxies("127.0.0.0/8, 10.0.0.0/8").unwrap();
        let src = ClientIpSource::XForwardedFor;
        let peer = Some(ip("127.0.0.1"));
        let resolve = |lines: &[&'static str]| {
            ClientAddr::resolve(peer, &headers("x-forwarded-for", lines), src, &trusted).0
        };
        // The client forged the two left entries; 10.0.0.5 is an inner proxy.
        assert_eq!(
            resolve(&["6.6.6.6, 7.7.7.7", "198.51.100.7, 10.0.0.5"]),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            resolve(&["6.6.6.6", "198.51.100.7", "10.0.0.5"]),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(resolve(&["2001:db8::7"]), Some(ip("2001:db8::7")));
        // Every hop trusted: the left-most is the client.
        assert_eq!(resolve(&["10.0.0.9, 10.0.0.5"]), Some(ip("10.0.0.9")));
        // Garbage where the client should be: unknown (not the proxy, not the forged
        // address). No header: the socket peer.
        assert_eq!(resolve(&["198.51.100.7, bogus"]), None);
        assert_eq!(resolve(&["198.51.100.7,"]), None);
        assert_eq!(resolve(&["10.0.0.9, bogus, 10.0.0.5"]), None);
        assert_eq!(resolve(&[]), peer);
        // Garbage left of the client is never read.
        assert_eq!(resolve(&["bogus, 198.51.100.7"]), Some(ip("198.51.100.7")));
    }

    #[test]
    fn a_non_ascii_byte_left_of_the_client_does_not_make_the_client_the_proxy() {
        let trusted = parse_trusted_proxies("127.0.0.0/8, 10.0.0.0/8").unwrap();
        let peer = Some(ip("127.0.0.1"));
        let resolve = |lines: &[&[u8]]| {
            let mut h = HeaderMap::new();
            for l in lines {
                h.append("x-forwarded-for", HeaderValue::from_bytes(l).unwrap());
            }
            ClientAddr::resolve(peer, &h, ClientIpSource::XForwardedFor, &trusted).0
        };
        // The client sent "\xff\xfe" (or Latin-1 text); the proxy appended what it saw,
        // on the same line or on a line of its own.
        let cases: [&[&[u8]]; 3] = [
            &[b"\xff\xfe, 198.51.100.7"],
            &[b"caf\xe9, 6.6.6.6, 198.51.100.7, 10.0.0.5"],
            &[b"\xff", b"198.51.100.7"],
        ];
        for lines in cases {
            assert_eq!(resolve(lines), Some(ip("198.51.100.7")), "{lines:?}");
        }
        // The bad byte where the client's own address should be: unknown, not the proxy.
        assert_eq!(resolve(&[b"198.51.100.7, 10.0.0.\xff"]), None);
    }
}
