//! Origins a plugin or a service may reach without or with credentials:
//! `https://api.example.com`, `https://*.example.com`, `*://example.com`.

use std::fmt;

use url::Url;

/// An origin pattern: `https://api.example.com`, `https://*.example.com`,
/// `http://127.0.0.1:8080`, `*://example.com`. Without a port, the scheme's
/// default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `scheme://host[:port]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("`{text}` is not an origin like https://api.example.com: {why}");
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_owned()),
            _ => return Err(bad("the scheme must be http, https or *")),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(bad("give only the origin, without path, query or user"));
        }
        let (host, port) = split_host_port(rest).map_err(|why| bad(&why))?;
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let wildcard_body = host.strip_prefix("*.").unwrap_or(host);
        if wildcard_body.contains('*') {
            return Err(bad("`*` may only stand first, as `*.example.com`"));
        }
        Ok(HostPattern {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The exact origin of a URL.
    pub fn from_url(url: &Url) -> Option<Self> {
        Some(HostPattern {
            scheme: Some(url.scheme().to_owned()),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }

    /// Whether `url` is on this origin.
    pub fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        if let Some(scheme) = &self.scheme
            && scheme != url.scheme()
        {
            return false;
        }
        let host_ok = match self.host.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
            None => self.host == host,
        };
        let port_ok = match self.port {
            Some(port) => url.port_or_known_default() == Some(port),
            None => url.port().is_none(),
        };
        host_ok && port_ok
    }
}

/// `host[:port]` or `[v6]:port` into its host (brackets kept, as
/// `Url::host_str` gives it) and port.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if text.starts_with('[') {
        let close = text
            .find(']')
            .ok_or_else(|| "an IPv6 address must be closed with `]`".to_owned())?;
        let literal = &text[1..close];
        literal
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{literal}` is not an IPv6 address"))?;
        let after = &text[close + 1..];
        match after.strip_prefix(':') {
            Some(port) => (&text[..=close], Some(port)),
            None if after.is_empty() => (&text[..=close], None),
            None => return Err("only a port may follow an IPv6 address".into()),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| "the port is not a number".to_owned())
        })
        .transpose()?;
    Ok((host, port))
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            self.scheme.as_deref().unwrap_or("*"),
            self.host
        )?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_origins() {
        let exact = HostPattern::parse("https://api.example.com").unwrap();
        assert!(exact.matches(&Url::parse("https://api.example.com/x").unwrap()));
        assert!(!exact.matches(&Url::parse("http://api.example.com/x").unwrap()));
        assert!(!exact.matches(&Url::parse("https://api.example.com:8443/x").unwrap()));
        assert!(!exact.matches(&Url::parse("https://api.example.com.evil.io/").unwrap()));
        let wild = HostPattern::parse("https://*.example.com").unwrap();
        assert!(wild.matches(&Url::parse("https://us1.example.com/").unwrap()));
        assert!(!wild.matches(&Url::parse("https://example.com/").unwrap()));
        assert!(!wild.matches(&Url::parse("https://evilexample.com/").unwrap()));
        let port = HostPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(port.matches(&Url::parse("http://127.0.0.1:8080/a").unwrap()));
        assert!(!port.matches(&Url::parse("http://127.0.0.1:8081/a").unwrap()));
        let from =
            HostPattern::from_url(&Url::parse("http://127.0.0.1:9000/3.0").unwrap()).unwrap();
        assert!(from.matches(&Url::parse("http://127.0.0.1:9000/other").unwrap()));
        assert!(HostPattern::parse("ftp://x").is_err());
        assert!(HostPattern::parse("https://a.*.com").is_err());
        assert!(HostPattern::parse("https://a.com/path").is_err());
        let v6 = HostPattern::parse("http://[::1]:8080").unwrap();
        assert!(v6.matches(&Url::parse("http://[::1]:8080/x").unwrap()));
        assert!(!v6.matches(&Url::parse("http://[::2]:8080/x").unwrap()));
        let v6_default = HostPattern::parse("https://[2001:db8::1]").unwrap();
        assert!(v6_default.matches(&Url::parse("https://[2001:db8::1]/").unwrap()));
        assert_eq!(v6.to_string(), "http://[::1]:8080");
        assert!(HostPattern::parse("http://[::1").is_err());
        assert!(HostPattern::parse("http://[zz]:80").is_err());
    }

    proptest::proptest! {
        /// An origin pattern matches its own URLs, survives printing, and no
        /// look-alike host.
        #[test]
        fn patterns_match_their_origin_and_no_lookalike(host in "[a-z]{1,8}(\\.[a-z]{1,8}){0,3}", port in 1u16.., path in "[a-z/]{0,10}") {
            let pattern = HostPattern::parse(&format!("https://{host}:{port}")).unwrap();
            let url = Url::parse(&format!("https://{host}:{port}/{path}")).unwrap();
            proptest::prop_assert!(pattern.matches(&url));
            proptest::prop_assert_eq!(HostPattern::parse(&pattern.to_string()).unwrap(), pattern.clone());
            let lookalike = Url::parse(&format!("https://x{host}:{port}/")).unwrap();
            proptest::prop_assert!(!pattern.matches(&lookalike));
            let suffixed = Url::parse(&format!("https://{host}.evil.example:{port}/")).unwrap();
            proptest::prop_assert!(!pattern.matches(&suffixed));
            let wild = HostPattern::parse(&format!("https://*.{host}:{port}")).unwrap();
            let sub = Url::parse(&format!("https://api.{host}:{port}/")).unwrap();
            proptest::prop_assert!(wild.matches(&sub));
            proptest::prop_assert!(!wild.matches(&url), "a wildcard needs a subdomain");
        }
    }
}
