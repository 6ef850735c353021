//! Which certificate authorities the helper trusts when it talks to IAM over TLS.
//!
//! As curl, OpenSSL and Go do: `SSL_CERT_FILE` (a PEM bundle) and `SSL_CERT_DIR` (directories of
//! PEM files, colon-separated) when either is set, else the operating system's store (on Linux
//! the distribution's bundle, `/etc/ssl/certs/ca-certificates.crt` on Debian, found where
//! OpenSSL looks); where there is no store at all (a distroless or scratch image), the bundled
//! Mozilla roots. The config file's `iamCaFile` is added to whichever it is: a private CA for a
//! private IAM, or the CA of a TLS-inspecting proxy.
//!
//! The store is read when an exchange is first made over TLS, never on a `get` that needs no
//! IAM, so it costs nothing on the paths that answer from a key or the token cache.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::env::Env;
use crate::error::{Error, Result};
use crate::files;

/// A CA file is small; anything larger is not one.
const MAX_CA_FILE: u64 = 4 << 20;

/// Where the trusted roots come from, as the environment says.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    cert_file: Option<PathBuf>,
    cert_dirs: Vec<PathBuf>,
}

/// The roots, and what they are, for messages.
pub struct Roots {
    pub certs: Vec<CertificateDer<'static>>,
    pub from: String,
}

impl Trust {
    pub fn from_env(env: &Env) -> Trust {
        Trust {
            cert_file: env.path("SSL_CERT_FILE"),
            cert_dirs: env
                .path("SSL_CERT_DIR")
                .map(|dirs| std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()).collect())
                .unwrap_or_default(),
        }
    }

    /// The roots to trust, with `ca_file` (the config's `iamCaFile`) added.
    pub fn roots(&self, ca_file: Option<&Path>) -> Result<Roots> {
        self.roots_with(ca_file, || rustls_native_certs::load_native_certs().certs)
    }

    /// [`Trust::roots`], with the system's store read by `system`.
    fn roots_with(
        &self,
        ca_file: Option<&Path>,
        system: impl FnOnce() -> Vec<CertificateDer<'static>>,
    ) -> Result<Roots> {
        let (mut certs, mut from) = if self.cert_file.is_some() || !self.cert_dirs.is_empty() {
            let mut certs = Vec::new();
            if let Some(file) = &self.cert_file {
                certs.extend(rustls_native_certs::load_certs_from_paths(Some(file), None).certs);
            }
            for dir in &self.cert_dirs {
                certs.extend(rustls_native_certs::load_certs_from_paths(None, Some(dir)).certs);
            }
            (certs, "SSL_CERT_FILE and SSL_CERT_DIR".to_owned())
        } else {
            match system() {
                certs if certs.is_empty() => (
                    webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec(),
                    "the bundled roots (this system has no trust store)".to_owned(),
                ),
                certs => (certs, "the system's trust store".to_owned()),
            }
        };
        if let Some(path) = ca_file {
            certs.extend(read_ca_file(path)?);
            from.push_str(" and iamCaFile");
        }
        Ok(Roots { certs, from })
    }
}

/// The certificates of a PEM file; a file with none is an error.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let fail = |why: String| Error::failed(format!("iamCaFile {}: {why}", path.display()));
    let bytes = files::read_limited(path, MAX_CA_FILE, true)
        .map_err(|e| fail(format!("cannot read it: {e}")))?
        .ok_or_else(|| fail("does not exist".to_owned()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| fail("is not a PEM file of certificates".to_owned()))?;
    if certs.is_empty() {
        return Err(fail("holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)".to_owned()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_system_store_means_the_bundled_roots_and_a_ca_file_joins_them() {
        let trust = Trust::default();
        let roots = trust.roots_with(None, Vec::new).unwrap();
        assert_eq!(roots.certs.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(roots.certs.len() > 100 && roots.from.starts_with("the bundled roots"), "{}", roots.from);
        let tmp = tempfile::tempdir().unwrap();
        let ca = tmp.path().join("ca.pem");
        std::fs::write(&ca, rcgen_free_pem()).unwrap();
        assert_eq!(trust.roots_with(Some(&ca), Vec::new).unwrap().certs.len(), roots.certs.len() + 1);
        // A store with anything in it is the store, without the bundled roots.
        let one = || webpki_root_certs::TLS_SERVER_ROOT_CERTS[..1].to_vec();
        assert_eq!(trust.roots_with(None, one).unwrap().from, "the system's trust store");
    }

    #[test]
    fn ssl_cert_file_replaces_the_store_and_a_ca_file_adds_to_it() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = rcgen_free_pem();
        let file = tmp.path().join("bundle.pem");
        std::fs::write(&file, &ca).unwrap();
        let trust = Trust { cert_file: Some(file.clone()), cert_dirs: Vec::new() };
        assert_eq!(trust.roots(None).unwrap().certs.len(), 1);
        assert_eq!(trust.roots(Some(&file)).unwrap().certs.len(), 2);
        let in_dir = Trust { cert_file: None, cert_dirs: vec![tmp.path().to_owned()] };
        assert_eq!(in_dir.roots(None).unwrap().certs.len(), 1);
        let missing = trust.roots(Some(&tmp.path().join("none.pem"))).err().unwrap().to_string();
        assert!(missing.starts_with("iamCaFile ") && missing.ends_with("does not exist"), "{missing}");
        std::fs::write(tmp.path().join("empty.pem"), "not a certificate").unwrap();
        let empty = trust.roots(Some(&tmp.path().join("empty.pem"))).err().unwrap().to_string();
        assert!(empty.contains("holds no certificate"), "{empty}");
    }

    /// One of the bundled roots, as PEM: a real certificate without generating one.
    fn rcgen_free_pem() -> String {
        use base64::Engine;
        let der = webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
    }
}
