//! IAM's token operation, `POST /identity/token`, as strict as IAM is documented and as IBM's
//! SDK and CLI tests model it.
//!
//! What it refuses, and how (IAM's error body: `errorCode`, `errorMessage`, `errorDetails`,
//! `context` with `requestId` and the other fields IAM sends, as in a captured IAM answer):
//!
//! - another method: 405 `BXNIM0060E` (IAM's answer, captured); another path: 404;
//! - a body IAM cannot read as a form (another `Content-Type`, no `Content-Length`, a bad escape),
//!   a missing or empty property: 400 `BXNIM0109E` "Property missing or empty.", with
//!   `errorDetails` "Property '<name>' either missing or empty.";
//! - an unknown API key: 400 `BXNIM0415E` "Provided API key could not be found.";
//! - a refresh token it did not issue, or one presented without the client `bx` that it was
//!   issued to: 400 `BXNIM0407E`; one past its lifetime: 400 `BXNIM0408E`; one of a session that
//!   was ended: 400 `BXNIM0439E` (the codes the `ibmcloud` CLI's IAM client handles);
//! - a compute-resource token that is not a JWT signed by the trusted cluster issuer, not for
//!   the audience `iam`, expired or not yet valid: 400 `BXNIM0407E`, with why in `errorDetails`;
//! - a trusted profile named by `profile_id`, `profile_name` or `profile_crn` that does not exist,
//!   several of them naming different profiles (the same one twice is fine, as IBM's container
//!   authenticator notes), or a profile whose trust rules do not name the token's subject: 400
//!   with the fake's own code `BXNIM0487E` (IAM publishes none for these).
//!
//! `response_type` is recorded, not required (IAM answers `cloud_iam` by default); any other
//! grant type is refused with the fake's own `BXNIM0104E`, and an `Authorization` header other
//! than the client `bx` with the fake's own `BXNIM0488E` (IAM's `BXNIM0308E` means that there is
//! no authorization header at all).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::tokens::{self, check_compute_resource_token};
use crate::{
    decode_form, fnv64, json_str, unix_now, Request, Response, Shared, State, GRANT_APIKEY, GRANT_CR_TOKEN,
    GRANT_REFRESH_TOKEN, IMS_USER_ID, REFRESH_NOT_SUPPORTED, TOKEN_PATH,
};

/// Whom a token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Identity {
    ApiKey(String),
    /// A trusted profile, by id.
    Profile(String),
}

/// A refresh token the fake issued.
#[derive(Clone, Debug)]
pub(crate) struct Refresh {
    pub identity: Identity,
    pub expires_at: u64,
    /// The login session it belongs to; ending a session ends its refresh tokens.
    pub session: u64,
}

