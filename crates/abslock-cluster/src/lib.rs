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
#[cfg(any(feature = "etcd", feature = "postgres"))]
use std::os::fd::BorrowedFd;
#[cfg(any(feature = "etcd", feature = "postgres"))]
use std::time::Duration;

use abslock::internals::escape::escape_str;

pub use identity::Identity;
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

#[cfg(any(feature = "etcd", feature = "postgres"))]
/// A lock named `name` on a cluster engine.
#[derive(Debug)]
pub struct ClusterLock {
    engine: Engine,
    identity: Identity,
    /// `NAME on URL`, the URL's password hidden, for [`fmt::Display`].
    shown: String,
}

#[cfg(any(feature = "etcd", feature = "postgres"))]
#[derive(Debug)]
enum Engine {
    #[cfg(feature = "etcd")]
    Etcd(etcd::EtcdLock),
    #[cfg(feature = "postgres")]
    Postgres(Box<pg::PgLock>),
}

#[cfg(any(feature = "etcd", feature = "postgres"))]
/// A held cluster lock. Dropping it releases the lock (best effort: if the
/// engine is unreachable, the lease or connection runs out instead).
#[derive(Debug)]
pub struct ClusterGuard {
    inner: GuardInner,
    token: Option<u64>,
    lost: LostFlag,
    /// The local deadline's SIGKILL moment (`deadline.rs`).
    published: std::sync::Arc<std::os::fd::OwnedFd>,
}

#[cfg(any(feature = "etcd", feature = "postgres"))]
#[derive(Debug)]
enum GuardInner {
    #[cfg(feature = "etcd")]
    Etcd(etcd::EtcdHold),
    #[cfg(feature = "postgres")]
    Postgres(Box<pg::PgHold>),
}

#[cfg(any(feature = "etcd", feature = "postgres"))]
impl ClusterLock {
    /// A lock named `name` on the engine `url`:
    /// `etcd://[USER@]HOST:PORT[,HOST:PORT...][?ttl=SECS]` (default TTL
    /// 10 s), `etcds://...[?cacert=FILE&cert=FILE&key=FILE]` for TLS
    /// (etcdctl's `ETCDCTL_*` variables fill in what the URL leaves out), or
    /// `postgres://USER@HOST:PORT/DB` (any libpq-style URL, or a libpq
    /// `key=value` string such as `host=db user=app`; libpq's `PG*`
    /// variables and `~/.pgpass` fill in). The holder is identified as
    /// [`Identity::current`]. Passwords never appear in errors: see
    /// [`redact`].
    ///
    /// # Errors
    /// [`Error::InvalidUrl`].
    pub fn from_url(url: &str, name: &str) -> Result<ClusterLock> {
        Self::with_identity(url, name, Identity::current())
    }

    /// As [`ClusterLock::from_url`], with an explicit identity.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`].
    pub fn with_identity(url: &str, name: &str, identity: Identity) -> Result<ClusterLock> {
        if name.is_empty() {
            return Err(Error::InvalidUrl("the lock name is empty".into()));
        }
        // etcdctl's endpoint form too: https://HOST:PORT[,https://...].
        let etcd = url
            .strip_prefix("etcd://")
            .map(|rest| (rest, false))
            .or_else(|| url.strip_prefix("etcds://").map(|rest| (rest, true)))
            .or_else(|| url.strip_prefix("https://").map(|rest| (rest, true)))
            .or_else(|| url.strip_prefix("http://").map(|rest| (rest, false)));
        let engine = if let Some((rest, tls)) = etcd {
            #[cfg(feature = "etcd")]
            {
                Engine::Etcd(etcd::EtcdLock::new(rest, name, tls)?)
            }
            #[cfg(not(feature = "etcd"))]
            {
                let _ = (rest, tls);
                return Err(Error::InvalidUrl(
                    "this build has no etcd backend (cargo feature \"etcd\")".into(),
                ));
            }
        } else if url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || (!url.contains("://") && url.contains('='))
        {
            #[cfg(feature = "postgres")]
            {
                Engine::Postgres(Box::new(pg::PgLock::new(url, name)?))
            }
            #[cfg(not(feature = "postgres"))]
            {
                return Err(Error::InvalidUrl(
                    "this build has no PostgreSQL backend (cargo feature \"postgres\")".into(),
                ));
            }
        } else {
            return Err(Error::InvalidUrl(format!(
                "'{}': expected etcd://HOST:PORT[,HOST:PORT][?ttl=SECS], etcds://... or https://HOST:PORT (TLS), postgres://... or a libpq key=value string",
                redact(url)
            )));
        };
        let shown = format!("{} on {}", escape_str(name), escape_str(&redact(url)));
        Ok(ClusterLock {
            engine,
            identity,
            shown,
        })
    }

    /// Takes the lock if nobody holds it.
    ///
    /// # Errors
    /// [`Error::Held`], [`Error::Engine`].
    pub fn try_acquire(&self) -> Result<ClusterGuard> {
        match &self.engine {
            #[cfg(feature = "etcd")]
            Engine::Etcd(e) => e.try_acquire(&self.identity).map(ClusterGuard::etcd),
            #[cfg(feature = "postgres")]
            Engine::Postgres(p) => p.try_acquire(&self.identity).map(ClusterGuard::pg),
        }
    }

