//! The `flock(2)` backend: a lock file in a directory whose permissions
//! protect it.
//!
//! Abstract socket names have no permissions: any local user can bind a
//! system-wide name first. A lock file in a directory only its owner can
//! write to (a root-owned 0755 `/run/NAME` for root, `$XDG_RUNTIME_DIR` for
//! a user; not the world-writable `/run/lock`) cannot be taken by anyone
//! else, and it works across network namespaces
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
//!   file and locks that. abslock deletes a lock file only when asked
//!   ([`FileLock::remove_on_release`]) and then only under the lock, and
//!   after each `flock` it checks that the path still names the inode it
//!   locked; if not, it starts over on the new file. So a process that was
//!   queued on the old inode does not come out holding a lock nobody else
//!   can see (test `a_deleted_lock_file_does_not_let_a_waiter_in_twice`).
//!   [`FileGuard::is_linked`] tells a holder whether its file was removed.
//! * **Permissions:** new files get mode 0600 ([`DEFAULT_MODE`]): `flock`
//!   needs only read access, so a world-readable lock file can be squatted
//!   by any user ([`FileLock::exposure`] reports an existing one). A file
//!   we may not write, or a directory, is locked read-only, as `flock(1)`
//!   does.
//! * **fcntl locks:** Linux keeps `flock(2)` and POSIX/OFD `fcntl(2)` locks
//!   apart; a file locked with `fcntl` (by `lckdo`, `setlock`, a
//!   database) counts as held here too, and is shown with its kind.
//! * **Symlinks and writable directories:** the path is resolved one
//!   component at a time, following only symlinks owned by root or a
//!   trusted uid, and the file is opened with `O_NOFOLLOW` and must be a
//!   regular file, so a planted symlink cannot redirect the lock (test
//!   `an_untrusted_symlink_is_never_followed`). A directory that untrusted
//!   users can write to lets them create and lock the file first:
//!   [`FileLock::exposure`] says so, and [`crate::combined`] refuses such
//!   a file.
//! * **Close-on-exec:** the descriptor is `O_CLOEXEC`; hand it on with
//!   [`FileGuard::pass_to`] or [`FileGuard::into_fd`].
//! * **NFS:** Linux emulates `flock` on NFS with byte-range locks held by
//!   the server; they survive a client crash until the server's lease
//!   expires, and conflict with `fcntl` locks. Use a local file system.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, OFlags};
use rustix::io::Errno;

use crate::access::Access;
use crate::error::{Error, PathUse, Result};
use crate::escape::escape;
use crate::guard::FD_ENV;
use crate::holder::Holder;
use crate::safe_path;
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
/// use abslock::{Error, FileLock};
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
    shared: bool,
    fcntl_aware: bool,
    remove: bool,
}

/// A held file lock. Dropping it closes the descriptor, which releases the
/// lock unless a child still has a copy. The file stays: deleting it would
/// open the race that [`FileLock`]'s own docs describe.
#[derive(Debug)]
pub struct FileGuard {
    path: PathBuf,
    dir: safe_path::Dir,
    fd: Arc<OwnedFd>,
    /// Remove the file at release if nobody else keeps the lock.
    remove: bool,
}

impl FileLock {
    /// A lock on the file at `path`, created with mode 0600 if it
    /// does not exist. The directory must exist.
    pub fn new(path: impl Into<PathBuf>) -> FileLock {
        FileLock {
            path: path.into(),
            mode: DEFAULT_MODE,
            trusted: Access::same_user(),
            shared: false,
            fcntl_aware: true,
            remove: false,
        }
    }

    /// Whether a POSIX or OFD `fcntl(2)` lock on the file counts as held
    /// (default `true`), which costs a read of `/proc/locks` per acquire.
    /// Turn it off for a file only abslock locks.
    pub fn fcntl_aware(mut self, aware: bool) -> FileLock {
        self.fcntl_aware = aware;
        self
    }

