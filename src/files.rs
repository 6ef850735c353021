//! Files that hold secrets are written here, one way: a 0700 directory, an exclusive lock on a
//! lock file beside the target, a temporary file in the same directory (0600 from birth),
//! fsync, rename over the target, fsync of the directory.
//!
//! Readers never lock: a rename is atomic, so a reader sees the old file or the new one, never a
//! torn one, and a process killed at any moment leaves at most a stray temporary file. The lock
//! serialises writers that read-modify-write the same file, so that none loses another's
//! update. Locking uses `std::fs::File::try_lock` (flock on Linux): it is released by the kernel
//! when a holder dies, so a killed process never wedges the others.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sys;

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

/// Creates `dir` and its missing parents with mode 0700; tightens an existing one of our own.
pub fn create_private_dir(dir: &Path, whose: Dir) -> io::Result<()> {
    sys::create_private_dirs(dir)?;
    if whose == Dir::Own && sys::is_open_to_others(sys::mode(&fs::metadata(dir)?)) {
        sys::set_mode(dir, sys::PRIVATE_DIR)?;
    }
    Ok(())
}

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// The lock file that guards `target`: `<target>.lock`.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    target.with_file_name(name)
}

/// Takes the exclusive lock on `lock_file`, creating it 0600, waiting at most `timeout`.
/// `Ok(None)` when the wait timed out.
pub fn lock(lock_file: &Path, timeout: Duration, whose: Dir) -> io::Result<Option<Lock>> {
    if let Some(dir) = lock_file.parent() {
        create_private_dir(dir, whose)?;
    }
    let file = sys::open_private(lock_file)?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(Lock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// Replaces `target` with `contents` atomically, mode 0600. The caller holds the lock.
pub fn write_atomic(target: &Path, contents: &[u8], whose: Dir) -> io::Result<()> {
    write_atomic_with_mode(target, contents, sys::PRIVATE_FILE, whose)
}

/// Like [`write_atomic`], with the file's permission bits given: for files the helper edits
/// but does not own (docker's `config.json` may be 0644), which keep the mode they had.
pub fn write_atomic_with_mode(target: &Path, contents: &[u8], mode: u32, whose: Dir) -> io::Result<()> {
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dir(dir, whose)?;
    let prefix = format!(".{}.", target.file_name().unwrap_or_default().to_string_lossy());
    // `tempfile` creates the file with O_EXCL and mode 0600 and removes it if we fail before
    // the rename; writing that by hand is where atomic-write code usually goes wrong.
    let mut temp = tempfile::Builder::new().prefix(&prefix).suffix(".tmp").tempfile_in(dir)?;
    sys::set_file_mode(temp.as_file(), mode)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(target).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// Reads a file of at most `limit` bytes; `Ok(None)` when it does not exist.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // Sized from the file's length, as `fs::read` is: one read instead of a series of doubling
    // ones (the length is only a hint; `take` is what bounds a file that grows meanwhile).
    let hint = file.metadata().map_or(0, |m| m.len()).min(limit + 1);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("file is larger than {limit} bytes")));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_creates_a_0600_file_in_a_0700_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("a/b/secret.json");
        write_atomic(&target, b"one", Dir::Own).unwrap();
        write_atomic(&target, b"two", Dir::Own).unwrap();
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
            write_atomic(&dir.join("credentials.json"), b"{}", whose).unwrap();
        }
        assert_eq!(fs::metadata(&ours).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&theirs).unwrap().permissions().mode() & 0o777, 0o755);
    }

    #[test]
    fn atomic_write_with_mode_keeps_the_given_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("config.json");
        write_atomic_with_mode(&target, b"{}", 0o644, Dir::Chosen).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"{}");
        assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn a_held_lock_makes_the_second_taker_time_out() {
        let tmp = tempfile::tempdir().unwrap();
        let path = lock_path(&tmp.path().join("c.json"));
        assert_eq!(path.file_name().unwrap(), "c.json.lock");
        let held = lock(&path, Duration::from_secs(10), Dir::Own).unwrap().expect("free lock is taken");
        assert!(lock(&path, Duration::from_millis(30), Dir::Own).unwrap().is_none());
        drop(held);
        assert!(lock(&path, Duration::from_millis(30), Dir::Own).unwrap().is_some());
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn read_limited_refuses_large_files_and_reports_missing_ones() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_limited(&tmp.path().join("none"), 10).unwrap(), None);
        fs::write(tmp.path().join("big"), [0u8; 11]).unwrap();
        assert!(read_limited(&tmp.path().join("big"), 10).is_err());
        assert_eq!(read_limited(&tmp.path().join("big"), 11).unwrap().unwrap().len(), 11);
    }
}
