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

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

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
    /// Nobody listens on the name; the caller must check whether it is free.
    NotListening,
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
    pub(crate) fn sleep(&mut self, deadline: Option<Instant>) -> bool {
        let mut step = self.next;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            step = step.min(left);
        }
        std::thread::sleep(step);
        self.next = (self.next * 2).clamp(Duration::from_millis(1), MAX_BACKOFF);
        deadline.is_none_or(|d| Instant::now() < d)
    }

    pub(crate) fn reset(&mut self) {
        self.next = Duration::ZERO;
    }
}

/// One round: connect to the holder and sleep until it hangs up.
pub(crate) fn round(
    address: &[u8],
    deadline: Option<Instant>,
    backoff: &mut Backoff,
) -> Result<Round> {
    match sys::connect_abstract(address).map_err(Error::io("connecting to the lock holder"))? {
        Connect::Connected(conn) => {
            let start = Instant::now();
            if !sys::wait_event(conn.as_fd(), deadline)
                .map_err(Error::io("waiting for the lock holder"))?
            {
                return Ok(Round::TimedOut);
            }
            if start.elapsed() >= SPURIOUS {
                backoff.reset();
            } else if !backoff.sleep(deadline) {
                return Ok(Round::TimedOut);
            }
            Ok(Round::Changed)
        }
        Connect::Refused => Ok(Round::NotListening),
        Connect::BacklogFull => Ok(if backoff.sleep(deadline) {
            Round::Changed
        } else {
            Round::TimedOut
        }),
    }
}

/// Waits until nothing is bound to `address`, or `deadline`. Returns whether
/// the name is free.
pub(crate) fn until_free(address: &[u8], deadline: Option<Instant>) -> Result<bool> {
    let mut backoff = Backoff::default();
    loop {
        match round(address, deadline, &mut backoff)? {
            Round::TimedOut => return Ok(false),
            Round::Changed => {}
            Round::NotListening => {
                if procfs::owner_of(address)
                    .map_err(Error::io("reading /proc/net/unix"))?
                    .is_none()
                {
                    return Ok(true);
                }
                if !backoff.sleep(deadline) {
                    return Ok(false);
                }
            }
        }
    }
}

/// Waits until nobody holds a `flock(2)` lock on the file `dev`/`inode`, or
/// `deadline`; returns whether it is free. Polls `/proc/locks` with the
/// back-off: unlike a socket, a file lock has no event a bystander can
/// sleep on without queueing for the lock itself.
pub(crate) fn until_unlocked(dev: u64, inode: u64, deadline: Option<Instant>) -> Result<bool> {
    let mut backoff = Backoff::default();
    loop {
        if procfs::flock_on(dev, inode)
            .map_err(Error::io("reading /proc/locks"))?
            .is_none()
        {
            return Ok(true);
        }
        if !backoff.sleep(deadline) {
            return Ok(false);
        }
    }
}
