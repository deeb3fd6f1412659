//! The `flock(2)` backend: a lock file in a directory whose permissions
//! protect it.
//!
//! Abstract socket names have no permissions: any local user can bind a
//! system-wide name first. A lock file in a directory only its owner can
//! write to (`/run/lock/NAME` for root, `$XDG_RUNTIME_DIR` for a user)
//! cannot be taken by anyone else, and it works across network namespaces
//! (containers sharing a volume). The lock is the kernel's `flock(2)` lock
//! on the open file description, so, as with a socket, it is released when
//! the last descriptor of that description closes, however the process
//! ended (`flock(2)`: "the lock is released either by an explicit LOCK_UN
//! operation on any of these duplicate file descriptors, or when all such
//! file descriptors have been closed").
//!
//! The traps of lock files, and what this module does about each:
//!
//! * **Deleting the file under a holder** lets a second holder in: the old
//!   holder keeps its lock on the unlinked inode, a newcomer creates a new
//!   file and locks that. abslock never deletes a lock file, and after each
//!   `flock` it checks that the path still names the inode it locked;
//!   if not, it starts over on the new file. So a process that was
//!   queued on the old inode does not come out holding a lock nobody else
//!   can see (test `a_deleted_lock_file_does_not_let_a_waiter_in_twice`).
//!   [`FileGuard::is_linked`] tells a holder whether its file was removed.
//! * **Permissions:** new files get mode 0600 ([`DEFAULT_MODE`]): `flock`
//!   needs only read access, so a world-readable lock file can be squatted
//!   by any user. Files are opened with `O_NOFOLLOW` and must be regular
//!   files, so a planted symlink cannot redirect the lock.
//! * **Close-on-exec:** the descriptor is `O_CLOEXEC`; hand it on with
//!   [`FileGuard::pass_to`] or [`FileGuard::into_fd`].
//! * **NFS:** Linux emulates `flock` on NFS with byte-range locks held by
//!   the server; they survive a client crash until the server's lease
//!   expires, and conflict with `fcntl` locks. Use a local file system.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::access::Access;
use crate::error::{Error, Result};
use crate::guard::FD_ENV;
use crate::holder::Holder;
use crate::sys;
use crate::wait::Backoff;

/// The mode of lock files abslock creates: owner read and write only.
pub const DEFAULT_MODE: u32 = 0o600;

/// How often [`FileLock::try_acquire`] retries when the holder vanishes
/// between the failed `flock` and the look-up of who held it.
const DISCOVERY_RETRIES: usize = 8;

/// A single-instance lock on a file, with `flock(2)`.
///
/// ```
/// use abslock::{file::FileLock, Error};
///
/// let dir = std::env::temp_dir().join(format!("abslock-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let lock = FileLock::new(dir.join("job.lock"));
/// let guard = lock.try_acquire()?;
/// assert!(matches!(lock.try_acquire(), Err(Error::Held(_))));
/// drop(guard);
/// let _again = lock.try_acquire()?;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), abslock::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileLock {
    path: PathBuf,
    mode: u32,
    trusted: Access,
}

/// A held file lock. Dropping it closes the descriptor, which releases the
/// lock unless a child still has a copy. The file stays: deleting it would
/// open the race described in the [module docs](self).
#[derive(Debug)]
pub struct FileGuard {
    path: PathBuf,
    fd: Arc<OwnedFd>,
}

impl FileLock {
    /// A lock on the file at `path`, created with [`DEFAULT_MODE`] if it
    /// does not exist. The directory must exist.
    pub fn new(path: impl Into<PathBuf>) -> FileLock {
        FileLock {
            path: path.into(),
            mode: DEFAULT_MODE,
            trusted: Access::same_user(),
        }
    }

    /// Sets the mode for a newly created lock file (the umask applies).
    pub fn mode(mut self, mode: u32) -> FileLock {
        self.mode = mode;
        self
    }

    /// Also trusts holders running as `uid` (see [`crate::Lock::trust_uid`]).
    pub fn trust_uid(mut self, uid: u32) -> FileLock {
        self.trusted = self.trusted.allow(uid);
        self
    }

