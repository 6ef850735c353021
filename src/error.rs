//! The one error type. Each variant is a decision the dispatcher makes about what the client
//! sees: `NotFound` becomes the not-found line (docker then pulls anonymously), the two `Missing*`
//! variants become docker's own error strings (declared here, byte for byte), and `Input`/`Failed` become one line that says
//! what went wrong and what to do. No variant ever carries a secret.

use std::fmt;

/// docker-credential-helpers' `ErrCredentialsNotFound`: clients treat it as "pull anonymously".
pub const ERR_NOT_FOUND: &str = "credentials not found in native keychain";
/// docker-credential-helpers' `ErrCredentialsMissingServerURL`.
pub const ERR_MISSING_SERVER_URL: &str = "no credentials server URL";
/// docker-credential-helpers' `ErrCredentialsMissingUsername`.
pub const ERR_MISSING_USERNAME: &str = "no credentials username";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No credentials for this server: not ours, or no source has one.
    NotFound,
    /// The server URL on stdin was empty.
    MissingServerUrl,
    /// `store` was given an empty username.
    MissingUsername,
    /// The input on stdin or the command line could not be understood.
    Input(String),
    /// Something the user must fix: a bad config file, an unreadable key file, IAM refusing.
    Failed(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }

    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str(ERR_NOT_FOUND),
            Error::MissingServerUrl => f.write_str(ERR_MISSING_SERVER_URL),
            Error::MissingUsername => f.write_str(ERR_MISSING_USERNAME),
            // One line, whatever the message was built from.
            Error::Input(m) | Error::Failed(m) => f.write_str(&m.replace(['\n', '\r'], " ")),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_strings_are_dockers_own() {
        assert_eq!(Error::NotFound.to_string(), "credentials not found in native keychain");
        assert_eq!(Error::MissingServerUrl.to_string(), "no credentials server URL");
        assert_eq!(Error::MissingUsername.to_string(), "no credentials username");
    }

    #[test]
    fn a_message_is_one_line() {
        assert_eq!(Error::failed("a\nb\rc").to_string(), "a b c");
    }
}
