//! The holder's side of the protocol: the thread every [`Guard`](crate::Guard)
//! runs on its socket, and the requests it hands to the application.
//!
//! The thread accepts every connection. A connection that sends nothing is
//! a waiter (or a status query) and is kept until it hangs up or the lock
//! is released; its hang-up is how waiters learn of the release. One that
//! sends a frame gets it read within [`READ_TIMEOUT`] and at most
//! [`MAX_FRAME`](crate::protocol::MAX_FRAME) bytes, so a slow or hostile
//! client can neither block the holder nor make it allocate without bound.
//! `info` is answered by the thread itself; `message` and `stop` go to the
//! application if it asked for them with [`Guard::requests`](crate::Guard::requests),
//! and are otherwise answered "not serving".

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::SocketFlags;

use crate::access::Access;
use crate::error::{Error, Result};
use crate::frame_io;
use crate::name::LockName;
use crate::protocol::{frame_len, Info, Message, Request, Response, HEADER_LEN};
use crate::sys;

/// Connections kept open at most. Past this, the oldest idle one (a waiter)
/// is closed to make room once it is [`EVICT_AGE`] old; its owner sees the
/// hang-up, finds the lock still held and connects again.
const MAX_KEPT: usize = 1024;

/// How old an idle connection must be before it may be evicted. Bounds the
/// churn when more than [`MAX_KEPT`] waiters queue.
const EVICT_AGE: Duration = Duration::from_secs(1);

/// How long a client may take to send a request once it sent its first
/// byte.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an answer may take to write; a client that reads nothing is
/// dropped after it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);

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
    fn of(conn: BorrowedFd<'_>) -> Option<Peer> {
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
    message: Message,
    peer: Peer,
    answer: Answerer,
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
    peer: Peer,
    answer: Answerer,
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
struct Answerer {
    conn: Option<OwnedFd>,
    shared: Arc<Shared>,
    unanswered: Response,
}

impl fmt::Debug for Answerer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answerer")
            .field("answered", &self.conn.is_none())
            .finish_non_exhaustive()
    }
}