    /// Trusts holders of every uid.
    pub fn trust_any_uid(mut self) -> FileLock {
        self.trusted = Access::anyone();
        self
    }

    /// Whether a holder running as `uid` is trusted.
    pub fn trusts(&self, uid: u32) -> bool {
        self.trusted.allows(uid)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock if it is free, without waiting.
    ///
    /// # Errors
    /// [`Error::Held`] or [`Error::Squatted`] with the holder;
    /// [`Error::InvalidName`] if the path is a symlink or not a regular
    /// file; [`Error::Io`] if it cannot be opened (`EACCES`: the file
    /// belongs to someone else).
    pub fn try_acquire(&self) -> Result<FileGuard> {
        for _ in 0..DISCOVERY_RETRIES {
            if let Some(guard) = self.lock(false)? {
                return Ok(guard);
            }
            if let Some(holder) = self.holder()? {
                return Err(match holder.uid() {
                    Some(uid) if !self.trusts(uid) => Error::Squatted(holder),
                    _ => Error::Held(holder),
                });
            }
        }
        Err(Error::Timeout(None))
    }

    /// Takes the lock, sleeping in `flock(2)` until it is free.
    ///
    /// # Errors
    /// As [`FileLock::try_acquire`], except `Held`.
    pub fn acquire(&self) -> Result<FileGuard> {
        loop {
            if let Some(guard) = self.lock(true)? {
                return Ok(guard);
            }
        }
    }

    /// Takes the lock, waiting at most `timeout`. `flock(2)` has no
    /// timeout, so this retries a non-blocking `flock` with a back-off of
    /// up to 100 ms (no signals, no helper thread that might take the lock
    /// after we gave up).
    ///
    /// # Errors
    /// [`Error::Timeout`] with the holder; as [`FileLock::try_acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<FileGuard> {
        let deadline = Instant::now().checked_add(timeout);
        let mut backoff = Backoff::default();
        loop {
            if let Some(guard) = self.lock(false)? {
                return Ok(guard);
            }
            if !backoff.sleep(deadline) {
                return Err(Error::Timeout(self.holder().ok().flatten()));
            }
        }
    }

    /// Who holds the lock now (from `/proc/locks`), or `None` if it is free
    /// or the file does not exist.
    ///
    /// # Errors
    /// If the file cannot be examined or `/proc/locks` read.
    pub fn holder(&self) -> Result<Option<Holder>> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) => {
                use std::os::unix::fs::MetadataExt;
                Holder::discover_file(&self.path, meta.dev(), meta.ino())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("examining the lock file")(e)),
        }
    }

    /// Waits until the lock is free without taking it; `None` waits
    /// forever. Returns `false` on timeout.
    ///
    /// # Errors
    /// As [`FileLock::holder`].
    pub fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        match self.holder()? {
            None => Ok(true),
            Some(holder) => holder.wait_released(timeout),
        }
    }

    /// Opens (creating) the file and locks it; `None` if it is held and
    /// `blocking` is false.
    fn lock(&self, blocking: bool) -> Result<Option<FileGuard>> {
        loop {
            let fd = self.open()?;
            let op = if blocking {
                FlockOperation::LockExclusive
            } else {
                FlockOperation::NonBlockingLockExclusive
            };
            match rustix::fs::flock(&fd, op) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => return Ok(None),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::io("locking the lock file")(e.into())),
            }
            if is_linked(fd.as_fd(), &self.path)? {
                return Ok(Some(FileGuard {
                    path: self.path.clone(),
                    fd: Arc::new(fd),
                }));
            }
            // We locked an inode that was unlinked or replaced meanwhile:
            // a lock nobody else can see. Drop it, lock the current file.
        }
    }

    fn open(&self) -> Result<OwnedFd> {
        let flags =
            OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
        let fd = match rustix::fs::open(&self.path, flags, Mode::from_raw_mode(self.mode as _)) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => {
                return Err(Error::InvalidName(format!(
                    "lock file {} is a symbolic link; refusing to follow it",
                    self.path.display()
                )))
            }
            Err(e) => return Err(Error::io("opening the lock file")(e.into())),
        };
        let stat =
            rustix::fs::fstat(&fd).map_err(|e| Error::io("examining the lock file")(e.into()))?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(Error::InvalidName(format!(
                "lock file {} is not a regular file",
                self.path.display()
            )));
        }
        Ok(fd)
    }
}

