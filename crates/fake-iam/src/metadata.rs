//! The VPC instance metadata service's identity operations, as IBM documents them
//! (cloud.ibm.com/docs/vpc?topic=vpc-imd-configure-service, vpc-instance-metadata-error-codes)
//! and as IBM/go-sdk-core's `vpc_instance_authenticator.go` calls them:
//!
//! - `PUT /instance_identity/v1/token?version=<date>` with `Metadata-Flavor: ibm` and a JSON
//!   body `{"expires_in": <5..3600>}` (default 300) → `{"access_token", "created_at",
//!   "expires_at", "expires_in"}`: the instance identity token;
//! - `POST /instance_identity/v1/iam_token?version=<date>` with `Metadata-Flavor: ibm`,
//!   `Authorization: Bearer <instance identity token>` and no body (the instance's default
//!   trusted profile) or `{"trusted_profile": {"id": …}}` or `{"trusted_profile": {"crn": …}}`
//!   → the same shape, whose `access_token` is an IAM access token of that profile.
//!
//! Refused, with the service's error body (`errors[]` of `code`, `message`, `target`;
//! `status_code`; `trace`): another path (404) or method (405); a missing or malformed
//! `version`, or a date before 2022-03-01 (the first with identity tokens) or after today
//! (400); no `Metadata-Flavor: ibm` (400); a body that is not JSON or holds fields the operation
//! does not take, or an `expires_in` outside 5..3600 (400 `invalid_value`, the documented one);
//! an identity token it did not issue or that has expired (401); a profile that is not linked
//! to the instance, or no profile when the instance has no default (400). Only `invalid_value`
//! is a documented code; the others are named for what they refuse.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use crate::iam::{self, Identity};
use crate::{fnv64, json_str, unix_now, Behavior, Config, FakeIam, Kind, Request, Response, Shared};

/// The first `version` date of the API that has instance identity tokens.
pub const METADATA_VERSION_MIN: &str = "2022-03-01";
/// The instance identity token's lifetime when the request names none.
const DEFAULT_IDENTITY_LIFETIME: u64 = 300;

/// What the instance is: which trusted profiles are linked to it, and its default one.
#[derive(Clone, Debug, Default)]
pub struct MetadataConfig {
    port: u16,
    linked: Vec<String>,
    default_profile: Option<String>,
    script: Vec<Behavior>,
}

impl MetadataConfig {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Links the trusted profile `id` (one the IAM beside it knows) to the instance.
    pub fn linked(mut self, id: impl Into<String>) -> Self {
        self.linked.push(id.into());
        self
    }

    /// Links the trusted profile `id` and makes it the instance's default profile.
    pub fn default_profile(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        self.linked.push(id.clone());
        self.default_profile = Some(id);
        self
    }

    /// Append one behaviour to the script (see [`Behavior`]).
    pub fn behavior(mut self, b: Behavior) -> Self {
        self.script.push(b);
        self
    }
}

pub(crate) struct Instance {
    linked: Vec<String>,
    default_profile: Option<String>,
    /// The identity tokens issued, with their expiry.
    identity_tokens: HashMap<String, u64>,
    issued: u64,
}

/// A running metadata service beside a [`FakeIam`]: the same request log and counters
/// (through `Deref`), its own address.
pub struct FakeMetadata {
    server: FakeIam,
}

impl FakeMetadata {
    /// Starts on `127.0.0.1`, minting IAM tokens at `iam`.
    pub fn start(iam: &FakeIam, config: MetadataConfig) -> FakeMetadata {
        let instance = Instance {
            linked: config.linked,
            default_profile: config.default_profile,
            identity_tokens: HashMap::new(),
            issued: 0,
        };
        let kind = Kind::Metadata { iam: Arc::clone(&iam.shared), instance: Mutex::new(instance) };
        let server = FakeIam::serve(Config::new().port(config.port).script(config.script), kind)
            .expect("fake metadata service: cannot bind 127.0.0.1");
        FakeMetadata { server }
    }

    /// Makes every instance identity token issued so far expired.
    pub fn expire_identity_tokens(&self) {
        if let Kind::Metadata { instance, .. } = &self.server.shared.kind {
            for exp in instance.lock().unwrap_or_else(|e| e.into_inner()).identity_tokens.values_mut() {
                *exp = 0;
            }
        }
    }
}

impl Deref for FakeMetadata {
    type Target = FakeIam;

    fn deref(&self) -> &FakeIam {
        &self.server
    }
}

