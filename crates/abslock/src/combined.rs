//! Combined mode, for root daemons: the file lock decides who runs; the
//! abstract socket is added for instant holder discovery and messaging.
//!
//! An abstract name has no permissions, so any local user can bind it
//! first and, with a socket lock alone, deny the daemon. Here the lock is
//! the `flock(2)` lock on a file in a directory only root can write to;
//! the socket is bound after it as an extra. If someone squats the name,
//! the daemon still runs: the squatter is reported
//! ([`CombinedGuard::squatter`]) and only discovery and messages through
//! the socket are lost. Test: `combined_mode_defeats_a_squatter`.
//!
//! That holds only if no untrusted user can take the file over: taking a
//! combined lock fails with [`Error::UnsafePath`] when the file, its
//! directory or an ancestor is exposed to one ([`FileLock::exposure`];
//! test `combined_mode_refuses_a_world_writable_directory`).

use std::os::fd::{BorrowedFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::file::{FileGuard, FileLock};
use crate::guard::Guard;
use crate::holder::Holder;
use crate::lock::Lock;

/// A file lock plus an abstract socket name.
#[derive(Debug, Clone)]
pub struct CombinedLock {
    socket: Lock,
    file: FileLock,
}

/// A held combined lock: always the file lock, and the socket unless it
/// was squatted.
#[derive(Debug)]
pub struct CombinedGuard {
    // Fields drop in this order: the socket before the file, the reverse
    // of taking them, so that whoever gets the file next finds the name
    // free (and does not take us, on our way out, for a squatter).
    socket: Option<Guard>,
    squatter: Option<Holder>,
    file: FileGuard,
}

impl CombinedLock {
    /// `file` decides; `socket` is bound once `file` is held.
    pub fn new(socket: Lock, file: FileLock) -> CombinedLock {
        CombinedLock { socket, file }
    }

    /// The socket part.
    pub fn socket(&self) -> &Lock {
        &self.socket
    }

    /// The file part.
    pub fn file(&self) -> &FileLock {
        &self.file
    }

    /// Takes the file lock if it is free, then the socket name.
    ///
    /// # Errors
    /// [`Error::UnsafePath`] if an untrusted user could take the file over;
    /// as [`FileLock::try_acquire`]; the holder is named through the
    /// socket (with an exact pidfd) when it holds both.
    pub fn try_acquire(&self) -> Result<CombinedGuard> {
        self.check_file()?;
        match self.file.try_acquire() {
            Ok(file) => Ok(self.attach(file)),
            Err(Error::Held(h)) => Err(Error::Held(self.exact(h))),
            Err(e) => Err(e),
        }
    }

    /// Takes the lock, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`FileLock::acquire`].
    pub fn acquire(&self) -> Result<CombinedGuard> {
        self.check_file()?;
        Ok(self.attach(self.file.acquire()?))
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`FileLock::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<CombinedGuard> {
        self.check_file()?;
        Ok(self.attach(self.file.acquire_timeout(timeout)?))
    }

    /// The file decides, so it must be one no untrusted user can take
    /// over ([`FileLock::exposure`]); otherwise a squatter who cannot deny
    /// the socket name would simply lock the file instead.
    fn check_file(&self) -> Result<()> {
        match self.file.exposure()? {
            None => Ok(()),
            Some(why) => Err(Error::UnsafePath(format!(
                "refusing the lock file, which must keep other users out: {why}"
            ))),
        }
    }

    /// Who holds the file lock, or `None` if it is free.
    ///
    /// # Errors
    /// As [`FileLock::holder`].
    pub fn holder(&self) -> Result<Option<Holder>> {
        Ok(self.file.holder()?.map(|h| self.exact(h)))
    }

    /// Waits until the file lock is free; `false` on timeout.
    ///
    /// # Errors
    /// As [`FileLock::wait_released`].
    pub fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        self.file.wait_released(timeout)
    }

    /// The socket's view of the holder (`SO_PEERCRED`, exact pidfd) if the
    /// same process holds the name; otherwise the file's view.
    fn exact(&self, file_holder: Holder) -> Holder {
        match self.socket.holder() {
            Ok(Some(h)) if h.pid().is_some() && h.pid() == file_holder.pid() => h,
            _ => file_holder,
        }
    }

    fn attach(&self, file: FileGuard) -> CombinedGuard {
        let (socket, squatter) = match self.socket.try_acquire() {
            Ok(guard) => (Some(guard), None),
            Err(Error::Held(h) | Error::Squatted(h)) => (None, Some(h)),
            Err(_) => (None, None),
        };
        CombinedGuard {
            file,
            socket,
            squatter,
        }
    }
}

impl CombinedGuard {
    /// The file lock.
    pub fn file(&self) -> &FileGuard {
        &self.file
    }

    /// The socket's guard, unless the name was taken by someone else.
    pub fn socket(&self) -> Option<&Guard> {
        self.socket.as_ref()
    }

    /// Who had bound the socket name when we took the file lock. Since
    /// they do not hold the file, they are not another instance of this
    /// program: a squatter, or a program that uses the same name without
    /// the file.
    pub fn squatter(&self) -> Option<&Holder> {
        self.squatter.as_ref()
    }

    /// Lets `command`'s program inherit both descriptors;
    /// [`FD_ENV`](crate::FD_ENV) names the file's.
    pub fn pass_to(&self, command: &mut Command) {
        if let Some(socket) = &self.socket {
            socket.pass_to(command);
        }
        self.file.pass_to(command);
    }

    /// The descriptors [`CombinedGuard::pass_to`] lets a child inherit,
    /// the file's first (the one [`FD_ENV`](crate::FD_ENV) names).
    pub fn inherited_fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = self.file.inherited_fds();
        if let Some(socket) = &self.socket {
            fds.extend(socket.inherited_fds());
        }
        fds
    }

    /// The file guard and the socket guard, separately.
    pub fn into_parts(self) -> (FileGuard, Option<Guard>) {
        (self.file, self.socket)
    }

    /// Gives up the guard: the file's descriptor first, then the
    /// socket's, both inheritable.
    ///
    /// # Errors
    /// As [`FileGuard::into_fd`] and [`Guard::into_fd`].
    pub fn into_fds(self) -> Result<Vec<OwnedFd>> {
        let mut fds = vec![self.file.into_fd()?];
        if let Some(socket) = self.socket {
            fds.extend(socket.into_fds()?);
        }
        Ok(fds)
    }
}
