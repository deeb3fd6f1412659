//! The one thread that serves every guard of the process.
//!
//! A guard's socket must be served (`super`): waiters past the
//! backlog, `info`, messages and stop requests. A thread per guard would
//! cost a thread's start and join on every acquire and release, many times
//! the system calls themselves. Instead the process starts one thread, the
//! first time a guard is taken, and registers each guard's listening socket
//! with its `epoll(7)` instance once the guard has been held for `DEFER`
//! (1 ms): a lock taken and released sooner costs the bare system calls and
//! a mutex; releasing closes the kept connections in the caller's thread,
//! so that waiters are woken the moment the guard is dropped
//! (BENCHMARKS.md has the figures).
//!
//! A guard's state sits behind its own mutex; the serving thread takes it
//! for each event, and a release takes it to unregister and close
//! everything, so the thread never uses a descriptor the guard has closed.
//! A process forked from one that served guards gets a server of its own
//! when it takes its first lock (the thread does not survive `fork(2)`).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;
use rustix::net::SocketFlags;

use super::connection::{self, Conn, Progress};
use super::dispatch::finish;
use super::{lock, Shared};
use crate::error::{Error, Result};
use crate::sys;

/// The token of a guard's listening socket; connections count up from 1.
const LISTENER: u32 = 0;

/// The id of the server's own eventfd, which wakes it to recompute
/// deadlines.
const WAKE: u64 = u64::MAX;

/// How a listener is registered: one-shot, re-armed after each accept
/// round, so that a release need not unregister it (closing it does, and
/// should a fork child still hold a copy, a stale registration fires at
/// most once).
const LISTENING: EventFlags = EventFlags::IN.union(EventFlags::ONESHOT);

/// How long a guard is held before its listener joins the epoll set. A
/// lock held for less costs no `epoll_ctl` at all; until then clients wait
/// in the backlog (waiters are woken by the release all the same), so a
/// fresh holder answers `info` and messages up to this much later.
const DEFER: Duration = Duration::from_millis(1);

/// How long the serving thread keeps a [`DEFER`] tick after the last guard
/// was taken, instead of sleeping until woken.
const LINGER: Duration = Duration::from_millis(50);

/// How long to stop accepting after running out of descriptors with
/// nothing to evict.
const PAUSE: Duration = Duration::from_millis(100);

/// The server of this process: `(pid, server)`, replaced after a fork.
static SERVER: Mutex<Option<(u32, &'static Server)>> = Mutex::new(None);

/// The pid that asked to drive its server from its own loop
/// ([`own_loop`]); 0 for none.
static OWN_LOOP: AtomicU32 = AtomicU32::new(0);

/// A process's `epoll` instance and the guards registered with it.
struct Server {
    epoll: OwnedFd,
    wake: OwnedFd,
    /// The serving thread waits without a deadline: a new guard must wake
    /// it.
    sleeping: AtomicBool,
    /// When a guard was last registered, in ns since `born`: the thread
    /// keeps waking every [`DEFER`] for [`LINGER`] after it, so that
    /// locks taken in quick succession need no wake-up each.
    last_guard: AtomicU64,
    born: Instant,
    /// Connections each guard keeps at most (`connection::capacity`).
    cap: usize,
    guards: Mutex<HashMap<u32, Arc<Served>>>,
    next_id: AtomicU32,
}

/// One guard, as the server sees it.
struct Served {
    shared: Arc<Shared>,
    state: Mutex<State>,
}

struct State {
    /// `None` once released.
    listener: Option<Arc<OwnedFd>>,
    /// Whether the listener is in the epoll set yet (see [`DEFER`]).
    registered: bool,
    acquired: Instant,
    conns: HashMap<u32, Conn>,
    next_token: u32,
    paused_until: Option<Instant>,
    cap: usize,
}

/// A guard's place in the server; [`Registration::release`] ends it.
#[derive(Debug)]
pub(crate) struct Registration {
    server: &'static Server,
    id: u32,
    served: Arc<Served>,
    /// Only the process that registered may release: a fork child has a
    /// copy of the guard but not the server's thread.
    owner: u32,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served").finish_non_exhaustive()
    }
}

