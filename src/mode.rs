//! What the secret handed to the registry is, named by the username that tells the registry so.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The secret is an IAM API key; no network call.
    #[serde(rename = "iamapikey")]
    ApiKey,
    /// The secret is an IAM access token (at most an hour long).
    #[serde(rename = "iambearer")]
    Bearer,
    /// The secret is an IAM refresh token.
    #[serde(rename = "iamrefresh")]
    Refresh,
}

impl Mode {
    /// The username the registry expects with a secret of this kind.
    pub fn username(self) -> &'static str {
        match self {
            Mode::ApiKey => "iamapikey",
            Mode::Bearer => "iambearer",
            Mode::Refresh => "iamrefresh",
        }
    }

    /// The mode a username names, for logins stored by `docker login -u iamapikey`.
    pub fn from_username(username: &str) -> Option<Mode> {
        username.parse().ok()
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "iamapikey" => Ok(Mode::ApiKey),
            "iambearer" => Ok(Mode::Bearer),
            "iamrefresh" => Ok(Mode::Refresh),
            // The value is not repeated: it may be anything a user pasted.
            _ => Err("not a mode: expected iamapikey, iambearer or iamrefresh".to_owned()),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.username())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_from_their_usernames_only() {
        assert_eq!("iamapikey".parse(), Ok(Mode::ApiKey));
        assert_eq!("IAMBearer".parse(), Ok(Mode::Bearer));
        assert_eq!("iamrefresh".parse(), Ok(Mode::Refresh));
        assert!("bearer".parse::<Mode>().is_err());
        assert!("".parse::<Mode>().is_err());
    }
}