/// Whether `path` still names the file open at `fd`.
fn is_linked(fd: BorrowedFd<'_>, path: &Path) -> Result<bool> {
    let open = rustix::fs::fstat(fd).map_err(|e| Error::io("examining the lock file")(e.into()))?;
    match rustix::fs::lstat(path) {
        Ok(named) => Ok(named.st_dev == open.st_dev && named.st_ino == open.st_ino),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(Error::io("examining the lock file")(e.into())),
    }
}

impl FileGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the lock file is still in place. `false` means someone
    /// deleted or replaced it: a new process can then lock the new file
    /// while this guard still holds the old one.
    ///
    /// # Errors
    /// If `fstat`/`lstat` fail for another reason than a missing file.
    pub fn is_linked(&self) -> Result<bool> {
        is_linked(self.fd.as_fd(), &self.path)
    }

    /// Lets the program `command` spawns inherit the lock, as
    /// [`Guard::pass_to`](crate::Guard::pass_to) does: the descriptor stays
    /// open across `exec`, its number is in [`FD_ENV`], and the lock is
    /// released only when this guard and the child have both closed it.
    pub fn pass_to(&self, command: &mut Command) {
        let fd = Arc::clone(&self.fd);
        command.env(FD_ENV, fd.as_raw_fd().to_string());
        // SAFETY: the closure runs between fork and exec and only calls
        // fcntl(2), which is async-signal-safe; it owns an Arc of the
        // descriptor, so the number stays valid while the Command lives.
        unsafe {
            command.pre_exec(move || {
                let keep = &fd;
                sys::clear_cloexec_in_child(keep.as_raw_fd())
            });
        }
    }

    /// Gives up the guard and returns the locked descriptor without
    /// close-on-exec, for a process about to `exec` the program that
    /// should hold the lock.
    ///
    /// # Errors
    /// If `fcntl(2)` or `dup(2)` fails.
    pub fn into_fd(self) -> Result<OwnedFd> {
        let fd = Arc::try_unwrap(self.fd)
            .or_else(|shared| shared.try_clone())
            .map_err(Error::io("duplicating the lock file descriptor"))?;
        sys::set_cloexec(fd.as_fd(), false).map_err(Error::io("clearing close-on-exec"))?;
        Ok(fd)
    }

    /// Releases the lock now (unless a child kept a copy).
    pub fn release(self) {
        drop(self);
    }
}

impl AsFd for FileGuard {
    /// The locked file.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl FileGuard {
    /// Releases this process's hold and returns the processes that still
    /// keep the lock (children that inherited the descriptor). Cheap when
    /// there are none: one read of `/proc/locks`.
    ///
    /// # Errors
    /// If `fstat(2)` on the descriptor fails.
    pub fn release_and_list_keepers(self) -> Result<Vec<crate::procfs::ProcessInfo>> {
        let stat = rustix::fs::fstat(&*self.fd)
            .map_err(|e| Error::io("examining the lock file")(e.into()))?;
        drop(self);
        if !matches!(
            crate::procfs::flock_on(stat.st_dev, stat.st_ino),
            Ok(Some(_))
        ) {
            return Ok(Vec::new());
        }
        Ok(crate::procfs::process_infos(crate::procfs::flock_holders(
            stat.st_dev,
            stat.st_ino,
        )))
    }

    /// Every process that keeps the lock (has a descriptor of the locked
    /// file description), with `/proc` details.
    ///
    /// # Errors
    /// If `fstat(2)` on the descriptor fails.
    pub fn processes(&self) -> Result<Vec<crate::procfs::ProcessInfo>> {
        let stat = rustix::fs::fstat(&*self.fd)
            .map_err(|e| Error::io("examining the lock file")(e.into()))?;
        Ok(crate::procfs::process_infos(crate::procfs::flock_holders(
            stat.st_dev,
            stat.st_ino,
        )))
    }
}
