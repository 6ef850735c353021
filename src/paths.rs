//! Where the helper keeps its own files, and how long it waits for another process writing the
//! stored logins: the config file, the stored logins beside it, the token cache (SPEC section 5).
//! Everything that asks "where" asks here. (Waiting for another process's token exchange is
//! bounded by the invocation's deadline, `iam::deadline`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::env::Env;
use crate::error::{Error, Result};
use crate::files::Dir;

/// The name of the helper's directory under the config and cache directories.
pub const APP_DIR: &str = "docker-credential-icr";

/// How long `store` and `erase` wait for another writer of the stored logins.
pub const LOGINS_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A file of the helper's and whose directory it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub dir: Dir,
}

/// `DOCKER_CREDENTIAL_ICR_CONFIG`, else `<config dir>/docker-credential-icr/config.json`;
/// `None` without a config directory (no `HOME`). A relative path is refused: it would put the
/// stored logins beside it, in whatever directory the client runs in (for docker, possibly a
/// build context).
pub fn config_file(env: &Env) -> Result<Option<PathBuf>> {
    match env.path("DOCKER_CREDENTIAL_ICR_CONFIG") {
        Some(path) => absolute("DOCKER_CREDENTIAL_ICR_CONFIG", path).map(Some),
        None => Ok(env.config_dir.as_ref().map(|d| d.join(APP_DIR).join("config.json"))),
    }
}

/// `credentials.json`, beside the config file.
pub fn logins_file(env: &Env) -> Result<Option<Place>> {
    let Some(config) = config_file(env)? else { return Ok(None) };
    let dir = config.parent().unwrap_or(Path::new("/"));
    Ok(Some(Place { path: dir.join("credentials.json"), dir: whose(dir) }))
}

/// `DOCKER_CREDENTIAL_ICR_CACHE_DIR` (absolute), else `<cache dir>/docker-credential-icr`;
/// `None` with `DOCKER_CREDENTIAL_ICR_NO_CACHE` or without a cache directory.
pub fn token_cache_dir(env: &Env) -> Result<Option<Place>> {
    if env.is_set("DOCKER_CREDENTIAL_ICR_NO_CACHE")? {
        return Ok(None);
    }
    let dir = match env.path("DOCKER_CREDENTIAL_ICR_CACHE_DIR") {
        Some(dir) => absolute("DOCKER_CREDENTIAL_ICR_CACHE_DIR", dir)?,
        None => match env.cache_dir.as_ref() {
            Some(dir) => dir.join(APP_DIR),
            None => return Ok(None),
        },
    };
    let whose = whose(&dir);
    Ok(Some(Place { path: dir, dir: whose }))
}

/// A path from the environment, which must be absolute (the value is not repeated: it may be
/// anything a user pasted).
fn absolute(name: &str, path: PathBuf) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(Error::failed(format!(
            "{name} must be an absolute path: a relative one would keep secrets in whatever directory the client runs in"
        )))
    }
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
        assert_eq!(config_file(&env).unwrap(), Some(PathBuf::from("/h/.config/docker-credential-icr/config.json")));
        assert_eq!(
            logins_file(&env).unwrap(),
            Some(Place { path: "/h/.config/docker-credential-icr/credentials.json".into(), dir: Dir::Own })
        );
        assert_eq!(
            token_cache_dir(&env).unwrap(),
            Some(Place { path: "/h/.cache/docker-credential-icr".into(), dir: Dir::Own })
        );
        let env = Env::from_vars([
            ("HOME", "/h"),
            ("DOCKER_CREDENTIAL_ICR_CONFIG", "/etc/icr/config.json"),
            ("DOCKER_CREDENTIAL_ICR_CACHE_DIR", "/var/cache/docker-credential-icr"),
        ]);
        assert_eq!(
            logins_file(&env).unwrap(),
            Some(Place { path: "/etc/icr/credentials.json".into(), dir: Dir::Chosen })
        );
        assert_eq!(token_cache_dir(&env).unwrap().unwrap().dir, Dir::Own);
        let off = Env::from_vars([("HOME", "/h"), ("DOCKER_CREDENTIAL_ICR_NO_CACHE", "1")]);
        assert_eq!(token_cache_dir(&off).unwrap(), None);
        assert_eq!(config_file(&Env::from_vars::<&str, &str>([])).unwrap(), None);
    }

    #[test]
    fn relative_paths_are_refused_without_repeating_them() {
        for name in ["DOCKER_CREDENTIAL_ICR_CONFIG", "DOCKER_CREDENTIAL_ICR_CACHE_DIR"] {
            let env = Env::from_vars([("HOME", "/h"), (name, "k3y-looking/config.json")]);
            let err = if name.ends_with("CONFIG") {
                config_file(&env).unwrap_err()
            } else {
                token_cache_dir(&env).unwrap_err()
            };
            let err = err.to_string();
            assert!(err.starts_with(&format!("{name} must be an absolute path")) && !err.contains("k3y"), "{err}");
        }
    }
}
