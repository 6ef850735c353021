//! Where the helper keeps its own files, and how long it waits for another process holding one:
//! the config file, the stored logins beside it, the token cache (SPEC section 5). Everything
//! that asks "where" asks here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::env::Env;
use crate::files::Dir;

/// The name of the helper's directory under the config and cache directories.
pub const APP_DIR: &str = "docker-credential-icr";

/// How long `store` and `erase` wait for another writer of the stored logins.
pub const LOGINS_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a `get` waits for another process's IAM exchange of the same credential: a little
/// longer than one exchange may take (15 s), so that `get` as a whole stays under 20 s.
pub const TOKEN_LOCK_WAIT: Duration = Duration::from_secs(17);

/// A file of the helper's and whose directory it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub dir: Dir,
}

/// `DOCKER_CREDENTIAL_ICR_CONFIG`, else `<config dir>/docker-credential-icr/config.json`;
/// `None` without a config directory (no `HOME`).
pub fn config_file(env: &Env) -> Option<PathBuf> {
    match env.get("DOCKER_CREDENTIAL_ICR_CONFIG") {
        Some(path) => Some(PathBuf::from(path)),
        None => env.config_dir.as_ref().map(|d| d.join(APP_DIR).join("config.json")),
    }
}

/// `credentials.json`, beside the config file.
pub fn logins_file(env: &Env) -> Option<Place> {
    let config = config_file(env)?;
    let dir = config.parent().unwrap_or(Path::new("."));
    Some(Place { path: dir.join("credentials.json"), dir: whose(dir) })
}

/// `DOCKER_CREDENTIAL_ICR_CACHE_DIR`, else `<cache dir>/docker-credential-icr`; `None` with
/// `DOCKER_CREDENTIAL_ICR_NO_CACHE` or without a cache directory.
pub fn token_cache_dir(env: &Env) -> Option<Place> {
    if env.is_set("DOCKER_CREDENTIAL_ICR_NO_CACHE") {
        return None;
    }
    let dir = match env.get("DOCKER_CREDENTIAL_ICR_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => env.cache_dir.as_ref()?.join(APP_DIR),
    };
    let whose = whose(&dir);
    Some(Place { path: dir, dir: whose })
}

/// A directory named `docker-credential-icr` is the helper's own, wherever it is (the default,
/// or `/etc/docker-credential-icr` on a node); any other is one a user chose.
fn whose(dir: &Path) -> Dir {
    if dir.file_name().is_some_and(|n| n == APP_DIR) {
        Dir::Own
    } else {
        Dir::Chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_live_under_the_xdg_directories_unless_moved() {
        let env = Env::from_vars([("HOME", "/h")]);
        assert_eq!(config_file(&env), Some(PathBuf::from("/h/.config/docker-credential-icr/config.json")));
        assert_eq!(
            logins_file(&env),
            Some(Place { path: "/h/.config/docker-credential-icr/credentials.json".into(), dir: Dir::Own })
        );
        assert_eq!(
            token_cache_dir(&env),
            Some(Place { path: "/h/.cache/docker-credential-icr".into(), dir: Dir::Own })
        );
        let env = Env::from_vars([
            ("HOME", "/h"),
            ("DOCKER_CREDENTIAL_ICR_CONFIG", "/etc/icr/config.json"),
            ("DOCKER_CREDENTIAL_ICR_CACHE_DIR", "/var/cache/docker-credential-icr"),
        ]);
        assert_eq!(logins_file(&env), Some(Place { path: "/etc/icr/credentials.json".into(), dir: Dir::Chosen }));
        assert_eq!(token_cache_dir(&env).unwrap().dir, Dir::Own);
        assert_eq!(token_cache_dir(&Env::from_vars([("HOME", "/h"), ("DOCKER_CREDENTIAL_ICR_NO_CACHE", "1")])), None);
        assert_eq!(config_file(&Env::from_vars::<&str, &str>([])), None);
    }
}
