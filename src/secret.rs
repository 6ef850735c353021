//! `Secret`: a string that cannot be printed by accident.
//!
//! API keys, tokens and passwords travel in this wrapper from the moment they are read until the
//! moment they leave: on stdout as the protocol's answer, in an IAM request, in a file of the
//! helper's (0600), in the environment of an `exec` child. There is no `Display`, so a secret in
//! a `format!` is a compile error rather than a wrong answer at run time; `Debug` prints
//! `REDACTED`, so one inside a derived `Debug` stays hidden. The only way to the bytes is
//! [`Secret::expose`], and the files allowed to call it are listed in `tests/architecture.rs`.

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

    /// The secret itself, for where it must leave as it is, or be read as a token (its `exp`,
    /// whom it names). `tests/architecture.rs` lists the files that may call this.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("very-secret-api-key-1234");
        assert_eq!(format!("{s:?}"), "REDACTED");
        assert_eq!(format!("{:?}", Some(&s)), "Some(REDACTED)");
    }

    #[test]
    fn fingerprint_shows_only_the_last_four_characters_of_a_long_secret() {
        assert_eq!(Secret::new("very-secret-api-key-1234").fingerprint(), "…1234");
        assert_eq!(Secret::new("short").fingerprint(), "…");
    }
}
