//! Source 5: the `ibmcloud` CLI session, read only. `ibmcloud login` leaves a refresh token and
//! an access token in its `config.json`. In mode `iambearer` the access token is handed out while
//! it has more than a minute left; after that the refresh token is exchanged for a new one (grant
//! `refresh_token`, client `bx`, as the CLI refreshes its own session), so the registry never
//! gets the long-lived refresh token in that mode. Otherwise the refresh token is handed out
//! (`iamrefresh`). The CLI's file is never written: the new access token lives in the helper's
//! own cache.

use std::path::PathBuf;

use super::credential::{Credential, Found, Lookup, Source};
use super::environment::strip_bearer;
use crate::context::Context;
use crate::error::Result;
use crate::files;
use crate::jwt;
use crate::mode::Mode;
use crate::registry::Registry;
use crate::secret::Secret;

/// A bearer token this close to its expiry is not handed out.
const MIN_REMAINING: u64 = 60;
const MAX_FILE: u64 = 4 << 20;

pub struct CliSession;

impl Source for CliSession {
    fn name(&self) -> &'static str {
        "ibmcloud CLI session"
    }

    fn find(&self, ctx: &Context, _registry: &Registry, mode: Mode) -> Result<Lookup> {
        let Some(path) = session_file(ctx)? else {
            return Ok(Lookup::Missed("no HOME, IBMCLOUD_HOME, BLUEMIX_HOME or IBMCLOUD_CONFIG_HOME".to_owned()));
        };
        let origin = format!("ibmcloud CLI session {}", path.display());
        // Not our file: anything wrong with it is a reason to skip it, with a warning, not a failure.
        let bytes = match files::read_limited(&path, MAX_FILE, true) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(Lookup::Missed(format!("{} does not exist", path.display()))),
            Err(e) => {
                ctx.log.warn(format_args!("ignoring ibmcloud CLI session {}: {e}", path.display()));
                return Ok(Lookup::Missed(format!("{} cannot be read", path.display())));
            }
        };
        let session: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                ctx.log.warn(format_args!(
                    "ignoring ibmcloud CLI session {}: not JSON (line {} column {})",
                    path.display(),
                    e.line(),
                    e.column()
                ));
                return Ok(Lookup::Missed(format!("{} is not JSON", path.display())));
            }
        };
        let text = |field: &str| session.get(field).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty());
        let refresh = text("IAMRefreshToken").map(Secret::new);
        let bearer = text("IAMToken")
            .map(strip_bearer)
            .filter(|t| jwt::expiry(t).is_some_and(|exp| exp > ctx.clock.now().saturating_add(MIN_REMAINING)));
        let bearer = bearer.map(Secret::new);
        let wants_bearer = mode == Mode::Bearer;
        let credential = match (refresh, bearer) {
            (_, Some(b)) if wants_bearer => Credential::Bearer(b),
            (Some(r), _) => Credential::Refresh(r),
            (None, Some(b)) => Credential::Bearer(b),
            (None, None) => {
                return Ok(Lookup::Missed(format!(
                    "{} holds no refresh token and no bearer token valid for another minute: run `ibmcloud login`",
                    path.display()
                )))
            }
        };
        Ok(Lookup::Found(Found { credential, origin }))
    }
}

/// Where the CLI keeps its `config.json`, as it finds it (`config_helpers.ConfigDir`):
/// `$IBMCLOUD_CONFIG_HOME`, else `.ibmcloud` in `$IBMCLOUD_HOME` (or the deprecated
/// `$BLUEMIX_HOME`, or `$HOME`) when that exists, else `.bluemix` there.
fn session_file(ctx: &Context) -> Result<Option<PathBuf>> {
    if let Some(dir) = ctx.env.path("IBMCLOUD_CONFIG_HOME") {
        return Ok(Some(dir.join("config.json")));
    }
    let home =
        ctx.env.path("IBMCLOUD_HOME").or_else(|| ctx.env.path("BLUEMIX_HOME")).or_else(|| ctx.env.home_dir.clone());
    let Some(home) = home else { return Ok(None) };
    let ibmcloud = home.join(".ibmcloud");
    let dir = if ibmcloud.exists() { ibmcloud } else { home.join(".bluemix") };
    Ok(Some(dir.join("config.json")))
}
