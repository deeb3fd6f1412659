#![doc = include_str!("../doc/semantics.md")]
//!
//! # The checks
//!
//! Executable checks of the kernel rules abslock relies on.
//!
//! Each [`Check`] demonstrates one rule of `docs/semantics.md` on the
//! running kernel, with real child processes and real signals. The
//! `semantics` integration test asserts that every check passes;
//! `abslock doctor` runs the same checks and prints a table.
//!
//! ```no_run
//! for check in abslock::semantics::CHECKS {
//!     println!("{:<28} {}", check.id, check.run());
//! }
//! ```

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::procfs;
use crate::sys;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rule holds; the text says what was observed.
    Pass(String),
    /// The rule does not hold on this system; the text says what happened.
    Fail(String),
    /// The check could not run here (for example it needs root).
    Skip(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass(s) => write!(f, "pass  {s}"),
            Outcome::Fail(s) => write!(f, "FAIL  {s}"),
            Outcome::Skip(s) => write!(f, "skip  {s}"),
        }
    }
}

/// One rule and the experiment that shows it.
#[derive(Debug)]
pub struct Check {
    /// A stable identifier, also the name of its test in `tests/semantics.rs`.
    pub id: &'static str,
    /// The rule's number in `docs/semantics.md`.
    pub rule: u8,
    /// The rule, in one sentence.
    pub claim: &'static str,
    /// Whether it can only run as root (and is skipped otherwise).
    pub needs_root: bool,
    body: fn() -> Result<String, Outcome>,
}

impl Check {
    /// Runs the experiment.
    pub fn run(&self) -> Outcome {
        if self.needs_root && !rustix::process::geteuid().is_root() {
            return Outcome::Skip("needs root".into());
        }
        match (self.body)() {
            Ok(detail) => Outcome::Pass(detail),
            Err(outcome) => outcome,
        }
    }
}

/// The check with this id.
pub fn find(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}

macro_rules! check {
    ($id:ident, $rule:expr, $root:expr, $claim:expr) => {
        Check {
            id: stringify!($id),
            rule: $rule,
            claim: $claim,
            needs_root: $root,
            body: $id,
        }
    };
}

/// Every check, in rule order.
pub const CHECKS: &[Check] = &[
    check!(
        close_frees,
        1,
        false,
        "close() of the last descriptor frees the name at once"
    ),
    check!(
        exit_frees,
        1,
        false,
        "a normal exit of the last holder frees the name at once"
    ),
    check!(
        sigkill_frees,
        1,
        false,
        "SIGKILL of the last holder frees the name at once"
    ),
    check!(
        crash_frees,
        1,
        false,
        "a crash (SIGSEGV) of the last holder frees the name at once"
    ),
    check!(
        ptrace_exit_stop_delays,
        1,
        false,
        "a holder stopped at exit by its tracer keeps the name until it goes on"
    ),
    check!(
        io_uring_fixed_file_delays,
        1,
        false,
        "a listener registered in an io_uring is freed when the ring lets go, after its close"
    ),
    check!(
        gc_cycle_delays,
        1,
        false,
        "a listener in flight in an unreachable cycle is freed by the garbage collector"
    ),
    check!(
        fork_child_keeps,
        2,
        false,
        "a forked child keeps the name after its parent exits"
    ),
    check!(
        cloexec_stops_exec_leak,
        2,
        false,
        "close-on-exec keeps an exec'd program from holding the name"
    ),
    check!(
        exec_keeps_without_cloexec,
        2,
        false,
        "without close-on-exec, an exec'd program holds the name"
    ),
    check!(
        scm_rights_keeps,
        2,
        false,
        "a descriptor in flight over SCM_RIGHTS keeps the name"
    ),
    check!(
        pidfd_getfd_copies,
        2,
        false,
        "pidfd_getfd(2) copies the holder's socket, which then outlives it; /proc/PID/fd cannot"
    ),
    check!(
        clone_files_shares_one_table,
        2,
        false,
        "a process made with CLONE_FILES shares the table: a close in either frees the name"
    ),
    check!(
        in_flight_dropped_with_the_queue,
        2,
        false,
        "a descriptor in flight is dropped when its receiving socket closes unread"
    ),
    check!(
        netns_separates,
        3,
        true,
        "each network namespace has its own abstract names"
    ),
    check!(
        netns_of_creation,
        3,
        true,
        "a name lives in the namespace where its socket was created, not the binder's"
    ),
    check!(
        any_user_can_squat,
        4,
        true,
        "any user can bind a free name; SO_PEERCRED shows who did"
    ),
    check!(
        peercred_without_accept,
        4,
        false,
        "SO_PEERCRED works without accept() and reports the pid as of listen()"
    ),
    check!(
        peerpidfd_names_the_holder,
        4,
        false,
        "SO_PEERPIDFD gives a pidfd of the listener"
    ),
    check!(
        unlistened_refuses,
        5,
        false,
        "a bound socket that never listens refuses connections yet holds the name"
    ),
    check!(
        backlog_fills,
        5,
        false,
        "unaccepted connections fill the backlog: EAGAIN after backlog+1"
    ),
    check!(
        waiter_gets_hangup,
        6,
        false,
        "a connected waiter gets POLLHUP and ECONNRESET when the holder dies"
    ),
    check!(
        accepted_connection_does_not_hold,
        6,
        false,
        "an accepted connection does not hold the name: its waiter is told only when it closes"
    ),
    check!(
        length_limit,
        7,
        false,
        "a name has at most 107 bytes after the leading NUL"
    ),
    check!(
        autobind_collides,
        7,
        false,
        "an address length of 2 autobinds a NUL and five hex digits, a name raw binds can meet"
    ),
    check!(
        every_byte_counts,
        7,
        false,
        "NUL and trailing bytes are part of the name"
    ),
    check!(
        types_do_not_collide,
        9,
        false,
        "stream, datagram and seqpacket sockets have separate abstract namespaces"
    ),
];

