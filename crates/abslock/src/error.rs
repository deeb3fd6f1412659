//! The one error type of the library.

use std::fmt;
use std::io;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::escape::{escape, escape_str};
use crate::holder::Holder;

/// A `Result` whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong when taking, inspecting or signalling a lock.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The lock name cannot be used; the message says why.
    InvalidName(String),
    /// A signal name or number that is not a standard Linux signal.
    InvalidSignal(String),
    /// The lock is held by a process of a trusted user (by default: the
    /// same uid, or root). Usually: another instance is running.
    Held(Holder),
    /// The lock is held by a user this lock does not trust: someone else
    /// took the name first (squatting). Do not treat this as "another
    /// instance of me is running". See [`crate::Lock::trust_uid`].
    Squatted(Holder),
    /// The timeout expired while the lock stayed held; the holder is
    /// included when it could still be identified.
    Timeout(Option<Holder>),
    /// The holder cannot be signalled because its process could not be
    /// identified (no pid visible from this pid namespace, or it exited
    /// while another process keeps the lock's socket open).
    HolderUnknown,
    /// The lock is not held, so there is nobody to ask.
    NotHeld,
    /// The holder did not answer a request in time. It was left running:
    /// abslock never kills a holder on its own.
    Unresponsive {
        /// The holder.
        holder: Holder,
        /// How long the client waited.
        waited: std::time::Duration,
    },
    /// The holder is releasing the lock; try to take it.
    ShuttingDown,
    /// The holder does not serve messages or stop requests (it never called
    /// [`crate::Guard::requests`], or it is not an abslock guard).
    NotServing,
    /// The holder refused the request; the reason is the holder's.
    Refused(String),
    /// A frame broke the protocol (`docs/protocol.md`); says how.
    Protocol(String),
    /// A request this side cannot send: a message larger than a frame
    /// allows; says why. The caller's mistake, not the holder's.
    InvalidRequest(String),
    /// A lock file or PID file path that an untrusted user could redirect
    /// or take over (a symlink they own, a directory they can write to);
    /// the message says which and why.
    UnsafePath(String),
    /// A lock file path that names something other than a regular file or
    /// a directory (a device, a FIFO, a socket): it is left alone, never
    /// opened for writing. The message says which path.
    NotAFile(String),
    /// A lock file or PID file could not be reached, opened or written.
    PathIo {
        /// What the path was for.
        used_as: PathUse,
        /// The path as the caller named it.
        path: PathBuf,
        /// The part of it where the failure happened (a directory on the
        /// way, as followed), when that is not `path` itself.
        at: Option<PathBuf>,
        /// The OS error.
        source: io::Error,
    },
    /// A backend that cannot be used as given (a malformed cluster URL,
    /// an unknown option, an engine this build lacks); says why.
    InvalidBackend(String),
    /// A cluster engine could not be reached, or refused us; its reason.
    Engine(String),
    /// This backend cannot do what was asked (hand a cluster lock to
    /// another program); says why.
    Unsupported(String),
    /// A signal handler interrupted a wait started inside
    /// [`crate::interrupt::interruptible`]. Nothing was taken; call again
    /// to go on waiting.
    Interrupted,
    /// A system call failed.
    Io {
        /// What abslock was doing.
        context: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// What a path that failed was for: it decides the words of the message
/// and, in the CLI, the exit code (`flock(1)`'s for lock files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathUse {
    /// A lock file: "cannot open lock file PATH", as `flock(1)` says.
    LockFile,
    /// A PID file: "cannot write PID file PATH".
    PidFile,
}

impl PathUse {
    fn action(self) -> &'static str {
        match self {
            PathUse::LockFile => "cannot open lock file",
            PathUse::PidFile => "cannot write PID file",
        }
    }
}

impl Error {
    /// An error of `path`, used as `used_as`, that failed at `at`.
    pub(crate) fn path(used_as: PathUse, path: &Path, at: &Path, source: io::Error) -> Error {
        Error::PathIo {
            used_as,
            path: path.to_path_buf(),
            at: (at != path).then(|| at.to_path_buf()),
            source,
        }
    }

