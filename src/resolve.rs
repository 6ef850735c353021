//! From a server URL to what the registry gets, in two steps. [`plan`] decides — is the host
//! ours, which mode, which source, which username, and whether the secret is handed over as it
//! is or bought at IAM first — without touching the network; [`execute`] carries the plan out.
//! `get`, `exec`, `explain` and `kubelet` all plan here, so the decision is made once: `explain`
//! renders the plan instead of executing it, and reports each source as the walk reaches it
//! (an [`Event`]), exactly as `get` logs it.
//!
//! This is also the one owner of the policy "what becomes not-found" ([`NotFound`]): a server
//! URL that names no registry, a host that is neither ICR nor named in the config file, a
//! registry no source has anything for, a login that is an identity token. Everything else that
//! goes wrong is an error the user sees.

use std::fmt;
use std::path::PathBuf;

use crate::context::Context;
use crate::error::Result;
use crate::iam::{Endpoint, Grant, Profile, Token};
use crate::jwt;
use crate::log::Log;
use crate::mode::Mode;
use crate::registry::{self, ParseError, Registry};
use crate::secret::Secret;
use crate::source::{self, Credential, Found, Lookup};

/// What the walk reports as it goes, for `explain` to print and `get` to log.
pub enum Event<'a> {
    /// The registry is one the helper answers for.
    Ours(&'a Registry),
    /// The mode the credential is handed out in; the sources follow, in order.
    Mode(Mode),
    /// A source had nothing for the registry, and why.
    Missed { registry: &'a Registry, source: &'static str, why: &'a str },
    /// A source had this; the walk stops here.
    Found { registry: &'a Registry, source: &'static str, found: &'a Found },
    /// A source is configured but broken; the walk ends with its error.
    Failed { source: &'static str },
}

/// Why there are no credentials for a server URL: the client gets the not-found line and pulls
/// anonymously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFound {
    /// The server URL names no registry.
    NotARegistry(ParseError),
    /// Neither an ICR host nor a host the config file names.
    NotOurs(NotOurs),
    /// No source has anything for the registry.
    NoCredentials(Registry),
    /// A stored login whose username is docker's `<token>`: an identity token is no
    /// username/password pair, and a client would misuse it as one.
    IdentityToken(Registry),
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotFound::NotARegistry(e) => write!(f, "{e}"),
            NotFound::NotOurs(not_ours) => write!(f, "{not_ours}"),
            NotFound::NoCredentials(registry) => write!(f, "{registry}: no credentials in any source"),
            NotFound::IdentityToken(registry) => write!(f, "{registry}: the stored login is an identity token"),
        }
    }
}

impl NotFound {
    /// Logs why, at the level a user hunting for it would look: what the user set up wrong (no
    /// credentials) at info, what is normal for most hosts at debug.
    pub fn log(&self, log: &Log) {
        match self {
            NotFound::NoCredentials(_) => log.info(format_args!("{self}")),
            _ => log.debug(format_args!("{self}")),
        }
    }
}

/// A registry the helper does not answer for, with the config file that could name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotOurs {
    pub registry: Registry,
    pub config: Option<PathBuf>,
}

impl fmt::Display for NotOurs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.config.as_ref().map(|p| p.display().to_string());
        write!(
            f,
            "{} is not an IBM Cloud Container Registry host and is not named in {}",
            self.registry,
            config.as_deref().unwrap_or("the config file")
        )
    }
}

/// Whether the helper answers for `registry`: an ICR host of the table, or a host the config
/// file names. `Some` says why not.
pub fn not_ours(ctx: &Context, registry: &Registry) -> Result<Option<NotOurs>> {
    if registry.is_icr() || ctx.config()?.is_some_and(|c| c.names(registry)) {
        return Ok(None);
    }
    Ok(Some(NotOurs { registry: registry.clone(), config: ctx.config_path()? }))
}

