//! The holder's side of the protocol: how every [`Guard`](crate::Guard)'s
//! socket is served, and the requests it hands to the application
//! ([`crate::requests`]).
//!
//! The thread accepts every connection. A connection that sends nothing is
//! a waiter (or a status query) and is kept until it hangs up or the lock
//! is released; its hang-up is how waiters learn of the release. One that
//! sends a frame gets it read within [`connection::READ_TIMEOUT`] and at most
//! [`MAX_FRAME`](crate::protocol::MAX_FRAME) bytes, so a slow or hostile
//! client can neither block the holder nor make it allocate without bound.
//! `info` is answered by the thread itself; `message` and `stop` go to the
//! application if it asked for them with [`Guard::requests`](crate::Guard::requests),
//! and are otherwise answered "not serving".
//!
//! * `event_loop`: the process's one serving thread and its `epoll(7)` set;
//!   a guard registers its listening socket there once held for 1 ms.
//! * `connection`: one accepted connection, read within bounds; eviction.
//! * `dispatch`: what is done with a complete request.
//! * `reject_log`: the rate-limited log of clients turned away.
//! * here: [`Shared`], the state a guard, the thread and the requests
//!   handed out share, each part behind its own mutex.
//!
//! The life of a lock: `bind(2)` and `listen(2)` (`crate::lock`), a
//! [`Shared`] and a registration with the event loop (`crate::guard`),
//! connections served until the release, which unregisters and closes
//! every kept connection in the releasing thread, so waiters wake at once.

mod connection;
mod dispatch;
mod event_loop;
mod reject_log;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::access::Access;
use crate::name::LockName;
use crate::protocol::Info;
#[cfg(feature = "tokio")]
use crate::requests::Incoming;
use crate::requests::{Requests, Sink, StdSink};

pub use event_loop::{own_loop, OwnLoop};
pub(crate) use event_loop::{prepare, register, Registration};
use reject_log::RejectCount;
pub use reject_log::RejectLog;

/// How long an answer may take to write; a client that reads nothing is
/// dropped after it.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// State shared by the guard, its serving thread and the requests handed
/// out.
pub(crate) struct Shared {
    name: LockName,
    info: Mutex<Info>,
    access: Mutex<Access>,
    sink: Mutex<Option<Sink>>,
    /// `None`: stderr (no allocation for the common case).
    log: Mutex<Option<RejectLog>>,
    rejects: Mutex<RejectCount>,
    pub(crate) closing: AtomicBool,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("info", &*lock(&self.info))
            .field("access", &*lock(&self.access))
            .finish_non_exhaustive()
    }
}

/// Poisoning only means another thread panicked mid-update of plain data;
/// the data is still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(name: LockName, info: Info) -> Shared {
        Shared {
            name,
            info: Mutex::new(info),
            access: Mutex::new(Access::same_user()),
            sink: Mutex::new(None),
            log: Mutex::new(None),
            rejects: Mutex::new(RejectCount::default()),
            closing: AtomicBool::new(false),
        }
    }

    pub(crate) fn info(&self) -> Info {
        lock(&self.info).clone()
    }

    pub(crate) fn update_info(&self, f: impl FnOnce(&mut Info)) {
        f(&mut lock(&self.info));
    }

    pub(crate) fn set_access(&self, access: Access) {
        *lock(&self.access) = access;
    }

    pub(crate) fn set_log(&self, log: RejectLog) {
        *lock(&self.log) = Some(log);
    }

    pub(crate) fn requests(&self) -> Requests {
        let (tx, rx) = mpsc::channel();
        let ready = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .ok()
        .map(Arc::new);
        let sink = StdSink {
            tx,
            ready: ready.clone(),
        };
        *lock(&self.sink) = Some(Sink::Std(sink));
        Requests { rx, ready }
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn requests_async(&self) -> tokio::sync::mpsc::UnboundedReceiver<Incoming> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *lock(&self.sink) = Some(Sink::Tokio(tx));
        rx
    }

    /// From now on unanswered messages get "shutting down", and the
    /// application's request stream ends.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        lock(&self.sink).take();
    }
}