// ---------------------------------------------------------------- helpers

fn fail(what: impl fmt::Display) -> Outcome {
    Outcome::Fail(what.to_string())
}

fn ctx<T, E: fmt::Display>(r: Result<T, E>, what: &str) -> Result<T, Outcome> {
    r.map_err(|e| fail(format!("{what}: {e}")))
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), Outcome> {
    if cond {
        Ok(())
    } else {
        Err(fail(what()))
    }
}

/// A fresh abstract name for one experiment.
fn fresh(tag: &str) -> Vec<u8> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("abslock-doctor/{}/{tag}/{n}", std::process::id()).into_bytes()
}

fn addr(name: &[u8]) -> Result<SocketAddrUnix, Outcome> {
    ctx(SocketAddrUnix::new_abstract_name(name), "abstract address")
}

fn socket(ty: SocketType) -> Result<OwnedFd, Outcome> {
    ctx(
        net::socket_with(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None),
        "socket()",
    )
}

/// Binds a close-on-exec socket of type `ty`; `Err(errno)` if bind fails.
fn bind(name: &[u8], ty: SocketType) -> Result<Result<OwnedFd, Errno>, Outcome> {
    let fd = socket(ty)?;
    Ok(net::bind(&fd, &addr(name)?).map(|()| fd))
}

fn bind_ok(name: &[u8]) -> Result<OwnedFd, Outcome> {
    bind(name, SocketType::STREAM)?.map_err(|e| fail(format!("bind: {e}")))
}

fn listener(name: &[u8], backlog: i32) -> Result<OwnedFd, Outcome> {
    let fd = bind_ok(name)?;
    ctx(net::listen(&fd, backlog), "listen()")?;
    Ok(fd)
}

/// Whether the name is bound: a bind probe, released at once.
fn held(name: &[u8]) -> Result<bool, Outcome> {
    match bind(name, SocketType::STREAM)? {
        Ok(_probe) => Ok(false),
        Err(Errno::ADDRINUSE) => Ok(true),
        Err(e) => Err(fail(format!("bind probe: {e}"))),
    }
}

fn ensure_held(name: &[u8], when: &str) -> Result<(), Outcome> {
    ensure(held(name)?, || format!("name was free {when}"))
}

fn ensure_free(name: &[u8], when: &str) -> Result<(), Outcome> {
    ensure(!held(name)?, || format!("name still bound {when}"))
}

/// Starts `program` with its stdin a pipe and, if `fd` is given, that
/// descriptor inherited (close-on-exec cleared in the child only).
fn spawn(program: &str, args: &[&str], fd: Option<&OwnedFd>) -> Result<Child, Outcome> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped());
    if let Some(fd) = fd {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl(2) only, which is async-signal-safe; `fd` outlives
        // the spawn, so `raw` is open in the child.
        unsafe { cmd.pre_exec(move || sys::clear_cloexec_in_child(raw)) };
    }
    ctx(cmd.spawn(), &format!("spawning {program}"))
}

/// Starts `cat` after binding `name` in the child itself (in `pre_exec`),
/// listening with `backlog`, after running `setup` there first. The
/// socket survives exec, so the `cat` process holds the name.
fn spawn_binding(
    name: &[u8],
    backlog: i32,
    uid: Option<u32>,
    setup: fn() -> std::io::Result<()>,
) -> std::io::Result<Child> {
    let address = SocketAddrUnix::new_abstract_name(name)?;
    let mut cmd = Command::new("cat");
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    // SAFETY: runs between fork and exec and makes only raw system calls
    // (unshare, socket, bind, listen) on stack data prepared before the
    // fork; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            setup()?;
            let fd = net::socket(AddressFamily::UNIX, SocketType::STREAM, None)?;
            net::bind(&fd, &address)?;
            net::listen(&fd, backlog)?;
            std::mem::forget(fd);
            Ok(())
        });
    }
    cmd.spawn()
}

