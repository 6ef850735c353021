//! Source 3: the environment, in this order — an API key, a ready IAM access token, an IAM
//! refresh token, the VPC instance's own identity (opt-in), or a trusted profile with a
//! compute-resource token (Kubernetes projected service-account token, Code Engine, Vault).

use std::path::Path;

use super::credential::{read_secret_file, secret_value, Credential, Found, Lookup, Source};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::iam::Profile;
use crate::mode::Mode;
use crate::registry::Registry;
use crate::secret::Secret;

/// API-key variables, first set wins (the names the `ibmcloud` CLI and Terraform read).
pub const API_KEY_VARS: [&str; 3] = ["IBMCLOUD_API_KEY", "IC_API_KEY", "BLUEMIX_API_KEY"];
/// Access-token variables, with or without a leading `Bearer `.
pub const TOKEN_VARS: [&str; 2] = ["IBMCLOUD_IAM_TOKEN", "IC_IAM_TOKEN"];
/// Refresh-token variables (the names terraform-provider-ibm reads).
pub const REFRESH_VARS: [&str; 2] = ["IBMCLOUD_IAM_REFRESH_TOKEN", "IC_IAM_REFRESH_TOKEN"];
/// The switch that makes a VPC instance use its own identity.
pub const VPC_INSTANCE_VAR: &str = "DOCKER_CREDENTIAL_ICR_VPC_INSTANCE";
/// Variables that hold a key or a long-lived token (not a short-lived access token).
pub const KEY_VARS: [&str; 6] = [
    "IBMCLOUD_API_KEY",
    "IC_API_KEY",
    "BLUEMIX_API_KEY",
    "IBMCLOUD_CR_TOKEN",
    "IBMCLOUD_IAM_REFRESH_TOKEN",
    "IC_IAM_REFRESH_TOKEN",
];
/// Where compute resources find their token when `IBMCLOUD_CR_TOKEN` is not set.
pub const DEFAULT_CR_TOKEN_PATHS: [&str; 3] = [
    "/var/run/secrets/tokens/vault-token",
    "/var/run/secrets/tokens/sa-token",
    "/var/run/secrets/codeengine.cloud.ibm.com/compute-resource-token/token",
];

pub struct Environment;

impl Source for Environment {
    fn name(&self) -> &'static str {
        "environment"
    }

    fn find(&self, ctx: &Context, _registry: &Registry, _mode: Mode) -> Result<Lookup> {
        for name in API_KEY_VARS {
            if let Some(value) = ctx.env.get(name)? {
                let key = secret_value(value, name)?;
                if !key.is_empty() {
                    return Ok(found(Credential::ApiKey(key), name));
                }
            }
        }
        for name in TOKEN_VARS {
            if let Some(value) = ctx.env.get(name)? {
                let value = value.trim();
                let token = strip_bearer(value);
                if !token.is_empty() {
                    return Ok(found(Credential::Bearer(Secret::new(token)), name));
                }
            }
        }
        for name in REFRESH_VARS {
            if let Some(value) = ctx.env.get(name)? {
                let token = value.trim();
                if !token.is_empty() {
                    return Ok(found(Credential::Refresh(Secret::new(token)), name));
                }
            }
        }
        if ctx.env.is_set(VPC_INSTANCE_VAR)? {
            let profile = match ctx.env.get("IBMCLOUD_CR_PROFILE")? {
                Some(value) => Some(instance_profile(value, "IBMCLOUD_CR_PROFILE")?),
                None => None,
            };
            let origin = match &profile {
                Some(_) => format!("{VPC_INSTANCE_VAR} with IBMCLOUD_CR_PROFILE"),
                None => VPC_INSTANCE_VAR.to_owned(),
            };
            return Ok(found(Credential::VpcInstance { profile }, &origin));
        }
        if let Some(profile) = ctx.env.get("IBMCLOUD_CR_PROFILE")? {
            let Some((cr_token, from)) = cr_token(ctx)? else {
                return Err(Error::failed(format!(
                    "IBMCLOUD_CR_PROFILE is set but there is no compute-resource token: set IBMCLOUD_CR_TOKEN (a token or @path), or run where {} exists",
                    DEFAULT_CR_TOKEN_PATHS.join(" or ")
                )));
            };
            let credential = Credential::TrustedProfile { profile: Profile::parse(profile), cr_token };
            return Ok(found(credential, &format!("IBMCLOUD_CR_PROFILE with {from}")));
        }
        Ok(Lookup::Missed(format!(
            "none of {}, {}, {}, {VPC_INSTANCE_VAR} or IBMCLOUD_CR_PROFILE is set",
            API_KEY_VARS.join(", "),
            TOKEN_VARS.join(", "),
            REFRESH_VARS.join(", ")
        )))
    }
}

impl Environment {
    /// For a service account's token: the profile `IBMCLOUD_CR_PROFILE` names.
    pub fn profile(ctx: &Context) -> Result<Option<(Profile, String)>> {
        Ok(ctx.env.get("IBMCLOUD_CR_PROFILE")?.map(|value| (Profile::parse(value), "IBMCLOUD_CR_PROFILE".to_owned())))
    }
}

fn found(credential: Credential, origin: &str) -> Lookup {
    Lookup::Found(Found { credential, origin: origin.to_owned() })
}

/// `Bearer eyJ…` or `eyJ…` → `eyJ…`.
pub fn strip_bearer(value: &str) -> &str {
    match value.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => value[7..].trim(),
        _ => value,
    }
}

/// The profile a VPC instance asks the metadata service for: an id or a CRN (the service takes
/// no names).
pub fn instance_profile(value: &str, what: &str) -> Result<Profile> {
    match Profile::parse(value) {
        Profile::Name(_) => Err(Error::failed(format!(
            "{what}: the metadata service takes a trusted profile's id (Profile-…) or CRN (crn:…), not a name"
        ))),
        profile => Ok(profile),
    }
}

/// The compute-resource token: `IBMCLOUD_CR_TOKEN` (a token or `@path`), else the first
/// readable default path. Returns the token and where it came from.
pub fn cr_token(ctx: &Context) -> Result<Option<(Secret, String)>> {
    if let Some(value) = ctx.env.get("IBMCLOUD_CR_TOKEN")? {
        return Ok(Some((secret_value(value, "IBMCLOUD_CR_TOKEN")?, "IBMCLOUD_CR_TOKEN".to_owned())));
    }
    for path in DEFAULT_CR_TOKEN_PATHS {
        if let Ok(token) = read_secret_file(Path::new(path), "compute-resource token") {
            return Ok(Some((token, path.to_owned())));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_is_optional_and_case_insensitive() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("bearer  abc"), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer("Bearer"), "Bearer");
        assert_eq!(strip_bearer("Béarer x"), "Béarer x");
    }

    #[test]
    fn a_vpc_instance_takes_an_id_or_a_crn_and_no_name() {
        assert_eq!(instance_profile("Profile-1", "X").unwrap(), Profile::Id("Profile-1".into()));
        assert_eq!(instance_profile("crn:v1:x", "X").unwrap(), Profile::Crn("crn:v1:x".into()));
        let err = instance_profile("ci-puller", "X").unwrap_err().to_string();
        assert!(err.starts_with("X: the metadata service takes") && !err.contains("ci-puller"), "{err}");
    }
}
