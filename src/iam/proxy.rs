//! Which proxy, if any, an IAM request goes through: the variables curl reads, by curl's rules.
//!
//! For an `https://` URL the proxy is `https_proxy` or `HTTPS_PROXY`, else `all_proxy` or
//! `ALL_PROXY`; for `http://`, `http_proxy` (or `HTTP_PROXY`), else the same `all_proxy`. A
//! proxy without a scheme is an HTTP proxy; one with `https://` is reached over TLS; a SOCKS
//! proxy (`socks4://`, `socks5://`, `socks5h://`, …) is refused with a line that says so, never
//! bypassed. Credentials in the proxy URL (`http://user:pass@proxy:3128`) go as
//! `Proxy-Authorization`, and the password never appears in a message.
//!
//! `no_proxy` (or `NO_PROXY`) lists hosts reached directly, comma-separated: `*` (everything), a
//! name that matches itself and every host under it (`example.com`, `.example.com` and
//! `*.example.com` alike), a `host:port` that matches on that port only, an IP address, or a CIDR
//! range (`10.0.0.0/8`, `fd00::/8`). A loopback endpoint (`127.0.0.0/8`, `::1`, `localhost`) and
//! a link-local one (the VPC metadata service's `169.254.169.254`) are never proxied, whatever the
//! environment says: a proxy elsewhere cannot reach them, and a key must not travel to it in
//! clear text.
//!
//! Only the choice is here; the protocol (CONNECT, the header) is ureq's, in `http.rs`.

use std::net::IpAddr;

use crate::env::Env;
use crate::error::{Error, Result};

/// The proxy variables, read once.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    https: Option<(&'static str, String)>,
    http: Option<(&'static str, String)>,
    all: Option<(&'static str, String)>,
    no_proxy: Vec<String>,
}

/// The proxy a request goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The URL as ureq takes it, credentials included.
    pub url: String,
    /// The URL without its password, for messages.
    pub shown: String,
    /// The variable that named it.
    pub from: &'static str,
}

impl Proxies {
    pub fn from_env(env: &Env) -> Result<Proxies> {
        let first = |names: [&'static str; 2]| -> Result<Option<(&'static str, String)>> {
            for name in names {
                // An empty value is no value, as for curl: `HTTPS_PROXY=` does not name a proxy.
                match env.get(name)?.map(str::trim) {
                    Some(value) if !value.is_empty() => return Ok(Some((name, value.to_owned()))),
                    _ => {}
                }
            }
            Ok(None)
        };
        let no_proxy = first(["no_proxy", "NO_PROXY"])?.map(|(_, v)| v).unwrap_or_default();
        Ok(Proxies {
            https: first(["https_proxy", "HTTPS_PROXY"])?,
            http: first(["http_proxy", "HTTP_PROXY"])?,
            all: first(["all_proxy", "ALL_PROXY"])?,
            no_proxy: no_proxy.split(',').map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).collect(),
        })
    }

    /// The proxy for `url`, or `None` to connect directly.
    pub fn for_url(&self, url: &url::Url) -> Result<Option<Proxy>> {
        let Some(host) = url.host() else { return Ok(None) };
        let port = url.port_or_known_default().unwrap_or(0);
        if is_local(&host) || self.no_proxy.iter().any(|entry| matches(entry, &host, port)) {
            return Ok(None);
        }
        let chosen = match url.scheme() {
            "https" => self.https.as_ref().or(self.all.as_ref()),
            _ => self.http.as_ref().or(self.all.as_ref()),
        };
        let Some((from, value)) = chosen else { return Ok(None) };
        parse(from, value).map(Some)
    }
}

