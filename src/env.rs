//! A snapshot of the process environment, read once in `main` and passed down.
//!
//! Nothing below `main` calls `std::env::var`: tests build an `Env` by hand instead of mutating
//! the process environment, and the order in which variables are consulted is visible in one
//! place per concern rather than scattered.
//!
//! A value that is not UTF-8 is kept, not dropped: a variable the helper reads as text
//! ([`Env::get`]) and finds set to something that is not text is an error, never "unset" —
//! treating it as unset would fall through to the next variable and hand out another account's
//! key. A path ([`Env::path`]) may be any bytes, as paths may.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<OsString, OsString>,
    /// `dirs::config_dir()` at start-up (XDG_CONFIG_HOME or ~/.config on Linux).
    pub config_dir: Option<PathBuf>,
    /// `dirs::cache_dir()` at start-up (XDG_CACHE_HOME or ~/.cache on Linux).
    pub cache_dir: Option<PathBuf>,
    /// `dirs::home_dir()` at start-up.
    pub home_dir: Option<PathBuf>,
}

impl Env {
    /// The real environment.
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars_os().collect(),
            config_dir: dirs::config_dir(),
            cache_dir: dirs::cache_dir(),
            home_dir: dirs::home_dir(),
        }
    }

    /// An environment for tests: these variables, with directories derived from `HOME` the way
    /// `dirs` derives them on Linux.
    pub fn from_vars<K: Into<OsString>, V: Into<OsString>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let vars: BTreeMap<OsString, OsString> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let home = vars.get(OsStr::new("HOME")).map(PathBuf::from);
        let xdg = |name: &str, fallback: &str| {
            vars.get(OsStr::new(name))
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| home.as_ref().map(|h| h.join(fallback)))
        };
        Env {
            config_dir: xdg("XDG_CONFIG_HOME", ".config"),
            cache_dir: xdg("XDG_CACHE_HOME", ".cache"),
            home_dir: home.clone(),
            vars,
        }
    }

    /// The value of `name` as text, treating an empty value as unset (as `IBMCLOUD_API_KEY=` in
    /// a CI file means "no key", not "an empty key"). A value that is not UTF-8 is an error that
    /// names the variable and never shows the value.
    pub fn get(&self, name: &str) -> Result<Option<&str>> {
        match self.raw(name) {
            None => Ok(None),
            Some(value) => value.to_str().map(Some).ok_or_else(|| {
                Error::failed(format!(
                    "{name} is set, but its value is not UTF-8 text: set it to the value you mean, or unset it"
                ))
            }),
        }
    }

    /// The value of `name` as a path (any bytes); `None` when unset or empty.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.raw(name).map(PathBuf::from)
    }

    /// Whether a boolean switch such as `DOCKER_CREDENTIAL_ICR_NO_CACHE` is on.
    pub fn is_set(&self, name: &str) -> Result<bool> {
        Ok(
            matches!(self.get(name)?, Some(v) if !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off")),
        )
    }

    fn raw(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(OsStr::new(name)).map(OsString::as_os_str).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn empty_values_count_as_unset() {
        let env = Env::from_vars([("A", ""), ("B", "x")]);
        assert_eq!(env.get("A").unwrap(), None);
        assert_eq!(env.get("B").unwrap(), Some("x"));
    }

    #[test]
    fn a_value_that_is_not_text_is_an_error_naming_the_variable_but_not_the_value() {
        let env = Env::from_vars([(OsString::from("K"), OsString::from_vec(b"secret\xff".to_vec()))]);
        let err = env.get("K").unwrap_err().to_string();
        assert!(err.starts_with("K is set, but its value is not UTF-8 text") && !err.contains("secret"), "{err}");
        assert_eq!(env.path("K"), Some(PathBuf::from(OsString::from_vec(b"secret\xff".to_vec()))));
    }

    #[test]
    fn directories_follow_xdg_then_home() {
        let env = Env::from_vars([("HOME", "/h")]);
        assert_eq!(env.config_dir, Some(PathBuf::from("/h/.config")));
        let env = Env::from_vars([("HOME", "/h"), ("XDG_CONFIG_HOME", "/x"), ("XDG_CACHE_HOME", "rel")]);
        assert_eq!(env.config_dir, Some(PathBuf::from("/x")));
        assert_eq!(env.cache_dir, Some(PathBuf::from("/h/.cache")));
    }

    #[test]
    fn switches_accept_the_usual_spellings() {
        let env = Env::from_vars([("A", "1"), ("B", "false"), ("C", "0"), ("D", "yes")]);
        assert!(env.is_set("A").unwrap() && env.is_set("D").unwrap());
        assert!(!env.is_set("B").unwrap() && !env.is_set("C").unwrap() && !env.is_set("E").unwrap());
    }
}
