//! Thin wrappers over the system calls std and rustix lack. All `unsafe`
//! of the crate lives here (and in the `semantics` experiments): the
//! crate root denies `unsafe_code` everywhere else.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Instant;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{
    bind, connect, listen, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType,
};

/// `SO_PEERPIDFD` (Linux 6.5): not yet exported by `libc` 0.2 nor `rustix`.
/// Its value is 77 on every architecture but SPARC.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_PEERPIDFD: libc::c_int = 77;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_PEERPIDFD: libc::c_int = 0x56;

/// The outcome of connecting to an abstract address.
pub(crate) enum Connect {
    /// A listener took the connection (it is in its backlog, or accepted).
    Connected(OwnedFd),
    /// Nothing listens: the name is free, or bound by a socket that never
    /// called `listen(2)` (ECONNREFUSED).
    Refused,
    /// The listener's backlog is full (EAGAIN on a non-blocking connect).
    BacklogFull,
}

/// The outcome of `bind(2)` on an abstract address.
pub(crate) enum Bind {
    /// The name is ours; the socket is bound but not yet listening.
    Bound(OwnedFd),
    /// EADDRINUSE: another socket is bound to the name.
    InUse,
}

fn addr(address: &[u8]) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new_abstract_name(address)?)
}

fn unix_stream(flags: SocketFlags) -> io::Result<OwnedFd> {
    Ok(socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | flags,
        None,
    )?)
}

/// Creates a close-on-exec, non-blocking stream socket and binds it to the
/// abstract `address`.
pub(crate) fn bind_abstract(address: &[u8]) -> io::Result<Bind> {
    bind_abstract_as(address, SocketType::STREAM)
}

/// [`bind_abstract`] with a socket of type `kind`: each type has its own
/// abstract namespace (rule 9), so a name is only fully ours once bound in
/// every type.
pub(crate) fn bind_abstract_as(address: &[u8], kind: SocketType) -> io::Result<Bind> {
    let fd = socket_with(
        AddressFamily::UNIX,
        kind,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    match bind(&fd, &addr(address)?) {
        Ok(()) => Ok(Bind::Bound(fd)),
        Err(Errno::ADDRINUSE) => Ok(Bind::InUse),
        Err(e) => Err(e.into()),
    }
}

/// `listen(2)` with the given backlog.
pub(crate) fn listen_on(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    Ok(listen(fd, backlog)?)
}

/// Connects a new close-on-exec socket to `address` without blocking.
pub(crate) fn connect_abstract(address: &[u8]) -> io::Result<Connect> {
    let fd = unix_stream(SocketFlags::NONBLOCK)?;
    match connect(&fd, &addr(address)?) {
        Ok(()) => Ok(Connect::Connected(fd)),
        Err(Errno::CONNREFUSED) | Err(Errno::NOENT) => Ok(Connect::Refused),
        Err(Errno::AGAIN) => Ok(Connect::BacklogFull),
        Err(e) => Err(e.into()),
    }
}

/// The peer's credentials from `SO_PEERCRED`: for a client, those of the
/// process that called `listen(2)` on the other side, captured at that time.
/// A socket option the kernel writes as one `T` (`getsockopt(2)`); an
/// answer of another size is an error.
///
/// # Safety
/// Every bit pattern the kernel may write for `option` must be a valid `T`
/// (plain integers and structs of them).
unsafe fn getsockopt<T>(fd: BorrowedFd<'_>, option: libc::c_int) -> io::Result<T> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable memory of `len` bytes; `fd` is a valid
    // open descriptor.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != size_of::<T>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "getsockopt({option}) returned {len} bytes, not {}",
                size_of::<T>()
            ),
        ));
    }
    // SAFETY: zero-initialised and filled by the kernel (checked above);
    // the caller promises any bit pattern is a valid `T`.
    Ok(unsafe { value.assume_init() })
}

/// A pid of 0 means the peer's pid is not visible in our pid namespace.
///
/// Not `rustix::net::sockopt::socket_peercred`: its `UCred` holds the pid as a
/// non-zero type, which the kernel's 0 for an invisible pid would violate.
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<libc::ucred> {
    // SAFETY: a `ucred` is three integers: every bit pattern is valid.
    unsafe { getsockopt::<libc::ucred>(fd, libc::SO_PEERCRED) }
}

