//! From a registry to the username and secret the registry gets: pick the source, then let the
//! mode decide whether the credential is handed out as it is or exchanged at IAM first.
//!
//! This is where the policy "what becomes not-found" lives: a host that is neither ICR nor named
//! in the config file, and a registry no source has anything for. Everything else that goes
//! wrong is an error the user sees.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::iam::Grant;
use crate::mode::Mode;
use crate::registry::Registry;
use crate::secret::Secret;
use crate::source::{self, Credential, Found};

/// What `get` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub username: String,
    pub secret: Secret,
    /// Where the credential came from, for diagnostics.
    pub origin: String,
}

/// The credentials for `registry`, or `Error::NotFound`.
pub fn credentials(ctx: &Context, registry: &Registry) -> Result<Answer> {
    if !ctx.is_ours(registry)? {
        ctx.log.debug(format_args!("{registry} is not an ICR host and not named in the config file"));
        return Err(Error::NotFound);
    }
    // A bad mode is reported whether or not a source has something, so that it is found before
    // the day a credential appears.
    ctx.mode(registry)?;
    let Some(found) = source::find(ctx, registry)? else {
        ctx.log.info(format_args!("{registry}: no credentials in any source"));
        return Err(Error::NotFound);
    };
    answer(ctx, registry, found)
}

/// Applies the mode to what a source found.
pub fn answer(ctx: &Context, registry: &Registry, found: Found) -> Result<Answer> {
    let mode = ctx.mode(registry)?;
    let Found { credential, origin } = found;
    let (username, secret) = match credential {
        Credential::ApiKey(key) => match mode {
            Mode::ApiKey => (Mode::ApiKey.username().to_owned(), key),
            Mode::Bearer => {
                let token = exchange(ctx, &Grant::ApiKey { apikey: key, refresh: false })?;
                (Mode::Bearer.username().to_owned(), token.access)
            }
            Mode::Refresh => {
                let token = exchange(ctx, &Grant::ApiKey { apikey: key, refresh: true })?;
                let refresh = token.refresh.ok_or_else(|| {
                    Error::failed("IAM answered without a refresh token for client bx: use mode iambearer")
                })?;
                (Mode::Refresh.username().to_owned(), refresh)
            }
        },
        Credential::Bearer(token) => (Mode::Bearer.username().to_owned(), token),
        Credential::Refresh(token) => (Mode::Refresh.username().to_owned(), token),
        Credential::TrustedProfile { profile, cr_token } => {
            if mode == Mode::Refresh {
                ctx.log
                    .info(format_args!("{registry}: a trusted profile yields bearer tokens only, not refresh tokens"));
            }
            let token = exchange(ctx, &Grant::CrToken { cr_token, profile })?;
            (Mode::Bearer.username().to_owned(), token.access)
        }
        Credential::Login { username, secret } => (username, secret),
    };
    Ok(Answer { username, secret, origin })
}

fn exchange(ctx: &Context, grant: &Grant) -> Result<crate::iam::Token> {
    let endpoint = ctx.iam_endpoint()?;
    ctx.exchange.exchange(&endpoint, grant)
}