/// Maps a failed [`spawn_binding`]: not permitted means the check cannot
/// run here; anything else is a failure.
fn spawned(result: std::io::Result<Child>) -> Result<Child, Outcome> {
    result.map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => Outcome::Skip(format!("not permitted here: {e}")),
        _ => fail(format!("child could not bind: {e}")),
    })
}

fn no_setup() -> std::io::Result<()> {
    Ok(())
}

fn kill(child: &Child, sig: i32) -> Result<(), Outcome> {
    // SAFETY: kill(2) has no memory preconditions; the child is unreaped,
    // so its pid is not reused.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    ensure(rc == 0, || {
        format!("kill: {}", std::io::Error::last_os_error())
    })
}

fn connect(name: &[u8]) -> Result<Result<OwnedFd, Errno>, Outcome> {
    let fd = ctx(
        net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        ),
        "socket()",
    )?;
    Ok(net::connect(&fd, &addr(name)?).map(|()| fd))
}

/// A connected pair of stream sockets.
fn socket_pair() -> Result<(OwnedFd, OwnedFd), Outcome> {
    ctx(
        net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        ),
        "socketpair",
    )
}

/// Sends one byte with `fds` attached (`SCM_RIGHTS`) over `via`.
fn send_fds(via: &OwnedFd, fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<(), Outcome> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    ensure(control.push(SendAncillaryMessage::ScmRights(fds)), || {
        "cmsg buffer too small".into()
    })?;
    ctx(
        net::sendmsg(
            via,
            &[std::io::IoSlice::new(b"x")],
            &mut control,
            SendFlags::empty(),
        ),
        "sendmsg",
    )
    .map(drop)
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

// ---------------------------------------------------------------- rule 1

fn close_frees() -> Result<String, Outcome> {
    let name = fresh("close");
    let fd = listener(&name, 1)?;
    ensure_held(&name, "while its socket was open")?;
    drop(fd);
    let t = Instant::now();
    bind_ok(&name)?;
    Ok(format!(
        "free when close() returned (the probe bind took {})",
        micros(t.elapsed())
    ))
}

/// A child holds the only descriptor; `end` makes it exit; the name must
/// be free as soon as the child is reaped.
fn child_death_frees(
    tag: &str,
    program: &str,
    args: &[&str],
    end: impl FnOnce(&mut Child) -> Result<(), Outcome>,
    expect_signal: Option<i32>,
) -> Result<String, Outcome> {
    let name = fresh(tag);
    let fd = listener(&name, 1)?;
    let mut child = spawn(program, args, Some(&fd))?;
    drop(fd);
    ensure_held(&name, "while the child held the only descriptor")?;
    end(&mut child)?;
    let status = ctx(child.wait(), "waitpid")?;
    let t = Instant::now();
    let rebound = held(&name)?;
    let elapsed = t.elapsed();
    ensure(status.signal() == expect_signal, || {
        format!("child ended with {status}")
    })?;
    ensure(!rebound, || {
        "name still bound after the child was reaped".into()
    })?;
    Ok(format!(
        "free when waitpid returned ({status}; the probe bind took {})",
        micros(elapsed)
    ))
}

fn exit_frees() -> Result<String, Outcome> {
    child_death_frees(
        "exit",
        "cat",
        &[],
        |c| {
            drop(c.stdin.take());
            Ok(())
        },
        None,
    )
}

fn sigkill_frees() -> Result<String, Outcome> {
    child_death_frees(
        "kill",
        "cat",
        &[],
        |c| kill(c, libc::SIGKILL),
        Some(libc::SIGKILL),
    )
}

fn crash_frees() -> Result<String, Outcome> {
    child_death_frees(
        "crash",
        "sh",
        &["-c", "read x; kill -SEGV $$"],
        |c| match c.stdin.as_mut() {
            Some(stdin) => ctx(stdin.write_all(b"go\n"), "writing to the child"),
            None => Err(fail("child has no stdin")),
        },
        Some(libc::SIGSEGV),
    )
}

// ---------------------------------------------------------------- rule 2

fn fork_child_keeps() -> Result<String, Outcome> {
    let name = fresh("fork");
    let fd = listener(&name, 1)?;
    // sh forks a background sleep (inheriting the socket), prints its pid
    // and exits.
    let mut sh = spawn("sh", &["-c", "sleep 30 & echo $!"], Some(&fd))?;
    drop(fd);
    let mut line = String::new();
    if let Some(out) = sh.stdout.take() {
        ctx(
            BufReader::new(out).read_line(&mut line),
            "reading the orphan's pid",
        )?;
    }
    let orphan: u32 = ctx(line.trim().parse(), "orphan pid")?;
    ctx(sh.wait(), "waitpid")?;
    ensure_held(&name, "after the parent exited")?;
    let holders = ctx(procfs::holders_of(&name), "/proc/net/unix")?
        .map(|(_, pids)| pids)
        .unwrap_or_default();
    ensure(holders == vec![orphan], || {
        format!("holders {holders:?}, expected [{orphan}]")
    })?;
    let pid = rustix::process::Pid::from_raw(orphan as i32).ok_or_else(|| fail("pid 0"))?;
    let pidfd = ctx(
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()),
        "pidfd_open",
    )?;
    ctx(
        rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL),
        "pidfd_send_signal",
    )?;
    // The pidfd polls readable once the process has exited, by which time
    // its descriptors are closed.
    ensure(
        ctx(
            sys::wait_event(pidfd.as_fd(), Some(Instant::now() + Duration::from_secs(5))),
            "poll",
        )?,
        || "orphan did not exit".into(),
    )?;
    ensure_free(&name, "after the orphan exited")?;
    Ok(format!(
        "held by orphan pid {orphan} alone, free once it died"
    ))
}

