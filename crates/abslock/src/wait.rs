//! Waiting for a name to be released, driven by kernel events.
//!
//! A client connected to a listening socket is woken with `POLLHUP` (and a
//! read fails with `ECONNRESET`) as soon as the last descriptor of the
//! listener is closed: `unix_release_sock` marks every connection still in
//! the backlog as shut down and reset, and an accepted connection sees its
//! peer close. So a waiter connects once and sleeps in `poll(2)` until the
//! holder is gone, however it died. Only when nothing can be connected to (a
//! raw name bound by a program that never calls `listen(2)`, or a full
//! backlog) does it fall back to an exponential back-off, from 1 ms up to
//! [`MAX_BACKOFF`].
//!
//! A wait ends early when the holder is a uid the waiter does not trust
//! (its `SO_PEERCRED`, or the socket's owner from `sock_diag` when it does
//! not listen): a squatter is reported, never waited for.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::access::Access;
use crate::error::{Error, Result};
use crate::procfs;
use crate::sys::{self, Connect};

/// The longest sleep between two checks of a name nobody listens on.
pub const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// A wake-up that comes sooner than this after connecting is treated as
/// spurious (a holder that accepts and closes connections) and backed off,
/// so that such a holder cannot make a waiter spin.
const SPURIOUS: Duration = Duration::from_millis(5);

/// What one round of waiting observed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Round {
    /// The holder may be gone: try to bind (or check) again.
    Changed,
    /// Nothing can be connected to (nobody listens, or the backlog is
    /// full); the caller must check whether the name is free.
    NotListening,
    /// The holder runs as a uid the caller does not trust.
    Untrusted,
    /// The deadline passed.
    TimedOut,
}

/// Exponential back-off: 0, 1, 2, 4 … ms, capped at [`MAX_BACKOFF`].
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    /// Sleeps the next step, never past `deadline`; false once it has passed.
    ///
    /// # Errors
    /// [`Error::Interrupted`] if a signal handler interrupts the sleep
    /// inside [`crate::interrupt::interruptible`].
    pub(crate) fn sleep(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let mut step = self.next;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            step = step.min(left);
        }
        // poll(2) on nothing: a sleep that reports EINTR.
        sys::poll_many(&mut [], Instant::now().checked_add(step))
            .map_err(Error::io("waiting for the lock"))?;
        self.next = (self.next * 2).clamp(Duration::from_millis(1), MAX_BACKOFF);
        Ok(deadline.is_none_or(|d| Instant::now() < d))
    }

    pub(crate) fn reset(&mut self) {
        self.next = Duration::ZERO;
    }
}

/// One round: connect to the holder and sleep until it hangs up. A holder
/// whose uid (`SO_PEERCRED`) `trusted` does not allow ends the round at
/// once with [`Round::Untrusted`]: waiting for a squatter is pointless.
pub(crate) fn round(
    address: &[u8],
    deadline: Option<Instant>,
    backoff: &mut Backoff,
    trusted: &Access,
) -> Result<Round> {
    match sys::connect_abstract(address).map_err(Error::io("connecting to the lock holder"))? {
        Connect::Connected(conn) => {
            if sys::peer_cred(conn.as_fd()).is_ok_and(|c| !trusted.allows(c.uid)) {
                return Ok(Round::Untrusted);
            }
            let start = Instant::now();
            if !sys::wait_event(conn.as_fd(), deadline)
                .map_err(Error::io("waiting for the lock holder"))?
            {
                return Ok(Round::TimedOut);
            }
            if start.elapsed() >= SPURIOUS {
                backoff.reset();
            } else if !backoff.sleep(deadline)? {
                return Ok(Round::TimedOut);
            }
            Ok(Round::Changed)
        }
        Connect::Refused | Connect::BacklogFull => Ok(Round::NotListening),
    }
}

/// After [`Round::NotListening`]: whether the name is bound (by a socket
/// that does not listen, or whose backlog is full), and whether its owner
/// (`sock_diag`) is trusted; `None` if the name is free.
pub(crate) fn bound_by_trusted(address: &[u8], trusted: &Access) -> Result<Option<bool>> {
    Ok(procfs::owner_of(address)
        .map_err(Error::io("looking up the lock's socket"))?
        .map(|owner| owner.uid.is_none_or(|uid| trusted.allows(uid))))
}

/// Waits until nothing is bound to `address`, or `deadline`. Returns
/// whether the name is free; [`Wait::Untrusted`] as soon as an untrusted
/// uid holds it.
pub(crate) fn until_free(
    address: &[u8],
    deadline: Option<Instant>,
    trusted: &Access,
) -> Result<Wait> {
    let mut backoff = Backoff::default();
    loop {
        match round(address, deadline, &mut backoff, trusted)? {
            Round::TimedOut => return Ok(Wait::TimedOut),
            Round::Untrusted => return Ok(Wait::Untrusted),
            Round::Changed => {}
            Round::NotListening => match bound_by_trusted(address, trusted)? {
                None => return Ok(Wait::Free),
                Some(false) => return Ok(Wait::Untrusted),
                Some(true) if !backoff.sleep(deadline)? => return Ok(Wait::TimedOut),
                Some(true) => {}
            },
        }
    }
}

/// How a wait for a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The lock is free.
    Free,
    /// The deadline passed.
    TimedOut,
    /// A uid the caller does not trust holds the lock.
    Untrusted,
}

/// Waits until nobody holds a lock (`flock(2)` or `fcntl(2)`) on the file
/// `dev`/`inode` at `path`, or `deadline`; returns whether it is free.
/// A bystander cannot queue for a file lock without taking it, so it
/// checks `/proc/locks`, but only when the kernel reports a close of the
/// file (an inotify watch, [`crate::file_wait`]); where the file cannot
/// be watched (replaced meanwhile, no inotify), it polls with the
/// back-off.
pub(crate) fn until_unlocked(
    path: &std::path::Path,
    dev: u64,
    inode: u64,
    deadline: Option<Instant>,
) -> Result<bool> {
    // O_PATH: no permission needed, nothing read; only watched if it is
    // the very file (a path may have been replaced since).
    let opened = rustix::fs::open(
        path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    )
    .ok()
    .filter(|fd| rustix::fs::fstat(fd).is_ok_and(|s| s.st_dev == dev && s.st_ino == inode));
    let mut watch = opened
        .as_ref()
        .map(|fd| crate::file_wait::CloseWatch::on(fd.as_fd()));
    let mut backoff = Backoff::default();
    loop {
        if procfs::locks_on(dev, inode)
            .map_err(Error::io("reading /proc/locks"))?
            .is_empty()
        {
            return Ok(true);
        }
        let more = match &mut watch {
            Some(w) => w.next(deadline)?,
            None => backoff.sleep(deadline)?,
        };
        if !more {
            return Ok(false);
        }
    }
}
