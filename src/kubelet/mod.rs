//! `docker-credential-icr kubelet`: a kubelet image credential provider
//! (`credentialprovider.kubelet.k8s.io/v1` and `v1beta1`), so that a node pulls from ICR without
//! an image pull secret.
//!
//! The kubelet runs the plugin once per image it has no cached credential for, with a
//! `CredentialProviderRequest` on stdin, and reads a `CredentialProviderResponse` from stdout.
//! Its convention is not docker's: errors go to stderr with a non-zero exit and nothing on stdout
//! (the kubelet then pulls without credentials and logs the error), so `cli` hands this action
//! its streams before the docker protocol actions.
//!
//! Two paths to a credential:
//! - The request carries the pod's `serviceAccountToken` and a trusted profile is known (a
//!   service account annotation, the config file, `IBMCLOUD_CR_PROFILE`): the token is exchanged
//!   at IAM as a compute-resource token, and the pod pulls as its own service account with no key
//!   stored anywhere.
//! - Otherwise the node's own credentials, exactly as `get` finds them (`resolve::credentials`).
//!
//! `cacheDuration` never outlives the secret and is never absurd: a bearer token gets half of
//! what is left of its life, and never more than half of the longest life IAM gives a token
//! ([`iam::MAX_TOKEN_LIFETIME`]), whatever its `exp` or IAM's `expires_in` claim; a refresh
//! token (opaque, rotated by the CLI) a short fixed bound; an API key or a stored login the
//! configured `kubeletCacheDuration` (at most a year). A response without credentials says
//! `0s`, so that a fixed config takes effect on the next pull.

pub mod duration;
mod identity;
pub mod wire;

use std::collections::BTreeMap;
use std::io::{Read, Write};

use crate::config::KeySource;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::iam::{self, Grant, Profile};
use crate::jwt;
use crate::mode::Mode;
use crate::registry::{self, Registry};
use crate::resolve;
use crate::secret::Secret;
use crate::{protocol, source};
use wire::{AuthConfig, Request, Response};

/// The annotation that names the trusted profile of a service account's pods by id.
pub const PROFILE_ID_ANNOTATION: &str = "icr.ibm.com/trusted-profile-id";
/// The annotation that names the trusted profile of a service account's pods by name.
pub const PROFILE_NAME_ANNOTATION: &str = "icr.ibm.com/trusted-profile-name";

/// `kubeletCacheDuration` when the config file does not set it: an hour, as long as an IAM
/// token lives, so that a rotated API key reaches every node within the hour.
pub const DEFAULT_CACHE_SECONDS: u64 = 3600;
/// The longest a refresh token is cached: its expiry is not readable and the `ibmcloud` CLI
/// replaces it as it goes, so the kubelet asks again soon rather than hold an invalid one.
pub const REFRESH_CACHE_SECONDS: u64 = 600;
/// The longest `cacheDuration` of any response: what the config file may ask for an API key,
/// far inside Go's `time.Duration` (about 292 years).
pub const MAX_CACHE_SECONDS: u64 = duration::MAX_SECONDS;

/// Runs the action: the response on `stdout` and exit status 0, or one error line on stderr (via
/// the log) and exit status 1 with nothing on stdout.
pub fn serve(ctx: &Context, stdin: &mut dyn Read, stdout: &mut dyn Write) -> i32 {
    let result = read_request(stdin).and_then(|input| respond(ctx, &input));
    match result {
        Ok(line) => match stdout.write_all(line.as_bytes()).and_then(|()| stdout.flush()) {
            Ok(()) => 0,
            Err(e) => {
                ctx.log.error(format_args!("kubelet: cannot write the response to standard output: {e}"));
                1
            }
        },
        Err(e) => {
            ctx.log.error(format_args!("kubelet: {e}"));
            1
        }
    }
}

