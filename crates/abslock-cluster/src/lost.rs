//! The flag a backend raises when a held lock is lost.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use abslock::__private::escape::escape_str;
use rustix::event::{eventfd, EventfdFlags};

use crate::{Error, Result};

/// Set once, when the lock is lost; clones share it. An eventfd polls
/// readable from then on, so an event loop can watch it
/// ([`LostFlag::fd`]) instead of a thread blocking in [`LostFlag::wait`].
#[derive(Debug, Clone)]
pub struct LostFlag(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    reason: Mutex<Option<String>>,
    /// The engine said the lock is gone ([`LostFlag::set_freed`]).
    freed: AtomicBool,
    raised: Condvar,
    fd: OwnedFd,
}

impl LostFlag {
    /// A flag not yet raised.
    ///
    /// # Errors
    /// [`Error::Engine`] if no eventfd can be made (`EMFILE`).
    pub fn new() -> Result<LostFlag> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| Error::Engine(format!("creating an eventfd: {e}")))?;
        Ok(LostFlag(Arc::new(Shared {
            reason: Mutex::new(None),
            freed: AtomicBool::new(false),
            raised: Condvar::new(),
            fd,
        })))
    }

    /// Raises the flag with the reason, waking every waiter. The reason
    /// quotes the engine (a server's message, a connection error) and is
    /// printed as it is kept: escaped for a terminal here, once.
    pub fn set(&self, why: impl Into<String>) {
        self.raise(why.into(), false);
    }

    /// Raises the flag for a loss the engine confirmed: it has freed the
    /// lock (a lease it says expired, a session it ended), so another
    /// client may hold it already and the work done under it must stop at
    /// once, with no grace period. The flag must not be raised yet for
    /// this to count: the first reason wins.
    pub fn set_freed(&self, why: impl Into<String>) {
        self.raise(why.into(), true);
    }

    /// The first reason wins, and with it whether the engine freed the
    /// lock: both are decided under the one lock.
    fn raise(&self, why: String, freed: bool) {
        let mut reason = self.0.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if reason.is_none() {
            *reason = Some(escape_str(&why));
            self.0.freed.store(freed, Ordering::Release);
            // The counter goes from 0 to 1 and stays: readable for good.
            let _ = rustix::io::write(&self.0.fd, &1u64.to_ne_bytes());
        }
        self.0.raised.notify_all();
    }

    /// Whether the flag was raised by [`LostFlag::set_freed`].
    pub fn is_freed(&self) -> bool {
        self.0.freed.load(Ordering::Acquire)
    }

    /// Whether it is raised.
    pub fn is_set(&self) -> bool {
        self.reason().is_some()
    }

    /// Why the lock was lost, once it was.
    pub fn reason(&self) -> Option<String> {
        self.0
            .reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A descriptor that polls readable once the flag is raised.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }

    /// Waits until the flag is raised or `timeout` passes (`None`: forever);
    /// returns the reason if raised.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<String> {
        let guard = self.0.reason.lock().unwrap_or_else(PoisonError::into_inner);
        let cond = &self.0.raised;
        let guard = match timeout {
            Some(t) => {
                cond.wait_timeout_while(guard, t, |r| r.is_none())
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => cond
                .wait_while(guard, |r| r.is_none())
                .unwrap_or_else(PoisonError::into_inner),
        };
        guard.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{poll, PollFd, PollFlags, Timespec};

    fn readable(flag: &LostFlag) -> bool {
        let mut fds = [PollFd::new(&flag.0.fd, PollFlags::IN)];
        poll(&mut fds, Some(&Timespec::default())).unwrap() == 1
    }

    #[test]
    fn first_reason_wins_and_wakes_waiters_and_the_fd() {
        let flag = LostFlag::new().unwrap();
        assert_eq!(flag.wait(Some(Duration::from_millis(10))), None);
        assert!(!readable(&flag));
        let other = flag.clone();
        let waiter = std::thread::spawn(move || other.wait(None));
        flag.set("lease expired");
        flag.set("second");
        assert_eq!(waiter.join().unwrap().as_deref(), Some("lease expired"));
        assert!(flag.is_set());
        assert!(readable(&flag));
        assert!(!flag.is_freed(), "a loss the engine did not confirm");
        flag.set_freed("later");
        assert!(!flag.is_freed(), "the first reason wins");
        let confirmed = LostFlag::new().unwrap();
        confirmed.set_freed("the etcd lease expired");
        assert!(confirmed.is_freed() && confirmed.is_set() && readable(&confirmed));
    }

    #[test]
    fn a_servers_words_in_the_reason_reach_no_terminal_raw() {
        let flag = LostFlag::new().unwrap();
        flag.set("connection lost: FATAL: \x1b]0;owned\x07\r\nabslock: forged");
        assert_eq!(
            flag.reason().as_deref(),
            Some("connection lost: FATAL: \\x1b]0;owned\\x07\\x0d\\x0aabslock: forged")
        );
    }
}
