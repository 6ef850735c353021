//! `docker-credential-icr kubelet`: a kubelet image credential provider
//! (`credentialprovider.kubelet.k8s.io/v1` and `v1beta1`), so that a node pulls from ICR without
//! an image pull secret.
//!
//! The kubelet runs the plugin once per image it has no cached credential for, with a
//! `CredentialProviderRequest` on stdin, and reads a `CredentialProviderResponse` from stdout.
//! Its convention is not docker's: errors go to stderr with a non-zero exit and nothing on stdout
//! (the kubelet then pulls without credentials and logs the error); the dispatch table in `cli`
//! knows this action by that convention.
//!
//! Two paths to a credential:
//! - The request carries the pod's `serviceAccountToken` and a trusted profile is known (a
//!   service account annotation, the config file, `IBMCLOUD_CR_PROFILE`): the token is exchanged
//!   at IAM as a compute-resource token, and the pod pulls as its own service account with no key
//!   stored anywhere.
//! - Otherwise the node's own credentials, planned exactly as `get` plans them
//!   (`resolve::plan_registry`).
//!
//! `cacheDuration` never outlives the secret and is never absurd: a bearer token gets half of
//! what is left of its life, and never more than half of the longest life IAM gives a token
//! ([`iam::MAX_TOKEN_LIFETIME`]), whatever its `exp` or IAM's `expires_in` claim; a refresh
//! token (opaque, rotated by the CLI) a short fixed bound; an API key or a stored login the
//! configured `kubeletCacheDuration` (at most a year). A response without credentials says
//! `0s`, so that a fixed config takes effect on the next pull.

mod identity;
pub mod wire;

use std::collections::BTreeMap;

use crate::context::Context;
use crate::duration;
use crate::error::{Error, Result};
use crate::iam;
use crate::invocation::Io;
use crate::mode::Mode;
use crate::protocol;
use crate::registry::{self, Registry};
use crate::resolve::{self, Answer, Outcome};
use crate::secret::Secret;
use crate::source;
use wire::{AuthConfig, Request, Response};

pub use source::{PROFILE_ID_ANNOTATION, PROFILE_NAME_ANNOTATION};

/// `kubeletCacheDuration` when the config file does not set it: an hour, as long as an IAM
/// token lives, so that a rotated API key reaches every node within the hour.
pub const DEFAULT_CACHE_SECONDS: u64 = 3600;
/// The longest a refresh token is cached: its expiry is not readable and the `ibmcloud` CLI
/// replaces it as it goes, so the kubelet asks again soon rather than hold an invalid one.
pub const REFRESH_CACHE_SECONDS: u64 = 600;
/// The longest `cacheDuration` of any response: what the config file may ask for an API key,
/// far inside Go's `time.Duration` (about 292 years).
pub const MAX_CACHE_SECONDS: u64 = duration::MAX_SECONDS;

/// The action: the response on stdout and exit status 0; an error goes back to the dispatcher,
/// which reports it on stderr with nothing on stdout, as the kubelet expects.
pub fn run(ctx: &Context, io: &mut Io) -> Result<i32> {
    let input = protocol::read_limited(&mut io.stdin, "the request", "a CredentialProviderRequest")?;
    let line = respond(ctx, &input)?;
    io.print(&line)?;
    Ok(0)
}

/// The response line for one request.
pub fn respond(ctx: &Context, input: &str) -> Result<String> {
    let request = wire::parse_request(input)?;
    let answer = answer(ctx, &request)?;
    let mut auth = BTreeMap::new();
    if let Some((key, username, secret)) = &answer.auth {
        auth.insert(key.as_str(), AuthConfig { username, password: secret.expose() });
    }
    let response = Response {
        api_version: request.version.as_str(),
        kind: wire::RESPONSE_KIND,
        cache_key_type: wire::CACHE_KEY_TYPE,
        cache_duration: Some(duration::format(answer.cache_seconds.min(MAX_CACHE_SECONDS))),
        auth,
    };
    Ok(response.to_line())
}

/// What goes into the response: the `auth` entry (key, username, password), if any, and how long
/// the kubelet may cache it.
struct Reply {
    auth: Option<(String, String, Secret)>,
    cache_seconds: u64,
}

impl Reply {
    fn none() -> Reply {
        Reply { auth: None, cache_seconds: 0 }
    }
}

fn answer(ctx: &Context, request: &Request) -> Result<Reply> {
    let Some(host) = registry_of(&request.image) else {
        ctx.log.debug(format_args!("kubelet: image {} is on Docker Hub, not ICR", wire::printable(&request.image)));
        return Ok(Reply::none());
    };
    let registry = registry::parse_server_url(host)
        .map_err(|e| Error::input(format!("image `{}`: {e}", wire::printable(&request.image))))?;
    // The key the kubelet matches the image against: the registry as the image writes it, which
    // is also what the kubelet's own `Registry` cache key is made of.
    let key = host.to_owned();
    if let Some(token) = &request.service_account_token {
        if let Some(plan) = service_account_plan(ctx, &registry, token, &request.service_account_annotations)? {
            let answer = resolve::execute(ctx, plan)?;
            return reply(ctx, key, answer);
        }
    }
    match resolve::plan_registry(ctx, &registry, &mut |event| resolve::log_event(ctx.log, event))? {
        Outcome::Plan(plan) => {
            let answer = resolve::execute(ctx, plan)?;
            ctx.log.debug(format_args!("kubelet: {registry}: {} from {}", answer.username, answer.origin));
            reply(ctx, key, answer)
        }
        Outcome::NotFound(why) => {
            why.log(ctx.log);
            Ok(Reply::none())
        }
    }
}

