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

/// Which trusted profile a compute-resource or instance identity token is exchanged for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// `Profile-…`, sent as `profile_id` (to the metadata service as `trusted_profile.id`).
    Id(String),
    /// Sent as `profile_name`; the metadata service takes no names.
    Name(String),
    /// `crn:v1:…:profile:Profile-…`, sent as `profile_crn` (`trusted_profile.crn`).
    Crn(String),
}

impl Profile {
    /// A profile as IBM's CLI documents `IBMCLOUD_CR_PROFILE`: "the name, ID, or CRN". A CRN
    /// starts `crn:`, an id `Profile-`; an iam_id (`iam-Profile-…`) names the profile whose id
    /// follows `iam-`; anything else is a name.
    pub fn parse(value: &str) -> Profile {
        let value = value.trim();
        if value.starts_with("crn:") {
            Profile::Crn(value.to_owned())
        } else if let Some(id) = value.strip_prefix("iam-").filter(|id| id.starts_with("Profile-")) {
            Profile::Id(id.to_owned())
        } else if value.starts_with("Profile-") {
            Profile::Id(value.to_owned())
        } else {
            Profile::Name(value.to_owned())
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Profile::Id(id) => write!(f, "profile id {id}"),
            Profile::Name(name) => write!(f, "profile name {name}"),
            Profile::Crn(crn) => write!(f, "profile CRN {crn}"),
        }
    }
}

/// What is handed over in exchange for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `urn:ibm:params:oauth:grant-type:apikey`; with `refresh`, as client `bx`, which is the only
    /// way IAM hands out a refresh token for an API key.
    ApiKey { apikey: Secret, refresh: bool },
    /// `urn:ibm:params:oauth:grant-type:cr-token` for a trusted profile.
    CrToken { cr_token: Secret, profile: Profile },
    /// `refresh_token`, as client `bx` (as the `ibmcloud` CLI refreshes its session): an IAM
    /// refresh token for a new access token.
    RefreshToken { refresh_token: Secret },
    /// A VPC virtual server instance's own identity: the metadata service's instance identity
    /// token, exchanged there for an IAM access token of a trusted profile linked to the
    /// instance (`None`: the instance's default profile). The endpoint is the metadata service.
    Instance { profile: Option<Profile> },
}

impl Grant {
    /// Whether the endpoint of this grant is the metadata service rather than IAM.
    pub fn is_instance(&self) -> bool {
        matches!(self, Grant::Instance { .. })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_an_id_an_iam_id_a_crn_or_a_name() {
        let crn = "crn:v1:bluemix:public:iam-identity::a/abc123::profile:Profile-1234";
        assert_eq!(Profile::parse(crn), Profile::Crn(crn.into()));
        assert_eq!(Profile::parse(" Profile-1234 "), Profile::Id("Profile-1234".into()));
        assert_eq!(Profile::parse("iam-Profile-1234"), Profile::Id("Profile-1234".into()));
        assert_eq!(Profile::parse("iam-puller"), Profile::Name("iam-puller".into()));
        assert_eq!(Profile::parse("ci-puller"), Profile::Name("ci-puller".into()));
    }
}
