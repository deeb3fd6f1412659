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

use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::access::Access;
use crate::error::{Error, Result};
use crate::frame_io;
use crate::name::LockName;
use crate::protocol::{frame_len, Info, Message, Request, Response, HEADER_LEN};
use crate::sys;

/// Connections kept open at most, and never more than half the soft
/// `RLIMIT_NOFILE` (see [`capacity`]), so that the holder never runs out of
/// descriptors for the requests it must answer.
const MAX_KEPT: usize = 1024;

/// How old an idle connection of the busiest uid must be before a newcomer
/// of that same uid may evict it. Bounds the churn when more waiters queue
/// than are kept. A newcomer of a uid with fewer connections evicts at
/// once: one user cannot starve another's requests.
const EVICT_AGE: Duration = Duration::from_secs(1);

/// Rejected clients logged one by one per [`LOG_WINDOW`]; the rest are
/// counted and summed up in one line when the window ends.
const LOG_BURST: u32 = 20;

/// See [`LOG_BURST`].
const LOG_WINDOW: Duration = Duration::from_secs(10);

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
    ready: Option<Arc<OwnedFd>>,
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
enum Sink {
    Std(StdSink),
    #[cfg(feature = "tokio")]
    Tokio(tokio::sync::mpsc::UnboundedSender<Incoming>),
}

