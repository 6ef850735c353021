//! Just enough of a JWT to know when it expires. The signature is not checked: the token is
//! the user's own, read from their own files, and only its `exp` decides whether to use it.

use base64::Engine;

/// The `exp` claim (Unix seconds) of a JWT, when the token is one and has it.
pub fn expiry(token: &str) -> Option<u64> {
    let claims = claims(token)?;
    let exp = claims.get("exp")?;
    exp.as_u64().or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// The claims of a JWT, unverified, when the token is one and its payload is a JSON object.
pub fn claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 64 * 1024 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(claims) => Some(claims),
        _ => None,
    }
}

#[cfg(test)]
pub fn make(claims: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.{}", b64(r#"{"alg":"RS256","typ":"JWT"}"#), b64(claims), b64("signature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_read_from_the_payload() {
        assert_eq!(expiry(&make(r#"{"exp":1700000000,"sub":"x"}"#)), Some(1700000000));
        assert_eq!(expiry(&make(r#"{"exp":1700000000.5}"#)), Some(1700000000));
    }

    #[test]
    fn anything_else_has_no_expiry() {
        for t in ["", "abc", "a.b", "a.b.c.d", &make(r#"{"sub":"x"}"#), &make("not json"), "a.!!!.c"] {
            assert_eq!(expiry(t), None, "{t}");
        }
    }
}
