//! Sources 2 and 4: the config file's entry for the registry (host, then region) and its default.

use super::credential::{read_secret_file, Credential, Found, Lookup, Source};
use super::environment;
use crate::config::KeySource;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::iam::Profile;
use crate::mode::Mode;
use crate::registry::Registry;
use crate::secret::Secret;

pub struct ConfigEntry;

impl Source for ConfigEntry {
    fn name(&self) -> &'static str {
        "config entry"
    }

    fn find(&self, ctx: &Context, registry: &Registry, _mode: Mode) -> Result<Lookup> {
        let Some(config) = ctx.config()? else {
            return Ok(Lookup::Missed("no config file".to_owned()));
        };
        match config.resolve(registry).credential {
            Some((key, source)) => {
                let what = format!("config file {}, registries.{key}", config.path.display());
                Ok(Lookup::Found(Found { credential: credential(ctx, source, &what)?, origin: what }))
            }
            None => Ok(Lookup::Missed(format!(
                "config file {} has no credential for {registry} or its region",
                config.path.display()
            ))),
        }
    }
}

pub struct ConfigDefault;

impl Source for ConfigDefault {
    fn name(&self) -> &'static str {
        "config default"
    }

    fn find(&self, ctx: &Context, _registry: &Registry, _mode: Mode) -> Result<Lookup> {
        let Some(config) = ctx.config()? else {
            return Ok(Lookup::Missed("no config file".to_owned()));
        };
        match &config.default.credential {
            Some(source) => {
                let what = format!("config file {}, default", config.path.display());
                Ok(Lookup::Found(Found { credential: credential(ctx, source, &what)?, origin: what }))
            }
            None => Ok(Lookup::Missed(format!("config file {} has no default credential", config.path.display()))),
        }
    }
}

impl ConfigEntry {
    /// For a service account's token: `Some` when the registry (or its region) has an entry
    /// with a credential, which decides whatever it is — the trusted profile it names, or none
    /// (a key there means the node's key).
    pub fn profile(ctx: &Context, registry: &Registry) -> Result<Option<Option<(Profile, String)>>> {
        let resolved = ctx.config()?.and_then(|c| c.resolve(registry).credential);
        Ok(resolved.map(|(entry, credential)| match credential {
            KeySource::TrustedProfile(tp) => Some((tp.profile.clone(), format!("config entry {entry}"))),
            _ => None,
        }))
    }
}

impl ConfigDefault {
    /// For a service account's token: the default's trusted profile, if that is what it holds.
    pub fn profile(ctx: &Context) -> Result<Option<(Profile, String)>> {
        Ok(match ctx.config()?.and_then(|c| c.default.credential.as_ref()) {
            Some(KeySource::TrustedProfile(tp)) => Some((tp.profile.clone(), "config default".to_owned())),
            _ => None,
        })
    }
}

/// The credential a config entry points at. Whatever it points at must be there: an unset
/// `apiKeyEnv` is an error, not a reason to try the next source.
fn credential(ctx: &Context, source: &KeySource, what: &str) -> Result<Credential> {
    Ok(match source {
        KeySource::Inline(key) => Credential::ApiKey(key.clone()),
        KeySource::File(path) => Credential::ApiKey(read_secret_file(path, &format!("{what}.apiKeyFile"))?),
        KeySource::Env(name) => {
            let value = ctx
                .env
                .get(name)?
                .ok_or_else(|| Error::failed(format!("{what}.apiKeyEnv names {name}, which is not set or empty")))?;
            Credential::ApiKey(Secret::new(value.trim()))
        }
        KeySource::TrustedProfile(tp) => {
            let cr_token = match &tp.cr_token_file {
                Some(path) => read_secret_file(path, &format!("{what}.trustedProfile.crTokenFile"))?,
                None => environment::cr_token(ctx)?.map(|(token, _)| token).ok_or_else(|| {
                    Error::failed(format!(
                        "{what}.trustedProfile: no compute-resource token: set crTokenFile or IBMCLOUD_CR_TOKEN, or run where {} exists",
                        environment::DEFAULT_CR_TOKEN_PATHS.join(" or ")
                    ))
                })?,
            };
            Credential::TrustedProfile { profile: tp.profile.clone(), cr_token }
        }
        KeySource::VpcInstance(profile) => Credential::VpcInstance { profile: profile.clone() },
    })
}
