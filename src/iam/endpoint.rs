//! The IAM endpoint and the rule that keeps credentials off the wire in clear text:
//! `https://` always, `http://` only to a loopback address (for a local fake IAM in tests).

use std::fmt;
use std::path::{Path, PathBuf};

/// IBM Cloud's public IAM endpoint.
pub const DEFAULT: &str = "https://iam.cloud.ibm.com";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    /// A CA file to trust for it beside the system's roots (the config file's `iamCaFile`).
    ca_file: Option<PathBuf>,
}

impl Endpoint {
    /// Validates an endpoint URL. The result has no trailing slash, so that
    /// `<endpoint>/identity/token` is well-formed.
    ///
    /// An error says what is wrong without repeating the text: an endpoint given with a
    /// password in it (`https://user:key@…`) must not show the key.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| format!("the IAM endpoint is not a URL ({e})"))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the IAM endpoint must not carry a user or password".to_owned());
        }
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(format!(
                    "the IAM endpoint (host {}) must use https:// (http:// is allowed for a loopback address only)",
                    url.host_str().unwrap_or("")
                ))
            }
            _ => return Err("the IAM endpoint's scheme is not https://".to_owned()),
        }
        if url.host().is_none() {
            return Err("the IAM endpoint names no host".to_owned());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "the IAM endpoint (host {}) must not have a query or fragment",
                url.host_str().unwrap_or("")
            ));
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
        format!("{}/identity/token", self.url)
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
