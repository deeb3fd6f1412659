//! `abslock lock`, `abslock unlock`: hold a lock for the rest of a script,
//! in one line, as flock's fd form does.
//!
//! * `--fd N` is flock's fd form itself: `exec 9>/run/job/lock; abslock
//!   lock -n --fd 9`. The flock(2) lock belongs to the open file the shell
//!   made, so it lasts until the shell and every process that inherited
//!   descriptor 9 have closed it, however they end; `abslock unlock --fd 9`
//!   releases it early.
//! * `NAME` (any backend but a cluster one): a shell cannot hold a socket,
//!   so a keeper process takes the lock and holds it until the calling
//!   script exits, however it ends (it watches the script through a
//!   pidfd, so SIGKILL counts too). Processes the script leaves behind do
//!   not keep it; `abslock kill NAME` releases it early.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use abslock::__private::procfs;
use abslock::{AnyLock, Backend, Error};
use rustix::fs::FlockOperation;
use rustix::process::{getppid, pidfd_open, PidfdFlags};

use crate::cli::{LockArgs, UnlockArgs};
use crate::exit::{self, Failure};
use crate::report::{describe_holder, HELD_FOR};
use crate::target::shared_if;

/// Runs `abslock lock`.
pub fn lock(args: &LockArgs) -> Result<u8, Failure> {
    match (&args.lock, args.fd) {
        (_, Some(fd)) => lock_fd(args, fd),
        (Some(name), None) => {
            if name.backend.is_some() {
                return Err(Failure::new(
                    exit::USAGE,
                    "abslock lock NAME takes local locks only; for a cluster lock use the \
                     self-lock idiom: abslock held --backend URL NAME || exec abslock run ...",
                ));
            }
            keep(args, shared_if(name.lock()?, args.acquire.shared)?)
        }
        (None, None) => Err(Failure::new(exit::USAGE, "give NAME or --fd N")),
    }
}

/// Runs `abslock unlock --fd N`.
pub fn unlock(args: &UnlockArgs) -> Result<u8, Failure> {
    let fd = inherited(args.fd)?;
    rustix::fs::flock(fd, FlockOperation::Unlock).map_err(|e| {
        Failure::new(
            exit::OSERR,
            format!("unlocking descriptor {}: {e}", args.fd),
        )
    })?;
    Ok(exit::OK)
}

/// The caller's descriptor `fd`, if it is open.
fn inherited(fd: i32) -> Result<BorrowedFd<'static>, Failure> {
    if fd < 0 {
        return Err(Failure::new(
            exit::USAGE,
            format!("--fd {fd}: not a descriptor"),
        ));
    }
    // SAFETY: `fd` is only used for the duration of this process and never
    // closed by us; fcntl(F_GETFD) below proves it is open. A descriptor the
    // caller passed us stays open until we exit.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(borrowed).map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("--fd {fd}: {e}; open the lock file on it first, e.g. exec {fd}>/run/job/lock"),
        )
    })?;
    Ok(borrowed)
}

/// flock(2) on the shell's descriptor, waiting as `-n`/`-w` say (a timed
/// wait is woken by the kernel when the holder closes the file).
fn lock_fd(args: &LockArgs, raw: i32) -> Result<u8, Failure> {
    let fd = inherited(raw)?;
    let timeout = if args.acquire.nonblocking() {
        Some(Duration::ZERO)
    } else {
        args.acquire.timeout
    };
    let locked = abslock::__private::flock_timeout(fd, args.acquire.shared, timeout)
        .map_err(|e| Failure::new(exit::OSERR, format!("locking descriptor {raw}: {e}")))?;
    if locked {
        return Ok(exit::OK);
    }
    if args.talk.verbose() {
        eprintln!("abslock: descriptor {raw} is locked{}", holder_of(fd));
    }
    Ok(args.acquire.conflict_exit_code)
}

/// ` by pid N (uid U)` for the file open on `fd`, from /proc/locks.
fn holder_of(fd: BorrowedFd<'_>) -> String {
    let Ok(stat) = rustix::fs::fstat(fd) else {
        return String::new();
    };
    procfs::locks_on(stat.st_dev, stat.st_ino)
        .ok()
        .and_then(|locks| locks.into_iter().find_map(|l| l.pid))
        .map_or_else(String::new, |pid| format!(" by pid {pid}"))
}

