//! One type for every backend, for programs (like the `abslock` command)
//! that let the user choose: an abstract socket name, a lock file, or
//! both.

use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::Duration;

use crate::combined::{CombinedGuard, CombinedLock};
use crate::error::Result;
use crate::escape::escape;
use crate::file::{FileGuard, FileLock};
use crate::guard::Guard;
use crate::holder::Holder;
use crate::lock::Lock;
use crate::netns::{NetnsGuard, NetnsLock};
use crate::procfs::ProcessInfo;

/// A lock on any backend. Each method does what the backend's own does.
#[derive(Debug, Clone)]
pub enum AnyLock {
    /// An abstract socket name ([`Lock`]).
    Socket(Lock),
    /// A `flock(2)` lock file ([`FileLock`]).
    File(FileLock),
    /// A lock file plus a socket name ([`CombinedLock`]).
    Combined(CombinedLock),
    /// A socket name that other network namespaces see ([`NetnsLock`]).
    Netns(NetnsLock),
}

/// A held [`AnyLock`].
#[derive(Debug)]
pub enum AnyGuard {
    /// See [`Guard`].
    Socket(Guard),
    /// See [`FileGuard`].
    File(FileGuard),
    /// See [`CombinedGuard`].
    Combined(CombinedGuard),
    /// See [`NetnsGuard`].
    Netns(NetnsGuard),
}

impl AnyLock {
    /// Takes the lock if it is free.
    ///
    /// # Errors
    /// As the backend's `try_acquire`.
    pub fn try_acquire(&self) -> Result<AnyGuard> {
        Ok(match self {
            AnyLock::Socket(l) => AnyGuard::Socket(l.try_acquire()?),
            AnyLock::File(l) => AnyGuard::File(l.try_acquire()?),
            AnyLock::Combined(l) => AnyGuard::Combined(l.try_acquire()?),
            AnyLock::Netns(l) => AnyGuard::Netns(l.try_acquire()?),
        })
    }

    /// Takes the lock, waiting as long as it takes.
    ///
    /// # Errors
    /// As the backend's `acquire`.
    pub fn acquire(&self) -> Result<AnyGuard> {
        Ok(match self {
            AnyLock::Socket(l) => AnyGuard::Socket(l.acquire()?),
            AnyLock::File(l) => AnyGuard::File(l.acquire()?),
            AnyLock::Combined(l) => AnyGuard::Combined(l.acquire()?),
            AnyLock::Netns(l) => AnyGuard::Netns(l.acquire()?),
        })
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// # Errors
    /// As the backend's `acquire_timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<AnyGuard> {
        Ok(match self {
            AnyLock::Socket(l) => AnyGuard::Socket(l.acquire_timeout(timeout)?),
            AnyLock::File(l) => AnyGuard::File(l.acquire_timeout(timeout)?),
            AnyLock::Combined(l) => AnyGuard::Combined(l.acquire_timeout(timeout)?),
            AnyLock::Netns(l) => AnyGuard::Netns(l.acquire_timeout(timeout)?),
        })
    }

    /// Who holds the lock, or `None` if it is free.
    ///
    /// # Errors
    /// As the backend's `holder`.
    pub fn holder(&self) -> Result<Option<Holder>> {
        match self {
            AnyLock::Socket(l) => l.holder(),
            AnyLock::File(l) => l.holder(),
            AnyLock::Combined(l) => l.holder(),
            AnyLock::Netns(l) => l.holder(),
        }
    }

    /// Waits until the lock is free; `false` on timeout.
    ///
    /// # Errors
    /// As the backend's `wait_released`.
    pub fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        match self {
            AnyLock::Socket(l) => l.wait_released(timeout),
            AnyLock::File(l) => l.wait_released(timeout),
            AnyLock::Combined(l) => l.wait_released(timeout),
            AnyLock::Netns(l) => l.wait_released(timeout),
        }
    }

    /// Whether a holder running as `uid` is trusted.
    pub fn trusts(&self, uid: u32) -> bool {
        match self {
            AnyLock::Socket(l) => l.trusts(uid),
            AnyLock::File(l) => l.trusts(uid),
            AnyLock::Combined(l) => l.file().trusts(uid),
            AnyLock::Netns(l) => l.socket().trusts(uid),
        }
    }

    /// The socket part, which the protocol (`info`, `send`, `stop`) uses.
    pub fn socket(&self) -> Option<&Lock> {
        match self {
            AnyLock::Socket(l) => Some(l),
            AnyLock::File(_) => None,
            AnyLock::Combined(l) => Some(l.socket()),
            AnyLock::Netns(l) => Some(l.socket()),
        }
    }
}

impl fmt::Display for AnyLock {
    /// The socket's address (`@abslock/...`), `file:PATH`, or both, escaped
    /// for a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = |l: &FileLock| escape(l.path().as_os_str().as_bytes());
        match self {
            AnyLock::Socket(l) => write!(f, "{}", l.name()),
            // The file is an implementation detail of the name.
            AnyLock::Netns(l) => write!(f, "{}", l.socket().name()),
            AnyLock::File(l) => write!(f, "file:{}", path(l)),
            AnyLock::Combined(l) => write!(f, "{} + file:{}", l.socket().name(), path(l.file())),
        }
    }
}

impl AnyGuard {
    /// Lets `command`'s program inherit the lock (see
    /// [`Guard::pass_to`]).
    pub fn pass_to(&self, command: &mut Command) {
        match self {
            AnyGuard::Socket(g) => g.pass_to(command),
            AnyGuard::File(g) => g.pass_to(command),
            AnyGuard::Combined(g) => g.pass_to(command),
            AnyGuard::Netns(g) => g.pass_to(command),
        }
    }

    /// Gives up the guard, returning its inheritable descriptors (the one
    /// that decides first).
    ///
    /// # Errors
    /// As the backend's `into_fd`.
    pub fn into_fds(self) -> Result<Vec<OwnedFd>> {
        match self {
            AnyGuard::Socket(g) => g.into_fds(),
            AnyGuard::File(g) => Ok(vec![g.into_fd()?]),
            AnyGuard::Combined(g) => g.into_fds(),
            AnyGuard::Netns(g) => g.into_fds(),
        }
    }

    /// The socket guard, which serves the protocol, if there is one.
    pub fn socket(&self) -> Option<&Guard> {
        match self {
            AnyGuard::Socket(g) => Some(g),
            AnyGuard::File(_) => None,
            AnyGuard::Combined(g) => g.socket(),
            AnyGuard::Netns(g) => Some(g.socket()),
        }
    }

    /// Releases this process's hold; returns the processes that still keep
    /// the lock (see [`Guard::release_and_list_keepers`]).
    ///
    /// # Errors
    /// If `fstat(2)` fails.
    pub fn release_and_list_keepers(self) -> Result<Vec<ProcessInfo>> {
        match self {
            AnyGuard::Socket(g) => g.release_and_list_keepers(),
            AnyGuard::File(g) => g.release_and_list_keepers(),
            AnyGuard::Combined(g) => {
                let (file, socket) = g.into_parts();
                drop(socket);
                file.release_and_list_keepers()
            }
            AnyGuard::Netns(g) => g.release_and_list_keepers(),
        }
    }

    /// Every process that keeps the lock.
    ///
    /// # Errors
    /// If `fstat(2)` fails.
    pub fn processes(&self) -> Result<Vec<ProcessInfo>> {
        match self {
            AnyGuard::Socket(g) => g.processes(),
            AnyGuard::File(g) => g.processes(),
            AnyGuard::Combined(g) => g.file().processes(),
            AnyGuard::Netns(g) => g.socket().processes(),
        }
    }
}
