//! Source 1: the login `store` kept for exactly this registry.

use super::credential::{Credential, Found, Lookup, Source};
use crate::context::Context;
use crate::error::Result;
use crate::mode::Mode;
use crate::registry::Registry;

pub struct StoredLogin;

impl Source for StoredLogin {
    fn name(&self) -> &'static str {
        "stored login"
    }

    fn find(&self, ctx: &Context, registry: &Registry, _mode: Mode) -> Result<Lookup> {
        let Some(logins) = ctx.logins()? else {
            return Ok(Lookup::Missed("no config directory, so no stored logins".to_owned()));
        };
        let Some(login) = logins.get(registry)? else {
            return Ok(Lookup::Missed(format!("no login stored for {registry} in {}", logins.path().display())));
        };
        // `docker login -u iamapikey` stores an API key, which the mode may exchange; the other
        // IAM usernames say what the secret already is; any other username is a plain login.
        let credential = match Mode::from_username(&login.username) {
            Some(Mode::ApiKey) => Credential::ApiKey(login.secret),
            Some(Mode::Bearer) => Credential::Bearer(login.secret),
            Some(Mode::Refresh) => Credential::Refresh(login.secret),
            None => Credential::Login { username: login.username, secret: login.secret },
        };
        Ok(Lookup::Found(Found { credential, origin: format!("stored login for {registry}") }))
    }
}
