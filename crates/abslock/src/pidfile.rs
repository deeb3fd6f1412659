//! PID files for tools that still read them (init scripts,
//! `start-stop-daemon --pidfile`, monitoring checks), written so that they
//! cannot mislead: the lock decides who runs; the PID file only reports.
//!
//! A PID file goes stale when its process dies without removing it
//! (SIGKILL, crash), and then lies once the pid is reused. [`check`] tells
//! these cases apart using the lock: a pid is current only if that process
//! keeps the lock now.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{FileType, OFlags, Stat};
use rustix::io::Errno;

use crate::access::Access;
use crate::error::{Error, PathUse, Result};
use crate::escape::escape;
use crate::procfs;
use crate::safe_path::{self, Dir};

/// How many bytes of a PID file are read at most: a pid and a newline fit
/// many times over, and a hostile "PID file" (`/dev/zero`, a huge file)
/// costs nothing more.
const MAX_READ: usize = 64;

/// A PID file: its directory, reached without untrusted symlinks when
/// [`PidFile::at`] was called, and the file this process wrote there, if
/// any. Dropping it (or [`PidFile::remove`]) deletes the file if it is
/// still the one we wrote and still holds our pid.
///
/// What is at the path is never destroyed: a PID file is written only
/// where there is nothing, an empty regular file, or a regular file that
/// holds a pid (a stale PID file). A device (`/dev/null`, a common way of
/// saying "no PID file"), a FIFO, a socket, a directory, a symlink or a
/// file holding anything else is refused before the command runs.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    dir: Dir,
    /// The pid we wrote, and the file, kept open so that its inode number
    /// cannot be reused by another file while we might remove it.
    written: Option<(u32, std::fs::File)>,
}

impl PidFile {
    /// Resolves the directory of the PID file at `path` now, following
    /// only symlinks owned by root or by our uid, so that no other user
    /// can redirect where it is written later (a symlinked directory
    /// pointing at `/etc`, say); checks that what is at `path` may be
    /// replaced and that the directory is writable, so that every
    /// foreseeable failure comes before the command runs.
    ///
    /// # Errors
    /// [`Error::UnsafePath`] for a symlink owned by another user, or a
    /// path that holds something other than a PID file;
    /// [`Error::PathIo`] if the directory cannot be reached or written.
    pub fn at(path: impl Into<PathBuf>) -> Result<PidFile> {
        let path = path.into();
        let dir = safe_path::open_parent(&path, &Access::same_user(), PathUse::PidFile)?;
        replaceable(&dir, &path)?;
        rustix::fs::accessat(
            &dir.fd,
            ".",
            rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|e| Error::path(PathUse::PidFile, &path, &path, e.into()))?;
        Ok(PidFile {
            path,
            dir,
            written: None,
        })
    }

    /// [`PidFile::at`], then [`PidFile::record`].
    ///
    /// # Errors
    /// As those two.
    pub fn write(path: impl Into<PathBuf>, pid: u32) -> Result<PidFile> {
        let mut file = PidFile::at(path)?;
        file.record(pid)?;
        Ok(file)
    }

    /// Writes `pid` and a newline atomically: to a new temporary file in
    /// the same directory (`O_EXCL | O_NOFOLLOW`), then `renameat(2)` over
    /// the PID file, so a reader sees the old content or the new, never a
    /// partial one, and the file written is always a new one of ours. What
    /// is at the path is checked again first, as in [`PidFile::at`].
    ///
    /// # Errors
    /// If the path now holds something that is not a PID file, or the
    /// temporary file cannot be written or renamed.
    pub fn record(&mut self, pid: u32) -> Result<()> {
        replaceable(&self.dir, &self.path)?;
        let mut tmp = OsString::from(".");
        tmp.push(&self.dir.name);
        tmp.push(format!(".{}.tmp", std::process::id()));
        let written = (|| -> rustix::io::Result<std::fs::File> {
            let fd = rustix::fs::openat(
                &self.dir.fd,
                &tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                rustix::fs::Mode::from_raw_mode(0o644),
            )?;
            let mut f = std::fs::File::from(fd);
            writeln!(f, "{pid}").map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
            f.sync_all()
                .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
            rustix::fs::renameat(&self.dir.fd, &tmp, &self.dir.fd, &self.dir.name)?;
            Ok(f)
        })();
        match written {
            Ok(file) => {
                self.written = Some((pid, file));
                Ok(())
            }
            Err(e) => {
                let _ = rustix::fs::unlinkat(&self.dir.fd, &tmp, rustix::fs::AtFlags::empty());
                Err(Error::path(
                    PathUse::PidFile,
                    &self.path,
                    &self.path,
                    e.into(),
                ))
            }
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the file, unless someone else has replaced it or its
    /// content.
    pub fn remove(self) {
        drop(self);
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let Some((pid, file)) = &self.written else {
            return;
        };
        let Ok(mine) = rustix::fs::fstat(file) else {
            return;
        };
        let ours = read(&self.dir).is_ok_and(|(found, _, stat)| {
            found == Ok(*pid) && stat.st_dev == mine.st_dev && stat.st_ino == mine.st_ino
        });
        if ours {
            let _ =
                rustix::fs::unlinkat(&self.dir.fd, &self.dir.name, rustix::fs::AtFlags::empty());
        }
    }
}

/// Whether what is at the PID file's path may be replaced: nothing, an
/// empty regular file, or a regular file holding a pid.
fn replaceable(dir: &Dir, path: &Path) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::UnsafePath(format!(
            "refusing PID file {}: it is {what}, which abslock will not replace; \
             choose another path, or leave out --pidfile",
            escape(path.as_os_str().as_bytes())
        )))
    };
    let stat = match dir.stat_file() {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(Error::path(PathUse::PidFile, path, path, e.into())),
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {}
        FileType::CharacterDevice => return refuse("a character device"),
        FileType::BlockDevice => return refuse("a block device"),
        FileType::Fifo => return refuse("a FIFO"),
        FileType::Socket => return refuse("a socket"),
        FileType::Directory => return refuse("a directory"),
        FileType::Symlink => return refuse("a symbolic link"),
        FileType::Unknown => return refuse("not a regular file"),
    }
    if stat.st_size == 0 {
        return Ok(());
    }
    match read(dir) {
        Ok((Ok(_), _, _)) => Ok(()),
        Ok((Err(_), _, _)) => refuse("a file that holds something other than a pid"),
        // Replaced meanwhile by something that is not a regular file.
        Err(Errno::NOTSUP | Errno::LOOP) => refuse("not a regular file"),
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::path(PathUse::PidFile, path, path, e.into())),
    }
}

