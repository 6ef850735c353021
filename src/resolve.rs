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

/// The IAM exchange `get` makes for this credential in this mode, if any: an API key in mode
/// `iambearer` or `iamrefresh`, and a trusted profile in every mode (it yields bearer tokens
/// only). `explain` asks the same question, so it is answered here once.
pub fn grant(mode: Mode, credential: &Credential) -> Option<Grant> {
    match credential {
        Credential::ApiKey(key) if mode != Mode::ApiKey => {
            Some(Grant::ApiKey { apikey: key.clone(), refresh: mode == Mode::Refresh })
        }
        Credential::TrustedProfile { profile, cr_token } => {
            Some(Grant::CrToken { cr_token: cr_token.clone(), profile: profile.clone() })
        }
        _ => None,
    }
}

/// Applies the mode to what a source found.
pub fn answer(ctx: &Context, registry: &Registry, found: Found) -> Result<Answer> {
    let mode = ctx.mode(registry)?;
    let Found { credential, origin } = found;
    if let Some(grant) = grant(mode, &credential) {
        if mode == Mode::Refresh && matches!(grant, Grant::CrToken { .. }) {
            ctx.log.info(format_args!("{registry}: a trusted profile yields bearer tokens only, not refresh tokens"));
        }
        let token = exchange(ctx, &grant)?;
        let (username, secret) = match grant {
            Grant::ApiKey { refresh: true, .. } => {
                let refresh = token.refresh.ok_or_else(|| {
                    Error::failed("IAM answered without a refresh token for client bx: use mode iambearer")
                })?;
                (Mode::Refresh.username(), refresh)
            }
            _ => (Mode::Bearer.username(), token.access),
        };
        return Ok(Answer { username: username.to_owned(), secret, origin });
    }
    let (username, secret) = match credential {
        Credential::ApiKey(key) => (Mode::ApiKey.username().to_owned(), key),
        Credential::Bearer(token) => (Mode::Bearer.username().to_owned(), token),
        Credential::Refresh(token) => (Mode::Refresh.username().to_owned(), token),
        Credential::Login { username, secret } => (username, secret),
        Credential::TrustedProfile { .. } => unreachable!("`grant` exchanges every trusted profile"),
    };
    Ok(Answer { username, secret, origin })
}

fn exchange(ctx: &Context, grant: &Grant) -> Result<crate::iam::Token> {
    let endpoint = ctx.iam_endpoint()?;
    ctx.exchange.exchange(&endpoint, grant)
}
