//! The command line: which action, which exit status. `run` takes its streams as arguments so
//! that tests can drive it without a process; `main` passes the real ones.

use std::io::{Read, Write};

use crate::actions;
use crate::clock::SystemClock;
use crate::context::Context;
use crate::env::Env;
use crate::error::Error;
use crate::iam::{CachedExchange, Exchange, TokenCache};
use crate::log::{Level, Log};
use crate::protocol;

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

/// Runs one invocation; returns the exit status.
pub fn run(
    args: &[String],
    env: &Env,
    exchange: &dyn Exchange,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let level = match env.get("DOCKER_CREDENTIAL_ICR_LOG") {
        None => Level::Warn,
        Some(value) => match Level::parse(value) {
            Some(level) => level,
            None => {
                let _ = writeln!(
                    stderr,
                    "docker-credential-icr: warning: DOCKER_CREDENTIAL_ICR_LOG=`{value}` is not a level (error, warn, info, debug); using warn"
                );
                Level::Warn
            }
        },
    };
    let log = Log::new(level, stderr);
    let clock = SystemClock;
    let cached =
        CachedExchange { inner: exchange, cache: token_cache(env), clock: &clock, log: &log, lock_timeout: LOCK_WAIT };
    let ctx = Context::new(env, &log, &clock, &cached);

    // The subcommands for humans take their own arguments; the protocol actions take none.
    if let [name, rest @ ..] = args {
        if let Some(status) = crate::commands::run(name, rest, &ctx, stdout) {
            return status;
        }
    }
    let action = match args {
        [action] => action.as_str(),
        [] => {
            return fail(
                stdout,
                &log,
                &Error::input("no action given: expected get, store, erase, list or version (see --help)"),
            )
        }
        [action, ..] => {
            return fail(
                stdout,
                &log,
                &Error::input(format!(
                    "`{}` takes no arguments after the action (see --help)",
                    crate::commands::shown(action)
                )),
            )
        }
    };
    if action == "kubelet" {
        // The kubelet's exec-plugin convention, not docker's: errors on stderr, nothing on stdout.
        return crate::kubelet::serve(&ctx, stdin, stdout);
    }
    let result = match action {
        "get" => protocol::read_input(stdin).and_then(|input| actions::get(&ctx, &input)),
        "store" => protocol::read_input(stdin).and_then(|input| actions::store(&ctx, &input)).map(|()| String::new()),
        "erase" => protocol::read_input(stdin).and_then(|input| actions::erase(&ctx, &input)).map(|()| String::new()),
        "list" => actions::list(&ctx),
        "version" | "--version" | "-v" => Ok(format!("{VERSION_LINE}\n")),
        "help" | "--help" | "-h" => Ok(USAGE.to_owned()),
        other => Err(Error::input(format!(
            "unknown action `{}`: expected get, store, erase, list or version (see --help)",
            crate::commands::shown(other)
        ))),
    };
    match result {
        Ok(out) => match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
            Ok(()) => 0,
            Err(e) => {
                log.error(format_args!("cannot write the answer to standard output: {e}"));
                1
            }
        },
        Err(e) => fail(stdout, &log, &e),
    }
}

/// How long a `get` waits for another process's IAM exchange of the same credential: a little
/// longer than one exchange may take (15 s), so that `get` as a whole stays under 20 s.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(17);

/// `DOCKER_CREDENTIAL_ICR_CACHE_DIR`, else `<cache dir>/docker-credential-icr`; none with
/// `DOCKER_CREDENTIAL_ICR_NO_CACHE`.
pub fn token_cache(env: &Env) -> Option<TokenCache> {
    if env.is_set("DOCKER_CREDENTIAL_ICR_NO_CACHE") {
        return None;
    }
    let dir = match env.get("DOCKER_CREDENTIAL_ICR_CACHE_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => env.cache_dir.as_ref()?.join(crate::context::APP_DIR),
    };
    Some(TokenCache::new(dir))
}

/// Errors go to stdout, one line, exit 1: docker and podman read stdout only.
fn fail(stdout: &mut dyn Write, log: &Log, error: &Error) -> i32 {
    if !matches!(error, Error::NotFound) {
        log.debug(format_args!("failing with: {error}"));
    }
    let _ = writeln!(stdout, "{error}");
    let _ = stdout.flush();
    1
}
