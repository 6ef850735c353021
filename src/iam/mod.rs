//! IBM Cloud IAM: the endpoint, the grants the helper exchanges, and the tokens that come back.
//!
//! The exchange sits behind the small [`Exchange`] trait so that the dispatcher and the
//! credential sources do not know whether a token came from the network, the cache or a test.

pub mod endpoint;

pub use endpoint::Endpoint;

use crate::error::Result;
use crate::secret::Secret;

/// Which trusted profile a compute-resource token is exchanged for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    Id(String),
    Name(String),
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Profile::Id(id) => write!(f, "profile id {id}"),
            Profile::Name(name) => write!(f, "profile name {name}"),
        }
    }
}

/// What is handed to IAM in exchange for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `urn:ibm:params:oauth:grant-type:apikey`; with `refresh`, as client `bx`, which is the only
    /// way IAM hands out a refresh token for an API key.
    ApiKey { apikey: Secret, refresh: bool },
    /// `urn:ibm:params:oauth:grant-type:cr-token` for a trusted profile.
    CrToken { cr_token: Secret, profile: Profile },
}

/// A token IAM issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub access: Secret,
    pub refresh: Option<Secret>,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Turns a grant into a token.
pub trait Exchange {
    fn exchange(&self, endpoint: &Endpoint, grant: &Grant) -> Result<Token>;
}

/// The exchange of a build without one: says so instead of answering wrongly.
pub struct Unavailable;

impl Exchange for Unavailable {
    fn exchange(&self, _endpoint: &Endpoint, grant: &Grant) -> Result<Token> {
        let what = match grant {
            Grant::ApiKey { refresh: false, .. } => "mode iambearer",
            Grant::ApiKey { refresh: true, .. } => "mode iamrefresh",
            Grant::CrToken { .. } => "a trusted profile",
        };
        Err(crate::error::Error::failed(format!(
            "{what} needs an IAM token exchange, which this build does not support yet: use mode iamapikey"
        )))
    }
}
