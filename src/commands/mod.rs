//! The subcommands for humans, beyond the docker-credential protocol: `configure` (wire the
//! helper into docker, podman and helm; with `--kubelet`, into a Kubernetes node), `explain` (why `get` answers what it answers) and `exec` (run
//! a command with the credentials in its environment).
//!
//! Unlike the protocol actions they take their own arguments, print their report on stdout and
//! their errors on stderr (exit 1, or 2 for a usage error, an `Error::Input`): nobody parses them
//! but people. They are entries of the one dispatch table in `cli`.

pub mod configure;
pub mod exec;
pub mod explain;
mod kubelet_setup;

use crate::error::{Error, Result};

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
