//! `-w SECS` for lock files, waited in the kernel's own queue, as
//! `flock -w` waits.
//!
//! A blocked `flock(2)` waits in the kernel's queue of the lock: a request
//! that conflicts with one already blocked is put behind that one
//! (`locks_insert_block` in fs/locks.c), so a release wakes the first
//! waiter and the others stay in line: waiters are served in the order
//! they came (test `waiters_with_a_timeout_are_served_in_arrival_order`;
//! BENCHMARKS.md, "Waiting order"). The library's timed wait cannot block
//! there (it has no signal to interrupt the call with) and sleeps on an
//! inotify watch instead, where every release wakes every waiter. The
//! command can do what `flock(1)` does: block, and let a timer signal
//! interrupt the call at the deadline. The timer is aimed at this thread
//! (`SIGEV_THREAD_ID`), so the spinner's thread cannot take the signal,
//! and it repeats every few milliseconds after the deadline, so that no
//! blocking call that starts after the first expiry sleeps on.

use std::time::Duration;

use abslock::{AnyGuard, AnyLock, Backend, Error};

/// Takes `lock`, waiting at most `timeout`: a lock file (alone, combined,
/// or a per-user name's runtime file) in the kernel's queue, anything
/// else with the library's wait.
///
/// # Errors
/// As [`Backend::acquire`].
pub fn acquire(lock: &AnyLock, timeout: Option<Duration>) -> abslock::Result<AnyGuard> {
    let Some(timeout) = timeout else {
        return lock.acquire(None);
    };
    let queued = matches!(
        lock,
        AnyLock::File(_) | AnyLock::Combined(_) | AnyLock::Netns(_)
    );
    if !queued || timeout.is_zero() {
        return lock.acquire(Some(timeout));
    }
    let Some(_alarm) = Alarm::arm(timeout) else {
        return lock.acquire(Some(timeout));
    };
    match abslock::interrupt::interruptible(|| lock.acquire(None)) {
        Err(Error::Interrupted) => Err(match lock.holder() {
            Ok(Some(h)) if h.uid().is_some_and(|uid| !lock.trusts(uid)) => Error::Squatted(h),
            Ok(holder) => Error::Timeout(holder),
            Err(_) => Error::Timeout(None),
        }),
        other => other,
    }
}

/// After the deadline, how often the signal comes again.
const REPEAT: Duration = Duration::from_millis(5);

extern "C" fn nothing(_: libc::c_int) {}

/// A POSIX timer that sends SIGALRM to this thread at the deadline and
/// then every [`REPEAT`], with a handler that only interrupts (no
/// `SA_RESTART`); both undone on drop.
struct Alarm {
    timer: libc::timer_t,
    previous: libc::sigaction,
}

impl Alarm {
    fn arm(after: Duration) -> Option<Alarm> {
        let spec = |d: Duration| libc::timespec {
            // i64, not the time_t alias that musl's libc bindings deprecate.
            tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: d.subsec_nanos() as libc::c_long,
        };
        // SAFETY: plain C structs, zeroed and then filled in; sigaction,
        // timer_create and timer_settime get valid pointers to them and
        // to `timer`, all of which outlive the calls.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = nothing as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGALRM, &action, &mut previous) != 0 {
                return None;
            }
            let mut event: libc::sigevent = std::mem::zeroed();
            event.sigev_notify = libc::SIGEV_THREAD_ID;
            event.sigev_signo = libc::SIGALRM;
            event.sigev_notify_thread_id = libc::gettid();
            let mut timer: libc::timer_t = std::mem::zeroed();
            if libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer) != 0 {
                libc::sigaction(libc::SIGALRM, &previous, std::ptr::null_mut());
                return None;
            }
            let alarm = Alarm { timer, previous };
            let times = libc::itimerspec {
                it_value: spec(after.max(Duration::from_nanos(1))),
                it_interval: spec(REPEAT),
            };
            if libc::timer_settime(timer, 0, &times, std::ptr::null_mut()) != 0 {
                return None;
            }
            Some(alarm)
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        // SAFETY: the timer was created by `arm` and is deleted once; the
        // saved action is a valid sigaction.
        unsafe {
            libc::timer_delete(self.timer);
            libc::sigaction(libc::SIGALRM, &self.previous, std::ptr::null_mut());
        }
    }
}
