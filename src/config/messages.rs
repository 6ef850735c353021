//! Error lines about the config file that never repeat what it holds.
//!
//! A config file holds secrets (`apiKey`), and a secret pasted into the wrong place ends up as a
//! value of the wrong type, as a key, or as a malformed URL. serde's own messages quote the
//! offending value (`invalid type: string "<key>", expected an object`), so they are reworded
//! here: a message names the file, the key path, the line and column and what was expected; a
//! key is shown as it is only when it reads as a name (a field, a region id, a host), otherwise
//! as the last four characters of it; a value is never shown.

use std::fmt::Write as _;

/// A key of the file as an error line may show it.
pub fn shown_key(key: &str) -> String {
    let name_like = !key.is_empty()
        && key.len() <= 64
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']' | '/'))
        // A field or region id is short; a longer name must read as a host, with its dots.
        && (key.len() <= 20 || key.contains('.'));
    if name_like {
        return key.to_owned();
    }
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    if key.chars().count() >= 16 {
        format!("<a key ending …{tail}>")
    } else {
        "<a key>".to_owned()
    }
}

/// A key path as an error line shows it: `registries.us.icr.io.mode`.
pub fn shown_path<'a>(keys: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for key in keys {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&shown_key(key));
    }
    out
}

/// A serde_json error (without its position) reworded so that no value of the input shows.
pub fn describe(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            return format!("expected {expected}, found {}", kind(found));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            return format!(
                "expected {expected}, found another {}",
                kind(found).trim_start_matches("a ").trim_start_matches("an ")
            );
        }
    }
    if message.starts_with("unknown variant `") {
        if let Some((_, expected)) = message.split_once("`, expected ") {
            return format!("not a value this key takes: expected {expected}");
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once("`, expected ") {
            return format!("unknown key {}: expected {expected}", shown_key(field));
        }
        if let Some((field, _)) = rest.split_once('`') {
            return format!("unknown key {}", shown_key(field));
        }
    }
    // What is left is serde_json's syntax errors and serde's missing or duplicate fields, which
    // name a position or one of our own keys, never the input.
    message.to_owned()
}

/// What serde calls the value it found, without the value.
fn kind(found: &str) -> &'static str {
    match found.split([' ', '`', '"']).next().unwrap_or("") {
        "string" | "char" => "a string",
        "integer" | "floating" => "a number",
        "boolean" => "a boolean",
        "null" | "unit" | "Option" => "null",
        "sequence" => "an array",
        "map" => "an object",
        _ => "another value",
    }
}

/// The line and column of the last key of `path`, found by looking each key up, quoted, after
/// the one before it. Good enough for a message; `None` when a key is not found as written.
pub fn position_of(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let mut at = 0;
    for key in path {
        let quoted = serde_json::to_string(key).ok()?;
        at += text[at..].find(&quoted)?;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

/// ` at line L column C`, or nothing when the position is unknown.
pub fn at(position: Option<(usize, usize)>) -> String {
    let mut out = String::new();
    if let Some((line, column)) = position {
        let _ = write!(out, " at line {line} column {column}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shown_and_anything_else_only_by_its_tail() {
        for name in ["apiKey", "registries", "eu-de", "us.icr.io", "mirror.example.com:5000", "[::1]:5000"] {
            assert_eq!(shown_key(name), name);
        }
        assert_eq!(shown_key("SeCrEtKeY0123456789abcdefghijklmnopqrstuvw"), "<a key ending …tuvw>");
        assert_eq!(shown_key("a b"), "<a key>");
        assert_eq!(shown_key("has/slash-and-more-text"), "<a key ending …text>");
        assert_eq!(shown_key("https://de.icr.io/v2"), "https://de.icr.io/v2");
        assert_eq!(shown_key("https://u:hunter2@de.icr.io"), "<a key ending …r.io>");
    }

    #[test]
    fn serde_messages_lose_the_values_they_quote() {
        let e = serde_json::from_str::<Vec<u8>>(r#""hunter2-secret""#).unwrap_err();
        assert_eq!(describe(&e), "expected a sequence, found a string");
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            mode: crate::mode::Mode,
        }
        let e = serde_json::from_str::<S>(r#"{"mode":"hunter2-secret"}"#).unwrap_err();
        assert_eq!(describe(&e), "not a value this key takes: expected one of `iamapikey`, `iambearer`, `iamrefresh`");
        let e = serde_json::from_str::<S>(r#"{"hunter2-secret-as-a-key":1}"#).unwrap_err();
        assert_eq!(describe(&e), "unknown key <a key ending …-key>: expected `mode`");
    }

    #[test]
    fn positions_are_lines_and_columns() {
        let text = "{\n  \"a\": {\n    \"b\": 1\n  }\n}";
        assert_eq!(position_of(text, &["a", "b"]), Some((3, 5)));
        assert_eq!(at(Some((3, 5))), " at line 3 column 5");
        assert_eq!(position_of(text, &["c"]), None);
    }
}