fn read_request(stdin: &mut dyn Read) -> Result<String> {
    protocol::read_limited(stdin, "the request", "a CredentialProviderRequest")
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
struct Answer {
    auth: Option<(String, String, Secret)>,
    cache_seconds: u64,
}

impl Answer {
    fn none() -> Answer {
        Answer { auth: None, cache_seconds: 0 }
    }
}

fn answer(ctx: &Context, request: &Request) -> Result<Answer> {
    let Some(host) = registry_of(&request.image) else {
        ctx.log.debug(format_args!("kubelet: image {} is on Docker Hub, not ICR", wire::printable(&request.image)));
        return Ok(Answer::none());
    };
    let registry = registry::parse_server_url(host)
        .map_err(|e| Error::input(format!("image `{}`: {e}", wire::printable(&request.image))))?;
    if !ctx.is_ours(&registry)? {
        ctx.log.debug(format_args!("kubelet: {registry} is not an ICR host and not named in the config file"));
        return Ok(Answer::none());
    }
    // The key the kubelet matches the image against: the registry as the image writes it, which
    // is also what the kubelet's own `Registry` cache key is made of.
    let key = host.to_owned();
    if let Some(token) = &request.service_account_token {
        if let Some((profile, from)) = profile(ctx, &registry, &request.service_account_annotations)? {
            ctx.log.debug(format_args!(
                "kubelet: {registry}: exchanging the pod's service account token for {profile} ({from})"
            ));
            return service_account_answer(ctx, key, token, profile);
        }
        ctx.log.debug(format_args!(
            "kubelet: {registry}: no trusted profile for service account tokens; using the node's credentials"
        ));
    }
    match resolve::credentials(ctx, &registry) {
        Ok(found) => {
            let cache_seconds = cache_seconds(ctx, &found.username, &found.secret)?;
            ctx.log.debug(format_args!(
                "kubelet: {registry}: {} from {}, cached for {}",
                found.username,
                found.origin,
                duration::format(cache_seconds)
            ));
            Ok(Answer { auth: Some((key, found.username, found.secret)), cache_seconds })
        }
        Err(Error::NotFound) => Ok(Answer::none()),
        Err(e) => Err(e),
    }
}

/// The registry part of an image reference, as docker's reference grammar reads it: the first
/// path component when it has a `.` or a `:` or is `localhost`. Anything else (`nginx`,
/// `library/nginx`) is on Docker Hub: `None`.
pub fn registry_of(image: &str) -> Option<&str> {
    let (first, _rest) = image.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// The trusted profile for the pod's service account, and where it was named: its annotation
/// (only annotations the kubelet's `CredentialProviderConfig` lists ever reach the plugin, so
/// listing them there is the permission to use them), the config file's entry for the registry,
/// `IBMCLOUD_CR_PROFILE`, the config file's default. `None`: use the node's credentials.
fn profile(
    ctx: &Context,
    registry: &Registry,
    annotations: &BTreeMap<String, String>,
) -> Result<Option<(Profile, String)>> {
    let annotated = |key: &str| annotations.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    match (annotated(PROFILE_ID_ANNOTATION), annotated(PROFILE_NAME_ANNOTATION)) {
        (Some(_), Some(_)) => {
            return Err(Error::failed(format!(
                "the service account has both {PROFILE_ID_ANNOTATION} and {PROFILE_NAME_ANNOTATION}: keep one"
            )))
        }
        (Some(id), None) => return Ok(Some((Profile::Id(id.to_owned()), PROFILE_ID_ANNOTATION.to_owned()))),
        (None, Some(name)) => return Ok(Some((Profile::Name(name.to_owned()), PROFILE_NAME_ANNOTATION.to_owned()))),
        (None, None) => {}
    }
    let config = ctx.config()?;
    if let Some((entry, credential)) = config.and_then(|c| c.resolve(registry).credential) {
        // The registry's own entry decides, whatever it holds: a key there means the node's key.
        return Ok(match credential {
            KeySource::TrustedProfile(tp) => Some((tp.profile.clone(), format!("config entry {entry}"))),
            _ => None,
        });
    }
    if let Some(value) = ctx.env.get("IBMCLOUD_CR_PROFILE") {
        return Ok(Some((source::profile_ref(value), "IBMCLOUD_CR_PROFILE".to_owned())));
    }
    Ok(match config.and_then(|c| c.default.credential.as_ref()) {
        Some(KeySource::TrustedProfile(tp)) => Some((tp.profile.clone(), "config default".to_owned())),
        _ => None,
    })
}

/// Exchanges the pod's service account token for a bearer token of `profile`.
fn service_account_answer(ctx: &Context, key: String, token: &Secret, profile: Profile) -> Result<Answer> {
    let endpoint = ctx.iam_endpoint()?;
    let grant = Grant::CrToken { cr_token: token.clone(), profile };
    let bearer = match identity::of(token.expose(), ctx.clock.now()) {
        Some(identity) => ctx.exchange.exchange_as(&endpoint, &grant, &identity)?,
        None => {
            ctx.log.debug(format_args!(
                "kubelet: the service account token names no unexpired service account; caching under the token itself"
            ));
            ctx.exchange.exchange(&endpoint, &grant)?
        }
    };
    let cache_seconds = half_of_remaining(bearer.expires_at, ctx.clock.now());
    Ok(Answer { auth: Some((key, Mode::Bearer.username().to_owned(), bearer.access)), cache_seconds })
}

/// How long the kubelet may cache a credential handed out under `username`.
fn cache_seconds(ctx: &Context, username: &str, secret: &Secret) -> Result<u64> {
    let configured = ctx.config()?.and_then(|c| c.kubelet_cache_duration).unwrap_or(DEFAULT_CACHE_SECONDS);
    Ok(match Mode::from_username(username) {
        // A token whose expiry cannot be read is not cached at all.
        Some(Mode::Bearer) => jwt::expiry(secret.expose()).map_or(0, |exp| half_of_remaining(exp, ctx.clock.now())),
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
