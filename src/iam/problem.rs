//! IAM's and the metadata service's error answers as one line that can hold no secret.
//!
//! IAM's free text is input like any other, and it can echo what was sent: an API key in upper
//! case, or cut by a character, passes any scrubbing by exact match. So the line names only
//! what cannot hold the key: IAM's error code and request id (each checked to look like one), a
//! sentence of our own for the codes IAM documents, and what to do. The fields are read the way
//! IBM's SDKs read them (`errorCode`, else `code`, else the first of `errors[]`; the request id
//! in IAM's `context.requestId`, or the metadata service's `trace`). IAM's codes read
//! `BXNIM0415E`; the metadata service's `invalid_value`. IAM's request ids are base64 (a key's
//! alphabet), so a code or id that shares eight letters and digits in a row with anything the
//! request sent (in any case, whatever stands between them) is not shown either.

use serde::Deserialize;

/// IAM's codes whose meaning IBM's own clients and API docs state (ibm-cloud-cli-sdk's IAM
/// client: 0407E, 0408E, 0439E, 0400E; the IAM Identity API: 0415E, 0308E), each with what it
/// means. Anything else shows as its code alone.
const KNOWN: &[(&str, &str)] = &[
    ("BXNIM0415E", "Provided API key could not be found"),
    ("BXNIM0407E", "the token is not valid"),
    ("BXNIM0408E", "the refresh token has expired: log in again"),
    ("BXNIM0439E", "the session is not active any more: log in again"),
    ("BXNIM0400E", "the external authentication failed"),
    ("BXNIM0308E", "no authorization header was found"),
];