fn cloexec_stops_exec_leak() -> Result<String, Outcome> {
    let name = fresh("cloexec");
    let fd = listener(&name, 1)?;
    let mut child = spawn("cat", &[], None)?;
    drop(fd);
    let free = !held(&name)?;
    drop(child.stdin.take());
    ctx(child.wait(), "waitpid")?;
    ensure(free, || {
        "the exec'd child kept the name despite close-on-exec".into()
    })?;
    Ok("free while the exec'd child still ran".into())
}

fn exec_keeps_without_cloexec() -> Result<String, Outcome> {
    let name = fresh("exec");
    let fd = listener(&name, 1)?;
    let mut child = spawn("cat", &[], Some(&fd))?;
    drop(fd);
    let kept = held(&name)?;
    drop(child.stdin.take());
    ctx(child.wait(), "waitpid")?;
    ensure(kept, || "the exec'd child did not keep the name".into())?;
    ensure_free(&name, "after the exec'd child exited")?;
    Ok(format!(
        "held by the exec'd child (pid {}) until it exited",
        child.id()
    ))
}

fn scm_rights_keeps() -> Result<String, Outcome> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    let name = fresh("scm");
    let fd = listener(&name, 1)?;
    let (a, b) = socket_pair()?;
    send_fds(&a, &[fd.as_fd()])?;
    drop(fd);
    ensure_held(&name, "with its only descriptor in flight")?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    ctx(
        net::recvmsg(
            &b,
            &mut [std::io::IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ),
        "recvmsg",
    )?;
    let mut received: Vec<OwnedFd> = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            received.extend(fds);
        }
    }
    ensure(received.len() == 1, || {
        format!("received {} descriptors", received.len())
    })?;
    ensure_held(&name, "after receiving the descriptor")?;
    drop(received);
    ensure_free(&name, "after closing the received descriptor")?;
    Ok("held while in flight and after receipt; free once closed".into())
}

// ---------------------------------------------------------------- rule 3

fn unshare_net() -> std::io::Result<()> {
    // SAFETY: called only in a freshly forked, single-threaded child
    // before exec; a new network namespace invalidates no Rust invariant.
    Ok(unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }?)
}

fn netns_separates() -> Result<String, Outcome> {
    let name = fresh("netns");
    // A child in a new network namespace holds the name there…
    let mut inside = spawned(spawn_binding(&name, 1, None, unshare_net))?;
    // …which leaves it free here: we bind it too…
    let here = listener(&name, 1);
    // …and then a child in ours cannot.
    let ours = spawn_binding(&name, 1, None, no_setup);
    drop(inside.stdin.take());
    ctx(inside.wait(), "waitpid")?;
    let _here = here?;
    match ours {
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {}
        Err(e) => return Err(fail(format!("child in our namespace: {e}"))),
        Ok(mut c) => {
            drop(c.stdin.take());
            let _ = c.wait();
            return Err(fail("a child in our namespace bound a taken name"));
        }
    }
    Ok("held in a new netns and here at once, both ways; EADDRINUSE in ours".into())
}

// ---------------------------------------------------------------- rule 4

fn any_user_can_squat() -> Result<String, Outcome> {
    let name = fresh("squat");
    let mut squatter = spawned(spawn_binding(&name, 1, Some(65534), no_setup))?;
    let result = (|| {
        let taken = matches!(bind(&name, SocketType::STREAM)?, Err(Errno::ADDRINUSE));
        ensure(taken, || "root could bind the squatted name".into())?;
        let conn = connect(&name)?.map_err(|e| fail(format!("connect: {e}")))?;
        let cred = ctx(sys::peer_cred(conn.as_fd()), "SO_PEERCRED")?;
        ensure(
            cred.uid == 65534 && cred.pid as u32 == squatter.id(),
            || format!("SO_PEERCRED said pid {} uid {}", cred.pid, cred.uid),
        )?;
        Ok(format!(
            "uid 65534 (pid {}) took it; root gets EADDRINUSE",
            cred.pid
        ))
    })();
    drop(squatter.stdin.take());
    let _ = squatter.wait();
    result
}

