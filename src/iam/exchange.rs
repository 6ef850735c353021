//! What the helper hands IAM and what comes back: the grants, the tokens, and the [`Exchange`]
//! trait that turns one into the other, so that the dispatcher and the credential sources do not
//! know whether a token came from the network, the cache or a test.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::secret::Secret;

use super::endpoint::Endpoint;

/// No invocation takes longer than this, whatever IAM and other processes do.
pub const BOUND: Duration = Duration::from_secs(20);

/// When the IAM work of an invocation that started at `started` must be done: waiting for
/// another process's exchange and making its own share this one deadline, which leaves a second
/// of [`BOUND`] for starting, reading files and answering.
pub fn deadline(started: Instant) -> Instant {
    started + BOUND - Duration::from_secs(1)
}

/// The longest an IAM access token lives: IAM issues them for at most 60 minutes
/// (`expires_in: 3600`). A lifetime IAM claims beyond this is taken to be this, so that no answer,
/// however odd, makes a token look valid for longer than IAM ever lets one live.
pub const MAX_TOKEN_LIFETIME: u64 = 3600;

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

    /// Like `exchange`, for a grant whose credential changes all the time while whom it speaks
    /// for does not (a Kubernetes service account token: a new one per pod): a cache keeps the
    /// token under `identity` instead of under the credential. The caller vouches that every
    /// credential it passes with one identity buys the same access.
    fn exchange_as(&self, endpoint: &Endpoint, grant: &Grant, identity: &str) -> Result<Token> {
        let _ = identity;
        self.exchange(endpoint, grant)
    }

    /// What a cache in front of the exchange holds for this grant, for `explain`.
    fn cached(&self, endpoint: &Endpoint, grant: &Grant) -> Cached {
        let _ = (endpoint, grant);
        Cached::Off
    }
}

/// What the token cache holds for a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// No cache: every exchange goes to IAM.
    Off,
    /// The cache is set up, but cannot be used, for this reason: every exchange goes to IAM.
    Unusable(String),
    /// Nothing for this grant yet; the cache is in this directory.
    Empty(std::path::PathBuf),
    /// This token, fresh or not.
    Token(Token),
}
