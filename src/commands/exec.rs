//! `exec <server URL> -- <command> [args…]`: runs a command with the credentials `get` would
//! answer in its environment — `ICR_USERNAME`, `ICR_PASSWORD` and `CF_DOCKER_PASSWORD` — so that
//! tools that take a password (`cf push --docker-username`, `buildah --creds`,
//! `helm registry login --password-stdin`) get it without a shell history, a terminal or a
//! process argument list ever holding it.
//!
//! The helper stays the command's parent: it passes the exit status through (a child killed by
//! signal N gives 128 + N, as a shell does) and forwards SIGINT, SIGTERM and SIGHUP sent to it,
//! so that a CI runner or `timeout` stopping the helper stops the command. The signals are
//! blocked in the helper and collected by a thread with `sigwaitinfo`, which needs no signal
//! handler (and so no async-signal-safety reasoning); the child starts with the signal mask the
//! helper was started with (`sys::signals::start_as_before`: std would pass on the helper's,
//! with those signals blocked) and their default dispositions. A signal the terminal sent
//! (Ctrl-C, hangup) has already reached the child through the foreground process group, so it
//! is not sent a second time.
//!
//! When what the command gets is a token (`iambearer`, `iamrefresh`), the variables that hold
//! the key it was bought with are taken out of its environment: the point of those modes is that
//! the key stays with the helper.

use std::io;
use std::process::Command;
use std::sync::{Arc, Mutex};

use super::wants_help;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::invocation::{shown, Io};
use crate::resolve::{self, Outcome, Step};
use crate::source;
use crate::sys::signals;

const USAGE: &str = "\
Usage: docker-credential-icr exec <server URL> -- <command> [args…]

Runs the command with ICR_USERNAME, ICR_PASSWORD and CF_DOCKER_PASSWORD set to the credentials
`get` would answer for the server URL, and exits with its exit status. For example:

  docker-credential-icr exec us.icr.io -- sh -c 'buildah push --creds \"$ICR_USERNAME:$ICR_PASSWORD\" app us.icr.io/ns/app'
  docker-credential-icr exec us.icr.io -- cf push app --docker-image us.icr.io/ns/app --docker-username iamapikey
";

pub fn run(ctx: &Context, io: &mut Io) -> Result<i32> {
    let args = io.args;
    if wants_help(args) {
        io.print(USAGE)?;
        return Ok(0);
    }
    let (server_url, command) = match args {
        [url, dash, command @ ..] if dash == "--" => (url, command),
        [url, command @ ..] => (url, command),
        [] => return Err(Error::input("no server URL given")),
    };
    if server_url.starts_with('-') {
        return Err(Error::input(format!("unknown argument `{}`", shown(server_url))));
    }
    let Some((program, program_args)) = command.split_first() else {
        return Err(Error::input("no command given after the server URL and `--`"));
    };
    let not_found = |why: &str| {
        Error::failed(format!(
            "no credentials for {}: {why}; `docker-credential-icr explain {}` shows why; {} was not run",
            shown(server_url),
            shown(server_url),
            shown(program)
        ))
    };
    let planned = resolve::plan(ctx, server_url, &mut |event| resolve::log_event(ctx.log, event))
        .map_err(|e| Error::failed(format!("{e}; {} was not run", shown(program))))?;
    let plan = match planned {
        Outcome::Plan(plan) => plan,
        Outcome::NotFound(resolve::NotFound::NotARegistry(e)) => return Err(not_found(&e.to_string())),
        Outcome::NotFound(why) => {
            why.log(ctx.log);
            return Err(not_found("get would answer not-found"));
        }
    };
    let registry = plan.registry.clone();
    let keeps_the_key = matches!(plan.step, Step::Exchange(_));
    let answer =
        resolve::execute(ctx, plan).map_err(|e| Error::failed(format!("{e}; {} was not run", shown(program))))?;
    ctx.log.info(format_args!("running {} with the credentials for {registry} from {}", shown(program), answer.origin));

    let mut command = Command::new(program);
    command
        .args(program_args)
        .env("ICR_USERNAME", &answer.username)
        .env("ICR_PASSWORD", answer.secret.expose())
        .env("CF_DOCKER_PASSWORD", answer.secret.expose());
    if keeps_the_key {
        for name in source::key_variables(ctx)? {
            command.env_remove(name);
        }
    }
    let blocked = signals::block();
    signals::start_as_before(&mut command, blocked);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            // As a shell: 127 for a command that is not there, 126 for one that cannot run.
            let status = if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 };
            ctx.log.error(format_args!("cannot run {}: {e}", shown(program)));
            return Ok(status);
        }
    };
    let reaped = Arc::new(Mutex::new(false));
    signals::forward(blocked, child.id(), Arc::clone(&reaped));
    signals::wait_without_reaping(child.id());
    // From here on the pid may be reused once reaped: the forwarder must not signal it.
    *reaped.lock().unwrap_or_else(|e| e.into_inner()) = true;
    let status = child.wait().map_err(|e| Error::failed(format!("cannot wait for {}: {e}", shown(program))))?;
    Ok(signals::exit_code(status))
}