pub(crate) fn handle(shared: &Shared, req: &Request) -> Response {
    let path = req.target.split('?').next().unwrap_or("");
    if path != TOKEN_PATH {
        return Response::error(404, "BXNIM0101E", "The requested resource was not found");
    }
    if req.method != "POST" {
        let mut r = Response::error_with(
            405,
            "BXNIM0060E",
            "Web application exception 'javax.ws.rs.ClientErrorException' during request processing.",
            Some("HTTP 405 Method Not Allowed"),
        );
        r.headers.push(("Allow", "POST".into()));
        return r;
    }
    // IAM reads the form only from a body of a declared length in its own media type; any
    // other body reads as no form at all.
    let ct = req.header("content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let readable = ct == "application/x-www-form-urlencoded" && req.header("content-length").is_some();
    let form = readable
        .then(|| std::str::from_utf8(&req.body).ok().and_then(|b| decode_form(b).ok()))
        .flatten()
        .unwrap_or_default();
    let bx = match req.header("authorization") {
        None => false,
        Some(a) if is_bx_auth(a) => true,
        Some(_) => return Response::error(400, "BXNIM0488E", "Client ID or secret is not valid"),
    };
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let Some(grant) = field("grant_type") else {
        return missing("grant_type");
    };
    let now = unix_now();
    let mut st = shared.state();
    let (identity, session) = match grant {
        GRANT_APIKEY => {
            let Some(key) = field("apikey") else {
                return missing("apikey");
            };
            if !(st.any_apikey || st.api_keys.contains(key)) {
                return Response::error(400, "BXNIM0415E", "Provided API key could not be found.");
            }
            (Identity::ApiKey(key.to_string()), None)
        }
        GRANT_CR_TOKEN => {
            let Some(cr) = field("cr_token") else {
                return missing("cr_token");
            };
            match trusted_profile(&st, cr, field("profile_id"), field("profile_name"), field("profile_crn"), now) {
                Ok(id) => (Identity::Profile(id), None),
                Err(response) => return response,
            }
        }
        GRANT_REFRESH_TOKEN => {
            let Some(rt) = field("refresh_token") else {
                return missing("refresh_token");
            };
            let refresh = match st.refresh_tokens.get(rt) {
                Some(refresh) if bx => refresh.clone(),
                Some(_) => {
                    return Response::error(400, "BXNIM0407E", "The refresh token was not issued to this client.")
                }
                None => return Response::error(400, "BXNIM0407E", "Provided refresh token is invalid."),
            };
            if st.ended_sessions.contains(&refresh.session) {
                return Response::error(400, "BXNIM0439E", "The session is not active.");
            }
            if refresh.expires_at <= now {
                return Response::error(400, "BXNIM0408E", "Provided refresh token is expired.");
            }
            (refresh.identity, Some(refresh.session))
        }
        _ => return Response::error(400, "BXNIM0104E", &format!("Unsupported grant_type: {grant}")),
    };
    let (access, exp, lifetime) = mint(shared, &mut st, &identity, bx, now);
    let refresh = if bx {
        let n = shared.token_seq.load(std::sync::atomic::Ordering::SeqCst);
        let rt = format!("fake-refresh.{n}.{}", crate::base64url(&n.to_be_bytes()));
        let session = session.unwrap_or(n);
        let expires_at = now + st.refresh_lifetime;
        st.refresh_tokens.insert(rt.clone(), Refresh { identity, expires_at, session });
        rt
    } else {
        REFRESH_NOT_SUPPORTED.to_string()
    };
    drop(st);
    Response::json(
        200,
        format!(
            "{{\"access_token\":{},\"refresh_token\":{},\"ims_user_id\":{IMS_USER_ID},\"token_type\":\"Bearer\",\"expires_in\":{lifetime},\"expiration\":{exp},\"scope\":\"ibm openid\"}}",
            json_str(&access),
            json_str(&refresh),
        ),
    )
}

/// Issues an access token for `identity` (recorded, so that [`crate::FakeIam::validate`] knows
/// it): the token, its expiry and its lifetime.
pub(crate) fn mint(shared: &Shared, st: &mut State, identity: &Identity, bx: bool, now: u64) -> (String, u64, u64) {
    let lifetime = st.lifetime;
    let n = shared.token_seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let exp = now + lifetime;
    let (sub, iam_id, sub_type, grant) = match identity {
        Identity::ApiKey(k) => {
            (tokens::apikey_subject(k), format!("iam-ServiceId-{:016x}", fnv64(k)), "ServiceId", GRANT_APIKEY)
        }
        Identity::Profile(id) => (format!("profile:{id}"), format!("iam-{id}"), "Profile", GRANT_CR_TOKEN),
    };
    let access = tokens::access_token(&sub, &iam_id, sub_type, grant, n, now, exp, bx);
    st.access_tokens.insert(access.clone(), (identity.clone(), exp));
    (access, exp, lifetime)
}

/// The profile a cr-token request names, when the token is good and the profile trusts it.
fn trusted_profile(
    st: &State,
    cr_token: &str,
    id: Option<&str>,
    name: Option<&str>,
    crn: Option<&str>,
    now: u64,
) -> Result<String, Response> {
    if id.is_none() && name.is_none() && crn.is_none() {
        return Err(Response::error_with(
            400,
            "BXNIM0109E",
            "Property missing or empty.",
            Some("Property 'profile_id', 'profile_name' or 'profile_crn' either missing or empty."),
        ));
    }
    let not_found = || Response::error(400, "BXNIM0487E", "The trusted profile could not be found.");
    let mut named: Vec<&crate::Profile> = Vec::new();
    for (given, matches) in [
        (id, (|p: &crate::Profile, v: &str| p.id == v) as fn(&crate::Profile, &str) -> bool),
        (name, |p, v| p.name == v),
        (crn, |p, v| p.crn == v),
    ] {
        if let Some(value) = given {
            named.push(st.profiles.iter().find(|p| matches(p, value)).ok_or_else(not_found)?);
        }
    }
    let profile = named[0];
    if named.iter().any(|p| p.id != profile.id) {
        return Err(Response::error(
            400,
            "BXNIM0487E",
            "The profile_id, profile_name and profile_crn name different profiles.",
        ));
    }
    let subject = check_compute_resource_token(cr_token, now)
        .map_err(|why| Response::error_with(400, "BXNIM0407E", "Provided token is invalid.", Some(why)))?;
    if !profile.trusts.contains(&subject) {
        return Err(Response::error(400, "BXNIM0487E", "The compute resource is not trusted by the trusted profile."));
    }
    Ok(profile.id.clone())
}

fn missing(name: &str) -> Response {
    Response::error_with(
        400,
        "BXNIM0109E",
        "Property missing or empty.",
        Some(&format!("Property '{name}' either missing or empty.")),
    )
}

pub(crate) fn is_bx_auth(value: &str) -> bool {
    match value.trim().split_once(' ') {
        Some((scheme, cred)) => scheme.eq_ignore_ascii_case("basic") && matches!(cred.trim(), "Yng6Yng=" | "Yng6Yng"),
        None => false,
    }
}

/// IAM's error body, as IAM sends it: `errorCode`, `errorMessage`, `errorDetails` when there
/// are details, and a `context` with a fresh `requestId`.
pub fn error_body(code: &str, message: &str, details: Option<&str>) -> String {
    let details = details.map(|d| format!(",\"errorDetails\":{}", json_str(d))).unwrap_or_default();
    format!(
        "{{\"errorCode\":{},\"errorMessage\":{}{details},\"context\":{{\"requestId\":\"{}\",\"requestType\":\"incoming.Identity_Token\",\"userAgent\":\"\",\"url\":\"https://iam.cloud.ibm.com\",\"instanceId\":\"fake-iam\",\"threadId\":\"1\",\"host\":\"fake-iam\",\"startTime\":\"\",\"endTime\":\"\",\"elapsedTime\":\"0\",\"locale\":\"en_US\",\"clusterName\":\"fake-iam\"}}}}",
        json_str(code),
        json_str(message),
        request_id()
    )
}

/// A request id shaped like IAM's (`djZmMjg-9ff452dfe4d64789894538ca065712d1`).
pub(crate) fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let (a, b) = (fnv64(&format!("{t}:{n}")), fnv64(&format!("{n}:{t}")));
    format!("fakeIAM-{a:016x}{b:016x}")
}
