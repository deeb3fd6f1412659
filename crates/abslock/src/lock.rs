//! Taking a lock: try, block, or block with a timeout.

use std::os::fd::{AsFd, OwnedFd};

use rustix::net::SocketType;
use std::time::{Duration, Instant};

use crate::access::Access;
use crate::error::{Error, Result};
use crate::guard::Guard;
use crate::holder::Holder;
use crate::name::{LockName, Scope};
use crate::queue::{self, Ticket};
use crate::sys::{self, Bind};
use crate::wait::{self, Backoff, Round, Wait};

/// The default `listen(2)` backlog. The kernel caps it at
/// `net.core.somaxconn` (4096 by default).
pub const DEFAULT_BACKLOG: i32 = 4096;

/// How often [`Lock::try_acquire`] retries when the holder vanishes between
/// the failed `bind` and the look-up of who held it.
const DISCOVERY_RETRIES: usize = 8;

/// How long [`Lock::try_acquire`] waits for a release that is in progress:
/// the holder's process is gone and none keeps the socket, but the kernel
/// drops its last reference later (docs/semantics.md, "When the release is
/// late": tens of milliseconds for an io_uring, a few for the collector).
const LATE_RELEASE: Duration = Duration::from_millis(200);

/// A single-instance lock on an abstract socket name.
///
/// ```
/// use abslock::{Error, Lock, LockName};
///
/// let lock = Lock::new(LockName::user("abslock-doc-example")?);
/// let guard = lock.try_acquire()?;
/// // A second attempt, from this or any other process, finds it held.
/// match lock.try_acquire() {
///     Err(Error::Held(holder)) => assert_eq!(holder.pid(), Some(std::process::id())),
///     other => panic!("expected Held, got {other:?}"),
/// }
/// drop(guard);
/// // Released the moment the socket closed: take it again at once.
/// let _again = lock.try_acquire()?;
/// # Ok::<(), abslock::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    name: LockName,
    backlog: i32,
    trusted: Access,
    serving: bool,
}

impl Lock {
    /// A lock on `name` that trusts holders with our own uid and root.
    pub fn new(name: LockName) -> Lock {
        Lock {
            name,
            backlog: DEFAULT_BACKLOG,
            trusted: Access::same_user(),
            serving: true,
        }
    }

    /// Shorthand for `Lock::new(LockName::user(name)?)`.
    ///
    /// # Errors
    /// As [`LockName::user`].
    pub fn user(name: impl AsRef<[u8]>) -> Result<Lock> {
        Ok(Lock::new(LockName::user(name)?))
    }

    /// Shorthand for `Lock::new(LockName::system(name)?)`.
    ///
    /// # Errors
    /// As [`LockName::system`].
    pub fn system(name: impl AsRef<[u8]>) -> Result<Lock> {
        Ok(Lock::new(LockName::system(name)?))
    }

    /// Also trusts holders running as `uid`: they are reported as
    /// [`Error::Held`] rather than [`Error::Squatted`].
    pub fn trust_uid(mut self, uid: u32) -> Lock {
        self.trusted = self.trusted.allow(uid);
        self
    }

    /// Trusts every uid, for a system-wide lock that different users take
    /// in turn: a holder is then always [`Error::Held`].
    pub fn trust_any_uid(mut self) -> Lock {
        self.trusted = Access::anyone();
        self
    }

    /// Whether guards run their serving thread (default `true`).
    ///
    /// Without it, taking and releasing the lock costs only the system
    /// calls (`socket`, `bind`, `listen`, `close`), not a thread's start and
    /// join: for a lock taken thousands of times a second, as an
    /// inter-process mutex. Waiters still see the release at once (they
    /// wait in the backlog, reset when the socket closes); but `info`,
    /// messages and stop requests go unanswered, and past the backlog
    /// ([`Lock::backlog`]) waiters fall back to polling. See BENCHMARKS.md
    /// for the cost of each.
    pub fn serving(mut self, serving: bool) -> Lock {
        self.serving = serving;
        self
    }

