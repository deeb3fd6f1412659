//! Waiting for a lock inside an event loop, with no thread per waiter.
//!
//! A [`Waiter`] takes a lock in steps that never block: [`Waiter::poll`]
//! tries once and, while the lock is held, arms kernel events that fire
//! when the holder may have let go. They all arrive on one descriptor,
//! [`Waiter::as_fd`] (an `epoll(7)` instance, itself pollable), which stays
//! the same for the whole wait, so an event loop registers it once
//! (asyncio's `loop.add_reader`, a `mio` source, a C `poll` loop):
//!
//! * a socket name: a connection to the holder's listener, which the
//!   kernel resets when the listener's last descriptor closes (see
//!   [`crate::wait`]);
//! * a lock file: an `inotify(7)` watch for the file's closes and
//!   unlinks (see [`crate::file::FileLock::acquire_timeout`]).
//!
//! Where the kernel can report nothing (a name bound by a program that
//! does not listen, a full backlog, an `fcntl(2)` holder, a file that
//! cannot be watched), [`Waiter::retry_after`] asks to be polled again
//! after a back-off of up to 100 ms; and right after a file event, for a
//! few short retries (the event comes just before the lock is dropped).
//!
//! ```
//! use std::os::fd::AsFd;
//! use abslock::{AnyLock, Named, Waiter};
//!
//! let lock = AnyLock::named("abslock-waiter-example", &Named::default())?;
//! let mut waiter = Waiter::new()?;
//! let guard = loop {
//!     if let Some(guard) = waiter.poll(&lock)? {
//!         break guard;
//!     }
//!     // An event loop would wait here for `waiter.as_fd()` to become
//!     // readable, or for `waiter.retry_after()` to pass.
//!     let mut fds = [rustix::event::PollFd::new(&waiter, rustix::event::PollFlags::IN)];
//!     let timeout = waiter.retry_after().map(|d| rustix::event::Timespec::try_from(d).unwrap());
//!     rustix::event::poll(&mut fds, timeout.as_ref())?;
//! };
//! # drop(guard);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::fs::{FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::backend::{AnyGuard, AnyLock};
use crate::error::{Error, Result};
use crate::file::FileLock;
use crate::file_wait::Watch;
use crate::lock::Lock;
use crate::sys::{self, Connect};
use crate::wait::MAX_BACKOFF;

/// How long after a file event the lock may still look held (the event
/// is queued just before the lock is dropped), as in [`crate::file_wait`].
const SETTLE: Duration = Duration::from_millis(5);

/// The first retry after a file event; it doubles.
const FIRST_RETRY: Duration = Duration::from_micros(20);

/// A socket event sooner than this after connecting is taken for a holder
/// that accepts and closes connections: the next round does not connect,
/// so that such a holder cannot make the waiter spin.
const SPURIOUS: Duration = Duration::from_millis(5);

/// Epoll data: which kind of source fired.
const SOCKET: u64 = 0;
const FILE: u64 = 1;

/// What wakes the waiter: input, a hang-up, a reset.
const EVENTS: EventFlags = EventFlags::IN.union(EventFlags::RDHUP);

/// A lock being waited for without blocking, for an event loop: it tries
/// the lock once per [`Waiter::poll`], and between tries arms the kernel
/// events on [`Waiter::as_fd`] that fire when the holder may have let go
/// (a connection to its listener, an inotify watch of its lock file).
#[derive(Debug)]
pub struct Waiter {
    epoll: OwnedFd,
    /// The connection to the holder, and when it was made.
    conn: Option<(OwnedFd, Instant)>,
    /// The lock file, open and watched for the whole wait.
    probe: Option<Probe>,
    /// Whether a poll has tried the lock yet.
    tried: bool,
    /// The first file event of the current burst, and the next retry.
    settling: Option<(Instant, Duration)>,
    /// The next back-off step where nothing can be armed.
    backoff: Duration,
    retry: Option<Duration>,
}

/// The lock file as the waiter sees it: a descriptor of its own, kept open
/// so that the waiter's checks close nothing (a close would wake every
/// other waiter, whose checks would wake it in turn), and the watch.
#[derive(Debug)]
struct Probe {
    fd: OwnedFd,
    dev: u64,
    ino: u64,
    watch: Watch,
    armed: bool,
}