fn peercred_without_accept() -> Result<String, Outcome> {
    // A listener created in a child: its pid, without it ever accepting.
    let name = fresh("cred");
    let mut child = spawned(spawn_binding(&name, 4, None, no_setup))?;
    let conn = connect(&name)?.map_err(|e| fail(format!("connect: {e}")));
    let cred = conn.and_then(|c| ctx(sys::peer_cred(c.as_fd()), "SO_PEERCRED"));
    drop(child.stdin.take());
    ctx(child.wait(), "waitpid")?;
    let cred = cred?;
    ensure(cred.pid as u32 == child.id(), || {
        format!("pid {} != child {}", cred.pid, child.id())
    })?;
    // A listener created here and handed to a child: still our pid.
    let name = fresh("cred-listen");
    let fd = listener(&name, 4)?;
    let mut heir = spawn("cat", &[], Some(&fd))?;
    drop(fd);
    let conn = connect(&name)?.map_err(|e| fail(format!("connect: {e}")));
    let cred2 = conn.and_then(|c| ctx(sys::peer_cred(c.as_fd()), "SO_PEERCRED"));
    drop(heir.stdin.take());
    ctx(heir.wait(), "waitpid")?;
    let cred2 = cred2?;
    ensure(cred2.pid as u32 == std::process::id(), || {
        format!(
            "pid {} after hand-over, expected the listen() caller {}",
            cred2.pid,
            std::process::id()
        )
    })?;
    Ok(format!(
        "pid {} (uid {}) unaccepted; as of listen() after hand-over",
        cred.pid, cred.uid
    ))
}

fn peerpidfd_names_the_holder() -> Result<String, Outcome> {
    let name = fresh("pidfd");
    let mut child = spawned(spawn_binding(&name, 4, None, no_setup))?;
    let result = (|| {
        let conn = connect(&name)?.map_err(|e| fail(format!("connect: {e}")))?;
        let pidfd = match sys::peer_pidfd(conn.as_fd()) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
                return Err(Outcome::Skip(
                    "kernel lacks SO_PEERPIDFD (Linux 6.5+)".into(),
                ))
            }
            Err(e) => return Err(fail(format!("SO_PEERPIDFD: {e}"))),
        };
        let info = ctx(
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())),
            "fdinfo",
        )?;
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .map(str::trim);
        ensure(pid == Some(&child.id().to_string()), || {
            format!("pidfd names pid {pid:?}")
        })?;
        Ok(format!("pidfd for pid {}", child.id()))
    })();
    drop(child.stdin.take());
    let _ = child.wait();
    result
}

// ---------------------------------------------------------------- rule 5

fn unlistened_refuses() -> Result<String, Outcome> {
    let name = fresh("nolisten");
    let _fd = bind_ok(&name)?;
    let got = connect(&name)?;
    ensure(matches!(got, Err(Errno::CONNREFUSED)), || {
        format!("connect gave {got:?}")
    })?;
    ensure_held(&name, "while bound without listen()")?;
    Ok("connect: ECONNREFUSED; bind: EADDRINUSE".into())
}

fn backlog_fills() -> Result<String, Outcome> {
    let name = fresh("backlog");
    let backlog = 2;
    let _fd = listener(&name, backlog)?;
    let mut conns = Vec::new();
    let last = loop {
        match connect(&name)? {
            Ok(c) if conns.len() < 64 => conns.push(c),
            Ok(_) => return Err(fail("64 connections and no EAGAIN")),
            Err(e) => break e,
        }
    };
    ensure(
        last == Errno::AGAIN && conns.len() == backlog as usize + 1,
        || format!("{} connections, then {last:?}", conns.len()),
    )?;
    Ok(format!(
        "backlog {backlog}: {} connected, then EAGAIN",
        conns.len()
    ))
}

// ---------------------------------------------------------------- rule 6

fn waiter_gets_hangup() -> Result<String, Outcome> {
    let name = fresh("hangup");
    let mut child = spawned(spawn_binding(&name, 4, None, no_setup))?;
    let conn = match connect(&name)? {
        Ok(c) => c,
        Err(e) => {
            let _ = kill(&child, libc::SIGKILL);
            let _ = child.wait();
            return Err(fail(format!("connect: {e}")));
        }
    };
    let quiet = ctx(sys::wait_event(conn.as_fd(), Some(Instant::now())), "poll")?;
    kill(&child, libc::SIGKILL)?;
    let t = Instant::now();
    let mut fds = [PollFd::new(&conn, PollFlags::IN)];
    ctx(
        sys::poll_many(&mut fds, Some(t + Duration::from_secs(5))),
        "poll",
    )?;
    let latency = t.elapsed();
    let revents = fds[0].revents();
    ctx(child.wait(), "waitpid")?;
    ensure(!quiet, || {
        "the connection had an event before the kill".into()
    })?;
    ensure(revents.contains(PollFlags::HUP), || {
        format!("poll gave {revents:?}")
    })?;
    let mut buf = [0u8; 1];
    let read = rustix::io::read(&conn, &mut buf);
    ensure(read == Err(Errno::CONNRESET), || {
        format!("read gave {read:?}")
    })?;
    Ok(format!(
        "POLLHUP {} after kill(), then ECONNRESET",
        micros(latency)
    ))
}

