//! The subcommands for humans, beyond the docker-credential protocol: `configure` (wire the
//! helper into docker and podman), `explain` (why `get` answers what it answers) and `exec` (run
//! a command with the credentials in its environment).
//!
//! Unlike the protocol actions they take their own arguments, print their report on stdout and
//! their errors on stderr (exit 1, or 2 for a usage error): nobody parses them but people.
//! `cli::run` asks [`run`] first and falls through to the protocol actions when it says `None`.

mod configure;
mod exec;
mod explain;

use std::io::Write;

use crate::context::Context;
use crate::error::{Error, Result};

/// Runs the subcommand `name` with `args`; `None` when `name` is not a subcommand.
pub fn run(name: &str, args: &[String], ctx: &Context, stdout: &mut dyn Write) -> Option<i32> {
    let result = match name {
        "configure" => configure::run(ctx, args, stdout),
        "explain" => explain::run(ctx, args, stdout),
        "exec" => exec::run(ctx, args, stdout),
        _ => return None,
    };
    Some(match result {
        Ok(status) => status,
        Err(Error::Input(message)) => {
            ctx.log.error(format_args!("{name}: {message} (see `docker-credential-icr {name} --help`)"));
            2
        }
        Err(error) => {
            ctx.log.error(format_args!("{error}"));
            1
        }
    })
}

/// Writes a report to stdout; a closed stdout is an error the user sees on stderr.
fn print(stdout: &mut dyn Write, text: &str) -> Result<()> {
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::failed(format!("cannot write to standard output: {e}")))
}

/// Whether the arguments (before any `--`) ask for help.
fn wants_help(args: &[String]) -> bool {
    args.iter().take_while(|a| *a != "--").any(|a| a == "--help" || a == "-h")
}

/// The value of an option given as `--name value` or `--name=value`, advancing `rest` past it.
/// `None` when `arg` is not this option.
fn option_value<'a>(name: &str, arg: &'a str, rest: &mut std::slice::Iter<'a, String>) -> Option<Result<&'a str>> {
    if arg == name {
        return Some(rest.next().map(String::as_str).ok_or_else(|| Error::input(format!("{name} needs a value"))));
    }
    arg.strip_prefix(name).and_then(|v| v.strip_prefix('=')).map(Ok)
}

/// An argument echoed in a message: printable and short.
pub(crate) fn shown(arg: &str) -> String {
    let mut s: String = arg.chars().filter(|c| !c.is_control()).take(64).collect();
    if arg.chars().count() > 64 {
        s.push('…');
    }
    s
}
