//! What the helper sends to IAM and to the VPC instance metadata service, field for field as
//! IBM's own clients send it, and how their answers are read. The models are IBM/go-sdk-core's
//! `iam_authenticator.go` (API key, refresh token), `container_authenticator.go` (compute-resource
//! token) and `vpc_instance_authenticator.go` (instance identity), and the `ibmcloud` CLI's IAM
//! client (IBM-Cloud/ibm-cloud-cli-sdk `bluemix/authentication/iam`: client `bx`,
//! `response_type=cloud_iam`, `profile_crn`).
//!
//! Only the shape is here; [`super::http`] carries a [`Call`] over the network.

use super::endpoint::Endpoint;
use super::exchange::{Grant, Profile, Token, MAX_TOKEN_LIFETIME};
use super::problem;
use crate::error::{Error, Result};
use crate::jwt;
use crate::secret::Secret;

pub const GRANT_APIKEY: &str = "urn:ibm:params:oauth:grant-type:apikey";
pub const GRANT_CR_TOKEN: &str = "urn:ibm:params:oauth:grant-type:cr-token";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// Sent with every token request, as the CLI does when no other response type is asked for.
const RESPONSE_TYPE: (&str, &str) = ("response_type", "cloud_iam");
/// `bx:bx`, the client id the `ibmcloud` CLI uses; IAM issues refresh tokens to it, and takes
/// them back only from it.
const BX_CLIENT: &str = "Basic Yng6Yng=";

/// The metadata service's API version, as IBM's SDK sends it for the `/instance_identity/v1`
/// operations (`vpcauthMetadataServiceVersion`; the earliest date that has identity tokens).
pub const METADATA_VERSION: &str = "2022-03-01";
/// How long the instance identity token is asked for: it is used once, at once (the SDK's 300).
const IDENTITY_TOKEN_LIFETIME: u64 = 300;
/// The header the metadata service requires of every request.
const METADATA_FLAVOR: (&str, &str) = ("Metadata-Flavor", "ibm");

/// Whom a call goes to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iam,
    Metadata,
}

