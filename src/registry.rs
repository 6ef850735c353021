//! Server URL → registry host → ICR region: a pure function over the table of SPEC section 3.
//!
//! Everything that decides whether a server URL is "ours" lives here, so that the one rule that
//! keeps secrets from leaking — match the host exactly, never by substring — is written once.
//! No I/O, no clock, no environment: the dispatcher and the config file call in with strings.

use std::fmt;

/// One ICR region: its id, the names it used to have, and its three kinds of domain.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Region {
    pub id: &'static str,
    pub aliases: &'static [&'static str],
    pub domain: &'static str,
    pub private_domain: &'static str,
    pub legacy_domain: Option<&'static str>,
}

impl Region {
    /// The hosts this region answers for, public first.
    pub fn domains(&self) -> impl Iterator<Item = &'static str> {
        [self.domain, self.private_domain].into_iter().chain(self.legacy_domain)
    }

    /// Whether `name` is this region's id or one of its former names (`eu-central`).
    pub fn is_named(&self, name: &str) -> bool {
        self.id.eq_ignore_ascii_case(name) || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// The regions of IBM Cloud Container Registry (SPEC section 3).
#[rustfmt::skip]
pub const REGIONS: &[Region] = &[
    region("global", &[], "icr.io", "private.icr.io", Some("registry.bluemix.net")),
    region("au-syd", &["ap-south"], "au.icr.io", "private.au.icr.io", Some("registry.au-syd.bluemix.net")),
    region("br-sao", &[], "br.icr.io", "private.br.icr.io", None),
    region("ca-mon", &[], "ca2.icr.io", "private.ca2.icr.io", None),
    region("ca-tor", &[], "ca.icr.io", "private.ca.icr.io", None),
    region("eu-de", &["eu-central"], "de.icr.io", "private.de.icr.io", Some("registry.eu-de.bluemix.net")),
    region("eu-es", &[], "es.icr.io", "private.es.icr.io", None),
    region("eu-fr2", &[], "fr2.icr.io", "private.fr2.icr.io", None),
    region("eu-gb", &["uk-south"], "uk.icr.io", "private.uk.icr.io", Some("registry.eu-gb.bluemix.net")),
    region("in-che", &[], "in.icr.io", "private.in.icr.io", None),
    region("in-mum", &[], "in2.icr.io", "private.in2.icr.io", None),
    region("jp-osa", &[], "jp2.icr.io", "private.jp2.icr.io", None),
    region("jp-tok", &["ap-north"], "jp.icr.io", "private.jp.icr.io", None),
    region("us-south", &[], "us.icr.io", "private.us.icr.io", Some("registry.ng.bluemix.net")),
];

const fn region(
    id: &'static str,
    aliases: &'static [&'static str],
    domain: &'static str,
    private_domain: &'static str,
    legacy_domain: Option<&'static str>,
) -> Region {
    Region { id, aliases, domain, private_domain, legacy_domain }
}

/// The region named `name` (an id such as `eu-de`, or a former name such as `eu-central`).
pub fn region_named(name: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.is_named(name))
}

/// Which of a region's domains a host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainKind {
    Public,
    Private,
    Legacy,
}

impl fmt::Display for DomainKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DomainKind::Public => "public",
            DomainKind::Private => "private",
            DomainKind::Legacy => "legacy",
        })
    }
}

/// A registry host as a client names it: lowercase, no trailing dot, with its port unless the
/// port is the default of the scheme.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Registry {
    host: String,
    port: Option<u16>,
}

impl Registry {
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The ICR region and domain kind of this registry, when it is one of the table's hosts.
    /// A host with a port that is not the HTTPS default is not ICR: ICR serves on 443 only.
    pub fn icr(&self) -> Option<(&'static Region, DomainKind)> {
        if self.port.is_some() {
            return None;
        }
        REGIONS.iter().find_map(|r| {
            if r.domain == self.host {
                Some((r, DomainKind::Public))
            } else if r.private_domain == self.host {
                Some((r, DomainKind::Private))
            } else if r.legacy_domain == Some(self.host.as_str()) {
                Some((r, DomainKind::Legacy))
            } else {
                None
            }
        })
    }