/// A pidfd for the peer's process from `SO_PEERPIDFD` (Linux 6.5). The
/// kernel takes it from the socket's own reference to the peer's `struct
/// pid`, so it can never name a process that merely reused the pid.
pub(crate) fn peer_pidfd(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: a c_int: every bit pattern is valid.
    let pidfd = unsafe { getsockopt::<libc::c_int>(fd, SO_PEERPIDFD) }?;
    if pidfd < 0 {
        return Err(io::Error::other("SO_PEERPIDFD returned no descriptor"));
    }
    // SAFETY: on success the kernel installed a new descriptor in our table
    // and handed its ownership to us; nothing else refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(pidfd) })
}

/// Lets the program `command` starts inherit the descriptors `fds` at the
/// same numbers: their close-on-exec flag is cleared in the child, between
/// `fork` and `exec`, and only there. `owner` keeps them open: the
/// command holds it until it is dropped, so the numbers stay valid.
pub(crate) fn inherit_across_exec(
    command: &mut std::process::Command,
    fds: Vec<std::os::fd::RawFd>,
    owner: impl Send + Sync + 'static,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls
    // fcntl(2), which is async-signal-safe; it owns `owner`, so the
    // descriptor numbers stay valid while the Command lives.
    unsafe {
        command.pre_exec(move || {
            let _keep = &owner;
            for &fd in &fds {
                clear_cloexec_in_child(fd)?;
            }
            Ok(())
        });
    }
}

/// Waits until `fd` has any event (readable, hang-up, error) or `deadline`
/// passes; returns whether an event arrived. Restarts after EINTR, unless
/// inside [`crate::interrupt::interruptible`].
pub(crate) fn wait_event(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<bool> {
    let mut fds = [PollFd::new(&fd, PollFlags::IN | PollFlags::RDHUP)];
    Ok(poll_many(&mut fds, deadline)? > 0)
}

pub(crate) fn timespec(d: std::time::Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Waits until any of `fds` has an event, or `deadline`; returns the number
/// of descriptors with events (0 on timeout; with no descriptors, a
/// sleep). Restarts after EINTR, unless inside
/// [`crate::interrupt::interruptible`].
pub(crate) fn poll_many(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> io::Result<usize> {
    loop {
        let timeout = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
        match poll(fds, timeout.as_ref()) {
            Err(Errno::INTR) if crate::interrupt::restarts() => continue,
            other => return Ok(other?),
        }
    }
}

/// Sets or clears close-on-exec.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = if on {
        rustix::io::FdFlags::CLOEXEC
    } else {
        rustix::io::FdFlags::empty()
    };
    Ok(rustix::io::fcntl_setfd(fd, flags)?)
}

/// Clears `O_NONBLOCK`, for a listener handed to a program that may block in
/// `accept(2)` on it.
pub(crate) fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    Ok(rustix::fs::fcntl_setfl(
        fd,
        flags - rustix::fs::OFlags::NONBLOCK,
    )?)
}

/// The inode number of a socket, as `/proc/net/unix` and `/proc/PID/fd`
/// show it.
pub(crate) fn inode(fd: impl AsFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_ino)
}

/// Whether the file open at `fd` is open for writing in no other open
/// file description: a write lease (`fcntl(2)`, `F_SETLEASE`) can be taken
/// only then (`check_conflicting_open` in fs/locks.c), and is dropped at
/// once. `false` too where a lease cannot be had (not the file's owner,
/// leases disabled): the caller then assumes others have it open.
pub(crate) fn alone_writing(fd: BorrowedFd<'_>) -> bool {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl with integer arguments on a descriptor we borrow; no
    // memory is passed.
    let taken = unsafe { libc::fcntl(raw, libc::F_SETLEASE, libc::F_WRLCK) } == 0;
    if taken {
        // SAFETY: as above.
        unsafe { libc::fcntl(raw, libc::F_SETLEASE, libc::F_UNLCK) };
    }
    taken
}