impl Answerer {
    fn send(&mut self, response: &Response) -> Result<()> {
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
    rx: mpsc::Receiver<Incoming>,
}

impl Requests {
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
enum Sink {
    Std(mpsc::Sender<Incoming>),
    #[cfg(feature = "tokio")]
    Tokio(tokio::sync::mpsc::UnboundedSender<Incoming>),
}

impl Sink {
    /// Hands over `request`; gives it back if nobody listens any more.
    fn send(&self, request: Incoming) -> Option<Incoming> {
        match self {
            Sink::Std(tx) => tx.send(request).err().map(|e| e.0),
            #[cfg(feature = "tokio")]
            Sink::Tokio(tx) => tx.send(request).err().map(|e| e.0),
        }
    }
}

/// Receives one line for each client the holder turns away.
pub type RejectLog = Arc<dyn Fn(&str) + Send + Sync>;

/// State shared by the guard, its serving thread and the requests handed
/// out.
pub(crate) struct Shared {
    name: LockName,
    info: Mutex<Info>,
    access: Mutex<Access>,
    sink: Mutex<Option<Sink>>,
    log: Mutex<RejectLog>,
    closing: AtomicBool,
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
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(name: LockName, info: Info) -> Shared {
        Shared {
            name,
            info: Mutex::new(info),
            access: Mutex::new(Access::same_user()),
            sink: Mutex::new(None),
            log: Mutex::new(Arc::new(|line: &str| eprintln!("{line}"))),
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
        *lock(&self.log) = log;
    }

    pub(crate) fn requests(&self) -> Requests {
        let (tx, rx) = mpsc::channel();
        *lock(&self.sink) = Some(Sink::Std(tx));
        Requests { rx }
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

    fn reject(&self, peer: Option<Peer>, why: &str) {
        let who = peer.map_or_else(|| "unknown credentials".to_string(), |p| p.to_string());
        let log = Arc::clone(&lock(&self.log));
        log(&format!(
            "abslock: {}: rejected a client ({who}): {why}",
            self.name
        ));
    }
}

/// One accepted connection and the request it is sending, if any.
struct Conn {
    fd: OwnedFd,
    accepted: Instant,
    started: Option<Instant>,
    buf: Vec<u8>,
}

enum Progress {
    /// Nothing more to read now.
    Pending,
    /// A whole frame is in `buf`.
    Complete,
    /// The client hung up without sending anything: a waiter leaving.
    Gone,
    /// Turn the client away, for this reason.
    Reject(String),
}

impl Conn {
    fn new(fd: OwnedFd) -> Conn {
        Conn {
            fd,
            accepted: Instant::now(),
            started: None,
            buf: Vec::new(),
        }
    }

    /// How many bytes the frame being read has in all, once known.
    fn wanted(&self) -> std::result::Result<usize, String> {
        match self.buf.get(..HEADER_LEN) {
            Some(header) => {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(header);
                frame_len(h)
                    .map(|len| HEADER_LEN + len)
                    .map_err(|e| e.to_string())
            }
            None => Ok(HEADER_LEN),
        }
    }

    /// Reads what is there, never past the end of one frame, so a flood
    /// costs at most one frame of memory and reading.
    fn read(&mut self) -> Progress {
        let mut chunk = [0u8; 4096];
        loop {
            let want = match self.wanted() {
                Ok(want) => want,
                Err(why) => return Progress::Reject(why),
            };
            if self.buf.len() == want && want > HEADER_LEN {
                return Progress::Complete;
            }
            let room = (want - self.buf.len()).min(chunk.len());
            match rustix::io::read(&self.fd, &mut chunk[..room]) {
                Ok(0) if self.buf.is_empty() => return Progress::Gone,
                Ok(0) => {
                    return Progress::Reject(format!(
                        "hung up after {} of {want} bytes (truncated frame)",
                        self.buf.len()
                    ))
                }
                Ok(n) => {
                    self.started.get_or_insert_with(Instant::now);
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(Errno::AGAIN) => return Progress::Pending,
                Err(Errno::INTR) => {}
                Err(_) if self.buf.is_empty() => return Progress::Gone,
                Err(e) => return Progress::Reject(format!("read failed: {e}")),
            }
        }
    }

    fn overdue(&self, now: Instant) -> bool {
        self.started
            .is_some_and(|t| now.saturating_duration_since(t) >= READ_TIMEOUT)
    }

    fn evictable(&self, now: Instant) -> bool {
        self.started.is_none() && now.saturating_duration_since(self.accepted) >= EVICT_AGE
    }
}

/// The serving loop; returns once `stop` becomes readable.
pub(crate) fn serve(listener: &OwnedFd, stop: &OwnedFd, shared: &Arc<Shared>) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut paused_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let room = conns.len() < MAX_KEPT || conns.iter().any(|c| c.evictable(now));
        let accepting = room && paused_until.is_none_or(|t| now >= t);
        let deadline = next_deadline(&conns, accepting, paused_until, now);
        let mut fds = Vec::with_capacity(conns.len() + 2);
        fds.push(PollFd::new(stop, PollFlags::IN));
        fds.push(PollFd::new(
            listener,
            if accepting {
                PollFlags::IN
            } else {
                PollFlags::empty()
            },
        ));
        fds.extend(
            conns
                .iter()
                .map(|c| PollFd::new(&c.fd, PollFlags::IN | PollFlags::RDHUP)),
        );
        if sys::poll_many(&mut fds, deadline).is_err() {
            return;
        }
        if !fds[0].revents().is_empty() {
            return;
        }
        let listener_ready = fds[1].revents().contains(PollFlags::IN);
        let ready: Vec<usize> = fds[2..]
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.revents().is_empty())
            .map(|(i, _)| i)
            .collect();
        drop(fds);
        let now = Instant::now();
        // Back to front, so swap_remove leaves the indices still to visit.
        let mut i = conns.len();
        while i > 0 {
            i -= 1;
            let progress = if ready.binary_search(&i).is_ok() {
                conns[i].read()
            } else if conns[i].overdue(now) {
                Progress::Reject(format!(
                    "sent {} bytes, not a whole request, in {} s",
                    conns[i].buf.len(),
                    READ_TIMEOUT.as_secs()
                ))
            } else {
                Progress::Pending
            };
            match progress {
                Progress::Pending => {}
                Progress::Gone => drop(conns.swap_remove(i)),
                Progress::Complete => dispatch(conns.swap_remove(i), shared),
                Progress::Reject(why) => {
                    let conn = conns.swap_remove(i);
                    turn_away(&conn.fd, shared, &why);
                }
            }
        }
        if listener_ready {
            paused_until = accept_all(listener, &mut conns);
        }
    }
}

/// When the loop must wake even without events: a request's read timeout,
/// the end of an accept pause, or an idle connection becoming evictable.
fn next_deadline(
    conns: &[Conn],
    accepting: bool,
    paused_until: Option<Instant>,
    now: Instant,
) -> Option<Instant> {
    let reads = conns
        .iter()
        .filter_map(|c| c.started)
        .map(|t| t + READ_TIMEOUT);
    let resume = if accepting {
        None
    } else if conns.len() >= MAX_KEPT {
        conns
            .iter()
            .filter(|c| c.started.is_none())
            .map(|c| c.accepted + EVICT_AGE)
            .min()
    } else {
        paused_until
    };
    reads.chain(resume).min().map(|t| t.max(now))
}

/// Accepts what is queued; returns when to try again after a failure
/// other than "nothing queued".
fn accept_all(listener: &OwnedFd, conns: &mut Vec<Conn>) -> Option<Instant> {
    loop {
        if conns.len() >= MAX_KEPT {
            let now = Instant::now();
            let oldest = conns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.evictable(now))
                .min_by_key(|(_, c)| c.accepted)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => drop(conns.swap_remove(i)),
                None => return None,
            }
        }
        match rustix::net::accept_with(listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
            Ok(fd) => conns.push(Conn::new(fd)),
            Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::CONNABORTED) => return None,
            // EMFILE and friends: the connection stays queued and the
            // listener readable; pause instead of spinning.
            Err(_) => return Some(Instant::now() + Duration::from_millis(100)),
        }
    }
}

