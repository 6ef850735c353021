//! The one error type. Each variant is a decision the dispatcher makes about what the client
//! sees: `NotFound` becomes the not-found line (docker then pulls anonymously), the two `Missing*`
//! variants become docker's own error strings, and `Input`/`Failed` become one line that says
//! what went wrong and what to do. No variant ever carries a secret.

use std::fmt;

use crate::protocol;

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
            Error::NotFound => f.write_str(protocol::ERR_NOT_FOUND),
            Error::MissingServerUrl => f.write_str(protocol::ERR_MISSING_SERVER_URL),
            Error::MissingUsername => f.write_str(protocol::ERR_MISSING_USERNAME),
            // One line, whatever the message was built from.
            Error::Input(m) | Error::Failed(m) => f.write_str(&m.replace(['\n', '\r'], " ")),
        }
    }
}

impl std::error::Error for Error {}