/// Clears close-on-exec on `raw` in a child between `fork` and `exec`.
///
/// # Safety
/// Must only run in the child of a `fork`, as `CommandExt::pre_exec`
/// requires: `fcntl` is async-signal-safe and nothing here allocates.
pub(crate) unsafe fn clear_cloexec_in_child(raw: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl on an integer descriptor has no memory-safety
    // preconditions; a stale number yields EBADF, which we report.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A real-time signal (`raw` within libc's `SIGRTMIN..=SIGRTMAX`) as a
/// rustix `Signal`, which rustix builds only unchecked.
pub(crate) fn rt_signal(raw: i32) -> Option<rustix::process::Signal> {
    if !(libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&raw) {
        return None;
    }
    // SAFETY: `raw` is a valid, non-zero signal number (checked just
    // above). rustix's caveat for libc's real-time range is about using such
    // a signal inside this process (handlers, masks) where libc may own
    // it; we only send it to another process with pidfd_send_signal(2),
    // as kill(1) does.
    Some(unsafe { rustix::process::Signal::from_raw_unchecked(raw) })
}

/// Blocks every signal in the calling thread: the library's own threads
/// must not take process-directed signals meant for the application (a
/// program that waits for SIGTERM with `signalfd(2)` blocks it in its own
/// threads only; the kernel would otherwise deliver it to ours, where the
/// default action kills the process).
pub fn block_signals_in_this_thread() {
    let mut all = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the set it is given; pthread_sigmask
    // reads that initialised set and changes only this thread's mask.
    unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, all.as_ptr(), std::ptr::null_mut());
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `Instant` reads on Linux,
/// the same in every process of the host (outside time namespaces).
///
/// Through the C library, not rustix: rustix finds the vDSO itself from
/// the auxiliary vector, and under valgrind, which C users of libabslock
/// run their programs in, that read faults (rustix issue 1559).
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for clock_gettime to fill; with a
    // clock every Linux has, it cannot fail (it would leave `t` zero).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

/// The kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit
/// of `/proc/PID/stat`'s times; 0 if unknown. Through the C library for
/// the reason [`monotonic_ns`] gives.
pub(crate) fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).unwrap_or(0)
}

/// Starts `builder`'s thread with every signal blocked in it before `work`
/// runs (see [`block_signals_in_this_thread`]).
pub(crate) fn spawn_blocking_signals<T: Send + 'static>(
    builder: std::thread::Builder,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<std::thread::JoinHandle<T>> {
    builder.spawn(move || {
        block_signals_in_this_thread();
        work()
    })
}

/// This process's pid, cached: acquiring and releasing a served lock would
/// otherwise call getpid(2) three times, a tenth of the whole cost
/// (BENCHMARKS.md, section 1). The cache is cleared in the child of every
/// `fork(2)` by a `pthread_atfork(3)` handler, so a forked process never
/// sees its parent's pid; `posix_spawn` and `vfork` children run no Rust
/// code before their exec.
pub(crate) fn pid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Once;
    static PID: AtomicU32 = AtomicU32::new(0);
    static HOOK: Once = Once::new();
    extern "C" fn forget_in_child() {
        // An atomic store: async-signal-safe, as a fork child requires.
        PID.store(0, Ordering::Relaxed);
    }
    HOOK.call_once(|| {
        // SAFETY: registers a handler with no preconditions of its own: a
        // valid `extern "C" fn()` that only stores to an atomic. Handlers
        // cannot be unregistered, and this one stays valid for the life of
        // the process (it is a static function).
        unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
    });
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fork_child_sees_its_own_pid_not_the_cached_one() {
        let parent = super::pid();
        assert_eq!(parent, std::process::id());
        // SAFETY: the child calls only getpid(2), atomic loads and stores
        // and _exit(2), all safe after a fork of a threaded process.
        let child = unsafe { libc::fork() };
        if child == 0 {
            let pid = super::pid();
            let ok = pid == std::process::id() && pid != parent;
            // SAFETY: ends the child at once, running no destructors.
            unsafe { libc::_exit(i32::from(!ok)) };
        }
        assert!(child > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child saw its parent's pid"
        );
    }
}