impl Waiter {
    /// A waiter with nothing armed yet.
    ///
    /// # Errors
    /// If `epoll_create1(2)` fails (`EMFILE`).
    pub fn new() -> Result<Waiter> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| Error::io("creating the waiter's epoll")(e.into()))?;
        Ok(Waiter {
            epoll,
            conn: None,
            probe: None,
            tried: false,
            settling: None,
            backoff: Duration::ZERO,
            retry: None,
        })
    }

    /// Tries to take `lock` once, without blocking: the guard if it was
    /// free; `None` if it is held, with events armed on [`Waiter::as_fd`]
    /// (and perhaps [`Waiter::retry_after`]) for the next try. Call it
    /// again when either fires; calling it sooner is harmless.
    ///
    /// # Errors
    /// [`Error::Squatted`] if a uid the lock does not trust holds it (a
    /// squatter is not waited for); otherwise as the lock's `try_acquire`.
    pub fn poll(&mut self, lock: &AnyLock) -> Result<Option<AnyGuard>> {
        let fired = self.fired();
        let conn_age = self.conn.as_ref().map(|(_, at)| at.elapsed());
        if let Some((conn, _)) = self.conn.take() {
            let _ = epoll::delete(&self.epoll, &conn);
        }
        let now = Instant::now();
        if fired.contains(&FILE) {
            self.settling = match self.settling {
                Some((since, step)) if now.duration_since(since) < SETTLE => Some((since, step)),
                _ => Some((now, FIRST_RETRY)),
            };
        }
        let (socket, file) = parts(lock);
        // The file is checked on the waiter's own descriptor, watched since
        // before the check: a release after it is reported.
        let mut file_held = self.file_held(file)?;
        let mut holder = None;
        if !file_held || !self.tried {
            self.tried = true;
            match crate::backend::Backend::try_acquire(lock) {
                Ok(guard) => {
                    self.reset();
                    return Ok(Some(guard));
                }
                Err(Error::Held(h)) => holder = Some(h),
                // The holder went between the try and its look-up.
                Err(Error::Timeout(None)) => {}
                Err(e) => {
                    self.reset();
                    return Err(e);
                }
            }
            // The try closed the file (an event of our own): read it, and
            // check again.
            if let Some(fd) = self.probe.as_ref().and_then(|p| p.watch.fd()) {
                crate::file_wait::drain(fd);
            }
            file_held = self.file_held(file)?;
        }
        // Watched only while the file is held: when the file is free yet
        // the lock is not, a holder of the socket alone or of an fcntl(2)
        // lock keeps it, and other waiters' closes do not concern us.
        self.arm_file(file_held)?;
        // A socket event right after connecting: no new connection now.
        let spurious = fired.contains(&SOCKET) && conn_age.is_some_and(|a| a < SPURIOUS);
        let connected = match socket {
            Some(socket) if !spurious && (holder.is_some() || file_held) => self.connect(socket)?,
            _ => false,
        };
        let held = holder.is_some() || file_held;
        self.retry = if !held {
            Some(Duration::ZERO)
        } else if let Some((since, step)) = self
            .settling
            .filter(|(since, _)| now.duration_since(*since) < SETTLE)
        {
            self.settling = Some((since, step * 2));
            Some(step)
        } else if connected || file_held {
            self.backoff = Duration::ZERO;
            None
        } else {
            let step = self.backoff;
            self.backoff = (self.backoff * 2).clamp(Duration::from_millis(1), MAX_BACKOFF);
            Some(step)
        };
        Ok(None)
    }

    /// When to call [`Waiter::poll`] again if [`Waiter::as_fd`] has not
    /// become readable by then; `None`: only when it does.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry
    }

    /// Whether the lock file of `file` is held, on the probe (opened now
    /// if the path names another file than before).
    fn file_held(&mut self, file: Option<&FileLock>) -> Result<bool> {
        let Some(f) = file else { return Ok(false) };
        self.refresh_probe(f.path());
        match &self.probe {
            Some(p) => p.held(f.is_shared()),
            None => Ok(false),
        }
    }

    /// Connects to the holder's listener and arms the connection; whether
    /// it could be.
    fn connect(&mut self, socket: &Lock) -> Result<bool> {
        match sys::connect_abstract(socket.name().address())
            .map_err(Error::io("connecting to the lock holder"))?
        {
            Connect::Connected(conn) => {
                epoll::add(&self.epoll, &conn, EventData::new_u64(SOCKET), EVENTS)
                    .map_err(|e| Error::io("arming the waiter")(e.into()))?;
                self.conn = Some((conn, Instant::now()));
                Ok(true)
            }
            Connect::Refused | Connect::BacklogFull => Ok(false),
        }
    }

    /// Keeps the probe if `path` still names its file, else opens and
    /// watches the file there now (none if there is no file).
    fn refresh_probe(&mut self, path: &Path) {
        let current = rustix::fs::lstat(path).ok();
        if let (Some(p), Some(st)) = (&self.probe, &current) {
            if p.dev == st.st_dev && p.ino == st.st_ino {
                return;
            }
        }
        if let Some(old) = self.probe.take() {
            if let Some(fd) = old.watch.fd().filter(|_| old.armed) {
                let _ = epoll::delete(&self.epoll, fd);
            }
        }
        self.probe = current.and_then(|_| Probe::open(path));
    }

    /// Arms or disarms the file's watch.
    fn arm_file(&mut self, on: bool) -> Result<()> {
        let Some(p) = &mut self.probe else {
            return Ok(());
        };
        let Some(fd) = p.watch.fd() else {
            return Ok(());
        };
        if on && !p.armed {
            epoll::add(&self.epoll, fd, EventData::new_u64(FILE), EVENTS)
                .map_err(|e| Error::io("arming the waiter")(e.into()))?;
        } else if !on && p.armed {
            let _ = epoll::delete(&self.epoll, fd);
        }
        p.armed = on;
        Ok(())
    }

    /// Which kinds of source have fired since the last poll; reads the
    /// file's events, so that its watch is quiet until the next.
    fn fired(&self) -> Vec<u64> {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(4);
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let _ = epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut events),
            Some(&zero),
        );
        if let Some(fd) = self.probe.as_ref().and_then(|p| p.watch.fd()) {
            crate::file_wait::drain(fd);
        }
        events.iter().map(|e| e.data.u64()).collect()
    }

    /// Back to nothing armed, the wait over.
    fn reset(&mut self) {
        self.conn = None;
        self.probe = None;
        self.tried = false;
        self.settling = None;
        self.backoff = Duration::ZERO;
        self.retry = None;
    }
}

