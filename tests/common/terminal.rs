//! A pseudo-terminal, for the tests that press Ctrl-C as a person would: the helper runs as the
//! session leader with the terminal's other end as its controlling terminal and standard
//! streams, so the terminal's SIGINT goes to its foreground process group, helper and child.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Terminal {
    master: File,
    child: Child,
}

impl Terminal {
    /// Starts `command` on a new pseudo-terminal.
    pub fn spawn(mut command: Command) -> Terminal {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills in two descriptors; the null pointers ask for no name, termios or
        // window size.
        let ok =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(ok, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are ours and open.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the terminal"));
        command.stdin(stdio(&slave)).stdout(stdio(&slave)).stderr(stdio(&slave));
        // SAFETY: setsid and ioctl are async-signal-safe; between fork and exec they make the
        // child a session leader whose controlling terminal is its stdin.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start on the terminal");
        drop(slave);
        Terminal { master, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types `bytes` at the terminal (`b"\x03"` is Ctrl-C).
    pub fn press(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the terminal");
    }

    /// Waits at most `timeout` for the process to end (killing it and failing after that), and
    /// returns its status and what it printed on the terminal.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the process on the terminal did not end within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Everything has been written; reading the master ends with EIO once the slave is gone.
        let mut output = Vec::new();
        let _ = self.master.read_to_end(&mut output);
        (status, String::from_utf8_lossy(&output).into_owned())
    }
}

/// The pid of a child of `parent` whose command is `name`, waiting at most 30 s for it.
#[track_caller]
pub fn wait_for_child(parent: u32, name: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // pid (comm) state ppid …; comm may hold spaces, so split after its last ')'.
            let Some((head, rest)) = stat.rsplit_once(')') else { continue };
            let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
            let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) && comm == name {
                return head.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no child `{name}` of {parent} appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
}
