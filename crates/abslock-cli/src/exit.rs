//! Exit codes (flock(1)'s and sysexits.h conventions) and the error that
//! carries one.

use std::fmt;

use abslock::{Error, PathUse};

/// Success.
pub const OK: u8 = 0;
/// The lock is held: conflict, timeout, or `status` of a free lock.
pub const CONFLICT: u8 = 1;
/// `kill`: the lock was still held when the wait ran out.
pub const STILL_HELD: u8 = 2;
/// Held by a user the lock does not trust.
pub const SQUATTED: u8 = 3;
/// `run --backend`: the cluster lock was lost while the command ran (lease
/// expired, connection dropped); the command was sent SIGTERM.
pub const LOST: u8 = 5;
/// `EX_USAGE`.
pub const USAGE: u8 = 64;
/// `EX_NOINPUT`: a lock file cannot be opened (as `flock(1)` exits).
pub const NOINPUT: u8 = 66;
/// `EX_UNAVAILABLE`: the command could not be executed; a cluster engine
/// could not be reached or refused us; `send`: nobody
/// holds the lock, or the holder takes no messages.
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
/// `EX_NOPERM`.
pub const NOPERM: u8 = 77;

/// A failure: one line for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// The message, without the `abslock:` prefix.
    pub message: String,
}

impl Failure {
    /// A failure with `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl Failure {
    /// Appends what the user can do (`message; hint`).
    pub fn hint(mut self, hint: impl fmt::Display) -> Failure {
        self.message = format!("{}; {hint}", self.message);
        self
    }

    /// Prefixes the message with what it concerns (`NAME: message`).
    pub fn context(mut self, what: impl fmt::Display) -> Failure {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match &e {
            Error::InvalidName(_)
            | Error::InvalidSignal(_)
            | Error::InvalidRequest(_)
            | Error::InvalidBackend(_)
            | Error::Unsupported(_) => USAGE,
            // A cluster engine that cannot be reached or refuses us.
            Error::Engine(_) => UNAVAILABLE,
            Error::Held(_) | Error::Timeout(_) => CONFLICT,
            Error::Squatted(_) => SQUATTED,
            Error::NotHeld | Error::NotServing => UNAVAILABLE,
            Error::ShuttingDown | Error::Unresponsive { .. } => TEMPFAIL,
            Error::Refused(_) => NOPERM,
            Error::Protocol(_) => PROTOCOL,
            Error::UnsafePath(_) => NOPERM,
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
            _ => OSERR,
        };
        Failure::new(code, e.to_string())
    }
}

/// The exit code of a child that ended with `status`: its own code, or
/// 128 + the signal number, as shells report it.
pub fn of_status(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(u8::MAX),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(u8::MAX),
        (None, None) => OSERR,
    }
}