impl Probe {
    /// Opens the regular file (or directory) at `path` without following
    /// a symlink there and without side effects (a device or FIFO is not
    /// opened), and watches it.
    fn open(path: &Path) -> Option<Probe> {
        let at = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .ok()?;
        let st = rustix::fs::fstat(&at).ok()?;
        if !matches!(
            FileType::from_raw_mode(st.st_mode),
            FileType::RegularFile | FileType::Directory
        ) {
            return None;
        }
        // The magic link reopens the very file the O_PATH descriptor names.
        let fd = rustix::fs::open(
            format!("/proc/self/fd/{}", at.as_raw_fd()),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .ok()?;
        let watch = Watch::on(fd.as_fd())?;
        Some(Probe {
            fd,
            dev: st.st_dev,
            ino: st.st_ino,
            watch,
            armed: false,
        })
    }

    /// Whether another open file holds a `flock(2)` lock that ours would
    /// conflict with: a non-blocking lock on the probe's own descriptor,
    /// dropped at once (an unlock closes nothing, so wakes nobody).
    fn held(&self, shared: bool) -> Result<bool> {
        let op = if shared {
            FlockOperation::NonBlockingLockShared
        } else {
            FlockOperation::NonBlockingLockExclusive
        };
        match rustix::fs::flock(&self.fd, op) {
            Ok(()) => {
                let _ = rustix::fs::flock(&self.fd, FlockOperation::Unlock);
                Ok(false)
            }
            Err(Errno::WOULDBLOCK | Errno::INTR) => Ok(true),
            Err(e) => Err(Error::io("testing the lock file")(e.into())),
        }
    }
}

impl AsFd for Waiter {
    /// The descriptor that polls readable when the lock is worth trying
    /// again: the same for the whole wait.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

/// The socket name and the lock file of `lock`, whichever it has.
fn parts(lock: &AnyLock) -> (Option<&Lock>, Option<&FileLock>) {
    match lock {
        AnyLock::Socket(l) => (Some(l), None),
        AnyLock::File(l) => (None, Some(l)),
        AnyLock::Combined(l) => (Some(l.socket()), Some(l.file())),
        AnyLock::Netns(l) => (Some(l.socket()), Some(l.file())),
        AnyLock::Remote(_) => (None, None),
    }
}