/// What `plan` decided.
#[derive(Debug)]
pub enum Outcome {
    Plan(Plan),
    NotFound(NotFound),
}

/// How a registry gets its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub registry: Registry,
    /// The mode the registry's credential is handed out in.
    pub mode: Mode,
    /// Where the credential came from, for humans.
    pub origin: String,
    pub step: Step,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The credential goes to the registry as it is; no IAM call.
    Give(Credential),
    /// The credential is exchanged at IAM first.
    Exchange(Exchange),
}

/// An IAM exchange and which of its tokens the registry gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub endpoint: Endpoint,
    pub grant: Grant,
    /// Whom the grant speaks for, when its credential changes all the time while that does not
    /// (a Kubernetes service account): the token cache keys on this instead (`exchange_as`).
    pub identity: Option<String>,
    pub take: Take,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The access token (`iambearer`).
    Access,
    /// The refresh token (`iamrefresh`; IAM issues one to the client `bx` only).
    Refresh,
}

impl Plan {
    /// The username the registry gets.
    pub fn username(&self) -> &str {
        match &self.step {
            Step::Give(credential) => credential.username(),
            Step::Exchange(Exchange { take: Take::Access, .. }) => Mode::Bearer.username(),
            Step::Exchange(Exchange { take: Take::Refresh, .. }) => Mode::Refresh.username(),
        }
    }
}

/// What the registry gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub username: String,
    pub secret: Secret,
    /// Where the credential came from, for diagnostics.
    pub origin: String,
    /// When the secret stops working (Unix seconds), when that can be known: a token IAM just
    /// issued, or a JWT.
    pub expires_at: Option<u64>,
}

/// Plans the answer for a server URL as a client sends it.
pub fn plan(ctx: &Context, server_url: &str, on: &mut dyn FnMut(Event)) -> Result<Outcome> {
    match registry::parse_server_url(server_url) {
        Ok(registry) => plan_registry(ctx, &registry, on),
        Err(e) => Ok(Outcome::NotFound(NotFound::NotARegistry(e))),
    }
}

/// Plans the answer for a registry: ours or not, then the mode (reported even when no source
/// has anything, so that a bad one is found before the day a credential appears), then the
/// sources in order.
pub fn plan_registry(ctx: &Context, registry: &Registry, on: &mut dyn FnMut(Event)) -> Result<Outcome> {
    if let Some(not_ours) = not_ours(ctx, registry)? {
        return Ok(Outcome::NotFound(NotFound::NotOurs(not_ours)));
    }
    on(Event::Ours(registry));
    let mode = ctx.mode(registry)?;
    on(Event::Mode(mode));
    for source in source::sources() {
        let found = match source.find(ctx, registry, mode) {
            Ok(Lookup::Found(found)) => found,
            Ok(Lookup::Missed(why)) => {
                on(Event::Missed { registry, source: source.name(), why: &why });
                continue;
            }
            Err(e) => {
                on(Event::Failed { source: source.name() });
                return Err(e);
            }
        };
        on(Event::Found { registry, source: source.name(), found: &found });
        if matches!(&found.credential, Credential::Login { username, .. } if username == "<token>") {
            return Ok(Outcome::NotFound(NotFound::IdentityToken(registry.clone())));
        }
        let step = step(ctx, registry, mode, found.credential)?;
        return Ok(Outcome::Plan(Plan { registry: registry.clone(), mode, origin: found.origin, step }));
    }
    Ok(Outcome::NotFound(NotFound::NoCredentials(registry.clone())))
}

/// The plan for a Kubernetes service account's token: exchanged for `profile` at IAM, cached
/// under `identity` when the token names one.
pub fn service_account_plan(
    ctx: &Context,
    registry: &Registry,
    token: &Secret,
    profile: Profile,
    identity: Option<String>,
    origin: String,
) -> Result<Plan> {
    let grant = Grant::CrToken { cr_token: token.clone(), profile };
    let exchange = Exchange { endpoint: ctx.iam_endpoint()?, grant, identity, take: Take::Access };
    Ok(Plan { registry: registry.clone(), mode: Mode::Bearer, origin, step: Step::Exchange(exchange) })
}

