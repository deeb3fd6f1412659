//! [`ClusterLock`] and [`ClusterGuard`]: one lock over whichever engine
//! the URL names, and the [`abslock::Backend`] face that lets `abslock`
//! use it. Compiled only with an engine.

use std::fmt;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use abslock::__private::escape::escape_str;

#[cfg(feature = "etcd")]
use crate::etcd;
#[cfg(feature = "postgres")]
use crate::pg;
use crate::{redact, Error, Holder, Identity, LostFlag, Result};

/// A lock named `name` on a cluster engine.
#[derive(Debug)]
pub struct ClusterLock {
    engine: Engine,
    identity: Identity,
    /// `NAME on URL`, the URL's password hidden, for [`fmt::Display`].
    shown: String,
}

#[derive(Debug)]
enum Engine {
    #[cfg(feature = "etcd")]
    Etcd(etcd::EtcdLock),
    #[cfg(feature = "postgres")]
    Postgres(Box<pg::PgLock>),
}

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

#[derive(Debug)]
enum GuardInner {
    #[cfg(feature = "etcd")]
    Etcd(etcd::EtcdHold),
    #[cfg(feature = "postgres")]
    Postgres(Box<pg::PgHold>),
}

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
    pub fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        match &self.engine {
            #[cfg(feature = "etcd")]
            Engine::Etcd(e) => e.wait_released(timeout),
            #[cfg(feature = "postgres")]
            Engine::Postgres(p) => p.wait_released(&self.identity, timeout),
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

impl fmt::Display for ClusterLock {
    /// `NAME on URL`, escaped, without the URL's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

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
        Ok(ClusterLock::wait_released(self, timeout)?)
    }
}

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