/// The plan for the pod's service account token, when a trusted profile is named for it;
/// `None` when the pod gets the node's credentials (and for a registry that is not ours).
fn service_account_plan(
    ctx: &Context,
    registry: &Registry,
    token: &Secret,
    annotations: &BTreeMap<String, String>,
) -> Result<Option<resolve::Plan>> {
    if resolve::not_ours(ctx, registry)?.is_some() {
        return Ok(None);
    }
    let Some((profile, from)) = source::service_account_profile(ctx, registry, annotations)? else {
        ctx.log.debug(format_args!(
            "kubelet: {registry}: no trusted profile for service account tokens; using the node's credentials"
        ));
        return Ok(None);
    };
    ctx.log
        .debug(format_args!("kubelet: {registry}: exchanging the pod's service account token for {profile} ({from})"));
    let identity = identity::of(token.expose(), ctx.clock.now());
    if identity.is_none() {
        ctx.log.debug(format_args!(
            "kubelet: the service account token names no unexpired service account; caching under the token itself"
        ));
    }
    resolve::service_account_plan(ctx, registry, token, profile, identity, from).map(Some)
}

/// The reply for an answer, with how long the kubelet may cache it.
fn reply(ctx: &Context, key: String, answer: Answer) -> Result<Reply> {
    let cache_seconds = cache_seconds(ctx, &answer)?;
    ctx.log.debug(format_args!("kubelet: {key}: cached for {}", duration::format(cache_seconds)));
    Ok(Reply { auth: Some((key, answer.username, answer.secret)), cache_seconds })
}

/// The registry part of an image reference, as docker's reference grammar reads it: the first
/// path component when it has a `.` or a `:` or is `localhost`. Anything else (`nginx`,
/// `library/nginx`) is on Docker Hub: `None`.
pub fn registry_of(image: &str) -> Option<&str> {
    let (first, _rest) = image.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// How long the kubelet may cache an answer: a token for half of what is left of its life (not
/// at all when that cannot be known), a refresh token briefly, anything else for the
/// configured `kubeletCacheDuration`.
fn cache_seconds(ctx: &Context, answer: &Answer) -> Result<u64> {
    let configured = ctx.config()?.and_then(|c| c.kubelet_cache_duration).unwrap_or(DEFAULT_CACHE_SECONDS);
    Ok(match Mode::from_username(&answer.username) {
        Some(Mode::Bearer) => answer.expires_at.map_or(0, |exp| half_of_remaining(exp, ctx.clock.now())),
        Some(Mode::Refresh) => configured.min(REFRESH_CACHE_SECONDS),
        Some(Mode::ApiKey) | None => configured,
    })
}

/// Half of what is left of a token's life: the kubelet then asks again while the token it holds
/// still has as long to live as it was cached for. What is left is never taken to be more than
/// an IAM token's longest life, so a token that claims to live for ever is cached for 30 minutes.
fn half_of_remaining(expires_at: u64, now: u64) -> u64 {
    expires_at.saturating_sub(now).min(iam::MAX_TOKEN_LIFETIME) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_of_an_image_follows_dockers_reference_grammar() {
        let cases = [
            ("us.icr.io/ns/img:tag", Some("us.icr.io")),
            ("us.icr.io/ns/img@sha256:0123abcd", Some("us.icr.io")),
            ("us.icr.io/ns/sub/img", Some("us.icr.io")),
            ("mirror.example.com:5000/ns/img", Some("mirror.example.com:5000")),
            ("localhost/img", Some("localhost")),
            ("nginx", None),
            ("nginx:1.25", None),
            ("library/nginx", None),
            ("us.icr.io", None),
            ("icr/img", None),
        ];
        for (image, registry) in cases {
            assert_eq!(registry_of(image), registry, "{image}");
        }
    }

    #[test]
    fn a_token_is_cached_for_half_its_remaining_life() {
        assert_eq!(half_of_remaining(1000 + 3600, 1000), 1800);
        assert_eq!(half_of_remaining(1000 + 61, 1000), 30);
        assert_eq!(half_of_remaining(1000, 2000), 0);
    }

    #[test]
    fn a_token_that_claims_to_live_for_ever_is_cached_for_half_an_hour() {
        assert_eq!(half_of_remaining(u64::MAX, 1000), 1800);
        assert_eq!(half_of_remaining(1000 + 7200, 1000), 1800);
    }
}
