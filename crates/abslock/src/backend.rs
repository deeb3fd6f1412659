//! One interface for every backend: [`Backend`], which the socket name
//! ([`Lock`]), the lock file ([`FileLock`]), the combined mode
//! ([`CombinedLock`]), the network-namespace-proof name ([`NetnsLock`]) and
//! engines outside this crate (`abslock-cluster`'s etcd and PostgreSQL
//! locks) implement; and [`AnyLock`], which holds any of them, for
//! programs (like the `abslock` command) that let the user choose.
//!
//! Every backend keeps the same contract, which one suite checks against
//! each (`crates/abslock-cli/tests/contract.rs`): one holder at a time;
//! [`Error::Held`] names it; the lock is free once the holder releases it
//! or dies, however it dies (at once for local locks; within the lease or
//! connection timeout for a cluster engine); a waiter takes it then; a
//! timed wait gives up with [`Error::Timeout`].
//!
//! ```
//! use abslock::{AnyLock, Backend, Lock};
//!
//! fn run_once(lock: &dyn Backend) -> abslock::Result<()> {
//!     let guard = lock.try_acquire()?;
//!     // ... the only instance runs here, whatever keeps the lock ...
//!     drop(guard);
//!     Ok(())
//! }
//! run_once(&AnyLock::Socket(Lock::user("abslock-backend-example")?))?;
//! # Ok::<(), abslock::Error>(())
//! ```

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::Duration;

use crate::combined::{CombinedGuard, CombinedLock};
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::file::{FileGuard, FileLock};
use crate::guard::Guard;
use crate::holder::Holder;
use crate::lock::Lock;
use crate::netns::{NetnsGuard, NetnsLock};
use crate::procfs::ProcessInfo;

/// What every lock offers, whatever keeps it.
///
/// The concrete types have richer methods of the same names (returning
/// their own guard types); this trait is the common ground, returning an
/// [`AnyGuard`]. Call it as `Backend::acquire(&lock, timeout)` where a
/// concrete type's own `acquire` would be chosen.
pub trait Backend: fmt::Debug + fmt::Display + Send + Sync {
    /// Takes the lock if it is free, without waiting.
    ///
    /// # Errors
    /// [`Error::Held`] (or [`Error::Squatted`]) naming the holder if it is
    /// taken; otherwise what the backend could not do.
    fn try_acquire(&self) -> Result<AnyGuard>;

    /// Takes the lock, waiting at most `timeout` (`None`: as long as it
    /// takes; zero: [`Backend::try_acquire`]).
    ///
    /// # Errors
    /// [`Error::Timeout`] with the holder if still held when time is up;
    /// otherwise as [`Backend::try_acquire`].
    fn acquire(&self, timeout: Option<Duration>) -> Result<AnyGuard>;

    /// Who holds the lock now, or `None` if it is free.
    ///
    /// # Errors
    /// If the backend cannot be asked.
    fn holder(&self) -> Result<Option<Holder>>;

    /// Waits until the lock is free without taking it, at most `timeout`
    /// (`None`: forever); `false` if it was still held when time ran out.
    ///
    /// # Errors
    /// If the backend cannot be asked.
    fn wait_released(&self, timeout: Option<Duration>) -> Result<bool>;
}

/// The guard of a lock kept outside this crate (a cluster engine's lease or
/// session): what [`AnyGuard::Remote`] holds.
pub trait RemoteGuard: fmt::Debug + Send {
    /// A number strictly greater for every later holder of the lock, for
    /// the resources the holder writes to (`None` if the engine has none).
    fn fencing_token(&self) -> Option<u64>;

    /// Why the lock was lost (lease expired, connection dropped) once it
    /// was: another host may hold it now.
    fn lost(&self) -> Option<String>;

    /// A descriptor that polls readable once the lock is lost, for an event
    /// loop.
    fn lost_fd(&self) -> BorrowedFd<'_>;

    /// Once the lock is lost: how long the work done under it may take to
    /// stop (from SIGTERM to SIGKILL) and still end before the engine can
    /// give the lock to someone else. `None`: no such bound (the default).
    fn stop_within(&self) -> Option<Duration> {
        None
    }

    /// The moment the work done under the lock must be dead by, for a
    /// process that enforces it even while this one cannot run (stopped,
    /// paused): a descriptor (a memfd) whose first 8 bytes hold, in native
    /// byte order, a `CLOCK_MONOTONIC` time in nanoseconds, moved later by
    /// each renewal the engine confirms. Two equal reads in a row are a
    /// value that was written whole. `None`: no such moment (the default).
    fn deadline_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Releases the lock now.
    ///
    /// # Errors
    /// If the engine could not be told; its lease or connection then runs
    /// out on its own.
    fn release(self: Box<Self>) -> Result<()>;
}

