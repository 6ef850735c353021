//! The command line: one table of every action and subcommand, the conventions each speaks to
//! its caller by, and the exit status. `run` takes its streams, its clock, its IAM exchange and
//! its deadline as arguments, so that tests drive it in-process; `main` passes the real ones.

use std::io::{Read, Write};
use std::time::Instant;

use crate::clock::Clock;
use crate::commands;
use crate::context::Context;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::iam::{CachedExchange, Exchange, TokenCache};
use crate::invocation::{shown, Io};
use crate::kubelet;
use crate::log::{Level, Log};
use crate::{actions, paths};

pub const VERSION_LINE: &str = concat!(
    "docker-credential-icr (github.com/docker-credential-icr/docker-credential-icr) ",
    env!("CARGO_PKG_VERSION")
);

pub const USAGE: &str = "\
Usage: docker-credential-icr <get|store|erase|list|version>
       docker-credential-icr <configure|explain|exec> [arguments…]

A docker credential helper for IBM Cloud Container Registry (icr.io). Docker, podman, skopeo and
buildah call it through a \"credHelpers\" entry; it reads the request on standard input and
answers on standard output.

Actions:
  get        print the credentials for the server URL on stdin
  store      keep the login given as JSON on stdin ({\"ServerURL\",\"Username\",\"Secret\"})
  erase      forget the stored login for the server URL on stdin
  list       print the stored logins and configured registries as JSON
  version    print the version (also --version, -v)
  help       print this help (also --help, -h)
  kubelet    answer a kubelet CredentialProviderRequest on stdin (image credential provider)

Subcommands (for people; output on stdout, errors on stderr; see `<subcommand> --help`):
  configure [--registries HOST,HOST | --all] [--docker-config PATH] [--containers-auth PATH]
            [--remove] [--dry-run]
             wire the helper into docker's config.json and the containers auth file
  explain <server URL> [--check]
             show which credentials get would answer, from which source, and why
  exec <server URL> -- <command> [args…]
             run a command with ICR_USERNAME, ICR_PASSWORD and CF_DOCKER_PASSWORD set

Credentials come from, in order: a stored login, the config file's entry for the registry,
IBMCLOUD_API_KEY / IC_API_KEY / BLUEMIX_API_KEY / IBMCLOUD_IAM_TOKEN / IBMCLOUD_CR_PROFILE,
the config file's default, and the ibmcloud CLI session.
See docker-credential-icr(1) and README.md.
";

/// How an action talks to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convention {
    /// docker's credential-helper protocol: no arguments, the request on stdin, the answer on
    /// stdout; an error is one line on stdout with exit status 1 (docker and podman read stdout
    /// only).
    Protocol,
    /// The kubelet's exec-plugin convention: no arguments, the request on stdin, the response
    /// on stdout; an error goes to stderr with exit status 1 and nothing on stdout (the kubelet
    /// logs it and pulls without credentials).
    Plugin,
    /// A subcommand for people: its own arguments, a report on stdout; an error goes to stderr
    /// with exit status 1, or 2 for a usage error.
    Human,
}

/// One entry of the table.
struct Action {
    names: &'static [&'static str],
    convention: Convention,
    run: fn(&Context, &mut Io) -> Result<i32>,
}

/// Every action and subcommand, protocol and human alike.
const ACTIONS: &[Action] = &[
    Action { names: &["get"], convention: Convention::Protocol, run: actions::get },
    Action { names: &["store"], convention: Convention::Protocol, run: actions::store },
    Action { names: &["erase"], convention: Convention::Protocol, run: actions::erase },
    Action { names: &["list"], convention: Convention::Protocol, run: actions::list },
    Action { names: &["version", "--version", "-v"], convention: Convention::Protocol, run: version },
    Action { names: &["help", "--help", "-h"], convention: Convention::Protocol, run: help },
    Action { names: &["kubelet"], convention: Convention::Plugin, run: kubelet::run },
    Action { names: &["configure"], convention: Convention::Human, run: commands::configure::run },
    Action { names: &["explain"], convention: Convention::Human, run: commands::explain::run },
    Action { names: &["exec"], convention: Convention::Human, run: commands::exec::run },
];

/// The standard streams of an invocation.
pub struct Streams<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

/// Runs one invocation; returns the exit status.
pub fn run(
    args: &[String],
    env: &Env,
    clock: &dyn Clock,
    exchange: &dyn Exchange,
    deadline: Instant,
    streams: Streams,
) -> i32 {
    let Streams { stdin, stdout, stderr } = streams;
    // The value is not repeated in the warning: it may be anything a user pasted.
    let level = match env.get("DOCKER_CREDENTIAL_ICR_LOG").map(|v| v.map(Level::parse)) {
        Ok(None) => Level::Warn,
        Ok(Some(Some(level))) => level,
        Ok(Some(None)) | Err(_) => {
            let _ = writeln!(
                stderr,
                "docker-credential-icr: warning: DOCKER_CREDENTIAL_ICR_LOG is not a level (error, warn, info, debug); using warn"
            );
            Level::Warn
        }
    };
    let log = Log::new(level, stderr);
    let cache = paths::token_cache_dir(env).map(|place| place.map(TokenCache::new));
    let cached = CachedExchange::new(exchange, cache, clock, &log, deadline);
    let ctx = Context::new(env, &log, clock, &cached);

    let Some((name, rest)) = args.split_first() else {
        return fail(Convention::Protocol, "", stdout, &log, &Error::input(format!("no action given: {EXPECTED}")));
    };
    let Some(action) = ACTIONS.iter().find(|a| a.names.contains(&name.as_str())) else {
        let error = Error::input(format!("unknown action `{}`: {EXPECTED}", shown(name)));
        return fail(Convention::Protocol, name, stdout, &log, &error);
    };
    if action.convention != Convention::Human && !rest.is_empty() {
        let error = Error::input(format!("`{}` takes no arguments after the action (see --help)", shown(name)));
        return fail(action.convention, name, stdout, &log, &error);
    }
    let mut io = Io { args: rest, stdin, stdout };
    match (action.run)(&ctx, &mut io) {
        Ok(status) => status,
        Err(error) => fail(action.convention, name, io.stdout, &log, &error),
    }
}

const EXPECTED: &str = "expected get, store, erase, list or version (see --help)";

/// Reports a failure by the action's convention; returns the exit status.
fn fail(convention: Convention, name: &str, stdout: &mut dyn Write, log: &Log, error: &Error) -> i32 {
    match convention {
        Convention::Protocol => {
            if !matches!(error, Error::NotFound) {
                log.debug(format_args!("failing with: {error}"));
            }
            if writeln!(stdout, "{error}").and_then(|()| stdout.flush()).is_err() {
                log.error(format_args!("{error}"));
            }
            1
        }
        Convention::Plugin => {
            log.error(format_args!("{name}: {error}"));
            1
        }
        Convention::Human => match error {
            Error::Input(message) => {
                log.error(format_args!("{name}: {message} (see `docker-credential-icr {name} --help`)"));
                2
            }
            error => {
                log.error(format_args!("{error}"));
                1
            }
        },
    }
}

fn version(_: &Context, io: &mut Io) -> Result<i32> {
    io.print(&format!("{VERSION_LINE}\n")).map(|()| 0)
}

fn help(_: &Context, io: &mut Io) -> Result<i32> {
    io.print(USAGE).map(|()| 0)
}
