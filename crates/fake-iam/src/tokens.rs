//! The tokens the stand-ins issue and check.
//!
//! - IAM access tokens: JWTs shaped like IAM's (`iam_id`, `sub`, `sub_type`, `iat`, `exp`,
//!   `grant_type`, `client_id`, …) under an `RS256` header; the signature is the fake's own, so
//!   that a token can be told apart from one it did not issue.
//! - Compute-resource tokens (a Kubernetes service account's projected token, a Code Engine
//!   token): JWTs that a cluster's issuer signs and IAM verifies against that issuer's keys. The
//!   fake plays both sides with one well-known key ([`CLUSTER_KEY`], HMAC-SHA256): a test signs a
//!   token with [`compute_resource_token`], and IAM refuses one whose signature, audience or
//!   expiry is wrong, as the real one does.
//! - Instance identity tokens, which the metadata service issues and takes back.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{base64url, base64url_decode, fnv64, json_str};

/// The key of the fake cluster issuer that signs compute-resource tokens.
pub const CLUSTER_KEY: &[u8] = b"fake-iam cluster issuer signing key";
/// The issuer a compute-resource token names (a cluster's service-account issuer).
pub const CLUSTER_ISSUER: &str = "https://kubernetes.default.svc";
/// The audience IAM requires of a compute-resource token.
pub const CR_TOKEN_AUDIENCE: &str = "iam";

