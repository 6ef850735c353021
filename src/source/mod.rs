//! Where credentials come from (SPEC section 4), in the order they are consulted: a stored
//! login, the config file's entry for the registry, the environment, the config file's default,
//! the `ibmcloud` CLI session. First hit wins; the more specific comes before the more general.
//!
//! Each source is a small type behind [`Source`]; it answers `Found` or says in `Missed` why it
//! did not apply (which `explain` shows). A source that is configured but broken — a key file
//! that cannot be read — is an error, not a miss: falling through to a more general source would
//! silently hand out another account's credentials.

mod config;
mod credential;
mod environment;
mod session;
mod stored;

use std::collections::BTreeMap;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::iam::Profile;
use crate::registry::Registry;

pub use credential::{read_secret_file, secret_value, Credential, Found, Lookup, Source};
pub use environment::DEFAULT_CR_TOKEN_PATHS;

/// The annotation that names the trusted profile of a service account's pods by id.
pub const PROFILE_ID_ANNOTATION: &str = "icr.ibm.com/trusted-profile-id";
/// The annotation that names the trusted profile of a service account's pods by name.
pub const PROFILE_NAME_ANNOTATION: &str = "icr.ibm.com/trusted-profile-name";

/// The sources in the order they are consulted.
pub fn sources() -> [&'static dyn Source; 5] {
    [
        &stored::StoredLogin,
        &config::ConfigEntry,
        &environment::Environment,
        &config::ConfigDefault,
        &session::CliSession,
    ]
}

/// The environment variables that may hold a key or a long-lived token the helper reads: the
/// API-key variables, the compute-resource token, and every variable the config file names with
/// `apiKeyEnv`. `exec` keeps them from a child that gets a token instead.
pub fn key_variables(ctx: &Context) -> Result<Vec<String>> {
    let mut names: Vec<String> = environment::KEY_VARS.iter().map(|n| n.to_string()).collect();
    if let Some(config) = ctx.config()? {
        names.extend(config.key_variables().map(str::to_owned));
    }
    Ok(names)
}

/// The trusted profile a Kubernetes service account's token is exchanged for, and where it was
/// named, in this order: the service account's annotation (only annotations the kubelet's
/// `CredentialProviderConfig` lists ever reach the plugin, so listing them there is the
/// permission to use them), the config file's entry for the registry (whatever it holds: a key
/// there means the node's key), `IBMCLOUD_CR_PROFILE`, the config file's default. `None`: the
/// pod gets the node's credentials, found as [`sources`] finds them.
pub fn service_account_profile(
    ctx: &Context,
    registry: &Registry,
    annotations: &BTreeMap<String, String>,
) -> Result<Option<(Profile, String)>> {
    let annotated = |key: &str| annotations.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    match (annotated(PROFILE_ID_ANNOTATION), annotated(PROFILE_NAME_ANNOTATION)) {
        (Some(_), Some(_)) => {
            return Err(Error::failed(format!(
                "the service account has both {PROFILE_ID_ANNOTATION} and {PROFILE_NAME_ANNOTATION}: keep one"
            )))
        }
        (Some(id), None) => return Ok(Some((Profile::Id(id.to_owned()), PROFILE_ID_ANNOTATION.to_owned()))),
        (None, Some(name)) => return Ok(Some((Profile::Name(name.to_owned()), PROFILE_NAME_ANNOTATION.to_owned()))),
        (None, None) => {}
    }
    if let Some(entry) = config::ConfigEntry::profile(ctx, registry)? {
        return Ok(entry);
    }
    if let Some(profile) = environment::Environment::profile(ctx)? {
        return Ok(Some(profile));
    }
    config::ConfigDefault::profile(ctx)
}
