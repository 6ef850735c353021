//! What a source hands over, and the small [`Source`] trait every source implements; with the
//! two ways a secret is read that several sources share (a file, or a value that may be
//! `@path`).

use std::path::Path;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::files;
use crate::iam::Profile;
use crate::mode::Mode;
use crate::registry::Registry;
use crate::secret::Secret;

/// A credential as a source holds it, before the mode turns it into what the registry gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    ApiKey(Secret),
    Bearer(Secret),
    Refresh(Secret),
    TrustedProfile {
        profile: Profile,
        cr_token: Secret,
    },
    /// The VPC instance's own identity (no secret on the machine at all): always exchanged at
    /// the metadata service, for the profile named or the instance's default.
    VpcInstance {
        profile: Option<Profile>,
    },
    /// A stored login whose username names no IAM mode (a private mirror's own user).
    Login {
        username: String,
        secret: Secret,
    },
}

impl Credential {
    /// The username that tells the registry what the secret is, when it is handed over as it is.
    pub fn username(&self) -> &str {
        match self {
            Credential::ApiKey(_) => Mode::ApiKey.username(),
            Credential::Bearer(_) | Credential::TrustedProfile { .. } | Credential::VpcInstance { .. } => {
                Mode::Bearer.username()
            }
            Credential::Refresh(_) => Mode::Refresh.username(),
            Credential::Login { username, .. } => username,
        }
    }

    /// The secret handed over as it is; `None` for an identity that is always exchanged first
    /// (a VPC instance has no secret of its own).
    pub fn into_secret(self) -> Option<Secret> {
        match self {
            Credential::ApiKey(s) | Credential::Bearer(s) | Credential::Refresh(s) => Some(s),
            Credential::TrustedProfile { cr_token, .. } => Some(cr_token),
            Credential::Login { secret, .. } => Some(secret),
            Credential::VpcInstance { .. } => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ApiKey(_) => "API key",
            Credential::Bearer(_) => "IAM access token",
            Credential::Refresh(_) => "IAM refresh token",
            Credential::TrustedProfile { .. } => "trusted profile with a compute-resource token",
            Credential::VpcInstance { .. } => "VPC instance identity from the metadata service",
            Credential::Login { .. } => "stored username and password",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub credential: Credential,
    /// Where it came from, for humans: `IBMCLOUD_API_KEY`, `stored login for us.icr.io`, …
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Found),
    /// Why this source had nothing for the registry.
    Missed(String),
}

pub trait Source {
    /// A short name: `stored login`, `config entry`, `environment`, …
    fn name(&self) -> &'static str;
    /// What this source has for `registry`, handed out in `mode`.
    fn find(&self, ctx: &Context, registry: &Registry, mode: Mode) -> Result<Lookup>;
}

/// Secret files are small; anything larger is not a key.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a key or token from a file, trimmed. `what` names the setting that pointed here, for
/// the error line; the file's contents never appear in it.
pub fn read_secret_file(path: &Path, what: &str) -> Result<Secret> {
    let bytes = files::read_limited(path, MAX_SECRET_FILE, true)
        .map_err(|e| Error::failed(format!("{what}: cannot read {}: {e}", path.display())))?
        .ok_or_else(|| Error::failed(format!("{what}: {} does not exist", path.display())))?;
    let text =
        String::from_utf8(bytes).map_err(|_| Error::failed(format!("{what}: {} is not UTF-8 text", path.display())))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::failed(format!("{what}: {} is empty", path.display())));
    }
    Ok(Secret::new(text))
}

/// A value that is either the secret itself or `@path` naming a file that holds it.
pub fn secret_value(value: &str, what: &str) -> Result<Secret> {
    match value.strip_prefix('@') {
        Some(path) => read_secret_file(Path::new(path), what),
        None => Ok(Secret::new(value.trim())),
    }
}
