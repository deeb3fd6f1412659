//! A socket lock that other network namespaces see too.
//!
//! Every network namespace has its own abstract socket names (rule 3 of
//! `docs/semantics.md`): a process in a sandbox without network access
//! (`unshare -n`, systemd's `PrivateNetwork=yes`, Flatpak without
//! `--share=network`) binds the same name as one outside and both run.
//! [`NetnsLock`] therefore takes, besides the socket name, a `flock(2)` lock
//! on a file that every namespace sharing the file system sees (the
//! `abslock` command uses one in the user's runtime directory). Both must
//! be free: the file keeps other namespaces out, the socket keeps out a
//! holder in this namespace that takes only the name (a program using
//! [`Lock`] directly, an older abslock), and still names the holder and
//! carries messages. Test: `two_network_namespaces_do_not_both_run`.
//!
//! Both are always taken in the same order, file first, so two waiters
//! cannot deadlock; a waiter holds the file while it waits for the socket.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::file::{FileGuard, FileLock};
use crate::guard::Guard;
use crate::holder::Holder;
use crate::lock::Lock;
use crate::procfs::ProcessInfo;

/// A socket name plus a lock file; both must be free to take it.
#[derive(Debug, Clone)]
pub struct NetnsLock {
    socket: Lock,
    file: FileLock,
}

/// A held [`NetnsLock`]: the file and the socket.
#[derive(Debug)]
pub struct NetnsGuard {
    socket: Guard,
    file: FileGuard,
}

impl NetnsLock {
    /// `socket`, also guarded by `file` against other network namespaces.
    /// The file is given the socket's trust.
    pub fn new(socket: Lock, file: FileLock) -> NetnsLock {
        NetnsLock { socket, file }
    }

    /// The socket part.
    pub fn socket(&self) -> &Lock {
        &self.socket
    }

    /// The file part.
    pub fn file(&self) -> &FileLock {
        &self.file
    }

    /// Takes the file and then the name, if both are free.
    ///
    /// # Errors
    /// As [`FileLock::try_acquire`] and [`Lock::try_acquire`].
    pub fn try_acquire(&self) -> Result<NetnsGuard> {
        let file = self.file.try_acquire().map_err(|e| self.exact(e))?;
        let socket = self.socket.try_acquire()?;
        Ok(NetnsGuard { socket, file })
    }

    /// Takes the lock, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`FileLock::acquire`] and [`Lock::acquire`].
    pub fn acquire(&self) -> Result<NetnsGuard> {
        let file = self.file.acquire().map_err(|e| self.exact(e))?;
        let socket = self.socket.acquire()?;
        Ok(NetnsGuard { socket, file })
    }

    /// Takes the lock, waiting at most `timeout` for both parts together.
    ///
    /// # Errors
    /// As [`FileLock::acquire_timeout`] and [`Lock::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<NetnsGuard> {
        let deadline = Instant::now().checked_add(timeout);
        let file = self
            .file
            .acquire_timeout(timeout)
            .map_err(|e| self.exact(e))?;
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        let socket = self.socket.acquire_timeout(left)?;
        Ok(NetnsGuard { socket, file })
    }

    /// Who holds the lock: the name's holder in this namespace (exact,
    /// through `SO_PEERCRED`), else the file's, from another namespace;
    /// `None` if both are free.
    ///
    /// # Errors
    /// If a system call fails.
    pub fn holder(&self) -> Result<Option<Holder>> {
        match self.socket.holder()? {
            Some(h) => Ok(Some(h)),
            None => self.file.holder(),
        }
    }

    /// Waits until both are free; `false` on timeout.
    ///
    /// # Errors
    /// As [`Lock::wait_released`] and [`FileLock::wait_released`].
    pub fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        if !self.socket.wait_released(timeout)? {
            return Ok(false);
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        self.file.wait_released(left)
    }

    /// The file's holder is named through the socket when the same process
    /// holds both.
    fn exact(&self, e: Error) -> Error {
        let better = |h: Holder| match self.socket.holder() {
            Ok(Some(s)) if s.pid().is_some() && s.pid() == h.pid() => s,
            _ => h,
        };
        match e {
            Error::Held(h) => Error::Held(better(h)),
            Error::Timeout(Some(h)) => Error::Timeout(Some(better(h))),
            other => other,
        }
    }
}

impl NetnsGuard {
    /// The socket's guard, which serves the protocol.
    pub fn socket(&self) -> &Guard {
        &self.socket
    }

    /// The file's guard.
    pub fn file(&self) -> &FileGuard {
        &self.file
    }

    /// Lets `command`'s program inherit both; [`FD_ENV`](crate::FD_ENV)
    /// names the socket's descriptor.
    pub fn pass_to(&self, command: &mut Command) {
        self.file.pass_to(command);
        self.socket.pass_to(command);
    }

    /// The descriptors [`NetnsGuard::pass_to`] lets a child inherit, the
    /// socket's first (the one [`FD_ENV`](crate::FD_ENV) names).
    pub fn inherited_fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = self.socket.inherited_fds();
        fds.extend(self.file.inherited_fds());
        fds
    }

    /// Gives up the guard: the socket's descriptor, then the file's, both
    /// inheritable.
    ///
    /// # Errors
    /// As [`Guard::into_fd`] and [`FileGuard::into_fd`].
    pub fn into_fds(self) -> Result<Vec<OwnedFd>> {
        let mut fds = self.socket.into_fds()?;
        fds.push(self.file.into_fd()?);
        Ok(fds)
    }

    /// Releases both; returns the processes that still keep the name.
    ///
    /// # Errors
    /// If `fstat(2)` fails.
    pub fn release_and_list_keepers(self) -> Result<Vec<ProcessInfo>> {
        // The reverse of taking them: the socket, then the file, so that
        // the next holder of the file finds the name free.
        let NetnsGuard { socket, file } = self;
        let keepers = socket.release_and_list_keepers();
        drop(file);
        keepers
    }
}