impl Sink {
    /// Hands over `request`; gives it back if nobody listens any more.
    fn send(&self, request: Incoming) -> Option<Incoming> {
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
struct StdSink {
    tx: mpsc::Sender<Incoming>,
    ready: Option<Arc<OwnedFd>>,
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

/// Receives one line for each client the holder turns away.
pub type RejectLog = Arc<dyn Fn(&str) + Send + Sync>;

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
    closing: AtomicBool,
}

/// The rate limit of the reject log: a hostile client must not be able to
/// flood the holder's stderr (or journal) one line per connection.
#[derive(Debug, Default)]
struct RejectCount {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl RejectCount {
    /// Counts a rejected client at `now`; whether to log it.
    fn admit(&mut self, now: Instant) -> bool {
        self.window_start.get_or_insert(now);
        if self.logged >= LOG_BURST {
            self.suppressed += 1;
            return false;
        }
        self.logged += 1;
        true
    }

    /// Ends the window if it is over at `now`; how many clients went
    /// unlogged in it, if any.
    fn flush(&mut self, now: Instant) -> Option<u64> {
        let start = self.window_start?;
        if now.saturating_duration_since(start) < LOG_WINDOW {
            return None;
        }
        let suppressed = self.suppressed;
        *self = RejectCount::default();
        (suppressed > 0).then_some(suppressed)
    }
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

    /// Logs one line for a turned-away client, at most [`LOG_BURST`] per
    /// [`LOG_WINDOW`]; the others are counted for [`Shared::flush_rejects`].
    fn reject(&self, peer: Option<Peer>, why: &str) {
        let now = Instant::now();
        self.flush_rejects(now);
        if !lock(&self.rejects).admit(now) {
            return;
        }
        let who = peer.map_or_else(|| "unknown credentials".to_string(), |p| p.to_string());
        self.log_line(&format!(
            "abslock: {}: rejected a client ({who}): {}",
            self.name,
            crate::escape::escape_str(why)
        ));
    }

    /// Ends the log window once it is over: one summary line for the
    /// clients not logged one by one.
    pub(crate) fn flush_rejects(&self, now: Instant) {
        let suppressed = lock(&self.rejects).flush(now);
        if let Some(n) = suppressed {
            self.log_line(&format!(
                "abslock: {}: rejected {n} more clients in the last {} s \
                 (logged {LOG_BURST} per {} s)",
                self.name,
                LOG_WINDOW.as_secs(),
                LOG_WINDOW.as_secs()
            ));
        }
    }

    /// When the reject log's window ends with clients still to sum up.
    pub(crate) fn rejects_due(&self) -> Option<Instant> {
        let count = lock(&self.rejects);
        (count.suppressed > 0)
            .then_some(count.window_start)
            .flatten()
            .and_then(|start| start.checked_add(LOG_WINDOW))
    }

    fn log_line(&self, line: &str) {
        let log = lock(&self.log).clone();
        match log {
            Some(log) => log(line),
            None => eprintln!("{line}"),
        }
    }
}

/// One accepted connection and the request it is sending, if any.
pub(crate) struct Conn {
    pub(crate) fd: OwnedFd,
    /// The client's uid (`SO_PEERCRED`), for fair eviction.
    pub(crate) uid: Option<u32>,
    accepted: Instant,
    pub(crate) started: Option<Instant>,
    buf: Vec<u8>,
}

pub(crate) enum Progress {
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
    pub(crate) fn new(fd: OwnedFd) -> Conn {
        Conn {
            uid: sys::peer_cred(fd.as_fd()).ok().map(|c| c.uid),
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
    pub(crate) fn read(&mut self) -> Progress {
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

    /// How many bytes of a request it has sent.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn overdue(&self, now: Instant) -> bool {
        self.started
            .is_some_and(|t| now.saturating_duration_since(t) >= READ_TIMEOUT)
    }

    fn idle_for(&self, now: Instant) -> Option<Duration> {
        self.started
            .is_none()
            .then(|| now.saturating_duration_since(self.accepted))
    }
}

/// How many connections to keep: [`MAX_KEPT`], but at most half the soft
/// descriptor limit, so that a client flood cannot use up the descriptors
/// the holder needs to accept and answer a request.
pub(crate) fn capacity() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let half = soft.map_or(MAX_KEPT, |s| usize::try_from(s / 2).unwrap_or(MAX_KEPT));
    half.clamp(8, MAX_KEPT)
}

/// The connection to close to make room for `newcomer` (a uid, if known),
/// or `None` if the newcomer should rather be turned away. The victim
/// belongs to the uid with the most connections: the oldest of its
/// connections, if the newcomer's uid has fewer, so that one user's flood
/// cannot starve another's requests; otherwise, among that uid's idle
/// connections, one older than [`EVICT_AGE`].
pub(crate) fn victim(
    conns: &HashMap<u32, Conn>,
    newcomer: Option<u32>,
    now: Instant,
) -> Option<u32> {
    let mut counts: HashMap<Option<u32>, usize> = HashMap::new();
    for c in conns.values() {
        *counts.entry(c.uid).or_default() += 1;
    }
    let (&busiest, &most) = counts.iter().max_by_key(|&(_, n)| *n)?;
    let mine = counts.get(&newcomer).copied().unwrap_or(0);
    let theirs = conns.iter().filter(|(_, c)| c.uid == busiest);
    if mine + 1 < most {
        theirs.min_by_key(|(_, c)| c.accepted).map(|(&t, _)| t)
    } else {
        theirs
            .filter(|(_, c)| c.idle_for(now).is_some_and(|d| d >= EVICT_AGE))
            .min_by_key(|(_, c)| c.accepted)
            .map(|(&t, _)| t)
    }
}

/// Ends a connection the server is done with: a request to answer or hand
/// on, a client to turn away, or a waiter that left.
pub(crate) fn finish(conn: Conn, progress: Progress, shared: &Arc<Shared>) {
    match progress {
        Progress::Pending | Progress::Gone => {}
        Progress::Complete => dispatch(conn, shared),
        Progress::Reject(why) => turn_away(&conn.fd, shared, &why),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reject_log_is_rate_limited_and_summed_up() {
        let t0 = Instant::now();
        let mut count = RejectCount::default();
        let logged = (0..100).filter(|_| count.admit(t0)).count();
        assert_eq!(logged, LOG_BURST as usize);
        assert_eq!(count.flush(t0 + LOG_WINDOW / 2), None, "window not over");
        assert_eq!(
            count.flush(t0 + LOG_WINDOW),
            Some(100 - u64::from(LOG_BURST))
        );
        // A new window logs again, and a quiet one sums up nothing.
        assert!(count.admit(t0 + LOG_WINDOW));
        assert_eq!(count.flush(t0 + LOG_WINDOW * 2), None);
    }

    #[test]
    fn eviction_favours_the_uid_with_fewer_connections() {
        let now = Instant::now();
        let old = now.checked_sub(EVICT_AGE * 2).unwrap_or(now);
        let conn = |uid: u32, accepted: Instant| {
            let (fd, _) = rustix::net::socketpair(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )
            .unwrap();
            Conn {
                fd,
                uid: Some(uid),
                accepted,
                started: None,
                buf: Vec::new(),
            }
        };
        // uid 7 floods with fresh connections; uid 8 has one.
        let mut conns: HashMap<u32, Conn> = (0..5).map(|t| (t, conn(7, now))).collect();
        conns.insert(5, conn(8, old));
        // A newcomer of uid 8 evicts one of uid 7's, however young.
        let v = victim(&conns, Some(8), now).unwrap();
        assert_eq!(conns[&v].uid, Some(7));
        // Another of uid 7 must wait until one of its own is old enough.
        assert_eq!(victim(&conns, Some(7), now), None);
        conns.get_mut(&2).unwrap().accepted = old;
        assert_eq!(victim(&conns, Some(7), now), Some(2));
    }
}
