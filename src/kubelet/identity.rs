//! Whose a Kubernetes service account token is, for the token cache's key.
//!
//! The kubelet hands the plugin a fresh token per pod and per rotation, so a cache keyed on the
//! token itself would miss on nearly every request and grow a file per pod. IAM trusts the
//! *service account* (the profile's rule names a cluster, a namespace and a service account, not
//! a pod), so the bearer token one token bought is equally what any other token of the same
//! service account would buy: the cache keys on (issuer, subject, service account UID) instead.
//!
//! The claims are read unverified: the plugin has no way to check the cluster's signature, and it
//! does not need one for a *key*. What it must not do is hand a cached bearer token to a token
//! that merely *claims* someone else's subject. The token comes from the kubelet, which got it
//! from the API server, and whoever can feed the plugin a forged request on the node can read the
//! root-owned cache files anyway; still, as a second line, a token is only given an identity when
//! it is well-formed, names a service account, and has not expired. Anything else is keyed on
//! the raw token, which can only ever find what that very token bought.

use crate::jwt;

/// The identity a service account token speaks for, when it is a well-formed, unexpired
/// Kubernetes service account token; `None` otherwise.
pub fn of(token: &str, now: u64) -> Option<String> {
    let claims = jwt::claims(token)?;
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    let subject = text("sub")?;
    let (namespace, name) = subject.strip_prefix("system:serviceaccount:")?.split_once(':')?;
    if namespace.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    let issuer = text("iss")?;
    let expiry = jwt::expiry(token)?;
    if expiry <= now {
        return None;
    }
    // A service account deleted and created again under the same name is another account.
    let uid = claims
        .get("kubernetes.io")
        .and_then(|k| k.get("serviceaccount"))
        .and_then(|sa| sa.get("uid"))
        .and_then(|uid| uid.as_str())
        .unwrap_or("");
    Some(format!("k8s-serviceaccount\n{issuer}\n{subject}\n{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn token(sub: &str, exp: u64, uid: &str, jti: &str) -> String {
        jwt::make(&format!(
            r#"{{"aud":["iam"],"exp":{exp},"iat":{},"iss":"https://kubernetes.default.svc","jti":"{jti}","kubernetes.io":{{"namespace":"team-a","pod":{{"name":"p-{jti}","uid":"{jti}"}},"serviceaccount":{{"name":"puller","uid":"{uid}"}}}},"sub":"{sub}"}}"#,
            NOW - 10
        ))
    }

    #[test]
    fn two_tokens_of_one_service_account_share_an_identity() {
        let a = of(&token("system:serviceaccount:team-a:puller", NOW + 600, "u1", "1"), NOW).unwrap();
        let b = of(&token("system:serviceaccount:team-a:puller", NOW + 900, "u1", "2"), NOW).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn other_accounts_namespaces_and_recreated_accounts_differ() {
        let id = |sub: &str, uid: &str| of(&token(sub, NOW + 600, uid, "1"), NOW).unwrap();
        let base = id("system:serviceaccount:team-a:puller", "u1");
        assert_ne!(base, id("system:serviceaccount:team-a:other", "u1"));
        assert_ne!(base, id("system:serviceaccount:team-b:puller", "u1"));
        assert_ne!(base, id("system:serviceaccount:team-a:puller", "u2"));
    }

    #[test]
    fn expired_malformed_or_foreign_tokens_have_no_identity() {
        for t in [
            token("system:serviceaccount:team-a:puller", NOW, "u1", "1"),
            token("system:serviceaccount:team-a:puller", NOW - 1, "u1", "1"),
            token("system:node:worker-1", NOW + 600, "u1", "1"),
            token("system:serviceaccount:team-a", NOW + 600, "u1", "1"),
            token("system:serviceaccount::puller", NOW + 600, "u1", "1"),
            token("system:serviceaccount:a:b:c", NOW + 600, "u1", "1"),
            jwt::make(r#"{"sub":"system:serviceaccount:a:b","exp":1800000000}"#),
            "not-a-jwt".to_owned(),
        ] {
            assert_eq!(of(&t, NOW), None, "{t}");
        }
    }
}
