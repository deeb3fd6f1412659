//! What a holder's application touches of the requests clients send over
//! the lock's socket (`docs/protocol.md`): [`Requests`], an iterator of
//! [`Incoming`] messages and stop requests, each from a [`Peer`] whose
//! credentials the kernel vouches for, and answered at most once. The
//! serving itself is in `serving`.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::frame_io;
use crate::protocol::{Message, Response};
use crate::serving::{Shared, REPLY_TIMEOUT};
use crate::sys;
use std::sync::atomic::Ordering;

/// The credentials of a client, from `SO_PEERCRED` on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's pid as of its `connect(2)`; `None` if it is not visible
    /// in the holder's pid namespace.
    pub pid: Option<u32>,
    /// The client's uid.
    pub uid: u32,
    /// The client's gid.
    pub gid: u32,
}

impl Peer {
    pub(crate) fn of(conn: BorrowedFd<'_>) -> Option<Peer> {
        let cred = sys::peer_cred(conn).ok()?;
        Some(Peer {
            pid: u32::try_from(cred.pid).ok().filter(|&p| p != 0),
            uid: cred.uid,
            gid: cred.gid,
        })
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}, uid {}", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// A request for the application, from [`Requests`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming {
    /// A second instance sent its command line; answer with
    /// [`Received::reply`].
    Message(Received),
    /// A client asks the holder to shut down. The client is told
    /// "stopping" when this is dropped; then release the lock.
    Stop(StopRequest),
}

/// A [`Message`] from a client, with the means to answer it.
///
/// Dropped without [`Received::reply`], it answers exit status 0 with an
/// empty reply, or "shutting down" once the guard is being released.
#[derive(Debug)]
pub struct Received {
    pub(crate) message: Message,
    pub(crate) peer: Peer,
    pub(crate) answer: Answerer,
}

impl Received {
    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The sender's arguments as `OsString`s (no lossy conversion).
    pub fn args_os(&self) -> Vec<std::ffi::OsString> {
        use std::os::unix::ffi::OsStringExt;
        self.message
            .argv
            .iter()
            .map(|a| std::ffi::OsString::from_vec(a.clone()))
            .collect()
    }

    /// The sender's working directory.
    pub fn cwd(&self) -> &std::path::Path {
        use std::os::unix::ffi::OsStrExt;
        std::path::Path::new(std::ffi::OsStr::from_bytes(&self.message.cwd))
    }

    /// Who sent it.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// Answers: the sender should exit with `status`, and gets `payload`.
    ///
    /// # Errors
    /// [`Error::Protocol`] if `payload` does not fit in a frame (the sender
    /// is then told status 0 with no payload); [`Error::Io`] if the sender
    /// hung up or read nothing for a second.
    pub fn reply(mut self, status: i32, payload: &[u8]) -> Result<()> {
        self.answer.send(&Response::Reply {
            status,
            payload: payload.to_vec(),
        })
    }

    /// Answers that this holder takes no messages (it serves only `info`
    /// and stop requests): the sender gets [`Error::NotServing`], as from
    /// a holder that never serves, not a refusal.
    ///
    /// # Errors
    /// [`Error::Io`] if the sender hung up.
    pub fn not_served(mut self) -> Result<()> {
        self.answer.send(&Response::NotServing)
    }

    /// Refuses the message; the sender reports `reason`.
    ///
    /// # Errors
    /// [`Error::Io`] if the sender hung up.
    pub fn refuse(mut self, reason: &str) -> Result<()> {
        self.answer.send(&Response::Refused(reason.to_string()))
    }
}

/// A client's request that the holder shut down.
#[derive(Debug)]
pub struct StopRequest {
    pub(crate) peer: Peer,
    pub(crate) answer: Answerer,
}

impl StopRequest {
    /// Who sent it.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// Tells the client "stopping" now (dropping does the same).
    pub fn accept(self) {}

    /// Declines to stop; the client reports `reason`.
    ///
    /// # Errors
    /// [`Error::Io`] if the client hung up.
    pub fn refuse(mut self, reason: &str) -> Result<()> {
        self.answer.send(&Response::Refused(reason.to_string()))
    }
}

