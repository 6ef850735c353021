//! The docker-credential protocol on the wire (SPEC section 2): what arrives on stdin and what
//! leaves on stdout, byte for byte. The error strings docker and podman match on are declared
//! with the error type (`error.rs`). Nothing here knows about ICR or where credentials come from.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// The most stdin we read: a server URL or a store request is a few hundred bytes.
pub const MAX_INPUT: usize = 1 << 20;

/// Reads all of stdin, refusing more than [`MAX_INPUT`] bytes and anything that is not UTF-8.
pub fn read_input(reader: impl Read) -> Result<String> {
    read_limited(reader, "input", "a server URL or a JSON credentials object")
}

/// Reads all of `reader` as `what` (for the error line), refusing more than [`MAX_INPUT`] bytes
/// and anything that is not UTF-8; `expected` says what should have come. The kubelet's
/// request is read the same way.
pub fn read_limited(mut reader: impl Read, what: &str, expected: &str) -> Result<String> {
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::input(format!("cannot read standard input: {e}")))?;
    if bytes.len() > MAX_INPUT {
        return Err(Error::input(format!("{what} is larger than 1 MiB: expected {expected}")));
    }
    String::from_utf8(bytes).map_err(|_| Error::input(format!("{what} is not valid UTF-8: expected {expected}")))
}

/// The server URL of a `get` or `erase`: the input with surrounding whitespace trimmed.
pub fn server_url(input: &str) -> Result<&str> {
    let url = input.trim();
    if url.is_empty() {
        return Err(Error::MissingServerUrl);
    }
    Ok(url)
}

/// A `store` request.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials {
    pub server_url: String,
    pub username: String,
    pub secret: Secret,
}

/// Parses a `store` request. Field names match case-insensitively, as Go's `encoding/json` does
/// for docker's `credentials.Credentials`; unknown fields are ignored, as there; two fields that
/// differ only in case are refused, since which one docker meant cannot be known.
pub fn parse_store(input: &str) -> Result<Credentials> {
    let value: Value =
        serde_json::from_str(input).map_err(|e| Error::input(format!("malformed JSON credentials: {e}")))?;
    let Value::Object(object) = value else {
        return Err(Error::input("malformed JSON credentials: expected an object with ServerURL, Username and Secret"));
    };
    let mut fields: BTreeMap<&'static str, String> = BTreeMap::new();
    for (key, value) in object {
        let Some(name) = ["ServerURL", "Username", "Secret"].into_iter().find(|n| n.eq_ignore_ascii_case(&key)) else {
            continue;
        };
        let text = match value {
            Value::String(s) => s,
            Value::Null => String::new(),
            _ => return Err(Error::input(format!("malformed JSON credentials: {name} must be a string"))),
        };
        if fields.insert(name, text).is_some() {
            return Err(Error::input(format!("malformed JSON credentials: {name} is given twice")));
        }
    }
    let mut take = |name| fields.remove(name).unwrap_or_default();
    let (server_url, username, secret) = (take("ServerURL"), take("Username"), take("Secret"));
    if server_url.trim().is_empty() {
        return Err(Error::MissingServerUrl);
    }
    if username.is_empty() {
        return Err(Error::MissingUsername);
    }
    if secret.is_empty() {
        return Err(Error::input("no credentials secret: refusing to store an empty secret"));
    }
    Ok(Credentials { server_url: server_url.trim().to_owned(), username, secret: Secret::new(secret) })
}

#[derive(Serialize)]
struct GetResponse<'a> {
    #[serde(rename = "ServerURL")]
    server_url: &'a str,
    #[serde(rename = "Username")]
    username: &'a str,
    #[serde(rename = "Secret")]
    secret: &'a str,
}

/// The answer to `get`: one JSON object and a newline.
pub fn format_get(server_url: &str, username: &str, secret: &Secret) -> String {
    let response = GetResponse { server_url, username, secret: secret.expose() };
    let mut out = serde_json::to_string(&response).expect("strings always serialize");
    out.push('\n');
    out
}