impl Service {
    /// Who exchanges `grant`: the metadata service an instance identity, IAM the rest.
    pub fn of(grant: &Grant) -> Service {
        match grant {
            Grant::Instance { .. } => Service::Metadata,
            _ => Service::Iam,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Iam => "IAM",
            Service::Metadata => "the VPC metadata service",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
}

pub enum Payload {
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(&'static str, String)>),
    /// `application/json`.
    Json(String),
    /// No body, `Content-Type: application/json` all the same (as the SDK sends `iam_token`
    /// without a profile).
    None,
}

/// One request. It holds secrets (a key, a token) as they go on the wire, so it is neither
/// `Debug` nor `Clone`.
pub struct Call {
    pub service: Service,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload,
    /// What is asked for, for the line that reports a refusal: "the API key", …
    pub what: &'static str,
}

impl Call {
    /// Every value the request carries, for the check that an answer does not echo one.
    fn sent(&self) -> Vec<&str> {
        let mut sent: Vec<&str> = self.headers.iter().map(|(_, v)| v.as_str()).collect();
        match &self.payload {
            Payload::Form(form) => sent.extend(form.iter().map(|(_, v)| v.as_str())),
            Payload::Json(json) => sent.push(json),
            Payload::None => {}
        }
        sent
    }
}

/// `POST <endpoint>/identity/token` for an IAM grant.
pub fn token(endpoint: &Endpoint, grant: &Grant) -> Call {
    let mut headers = vec![("Accept", "application/json".to_owned())];
    let mut form = Vec::new();
    let what = match grant {
        Grant::ApiKey { apikey, refresh } => {
            if *refresh {
                headers.push(("Authorization", BX_CLIENT.to_owned()));
            }
            form.push(("grant_type", GRANT_APIKEY.to_owned()));
            form.push(("apikey", apikey.expose().to_owned()));
            "the API key"
        }
        Grant::CrToken { cr_token, profile } => {
            form.push(("grant_type", GRANT_CR_TOKEN.to_owned()));
            form.push(("cr_token", cr_token.expose().to_owned()));
            form.push(match profile {
                Profile::Id(id) => ("profile_id", id.clone()),
                Profile::Name(name) => ("profile_name", name.clone()),
                Profile::Crn(crn) => ("profile_crn", crn.clone()),
            });
            "the compute-resource token"
        }
        Grant::RefreshToken { refresh_token } => {
            headers.push(("Authorization", BX_CLIENT.to_owned()));
            form.push(("grant_type", GRANT_REFRESH_TOKEN.to_owned()));
            form.push(("refresh_token", refresh_token.expose().to_owned()));
            "the refresh token"
        }
        Grant::Instance { .. } => unreachable!("an instance identity is exchanged at the metadata service"),
    };
    form.push((RESPONSE_TYPE.0, RESPONSE_TYPE.1.to_owned()));
    Call {
        service: Service::Iam,
        method: Method::Post,
        url: endpoint.token_url(),
        headers,
        payload: Payload::Form(form),
        what,
    }
}

/// `PUT <metadata>/instance_identity/v1/token?version=…` with `{"expires_in": 300}`: the
/// instance identity token.
pub fn identity_token(endpoint: &Endpoint) -> Call {
    Call {
        service: Service::Metadata,
        method: Method::Put,
        url: endpoint.join(&format!("/instance_identity/v1/token?version={METADATA_VERSION}")),
        headers: vec![("Accept", "application/json".to_owned()), (METADATA_FLAVOR.0, METADATA_FLAVOR.1.to_owned())],
        payload: Payload::Json(format!("{{\"expires_in\": {IDENTITY_TOKEN_LIFETIME}}}")),
        what: "an instance identity token",
    }
}

/// `POST <metadata>/instance_identity/v1/iam_token?version=…` with the identity token as the
/// bearer, and the trusted profile in the body (none: the instance's default profile).
pub fn instance_iam_token(endpoint: &Endpoint, identity: &Secret, profile: Option<&Profile>) -> Call {
    let payload = match profile {
        None => Payload::None,
        Some(Profile::Id(id)) => Payload::Json(serde_json::json!({ "trusted_profile": { "id": id } }).to_string()),
        Some(Profile::Crn(crn)) => Payload::Json(serde_json::json!({ "trusted_profile": { "crn": crn } }).to_string()),
        Some(Profile::Name(_)) => unreachable!("the metadata service takes no profile names"),
    };
    Call {
        service: Service::Metadata,
        method: Method::Post,
        url: endpoint.join(&format!("/instance_identity/v1/iam_token?version={METADATA_VERSION}")),
        headers: vec![
            ("Accept", "application/json".to_owned()),
            (METADATA_FLAVOR.0, METADATA_FLAVOR.1.to_owned()),
            ("Authorization", format!("Bearer {}", identity.expose())),
        ],
        payload,
        what: "an IAM token for the instance's identity",
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    expiration: Option<u64>,
    /// The metadata service's RFC 3339 expiry; required there, and only checked for.
    expires_at: Option<String>,
}

/// IAM's answer to a token request sent at `now` (Unix seconds).
pub fn parse_token(endpoint: &Endpoint, body: &str, now: u64, grant: &Grant) -> Result<Token> {
    let malformed = |what: &str| {
        Error::failed(format!("IAM at {endpoint} answered 200 with {what}: is the endpoint an IAM server?"))
    };
    let response: TokenResponse =
        serde_json::from_str(body).map_err(|_| malformed("a body that is not a token response"))?;
    if response.expires_in.is_none() && response.expiration.is_none() {
        return Err(malformed("neither expires_in nor expiration"));
    }
    let refresh = response
        .refresh_token
        .clone()
        .filter(|r| !r.is_empty() && r != "not_supported" && matches!(grant, Grant::ApiKey { refresh: true, .. }))
        .map(Secret::new);
    let access =
        response.access_token.clone().filter(|t| !t.trim().is_empty()).ok_or_else(|| malformed("no access_token"))?;
    let expires_at = expiry(&access, &response, now);
    alive(Service::Iam, endpoint, Token { access: Secret::new(access), refresh, issued_at: now, expires_at })
}

/// The metadata service's answer (`access_token`, `created_at`, `expires_at`, `expires_in`,
/// as both operations answer): the token it holds, issued at `now`.
pub fn parse_metadata_token(endpoint: &Endpoint, body: &str, now: u64) -> Result<Token> {
    let malformed = |what: &str| {
        Error::failed(format!(
            "the VPC metadata service at {endpoint} answered with {what}: is the URL the metadata service?"
        ))
    };
    let response: TokenResponse = serde_json::from_str(body).map_err(|_| malformed("a body that is not a token"))?;
    let access =
        response.access_token.clone().filter(|t| !t.trim().is_empty()).ok_or_else(|| malformed("no access_token"))?;
    if response.expires_in.is_none() || response.expires_at.is_none() {
        return Err(malformed("no expires_in or expires_at"));
    }
    let expires_at = expiry(&access, &response, now);
    alive(Service::Metadata, endpoint, Token { access: Secret::new(access), refresh: None, issued_at: now, expires_at })
}

/// When a token issued at `now` expires. The local clock decides: `expires_in` counted from when
/// the request was sent is immune to skew between this host and the service. `expiration` and
/// the token's own `exp` (the service's clock) can only shorten that, never lengthen it, and
/// nothing lives longer than IAM lets a token live: an answer that claims otherwise buys at most
/// an hour.
fn expiry(access: &str, response: &TokenResponse, now: u64) -> u64 {
    [response.expires_in.map(|seconds| now.saturating_add(seconds)), response.expiration, jwt::expiry(access)]
        .into_iter()
        .flatten()
        .fold(now.saturating_add(MAX_TOKEN_LIFETIME), u64::min)
}

fn alive(service: Service, endpoint: &Endpoint, token: Token) -> Result<Token> {
    if token.expires_at <= token.issued_at {
        return Err(dead_on_arrival(service, endpoint));
    }
    Ok(token)
}

/// The line for a token that had expired by the time it arrived.
pub fn dead_on_arrival(service: Service, endpoint: &Endpoint) -> Error {
    Error::failed(format!(
        "{} at {endpoint} answered with a token that had already expired when it arrived: check the network and this machine's clock",
        capitalised(service.name())
    ))
}

/// The line for a refusal: who refused what, the code and request id the answer carries
/// (`problem`), and what to do.
pub fn refusal(call: &Call, endpoint: &Endpoint, status: u16, body: &str) -> Error {
    let described = problem::describe(status, body, &call.sent());
    match call.service {
        Service::Iam => {
            let hint = match (status, call.what) {
                (400 | 401 | 403, "the refresh token") => {
                    ": log in again (`ibmcloud login`), or set a new IBMCLOUD_IAM_REFRESH_TOKEN"
                }
                (400 | 401 | 403, "the compute-resource token") => {
                    ": check the token (for the audience iam, not expired) and the trusted profile and its trust rules"
                }
                (400 | 401 | 403, _) => ": check the key or profile, or create a new one",
                (429, _) => ": IAM is rate-limiting; try again shortly",
                _ => "",
            };
            Error::failed(format!("IAM at {endpoint} refused {} {described}{hint}", call.what))
        }
        Service::Metadata => {
            let hint = match status {
                401 | 403 => ": check that a trusted profile is linked to this instance and trusts it",
                404 => ": is the metadata service enabled for this instance?",
                _ => "",
            };
            Error::failed(format!("the VPC metadata service at {endpoint} refused {} {described}{hint}", call.what))
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(call: &Call) -> Vec<(&str, &str)> {
        match &call.payload {
            Payload::Form(form) => form.iter().map(|(k, v)| (*k, v.as_str())).collect(),
            _ => panic!("not a form"),
        }
    }

    #[test]
    fn every_token_request_asks_for_cloud_iam_and_the_refresh_grant_speaks_as_bx() {
        let endpoint = Endpoint::parse("https://iam.example/identity/token").unwrap();
        let refresh = token(&endpoint, &Grant::RefreshToken { refresh_token: Secret::new("rt") });
        assert_eq!(refresh.url, "https://iam.example/identity/token");
        assert_eq!(
            form(&refresh),
            [("grant_type", "refresh_token"), ("refresh_token", "rt"), ("response_type", "cloud_iam")]
        );
        assert!(refresh.headers.contains(&("Authorization", "Basic Yng6Yng=".to_owned())));
        let key = token(&endpoint, &Grant::ApiKey { apikey: Secret::new("k"), refresh: false });
        assert_eq!(form(&key), [("grant_type", GRANT_APIKEY), ("apikey", "k"), ("response_type", "cloud_iam")]);
        assert!(!key.headers.iter().any(|(name, _)| *name == "Authorization"));
        let crn = "crn:v1:bluemix:public:iam-identity::a/1::profile:Profile-2";
        let cr = token(&endpoint, &Grant::CrToken { cr_token: Secret::new("t"), profile: Profile::Crn(crn.into()) });
        assert_eq!(
            form(&cr),
            [("grant_type", GRANT_CR_TOKEN), ("cr_token", "t"), ("profile_crn", crn), ("response_type", "cloud_iam")]
        );
    }

    #[test]
    fn the_metadata_calls_are_the_sdks() {
        let endpoint = Endpoint::metadata_default();
        let put = identity_token(&endpoint);
        assert_eq!(
            (put.method, put.url.as_str()),
            (Method::Put, "http://169.254.169.254/instance_identity/v1/token?version=2022-03-01")
        );
        assert!(matches!(&put.payload, Payload::Json(body) if body == "{\"expires_in\": 300}"));
        assert!(put.headers.contains(&("Metadata-Flavor", "ibm".to_owned())));
        let identity = Secret::new("iit");
        let post = instance_iam_token(&endpoint, &identity, None);
        assert_eq!(post.url, "http://169.254.169.254/instance_identity/v1/iam_token?version=2022-03-01");
        assert!(matches!(post.payload, Payload::None));
        assert!(post.headers.contains(&("Authorization", "Bearer iit".to_owned())));
        let by_id = instance_iam_token(&endpoint, &identity, Some(&Profile::Id("Profile-1".into())));
        assert!(matches!(&by_id.payload, Payload::Json(b) if b == r#"{"trusted_profile":{"id":"Profile-1"}}"#));
        let by_crn = instance_iam_token(&endpoint, &identity, Some(&Profile::Crn("crn:v1:x".into())));
        assert!(matches!(&by_crn.payload, Payload::Json(b) if b == r#"{"trusted_profile":{"crn":"crn:v1:x"}}"#));
    }

    #[test]
    fn a_metadata_token_needs_its_expiry_and_never_lives_past_an_hour() {
        let endpoint = Endpoint::metadata_default();
        let body = r#"{"access_token":"a","created_at":"2026-12-01T10:00:00Z","expires_at":"2026-12-01T10:05:00Z","expires_in":300}"#;
        let token = parse_metadata_token(&endpoint, body, 1000).unwrap();
        assert_eq!((token.issued_at, token.expires_at, token.refresh), (1000, 1300, None));
        let long = r#"{"access_token":"a","created_at":"x","expires_at":"y","expires_in":999999}"#;
        assert_eq!(parse_metadata_token(&endpoint, long, 1000).unwrap().expires_at, 4600);
        for bad in [
            "",
            "{}",
            r#"{"access_token":"a","expires_in":300}"#,
            r#"{"access_token":"","expires_at":"y","expires_in":3}"#,
            r#"{"access_token":"a","expires_at":"y","expires_in":0}"#,
        ] {
            assert!(parse_metadata_token(&endpoint, bad, 1000).is_err(), "{bad}");
        }
    }

    #[test]
    fn iam_errors_name_code_meaning_and_request_id_but_never_the_key() {
        let endpoint = Endpoint::parse("https://iam.example").unwrap();
        let call = token(&endpoint, &Grant::ApiKey { apikey: Secret::new("sekrit-key-123"), refresh: false });
        let body = r#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found: SEKRIT-KEY-12","context":{"requestId":"req-1"}}"#;
        let line = refusal(&call, &endpoint, 400, body).to_string();
        assert_eq!(
            line,
            "IAM at https://iam.example refused the API key (HTTP 400, BXNIM0415E): Provided API key could not be found (request id req-1): check the key or profile, or create a new one"
        );
    }

    #[test]
    fn token_expiry_counts_from_the_local_clock() {
        let endpoint = Endpoint::parse("https://iam.example").unwrap();
        let grant = Grant::ApiKey { apikey: Secret::new("k"), refresh: false };
        let body = r#"{"access_token":"a","refresh_token":"not_supported","token_type":"Bearer","expires_in":3600,"expiration":5000}"#;
        let token = parse_token(&endpoint, body, 1000, &grant).unwrap();
        assert_eq!((token.issued_at, token.expires_at, token.refresh), (1000, 4600, None));
        // IAM's clock ahead of this one: `expiration` a little short, and it wins.
        let body = r#"{"access_token":"a","expires_in":3600,"expiration":4500}"#;
        assert_eq!(parse_token(&endpoint, body, 1000, &grant).unwrap().expires_at, 4500);
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"access_token":""}"#,
            r#"{"access_token":"a"}"#,
            r#"{"access_token":"a","expiration":5}"#,
            r#"{"access_token":"a","expires_in":3600,"expiration":999}"#,
            r#"{"access_token":"a","expires_in":0}"#,
        ] {
            assert!(parse_token(&endpoint, bad, 1000, &grant).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_answer_makes_a_token_live_longer_than_an_hour() {
        let endpoint = Endpoint::parse("https://iam.example").unwrap();
        let grant = Grant::ApiKey { apikey: Secret::new("k"), refresh: false };
        for body in [
            r#"{"access_token":"a","expires_in":9223372036854775808}"#.to_owned(),
            r#"{"access_token":"a","expires_in":18446744073709551615}"#.to_owned(),
            r#"{"access_token":"a","expiration":18446744073709551615}"#.to_owned(),
            format!(r#"{{"access_token":"{}","expires_in":86400}}"#, crate::jwt::make(r#"{"exp":99999999999}"#)),
        ] {
            assert_eq!(parse_token(&endpoint, &body, 1000, &grant).unwrap().expires_at, 4600, "{body}");
        }
        // The token's own `exp` shortens what IAM said.
        let body = format!(r#"{{"access_token":"{}","expires_in":3600}}"#, crate::jwt::make(r#"{"exp":2000}"#));
        assert_eq!(parse_token(&endpoint, &body, 1000, &grant).unwrap().expires_at, 2000);
    }
}