    /// Takes the lock, waiting at most `timeout` (`None`: forever).
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::Engine`].
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<ClusterGuard> {
        match &self.engine {
            #[cfg(feature = "etcd")]
            Engine::Etcd(e) => e.acquire(&self.identity, timeout).map(ClusterGuard::etcd),
            #[cfg(feature = "postgres")]
            Engine::Postgres(p) => p.acquire(&self.identity, timeout).map(ClusterGuard::pg),
        }
    }

    /// Waits until nobody holds the lock, without taking it; at most
    /// `timeout` (`None`: forever). `false` if it was still held when the
    /// time ran out. PostgreSQL sleeps in the server on one connection;
    /// etcd watches the holder's key, and is woken by its deletion.
    ///
    /// # Errors
    /// [`Error::Engine`].
    pub fn wait_free(&self, timeout: Option<Duration>) -> Result<bool> {
        match &self.engine {
            #[cfg(feature = "etcd")]
            Engine::Etcd(e) => e.wait_released(timeout),
            #[cfg(feature = "postgres")]
            Engine::Postgres(p) => p.wait_free(&self.identity, timeout),
        }
    }

    /// Who holds the lock now, or `None`.
    ///
    /// # Errors
    /// [`Error::Engine`].
    pub fn holder(&self) -> Result<Option<Holder>> {
        match &self.engine {
            #[cfg(feature = "etcd")]
            Engine::Etcd(e) => e.holder(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(p) => p.holder(),
        }
    }
}

#[cfg(any(feature = "etcd", feature = "postgres"))]
impl ClusterGuard {
    #[cfg(feature = "etcd")]
    fn etcd(hold: etcd::EtcdHold) -> ClusterGuard {
        ClusterGuard {
            token: Some(hold.token),
            lost: hold.lost.clone(),
            published: std::sync::Arc::clone(&hold.published),
            inner: GuardInner::Etcd(hold),
        }
    }

    #[cfg(feature = "postgres")]
    fn pg(hold: pg::PgHold) -> ClusterGuard {
        ClusterGuard {
            token: None,
            lost: hold.lost.clone(),
            published: std::sync::Arc::clone(&hold.published),
            inner: GuardInner::Postgres(Box::new(hold)),
        }
    }

    /// The fencing token: strictly greater for every later holder of the
    /// same lock (etcd: the key's create revision). `None` for PostgreSQL,
    /// whose advisory locks have no such number.
    pub fn fencing_token(&self) -> Option<u64> {
        self.token
    }

    /// Whether the lock has been lost (lease expired, connection dropped):
    /// another host may hold it now. Check before acting on the lock.
    pub fn is_lost(&self) -> bool {
        self.lost.is_set()
    }

    /// Once the lock is lost, how long the work done under it may take to
    /// stop and still end before the engine can free the lock: the time
    /// from the lost flag to the engine's earliest expiry, less a margin
    /// (`docs/cluster.md` gives the formulas). Zero when the engine has
    /// freed the lock already ([`LostFlag::is_freed`]): another client may
    /// hold it now.
    pub fn stop_within(&self) -> Duration {
        if self.lost.is_freed() {
            return Duration::ZERO;
        }
        match &self.inner {
            #[cfg(feature = "etcd")]
            GuardInner::Etcd(h) => h.stop_within(),
            #[cfg(feature = "postgres")]
            GuardInner::Postgres(_) => pg::stop_within(),
        }
    }

    /// The flag that is set when the lock is lost, to wait on from another
    /// thread.
    pub fn lost_flag(&self) -> LostFlag {
        self.lost.clone()
    }

    /// Releases the lock now.
    ///
    /// # Errors
    /// [`Error::Engine`] if the engine could not be told; the lease or
    /// connection then runs out on its own.
    pub fn release(self) -> Result<()> {
        match self.inner {
            #[cfg(feature = "etcd")]
            GuardInner::Etcd(h) => h.release(),
            #[cfg(feature = "postgres")]
            GuardInner::Postgres(h) => h.release(),
        }
    }
}

#[cfg(any(feature = "etcd", feature = "postgres"))]
impl fmt::Display for ClusterLock {
    /// `NAME on URL`, escaped, without the URL's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

#[cfg(any(feature = "etcd", feature = "postgres"))]
impl abslock::Backend for ClusterLock {
    fn try_acquire(&self) -> abslock::Result<abslock::AnyGuard> {
        Ok(abslock::AnyGuard::Remote(Box::new(
            ClusterLock::try_acquire(self)?,
        )))
    }

    fn acquire(&self, timeout: Option<Duration>) -> abslock::Result<abslock::AnyGuard> {
        if timeout.is_some_and(|t| t.is_zero()) {
            return abslock::Backend::try_acquire(self);
        }
        Ok(abslock::AnyGuard::Remote(Box::new(ClusterLock::acquire(
            self, timeout,
        )?)))
    }

    fn holder(&self) -> abslock::Result<Option<abslock::Holder>> {
        Ok(ClusterLock::holder(self)?.map(abslock::Holder::remote))
    }

    fn wait_released(&self, timeout: Option<Duration>) -> abslock::Result<bool> {
        Ok(self.wait_free(timeout)?)
    }
}

#[cfg(any(feature = "etcd", feature = "postgres"))]
impl abslock::RemoteGuard for ClusterGuard {
    fn fencing_token(&self) -> Option<u64> {
        self.token
    }

    fn lost(&self) -> Option<String> {
        self.lost.reason()
    }

    fn lost_fd(&self) -> BorrowedFd<'_> {
        self.lost.fd()
    }

    fn stop_within(&self) -> Option<Duration> {
        Some(ClusterGuard::stop_within(self))
    }

    fn deadline_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(std::os::fd::AsFd::as_fd(&*self.published))
    }

    fn release(self: Box<Self>) -> abslock::Result<()> {
        Ok(ClusterGuard::release(*self)?)
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
