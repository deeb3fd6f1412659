//! The one error type of the library.

use std::fmt;
use std::io;

use crate::escape::escape_str;
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
    /// A lock file or PID file could not be reached or opened.
    PathIo {
        /// The path, escaped for printing.
        path: String,
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
    /// A system call failed.
    Io {
        /// What abslock was doing.
        context: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { context, source }
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
            Error::UnsafePath(why) | Error::InvalidRequest(why) => f.write_str(why),
            // Servers, certificates and files chose these words: escaped.
            Error::InvalidBackend(why) => write!(f, "invalid backend: {}", escape_str(why)),
            Error::Engine(why) | Error::Unsupported(why) => f.write_str(&escape_str(why)),
            Error::PathIo { path, source } => {
                write!(f, "{path}: {source}")?;
                emfile_hint(f, source)
            }
            Error::Io { context, source } => {
                write!(f, "{context}: {source}")?;
                emfile_hint(f, source)
            }
        }
    }
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
            Error::Io { source, .. } | Error::PathIo { source, .. } => Some(source),
            _ => None,
        }
    }
}