/// Starts serving `listener` for `shared`, starting the server first if
/// this process has none.
pub(crate) fn register(listener: Arc<OwnedFd>, shared: Arc<Shared>) -> Result<Registration> {
    let server = server()?;
    let id = server.next_id.fetch_add(1, Ordering::Relaxed);
    let served = Arc::new(Served {
        shared,
        state: Mutex::new(State {
            listener: Some(listener),
            registered: false,
            acquired: Instant::now(),
            conns: HashMap::new(),
            next_token: LISTENER + 1,
            paused_until: None,
            cap: server.cap,
        }),
    });
    lock(&server.guards).insert(id, Arc::clone(&served));
    let since = u64::try_from(server.born.elapsed().as_nanos()).unwrap_or(u64::MAX);
    server.last_guard.store(since, Ordering::Relaxed);
    // The server registers the listener DEFER from now; if it sleeps
    // without a deadline, it must learn of this guard (SeqCst pairs with
    // the store in `Server::wait`).
    if server.sleeping.load(Ordering::SeqCst) {
        let _ = rustix::io::write(&server.wake, &1u64.to_ne_bytes());
    }
    Ok(Registration {
        server,
        id,
        served,
        owner: sys::pid(),
    })
}

impl Registration {
    /// Stops serving the guard: drops the server's copy of its listener,
    /// hands back every kept connection, and ends the application's request
    /// stream. Synchronous: when it returns, the server holds nothing of
    /// the guard.
    ///
    /// The kept connections are returned, not closed: the caller closes
    /// them after the listener, so that a waiter woken by its hang-up finds
    /// the name already free.
    pub(crate) fn release(&self) -> Vec<OwnedFd> {
        if self.owner != sys::pid() {
            // A fork child: the server's thread did not survive the fork,
            // but its copy of the listener did. Dropped here, so that the
            // child's release closes the child's descriptors (a child
            // that releases leaves the lock to its parent). `try_lock`: a
            // lock the parent's thread held at the fork is never unlocked
            // in the child; its copy then stays until the child exits.
            return match self.served.state.try_lock() {
                Ok(mut state) => {
                    state.listener = None;
                    state.conns.drain().map(|(_, conn)| conn.fd).collect()
                }
                Err(_) => Vec::new(),
            };
        }
        let mut state = lock(&self.served.state);
        // Not unregistered: closing the listener does that (LISTENING).
        state.listener = None;
        let kept = state
            .conns
            .drain()
            .map(|(_, conn)| {
                let _ = epoll::delete(&self.server.epoll, &conn.fd);
                conn.fd
            })
            .collect();
        drop(state);
        self.served.shared.close();
        lock(&self.server.guards).remove(&self.id);
        kept
    }
}

fn data(id: u32, token: u32) -> u64 {
    (u64::from(id) << 32) | u64::from(token)
}

/// This process's server, started on first use.
fn server() -> Result<&'static Server> {
    let me = sys::pid();
    let mut slot = lock(&SERVER);
    if let Some((pid, server)) = *slot {
        if pid == me {
            return Ok(server);
        }
    }
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
        .map_err(|e| Error::io("creating the serving epoll")(e.into()))?;
    let wake = rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )
    .map_err(|e| Error::io("creating the serving eventfd")(e.into()))?;
    epoll::add(&epoll, &wake, EventData::new_u64(WAKE), EventFlags::IN)
        .map_err(|e| Error::io("registering the serving eventfd")(e.into()))?;
    // Leaked on purpose: the server lives as long as the process.
    let server: &'static Server = Box::leak(Box::new(Server {
        epoll,
        wake,
        guards: Mutex::new(HashMap::new()),
        next_id: AtomicU32::new(0),
        cap: connection::capacity(),
        sleeping: AtomicBool::new(false),
        last_guard: AtomicU64::new(0),
        born: Instant::now(),
    }));
    if OWN_LOOP.load(Ordering::Relaxed) != me {
        let builder = std::thread::Builder::new()
            .name("abslock-serve".into())
            .stack_size(128 * 1024);
        sys::spawn_blocking_signals(builder, move || loop {
            server.wait();
        })
        .map_err(Error::io("starting the serving thread"))?;
    }
    *slot = Some((me, server));
    Ok(server)
}

/// Starts the server now, if it is not running, so that the first guard
/// taken after a wait does not pay for it (the hand-over path).
pub(crate) fn prepare() {
    let _ = server();
}

/// The serving loop of this process, driven by the application's own event
/// loop instead of a thread: for a program that polls anyway and wants no
/// thread of abslock's (the `abslock run` supervisor does this).
///
/// Call [`own_loop`] before the first lock is taken; then poll
/// [`OwnLoop::readiness`] for input, wake at [`OwnLoop::deadline`], and
/// call [`OwnLoop::turn`] each time. While nobody calls `turn`, waiters
/// still queue in the backlog and are woken by the release, but `info`,
/// messages and stop requests wait.
#[derive(Debug, Clone, Copy)]
pub struct OwnLoop {
    server: &'static Server,
}

