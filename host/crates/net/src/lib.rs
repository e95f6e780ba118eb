//! Which network addresses the host's outbound clients (plugins'
//! `invoke-url`, token and metadata endpoints) may connect to. Link-local and
//! cloud metadata addresses are never allowed; loopback, private and shared
//! ranges only when the operator allows them (tests and local mocks do).
//! Checked after DNS resolution, by the clients' resolver, so a name that
//! resolves to an internal address is refused as well as a literal one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The operator's choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Allow loopback, private (RFC 1918, ULA) and shared (100.64/10) addresses.
    pub allow_private: bool,
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{addr} is {what}; the host does not connect there{hint}")]
pub struct Refused {
    addr: IpAddr,
    what: &'static str,
    hint: &'static str,
}

impl NetworkPolicy {
    /// Whether the host may connect to `addr`.
    pub fn check(&self, addr: IpAddr) -> Result<(), Refused> {
        // An IPv6 address that carries an IPv4 one (mapped, compatible,
        // NAT64, 6to4) reaches that IPv4 address: judge it as such.
        let addr = match addr {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        let refuse = |what, private: bool| Refused {
            addr,
            what,
            hint: if private {
                " (the operator can allow private networks)"
            } else {
                ""
            },
        };
        if is_metadata(addr) {
            return Err(refuse("a cloud metadata address", false));
        }
        if is_link_local(addr) {
            return Err(refuse("link-local", false));
        }
        if addr.is_unspecified() || addr.is_multicast() || is_broadcast(addr) || is_reserved(addr) {
            return Err(refuse("not a unicast address", false));
        }
        if is_teredo(addr) {
            return Err(refuse("a Teredo tunnel address", false));
        }
        if !self.allow_private {
            if addr.is_loopback() {
                return Err(refuse("loopback", true));
            }
            if is_private(addr) {
                return Err(refuse("in a private range", true));
            }
        }
        Ok(())
    }

    /// A DNS resolver for reqwest that drops the addresses this policy refuses.
    pub fn resolver(self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { policy: self })
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`)
/// or 6to4 (`2002::/16`) address.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // `::` and `::1` are the unspecified and loopback addresses, not IPv4.
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

fn is_teredo(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V6(v6) if v6.segments()[0] == 0x2001 && v6.segments()[1] == 0)
}

/// 240.0.0.0/4, reserved for future use: nothing legitimate answers there.
fn is_reserved(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V4(v4) if v4.octets()[0] >= 240)
}

fn is_metadata(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            v4 == Ipv4Addr::new(169, 254, 169, 254)
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
                // Azure's wire server (DHCP, health, extension metadata).
                || v4 == Ipv4Addr::new(168, 63, 129, 16)
        }
        IpAddr::V6(v6) => v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    }
}

fn is_link_local(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn is_broadcast(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V4(v4) if v4.is_broadcast())
}

fn is_private(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                // 198.18.0.0/15, for benchmarking networks: internal by intent.
                || (a == 198 && (b == 18 || b == 19))
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// A resolver that refuses names whose every address the policy refuses.
pub struct GuardedResolver {
    policy: NetworkPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refused = Some(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let message = match refused {
                    Some(why) => format!("`{host}` resolves to {why}"),
                    None => format!("`{host}` has no address"),
                };
                return Err(message.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Checks a URL whose host is an IP literal (the resolver never sees those).
pub fn check_url(policy: NetworkPolicy, url: &url::Url) -> Result<(), Refused> {
    match url.host() {
        Some(url::Host::Ipv4(v4)) => policy.check(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => policy.check(IpAddr::V6(v6)),
        _ => Ok(()),
    }
}

/// The innermost cause of `err`, which says what actually failed (connection
/// refused, timed out, ...) where the outer layers only say "request failed".
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_are_always_refused() {
        let open = NetworkPolicy {
            allow_private: true,
        };
        let strict = NetworkPolicy::default();
        for addr in [
            "169.254.169.254",
            "169.254.1.1",
            "fd00:ec2::254",
            "fe80::1",
            "0.0.0.0",
            "224.0.0.1",
            "::ffff:169.254.169.254",
            "168.63.129.16",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::169.254.169.254",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "240.0.0.1",
        ] {
            let ip: IpAddr = addr.parse().unwrap();
            assert!(open.check(ip).is_err(), "{addr}");
            assert!(strict.check(ip).is_err(), "{addr}");
        }
        for addr in [
            "127.0.0.1",
            "10.0.0.8",
            "172.16.3.4",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "198.18.0.1",
            "198.19.255.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "::10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = addr.parse().unwrap();
            assert!(open.check(ip).is_ok(), "{addr}");
            let err = strict.check(ip).unwrap_err().to_string();
            assert!(err.contains("operator can allow"), "{addr}: {err}");
        }
        for addr in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "64:ff9b::5db8:d822",
            "198.20.0.1",
        ] {
            assert!(strict.check(addr.parse().unwrap()).is_ok(), "{addr}");
        }
        let url = url::Url::parse("http://169.254.169.254/latest/meta-data").unwrap();
        assert!(check_url(open, &url).is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        let strict = NetworkPolicy::default().resolver();
        let err = strict
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("loopback refused");
        assert!(err.to_string().contains("loopback"), "{err}");
        let open = NetworkPolicy {
            allow_private: true,
        }
        .resolver();
        let addrs: Vec<SocketAddr> = open
            .resolve("localhost".parse().unwrap())
            .await
            .map_err(|e| e.to_string())
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
