//! The deadline keeper: a process of its own that SIGKILLs the command at
//! a cluster lock's local deadline even while abslock cannot run.
//!
//! abslock's own deadline thread stops with abslock: a SIGSTOP, a
//! debugger, a VM that freezes one process's threads. Meanwhile an etcd
//! lease expires, another client takes the lock, and the command abslock
//! started runs on beside it. So for a lock with a deadline
//! (`abslock::AnyGuard::deadline_fd`), `run` starts
//! `abslock __keep-deadline PIDFD DEADLINE PARENT` ([`KEEPER`]) beside the
//! command. It sleeps until the moment the deadline's memfd holds, reads
//! it again (each renewal the engine confirms moves it later), and once it
//! has passed sends SIGKILL through the command's pidfd: the very process
//! abslock started, never a reused pid (and exits [`KILLED`], for abslock
//! to say so). It exits when abslock closes its
//! end of the pipe `PARENT` (the command has ended, or abslock has), and
//! dies with abslock (`PR_SET_PDEATHSIG`). A signal sent to the whole
//! process group (`kill -STOP -PGID`, a terminal's ^Z, ^C) reaches the
//! keeper as well: it leaves ^C and ^\ pending, and a stopped group stops
//! the command too.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal as NixSignal};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_send_signal, Signal};

use crate::exit;
use crate::supervise::spawn::{self, Spawn};

/// The hidden first argument that makes abslock the deadline keeper.
pub const KEEPER: &str = "__keep-deadline";

/// The keeper's exit status when it sent SIGKILL: abslock says so.
const KILLED: u8 = 9;

/// A running keeper: the pipe whose closing ends it, and its pid.
pub struct Keeper {
    parent: Option<OwnedFd>,
    pid: u32,
}

/// Starts the keeper of `command`'s `deadline` (module docs).
///
/// # Errors
/// Why the pipe or the process could not be made.
pub fn start(command: BorrowedFd<'_>, deadline: BorrowedFd<'_>) -> std::io::Result<Keeper> {
    let (theirs, ours) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let number = |fd: BorrowedFd<'_>| {
        use std::os::fd::AsRawFd;
        OsString::from(fd.as_raw_fd().to_string())
    };
    let mut spawn = Spawn::new(
        "/proc/self/exe",
        vec![
            "abslock".into(),
            KEEPER.into(),
            number(command),
            number(deadline),
            number(theirs.as_fd()),
        ],
    );
    spawn.keep(command).keep(deadline).keep(theirs.as_fd());
    let pid = spawn.spawn()?;
    Ok(Keeper {
        parent: Some(ours),
        pid,
    })
}

impl Keeper {
    /// Ends the keeper (once the command has ended) and says whether it
    /// had sent the command SIGKILL.
    pub fn finish(mut self) -> bool {
        self.end()
    }

    fn end(&mut self) -> bool {
        match self.parent.take() {
            Some(parent) => {
                drop(parent);
                spawn::wait(self.pid).is_ok_and(|s| s.code() == Some(i32::from(KILLED)))
            }
            None => false,
        }
    }
}

impl Drop for Keeper {
    /// Closes our end of the pipe, which ends the keeper, and reaps it.
    fn drop(&mut self) {
        self.end();
    }
}

/// The keeper process: `args` are the three descriptor numbers.
pub fn keeper(mut args: impl Iterator<Item = OsString>) -> u8 {
    let mut fd = || {
        args.next()
            .and_then(|a| a.to_str()?.parse::<RawFd>().ok())
            .and_then(inherited)
    };
    let (Some(command), Some(deadline), Some(parent)) = (fd(), fd(), fd()) else {
        eprintln!("abslock: {KEEPER} is abslock's own: it expects three open descriptors");
        return exit::USAGE;
    };
    // Left pending, never delivered: a ^C for the group is abslock's to
    // pass on, and the keeper must outlive it.
    let mut terminal = SigSet::empty();
    for signal in [NixSignal::SIGINT, NixSignal::SIGQUIT, NixSignal::SIGHUP] {
        terminal.add(signal);
    }
    let _ = terminal.thread_block();
    loop {
        let Ok(kill_at) = abslock::__private::read_deadline(deadline.as_fd()) else {
            return exit::OSERR;
        };
        let now = abslock::__private::monotonic_ns();
        if now >= kill_at {
            let _ = pidfd_send_signal(&command, Signal::KILL);
            return KILLED;
        }
        let timeout = crate::supervise::child::timespec(Duration::from_nanos(kill_at - now));
        let mut fds = [PollFd::new(&parent, PollFlags::IN)];
        // Readable or hung up: abslock has let go of the command.
        if poll(&mut fds, Some(&timeout)).is_ok_and(|n| n > 0) {
            return 0;
        }
    }
}

/// `raw` as a descriptor of ours, if it is open.
fn inherited(raw: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD reads the flags of any number; EBADF if not open.
    let open = unsafe { libc::fcntl(raw, libc::F_GETFD) } >= 0;
    // SAFETY: it is open, and abslock kept it for this process alone
    // (`start`): nothing else here owns or closes it.
    open.then(|| unsafe { OwnedFd::from_raw_fd(raw) })
}