    /// The same error, told of the whole `path` it concerns and what it
    /// was for, if it is a [`Error::PathIo`] of a part of it.
    pub(crate) fn of_path(self, used_as: PathUse, path: &Path) -> Error {
        match self {
            Error::PathIo {
                path: at, source, ..
            } => Error::path(used_as, path, &at, source),
            other => other,
        }
    }

    /// An [`Error::Io`] of `context`; [`Error::Interrupted`] for `EINTR`,
    /// which only a wait inside [`crate::interrupt::interruptible`] lets
    /// through.
    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| match source.kind() {
            io::ErrorKind::Interrupted => Error::Interrupted,
            _ => Error::Io { context, source },
        }
    }

    /// The holder, for [`Error::Held`], [`Error::Squatted`] and
    /// [`Error::Timeout`].
    pub fn holder(&self) -> Option<&Holder> {
        match self {
            Error::Held(h)
            | Error::Squatted(h)
            | Error::Timeout(Some(h))
            | Error::Unresponsive { holder: h, .. } => Some(h),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName(why) => write!(f, "invalid lock name: {why}"),
            Error::InvalidSignal(why) => f.write_str(why),
            Error::Held(h) => write!(f, "lock is held by {h}"),
            Error::Squatted(h) => write!(
                f,
                "lock is held by {h}, a user this lock does not trust: the name may be squatted; \
                 use a per-user name or a file lock in a protected directory"
            ),
            Error::Timeout(Some(h)) => write!(f, "timed out; lock is still held by {h}"),
            Error::Timeout(None) => write!(f, "timed out; lock is still held"),
            Error::HolderUnknown => write!(
                f,
                "the holding process cannot be identified from here \
                 (another pid namespace, or it exited and a child keeps the lock)"
            ),
            Error::NotHeld => write!(f, "the lock is not held"),
            Error::Interrupted => write!(f, "the wait was interrupted by a signal"),
            Error::Unresponsive { holder, waited } => write!(
                f,
                "the holder, {holder}, did not answer within {:.1}s; it was left running",
                waited.as_secs_f64()
            ),
            Error::ShuttingDown => write!(f, "the holder is shutting down; try again"),
            Error::NotServing => write!(
                f,
                "the holder does not take messages or stop requests \
                 (it is not serving them; signal it instead)"
            ),
            // The holder chose these words: escaped for the terminal.
            Error::Refused(why) => write!(f, "the holder refused: {}", escape_str(why)),
            Error::Protocol(why) => write!(f, "protocol error: {}", escape_str(why)),
            Error::UnsafePath(why) | Error::InvalidRequest(why) | Error::NotAFile(why) => {
                f.write_str(why)
            }
            // Servers, certificates and files chose these words: escaped.
            Error::InvalidBackend(why) => write!(f, "invalid backend: {}", escape_str(why)),
            Error::Engine(why) | Error::Unsupported(why) => f.write_str(&escape_str(why)),
            Error::PathIo {
                used_as,
                path,
                at,
                source,
            } => {
                write!(f, "{} {}: ", used_as.action(), shown(path))?;
                if let Some(at) = at {
                    write!(f, "{}: ", shown(at))?;
                }
                write!(f, "{source}")?;
                emfile_hint(f, source)
            }
            Error::Io { context, source } => {
                write!(f, "{context}: {source}")?;
                emfile_hint(f, source)
            }
        }
    }
}

fn shown(path: &Path) -> String {
    escape(path.as_os_str().as_bytes())
}

fn emfile_hint(f: &mut fmt::Formatter<'_>, source: &io::Error) -> fmt::Result {
    if source.raw_os_error() == Some(libc::EMFILE) {
        write!(f, " (raise the open-files limit, `ulimit -n`)")?;
    }
    Ok(())
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The OS error is already in the message: only what caused it
            // in turn, so that a chain prints each cause once.
            Error::Io { source, .. } | Error::PathIo { source, .. } => source.source(),
            _ => None,
        }
    }
}