/// What a PID file says, checked against the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidFileState {
    /// There is no PID file.
    Missing,
    /// The content is not a pid, or the path is not a regular file; the
    /// reason says what is wrong.
    Malformed(String),
    /// The process keeps the lock: the file is right.
    Current(u32),
    /// No process has this pid any more: stale.
    Gone(u32),
    /// A process has this pid but does not keep the lock. `reused` is
    /// true when it started after the file was last written, which proves
    /// the pid was recycled.
    NotHolder {
        /// The pid in the file.
        pid: u32,
        /// What runs under that pid now, escaped for a terminal.
        command: String,
        /// Started after the file was written.
        reused: bool,
    },
}

/// Reads the PID file at `path` and judges it against `keepers`, the
/// processes that keep the lock (empty if it is free).
///
/// The file is opened with `O_NOFOLLOW | O_NONBLOCK` through a directory
/// reached without untrusted symlinks; only a regular file is read, and at
/// most 64 bytes of it, so a FIFO, a device or a symlink to a secret file
/// is reported as malformed, not read.
///
/// # Errors
/// If the file exists but cannot be read; [`Error::UnsafePath`] for a
/// symlink owned by another user on the way.
pub fn check(path: &Path, keepers: &[u32]) -> Result<PidFileState> {
    let dir = match safe_path::open_parent(path, &Access::same_user(), PathUse::PidFile) {
        Ok(dir) => dir,
        Err(Error::PathIo { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(PidFileState::Missing)
        }
        Err(e) => return Err(e),
    };
    let (pid, written) = match read(&dir) {
        Ok((Ok(pid), written, _)) => (pid, written),
        Ok((Err(start), _, _)) => {
            return Ok(PidFileState::Malformed(format!("'{start}' is not a pid")))
        }
        Err(Errno::NOENT) => return Ok(PidFileState::Missing),
        Err(Errno::LOOP) => {
            return Ok(PidFileState::Malformed(
                "it is a symbolic link (not followed)".into(),
            ))
        }
        Err(Errno::NOTSUP) => {
            return Ok(PidFileState::Malformed(
                "not a regular file (not read)".into(),
            ))
        }
        Err(e) => return Err(Error::path(PathUse::PidFile, path, path, e.into())),
    };
    if keepers.contains(&pid) {
        return Ok(PidFileState::Current(pid));
    }
    match procfs::process_info(pid) {
        Ok(info) => Ok(PidFileState::NotHolder {
            pid,
            command: info.command(),
            reused: matches!((info.started, written), (Some(s), Some(w)) if later(s, w)),
        }),
        Err(_) => Ok(PidFileState::Gone(pid)),
    }
}

/// `started` is from clock ticks (10 ms) and the boot time (1 s), so allow
/// a second of slack before calling it later.
fn later(started: SystemTime, written: SystemTime) -> bool {
    started
        .duration_since(written)
        .is_ok_and(|d| d > Duration::from_secs(1))
}

/// What [`read`] finds: the pid in the file (or, if the content is not
/// one, its start, escaped), when it was written, and its `fstat`.
type Content = (std::result::Result<u32, String>, Option<SystemTime>, Stat);

/// Reads the PID file. `NOTSUP` for anything but a regular file.
fn read(dir: &Dir) -> rustix::io::Result<Content> {
    let fd = dir.open_file(OFlags::RDONLY | OFlags::NONBLOCK, 0)?;
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(Errno::NOTSUP);
    }
    let mut buf = [0u8; MAX_READ];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    let content = &buf[..len];
    let pid = std::str::from_utf8(content)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|&p| p > 0)
        .ok_or_else(|| escape(content[..len.min(40)].trim_ascii()));
    let written = u64::try_from(stat.st_mtime)
        .ok()
        .and_then(|secs| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs)));
    Ok((pid, written, stat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn temp(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("abslock-pidfile-{}-{tag}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join("app.pid")
    }

    #[test]
    fn written_atomically_and_removed_only_if_still_ours() {
        let path = temp("write");
        fs::write(&path, "31337\n").unwrap(); // stale, from before
        let file = PidFile::write(&path, 4242).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "4242\n");
        // No temporary file is left beside it.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        file.remove();
        assert!(!path.exists());

        let file = PidFile::write(&path, 4242).unwrap();
        fs::write(&path, "99\n").unwrap(); // someone else's now
        drop(file);
        assert_eq!(fs::read_to_string(&path).unwrap(), "99\n");

        // Another file with our pid in it, put in place of ours: not ours.
        fs::remove_file(&path).unwrap();
        let file = PidFile::write(&path, 4242).unwrap();
        fs::remove_file(&path).unwrap();
        fs::write(&path, "4242\n").unwrap();
        drop(file);
        assert_eq!(fs::read_to_string(&path).unwrap(), "4242\n");
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn nothing_but_a_pid_file_is_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let path = temp("refuse");
        let dir = path.parent().unwrap().to_path_buf();
        let refused = |path: &Path| match PidFile::at(path) {
            Err(Error::UnsafePath(why)) => why,
            other => panic!("{other:?}"),
        };
        // Someone's file: refused, untouched.
        fs::write(&path, "my notes\n").unwrap();
        assert!(refused(&path).contains("holds something other than a pid"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "my notes\n");
        fs::remove_file(&path).unwrap();
        // A FIFO, a directory, a symlink: refused, still there.
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(refused(&path).contains("a FIFO"));
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_fifo());
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(refused(&path).contains("a directory"));
        fs::remove_dir(&path).unwrap();
        std::os::unix::fs::symlink("/dev/null", &path).unwrap();
        assert!(refused(&path).contains("a symbolic link"));
        fs::remove_file(&path).unwrap();
        // A character device, like /dev/null (mknod needs CAP_MKNOD).
        let dev = rustix::fs::makedev(1, 3);
        if rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            dev,
        )
        .is_ok()
        {
            assert!(refused(&path).contains("a character device"));
            assert!(fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_char_device());
            fs::remove_file(&path).unwrap();
        }
        // Nothing, or an empty file: written.
        fs::write(&path, "").unwrap();
        PidFile::write(&path, 7).unwrap().remove();
        assert!(!path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unusable_directory_fails_before_anything_runs_naming_the_whole_path() {
        let path = temp("missing").join("no/such/dir/app.pid");
        let e = PidFile::at(&path).unwrap_err();
        let said = e.to_string();
        assert!(said.starts_with("cannot write PID file "), "{said}");
        assert!(said.contains("no/such/dir/app.pid"), "{said}");
        fs::remove_dir_all(temp("missing").parent().unwrap()).unwrap();
    }

    #[test]
    fn states_are_told_apart() {
        let path = temp("check");
        assert_eq!(check(&path, &[]).unwrap(), PidFileState::Missing);
        fs::write(&path, "12x\n").unwrap();
        assert!(matches!(
            check(&path, &[]).unwrap(),
            PidFileState::Malformed(_)
        ));
        let me = std::process::id();
        fs::write(&path, format!("{me}\n")).unwrap();
        assert_eq!(check(&path, &[me]).unwrap(), PidFileState::Current(me));
        match check(&path, &[]).unwrap() {
            PidFileState::NotHolder { pid, reused, .. } => assert_eq!((pid, reused), (me, false)),
            other => panic!("{other:?}"),
        }
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn hostile_files_are_not_read() {
        let path = temp("hostile");
        let dir = path.parent().unwrap().to_path_buf();
        // A FIFO would block a plain read forever.
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(matches!(
            check(&path, &[]).unwrap(),
            PidFileState::Malformed(_)
        ));
        fs::remove_file(&path).unwrap();
        // A symlink to a secret is neither followed nor quoted.
        fs::write(dir.join("secret"), "hunter2\n").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), &path).unwrap();
        match check(&path, &[]).unwrap() {
            PidFileState::Malformed(why) => assert!(!why.contains("hunter2"), "{why}"),
            other => panic!("{other:?}"),
        }
        fs::remove_file(&path).unwrap();
        // A huge file is read only as far as a pid can reach.
        fs::write(&path, "7".repeat(1 << 20)).unwrap();
        assert!(matches!(
            check(&path, &[]).unwrap(),
            PidFileState::Malformed(_)
        ));
        // Devices are not read at all.
        assert!(matches!(
            check(Path::new("/dev/zero"), &[]).unwrap(),
            PidFileState::Malformed(_)
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
