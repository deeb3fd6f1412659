//! Waiting for a `flock(2)` lock with a deadline, woken by the kernel.
//!
//! `flock(2)` has no timeout. `flock(1)` interrupts it with `SIGALRM`,
//! which a library cannot do without taking over a signal of the process.
//! Instead the waiter watches the locked file with `inotify(7)` and sleeps
//! in `poll(2)` until its deadline: a `flock` lock belongs to an open file
//! description and is released when the last descriptor of it closes
//! (`locks_remove_file` in `__fput`), and that same close makes the kernel
//! queue `IN_CLOSE_WRITE` or `IN_CLOSE_NOWRITE` for the file
//! (`fsnotify_close`, also in `__fput`), whether the holder closed it,
//! exited or was killed. An unlink (`IN_ATTRIB`, the link count) wakes the
//! waiter too, so that it can start over on a new file.
//!
//! The event is queued just before the lock is removed (`fsnotify_close`
//! comes first in `__fput`), so a waiter can wake and find the lock still
//! held for a few microseconds: after each event it retries at short,
//! growing intervals for up to [`SETTLE`] before it sleeps again. Closes
//! that release nothing (another process closing its own descriptor of the
//! file) cost one such short round.
//!
//! The waiter keeps one descriptor and retries `flock` on it, so waiters
//! do not wake each other by opening and closing the file.
//!
//! Closing an inotify instance that still has a watch waits for an SRCU
//! grace period (`fsnotify_destroy_group` waits for its marks to be
//! destroyed): about 10 ms, which would come straight after the lock was
//! taken. So a finished watch is removed (`inotify_rm_watch`, which lets
//! the kernel's reaper free it in the background) and its descriptor
//! closed later, by the next wait or at exit, when closing is cheap. Where inotify
//! cannot be had (`fs.inotify.max_user_instances` reached, no `/proc`), it
//! falls back to retrying with a back-off of up to 100 ms.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::fs::FlockOperation;
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::wait::Backoff;

/// How long a waiter woken by a close keeps retrying before it sleeps
/// again: far longer than the gap between the event and the release.
const SETTLE: Duration = Duration::from_millis(5);

/// The first retry interval after an event; it doubles.
const FIRST_RETRY: Duration = Duration::from_micros(20);

