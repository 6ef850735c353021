//! Everything that depends on the operating system, in one file: permission bits, private
//! directories and files, and the signal handling `exec` needs. The rest of the crate speaks in
//! these terms only, so a port to another system is a second implementation of this file.
//!
//! This is the Unix one (Linux and macOS): modes are the permission bits, a private file is
//! 0600 and a private directory 0700, signals are blocked and collected with `sigwaitinfo`.
//! A leaf: it imports nothing of the application.

use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of a file that holds a secret.
pub const PRIVATE_FILE: u32 = 0o600;
/// The mode of a directory that holds such files.
pub const PRIVATE_DIR: u32 = 0o700;

/// The permission bits of `metadata` (`0o7777` at most).
pub fn mode(metadata: &Metadata) -> u32 {
    metadata.permissions().mode() & 0o7777
}

/// Sets the permission bits of an open file.
pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(mode))
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Whether others than the owner may enter or read a directory of this mode.
pub fn is_open_to_others(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// Whether anyone may write a file of this mode.
pub fn is_writable(mode: u32) -> bool {
    mode & 0o222 != 0
}

/// Whether a file of this mode may be run.
pub fn is_executable(mode: u32) -> bool {
    mode & 0o111 != 0
}

/// Whether group or others may write a file or directory of this mode.
pub fn is_writable_by_others(mode: u32) -> bool {
    mode & 0o022 != 0
}

/// Who owns a file: a user and a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// The owner of a file.
pub fn owner(metadata: &Metadata) -> Owner {
    Owner { uid: metadata.uid(), gid: metadata.gid() }
}

/// The user this process acts as.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Gives `path` (not what it links to) to `owner`.
pub fn chown(path: &Path, owner: Owner) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))
}

/// Gives an open file to `owner`.
pub fn fchown(file: &File, owner: Owner) -> io::Result<()> {
    std::os::unix::fs::fchown(file, Some(owner.uid), Some(owner.gid))
}

/// Creates `dir` and its missing parents, each new one 0700; returns the ones it created,
/// outermost first.
pub fn create_private_dirs(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let missing: Vec<std::path::PathBuf> =
        dir.ancestors().take_while(|d| fs::symlink_metadata(d).is_err()).map(Path::to_path_buf).collect();
    DirBuilder::new().recursive(true).mode(PRIVATE_DIR).create(dir)?;
    Ok(missing.into_iter().rev().collect())
}

/// Whether an open failed because it met a symbolic link it was told not to follow.
pub fn is_link_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Opens a directory without following a symbolic link at its last component.
pub fn open_dir_nofollow(dir: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW).open(dir)
}

/// Opens (creating it 0600 if missing) a file for reading and writing, for a lock; a symbolic
/// link in its place is refused, not followed.
pub fn open_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens a file for reading without waiting: a FIFO opens at once (to be refused as not a
/// regular file) instead of blocking until a writer comes. With `follow` false, a symbolic link
/// at the last component is refused.
pub fn open_for_reading(path: &Path, follow: bool) -> io::Result<File> {
    let flags = libc::O_NONBLOCK | if follow { 0 } else { libc::O_NOFOLLOW };
    OpenOptions::new().read(true).custom_flags(flags).open(path)
}

/// Signals, for `exec`: the helper blocks the ones it forwards and collects them on a thread,
/// which needs no signal handler (and so no async-signal-safety reasoning).
pub mod signals {
    use std::io;
    use std::sync::{Arc, Mutex};

    /// The signals `exec` passes on to its child.
    pub const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    /// The forwarded signals, blocked, to be waited for with [`forward`]; and the mask this
    /// process had before, for the child.
    #[derive(Clone, Copy)]
    pub struct Blocked {
        set: libc::sigset_t,
        before: libc::sigset_t,
    }

    /// Blocks [`FORWARDED`] in this thread (and the threads it starts).
    pub fn block() -> Blocked {
        // SAFETY: plain libc calls on local, initialised sets.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut before: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigemptyset(&mut before);
            for signal in FORWARDED {
                libc::sigaddset(&mut set, signal);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut before);
            Blocked { set, before }
        }
    }

    /// Makes `command` start its child as this process was started: with the signal mask it had
    /// before [`block`] (std passes the parent's mask on, and the helper's has the forwarded
    /// signals blocked, which would leave a child deaf to Ctrl-C, `kill` and `timeout`), and the
    /// forwarded signals and SIGPIPE at their default disposition.
    pub fn start_as_before(command: &mut std::process::Command, blocked: Blocked) {
        use std::os::unix::process::CommandExt;
        let before = blocked.before;
        // SAFETY: between fork and exec the closure calls only async-signal-safe functions
        // (sigaction, pthread_sigmask) on values copied into it.
        unsafe {
            command.pre_exec(move || {
                for signal in FORWARDED.iter().chain(&[libc::SIGPIPE]) {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = libc::SIG_DFL;
                    if libc::sigaction(*signal, &action, std::ptr::null_mut()) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                match libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut()) {
                    0 => Ok(()),
                    e => Err(io::Error::from_raw_os_error(e)),
                }
            });
        }
    }

    /// Starts the thread that sends each blocked signal on to `child` until `reaped` says the
    /// child is gone (its pid may then belong to another process). A signal the kernel sent on
    /// behalf of the terminal (Ctrl-C, hangup) reached the whole foreground process group, the
    /// child included, so it is not sent twice.
    pub fn forward(blocked: Blocked, child: u32, reaped: Arc<Mutex<bool>>) {
        std::thread::spawn(move || loop {
            // SAFETY: `blocked.set` is an initialised signal set and `info` a zeroed siginfo_t.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let signal = unsafe { libc::sigwaitinfo(&blocked.set, &mut info) };
            if signal < 0 || info.si_code == libc::SI_KERNEL {
                continue; // EINTR, or the terminal's
            }
            let reaped = reaped.lock().unwrap_or_else(|e| e.into_inner());
            if !*reaped {
                // SAFETY: `child` is our child, not yet reaped, so the pid is still its own.
                unsafe { libc::kill(child as libc::pid_t, signal) };
            }
        });
    }

    /// Waits until `child` has exited, leaving it a zombie so that its pid stays its own.
    pub fn wait_without_reaping(child: u32) {
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

    /// The exit status a shell would report: the code, or 128 + the signal that ended it.
    pub fn exit_code(status: std::process::ExitStatus) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 1,
        }
    }
}