pub(crate) fn handle(iam: &Arc<Shared>, instance: &Mutex<Instance>, req: &Request) -> Response {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let method = match path {
        "/instance_identity/v1/token" => "PUT",
        "/instance_identity/v1/iam_token" => "POST",
        _ => return error(404, "not_found", "The requested resource was not found."),
    };
    if req.method != method {
        let mut r = error(405, "method_not_allowed", &format!("The operation takes {method}."));
        r.headers.push(("Allow", method.into()));
        return r;
    }
    let version = query.split('&').find_map(|pair| pair.strip_prefix("version="));
    let today = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix_now())).to_string();
    match version {
        None => return error(400, "missing_version", "The `version` query parameter is required."),
        Some(v) if !is_date(v) => return invalid("version", "The `version` must be a date, YYYY-MM-DD."),
        Some(v) if v < METADATA_VERSION_MIN || v > &today[..10] => {
            return invalid("version", "The `version` must be a date from 2022-03-01 to today.")
        }
        Some(_) => {}
    }
    if req.header("metadata-flavor") != Some("ibm") {
        return error(400, "missing_metadata_flavor", "The `Metadata-Flavor: ibm` header is required.");
    }
    let body = match std::str::from_utf8(&req.body).map(str::trim) {
        Ok("") => None,
        Ok(text) => {
            let ct =
                req.header("content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if ct != "application/json" {
                return error(415, "unsupported_media_type", "The body must be application/json.");
            }
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                _ => return invalid("body", "The body must be a JSON object."),
            }
        }
        Err(_) => return invalid("body", "The body must be a JSON object."),
    };
    let now = unix_now();
    let mut instance = instance.lock().unwrap_or_else(|e| e.into_inner());
    if method == "PUT" {
        let body = body.unwrap_or_default();
        if let Some(field) = body.keys().find(|k| *k != "expires_in") {
            return invalid(field, "The operation does not take this field.");
        }
        let lifetime = match body.get("expires_in") {
            None => DEFAULT_IDENTITY_LIFETIME,
            Some(v) => match v.as_u64() {
                Some(n) if (5..=3600).contains(&n) => n,
                _ => {
                    return invalid(
                        "expires_in",
                        "The value provided for the `expires_in` field must be between 5 and 3600.",
                    )
                }
            },
        };
        instance.issued += 1;
        let token = identity_token(instance.issued, now);
        instance.identity_tokens.insert(token.clone(), now + lifetime);
        return token_answer(&token, now, lifetime);
    }
    let identity = req.header("authorization").and_then(|a| a.strip_prefix("Bearer "));
    match identity.and_then(|t| instance.identity_tokens.get(t)) {
        Some(exp) if *exp > now => {}
        Some(_) => return error(401, "token_expired", "The instance identity token has expired."),
        None => return error(401, "not_authorized", "An instance identity token is required as the bearer."),
    }
    let profiles = iam.state().profiles.clone();
    let profile = match body {
        None => match &instance.default_profile {
            Some(id) => id.clone(),
            None => return invalid("trusted_profile", "The instance has no default trusted profile: name one."),
        },
        Some(body) => {
            if let Some(field) = body.keys().find(|k| *k != "trusted_profile") {
                return invalid(field, "The operation does not take this field.");
            }
            let named = body.get("trusted_profile").and_then(|p| p.as_object());
            let id = match named
                .map(|p| (p.len(), p.get("id").and_then(|v| v.as_str()), p.get("crn").and_then(|v| v.as_str())))
            {
                Some((1, Some(id), None)) => profiles.iter().find(|p| p.id == id),
                Some((1, None, Some(crn))) => profiles.iter().find(|p| p.crn == crn),
                _ => return invalid("trusted_profile", "Name the trusted profile by exactly one of `id` and `crn`."),
            };
            match id {
                Some(p) => p.id.clone(),
                None => return invalid("trusted_profile", "The trusted profile does not exist."),
            }
        }
    };
    if !instance.linked.contains(&profile) {
        return invalid("trusted_profile", "The trusted profile is not linked to this instance.");
    }
    drop(instance);
    let mut st = iam.state();
    let (access, _exp, lifetime) = iam::mint(iam, &mut st, &Identity::Profile(profile), false, now);
    drop(st);
    token_answer(&access, now, lifetime)
}

fn token_answer(token: &str, now: u64, lifetime: u64) -> Response {
    let at = |t: u64| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string();
    Response::json(
        200,
        format!(
            "{{\"access_token\":{},\"created_at\":\"{}\",\"expires_at\":\"{}\",\"expires_in\":{lifetime}}}",
            json_str(token),
            at(now),
            at(now + lifetime)
        ),
    )
}

/// An instance identity token: a JWT-shaped string the service takes back.
fn identity_token(n: u64, now: u64) -> String {
    let claims = format!(
        "{{\"sub\":\"crn:v1:bluemix:public:is:us-south-1:a/{}::instance:0717-fake\",\"iat\":{now},\"jti\":\"{n}\"}}",
        crate::ACCOUNT
    );
    format!(
        "{}.{}.{}",
        crate::base64url(br#"{"alg":"RS256","typ":"JWT","kid":"fake-metadata"}"#),
        crate::base64url(claims.as_bytes()),
        crate::base64url(&fnv64(&format!("{n}:{now}")).to_be_bytes())
    )
}

fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&text[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&text[8..10].parse::<u8>().unwrap_or(0))
}

fn invalid(field: &str, message: &str) -> Response {
    error_target(400, "invalid_value", message, Some(field))
}

/// The service's error body.
pub(crate) fn error(status: u16, code: &str, message: &str) -> Response {
    error_target(status, code, message, None)
}

fn error_target(status: u16, code: &str, message: &str, target: Option<&str>) -> Response {
    let target = target
        .map(|name| format!(",\"target\":{{\"name\":{},\"type\":\"field\"}}", json_str(name)))
        .unwrap_or_default();
    let trace = {
        let r = iam::request_id();
        let h = fnv64(&r);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            (h >> 4) & 0xfff,
            h & 0xffff_ffff_ffff
        )
    };
    Response::json(
        status,
        format!(
            "{{\"errors\":[{{\"code\":{},\"message\":{},\"more_info\":\"https://cloud.ibm.com/docs/vpc?topic=vpc-instance-metadata-error-codes\"{target}}}],\"status_code\":{status},\"trace\":\"{trace}\"}}",
            json_str(code),
            json_str(message)
        ),
    )
}