    /// Sets the `listen(2)` backlog (default [`DEFAULT_BACKLOG`]).
    pub fn backlog(mut self, backlog: i32) -> Lock {
        self.backlog = backlog;
        self
    }

    /// The lock's name.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// Whether a holder running as `uid` is trusted.
    pub fn trusts(&self, uid: u32) -> bool {
        self.trusted.allows(uid)
    }

    /// Takes the lock if it is free, without waiting; except for a release
    /// in progress (the holder's process gone and no process keeping the
    /// socket, while the kernel has yet to drop its last reference), which
    /// it waits for up to 200 ms.
    ///
    /// # Errors
    /// [`Error::Held`] or [`Error::Squatted`] with the holder if it is taken;
    /// [`Error::Io`] if a system call fails (for example `EMFILE`);
    /// `Error::Timeout(None)` in the unlikely case that the name was taken
    /// and released again each of the 8 times it looked for the holder.
    pub fn try_acquire(&self) -> Result<Guard> {
        let mut late_since: Option<Instant> = None;
        let mut retries = 0;
        loop {
            if let Some(guard) = self.bind()? {
                return Ok(guard);
            }
            match Holder::discover(self.name.address())? {
                // A release in progress (rule 1 of docs/semantics.md): the
                // holder is gone (exited, or reaped so that SO_PEERCRED
                // names no pid) and no process keeps the socket, but the
                // kernel has not dropped its last reference yet (an
                // io_uring's teardown, the garbage collector). Retried for
                // a short while rather than reported as held.
                Some(holder)
                    if late_since.get_or_insert_with(Instant::now).elapsed() < LATE_RELEASE
                        && (holder.pid().is_none() || holder.has_exited())
                        && holder.processes().is_ok_and(|p| p.is_empty()) =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Some(holder) => return Err(self.held(holder)),
                // Released between our bind and the look-up: try again.
                None if retries < DISCOVERY_RETRIES => retries += 1,
                None => return Err(Error::Timeout(None)),
            }
        }
    }

    /// Takes the lock, waiting as long as it takes.
    ///
    /// The wait is event-driven (rule 6 of `docs/semantics.md`).
    ///
    /// # Errors
    /// [`Error::Squatted`] as soon as a uid the lock does not trust holds
    /// the name (at the start or later): a squatter is not waited for;
    /// [`Error::Io`] if a system call fails.
    pub fn acquire(&self) -> Result<Guard> {
        self.acquire_until(None)
    }

    /// Takes the lock, waiting at most `timeout` (measured on the monotonic
    /// clock, so wall-clock jumps do not matter; a timeout too large to
    /// add to the clock waits forever). A zero timeout is
    /// [`Lock::try_acquire`].
    ///
    /// # Errors
    /// [`Error::Timeout`] with the holder, if still held when time is up;
    /// [`Error::Squatted`] as [`Lock::acquire`]; [`Error::Io`] if a system
    /// call fails.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Guard> {
        if timeout.is_zero() {
            return self.try_acquire();
        }
        self.acquire_until(Instant::now().checked_add(timeout))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<Guard> {
        let mut backoff = Backoff::default();
        let mut prepared = !self.serving;
        // Our place in the queue (crate::queue), taken once the name is
        // found taken (`None` inside if no ticket can be made); given up
        // when this returns.
        let mut ticket: Option<Option<Ticket>> = None;
        loop {
            if let Some(guard) = self.bind()? {
                return Ok(guard);
            }
            if !prepared {
                // While we wait: start the serving thread now rather than
                // in the hand-over.
                crate::serving::prepare();
                prepared = true;
            }
            let ticket = ticket.get_or_insert_with(|| Ticket::take(self.name.address()));
            // Behind another waiter: wait for it to go, then look again.
            if let Some(ahead) = ticket
                .as_ref()
                .and_then(|t| t.ahead(self.name.address(), &self.trusted))
            {
                if !queue::wait_gone(&ahead, deadline)? {
                    return Err(self.timed_out());
                }
                continue;
            }
            match wait::round(self.name.address(), deadline, &mut backoff, &self.trusted)? {
                Round::Changed => {}
                Round::Untrusted => {
                    if let Some(squatter) = self.squatter()? {
                        return Err(Error::Squatted(squatter));
                    }
                }
                // The first back-off step is zero: the holder may just have
                // gone, so bind again at once before slowing down.
                Round::NotListening => {
                    match wait::bound_by_trusted(self.name.address(), &self.trusted)? {
                        None => continue,
                        Some(false) => {
                            if let Some(squatter) = self.squatter()? {
                                return Err(Error::Squatted(squatter));
                            }
                        }
                        Some(true) => {}
                    }
                    if !backoff.sleep(deadline)? {
                        return Err(self.timed_out());
                    }
                }
                Round::TimedOut => return Err(self.timed_out()),
            }
        }
    }