/// Loopback and link-local addresses, and `localhost`: never proxied.
fn is_local(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback() || ip.is_link_local(),
        url::Host::Ipv6(ip) => ip.is_loopback() || (ip.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Whether a `no_proxy` entry (lower case, trimmed) covers this host and port.
fn matches(entry: &str, host: &url::Host<&str>, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    // `host:port` (and `[v6]:port`) matches on that port only.
    let (name, wanted_port) = split_port(entry);
    if wanted_port.is_some_and(|p| p != port) {
        return false;
    }
    let name = name.trim_start_matches('*').trim_start_matches('.');
    match host {
        url::Host::Domain(domain) => {
            let domain = domain.to_ascii_lowercase();
            let domain = domain.trim_end_matches('.');
            !name.is_empty() && (domain == name || domain.ends_with(&format!(".{name}")))
        }
        url::Host::Ipv4(ip) => ip_matches(name, IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => ip_matches(name, IpAddr::V6(*ip)),
    }
}

fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((addr, tail)) = rest.split_once(']') {
            return (addr, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        // One colon: a port. More (an IPv6 address without brackets): no port.
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

/// An address, or a CIDR range, that covers `ip`.
fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => match bits.parse::<u8>() {
            Ok(bits) => (addr, Some(bits)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let Ok(network) = addr.parse::<IpAddr>() else { return false };
    match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => prefix_matches(&n.octets(), &i.octets(), bits.unwrap_or(32)),
        (IpAddr::V6(n), IpAddr::V6(i)) => prefix_matches(&n.octets(), &i.octets(), bits.unwrap_or(128)),
        _ => false,
    }
}

fn prefix_matches(network: &[u8], ip: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    if bits > network.len() * 8 {
        return false;
    }
    let (whole, rest) = (bits / 8, bits % 8);
    network[..whole] == ip[..whole] && (rest == 0 || (network[whole] ^ ip[whole]) >> (8 - rest) == 0)
}

/// A proxy variable's value as a proxy, or why it cannot be used. The value is shown only
/// without its password.
fn parse(from: &'static str, value: &str) -> Result<Proxy> {
    let with_scheme = if value.contains("://") { value.to_owned() } else { format!("http://{value}") };
    let invalid = || Error::failed(format!("{from} is not a proxy URL (such as http://proxy.example.com:3128)"));
    let url = url::Url::parse(&with_scheme).map_err(|_| invalid())?;
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let shown = shown.as_str().trim_end_matches('/').to_owned();
    match url.scheme() {
        "http" | "https" => {}
        scheme if scheme.starts_with("socks") => {
            return Err(Error::failed(format!(
                "{from} names a SOCKS proxy ({shown}), which docker-credential-icr does not support: set https_proxy to an HTTP proxy, or list the IAM host in no_proxy to reach it directly"
            )))
        }
        _ => return Err(invalid()),
    }
    if url.host().is_none() {
        return Err(invalid());
    }
    Ok(Proxy { url: url.as_str().trim_end_matches('/').to_owned(), shown, from })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        Proxies::from_env(&Env::from_vars(vars.iter().copied())).unwrap()
    }

    fn chosen(vars: &[(&str, &str)], url: &str) -> Option<String> {
        proxies(vars).for_url(&url::Url::parse(url).unwrap()).unwrap().map(|p| p.shown)
    }

    #[test]
    fn https_proxy_wins_over_all_proxy_and_lower_case_over_upper() {
        let iam = "https://iam.cloud.ibm.com";
        assert_eq!(chosen(&[("HTTPS_PROXY", "proxy:3128")], iam), Some("http://proxy:3128".into()));
        assert_eq!(
            chosen(&[("https_proxy", "http://a:1"), ("HTTPS_PROXY", "http://b:2")], iam),
            Some("http://a:1".into())
        );
        assert_eq!(
            chosen(&[("ALL_PROXY", "socks5://s:1"), ("HTTPS_PROXY", "http://h:2")], iam),
            Some("http://h:2".into())
        );
        assert_eq!(chosen(&[("all_proxy", "http://all:3")], iam), Some("http://all:3".into()));
        assert_eq!(chosen(&[("HTTP_PROXY", "http://plain:4")], iam), None, "an http proxy is for http URLs");
        assert_eq!(chosen(&[], iam), None);
        // An empty variable names nothing: the next one counts.
        assert_eq!(chosen(&[("https_proxy", " "), ("HTTPS_PROXY", "http://b:2")], iam), Some("http://b:2".into()));
        assert_eq!(chosen(&[("HTTPS_PROXY", "")], iam), None);
    }

    #[test]
    fn loopback_and_link_local_are_never_proxied() {
        let all = [("HTTPS_PROXY", "http://p:1"), ("HTTP_PROXY", "http://p:1"), ("ALL_PROXY", "http://p:1")];
        for url in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:1",
            "http://localhost:2",
            "https://LOCALHOST",
            "http://169.254.169.254",
            "http://[fe80::1]",
        ] {
            assert_eq!(chosen(&all, url), None, "{url}");
        }
    }

    #[test]
    fn no_proxy_follows_curls_conventions() {
        let cases = [
            ("*", "https://iam.cloud.ibm.com", true),
            ("cloud.ibm.com", "https://iam.cloud.ibm.com", true),
            ("cloud.ibm.com", "https://cloud.ibm.com", true),
            (".cloud.ibm.com", "https://iam.cloud.ibm.com", true),
            ("*.cloud.ibm.com", "https://iam.cloud.ibm.com", true),
            ("ibm.com", "https://notibm.com", false),
            ("ibm.com", "https://ibm.com.evil.example", false),
            ("IAM.Cloud.IBM.com", "https://iam.cloud.ibm.com", true),
            ("iam.cloud.ibm.com:443", "https://iam.cloud.ibm.com", true),
            ("iam.cloud.ibm.com:8443", "https://iam.cloud.ibm.com", false),
            ("10.1.2.3", "https://10.1.2.3", true),
            ("10.0.0.0/8", "https://10.1.2.3", true),
            ("10.0.0.0/8", "https://11.1.2.3", false),
            ("192.168.1.0/23", "https://192.168.0.9", true),
            ("192.168.1.0/24", "https://192.168.0.9", false),
            ("fd00::/8", "https://[fd12::1]", true),
            ("[fd12::1]:443", "https://[fd12::1]", true),
            ("fd12::1", "https://[fd12::1]", true),
            ("10.0.0.0/8", "https://iam.cloud.ibm.com", false),
            ("", "https://iam.cloud.ibm.com", false),
        ];
        for (entry, url, direct) in cases {
            let vars = [("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", entry)];
            assert_eq!(chosen(&vars, url).is_none(), direct, "{entry:?} for {url}");
        }
        let list = [("HTTPS_PROXY", "http://p:1"), ("no_proxy", " example.com , .cloud.ibm.com ")];
        assert_eq!(chosen(&list, "https://iam.cloud.ibm.com"), None);
    }

    #[test]
    fn a_socks_proxy_is_refused_never_bypassed_and_no_password_is_shown() {
        for value in ["socks5://s:1080", "socks5h://u:hunter2@s:1080", "socks4://s:1080", "socks://s"] {
            let err = proxies(&[("ALL_PROXY", value)])
                .for_url(&url::Url::parse("https://iam.cloud.ibm.com").unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("ALL_PROXY names a SOCKS proxy"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let p = proxies(&[("HTTPS_PROXY", "http://alice:hunter2@proxy:3128")])
            .for_url(&url::Url::parse("https://iam.cloud.ibm.com").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.url.as_str(), p.shown.as_str(), p.from),
            ("http://alice:hunter2@proxy:3128", "http://alice@proxy:3128", "HTTPS_PROXY")
        );
    }
}