/// The mode decides: an API key is exchanged in mode `iambearer` (for an access token) or
/// `iamrefresh` (as client `bx`, for a refresh token); a refresh token is exchanged in mode
/// `iambearer` (as client `bx`, for an access token) and handed over as it is otherwise; a
/// trusted profile and a VPC instance are always exchanged (they yield access tokens only);
/// anything else is handed over as it is.
fn step(ctx: &Context, registry: &Registry, mode: Mode, credential: Credential) -> Result<Step> {
    let only_bearer = || {
        if mode == Mode::Refresh {
            ctx.log.info(format_args!("{registry}: this identity yields bearer tokens only, not refresh tokens"));
        }
    };
    let (endpoint, grant, take) = match credential {
        Credential::ApiKey(apikey) if mode != Mode::ApiKey => {
            let refresh = mode == Mode::Refresh;
            (ctx.iam_endpoint()?, Grant::ApiKey { apikey, refresh }, if refresh { Take::Refresh } else { Take::Access })
        }
        Credential::Refresh(refresh_token) if mode == Mode::Bearer => {
            (ctx.iam_endpoint()?, Grant::RefreshToken { refresh_token }, Take::Access)
        }
        Credential::TrustedProfile { profile, cr_token } => {
            only_bearer();
            (ctx.iam_endpoint()?, Grant::CrToken { cr_token, profile }, Take::Access)
        }
        Credential::VpcInstance { profile } => {
            only_bearer();
            (ctx.metadata_endpoint()?, Grant::Instance { profile }, Take::Access)
        }
        credential => return Ok(Step::Give(credential)),
    };
    Ok(Step::Exchange(Exchange { endpoint, grant, identity: None, take }))
}

/// Carries out a plan.
pub fn execute(ctx: &Context, plan: Plan) -> Result<Answer> {
    let Plan { origin, step, .. } = plan;
    let exchange = match step {
        Step::Give(credential) => {
            let username = credential.username().to_owned();
            let secret = credential.into_secret().ok_or_else(|| {
                crate::error::Error::failed(
                    "this identity has no secret of its own to hand over: it is exchanged first",
                )
            })?;
            let expires_at = if username == Mode::Bearer.username() { jwt::expiry(secret.expose()) } else { None };
            return Ok(Answer { username, secret, origin, expires_at });
        }
        Step::Exchange(exchange) => exchange,
    };
    let token: Token = match &exchange.identity {
        Some(identity) => ctx.exchange.exchange_as(&exchange.endpoint, &exchange.grant, identity)?,
        None => ctx.exchange.exchange(&exchange.endpoint, &exchange.grant)?,
    };
    Ok(match exchange.take {
        Take::Access => Answer {
            username: Mode::Bearer.username().to_owned(),
            secret: token.access,
            origin,
            expires_at: Some(token.expires_at),
        },
        Take::Refresh => Answer {
            username: Mode::Refresh.username().to_owned(),
            secret: token.refresh.ok_or_else(|| {
                crate::error::Error::failed("IAM answered without a refresh token for client bx: use mode iambearer")
            })?,
            origin,
            expires_at: None,
        },
    })
}

/// The observer of `get`, `exec` and `kubelet`: the walk, at debug level.
pub fn log_event(log: &Log, event: Event) {
    match event {
        Event::Missed { registry, source, why } => log.debug(format_args!("{registry}: {source}: {why}")),
        Event::Found { registry, found, .. } => {
            log.debug(format_args!("{registry}: using {} from {}", found.credential.kind(), found.origin))
        }
        Event::Ours(_) | Event::Mode(_) | Event::Failed { .. } => {}
    }
}