/// Takes `flock(2)` (shared or exclusive) on `fd` without waiting past
/// `deadline`. `Ok(true)` when taken, `Ok(false)` when the deadline passed
/// first.
///
/// # Errors
/// If `flock(2)` fails for another reason than the lock being held;
/// [`Error::Interrupted`] as [`crate::interrupt`] says.
pub(crate) fn flock_until(fd: BorrowedFd<'_>, shared: bool, deadline: Instant) -> Result<bool> {
    let failed = |e: Errno| Error::io("locking the lock file")(e.into());
    let op = if shared {
        FlockOperation::NonBlockingLockShared
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    // Watch before the first try: a release between the try and the watch
    // would otherwise go unseen.
    let mut watch = CloseWatch::on(fd);
    loop {
        match rustix::fs::flock(fd, op) {
            Ok(()) => return Ok(true),
            Err(Errno::WOULDBLOCK | Errno::INTR) => {}
            Err(e) => return Err(failed(e)),
        }
        if !watch.next(Some(deadline))? {
            // One last try at the deadline.
            return match rustix::fs::flock(fd, op) {
                Ok(()) => Ok(true),
                Err(Errno::WOULDBLOCK | Errno::INTR) => Ok(false),
                Err(e) => Err(failed(e)),
            };
        }
    }
}

/// Sleeps between checks of a file's lock: until the kernel reports a
/// close or unlink of the file (then a few short retries, [`SETTLE`]), or
/// with a back-off where inotify cannot be had.
pub(crate) struct CloseWatch {
    inotify: Option<Watch>,
    backoff: Backoff,
    /// Since when, and how long the next pause is, after an event.
    settling: Option<(Instant, Duration)>,
}

impl CloseWatch {
    /// Watches the file open at `fd` (any descriptor of it, `O_PATH`
    /// too). Set up before the first check.
    pub(crate) fn on(fd: BorrowedFd<'_>) -> CloseWatch {
        CloseWatch {
            inotify: Watch::on(fd),
            backoff: Backoff::default(),
            settling: None,
        }
    }

    /// Sleeps until the next moment worth checking again; `false` once
    /// `deadline` has passed (`None`: never).
    ///
    /// # Errors
    /// If `poll(2)` fails; [`Error::Interrupted`] as [`crate::interrupt`]
    /// says.
    pub(crate) fn next(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let now = Instant::now();
        let left = deadline.map(|d| d.saturating_duration_since(now));
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(false);
        }
        let Some(inotify) = self.inotify.as_ref().and_then(Watch::fd) else {
            return self.backoff.sleep(deadline);
        };
        // Just woken by a close: retry soon, for a while.
        if let Some((since, step)) = self.settling {
            if now.duration_since(since) < SETTLE {
                std::thread::sleep(left.map_or(step, |l| step.min(l)));
                self.settling = Some((since, step * 2));
                drain(inotify);
                return Ok(true);
            }
            self.settling = None;
        }
        let mut fds = [PollFd::new(inotify, PollFlags::IN)];
        let timeout = left.map(|l| Timespec {
            tv_sec: i64::try_from(l.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(l.subsec_nanos()),
        });
        match poll(&mut fds, timeout.as_ref()) {
            Ok(n) if n > 0 => {
                drain(inotify);
                self.settling = Some((Instant::now(), FIRST_RETRY));
                Ok(true)
            }
            Ok(_) => Ok(deadline.is_none_or(|d| Instant::now() < d)),
            Err(Errno::INTR) if crate::interrupt::restarts() => Ok(true),
            Err(e) => Err(Error::io("waiting for the lock file")(e.into())),
        }
    }
}

/// An inotify instance with one watch on a file, for its closes and
/// unlinks: it polls readable once one happened. Dropping it removes the
/// watch and retires the instance, to be closed cheaply later.
#[derive(Debug)]
pub(crate) struct Watch {
    /// Always there until dropped (then retired, not closed).
    inotify: Option<OwnedFd>,
    wd: i32,
}

impl Watch {
    /// Watches the file open at `fd` (any descriptor of it, `O_PATH`
    /// too); `None` where inotify cannot be had.
    pub(crate) fn on(fd: BorrowedFd<'_>) -> Option<Watch> {
        watch(fd).map(|(inotify, wd)| Watch {
            inotify: Some(inotify),
            wd,
        })
    }

    /// The descriptor that polls readable after a close or unlink.
    pub(crate) fn fd(&self) -> Option<&OwnedFd> {
        self.inotify.as_ref()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(inotify) = self.inotify.take() {
            let _ = inotify::remove_watch(&inotify, self.wd);
            retire(inotify);
        }
    }
}

/// Instances whose watch was removed, and when: closed once the kernel
/// has surely freed the watch, so that closing them does not wait.
static RETIRED: Mutex<Vec<(Instant, OwnedFd)>> = Mutex::new(Vec::new());

/// Long enough for the reaper's grace period.
const REAPED: Duration = Duration::from_millis(100);

/// Keeps `inotify` for a later, cheap close.
fn retire(inotify: OwnedFd) {
    if let Ok(mut retired) = RETIRED.lock() {
        retired.push((Instant::now(), inotify));
    }
}

/// Closes the instances retired long enough ago. Called when a wait
/// begins, never when it ends: closing any instance flushes the kernel's
/// (system-wide) mark reaper, which waits a grace period if a watch was
/// just removed, as the one of the wait that ended was.
fn close_retired() {
    if let Ok(mut retired) = RETIRED.lock() {
        let now = Instant::now();
        retired.retain(|(at, _)| now.duration_since(*at) < REAPED);
    }
}

/// An inotify descriptor watching the file open at `fd` for closes and
/// unlinks, and the watch; `None` where inotify cannot be had.
fn watch(fd: BorrowedFd<'_>) -> Option<(OwnedFd, i32)> {
    close_retired();
    let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
    // The magic link names the open file itself, whatever its path is now.
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let flags = WatchFlags::CLOSE_WRITE
        | WatchFlags::CLOSE_NOWRITE
        | WatchFlags::ATTRIB
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF;
    let wd = inotify::add_watch(&inotify, path, flags).ok()?;
    Some((inotify, wd))
}

/// Reads every queued event: only their arrival matters.
pub(crate) fn drain(inotify: &OwnedFd) {
    let mut buf = [0u8; 1024];
    while matches!(rustix::io::read(inotify, &mut buf), Ok(n) if n > 0) {}
}