/// A compute-resource token with these claims (a JSON object), signed by the fake cluster.
pub fn compute_resource_token(claims: &str) -> String {
    sign(r#"{"alg":"HS256","typ":"JWT","kid":"fake-cluster"}"#, claims)
}

/// A compute-resource token for `subject` (`system:serviceaccount:<namespace>:<name>`) with
/// audience `iam`, expiring at `exp` (Unix seconds): what a pod's projected token holds.
pub fn cr_token_for(subject: &str, exp: u64) -> String {
    compute_resource_token(&format!(
        "{{\"aud\":[\"{CR_TOKEN_AUDIENCE}\"],\"exp\":{exp},\"iat\":{iat},\"nbf\":{iat},\"iss\":\"{CLUSTER_ISSUER}\",\"sub\":{sub}}}",
        iat = exp.saturating_sub(3600),
        sub = json_str(subject)
    ))
}

fn sign(header: &str, claims: &str) -> String {
    let signing_input = format!("{}.{}", base64url(header.as_bytes()), base64url(claims.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(CLUSTER_KEY).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", base64url(&mac.finalize().into_bytes()))
}

/// Why IAM refuses a compute-resource token, or its subject.
pub fn check_compute_resource_token(token: &str, now: u64) -> Result<String, &'static str> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the token is not a JWT");
    };
    let header: serde_json::Value = base64url_decode(header)
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("the token's header is not JSON")?;
    if header["alg"] != "HS256" {
        return Err("the token is not signed by a trusted issuer");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(CLUSTER_KEY).expect("HMAC takes any key length");
    mac.update(format!("{}.{payload}", token.split('.').next().unwrap_or_default()).as_bytes());
    let signature = base64url_decode(signature).ok_or("the token's signature is not base64url")?;
    mac.verify_slice(&signature).map_err(|_| "the token's signature does not verify")?;
    let claims: serde_json::Value = base64url_decode(payload)
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or("the token's claims are not JSON")?;
    let audience_ok = match &claims["aud"] {
        serde_json::Value::String(aud) => aud == CR_TOKEN_AUDIENCE,
        serde_json::Value::Array(auds) => auds.iter().any(|a| a == CR_TOKEN_AUDIENCE),
        _ => false,
    };
    if !audience_ok {
        return Err("the token's audience is not iam");
    }
    if claims["iss"] != CLUSTER_ISSUER {
        return Err("the token's issuer is not trusted");
    }
    match claims["exp"].as_u64() {
        Some(exp) if exp > now => {}
        Some(_) => return Err("the token has expired"),
        None => return Err("the token has no expiry"),
    }
    if claims["nbf"].as_u64().is_some_and(|nbf| nbf > now) {
        return Err("the token is not valid yet");
    }
    claims["sub"].as_str().map(str::to_owned).ok_or("the token names no subject")
}

/// An IAM access token for `sub`, the `n`th the fake issued.
#[allow(clippy::too_many_arguments)]
pub fn access_token(
    sub: &str,
    iam_id: &str,
    sub_type: &str,
    grant: &str,
    n: u64,
    iat: u64,
    exp: u64,
    bx: bool,
) -> String {
    let header = r#"{"alg":"RS256","typ":"JWT","kid":"fake-iam"}"#;
    let payload = format!(
        "{{\"iam_id\":{iam},\"id\":{iam},\"realmid\":\"iam\",\"jti\":\"{n}\",\"sub\":{sub},\"sub_type\":\"{sub_type}\",\"account\":{{\"valid\":true,\"bss\":\"0000fake0000\"}},\"iat\":{iat},\"exp\":{exp},\"iss\":\"https://iam.cloud.ibm.com/identity\",\"grant_type\":\"{grant}\",\"scope\":\"ibm openid\",\"client_id\":\"{client}\",\"acr\":1,\"amr\":[\"pwd\"]}}",
        iam = json_str(iam_id),
        sub = json_str(sub),
        client = if bx { "bx" } else { "default" },
    );
    let mut sig = Vec::with_capacity(64);
    for i in 0..8u64 {
        sig.extend_from_slice(&fnv64(&format!("{n}:{iat}:{i}:{sub}")).to_be_bytes());
    }
    format!("{}.{}.{}", base64url(header.as_bytes()), base64url(payload.as_bytes()), base64url(&sig))
}

/// The JWT `sub` claim issued for an API key: `apikey:<16 hex digits>`.
pub fn apikey_subject(key: &str) -> String {
    format!("apikey:{:016x}", fnv64(key))
}

/// The decoded payload (claims JSON text) of a JWT-shaped token.
pub fn jwt_claims(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_h, p, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    String::from_utf8(base64url_decode(p)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compute_resource_token_is_checked_for_signature_audience_issuer_and_expiry() {
        let good = cr_token_for("system:serviceaccount:ns:sa", 2000);
        assert_eq!(check_compute_resource_token(&good, 1000), Ok("system:serviceaccount:ns:sa".to_owned()));
        assert_eq!(check_compute_resource_token(&good, 2000), Err("the token has expired"));
        let later = compute_resource_token(
            r#"{"aud":"iam","exp":2000,"nbf":1500,"iss":"https://kubernetes.default.svc","sub":"s"}"#,
        );
        assert_eq!(check_compute_resource_token(&later, 1000), Err("the token is not valid yet"));
        // Another subject under the same signature.
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged_claims = base64url(br#"{"aud":["iam"],"exp":2000,"iss":"https://kubernetes.default.svc","sub":"system:serviceaccount:ns:admin"}"#);
        parts[1] = &forged_claims;
        assert_eq!(check_compute_resource_token(&parts.join("."), 1000), Err("the token's signature does not verify"));
        let other_audience =
            compute_resource_token(r#"{"aud":"sts","exp":2000,"iss":"https://kubernetes.default.svc","sub":"s"}"#);
        assert_eq!(check_compute_resource_token(&other_audience, 1000), Err("the token's audience is not iam"));
        let other_issuer = compute_resource_token(r#"{"aud":"iam","exp":2000,"iss":"https://evil.example","sub":"s"}"#);
        assert_eq!(check_compute_resource_token(&other_issuer, 1000), Err("the token's issuer is not trusted"));
        assert_eq!(check_compute_resource_token("cr-token-literal", 1000), Err("the token is not a JWT"));
    }
}