/// The answer to `list`: `{"server":"username",…}` and a newline; `{}` when empty, never `null`.
pub fn format_list(entries: &BTreeMap<String, String>) -> String {
    let mut out = serde_json::to_string(entries).expect("strings always serialize");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_strings_are_dockers_own() {
        use crate::error::{ERR_MISSING_SERVER_URL, ERR_MISSING_USERNAME, ERR_NOT_FOUND};
        assert_eq!(ERR_NOT_FOUND, "credentials not found in native keychain");
        assert_eq!(ERR_MISSING_SERVER_URL, "no credentials server URL");
        assert_eq!(ERR_MISSING_USERNAME, "no credentials username");
    }

    #[test]
    fn get_answer_is_exact() {
        assert_eq!(
            format_get("us.icr.io", "iamapikey", &Secret::new("k\"ey")),
            "{\"ServerURL\":\"us.icr.io\",\"Username\":\"iamapikey\",\"Secret\":\"k\\\"ey\"}\n"
        );
    }

    #[test]
    fn list_is_an_object_even_when_empty() {
        assert_eq!(format_list(&BTreeMap::new()), "{}\n");
        let entries = BTreeMap::from([("us.icr.io".to_owned(), "iamapikey".to_owned())]);
        assert_eq!(format_list(&entries), "{\"us.icr.io\":\"iamapikey\"}\n");
    }

    #[test]
    fn store_fields_match_case_insensitively() {
        let c = parse_store(r#"{"serverurl":" us.icr.io ","USERNAME":"iamapikey","secret":"k","Extra":1}"#).unwrap();
        assert_eq!(c.server_url, "us.icr.io");
        assert_eq!(c.username, "iamapikey");
        assert_eq!(c.secret.expose(), "k");
    }

    #[test]
    fn store_refusals_use_dockers_strings() {
        assert_eq!(parse_store(r#"{"Username":"u","Secret":"s"}"#), Err(Error::MissingServerUrl));
        assert_eq!(parse_store(r#"{"ServerURL":"  ","Username":"u","Secret":"s"}"#), Err(Error::MissingServerUrl));
        assert_eq!(parse_store(r#"{"ServerURL":"x","Username":"","Secret":"s"}"#), Err(Error::MissingUsername));
        assert_eq!(parse_store(r#"{"ServerURL":"x","Username":null,"Secret":"s"}"#), Err(Error::MissingUsername));
    }

    #[test]
    fn malformed_store_requests_are_input_errors_that_never_echo_the_secret() {
        for input in [
            "",
            " ",
            "{",
            "null",
            "[]",
            "\"x\"",
            r#"{"ServerURL":"x","Username":"u","Secret":5}"#,
            r#"{"ServerURL":["x"],"Username":"u","Secret":"hunter2"}"#,
            r#"{"ServerURL":"x","Username":"u","Secret":"hunter2","secret":"hunter3"}"#,
            r#"{"ServerURL":"x","Username":"u","Secret":"hunter2"#,
            "{\"ServerURL\":\"x\",\"Username\":\"u\",\"Secret\":\"hunter2\u{0}",
            r#"{"ServerURL":"x","Username":"u","Secret":""}"#,
        ] {
            let err = parse_store(input).unwrap_err();
            assert!(matches!(err, Error::Input(_)), "{input:?}: {err:?}");
            assert!(!err.to_string().contains("hunter"), "{err}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn oversized_and_non_utf8_input_is_refused() {
        let big = vec![b'a'; MAX_INPUT + 1];
        assert!(matches!(read_input(&big[..]), Err(Error::Input(m)) if m.contains("1 MiB")));
        let exact = vec![b'a'; MAX_INPUT];
        assert_eq!(read_input(&exact[..]).unwrap().len(), MAX_INPUT);
        assert!(matches!(read_input(&[0xff, 0xfe][..]), Err(Error::Input(m)) if m.contains("UTF-8")));
    }

    #[test]
    fn server_url_is_trimmed_and_must_not_be_empty() {
        assert_eq!(server_url(" us.icr.io\n"), Ok("us.icr.io"));
        assert_eq!(server_url(" \n\t"), Err(Error::MissingServerUrl));
    }
}
