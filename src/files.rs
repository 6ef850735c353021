//! Files that hold secrets are read and written here, one way. Writing: a 0700 directory, an
//! exclusive lock on a lock file beside the target, a temporary file in the same directory (0600
//! from birth), fsync, rename over the target, fsync of the directory. Reading: bounded in size,
//! regular files only (a FIFO or a device is refused at once instead of hanging or filling
//! memory), and for the helper's own files no symbolic link at the last component.
//!
//! Readers never lock: a rename is atomic, so a reader sees the old file or the new one, never a
//! torn one, and a process killed at any moment leaves at most a stray temporary file, which the
//! next writer removes. The lock serialises writers that read-modify-write the same file, so
//! that none loses another's update. Locking uses `std::fs::File::try_lock` (flock on Linux): it
//! is released by the kernel when a holder dies, so a killed process never wedges the others.
//!
//! [`check_private`] is the rule for where secrets may live, the one OpenSSH applies to
//! `~/.ssh`: a directory and files owned by the user the helper runs as, that nobody else may
//! write.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::sys::{self, Owner};

/// Whose directory a file is written into, which decides what may be done to the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The helper's own (`…/docker-credential-icr`): created 0700, and tightened to 0700 when
    /// others can enter it.
    Own,
    /// One a user chose (`DOCKER_CREDENTIAL_ICR_CONFIG=/etc/icr/config.json`, docker's
    /// `~/.docker`): created 0700 when missing, otherwise the user's to set; the files in it are
    /// written with their own mode anyway.
    Chosen,
}

/// Creates `dir` and its missing parents with mode 0700, giving the ones it creates to `owner`
/// when one is given; tightens an existing directory of our own (never through a symbolic
/// link: a linked directory is left as it is, and [`check_private`] judges where it leads).
pub fn create_private_dir(dir: &Path, whose: Dir, owner: Option<Owner>) -> io::Result<()> {
    let created = sys::create_private_dirs(dir)?;
    if let Some(owner) = owner {
        for dir in &created {
            sys::chown(dir, owner)?;
        }
    }
    let is_link = fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if whose == Dir::Own && !is_link {
        // Opened without following a link, so that one swapped in meanwhile is refused.
        let handle = sys::open_dir_nofollow(dir)?;
        if sys::is_open_to_others(sys::mode(&handle.metadata()?)) {
            sys::set_file_mode(&handle, sys::PRIVATE_DIR)?;
        }
    }
    Ok(())
}