/// Writes `ns` (a [`monotonic_ns`](crate::__private::monotonic_ns) time)
/// into a deadline descriptor, in the format of
/// [`RemoteGuard::deadline_fd`].
///
/// # Errors
/// If the descriptor cannot be written.
pub fn write_deadline(fd: BorrowedFd<'_>, ns: u64) -> std::io::Result<()> {
    rustix::io::pwrite(fd, &ns.to_ne_bytes(), 0)?;
    Ok(())
}

/// Reads the time a deadline descriptor holds
/// ([`RemoteGuard::deadline_fd`]), until two reads agree: a renewal may be
/// writing it.
///
/// # Errors
/// If it cannot be read, or holds fewer than 8 bytes.
pub fn read_deadline(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    let read = || {
        let mut bytes = [0u8; 8];
        match rustix::io::pread(fd, &mut bytes, 0)? {
            8 => Ok(u64::from_ne_bytes(bytes)),
            _ => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        }
    };
    let mut last = read()?;
    loop {
        let again = read()?;
        if again == last {
            return Ok(again);
        }
        last = again;
    }
}

/// Starts a thread for a backend's own work (renewing a lease, watching a
/// connection) that blocks every signal, as the library's own threads do:
/// a process-directed signal (the SIGTERM a supervisor waits for with
/// `signalfd(2)`, blocked only in its own threads) must never be delivered
/// to it, where the default action would kill the whole process.
///
/// # Errors
/// If the thread cannot be created (`EAGAIN`: too many threads).
pub fn spawn_quiet<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    crate::sys::spawn_blocking_signals(std::thread::Builder::new().name(name.to_string()), work)
}

/// A lock on any backend.
#[derive(Debug)]
pub enum AnyLock {
    /// An abstract socket name ([`Lock`]).
    Socket(Lock),
    /// A `flock(2)` lock file ([`FileLock`]).
    File(FileLock),
    /// A lock file plus a socket name ([`CombinedLock`]).
    Combined(CombinedLock),
    /// A socket name that other network namespaces see ([`NetnsLock`]).
    Netns(NetnsLock),
    /// A backend implemented outside this crate, such as a cluster engine.
    Remote(Box<dyn Backend>),
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
    /// See [`RemoteGuard`].
    Remote(Box<dyn RemoteGuard>),
}

/// [`Backend`] for a local lock type, from its own methods.
macro_rules! local_backend {
    ($lock:ty, $variant:ident) => {
        impl Backend for $lock {
            fn try_acquire(&self) -> Result<AnyGuard> {
                <$lock>::try_acquire(self).map(AnyGuard::$variant)
            }

            fn acquire(&self, timeout: Option<Duration>) -> Result<AnyGuard> {
                match timeout {
                    Some(t) => <$lock>::acquire_timeout(self, t),
                    None => <$lock>::acquire(self),
                }
                .map(AnyGuard::$variant)
            }

            fn holder(&self) -> Result<Option<Holder>> {
                <$lock>::holder(self)
            }

            fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
                <$lock>::wait_released(self, timeout)
            }
        }
    };
}

local_backend!(Lock, Socket);
local_backend!(FileLock, File);
local_backend!(CombinedLock, Combined);
local_backend!(NetnsLock, Netns);

impl AnyLock {
    fn backend(&self) -> &dyn Backend {
        match self {
            AnyLock::Socket(l) => l,
            AnyLock::File(l) => l,
            AnyLock::Combined(l) => l,
            AnyLock::Netns(l) => l,
            AnyLock::Remote(l) => l.as_ref(),
        }
    }

    /// Whether a holder running as `uid` is trusted. Remote holders have
    /// no uid here; the engine's own access control decides.
    pub fn trusts(&self, uid: u32) -> bool {
        match self {
            AnyLock::Socket(l) => l.trusts(uid),
            AnyLock::File(l) => l.trusts(uid),
            AnyLock::Combined(l) => l.file().trusts(uid),
            AnyLock::Netns(l) => l.socket().trusts(uid),
            AnyLock::Remote(_) => true,
        }
    }

    /// The socket part, which the protocol (`info`, `send`, `stop`) uses.
    pub fn socket(&self) -> Option<&Lock> {
        match self {
            AnyLock::Socket(l) => Some(l),
            AnyLock::Combined(l) => Some(l.socket()),
            AnyLock::Netns(l) => Some(l.socket()),
            AnyLock::File(_) | AnyLock::Remote(_) => None,
        }
    }
}

impl Backend for AnyLock {
    fn try_acquire(&self) -> Result<AnyGuard> {
        self.backend().try_acquire()
    }

    fn acquire(&self, timeout: Option<Duration>) -> Result<AnyGuard> {
        self.backend().acquire(timeout)
    }

    fn holder(&self) -> Result<Option<Holder>> {
        self.backend().holder()
    }

    fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        self.backend().wait_released(timeout)
    }
}

impl fmt::Display for Lock {
    /// The socket's address (`@abslock/...`), escaped for a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl fmt::Display for FileLock {
    /// `file:PATH`, escaped for a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file:{}", escape(self.path().as_os_str().as_bytes()))
    }
}

