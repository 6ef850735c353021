//! Where credentials come from (SPEC section 4), in the order they are consulted: a stored
//! login, the config file's entry for the registry, the environment, the config file's default,
//! the `ibmcloud` CLI session. First hit wins; the more specific comes before the more general.
//!
//! Each source is a small type behind [`Source`]; it answers `Found` or says in `Missed` why it
//! did not apply (which `explain` shows). A source that is configured but broken — a key file
//! that cannot be read — is an error, not a miss: falling through to a more general source would
//! silently hand out another account's credentials.

mod config;
mod environment;
mod session;
mod stored;

use std::path::Path;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::files;
use crate::iam::Profile;
use crate::registry::Registry;
use crate::secret::Secret;

pub use environment::{profile_ref, DEFAULT_CR_TOKEN_PATHS};

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
    /// A stored login whose username names no IAM mode (a private mirror's own user).
    Login {
        username: String,
        secret: Secret,
    },
}

impl Credential {
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ApiKey(_) => "API key",
            Credential::Bearer(_) => "IAM access token",
            Credential::Refresh(_) => "IAM refresh token",
            Credential::TrustedProfile { .. } => "trusted profile with a compute-resource token",
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
    fn find(&self, ctx: &Context, registry: &Registry) -> Result<Lookup>;
}

/// The sources in the order they are consulted.
pub fn sources() -> [&'static dyn Source; 5] {
    [
        &stored::StoredLogin,
        &config::ConfigEntry,
        &environment::Environment,
        &config::ConfigDefault,
        &session::CliSession,
    ]
}

/// The first credential any source has for `registry`, or `None`.
pub fn find(ctx: &Context, registry: &Registry) -> Result<Option<Found>> {
    for source in sources() {
        match source.find(ctx, registry)? {
            Lookup::Found(found) => {
                ctx.log.debug(format_args!("{registry}: using {} from {}", found.credential.kind(), found.origin));
                return Ok(Some(found));
            }
            Lookup::Missed(why) => ctx.log.debug(format_args!("{registry}: {}: {why}", source.name())),
        }
    }
    Ok(None)
}

/// Secret files are small; anything larger is not a key.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a key or token from a file, trimmed. `what` names the setting that pointed here, for
/// the error line; the file's contents never appear in it.
pub fn read_secret_file(path: &Path, what: &str) -> Result<Secret> {
    let bytes = files::read_limited(path, MAX_SECRET_FILE)
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
