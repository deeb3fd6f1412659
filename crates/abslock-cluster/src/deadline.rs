//! The holder's local deadline: the moment after which the engine might
//! free the lock without the holder hearing of it, minus the time the
//! command needs to stop.
//!
//! An engine frees a silent holder's lock by its own clock: etcd when the
//! lease's TTL has run out since its last renewal, PostgreSQL when TCP
//! gives up on the connection. Neither tells the holder, whose link may be
//! frozen. So the holder keeps a deadline of its own, moved later only by
//! a renewal or round trip that the engine *confirmed*, counted from when
//! the holder *sent* it (the engine acted on it later, so its own expiry
//! is later still). A thread of its own watches it: a renewal stuck in a
//! frozen connection cannot delay it. When it passes, the lost flag is
//! raised; the `abslock` command then sends SIGTERM, and SIGKILL after
//! [`Bounds::grace`], which still ends before the engine's expiry.
//!
//! The moment of that SIGKILL is also published in a memfd
//! ([`Deadline::published`], `abslock::RemoteGuard::deadline_fd`), for a
//! process of its own that kills the command then even while this one
//! cannot run (SIGSTOP, a pause): a thread here stops with its process.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Error, LostFlag, Result};

/// How an engine's silent-holder expiry translates into local deadlines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// The earliest the engine can free the lock after the start of the
    /// last confirmed renewal (etcd: the TTL; PostgreSQL: the TCP
    /// timeouts set on the session).
    pub(crate) expiry: Duration,
    /// Kept free before the expiry, for clock rates and scheduling.
    pub(crate) margin: Duration,
    /// From SIGTERM to SIGKILL.
    pub(crate) grace: Duration,
}

impl Bounds {
    /// From a confirmed renewal sent at `sent` to the lost flag (SIGTERM).
    pub(crate) fn term_after(&self) -> Duration {
        self.expiry.saturating_sub(self.margin + self.grace)
    }
}