/// The script: our parent, as a pidfd taken before it could go.
fn script() -> Result<(u32, OwnedFd), Failure> {
    let gone = || Failure::new(exit::OSERR, "the calling process is gone");
    let parent = getppid().ok_or_else(gone)?;
    let pidfd = pidfd_open(parent, PidfdFlags::empty())
        .map_err(|e| exit::system("watching the calling process", e))?;
    // Reparented between getppid and pidfd_open: the pidfd may name
    // whoever reused the pid.
    if getppid() != Some(parent) {
        return Err(gone());
    }
    Ok((parent.as_raw_nonzero().get().unsigned_abs(), pidfd))
}

/// Takes `lock` in a keeper process that holds it until the script exits;
/// returns the exit status for the script (0: held).
fn keep(args: &LockArgs, lock: AnyLock) -> Result<u8, Failure> {
    let (script_pid, script_fd) = script()?;
    let (report_read, report_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| exit::system("creating a pipe", e))?;
    // SAFETY: abslock is single-threaded here (nothing has started a
    // thread yet: no guard exists), so the child may run any code.
    match unsafe { libc::fork() } {
        -1 => Err(exit::system(
            "starting the keeper",
            std::io::Error::last_os_error(),
        )),
        0 => {
            drop(report_read);
            let code = keeper(args, &lock, script_pid, script_fd, report_write);
            std::process::exit(i32::from(code));
        }
        _ => {
            drop(report_write);
            drop(script_fd);
            // The keeper writes one byte: the status for the script.
            let mut code = [exit::OSERR];
            match rustix::io::read(&report_read, &mut code) {
                Ok(1) => Ok(code[0]),
                _ => Err(Failure::new(
                    exit::OSERR,
                    "the keeper died before taking the lock",
                )),
            }
        }
    }
}

/// The keeper: take the lock, report, hold it until the script exits.
fn keeper(
    args: &LockArgs,
    lock: &AnyLock,
    script_pid: u32,
    script: OwnedFd,
    report: OwnedFd,
) -> u8 {
    let _ = rustix::process::setsid();
    let nonblock = args.acquire.nonblocking();
    let acquired = if nonblock {
        lock.try_acquire()
    } else {
        crate::timed::acquire(lock, args.acquire.timeout)
    };
    let guard = match acquired {
        Ok(guard) => guard,
        Err(e) => {
            let code = match e {
                Error::Held(_) | Error::Timeout(_) => {
                    if args.talk.verbose() {
                        let who = e.holder().map_or_else(|| "?".into(), describe_holder);
                        eprintln!("abslock: {lock} is held by {who}");
                    }
                    args.acquire.conflict_exit_code
                }
                e => {
                    let failure = Failure::from(e);
                    eprintln!("abslock: {failure}");
                    failure.code
                }
            };
            let _ = rustix::io::write(&report, &[code]);
            return code;
        }
    };
    if let Some(socket) = guard.socket() {
        socket.set_version(concat!("abslock-lock ", env!("CARGO_PKG_VERSION")));
        let command =
            abslock::ProcessInfo::of(script_pid).map_or_else(|_| "?".into(), |p| p.command());
        socket.set_metadata(HELD_FOR, format!("pid {script_pid}: {command}"));
    }
    // Out of the script's way: no terminal, no pipe held open.
    detach_stdio();
    let _ = rustix::io::write(&report, &[exit::OK]);
    drop(report);
    // Until the script exits (its pidfd polls readable), or a stop
    // request comes.
    let requests = guard.socket().map(abslock::Guard::requests);
    let stop = std::thread::spawn(move || {
        for request in requests.into_iter().flatten() {
            if let abslock::Incoming::Stop(stop) = request {
                stop.accept();
                return;
            }
        }
        std::thread::park();
    });
    while !stop.is_finished() {
        let mut fds = [rustix::event::PollFd::new(
            &script,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        if matches!(rustix::event::poll(&mut fds, Some(&timeout)), Ok(n) if n > 0) {
            break;
        }
    }
    drop(guard);
    exit::OK
}

fn detach_stdio() {
    if let Ok(null) = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
}
