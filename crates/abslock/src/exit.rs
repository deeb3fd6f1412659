//! Exit codes, shared by every front end: the `abslock` command exits
//! with them, and bindings (the Python package's `Error.exit_code`, the
//! C library's return codes) report the same number for the same case. They follow `flock(1)` (1 for
//! a conflict or timeout, 66 and 73 for lock files) and `sysexits.h`.
//! [`Error::exit_code`] maps every error to one.

use crate::error::{Error, PathUse};

/// Success.
pub const OK: u8 = 0;
/// The lock is held: conflict, timeout, or `status` of a free lock.
pub const CONFLICT: u8 = 1;
/// `kill`: the lock was still held when the wait ran out.
pub const STILL_HELD: u8 = 2;
/// Held by a user the lock does not trust.
pub const SQUATTED: u8 = 3;
/// A cluster lock was lost while the command ran (lease expired,
/// connection dropped).
pub const LOST: u8 = 5;
/// `EX_USAGE`: a bad name, signal, option or request.
pub const USAGE: u8 = 64;
/// `EX_NOINPUT`: a lock file cannot be opened (as `flock(1)` exits).
pub const NOINPUT: u8 = 66;
/// `EX_UNAVAILABLE`: the command could not be executed; a cluster engine
/// could not be reached or refused us; nobody holds the lock to message,
/// or the holder takes no messages.
pub const UNAVAILABLE: u8 = 69;
/// `EX_OSERR`.
pub const OSERR: u8 = 71;
/// `EX_CANTCREAT`: a PID file cannot be written; a lock file on a
/// read-only or full file system (as `flock(1)` exits).
pub const CANTCREAT: u8 = 73;
/// `EX_TEMPFAIL`: the holder is shutting down or did not answer in time.
pub const TEMPFAIL: u8 = 75;
/// `EX_PROTOCOL`: the holder's answer broke the protocol.
pub const PROTOCOL: u8 = 76;
/// `EX_NOPERM`: not permitted, or a path another user could redirect.
pub const NOPERM: u8 = 77;
/// A wait interrupted by a signal (`SIGINT`'s 128 + 2, as shells report
/// it); the CLI never reports it, a binding raises its own exception.
pub const INTERRUPTED: u8 = 130;

impl Error {
    /// The exit code of this error: what the `abslock` command exits with,
    /// and what every binding reports for the same case.
    ///
    /// ```
    /// use abslock::{exit, Error, LockName};
    ///
    /// let e = LockName::parse("", false).unwrap_err();
    /// assert_eq!(e.exit_code(), exit::USAGE);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidName(_)
            | Error::NotAFile(_)
            | Error::InvalidSignal(_)
            | Error::InvalidRequest(_)
            | Error::InvalidBackend(_)
            | Error::Unsupported(_) => USAGE,
            Error::Engine(_) => UNAVAILABLE,
            Error::Held(_) | Error::Timeout(_) => CONFLICT,
            Error::Squatted(_) => SQUATTED,
            Error::NotHeld | Error::NotServing => UNAVAILABLE,
            Error::ShuttingDown | Error::Unresponsive { .. } => TEMPFAIL,
            Error::Refused(_) | Error::UnsafePath(_) => NOPERM,
            Error::Protocol(_) => PROTOCOL,
            Error::Interrupted => INTERRUPTED,
            Error::PathIo {
                used_as, source, ..
            } => match (used_as, source.raw_os_error()) {
                (_, Some(libc::ENOMEM | libc::EMFILE | libc::ENFILE)) => OSERR,
                (PathUse::LockFile, Some(libc::EROFS | libc::ENOSPC)) => CANTCREAT,
                (PathUse::LockFile, _) => NOINPUT,
                _ => CANTCREAT,
            },
            Error::Io { source, .. }
                if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) =>
            {
                NOPERM
            }
            Error::HolderUnknown | Error::Io { .. } => OSERR,
        }
    }
}
