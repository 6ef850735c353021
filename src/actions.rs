//! The protocol's actions over the library: each takes the raw stdin text and returns the stdout
//! text, so that tests reach them without a process. `main` maps the `Result` to an exit status.

use std::collections::BTreeMap;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::logins::Login;
use crate::mode::Mode;
use crate::protocol;
use crate::registry::{self, Registry};
use crate::resolve;

/// `get`: the credentials for the server URL on stdin.
pub fn get(ctx: &Context, input: &str) -> Result<String> {
    let server_url = protocol::server_url(input)?;
    let Some(registry) = parse(ctx, server_url) else { return Err(Error::NotFound) };
    let answer = resolve::credentials(ctx, &registry)?;
    if answer.username == "<token>" {
        // An identity token is no username/password pair, and docker would misuse it as one.
        return Err(Error::NotFound);
    }
    Ok(protocol::format_get(server_url, &answer.username, &answer.secret))
}

/// `store`: keeps a `docker login` for an ICR host or a host the config file names.
pub fn store(ctx: &Context, input: &str) -> Result<()> {
    let request = protocol::parse_store(input)?;
    let registry = registry::parse_server_url(&request.server_url)
        .map_err(|e| Error::input(format!("cannot store a login: {e}")))?;
    if !ctx.is_ours(&registry)? {
        let config = ctx.config_path().map(|p| p.display().to_string()).unwrap_or_else(|| "the config file".into());
        return Err(Error::failed(format!(
            "{registry} is not an IBM Cloud Container Registry host and is not named in {config}: docker-credential-icr stores logins for ICR only (add the host under \"registries\" there to use it for a mirror)"
        )));
    }
    if request.username == "<token>" {
        return Err(Error::failed(format!(
            "{registry} returned an identity token; docker-credential-icr stores API keys and IAM tokens only"
        )));
    }
    ctx.logins()?.store(&registry, Login { username: request.username, secret: request.secret })?;
    ctx.log.info(format_args!("stored login for {registry}"));
    Ok(())
}

/// `erase`: forgets the stored login; not-found when there was none.
pub fn erase(ctx: &Context, input: &str) -> Result<()> {
    let server_url = protocol::server_url(input)?;
    let Some(registry) = parse(ctx, server_url) else { return Err(Error::NotFound) };
    if !ctx.is_ours(&registry)? {
        return Err(Error::NotFound);
    }
    if !ctx.logins()?.erase(&registry)? {
        return Err(Error::NotFound);
    }
    ctx.log.info(format_args!("erased login for {registry}"));
    Ok(())
}

/// `list`: the stored logins and the registries the config file names, with their usernames.
/// Never every domain of the table: those are not logins, and docker would show them as such.
pub fn list(ctx: &Context) -> Result<String> {
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    if let Some(config) = ctx.config()? {
        for registry in config.hosts.keys() {
            entries.insert(registry.to_string(), username_for(ctx, registry)?);
        }
        for (region, _) in &config.regions {
            let registry = registry::parse_server_url(region.domain).expect("table domains parse");
            entries.insert(registry.to_string(), username_for(ctx, &registry)?);
        }
    }
    if ctx.config_path().is_some() {
        entries.extend(ctx.logins()?.list()?);
    }
    Ok(protocol::format_list(&entries))
}

fn username_for(ctx: &Context, registry: &Registry) -> Result<String> {
    Ok(ctx.mode(registry).unwrap_or(Mode::ApiKey).username().to_owned())
}

fn parse(ctx: &Context, server_url: &str) -> Option<Registry> {
    match registry::parse_server_url(server_url) {
        Ok(r) => Some(r),
        Err(e) => {
            ctx.log.debug(format_args!("{e}"));
            None
        }
    }
}
