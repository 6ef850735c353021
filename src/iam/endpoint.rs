//! The endpoints credentials travel to, and the rule that keeps them off the wire in clear
//! text: IAM over `https://` always, `http://` only to a loopback address (a local fake IAM in
//! tests); the VPC instance metadata service over `http://` only at its link-local address
//! `169.254.169.254` (where the traffic never leaves the host) or loopback, `https://` otherwise.

use std::fmt;
use std::path::{Path, PathBuf};

/// IBM Cloud's public IAM endpoint.
pub const DEFAULT: &str = "https://iam.cloud.ibm.com";
/// The VPC instance metadata service, as IBM's SDKs default to it.
pub const METADATA_DEFAULT: &str = "http://169.254.169.254";
/// The path of IAM's token operation.
const TOKEN_PATH: &str = "/identity/token";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    /// A CA file to trust for it beside the system's roots (the config file's `iamCaFile`).
    ca_file: Option<PathBuf>,
}

impl Endpoint {
    /// Validates an IAM endpoint URL. The result has no trailing slash and no trailing
    /// `/identity/token` (an endpoint given as the token URL, as IBM's SDKs accept it), so that
    /// `<endpoint>/identity/token` is well-formed.
    ///
    /// An error says what is wrong without repeating the text: an endpoint given with a
    /// password in it (`https://user:key@…`) must not show the key.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let endpoint = Endpoint::checked(text, "the IAM endpoint", |_| false)?;
        let url = endpoint.url.strip_suffix(TOKEN_PATH).unwrap_or(&endpoint.url).trim_end_matches('/').to_owned();
        Ok(Endpoint { url, ..endpoint })
    }

    /// Validates the VPC instance metadata service's base URL: plain `http://` only at
    /// `169.254.169.254` or a loopback address.
    pub fn metadata(text: &str) -> Result<Endpoint, String> {
        let link_local =
            |url: &url::Url| url.host() == Some(url::Host::Ipv4(std::net::Ipv4Addr::new(169, 254, 169, 254)));
        Endpoint::checked(text, "the metadata service URL", link_local)
    }

    /// The metadata service where IBM's SDKs find it.
    pub fn metadata_default() -> Endpoint {
        Endpoint { url: METADATA_DEFAULT.to_owned(), ca_file: None }
    }

    /// A URL credentials may be sent to: `https://`, or `http://` to loopback or where
    /// `plain_ok` allows it; no user, password, query or fragment.
    fn checked(text: &str, what: &str, plain_ok: impl Fn(&url::Url) -> bool) -> Result<Endpoint, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| format!("{what} is not a URL ({e})"))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{what} must not carry a user or password"));
        }
        match url.scheme() {
            "https" => {}
            "http" if loopback || plain_ok(&url) => {}
            "http" => {
                return Err(format!(
                    "{what} (host {}) must use https:// (http:// is allowed for a loopback address only{})",
                    url.host_str().unwrap_or(""),
                    if what.starts_with("the metadata") { " and 169.254.169.254" } else { "" }
                ))
            }
            _ => return Err(format!("{what}'s scheme is not https://")),
        }
        if url.host().is_none() {
            return Err(format!("{what} names no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{what} (host {}) must not have a query or fragment", url.host_str().unwrap_or("")));
        }
        Ok(Endpoint { url: url.as_str().trim_end_matches('/').to_owned(), ca_file: None })
    }

    /// The same endpoint, its certificate also trusted when `ca_file` issued it.
    pub fn with_ca_file(self, ca_file: Option<PathBuf>) -> Endpoint {
        Endpoint { ca_file, ..self }
    }

    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host, for messages.
    pub fn host(&self) -> String {
        url::Url::parse(&self.url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default()
    }

    /// `<endpoint>/identity/token`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url)
    }

    /// `<endpoint><path>`, for the metadata service's operations.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint { url: DEFAULT.to_owned(), ca_file: None }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_accepted_and_normalised() {
        assert_eq!(
            Endpoint::parse("https://private.iam.cloud.ibm.com/").unwrap().as_str(),
            "https://private.iam.cloud.ibm.com"
        );
        assert_eq!(Endpoint::default().token_url(), "https://iam.cloud.ibm.com/identity/token");
    }

    #[test]
    fn an_endpoint_given_as_the_token_url_is_not_doubled() {
        for given in ["https://iam.cloud.ibm.com/identity/token", "https://iam.cloud.ibm.com/identity/token/"] {
            let endpoint = Endpoint::parse(given).unwrap();
            assert_eq!(endpoint.as_str(), "https://iam.cloud.ibm.com", "{given}");
            assert_eq!(endpoint.token_url(), "https://iam.cloud.ibm.com/identity/token");
        }
        assert_eq!(
            Endpoint::parse("https://proxy.example/iam/").unwrap().token_url(),
            "https://proxy.example/iam/identity/token"
        );
    }

    #[test]
    fn the_metadata_service_takes_plain_http_only_at_its_link_local_address_or_loopback() {
        for ok in [
            "http://169.254.169.254",
            "http://169.254.169.254/",
            "https://api.metadata.cloud.ibm.com",
            "http://127.0.0.1:8080",
        ] {
            assert!(Endpoint::metadata(ok).is_ok(), "{ok}");
        }
        assert_eq!(Endpoint::metadata_default().join("/x"), "http://169.254.169.254/x");
        for bad in
            ["http://api.metadata.cloud.ibm.com", "http://169.254.169.253", "http://10.0.0.1", "ftp://169.254.169.254"]
        {
            assert!(Endpoint::metadata(bad).is_err(), "{bad}");
        }
        assert!(Endpoint::parse("http://169.254.169.254").is_err(), "IAM is never plain http outside loopback");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in
            ["http://127.0.0.1:8080", "http://127.9.9.9", "http://[::1]:1", "http://localhost:99", "http://LOCALHOST"]
        {
            assert!(Endpoint::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://iam.cloud.ibm.com",
            "http://10.0.0.1",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "http://[::2]",
            "ftp://127.0.0.1",
            "https://user:pw@iam.cloud.ibm.com",
            "https://iam.cloud.ibm.com/?x=1",
            "iam.cloud.ibm.com",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
