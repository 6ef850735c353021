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
//! handler (and so no async-signal-safety reasoning); the child starts with an empty signal mask
//! because std's `Command` resets it. A signal the terminal sent (Ctrl-C, hangup) has already
//! reached the child through the foreground process group, so it is not sent a second time.

use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::{Arc, Mutex};

use super::{print, shown, wants_help};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::registry;
use crate::resolve;

const USAGE: &str = "\
Usage: docker-credential-icr exec <server URL> -- <command> [args…]

Runs the command with ICR_USERNAME, ICR_PASSWORD and CF_DOCKER_PASSWORD set to the credentials
`get` would answer for the server URL, and exits with its exit status. For example:

  docker-credential-icr exec us.icr.io -- sh -c 'buildah push --creds \"$ICR_USERNAME:$ICR_PASSWORD\" app us.icr.io/ns/app'
  docker-credential-icr exec us.icr.io -- cf push app --docker-image us.icr.io/ns/app --docker-username iamapikey
";

const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

pub fn run(ctx: &Context, args: &[String], stdout: &mut dyn Write) -> Result<i32> {
    if wants_help(args) {
        print(stdout, USAGE)?;
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
    let registry = registry::parse_server_url(server_url).map_err(|e| not_found(&e.to_string()))?;
    let answer = match resolve::credentials(ctx, &registry) {
        Err(Error::NotFound) => return Err(not_found("get would answer not-found")),
        Err(e) => return Err(Error::failed(format!("{e}; {} was not run", shown(program)))),
        Ok(answer) if answer.username == "<token>" => return Err(not_found("get would answer not-found")),
        Ok(answer) => answer,
    };
    ctx.log.info(format_args!("running {} with the credentials for {registry} from {}", shown(program), answer.origin));

    let mut command = Command::new(program);
    command
        .args(program_args)
        .env("ICR_USERNAME", &answer.username)
        .env("ICR_PASSWORD", answer.secret.expose())
        .env("CF_DOCKER_PASSWORD", answer.secret.expose());
    let signals = block_signals();
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
    forward_signals(signals, child.id() as libc::pid_t, Arc::clone(&reaped));
    wait_without_reaping(child.id() as libc::pid_t);
    // From here on the pid may be reused once reaped: the forwarder must not signal it.
    *reaped.lock().unwrap_or_else(|e| e.into_inner()) = true;
    let status = child.wait().map_err(|e| Error::failed(format!("cannot wait for {}: {e}", shown(program))))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    })
}

/// Blocks the forwarded signals in this thread (and the threads it starts); returns the set.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local, initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in FORWARDED {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Starts the thread that sends each blocked signal on to the child until it is reaped.
fn forward_signals(set: libc::sigset_t, child: libc::pid_t, reaped: Arc<Mutex<bool>>) {
    std::thread::spawn(move || loop {
        // SAFETY: `set` is an initialised signal set and `info` a zeroed siginfo_t to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let signal = unsafe { libc::sigwaitinfo(&set, &mut info) };
        if signal < 0 {
            continue; // EINTR
        }
        if info.si_code == libc::SI_KERNEL {
            // Sent by the terminal to the whole foreground process group, the child included.
            continue;
        }
        let reaped = reaped.lock().unwrap_or_else(|e| e.into_inner());
        if !*reaped {
            // SAFETY: `child` is our child, not yet reaped, so the pid is still its own.
            unsafe { libc::kill(child, signal) };
        }
    });
}

/// Waits until the child has exited, leaving it a zombie so that its pid stays its own.
fn wait_without_reaping(child: libc::pid_t) {
    loop {
        // SAFETY: `info` is a zeroed siginfo_t for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let result =
            unsafe { libc::waitid(libc::P_PID, child as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if result == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}
