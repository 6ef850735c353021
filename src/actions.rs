//! The protocol's actions: `get`, `store`, `erase`, `list` (SPEC section 2). Each reads its
//! request from stdin and writes its answer to stdout through the [`Io`] the dispatcher hands it;
//! an error goes back to the dispatcher, which prints it as the protocol wants.

use std::collections::BTreeMap;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::invocation::Io;
use crate::logins::Login;
use crate::mode::Mode;
use crate::protocol;
use crate::registry::{self, Registry};
use crate::resolve::{self, Outcome};

/// `get`: the credentials for the server URL on stdin.
pub fn get(ctx: &Context, io: &mut Io) -> Result<i32> {
    let input = protocol::read_input(&mut io.stdin)?;
    let server_url = protocol::server_url(&input)?;
    let plan = match resolve::plan(ctx, server_url, &mut |event| resolve::log_event(ctx.log, event))? {
        Outcome::Plan(plan) => plan,
        Outcome::NotFound(why) => {
            why.log(ctx.log);
            return Err(Error::NotFound);
        }
    };
    let answer = resolve::execute(ctx, plan)?;
    io.print(&protocol::format_get(server_url, &answer.username, &answer.secret))?;
    Ok(0)
}

/// `store`: keeps a `docker login` for an ICR host or a host the config file names.
pub fn store(ctx: &Context, io: &mut Io) -> Result<i32> {
    let input = protocol::read_input(&mut io.stdin)?;
    let request = protocol::parse_store(&input)?;
    let registry = registry::parse_server_url(&request.server_url)
        .map_err(|e| Error::input(format!("cannot store a login: {e}")))?;
    if let Some(not_ours) = resolve::not_ours(ctx, &registry)? {
        return Err(Error::failed(format!(
            "{not_ours}: docker-credential-icr stores logins for ICR only (add the host under \"registries\" there to use it for a mirror)"
        )));
    }
    if request.username == "<token>" {
        return Err(Error::failed(format!(
            "{registry} returned an identity token; docker-credential-icr stores API keys and IAM tokens only"
        )));
    }
    ctx.logins_to_write()?.store(&registry, Login { username: request.username, secret: request.secret })?;
    ctx.log.info(format_args!("stored login for {registry}"));
    Ok(0)
}

/// `erase`: forgets the stored login. For a host the helper serves it succeeds whether or not
/// one was stored, as docker-credential-pass does: `docker logout` twice, or Ansible's
/// `docker_login state=absent`, must not fail the second time. A host it does not serve is
/// not-found.
pub fn erase(ctx: &Context, io: &mut Io) -> Result<i32> {
    let input = protocol::read_input(&mut io.stdin)?;
    let server_url = protocol::server_url(&input)?;
    let registry = match registry::parse_server_url(server_url) {
        Ok(registry) => registry,
        Err(e) => {
            resolve::NotFound::NotARegistry(e).log(ctx.log);
            return Err(Error::NotFound);
        }
    };
    if let Some(not_ours) = resolve::not_ours(ctx, &registry)? {
        resolve::NotFound::NotOurs(not_ours).log(ctx.log);
        return Err(Error::NotFound);
    }
    if ctx.logins_to_write()?.erase(&registry)? {
        ctx.log.info(format_args!("erased login for {registry}"));
    } else {
        ctx.log.info(format_args!("no login stored for {registry}: nothing to erase"));
    }
    Ok(0)
}

/// `list`: the stored logins and the registries the config file names, with their usernames.
/// Never every domain of the table: those are not logins, and docker would show them as such.
pub fn list(ctx: &Context, io: &mut Io) -> Result<i32> {
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
    if let Some(logins) = ctx.logins()? {
        entries.extend(logins.list()?);
    }
    io.print(&protocol::format_list(&entries))?;
    Ok(0)
}

fn username_for(ctx: &Context, registry: &Registry) -> Result<String> {
    Ok(ctx.mode(registry).unwrap_or(Mode::ApiKey).username().to_owned())
}