/// Whether `dir` may hold secrets, and `file` in it when given: a directory that the user this
/// process runs as owns, that neither group nor others may write; a regular file of the same
/// kind. `Err` says what is wrong, for the caller to refuse (stored logins) or do without (the
/// token cache).
pub fn check_private(dir: &Path, file: Option<&Path>) -> Result<(), String> {
    let me = sys::effective_uid();
    let judge = |path: &Path, metadata: &fs::Metadata, what: &str| {
        let (owner, mode) = (sys::owner(metadata), sys::mode(metadata));
        if owner.uid != me {
            return Err(format!("{} is owned by uid {}, not by this user (uid {me})", path.display(), owner.uid));
        }
        if sys::is_writable_by_others(mode) {
            return Err(format!("{} is a {what} that others may write (mode {mode:o})", path.display()));
        }
        Ok(())
    };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => judge(dir, &m, "directory")?,
        Ok(_) => return Err(format!("{} is not a directory", dir.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    if let Some(file) = file {
        match fs::symlink_metadata(file) {
            Ok(m) if m.is_file() => judge(file, &m, "file")?,
            Ok(_) => return Err(format!("{} is not a regular file", file.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", file.display())),
        }
    }
    Ok(())
}

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    /// Whether another process held it when it was asked for, so that this one waited.
    pub waited: bool,
}

/// The lock file that guards `target`: `<target>.lock`.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    target.with_file_name(name)
}

/// Takes the exclusive lock on `lock_file`, creating it 0600 (never through a symbolic link),
/// waiting until `deadline`. `Ok(None)` when the wait timed out.
pub fn lock(lock_file: &Path, deadline: Instant, whose: Dir) -> io::Result<Option<Lock>> {
    if let Some(dir) = lock_file.parent() {
        create_private_dir(dir, whose, None)?;
    }
    let file = sys::open_private(lock_file)?;
    let mut pause = Duration::from_millis(1);
    let mut waited = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(Lock { _file: file, waited })),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        waited = true;
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// How a file is written.
#[derive(Debug, Clone, Copy)]
pub struct Writing {
    /// Its permission bits.
    pub mode: u32,
    pub dir: Dir,
    /// Who it (and any directory created for it) is given to; `None`: whoever writes it.
    pub owner: Option<Owner>,
    /// Whether the writer holds the target's lock, so that every temporary file a writer left
    /// beside the target is stale; without the lock only those older than a minute are.
    pub locked: bool,
}

impl Writing {
    /// A file of the helper's own holding a secret: 0600, written under its lock.
    pub fn secret(dir: Dir) -> Writing {
        Writing { mode: sys::PRIVATE_FILE, dir, owner: None, locked: true }
    }
}

/// How old a temporary file of an unlocked writer must be before it counts as left behind.
const STALE_TEMPORARY: Duration = Duration::from_secs(60);

/// Replaces `target` with `contents` atomically, as `how` says.
pub fn write_atomic(target: &Path, contents: &[u8], how: Writing) -> io::Result<()> {
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dir(dir, how.dir, how.owner)?;
    let prefix = format!(".{}.", target.file_name().unwrap_or_default().to_string_lossy());
    remove_stale_temporaries(dir, &prefix, how.locked);
    // `tempfile` creates the file with O_EXCL and mode 0600 and removes it if we fail before
    // the rename; writing that by hand is where atomic-write code usually goes wrong.
    let mut temp = tempfile::Builder::new().prefix(&prefix).suffix(".tmp").tempfile_in(dir)?;
    if let Some(owner) = how.owner {
        sys::fchown(temp.as_file(), owner)?;
    }
    sys::set_file_mode(temp.as_file(), how.mode)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(target).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// Removes what killed writers left: `.<name>.*.tmp` beside the target. Failing to is no reason
/// not to write.
fn remove_stale_temporaries(dir: &Path, prefix: &str, locked: bool) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(prefix) || !name.ends_with(".tmp") {
            continue;
        }
        let old = || {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() > STALE_TEMPORARY)
                .unwrap_or(false)
        };
        if locked || old() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Reads a file of at most `limit` bytes; `Ok(None)` when it does not exist. Anything but a
/// regular file is refused at once, and with `follow` false so is a symbolic link.
pub fn read_limited(path: &Path, limit: u64, follow: bool) -> io::Result<Option<Vec<u8>>> {
    let file = match sys::open_for_reading(path, follow) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if sys::is_link_refused(&e) => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "it is a symbolic link, which is not followed"))
        }
        Err(e) => return Err(e),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "it is not a regular file"));
    }
    // Sized from the file's length, as `fs::read` is: one read instead of a series of doubling
    // ones (the length is only a hint; `take` is what bounds a file that grows meanwhile).
    let hint = metadata.len().min(limit + 1);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("it is larger than {limit} bytes")));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn secret() -> Writing {
        Writing::secret(Dir::Own)
    }

    #[test]
    fn atomic_write_creates_a_0600_file_in_a_0700_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("a/b/secret.json");
        write_atomic(&target, b"one", secret()).unwrap();
        write_atomic(&target, b"two", secret()).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(tmp.path().join("a/b")).unwrap().permissions().mode() & 0o777, 0o700);
        let names: Vec<_> = fs::read_dir(tmp.path().join("a/b")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret.json")], "no temporary file is left behind");
    }

    #[test]
    fn our_own_directory_is_tightened_but_a_users_directory_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let ours = tmp.path().join("docker-credential-icr");
        let theirs = tmp.path().join("etc-icr");
        for (dir, whose) in [(&ours, Dir::Own), (&theirs, Dir::Chosen)] {
            fs::create_dir(dir).unwrap();
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
            write_atomic(&dir.join("credentials.json"), b"{}", Writing::secret(whose)).unwrap();
        }
        assert_eq!(fs::metadata(&ours).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&theirs).unwrap().permissions().mode() & 0o777, 0o755);
    }

    #[test]
    fn a_symlinked_directory_of_our_own_is_not_chmodded_through_the_link() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        let link = tmp.path().join("docker-credential-icr");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        create_private_dir(&link, Dir::Own, None).unwrap();
        assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o755);
    }

    #[test]
    fn atomic_write_with_mode_keeps_the_given_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("config.json");
        write_atomic(&target, b"{}", Writing { mode: 0o644, dir: Dir::Chosen, owner: None, locked: false }).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"{}");
        assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn a_locked_writer_removes_every_temporary_a_killed_writer_left_and_an_unlocked_one_only_old_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("credentials.json");
        let left = tmp.path().join(".credentials.json.abc123.tmp");
        let other = tmp.path().join(".other.json.abc123.tmp");
        for path in [&left, &other] {
            fs::write(path, "half").unwrap();
        }
        let unlocked = Writing { mode: 0o600, dir: Dir::Chosen, owner: None, locked: false };
        write_atomic(&target, b"{}", unlocked).unwrap();
        assert!(left.exists(), "a fresh temporary of an unlocked writer may be a live writer's");
        write_atomic(&target, b"{}", secret()).unwrap();
        assert!(!left.exists() && other.exists());
    }

    #[test]
    fn a_held_lock_makes_the_second_taker_time_out() {
        let tmp = tempfile::tempdir().unwrap();
        let path = lock_path(&tmp.path().join("c.json"));
        assert_eq!(path.file_name().unwrap(), "c.json.lock");
        let soon = || Instant::now() + Duration::from_millis(30);
        let held = lock(&path, Instant::now() + Duration::from_secs(10), Dir::Own).unwrap().expect("free lock");
        assert!(lock(&path, soon(), Dir::Own).unwrap().is_none());
        drop(held);
        assert!(lock(&path, soon(), Dir::Own).unwrap().is_some());
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_lock_file_that_is_a_symlink_is_refused_and_its_target_never_created() {
        let tmp = tempfile::tempdir().unwrap();
        let path = lock_path(&tmp.path().join("c.json"));
        let target = tmp.path().join("planted");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(lock(&path, Instant::now(), Dir::Chosen).is_err());
        assert!(!target.exists());
    }

    #[test]
    fn read_limited_refuses_large_files_fifos_devices_and_links_and_reports_missing_ones() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_limited(&tmp.path().join("none"), 10, true).unwrap(), None);
        fs::write(tmp.path().join("big"), [0u8; 11]).unwrap();
        assert!(read_limited(&tmp.path().join("big"), 10, true).is_err());
        assert_eq!(read_limited(&tmp.path().join("big"), 11, true).unwrap().unwrap().len(), 11);
        let fifo = tmp.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string for mkfifo.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read_limited(&fifo, 10, true).unwrap_err().to_string(), "it is not a regular file");
        assert!(read_limited(Path::new("/dev/zero"), 10, true).is_err());
        std::os::unix::fs::symlink(tmp.path().join("big"), tmp.path().join("link")).unwrap();
        assert!(read_limited(&tmp.path().join("link"), 11, false).is_err());
        assert!(read_limited(&tmp.path().join("link"), 11, true).unwrap().is_some());
    }

    #[test]
    fn only_a_directory_and_file_of_ones_own_that_others_cannot_write_hold_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let file = dir.join("f");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(check_private(&dir, Some(&file)), Ok(()));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o622)).unwrap();
        assert!(check_private(&dir, Some(&file)).unwrap_err().contains("others may write"));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_private(&dir, None).unwrap_err().contains("others may write"));
        assert_eq!(check_private(&tmp.path().join("missing"), None), Ok(()));
    }
}
