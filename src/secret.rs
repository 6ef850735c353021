//! `Secret`: a string that cannot be printed by accident.
//!
//! API keys, tokens and passwords travel in this wrapper from the moment they are read until the
//! moment the protocol writes them to stdout. `Debug` and `Display` print `REDACTED`; the only
//! way to the bytes is `expose`, which is easy to grep for.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Serializes as the bare string: for the files that must hold secrets (stored logins, the token
/// cache), which are written 0600 by `files`. Never serialize a `Secret` anywhere else.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Callers: the protocol writer, the IAM request body, the token cache.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The last four characters behind an ellipsis, for a human to tell two secrets apart;
    /// nothing at all for a secret too short to spare them.
    pub fn fingerprint(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < 16 {
            return "…".to_owned();
        }
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("…{tail}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("very-secret-api-key-1234");
        assert_eq!(format!("{s:?}"), "REDACTED");
        assert_eq!(format!("{s}"), "REDACTED");
        assert_eq!(format!("{:?}", Some(&s)), "Some(REDACTED)");
    }

    #[test]
    fn fingerprint_shows_only_the_last_four_characters_of_a_long_secret() {
        assert_eq!(Secret::new("very-secret-api-key-1234").fingerprint(), "…1234");
        assert_eq!(Secret::new("short").fingerprint(), "…");
    }
}
