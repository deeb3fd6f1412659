//! abslock's single-instance lock across hosts, on an engine you already
//! run: etcd (a lease kept alive by the holder, a fencing token) or
//! PostgreSQL (a session advisory lock). Each engine is a cargo feature
//! (`etcd`, `postgres`); without features this crate has no dependencies
//! beyond `abslock` and `rustix`, and the `abslock` library never depends
//! on it.
//!
//! Without either feature the crate holds only the shared types; the
//! lock itself needs an engine.
//!
//! The promise, stated as precisely as it can be: the lock is released
//! when its holder releases it, or **within a bounded time after the holder
//! dies or loses touch with the engine**: the lease TTL for etcd, the TCP
//! keepalive / `tcp_user_timeout` settings for PostgreSQL. That bound is
//! also why a lease lock alone does not give mutual exclusion: a holder
//! that pauses (GC, SIGSTOP, a VM migration) longer than the bound can wake
//! up still believing it holds the lock while another host has taken it.
//! The etcd backend therefore hands out a **fencing token** (the key's
//! create revision, increasing with every new holder); the resources the
//! holder writes to must reject tokens older than the newest they have
//! seen. `docs/cluster.md` explains it, with measured takeover times.
//!
//! ```no_run
//! # #[cfg(feature = "etcd")] {
//! use abslock_cluster::{ClusterLock, Error};
//!
//! let lock = ClusterLock::from_url("etcd://10.0.0.1:2379,10.0.0.2:2379?ttl=10", "nightly-report")?;
//! match lock.try_acquire() {
//!     Ok(guard) => {
//!         let token = guard.fencing_token();
//!         // ... pass `token` along with every write ...
//!         if guard.is_lost() { /* stop: another host may hold it now */ }
//!         guard.release()?;
//!     }
//!     Err(Error::Held(h)) => eprintln!("running on {} as pid {}", h.host, h.pid),
//!     Err(e) => return Err(e),
//! }
//! # }
//! # Ok::<(), abslock_cluster::Error>(())
//! ```

#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::undocumented_unsafe_blocks
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(any(feature = "etcd", feature = "postgres"))]
mod deadline;
#[cfg(feature = "etcd")]
mod etcd;
mod identity;
#[cfg(any(feature = "etcd", feature = "postgres"))]
mod lock;
mod lost;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "postgres")]
mod pgpass;
mod secret;
#[cfg(feature = "postgres")]
mod service;
#[cfg(feature = "postgres")]
mod sslmode;
#[cfg(any(feature = "etcd", feature = "postgres"))]
mod tls;

use std::fmt;

use abslock::__private::escape::escape_str;

pub use identity::Identity;
#[cfg(any(feature = "etcd", feature = "postgres"))]
pub use lock::{ClusterGuard, ClusterLock};
pub use lost::LostFlag;
pub use secret::{redact, HIDDEN};

/// Who holds a cluster lock: `abslock`'s [`abslock::RemoteHolder`].
pub use abslock::RemoteHolder as Holder;

/// What can go wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not `etcd://HOST:PORT[,HOST:PORT][?ttl=SECS]`,
    /// `etcds://...` or `postgres://...`, or names an engine this build
    /// lacks.
    InvalidUrl(String),
    /// Another process holds the lock.
    Held(Holder),
    /// The wait ran out; the holder if known.
    Timeout(Option<Holder>),
    /// The engine failed or could not be reached; says which and why.
    Engine(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Messages quote servers, certificates and files: escaped here,
            // once, for every engine.
            Error::InvalidUrl(why) => write!(f, "invalid backend: {}", escape_str(why)),
            Error::Held(h) => write!(f, "lock is held by {h}"),
            Error::Timeout(Some(h)) => write!(f, "timed out; lock is still held by {h}"),
            Error::Timeout(None) => write!(f, "timed out; lock is still held"),
            Error::Engine(why) => f.write_str(&escape_str(why)),
        }
    }
}

impl std::error::Error for Error {}

/// A `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for abslock::Error {
    /// The same failure in the terms of [`abslock::Backend`]: a holder
    /// becomes an [`abslock::Holder::remote`].
    fn from(e: Error) -> abslock::Error {
        match e {
            Error::InvalidUrl(why) => abslock::Error::InvalidBackend(why),
            Error::Held(h) => abslock::Error::Held(abslock::Holder::remote(h)),
            Error::Timeout(h) => abslock::Error::Timeout(h.map(abslock::Holder::remote)),
            Error::Engine(why) => abslock::Error::Engine(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server, certificate or file chooses the text of these errors: no
    /// control character of it reaches a terminal.
    #[test]
    fn error_messages_are_escaped_once_for_every_engine() {
        let engine = Error::Engine("FATAL: \x1b]0;owned\x07 C:\\path".into()).to_string();
        assert_eq!(engine, "FATAL: \\x1b]0;owned\\x07 C:\\path");
        let url = Error::InvalidUrl("sslmode=\r\nforged".into()).to_string();
        assert_eq!(url, "invalid backend: sslmode=\\x0d\\x0aforged");
    }
}