// ---------------------------------------------------------------- rule 7

fn length_limit() -> Result<String, Outcome> {
    let mut name = fresh("len");
    name.resize(107, b'x');
    let _ok = bind_ok(&name)?;
    // 108 bytes need an addrlen beyond sizeof(struct sockaddr_un), which
    // the kernel rejects; build the address by hand to ask it.
    let fd = socket(SocketType::STREAM)?;
    let mut raw = [0u8; 2 + 1 + 108];
    raw[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    raw[3..].fill(b'y');
    // SAFETY: `raw` is a readable buffer of exactly the length passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            raw.as_ptr().cast(),
            raw.len() as libc::socklen_t,
        )
    };
    let err = std::io::Error::last_os_error();
    ensure(rc == -1 && err.raw_os_error() == Some(libc::EINVAL), || {
        format!("108-byte bind gave {rc} ({err})")
    })?;
    Ok("107 bytes bind; 108 give EINVAL".into())
}

fn autobind_collides() -> Result<String, Outcome> {
    let fd = socket(SocketType::STREAM)?;
    let family = (libc::AF_UNIX as u16).to_ne_bytes();
    // SAFETY: `family` is a readable buffer of exactly the length passed.
    let rc = unsafe { libc::bind(fd.as_raw_fd(), family.as_ptr().cast(), 2) };
    ensure(rc == 0, || {
        format!("autobind: {}", std::io::Error::last_os_error())
    })?;
    let bound = ctx(net::getsockname(&fd), "getsockname")?;
    let unix = ctx(
        SocketAddrUnix::try_from(bound).map_err(|e| format!("{e:?}")),
        "the autobound address",
    )?;
    let Some(auto) = unix.abstract_name().map(<[u8]>::to_vec) else {
        return Err(fail("autobind gave no abstract name"));
    };
    ensure(
        auto.len() == 5 && auto.iter().all(u8::is_ascii_hexdigit),
        || format!("autobound name {auto:?}"),
    )?;
    let again = bind(&auto, SocketType::STREAM)?;
    ensure(matches!(again, Err(Errno::ADDRINUSE)), || {
        format!("binding the autobound name gave {again:?}")
    })?;
    Ok(format!(
        "autobound @{}; a raw bind of that name gets EADDRINUSE",
        String::from_utf8_lossy(&auto)
    ))
}

fn every_byte_counts() -> Result<String, Outcome> {
    let base = fresh("bytes");
    let mut trailing = base.clone();
    trailing.push(0);
    let mut inner = base.clone();
    inner.extend_from_slice(b"\0z");
    let _a = bind_ok(&base)?;
    let _b = bind_ok(&trailing)?;
    let _c = bind_ok(&inner)?;
    let shown = procfs::unix_sockets()
        .map_err(|e| fail(format!("/proc/net/unix: {e}")))?
        .into_iter()
        .any(|s| s.abstract_name.as_deref() == Some(&procfs::proc_form(&trailing)[..]));
    ensure(shown, || {
        "/proc/net/unix does not show the trailing NUL as '@'".into()
    })?;
    Ok("\"n\", \"n\\0\" and \"n\\0z\" bound at once; shown as @n, @n@, @n@z".into())
}

// ---------------------------------------------------------------- rule 9

fn types_do_not_collide() -> Result<String, Outcome> {
    let name = fresh("types");
    let _stream = bind_ok(&name)?;
    let mut others = Vec::new();
    for (ty, what) in [
        (SocketType::DGRAM, "datagram"),
        (SocketType::SEQPACKET, "seqpacket"),
    ] {
        let bound = bind(&name, ty)?;
        match bound {
            Ok(fd) => others.push(fd),
            Err(e) => return Err(fail(format!("{what} bind gave {e}"))),
        }
    }
    let again = bind(&name, SocketType::STREAM)?;
    ensure(matches!(again, Err(Errno::ADDRINUSE)), || {
        "second stream bind succeeded".into()
    })?;
    // SOCK_RAW is taken for SOCK_DGRAM (unix_create) and shares its table.
    let raw = bind(&name, SocketType::RAW)?;
    ensure(matches!(raw, Err(Errno::ADDRINUSE)), || {
        format!("SOCK_RAW bind gave {raw:?}, not EADDRINUSE against the datagram one")
    })?;
    Ok(
        "datagram and seqpacket sockets bound a name a stream socket holds; SOCK_RAW is SOCK_DGRAM"
            .into(),
    )
}

