//! Logins stored by `store` (`docker login`, `podman login`, `skopeo login`) in
//! `credentials.json`, beside the config file.
//!
//! The format is versioned so a later release can migrate it; a file of an unknown version or a
//! corrupt one is reported, never overwritten, since it holds what a user typed in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files::{self, Dir};
use crate::paths::{Place, LOGINS_LOCK_TIMEOUT};
use crate::registry::Registry;
use crate::secret::Secret;
use std::time::Instant;

const VERSION: u32 = 1;
const MAX_FILE: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub username: String,
    pub secret: Secret,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    logins: BTreeMap<String, Login>,
}

/// The stored logins, keyed by registry (`host` or `host:port`).
#[derive(Debug)]
pub struct Logins {
    path: PathBuf,
    dir: Dir,
}

impl Logins {
    pub fn new(place: Place) -> Self {
        Logins { path: place.path, dir: place.dir }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The login stored for exactly this registry.
    pub fn get(&self, registry: &Registry) -> Result<Option<Login>> {
        Ok(self.read()?.logins.remove(&registry.to_string()))
    }

    /// Every stored login: registry → username.
    pub fn list(&self) -> Result<BTreeMap<String, String>> {
        Ok(self.read()?.logins.into_iter().map(|(k, v)| (k, v.username)).collect())
    }

    pub fn store(&self, registry: &Registry, login: Login) -> Result<()> {
        self.update(|file| {
            file.logins.insert(registry.to_string(), login);
            true
        })
        .map(|_| ())
    }

    /// Removes the login for this registry; `false` when there was none.
    /// Removes the login for `registry`; `false` when there was none. With no file at all
    /// nothing is created, not even the lock.
    pub fn erase(&self, registry: &Registry) -> Result<bool> {
        if self.path.symlink_metadata().is_err() {
            return Ok(false);
        }
        self.update(|file| file.logins.remove(&registry.to_string()).is_some())
    }

    fn read(&self) -> Result<File> {
        if self.path.exists() {
            self.check()?;
        }
        let bytes = files::read_limited(&self.path, MAX_FILE, false).map_err(|e| self.failure("cannot read", e))?;
        let Some(bytes) = bytes else { return Ok(File { version: VERSION, logins: BTreeMap::new() }) };
        let file: File = serde_json::from_slice(&bytes).map_err(|e| {
            Error::failed(format!(
                "stored logins file {} is not valid ({}): fix it, or remove it and log in again",
                self.path.display(),
                e.classify_and_position()
            ))
        })?;
        if file.version != VERSION {
            return Err(Error::failed(format!(
                "stored logins file {} has version {}, which this release does not know (it writes version {VERSION}): upgrade docker-credential-icr",
                self.path.display(),
                file.version
            )));
        }
        Ok(file)
    }

    /// Read-modify-write under the lock; writes only when `change` says something changed.
    fn update(&self, change: impl FnOnce(&mut File) -> bool) -> Result<bool> {
        self.check()?;
        let lock_file = files::lock_path(&self.path);
        let _lock = files::lock(&lock_file, Instant::now() + LOGINS_LOCK_TIMEOUT, self.dir)
            .map_err(|e| self.failure("cannot lock", e))?
            .ok_or_else(|| {
                Error::failed(format!(
                    "another docker-credential-icr held the lock {} for {} s: try again",
                    lock_file.display(),
                    LOGINS_LOCK_TIMEOUT.as_secs()
                ))
            })?;
        let mut file = self.read()?;
        if !change(&mut file) {
            return Ok(false);
        }
        let mut bytes = serde_json::to_vec_pretty(&file).expect("logins always serialize");
        bytes.push(b'\n');
        files::write_atomic(&self.path, &bytes, files::Writing::secret(self.dir))
            .map_err(|e| self.failure("cannot write", e))?;
        Ok(true)
    }

    /// The stored logins are used only where no one else could have put them (see
    /// `files::check_private`).
    fn check(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        files::check_private(dir, Some(&self.path)).map_err(|why| {
            Error::failed(format!(
                "stored logins in {} are not used: {why}; they must be in a directory that is yours and that only you can write (chmod go-w it, or set DOCKER_CREDENTIAL_ICR_CONFIG elsewhere)",
                dir.display()
            ))
        })
    }

    fn failure(&self, what: &str, e: std::io::Error) -> Error {
        Error::failed(format!("{what} stored logins file {}: {e}", self.path.display()))
    }
}

/// serde_json's error without the text it quotes from the input: a corrupt credentials file may
/// hold a secret, and an error line must never show one.
trait Classify {
    fn classify_and_position(&self) -> String;
}

impl Classify for serde_json::Error {
    fn classify_and_position(&self) -> String {
        let what = match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "unexpected content",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        format!("{what} at line {} column {}", self.line(), self.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::parse_server_url;
    use std::os::unix::fs::PermissionsExt;

    fn login(secret: &str) -> Login {
        Login { username: "iamapikey".into(), secret: Secret::new(secret) }
    }

    #[test]
    fn store_get_list_erase_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let logins = Logins::new(Place { path: tmp.path().join("d/credentials.json"), dir: Dir::Own });
        let us = parse_server_url("us.icr.io").unwrap();
        let de = parse_server_url("de.icr.io").unwrap();
        assert_eq!(logins.get(&us).unwrap(), None);
        logins.store(&us, login("k1")).unwrap();
        logins.store(&de, login("k2")).unwrap();
        assert_eq!(logins.get(&us).unwrap(), Some(login("k1")));
        assert_eq!(logins.list().unwrap().keys().collect::<Vec<_>>(), ["de.icr.io", "us.icr.io"]);
        assert!(logins.erase(&us).unwrap());
        assert!(!logins.erase(&us).unwrap());
        assert_eq!(logins.get(&us).unwrap(), None);
        let mode = std::fs::metadata(logins.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_corrupt_file_is_reported_without_its_contents_and_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("credentials.json");
        let corrupt = r#"{"version":1,"logins":{"us.icr.io":{"username":"iamapikey","secret":"hunter2-secret"#;
        std::fs::write(&path, corrupt).unwrap();
        let logins = Logins::new(Place { path: path.clone(), dir: Dir::Chosen });
        let us = parse_server_url("us.icr.io").unwrap();
        let err = logins.store(&us, login("k")).unwrap_err().to_string();
        assert!(err.contains("not valid") && !err.contains("hunter2"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), corrupt);
        let err = logins.get(&us).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn an_unknown_version_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("credentials.json");
        std::fs::write(&path, r#"{"version":2,"logins":{}}"#).unwrap();
        let err = Logins::new(Place { path, dir: Dir::Chosen }).list().unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
    }
}