    /// Removes the file when the lock is released (default `false`), for a
    /// file that exists only to be locked, such as a per-user runtime
    /// file. Deleting a lock file is safe only while holding it and only
    /// if no other process keeps the lock, so at release the guard opens
    /// the file again, closes its own descriptor and takes the lock on the
    /// new one without waiting: that succeeds only if no child or other
    /// process kept the old descriptor and no waiter came first. Then it
    /// unlinks the file while holding the lock, and a waiter woken on the
    /// unlinked file starts over on the path, as every waiter here does
    /// (module docs). A holder that dies without releasing (SIGKILL)
    /// leaves the file for the next holder to remove. Exclusive locks
    /// only: a shared lock never removes the file.
    pub fn remove_on_release(mut self, remove: bool) -> FileLock {
        self.remove = remove;
        self
    }

    /// Takes a shared lock (`LOCK_SH`, `flock -s`) instead of an exclusive
    /// one: any number of shared holders at once, none while an exclusive
    /// one holds it.
    pub fn shared(mut self, shared: bool) -> FileLock {
        self.shared = shared;
        self
    }

    /// Whether this takes a shared lock.
    pub fn is_shared(&self) -> bool {
        self.shared
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
    /// [`Error::UnsafePath`] if the path is a symlink, or passes through a
    /// symlink that a uid the lock does not trust owns;
    /// [`Error::NotAFile`] if it is not a regular file; [`Error::Io`]
    /// or [`Error::PathIo`] if it cannot be opened (`EACCES`: the file
    /// belongs to someone else and we may not even read it).
    pub fn try_acquire(&self) -> Result<FileGuard> {
        for _ in 0..DISCOVERY_RETRIES {
            if let Some(guard) = self.lock(false)? {
                return Ok(guard);
            }
            if let Some(holder) = self.holder()? {
                return Err(self.held(holder));
            }
        }
        Err(Error::Timeout(None))
    }

    /// Takes the lock, sleeping in `flock(2)` until it is free.
    ///
    /// # Errors
    /// As [`FileLock::try_acquire`], except `Held`: a holder of a uid the
    /// lock does not trust is [`Error::Squatted`], not waited for.
    pub fn acquire(&self) -> Result<FileGuard> {
        match self.try_acquire() {
            Err(Error::Held(_) | Error::Timeout(None)) => {}
            other => return other,
        }
        let mut backoff = Backoff::default();
        loop {
            match self.lock(true)? {
                Some(guard) => return Ok(guard),
                // Only an fcntl lock (which flock(2) does not wait for)
                // or a replaced file gets here: poll for those.
                None => {
                    backoff.sleep(None)?;
                }
            }
        }
    }

    fn held(&self, holder: Holder) -> Error {
        match holder.uid() {
            Some(uid) if !self.trusts(uid) => Error::Squatted(holder),
            _ => Error::Held(holder),
        }
    }

    /// Takes the lock, waiting at most `timeout`. `flock(2)` has no
    /// timeout, so the wait sleeps in `poll(2)` on an inotify watch of the
    /// file, which the kernel wakes when the holder's last descriptor
    /// closes (`inotify(7)`; `docs/semantics.md`): no signals, no helper
    /// thread that might take the lock after we gave up, and no polling,
    /// except for a holder of an `fcntl(2)` lock, which the kernel does not
    /// report and which is retried with a back-off of up to 100 ms.
    ///
    /// # Errors
    /// [`Error::Timeout`] with the holder, or [`Error::Squatted`] if it
    /// runs as a uid the lock does not trust; as [`FileLock::try_acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<FileGuard> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.acquire();
        };
        match self.try_acquire() {
            Err(Error::Held(_) | Error::Timeout(None)) => {}
            other => return other,
        }
        let mut backoff = Backoff::default();
        loop {
            let (dir, fd) = self.open()?;
            let locked = crate::file_wait::flock_until(fd.as_fd(), self.shared, deadline)?;
            if locked {
                if self.fcntl_conflict(fd.as_fd())? {
                    drop(fd);
                    if backoff.sleep(Some(deadline))? {
                        continue;
                    }
                } else if is_linked(fd.as_fd(), &dir)? {
                    return Ok(self.guard(dir, fd));
                } else {
                    // Removed or replaced while we waited: the new file.
                    continue;
                }
            }
            return Err(match self.holder() {
                Ok(Some(h)) => match self.held(h) {
                    Error::Held(h) => Error::Timeout(Some(h)),
                    squatted => squatted,
                },
                _ => Error::Timeout(None),
            });
        }
    }

    /// Who holds the lock now (from `/proc/locks`), or `None` if it is free
    /// or the file does not exist.
    ///
    /// # Errors
    /// If the file cannot be examined or `/proc/locks` read;
    /// [`Error::UnsafePath`] as [`FileLock::try_acquire`].
    pub fn holder(&self) -> Result<Option<Holder>> {
        let Some(dir) = self.parent_if_any()? else {
            return Ok(None);
        };
        match dir.stat_file() {
            Ok(stat) => Holder::discover_file(&self.path, stat.st_dev, stat.st_ino),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io("examining the lock file")(e.into())),
        }
    }

    /// Why a uid this lock does not trust could take the lock file over
    /// (create or lock it first, or replace it), or `None` if no such user
    /// could: its directory, or one above it, is writable by or belongs
    /// to another user, or the file already belongs to one. A lock file
    /// there can be squatted; put it in a directory only trusted users can
    /// write to, such as a root-owned 0755 `/run/NAME` (systemd's
    /// `RuntimeDirectory=`), not the world-writable `/run/lock`.
    ///
    /// # Errors
    /// [`Error::UnsafePath`] for a symlink an untrusted user owns on the
    /// way; [`Error::PathIo`] if a directory cannot be opened.
    pub fn exposure(&self) -> Result<Option<String>> {
        let mut dir = safe_path::open_target(&self.path, &self.trusted, PathUse::LockFile)?;
        if let Ok(stat) = dir.stat_file() {
            dir.check_file(&stat, &self.trusted, &self.path);
        }
        Ok(dir.exposure().map(str::to_string))
    }

    /// The file's directory, or `None` if it does not exist.
    fn parent_if_any(&self) -> Result<Option<safe_path::Dir>> {
        match safe_path::open_target(&self.path, &self.trusted, PathUse::LockFile) {
            Ok(dir) => Ok(Some(dir)),
            Err(Error::PathIo { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Waits until the lock is free without taking it; `None` waits
    /// forever. Returns `false` on timeout.
    ///
    /// # Errors
    /// [`Error::Squatted`] if a uid the lock does not trust holds it; as
    /// [`FileLock::holder`].
    pub fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        match self.holder()? {
            None => Ok(true),
            Some(holder) => match self.held(holder) {
                Error::Held(holder) => holder.wait_released(timeout),
                squatted => Err(squatted),
            },
        }
    }

    /// Opens (creating) the file and locks it; `None` if it is held and
    /// `blocking` is false.
    fn lock(&self, blocking: bool) -> Result<Option<FileGuard>> {
        loop {
            let (dir, fd) = self.open()?;
            let op = match (blocking, self.shared) {
                (true, false) => FlockOperation::LockExclusive,
                (false, false) => FlockOperation::NonBlockingLockExclusive,
                (true, true) => FlockOperation::LockShared,
                (false, true) => FlockOperation::NonBlockingLockShared,
            };
            match rustix::fs::flock(&fd, op) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => return Ok(None),
                Err(Errno::INTR) if crate::interrupt::restarts() => continue,
                Err(e) => return Err(Error::io("locking the lock file")(e.into())),
            }
            if self.fcntl_conflict(fd.as_fd())? {
                return Ok(None);
            }
            if is_linked(fd.as_fd(), &dir)? {
                return Ok(Some(self.guard(dir, fd)));
            }
            // We locked an inode that was unlinked or replaced meanwhile:
            // a lock nobody else can see. Drop it, lock the current file.
        }
    }

    fn guard(&self, dir: safe_path::Dir, fd: OwnedFd) -> FileGuard {
        FileGuard {
            path: self.path.clone(),
            dir,
            fd: Arc::new(fd),
            remove: self.remove && !self.shared,
        }
    }

    /// Whether another process holds a POSIX or OFD `fcntl(2)` lock on the
    /// file that ours conflicts with. Linux keeps those apart from
    /// `flock(2)` locks, so a `lckdo` or `setlock` holder would not stop us
    /// otherwise. One `fcntl(F_GETLK)` over the whole file: it reports the
    /// first conflicting POSIX lock of another process or OFD lock of
    /// another description, never our own process's POSIX locks. (Not
    /// `/proc/locks`: reading it takes the kernel's `file_rwsem` for
    /// writing, an RCU grace period of several milliseconds, and slows
    /// every `flock(2)` on the system meanwhile.)
    fn fcntl_conflict(&self, fd: BorrowedFd<'_>) -> Result<bool> {
        if !self.fcntl_aware {
            return Ok(false);
        }
        let probe = if self.shared {
            rustix::process::FlockType::ReadLock
        } else {
            rustix::process::FlockType::WriteLock
        };
        rustix::process::fcntl_getlk(fd, &rustix::process::Flock::from(probe))
            .map(|found| found.is_some())
            .map_err(|e| Error::io("testing for fcntl locks on the lock file")(e.into()))
    }

    /// Opens the lock file, creating it, through a directory reached
    /// without untrusted symlinks ([`safe_path`]). A file we may not write,
    /// or a directory, is opened read-only, as `flock(1)` does: `flock(2)`
    /// needs no write access.
    fn open(&self) -> Result<(safe_path::Dir, OwnedFd)> {
        let dir = safe_path::open_target(&self.path, &self.trusted, PathUse::LockFile)?;
        // O_NONBLOCK: a FIFO planted at the path must not hang the open.
        let flags = OFlags::NONBLOCK;
        let opened = match dir.open_file(flags | OFlags::RDWR | OFlags::CREATE, self.mode) {
            Err(e @ (Errno::ACCESS | Errno::ROFS | Errno::PERM | Errno::ISDIR)) => {
                dir.open_file(flags | OFlags::RDONLY, 0).map_err(|_| e)
            }
            other => other,
        };
        let fd =
            opened.map_err(|e| Error::path(PathUse::LockFile, &self.path, &self.path, e.into()))?;
        let stat = rustix::fs::fstat(&fd)
            .map_err(|e| Error::path(PathUse::LockFile, &self.path, &self.path, e.into()))?;
        if !matches!(
            rustix::fs::FileType::from_raw_mode(stat.st_mode),
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Directory
        ) {
            let path = escape(self.path.as_os_str().as_bytes());
            if stat.st_uid != 0 && !self.trusts(stat.st_uid) {
                return Err(Error::UnsafePath(format!(
                    "lock file {path} is not a regular file and belongs to uid {}, \
                     a user this lock does not trust; remove it or choose another path",
                    stat.st_uid
                )));
            }
            return Err(Error::NotAFile(format!(
                "lock file {path} is neither a regular file nor a directory"
            )));
        }
        Ok((dir, fd))
    }
}

/// Takes `flock(2)` on a descriptor the caller opened (as `flock -w`
/// does with `exec 9>FILE; flock -w 10 9`), shared or exclusive, waiting
/// at most `timeout` (`None`: as long as it takes, in `flock(2)` itself).
/// A timed wait sleeps until the kernel reports the holder's close, as
/// [`FileLock::acquire_timeout`] does. `Ok(false)` on timeout.
///
/// # Errors
/// If `flock(2)` fails for another reason than the lock being held.
pub fn flock_timeout(fd: BorrowedFd<'_>, shared: bool, timeout: Option<Duration>) -> Result<bool> {
    let failed = |e: Errno| Error::io("locking the file")(e.into());
    match timeout.and_then(|t| Instant::now().checked_add(t)) {
        Some(deadline) => crate::file_wait::flock_until(fd, shared, deadline),
        None => {
            let op = if shared {
                FlockOperation::LockShared
            } else {
                FlockOperation::LockExclusive
            };
            loop {
                match rustix::fs::flock(fd, op) {
                    Ok(()) => return Ok(true),
                    Err(Errno::INTR) if crate::interrupt::restarts() => {}
                    Err(e) => return Err(failed(e)),
                }
            }
        }
    }
}

/// Whether the directory entry still names the file open at `fd`.
fn is_linked(fd: BorrowedFd<'_>, dir: &safe_path::Dir) -> Result<bool> {
    let open = rustix::fs::fstat(fd).map_err(|e| Error::io("examining the lock file")(e.into()))?;
    match dir.stat_file() {
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
        is_linked(self.fd.as_fd(), &self.dir)
    }

    /// Lets the program `command` spawns inherit the lock, as
    /// [`Guard::pass_to`](crate::Guard::pass_to) does: the descriptor stays
    /// open across `exec`, its number is in [`FD_ENV`], and the lock is
    /// released only when this guard and the child have both closed it.
    pub fn pass_to(&self, command: &mut Command) {
        let raw = self.fd.as_raw_fd();
        command.env(FD_ENV, raw.to_string());
        sys::inherit_across_exec(command, vec![raw], Arc::clone(&self.fd));
    }

    /// The descriptor [`FileGuard::pass_to`] lets a child inherit, as
    /// [`Guard::inherited_fds`](crate::Guard::inherited_fds).
    pub fn inherited_fds(&self) -> Vec<BorrowedFd<'_>> {
        vec![self.fd.as_fd()]
    }

    /// Gives up the guard and returns the locked descriptor without
    /// close-on-exec, for a process about to `exec` the program that
    /// should hold the lock.
    ///
    /// # Errors
    /// If `fcntl(2)` or `dup(2)` fails.
    pub fn into_fd(mut self) -> Result<OwnedFd> {
        // The file stays: the lock lives on in whoever gets the descriptor.
        self.remove = false;
        let fd = Arc::clone(&self.fd);
        drop(self);
        let fd = Arc::try_unwrap(fd)
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

impl FileGuard {
    /// Closes our descriptor and takes the lock again, without waiting, on
    /// a new description of the same file, which replaces ours: `true` if
    /// that worked, which proves that no other process kept the old
    /// description (a child) and that no waiter came first. Two system
    /// calls, where asking `/proc/locks` costs an RCU grace period.
    fn retake(&mut self) -> bool {
        // A file to remove: waiters blocked in flock(2) on it keep it open.
        // Leave them the file, and their place in the kernel's queue (the
        // unlink would send them all to a new file, in a new order).
        if self.remove && !sys::alone_writing(self.fd.as_fd()) {
            return false;
        }
        let Ok(ours) = rustix::fs::fstat(&*self.fd) else {
            return false;
        };
        let Ok(again) = self.dir.open_file(OFlags::RDONLY | OFlags::NONBLOCK, 0) else {
            return false;
        };
        match rustix::fs::fstat(&again) {
            Ok(st) if st.st_dev == ours.st_dev && st.st_ino == ours.st_ino => {}
            _ => return false,
        }
        // Our descriptor closes here (the lock goes unless a child keeps
        // the description).
        drop(std::mem::replace(&mut self.fd, Arc::new(again)));
        rustix::fs::flock(&*self.fd, FlockOperation::NonBlockingLockExclusive).is_ok()
    }

    /// The release of [`FileLock::remove_on_release`], once [`retake`]
    /// succeeded: the file is unlinked under the lock.
    ///
    /// [`retake`]: FileGuard::retake
    fn unlink_held(&self) {
        if is_linked(self.fd.as_fd(), &self.dir).unwrap_or(false) {
            let _ =
                rustix::fs::unlinkat(&self.dir.fd, &self.dir.name, rustix::fs::AtFlags::empty());
        }
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        if self.remove && self.retake() {
            self.unlink_held();
        }
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
    /// there are none: the lock is taken again at once on a new
    /// description and released. Otherwise the
    /// processes' fdinfo tell keepers (the lock still bears the pid of the
    /// process that took it, ours) from a waiter that came first.
    ///
    /// # Errors
    /// If `fstat(2)` on the descriptor fails.
    pub fn release_and_list_keepers(mut self) -> Result<Vec<crate::procfs::ProcessInfo>> {
        let stat = rustix::fs::fstat(&*self.fd)
            .map_err(|e| Error::io("examining the lock file")(e.into()))?;
        let free = self.retake();
        if free && self.remove {
            self.unlink_held();
        }
        self.remove = false;
        drop(self);
        if free {
            return Ok(Vec::new());
        }
        Ok(crate::procfs::process_infos(crate::procfs::flock_keepers(
            stat.st_dev,
            stat.st_ino,
            std::process::id(),
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