/// A thread that raises the lost flag when the deadline passes.
#[derive(Debug)]
pub(crate) struct Deadline {
    shared: Arc<(Mutex<State>, Condvar)>,
    /// The SIGKILL moment, as `CLOCK_MONOTONIC` nanoseconds (module docs).
    published: Arc<OwnedFd>,
    bounds: Bounds,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct State {
    at: Instant,
    stopped: bool,
}

impl Deadline {
    /// Watches a hold whose last confirmed renewal was sent at `sent`.
    ///
    /// # Errors
    /// [`Error::Engine`] if the thread cannot be started.
    pub(crate) fn start(lost: LostFlag, bounds: Bounds, sent: Instant) -> Result<Deadline> {
        let published =
            rustix::fs::memfd_create("abslock-deadline", rustix::fs::MemfdFlags::CLOEXEC)
                .map_err(|e| Error::Engine(format!("creating the deadline's memfd: {e}")))?;
        publish(&published, sent + bounds.term_after() + bounds.grace);
        let shared = Arc::new((
            Mutex::new(State {
                at: sent + bounds.term_after(),
                stopped: false,
            }),
            Condvar::new(),
        ));
        let watched = Arc::clone(&shared);
        let thread = abslock::__private::spawn_quiet("abslock-deadline", move || {
            let (state, changed) = &*watched;
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if state.stopped {
                    return;
                }
                let now = Instant::now();
                if now >= state.at {
                    let silent = now.saturating_duration_since(state.at) + bounds.term_after();
                    lost.set(format!(
                        "no renewal confirmed for {:.1}s, and the engine may free the lock \
                         {:.1}s after the last one: stopping the command before it can",
                        silent.as_secs_f64(),
                        bounds.expiry.as_secs_f64()
                    ));
                    return;
                }
                let left = state.at - now;
                state = changed
                    .wait_timeout(state, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        })
        .map_err(|e| Error::Engine(format!("starting the lock's deadline thread: {e}")))?;
        Ok(Deadline {
            shared,
            published: Arc::new(published),
            bounds,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A renewal sent at `sent` was confirmed: the deadline moves to
    /// `sent` + the bound, if that is later.
    pub(crate) fn confirmed(&self, sent: Instant) {
        let mut state = self.shared.0.lock().unwrap_or_else(PoisonError::into_inner);
        let at = sent + self.bounds.term_after();
        if at > state.at {
            state.at = at;
            publish(&self.published, at + self.bounds.grace);
        }
    }

    /// The memfd that holds the SIGKILL moment (module docs).
    pub(crate) fn published(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.published)
    }

    /// Stops watching (the lock is being released).
    pub(crate) fn stop(&self) {
        self.shared
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stopped = true;
        self.shared.1.notify_all();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Writes `at` into `memfd` as `CLOCK_MONOTONIC` nanoseconds (the clock
/// `Instant` reads on Linux), as `abslock::RemoteGuard::deadline_fd` says.
fn publish(memfd: &OwnedFd, at: Instant) {
    let now = Instant::now();
    let now_ns = abslock::__private::monotonic_ns();
    let ns = match at.checked_duration_since(now) {
        Some(ahead) => now_ns.saturating_add(u64::try_from(ahead.as_nanos()).unwrap_or(u64::MAX)),
        None => now_ns.saturating_sub(u64::try_from((now - at).as_nanos()).unwrap_or(u64::MAX)),
    };
    let _ = abslock::__private::write_deadline(memfd.as_fd(), ns);
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        expiry: Duration::from_millis(400),
        margin: Duration::from_millis(50),
        grace: Duration::from_millis(100),
    };

    #[test]
    fn the_flag_is_raised_at_the_deadline_unless_confirmed_renewals_move_it() {
        let lost = LostFlag::new().unwrap();
        let start = Instant::now();
        let deadline = Deadline::start(lost.clone(), BOUNDS, start).unwrap();
        // Renewals confirmed for 600 ms keep it down.
        while start.elapsed() < Duration::from_millis(600) {
            deadline.confirmed(Instant::now());
            assert!(!lost.is_set());
            std::thread::sleep(Duration::from_millis(20));
        }
        let last = Instant::now();
        deadline.confirmed(last);
        let why = lost.wait(Some(Duration::from_secs(5))).unwrap();
        let raised = last.elapsed();
        // Raised at expiry - margin - grace after the last confirmed one.
        assert!(raised >= BOUNDS.term_after(), "{raised:?}");
        assert!(why.contains("no renewal confirmed"), "{why}");
    }

    /// The SIGKILL moment in the memfd is expiry - margin after the last
    /// confirmed renewal, on the clock `CLOCK_MONOTONIC` reads.
    #[test]
    fn the_kill_moment_is_published_for_another_process() {
        let now_ns = abslock::__private::monotonic_ns;
        let published_ns = |fd: &OwnedFd| abslock::__private::read_deadline(fd.as_fd()).unwrap();
        let lost = LostFlag::new().unwrap();
        let before = now_ns();
        let deadline = Deadline::start(lost, BOUNDS, Instant::now()).unwrap();
        let memfd = deadline.published();
        let kill = BOUNDS.expiry - BOUNDS.margin;
        let first = published_ns(&memfd);
        let kill_ns = u64::try_from(kill.as_nanos()).unwrap();
        assert!(first >= before + kill_ns, "{first} < {before} + {kill_ns}");
        assert!(first <= now_ns() + kill_ns);
        std::thread::sleep(Duration::from_millis(30));
        deadline.confirmed(Instant::now());
        let moved = published_ns(&memfd);
        assert!(moved >= first + 30_000_000, "{moved} vs {first}");
        // An older renewal confirmed late moves nothing.
        deadline.confirmed(Instant::now() - Duration::from_secs(1));
        assert_eq!(published_ns(&memfd), moved);
    }

    #[test]
    fn a_stopped_deadline_raises_nothing() {
        let lost = LostFlag::new().unwrap();
        let deadline = Deadline::start(lost.clone(), BOUNDS, Instant::now()).unwrap();
        deadline.stop();
        std::thread::sleep(BOUNDS.expiry);
        assert!(!lost.is_set());
    }
}
