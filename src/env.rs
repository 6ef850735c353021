//! A snapshot of the process environment, read once in `main` and passed down.
//!
//! Nothing below `main` calls `std::env::var`: tests build an `Env` by hand instead of mutating
//! the process environment, and the order in which variables are consulted is visible in one
//! place per concern rather than scattered.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    /// `dirs::config_dir()` at start-up (XDG_CONFIG_HOME or ~/.config on Linux).
    pub config_dir: Option<PathBuf>,
    /// `dirs::cache_dir()` at start-up (XDG_CACHE_HOME or ~/.cache on Linux).
    pub cache_dir: Option<PathBuf>,
    /// `dirs::home_dir()` at start-up.
    pub home_dir: Option<PathBuf>,
}

impl Env {
    /// The real environment. Variables whose name or value is not UTF-8 are left out: none of
    /// ours can be, and a key must be text anyway.
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            config_dir: dirs::config_dir(),
            cache_dir: dirs::cache_dir(),
            home_dir: dirs::home_dir(),
        }
    }

    /// An environment for tests: these variables, with directories derived from `HOME` the way
    /// `dirs` derives them on Linux.
    pub fn from_vars<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let vars: BTreeMap<String, String> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let home = vars.get("HOME").map(PathBuf::from);
        let xdg = |name: &str, fallback: &str| {
            vars.get(name)
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

    /// The value of `name`, treating an empty value as unset (as `IBMCLOUD_API_KEY=` in a CI
    /// file means "no key", not "an empty key").
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// Whether a boolean switch such as `DOCKER_CREDENTIAL_ICR_NO_CACHE` is on.
    pub fn is_set(&self, name: &str) -> bool {
        matches!(self.get(name), Some(v) if !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset() {
        let env = Env::from_vars([("A", ""), ("B", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
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
        assert!(env.is_set("A") && env.is_set("D"));
        assert!(!env.is_set("B") && !env.is_set("C") && !env.is_set("E"));
    }
}