/// The open connection of a request handed to the application; answers it
/// exactly once, by default on drop.
pub(crate) struct Answerer {
    pub(crate) conn: Option<OwnedFd>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) unanswered: Response,
}

impl fmt::Debug for Answerer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answerer")
            .field("answered", &self.conn.is_none())
            .finish_non_exhaustive()
    }
}

impl Answerer {
    pub(crate) fn send(&mut self, response: &Response) -> Result<()> {
        let frame = response
            .encode()
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        frame_io::send_all(conn.as_fd(), &frame, Instant::now() + REPLY_TIMEOUT)
            .map_err(Error::io("answering a client"))
    }
}

impl Drop for Answerer {
    fn drop(&mut self) {
        if self.conn.is_some() {
            let closing = self.shared.closing.load(Ordering::Acquire);
            let response = match &self.unanswered {
                Response::Reply { .. } if closing => Response::ShuttingDown,
                other => other.clone(),
            };
            let _ = self.send(&response);
        }
    }
}

/// The requests a holder receives, from [`Guard::requests`](crate::Guard::requests).
/// Iterating ends when the guard is released.
#[derive(Debug)]
pub struct Requests {
    pub(crate) rx: mpsc::Receiver<Incoming>,
    pub(crate) ready: Option<Arc<OwnedFd>>,
}

impl Requests {
    /// An `eventfd(2)` that polls readable when a request may be waiting
    /// or the stream has ended, for an event loop that polls it next to
    /// its other descriptors; then call [`Requests::try_recv`] until it
    /// returns `None`. `None` if the eventfd could not be created (out of
    /// descriptors): then only the blocking calls work.
    pub fn readiness(&self) -> Option<BorrowedFd<'_>> {
        self.ready.as_deref().map(AsFd::as_fd)
    }

    /// The next request if one is waiting, without blocking. Resets
    /// [`Requests::readiness`].
    ///
    /// # Errors
    /// `Empty` if none is waiting, `Disconnected` once the guard is
    /// released and the stream has ended.
    pub fn try_recv(&self) -> std::result::Result<Incoming, mpsc::TryRecvError> {
        if let Some(ready) = &self.ready {
            let _ = rustix::io::read(&**ready, &mut [0u8; 8]);
        }
        self.rx.try_recv()
    }

    /// The next request; `None` once the guard is released.
    pub fn recv(&self) -> Option<Incoming> {
        self.rx.recv().ok()
    }

    /// The next request, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout` if none came, `Disconnected` once the guard is released.
    pub fn recv_timeout(
        &self,
        timeout: Duration,
    ) -> std::result::Result<Incoming, mpsc::RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }
}

impl Iterator for Requests {
    type Item = Incoming;
    fn next(&mut self) -> Option<Incoming> {
        self.recv()
    }
}

/// Where requests for the application go.
pub(crate) enum Sink {
    Std(StdSink),
    #[cfg(feature = "tokio")]
    Tokio(tokio::sync::mpsc::UnboundedSender<Incoming>),
}

impl Sink {
    /// Hands over `request`; gives it back if nobody listens any more.
    pub(crate) fn send(&self, request: Incoming) -> Option<Incoming> {
        match self {
            Sink::Std(std) => {
                let unsent = std.tx.send(request).err().map(|e| e.0);
                std.wake();
                unsent
            }
            #[cfg(feature = "tokio")]
            Sink::Tokio(tx) => tx.send(request).err().map(|e| e.0),
        }
    }
}

/// A channel plus the eventfd that makes [`Requests`] pollable.
pub(crate) struct StdSink {
    pub(crate) tx: mpsc::Sender<Incoming>,
    pub(crate) ready: Option<Arc<OwnedFd>>,
}

impl StdSink {
    fn wake(&self) {
        if let Some(ready) = &self.ready {
            let _ = rustix::io::write(&**ready, &1u64.to_ne_bytes());
        }
    }
}

impl Drop for StdSink {
    /// The stream ends: wake a poller so that it sees it.
    fn drop(&mut self) {
        self.wake();
    }
}