/// Switches this process to serving from its own loop (see [`OwnLoop`]).
///
/// # Errors
/// [`Error::InvalidRequest`] if this process already serves guards from
/// the serving thread; [`Error::Io`] if the `epoll` instance cannot be
/// made.
pub fn own_loop() -> Result<OwnLoop> {
    let me = sys::pid();
    let running = matches!(*lock(&SERVER), Some((pid, _)) if pid == me);
    if running && OWN_LOOP.load(Ordering::Relaxed) != me {
        return Err(Error::InvalidRequest(
            "own_loop() must come before the first lock is taken".into(),
        ));
    }
    OWN_LOOP.store(me, Ordering::Relaxed);
    Ok(OwnLoop { server: server()? })
}

impl OwnLoop {
    /// The `epoll(7)` descriptor to poll for input.
    pub fn readiness(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.server.epoll.as_fd()
    }

    /// When [`OwnLoop::turn`] must run even without input (request read
    /// timeouts, the reject log's summary).
    pub fn deadline(&self) -> Option<Instant> {
        self.server.next_deadline()
    }

    /// Serves what is ready, without blocking.
    pub fn turn(&self) {
        self.server.turn(Some(&sys::timespec(Duration::ZERO)));
    }
}

impl Server {
    /// The serving thread's round: sleeps until an event or the next
    /// deadline, then [`Server::turn`].
    fn wait(&self) {
        // Announce the sleep before looking for deadlines: a guard
        // registered meanwhile either is seen below or sees the flag.
        self.sleeping.store(true, Ordering::SeqCst);
        let now = Instant::now();
        let last = self.born + Duration::from_nanos(self.last_guard.load(Ordering::Relaxed));
        let lingering = (now.saturating_duration_since(last) < LINGER).then(|| now + DEFER);
        let deadline = self.next_deadline().into_iter().chain(lingering).min();
        if deadline.is_some() {
            self.sleeping.store(false, Ordering::SeqCst);
        }
        let timeout = deadline.map(|d| sys::timespec(d.saturating_duration_since(Instant::now())));
        self.turn(timeout.as_ref());
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// One round: waits at most `timeout` for events, handles them, runs
    /// the timers.
    fn turn(&self, timeout: Option<&rustix::event::Timespec>) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut events),
            timeout,
        ) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => std::thread::sleep(PAUSE),
        }
        let now = Instant::now();
        for event in &events {
            let data = event.data.u64();
            if data == WAKE {
                let _ = rustix::io::read(&self.wake, &mut [0u8; 8]);
                continue;
            }
            let (id, token) = ((data >> 32) as u32, data as u32);
            let served = lock(&self.guards).get(&id).cloned();
            if let Some(served) = served {
                self.on_event(id, &served, token, now);
            }
        }
        self.tick(Instant::now());
    }

    /// The earliest moment a guard needs attention without an event.
    fn next_deadline(&self) -> Option<Instant> {
        let guards: Vec<Arc<Served>> = lock(&self.guards).values().cloned().collect();
        guards
            .iter()
            .filter_map(|served| {
                let state = lock(&served.state);
                let reads = state
                    .conns
                    .values()
                    .filter_map(|c| c.started)
                    .map(|t| t + connection::READ_TIMEOUT);
                let registration =
                    (!state.registered && state.listener.is_some()).then(|| state.acquired + DEFER);
                reads
                    .chain(state.paused_until)
                    .chain(registration)
                    .chain(served.shared.rejects_due())
                    .min()
            })
            .min()
    }

    /// One event of guard `id`: its listener, or connection `token`.
    fn on_event(&self, id: u32, served: &Served, token: u32, now: Instant) {
        let mut done = Vec::new();
        {
            let mut guard = lock(&served.state);
            let state = &mut *guard;
            // A copy of the Arc, dropped before the lock is: a release
            // (which takes the lock) always finds the server's copy gone.
            let Some(listener) = state.listener.clone() else {
                return;
            };
            if token == LISTENER {
                if state.paused_until.is_none() {
                    self.accept_all(id, &listener, state, now);
                }
                if state.paused_until.is_none() {
                    self.arm(id, &listener);
                }
                return;
            }
            let Some(conn) = state.conns.get_mut(&token) else {
                return;
            };
            match conn.read() {
                Progress::Pending => {}
                progress => {
                    if let Some(conn) = state.conns.remove(&token) {
                        let _ = epoll::delete(&self.epoll, &conn.fd);
                        done.push((conn, progress));
                    }
                }
            }
        }
        // Answered outside the guard's lock: dispatch hands requests to the
        // application.
        for (conn, progress) in done {
            finish(conn, progress, &served.shared);
        }
    }

    /// Accepts what is queued for guard `id`, keeping at most its
    /// capacity (see `connection::victim`).
    fn accept_all(&self, id: u32, listener: &OwnedFd, state: &mut State, now: Instant) {
        loop {
            match rustix::net::accept_with(listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
                Ok(fd) => {
                    let conn = Conn::new(fd);
                    if state.conns.len() >= state.cap {
                        // Full: make room, or turn the newcomer away (a
                        // waiter sees the hang-up, backs off, comes back).
                        match connection::victim(&state.conns, conn.uid, now) {
                            Some(token) => self.evict(state, token),
                            None => continue,
                        }
                    }
                    let token = state.next_token;
                    state.next_token = state.next_token.wrapping_add(1).max(LISTENER + 1);
                    let added = epoll::add(
                        &self.epoll,
                        &conn.fd,
                        EventData::new_u64(data(id, token)),
                        EventFlags::IN | EventFlags::RDHUP,
                    );
                    if added.is_ok() {
                        state.conns.insert(token, conn);
                    }
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::CONNABORTED) => return,
                // Out of descriptors (the application uses the rest): close
                // one of the busiest uid's connections and accept again.
                Err(Errno::MFILE | Errno::NFILE) if !state.conns.is_empty() => {
                    match connection::victim(&state.conns, None, now) {
                        Some(token) => self.evict(state, token),
                        None => return self.pause(id, listener, state, now),
                    }
                }
                // Anything else: the connection stays queued and the
                // listener readable; pause instead of spinning.
                Err(_) => return self.pause(id, listener, state, now),
            }
        }
    }

    /// Re-arms the one-shot listener registration.
    fn arm(&self, id: u32, listener: &OwnedFd) {
        let _ = epoll::modify(
            &self.epoll,
            listener,
            EventData::new_u64(data(id, LISTENER)),
            LISTENING,
        );
    }

    fn evict(&self, state: &mut State, token: u32) {
        if let Some(conn) = state.conns.remove(&token) {
            let _ = epoll::delete(&self.epoll, &conn.fd);
        }
    }

    /// Stops polling the listener until [`PAUSE`] has passed (`tick`).
    fn pause(&self, _id: u32, _listener: &OwnedFd, state: &mut State, now: Instant) {
        // The one-shot registration stays disarmed until `tick` re-arms it.
        state.paused_until = Some(now + PAUSE);
    }

    /// Timers: requests not read in time, accept pauses that are over, the
    /// reject log's summary.
    fn tick(&self, now: Instant) {
        let guards: Vec<(u32, Arc<Served>)> = lock(&self.guards)
            .iter()
            .map(|(&id, s)| (id, Arc::clone(s)))
            .collect();
        for (id, served) in guards {
            let mut overdue = Vec::new();
            {
                let mut guard = lock(&served.state);
                let state = &mut *guard;
                let late: Vec<u32> = state
                    .conns
                    .iter()
                    .filter(|(_, c)| c.overdue(now))
                    .map(|(&t, _)| t)
                    .collect();
                for token in late {
                    if let Some(conn) = state.conns.remove(&token) {
                        let _ = epoll::delete(&self.epoll, &conn.fd);
                        overdue.push(conn);
                    }
                }
                if !state.registered && now >= state.acquired + DEFER {
                    if let Some(listener) = state.listener.as_ref() {
                        let added = epoll::add(
                            &self.epoll,
                            &**listener,
                            EventData::new_u64(data(id, LISTENER)),
                            LISTENING,
                        );
                        // Failed (out of memory): try again next round.
                        state.registered = added.is_ok();
                        if !state.registered {
                            state.acquired = now;
                        }
                    }
                }
                if state.paused_until.is_some_and(|t| now >= t) {
                    state.paused_until = None;
                    if let Some(listener) = state.listener.as_ref() {
                        self.arm(id, listener);
                    }
                }
            }
            for conn in overdue {
                let why = format!(
                    "sent {} bytes, not a whole request, in {} s",
                    conn.buffered(),
                    connection::READ_TIMEOUT.as_secs()
                );
                finish(conn, Progress::Reject(why), &served.shared);
            }
            served.shared.flush_rejects(now);
        }
    }
}