// ---------------------------------------------------------------- late releases (rule 1)

/// Polls until `name` is free, at most 5 s; how long it took.
fn until_free(name: &[u8]) -> Result<Duration, Outcome> {
    let t = Instant::now();
    while held(name)? {
        if t.elapsed() > Duration::from_secs(5) {
            return Err(fail("still bound 5 s after the last reference went"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(t.elapsed())
}

fn ptrace_exit_stop_delays() -> Result<String, Outcome> {
    let name = fresh("ptrace");
    let fd = listener(&name, 1)?;
    let mut child = spawn("cat", &[], Some(&fd))?;
    drop(fd);
    let pid = child.id() as libc::pid_t;
    // SAFETY: ptrace(2) with integer arguments only, on our own child.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            pid,
            0,
            libc::PTRACE_O_TRACEEXIT as libc::c_long,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        let _ = kill(&child, libc::SIGKILL);
        let _ = child.wait();
        return Err(Outcome::Skip(format!("ptrace not permitted here: {e}")));
    }
    // An ordinary exit: cat sees end of file.
    drop(child.stdin.take());
    let mut status = 0;
    // SAFETY: waitpid(2) on our child, into a local.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
    let exit_stop = rc == pid
        && libc::WIFSTOPPED(status)
        && status >> 8 == (libc::SIGTRAP | (libc::PTRACE_EVENT_EXIT << 8));
    let held_while_stopped = held(&name)?;
    // SAFETY: as above; lets the tracee finish its exit.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    let _ = child.wait();
    ensure(exit_stop, || {
        format!("no exit stop (waitpid status {status:#x})")
    })?;
    ensure(held_while_stopped, || {
        "the name was free while the holder was stopped at exit".into()
    })?;
    ensure_free(&name, "after the tracer let the holder finish its exit")?;
    Ok(
        "held while the exiting holder was stopped by PTRACE_O_TRACEEXIT; free once it went on"
            .into(),
    )
}

fn io_uring_fixed_file_delays() -> Result<String, Outcome> {
    let name = fresh("uring");
    let fd = listener(&name, 1)?;
    // struct io_uring_params is 120 bytes; zeroed asks for defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(2) writes at most sizeof(io_uring_params)
    // into `params`, which is that large.
    let ring = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if ring < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Outcome::Skip(format!(
            "io_uring unavailable here ({e}; see kernel.io_uring_disabled)"
        )));
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    let ring = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ring as i32) };
    let files = [fd.as_raw_fd()];
    const IORING_REGISTER_FILES: u32 = 2;
    // SAFETY: io_uring_register(2) reads `files.len()` descriptors from
    // `files`, which lives across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            IORING_REGISTER_FILES,
            files.as_ptr(),
            files.len() as u32,
        )
    };
    ensure(rc == 0, || {
        format!("IORING_REGISTER_FILES: {}", std::io::Error::last_os_error())
    })?;
    drop(fd);
    ensure_held(
        &name,
        "with the listener registered in the ring, its descriptor closed",
    )?;
    drop(ring);
    let at_once = held(&name)?;
    let later = until_free(&name)?;
    Ok(format!(
        "held by the ring after close(); after closing the ring: {}, free {} later",
        if at_once {
            "still bound"
        } else {
            "already free"
        },
        micros(later)
    ))
}

fn gc_cycle_delays() -> Result<String, Outcome> {
    let name = fresh("gc");
    let fd = listener(&name, 1)?;
    let (a, b) = socket_pair()?;
    // The listener and `b` itself, sent to `b`: a message nobody can
    // receive once `b` is closed, which keeps `b` alive, which keeps it.
    send_fds(&a, &[fd.as_fd(), b.as_fd()])?;
    drop(fd);
    drop(a);
    drop(b);
    let at_once = held(&name)?;
    let later = until_free(&name)?;
    Ok(format!(
        "after the last close: {}; freed by the collector {} later",
        if at_once {
            "still bound"
        } else {
            "already free"
        },
        micros(later)
    ))
}

// ---------------------------------------------------------------- rule 2, pidfd_getfd