/// Answers a complete request, or hands it to the application.
fn dispatch(conn: Conn, shared: &Arc<Shared>) {
    let request = match Request::decode(&conn.buf[HEADER_LEN..]) {
        Ok(request) => request,
        Err(e) => return turn_away(&conn.fd, shared, &e.to_string()),
    };
    let (what, unanswered) = match request {
        Request::Info => {
            let info = Response::Info(shared.info());
            return answer_now(&conn.fd, shared, &info);
        }
        Request::Message(_) => (
            "message",
            Response::Reply {
                status: 0,
                payload: Vec::new(),
            },
        ),
        Request::Stop => ("stop request", Response::Stopping),
    };
    let peer = Peer::of(conn.fd.as_fd());
    let allowed = peer.is_some_and(|p| lock(&shared.access).allows(p.uid));
    let Some(peer) = peer.filter(|_| allowed) else {
        let why = match peer {
            Some(p) => format!("uid {} may not send a {what}", p.uid),
            None => format!("a {what} without credentials"),
        };
        shared.reject(peer, &why);
        return answer_now(&conn.fd, shared, &Response::Refused(why));
    };
    let answer = Answerer {
        conn: Some(conn.fd),
        shared: Arc::clone(shared),
        unanswered,
    };
    let incoming = match request {
        Request::Message(message) => Incoming::Message(Received {
            message,
            peer,
            answer,
        }),
        _ => Incoming::Stop(StopRequest { peer, answer }),
    };
    let sink = lock(&shared.sink);
    let refused = match sink.as_ref() {
        Some(sink) => sink.send(incoming),
        None => Some(incoming),
    };
    drop(sink);
    if let Some(incoming) = refused {
        let mut answer = match incoming {
            Incoming::Message(m) => m.answer,
            Incoming::Stop(s) => s.answer,
        };
        let _ = answer.send(&Response::NotServing);
    }
}

/// Logs one line and tells the client why, if it still listens.
fn turn_away(conn: &OwnedFd, shared: &Shared, why: &str) {
    shared.reject(Peer::of(conn.as_fd()), why);
    answer_now(conn, shared, &Response::Invalid(why.to_string()));
}

/// Answers from the serving thread without waiting: a fresh connection has
/// room for a whole frame, and a client that hung up is not worth a wait.
fn answer_now(conn: &OwnedFd, shared: &Shared, response: &Response) {
    match response.encode() {
        Ok(frame) => {
            let _ = frame_io::send_all(conn.as_fd(), &frame, Instant::now());
        }
        Err(e) => shared.reject(Peer::of(conn.as_fd()), &format!("cannot answer: {e}")),
    }
}