#[derive(Deserialize, Default)]
struct Body {
    #[serde(rename = "errorCode")]
    error_code: Option<serde_json::Value>,
    code: Option<serde_json::Value>,
    errors: Option<Vec<Item>>,
    context: Option<Context>,
    trace: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Item {
    code: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Context {
    #[serde(rename = "requestId")]
    request_id: Option<serde_json::Value>,
}

/// `(HTTP 400, BXNIM0415E): Provided API key could not be found (request id …)`, the part of the
/// error line after "IAM at … refused the API key".
/// `sent` is every value the request carried (form fields, header values, the JSON body).
pub fn describe(status: u16, body: &str, sent: &[&str]) -> String {
    let body: Body = serde_json::from_str(body).unwrap_or_default();
    let text = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    let code = text(body.error_code)
        .or_else(|| text(body.code))
        .or_else(|| body.errors.and_then(|e| e.into_iter().next()).and_then(|i| text(i.code)))
        .filter(|c| is_code(c) && !echoes(c, sent));
    let request_id = text(body.context.and_then(|c| c.request_id))
        .or_else(|| text(body.trace))
        .filter(|id| is_request_id(id) && !echoes(id, sent));
    let mut line = format!("(HTTP {status}");
    if let Some(code) = &code {
        line.push_str(&format!(", {code}"));
    }
    line.push(')');
    if let Some((_, meaning)) = code.as_deref().and_then(|c| KNOWN.iter().find(|(k, _)| *k == c)) {
        line.push_str(&format!(": {meaning}"));
    }
    if let Some(id) = request_id {
        line.push_str(&format!(" (request id {id})"));
    }
    line
}

/// An error code: IAM's `BXNIM0415E` (capitals and digits, short) or the metadata service's
/// `invalid_value` (small letters and underscores: nothing a key or token is made of alone).
fn is_code(code: &str) -> bool {
    let iam = (4..=16).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let vpc = (3..=40).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    iam || vpc
}

/// The shortest run of a sent value that counts as an echo of it.
const ECHO: usize = 8;

/// Whether `text` holds a run of [`ECHO`] letters and digits of any sent value, ignoring case
/// and whatever else stands between them (an echo with its dashes dropped is an echo).
fn echoes(text: &str, sent: &[&str]) -> bool {
    let plain =
        |s: &str| -> Vec<u8> { s.bytes().filter(u8::is_ascii_alphanumeric).map(|b| b.to_ascii_lowercase()).collect() };
    let text = plain(text);
    sent.iter().map(|s| plain(s)).any(|s| s.windows(ECHO).any(|run| text.windows(ECHO).any(|t| t == run)))
}

/// A request id: a UUID or something as plain.
fn is_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_documented_code_gets_its_meaning_and_anything_else_only_its_code() {
        let body = r#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found: SECRET-KEY","context":{"requestId":"a1b2-c3"}}"#;
        assert_eq!(
            describe(400, body, &[]),
            "(HTTP 400, BXNIM0415E): Provided API key could not be found (request id a1b2-c3)"
        );
        let body = r#"{"errorCode":"BXNIM0999E","errorMessage":"key secret-key-xyz is locked"}"#;
        assert_eq!(describe(403, body, &[]), "(HTTP 403, BXNIM0999E)");
    }

    #[test]
    fn the_code_is_read_where_ibms_sdks_read_it() {
        assert_eq!(describe(400, r#"{"code":"BXNIM0407E"}"#, &[]), "(HTTP 400, BXNIM0407E): the token is not valid");
        assert_eq!(
            describe(400, r#"{"errors":[{"code":"BXNIM0408E","message":"x"}]}"#, &[]),
            "(HTTP 400, BXNIM0408E): the refresh token has expired: log in again"
        );
    }

    #[test]
    fn the_metadata_services_errors_show_their_code_and_trace() {
        let body = r#"{"errors":[{"code":"invalid_value","message":"The `expires_in` field must not exceed `3600`.","target":{"name":"expires_in","type":"field","value":"7200"}}],"status_code":400,"trace":"e37872f6-f9a4-4084-a1a8-e56a1c8c8d3d"}"#;
        assert_eq!(
            describe(400, body, &[]),
            "(HTTP 400, invalid_value) (request id e37872f6-f9a4-4084-a1a8-e56a1c8c8d3d)"
        );
    }

    #[test]
    fn nothing_that_could_hold_input_is_shown() {
        for body in [
            r#"{"errorCode":"apikey=SECRET","context":{"requestId":"SECRET KEY"}}"#,
            r#"{"errorCode":"SECRETSECRETSECRETSECRET"}"#,
            r#"{"errors":[{"code":"SECRET-key_1"}],"trace":"SECRET key"}"#,
            r#"{"errorMessage":"SECRET"}"#,
            "SECRET",
            "",
        ] {
            let line = describe(400, body, &[]);
            assert!(!line.contains("SECRET"), "{body}: {line}");
            assert!(line.starts_with("(HTTP 400"), "{line}");
        }
    }

    #[test]
    fn a_code_or_request_id_that_echoes_what_was_sent_is_not_shown() {
        // An IBM API key's alphabet is a request id's: only the overlap tells them apart.
        let key = "Xk2mPq9LrT4vWn8ZsB6yHc3JdF5gA7eQ1uNo0iKlMp-R";
        for echo in [key.to_owned(), key[3..20].to_ascii_uppercase(), key[..43].to_owned()] {
            let body = format!(r#"{{"errorCode":"BXNIM0415E","context":{{"requestId":"{echo}"}}}}"#);
            let line = describe(400, &body, &["urn:ibm:params:oauth:grant-type:apikey", key]);
            assert_eq!(line, "(HTTP 400, BXNIM0415E): Provided API key could not be found", "{echo}");
        }
        let body = format!(r#"{{"errorCode":"{}"}}"#, key[..12].to_ascii_uppercase());
        assert_eq!(describe(400, &body, &[key]), "(HTTP 400)");
        // Seven characters in common are a coincidence, not an echo.
        let body = format!(r#"{{"context":{{"requestId":"zz{}zz"}}}}"#, &key[..7]);
        assert_eq!(describe(400, &body, &[key]), format!("(HTTP 400) (request id zz{}zz)", &key[..7]));
    }
}