fn pidfd_getfd_copies() -> Result<String, Outcome> {
    let name = fresh("getfd");
    let fd = listener(&name, 1)?;
    let number = fd.as_raw_fd();
    let mut child = spawn("cat", &[], Some(&fd))?;
    drop(fd);
    let end = |child: &mut Child| {
        let _ = kill(child, libc::SIGKILL);
        let _ = child.wait();
    };
    // /proc/PID/fd/N of a socket cannot be opened (ENXIO).
    let via_proc = std::fs::File::open(format!("/proc/{}/fd/{number}", child.id()));
    let pid = rustix::process::Pid::from_child(&child);
    let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(p) => p,
        Err(e) => {
            end(&mut child);
            return Err(Outcome::Skip(format!("pidfd_open: {e}")));
        }
    };
    // SAFETY: pidfd_getfd(2) takes integers and returns a new descriptor.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), number, 0) };
    if copy < 0 {
        let e = std::io::Error::last_os_error();
        end(&mut child);
        return Err(Outcome::Skip(format!(
            "pidfd_getfd not permitted here: {e}"
        )));
    }
    // SAFETY: a new descriptor of ours that nothing else owns.
    let copy = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(copy as i32) };
    end(&mut child);
    ensure(
        via_proc
            .as_ref()
            .err()
            .and_then(std::io::Error::raw_os_error)
            == Some(libc::ENXIO),
        || format!("opening /proc/PID/fd/N gave {via_proc:?}"),
    )?;
    ensure_held(
        &name,
        "after the holder died, its socket copied by pidfd_getfd",
    )?;
    drop(copy);
    ensure_free(&name, "after the copy was closed")?;
    Ok("a copy taken with pidfd_getfd kept the name after SIGKILL of the holder; /proc/PID/fd gave ENXIO".into())
}

fn clone_files_shares_one_table() -> Result<String, Outcome> {
    let name = fresh("clone-files");
    let fd = listener(&name, 1)?;
    // SAFETY: clone(2) with CLONE_FILES and no new stack: like fork, the
    // child runs on a copy of our memory. It makes only raw system calls
    // (pause, _exit) before it dies, touching no lock and no allocator.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_FILES | libc::SIGCHLD,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: async-signal-safe calls only, in the child.
        unsafe {
            libc::pause();
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return Err(fail(format!("clone: {}", std::io::Error::last_os_error())));
    }
    let pid = pid as libc::pid_t;
    drop(fd);
    let free_while_child_lives = !held(&name)?;
    // SAFETY: kill(2) and waitpid(2) on our own unreaped child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    ensure(free_while_child_lives, || {
        "the name stayed bound: the child's table was a copy".into()
    })?;
    Ok("our close freed the name while the CLONE_FILES child, sharing the table, still ran".into())
}

fn in_flight_dropped_with_the_queue() -> Result<String, Outcome> {
    let name = fresh("in-flight");
    let fd = listener(&name, 1)?;
    let (a, b) = socket_pair()?;
    send_fds(&a, &[fd.as_fd()])?;
    drop(fd);
    drop(a);
    ensure_held(&name, "with its only descriptor in flight")?;
    drop(b);
    let at_once = !held(&name)?;
    let later = until_free(&name)?;
    Ok(if at_once {
        "free when the receiver closed with the message unread".into()
    } else {
        format!("free {} after the receiver closed unread", micros(later))
    })
}

// ---------------------------------------------------------------- rule 3, creation

fn netns_of_creation() -> Result<String, Outcome> {
    let name = fresh("netns-creation");
    let probe = name.clone();
    // netns is per thread: this thread moves to a new one after creating
    // a socket, then binds it, and binds a socket created there too.
    let (outside, inside) = ctx(
        std::thread::spawn(move || -> Result<(OwnedFd, OwnedFd), Outcome> {
            let early = socket(SocketType::STREAM)?;
            // SAFETY: a new network namespace for this thread only; no
            // Rust invariant depends on it.
            let moved =
                unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) };
            ctx(moved, "unshare(CLONE_NEWNET)")?;
            ctx(
                net::bind(&early, &addr(&probe)?),
                "binding the early socket",
            )?;
            let late = socket(SocketType::STREAM)?;
            ctx(
                net::bind(&late, &addr(&probe)?),
                "binding a socket of the new namespace",
            )?;
            Ok((early, late))
        })
        .join()
        .map_err(|_| fail("the namespace thread panicked")),
        "thread",
    )??;
    ensure_held(&name, "here, though bound by a thread in another namespace")?;
    drop(outside);
    ensure_free(&name, "after closing the socket created here")?;
    drop(inside);
    Ok("a socket created here and bound after unshare(CLONE_NEWNET) took the name here; one created there bound the same name there".into())
}

// ---------------------------------------------------------------- rule 6, accepted

fn accepted_connection_does_not_hold() -> Result<String, Outcome> {
    let name = fresh("accepted");
    let l = listener(&name, 4)?;
    let conn = connect(&name)?.map_err(|e| fail(format!("connect: {e}")))?;
    let accepted = ctx(net::accept(&l), "accept")?;
    drop(l);
    ensure_free(&name, "with an accepted connection open")?;
    let quiet = !ctx(sys::wait_event(conn.as_fd(), Some(Instant::now())), "poll")?;
    drop(accepted);
    let told = ctx(
        sys::wait_event(conn.as_fd(), Some(Instant::now() + Duration::from_secs(5))),
        "poll",
    )?;
    ensure(quiet, || {
        "the waiter had an event while its accepted end was open".into()
    })?;
    ensure(told, || "no event after the accepted end closed".into())?;
    Ok("free after the listener closed, though the accepted end was open; its waiter woke only when that closed".into())
}