impl fmt::Display for CombinedLock {
    /// `@abslock/... + file:PATH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} + {}", self.socket(), self.file())
    }
}

impl fmt::Display for NetnsLock {
    /// The socket's address: the file is an implementation detail of the
    /// name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.socket())
    }
}

impl fmt::Display for AnyLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.backend(), f)
    }
}

impl AnyGuard {
    /// Lets `command`'s program inherit the lock (see [`Guard::pass_to`]).
    /// A remote lock is the lease or session of this process and cannot be
    /// inherited: nothing is passed.
    pub fn pass_to(&self, command: &mut Command) {
        match self {
            AnyGuard::Socket(g) => g.pass_to(command),
            AnyGuard::File(g) => g.pass_to(command),
            AnyGuard::Combined(g) => g.pass_to(command),
            AnyGuard::Netns(g) => g.pass_to(command),
            AnyGuard::Remote(_) => {}
        }
    }

    /// The descriptors [`AnyGuard::pass_to`] lets a child inherit, the one
    /// [`FD_ENV`](crate::FD_ENV) names first; none for a remote lock.
    pub fn inherited_fds(&self) -> Vec<BorrowedFd<'_>> {
        match self {
            AnyGuard::Socket(g) => g.inherited_fds(),
            AnyGuard::File(g) => g.inherited_fds(),
            AnyGuard::Combined(g) => g.inherited_fds(),
            AnyGuard::Netns(g) => g.inherited_fds(),
            AnyGuard::Remote(_) => Vec::new(),
        }
    }

    /// Gives up the guard, returning its inheritable descriptors (the one
    /// that decides first).
    ///
    /// # Errors
    /// As the backend's `into_fd`; [`Error::Unsupported`] for a remote
    /// lock, which has no descriptor to hand on (it is released).
    pub fn into_fds(self) -> Result<Vec<OwnedFd>> {
        match self {
            AnyGuard::Socket(g) => g.into_fds(),
            AnyGuard::File(g) => Ok(vec![g.into_fd()?]),
            AnyGuard::Combined(g) => g.into_fds(),
            AnyGuard::Netns(g) => g.into_fds(),
            AnyGuard::Remote(_) => Err(Error::Unsupported(
                "a cluster lock cannot be handed to another program: it is this process's \
                 lease or connection"
                    .into(),
            )),
        }
    }

    /// The socket guard, which serves the protocol, if there is one.
    pub fn socket(&self) -> Option<&Guard> {
        match self {
            AnyGuard::Socket(g) => Some(g),
            AnyGuard::Combined(g) => g.socket(),
            AnyGuard::Netns(g) => Some(g.socket()),
            AnyGuard::File(_) | AnyGuard::Remote(_) => None,
        }
    }

    /// The fencing token of a remote lock ([`RemoteGuard::fencing_token`]).
    pub fn fencing_token(&self) -> Option<u64> {
        match self {
            AnyGuard::Remote(g) => g.fencing_token(),
            _ => None,
        }
    }

    /// For a remote lock, a descriptor that polls readable once the lock is
    /// lost ([`RemoteGuard::lost_fd`]). A local lock cannot be lost while
    /// its descriptor is open.
    pub fn lost_fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            AnyGuard::Remote(g) => Some(g.lost_fd()),
            _ => None,
        }
    }

    /// For a remote lock, the moment the work done under it must be dead
    /// by ([`RemoteGuard::deadline_fd`]).
    pub fn deadline_fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            AnyGuard::Remote(g) => g.deadline_fd(),
            _ => None,
        }
    }

    /// For a remote lock, the time from SIGTERM to SIGKILL once it is lost
    /// ([`RemoteGuard::stop_within`]).
    pub fn stop_within(&self) -> Option<Duration> {
        match self {
            AnyGuard::Remote(g) => g.stop_within(),
            _ => None,
        }
    }

    /// Why a remote lock was lost, once it was ([`RemoteGuard::lost`]).
    pub fn lost(&self) -> Option<String> {
        match self {
            AnyGuard::Remote(g) => g.lost(),
            _ => None,
        }
    }

    /// Releases this process's hold; returns the processes that still keep
    /// the lock (see [`Guard::release_and_list_keepers`]); none for a
    /// remote lock.
    ///
    /// # Errors
    /// If `fstat(2)` fails; for a remote lock, if the engine could not be
    /// told (its lease or connection then runs out on its own).
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
            AnyGuard::Remote(g) => g.release().map(|()| Vec::new()),
        }
    }

    /// Every process that keeps the lock; none for a remote lock.
    ///
    /// # Errors
    /// If `fstat(2)` fails.
    pub fn processes(&self) -> Result<Vec<ProcessInfo>> {
        match self {
            AnyGuard::Socket(g) => g.processes(),
            AnyGuard::File(g) => g.processes(),
            AnyGuard::Combined(g) => g.file().processes(),
            AnyGuard::Netns(g) => g.socket().processes(),
            AnyGuard::Remote(_) => Ok(Vec::new()),
        }
    }
}