    pub fn is_icr(&self) -> bool {
        self.icr().is_some()
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) if self.host.contains(':') => write!(f, "[{}]:{port}", self.host),
            Some(port) => write!(f, "{}:{port}", self.host),
            None if self.host.contains(':') => write!(f, "[{}]", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Why a server URL names no registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    Invalid,
    UnsupportedScheme,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Empty => "the server URL is empty",
            ParseError::Invalid => "the server URL is not a valid registry address",
            ParseError::UnsupportedScheme => "the server URL's scheme is neither https nor http",
        })
    }
}

/// Parses a server URL in any of the forms clients send — `us.icr.io`, `us.icr.io:443`,
/// `https://us.icr.io/v2/`, `us.icr.io/namespace/image`, any letter case, a trailing dot —
/// into the registry it names. Userinfo is refused outright: `https://us.icr.io@evil.example`
/// names `evil.example`, and no client sends userinfo to a credential helper.
pub fn parse_server_url(input: &str) -> Result<Registry, ParseError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    if input.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return Err(ParseError::Invalid);
    }
    let with_scheme;
    let text = if input.contains("://") {
        input
    } else {
        with_scheme = format!("https://{input}");
        &with_scheme
    };
    // `url` drops an empty userinfo (`https://:@us.icr.io` parses as `https://us.icr.io/`), so the
    // refusal below cannot see it: look for an `@` in the authority of the text itself.
    let authority = text.split_once("://").map_or(text, |(_, rest)| rest);
    if authority.split(['/', '?', '#']).next().is_some_and(|a| a.contains('@')) {
        return Err(ParseError::Invalid);
    }
    let url = url::Url::parse(text).map_err(|_| ParseError::Invalid)?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ParseError::UnsupportedScheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ParseError::Invalid);
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            if d.is_empty() || d.ends_with('.') || d.starts_with('.') {
                return Err(ParseError::Invalid);
            }
            d.to_owned()
        }
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(ParseError::Invalid),
    };
    // `Url::port` is `None` when the port is the scheme's default, so `us.icr.io:443` and
    // `us.icr.io` are one registry. A plain-http URL on an ICR name is never ICR: the
    // registry speaks HTTPS only, so such a request did not come from a well-behaved client.
    let port = url.port();
    let registry = Registry { host, port };
    if url.scheme() == "http" && registry.is_icr() {
        return Err(ParseError::UnsupportedScheme);
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icr_region(url: &str) -> Option<&'static str> {
        parse_server_url(url).ok().and_then(|r| r.icr()).map(|(r, _)| r.id)
    }

    #[test]
    fn every_domain_of_the_table_resolves_to_its_region() {
        for region in REGIONS {
            for host in region.domains() {
                assert_eq!(icr_region(host), Some(region.id), "{host}");
            }
        }
    }

    #[test]
    fn domain_kinds_are_told_apart() {
        let kind = |u| parse_server_url(u).unwrap().icr().unwrap().1;
        assert_eq!(kind("de.icr.io"), DomainKind::Public);
        assert_eq!(kind("private.de.icr.io"), DomainKind::Private);
        assert_eq!(kind("registry.eu-de.bluemix.net"), DomainKind::Legacy);
    }

    #[test]
    fn every_url_form_a_client_sends_resolves() {
        let forms = [
            ("us.icr.io", "us-south"),
            ("us.icr.io:443", "us-south"),
            ("https://us.icr.io", "us-south"),
            ("https://us.icr.io/", "us-south"),
            ("https://us.icr.io/v2/", "us-south"),
            ("https://us.icr.io/v1/", "us-south"),
            ("us.icr.io/namespace/image", "us-south"),
            ("us.icr.io/namespace/image:tag", "us-south"),
            ("us.icr.io/ns/img@sha256:0123", "us-south"),
            ("https://us.icr.io:443/v2/", "us-south"),
            ("US.ICR.IO", "us-south"),
            ("HTTPS://Us.Icr.Io/V2/", "us-south"),
            ("us.icr.io.", "us-south"),
            ("https://us.icr.io.:443/", "us-south"),
            ("  de.icr.io\n", "eu-de"),
            ("icr.io", "global"),
            ("private.icr.io", "global"),
            ("registry.bluemix.net", "global"),
            ("registry.ng.bluemix.net", "us-south"),
            ("private.jp.icr.io", "jp-tok"),
            ("ca2.icr.io", "ca-mon"),
            ("registry.au-syd.bluemix.net", "au-syd"),
        ];
        for (url, region) in forms {
            assert_eq!(icr_region(url), Some(region), "{url:?}");
        }
    }

    #[test]
    fn hostile_and_foreign_hosts_are_not_icr() {
        let hostile = [
            "us.icr.io.evil.example",
            "evil-icr.io",
            "evilicr.io",
            "icr.io.evil.example",
            "xus.icr.io",
            "us-icr.io",
            "us.icr.ioo",
            "us.icr.io-evil.example",
            "https://us.icr.io@evil.example",
            "https://iamapikey:x@us.icr.io",
            "https://user@us.icr.io/",
            "https://:@us.icr.io",
            "https://@us.icr.io",
            "us.icr.io@evil.example",
            "https://evil.example/us.icr.io",
            "https://evil.example?host=us.icr.io",
            "https://evil.example#us.icr.io",
            "evil.example/us.icr.io/v2/",
            "us.icr.io:5000",
            "us.icr.io:444",
            "https://us.icr.io:8443/v2/",
            "http://us.icr.io",
            "http://us.icr.io:443",
            "ftp://us.icr.io",
            "file:///us.icr.io",
            "unix:///var/run/us.icr.io",
            "us.icr.io..",
            ".us.icr.io",
            "us..icr.io",
            "us.icr.io\u{0}",
            "us.icr.io\u{0}.evil.example",
            "us.icr.io evil.example",
            "us.icr.io\\@evil.example",
            "us.іcr.io",               // Cyrillic і
            "us.icr.ıo",               // dotless ı
            "ｕｓ.icr.io",             // fullwidth letters normalise to us.icr.io? must still be exact
            "us。icr.io.evil.example", // ideographic full stop
            "xn--us-icr-io.example",
            "cp.icr.io",
            "foo.cp.icr.io",
            "dd0.us.icr.io",
            "dd2.icr.io",
            "dd6.de.icr.io",
            "stg.icr.io",
            "registry.stage1.ng.bluemix.net",
            "registry.bluemix.net.evil.example",
            "bluemix.net",
            "io",
            "icr",
            "127.0.0.1",
            "[::1]",
            "localhost",
            "docker.io",
            "https://index.docker.io/v1/",
            "",
            "   ",
            "https://",
            "https:///v2/",
            "://us.icr.io",
            "https://[us.icr.io]",
        ];
        for url in hostile {
            let parsed = parse_server_url(url);
            // IDNA maps fullwidth letters to ASCII; that host *is* us.icr.io once normalised, the
            // same name the client resolves, so it is allowed to match — everything else not.
            if url == "ｕｓ.icr.io" {
                continue;
            }
            assert_eq!(parsed.as_ref().ok().and_then(|r| r.icr()), None, "{url:?} parsed as {parsed:?}");
        }
        assert!(hostile.len() >= 30);
    }

    #[test]
    fn fullwidth_letters_normalise_to_the_ascii_host_the_client_would_resolve() {
        // The client resolves the IDNA-normalised name, so the helper must judge the same name.
        assert_eq!(parse_server_url("ｕｓ.icr.io").unwrap().host(), "us.icr.io");
    }

    #[test]
    fn ports_other_than_the_default_are_kept() {
        let r = parse_server_url("Mirror.Example.com:5000/ns/img").unwrap();
        assert_eq!(r.to_string(), "mirror.example.com:5000");
        assert_eq!(parse_server_url("https://mirror.example.com:443").unwrap().to_string(), "mirror.example.com");
        assert_eq!(parse_server_url("127.0.0.1:5000").unwrap().to_string(), "127.0.0.1:5000");
        assert_eq!(parse_server_url("[::1]:5000").unwrap().to_string(), "[::1]:5000");
    }

    #[test]
    fn regions_are_found_by_id_and_former_name() {
        assert_eq!(region_named("eu-de").unwrap().domain, "de.icr.io");
        assert_eq!(region_named("EU-CENTRAL").unwrap().domain, "de.icr.io");
        assert_eq!(region_named("ap-north").unwrap().domain, "jp.icr.io");
        assert_eq!(region_named("uk-south").unwrap().domain, "uk.icr.io");
        assert_eq!(region_named("ap-south").unwrap().domain, "au.icr.io");
        assert!(region_named("mars-1").is_none());
    }

    #[test]
    fn the_table_names_each_host_once() {
        let mut all: Vec<&str> = REGIONS.iter().flat_map(|r| r.domains()).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        assert_eq!(REGIONS.len(), 14);
    }
}