    /// Who holds the lock now, or `None` if it is free.
    ///
    /// # Errors
    /// If a system call fails.
    pub fn holder(&self) -> Result<Option<Holder>> {
        Holder::discover(self.name.address())
    }

    /// Waits until the lock is free without taking it; `None` waits
    /// forever. Returns `false` on timeout.
    ///
    /// # Errors
    /// [`Error::Squatted`] once a uid the lock does not trust holds it;
    /// [`Error::Io`] if a system call fails.
    pub fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            match wait::until_free(self.name.address(), deadline, &self.trusted)? {
                Wait::Free => return Ok(true),
                Wait::TimedOut => return Ok(false),
                Wait::Untrusted => {
                    if let Some(squatter) = self.squatter()? {
                        return Err(Error::Squatted(squatter));
                    }
                }
            }
        }
    }

    fn bind(&self) -> Result<Option<Guard>> {
        match sys::bind_abstract(self.name.address())
            .map_err(Error::io("binding the lock socket"))?
        {
            Bind::InUse => Ok(None),
            Bind::Bound(fd) => {
                let Some(others) = self.bind_other_types()? else {
                    return Ok(None);
                };
                sys::listen_on(fd.as_fd(), self.backlog)
                    .map_err(Error::io("listening on the lock socket"))?;
                Guard::new(self.name.clone(), fd, others, self.serving).map(Some)
            }
        }
    }

    /// The error for a wait that ended on time: [`Error::Squatted`] if an
    /// untrusted uid holds the lock now, else [`Error::Timeout`].
    fn timed_out(&self) -> Error {
        match self.holder() {
            Ok(Some(h)) if !self.trusts_holder(&h) => Error::Squatted(h),
            Ok(holder) => Error::Timeout(holder),
            Err(_) => Error::Timeout(None),
        }
    }

    /// The holder, identified afresh, if it is a uid the lock does not
    /// trust; `None` if the name is free or trusted by now (the caller
    /// goes on).
    fn squatter(&self) -> Result<Option<Holder>> {
        Ok(self.holder()?.filter(|h| !self.trusts_holder(h)))
    }

    /// Whether `holder` runs as a trusted uid (or one that is unknown).
    fn trusts_holder(&self, holder: &Holder) -> bool {
        holder.uid().is_none_or(|uid| self.trusts(uid))
    }

    /// For a raw name, which other programs bind with any socket type:
    /// the name bound as a datagram and a seqpacket socket too, so that a
    /// program holding it with either excludes us and we exclude it (each
    /// type has its own abstract namespace, rule 9 of `docs/semantics.md`).
    /// `None` if one of them is taken. abslock's own names need only the
    /// stream socket.
    fn bind_other_types(&self) -> Result<Option<Vec<OwnedFd>>> {
        if self.name.scope() != Scope::Raw {
            return Ok(Some(Vec::new()));
        }
        let mut others = Vec::with_capacity(2);
        for kind in [SocketType::DGRAM, SocketType::SEQPACKET] {
            match sys::bind_abstract_as(self.name.address(), kind)
                .map_err(Error::io("binding the lock name"))?
            {
                Bind::Bound(fd) => others.push(fd),
                Bind::InUse => return Ok(None),
            }
        }
        Ok(Some(others))
    }

    fn held(&self, holder: Holder) -> Error {
        if self.trusts_holder(&holder) {
            Error::Held(holder)
        } else {
            Error::Squatted(holder)
        }
    }
}
