//! The RAII guard that owns a held lock.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::SocketFlags;

use crate::error::{Error, Result};
use crate::name::LockName;
use crate::procfs::{self, ProcessInfo};
use crate::sys;

/// The environment variable [`Guard::pass_to`] sets in the child: the number
/// of the inherited descriptor of the lock's socket.
pub const FD_ENV: &str = "ABSLOCK_FD";

/// Connections the drain thread keeps open at most. Each is a waiter (or a
/// client that has not hung up yet); past this, new ones stay in the backlog,
/// where they still see the release.
const MAX_KEPT: usize = 1024;

/// A held lock. Dropping it (or [`Guard::release`]) closes the socket, and
/// the kernel frees the name once no other process has it open.
///
/// The socket is created with `SOCK_CLOEXEC`: programs this process execs do
/// not inherit the lock unless [`Guard::pass_to`] or [`Guard::into_fd`] says
/// so. A plain `fork(2)` child does inherit it (descriptors are copied), and
/// then the name lives until both have closed it.
///
/// While the guard lives, a background thread accepts connections to the
/// lock's socket and keeps them until release, so that the backlog never
/// fills: status queries get through, and waiters are woken by the hang-up
/// when the lock goes.
#[derive(Debug)]
pub struct Guard {
    name: LockName,
    socket: Arc<OwnedFd>,
    drain: Option<Drain>,
}

#[derive(Debug)]
struct Drain {
    stop: OwnedFd,
    thread: JoinHandle<()>,
    /// Only the process that started the thread may stop it: a `fork(2)`
    /// child has a copy of this guard but not the thread.
    owner: u32,
}

impl Guard {
    pub(crate) fn new(name: LockName, socket: OwnedFd) -> Result<Guard> {
        let socket = Arc::new(socket);
        let (wake, stop) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| Error::io("creating the drain thread's pipe")(e.into()))?;
        let listener = Arc::clone(&socket);
        let thread = std::thread::Builder::new()
            .name("abslock-drain".into())
            .stack_size(64 * 1024)
            .spawn(move || drain(&listener, &wake))
            .map_err(Error::io("starting the drain thread"))?;
        Ok(Guard {
            name,
            socket,
            drain: Some(Drain {
                stop,
                thread,
                owner: std::process::id(),
            }),
        })
    }

    /// The name of the held lock.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// The inode number of the lock's socket, as `/proc/net/unix`,
    /// `/proc/PID/fd` and `ss -xp` show it.
    ///
    /// # Errors
    /// If `fstat(2)` fails.
    pub fn inode(&self) -> Result<u64> {
        sys::inode(self.as_fd()).map_err(Error::io("fstat on the lock socket"))
    }

    /// Every process that has the lock's socket open (this one, and any
    /// child that inherited it), with `/proc` details.
    ///
    /// # Errors
    /// If `fstat(2)` on the socket fails.
    pub fn processes(&self) -> Result<Vec<ProcessInfo>> {
        let inode = self.inode()?;
        Ok(procfs::process_infos(
            procfs::processes_holding(&[inode])
                .into_iter()
                .map(|(pid, _)| pid),
        ))
    }

    /// Lets the program `command` spawns inherit the lock: the child keeps
    /// the lock's socket at the same descriptor number, without
    /// close-on-exec, and finds that number in [`FD_ENV`]. The name then
    /// stays bound until this guard *and* the child (with every descendant
    /// that kept the descriptor) have closed it.
    ///
    /// `command` holds a reference to the socket until it is dropped, so
    /// drop it after spawning. The descriptor is non-blocking, as the guard
    /// uses it.
    pub fn pass_to(&self, command: &mut Command) {
        let socket = Arc::clone(&self.socket);
        let raw = socket.as_raw_fd();
        command.env(FD_ENV, raw.to_string());
        // SAFETY: the closure runs between fork and exec and only calls
        // fcntl(2), which is async-signal-safe; it captures the Arc so the
        // descriptor number stays valid while the Command lives.
        unsafe {
            command.pre_exec(move || {
                let keep = &socket;
                sys::clear_cloexec_in_child(keep.as_raw_fd())
            });
        }
    }

    /// Gives up the guard and returns the lock's socket as an inheritable,
    /// blocking descriptor, for a process that is about to `exec` the
    /// program that should hold the lock (like `flock -F`). Nobody drains the
    /// backlog after this: once it is full, clients fall back to polling.
    ///
    /// # Errors
    /// If `fcntl(2)` or `dup(2)` fails.
    pub fn into_fd(mut self) -> Result<OwnedFd> {
        self.stop_drain();
        let socket = Arc::clone(&self.socket);
        drop(self);
        let fd = Arc::try_unwrap(socket)
            .or_else(|shared| shared.try_clone())
            .map_err(Error::io("duplicating the lock socket"))?;
        sys::set_cloexec(fd.as_fd(), false).map_err(Error::io("clearing close-on-exec"))?;
        sys::set_blocking(fd.as_fd()).map_err(Error::io("clearing O_NONBLOCK"))?;
        Ok(fd)
    }

    /// Releases the lock now: stops the drain thread, closes every kept
    /// connection (waking the waiters) and the socket.
    pub fn release(self) {
        drop(self);
    }

    fn stop_drain(&mut self) {
        if let Some(drain) = self.drain.take() {
            if drain.owner != std::process::id() {
                return;
            }
            // A byte, not a close: a fork child may hold a copy of the
            // pipe's write end, and then closing ours would not wake anyone.
            if rustix::io::write(&drain.stop, &[1]).is_ok() {
                let _ = drain.thread.join();
            }
        }
    }
}

impl AsFd for Guard {
    /// The lock's socket.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop_drain();
    }
}

/// The drain thread: accepts every connection, keeps it until the peer
/// hangs up or the guard is released, and discards whatever it sends.
fn drain(listener: &OwnedFd, stop: &OwnedFd) {
    let mut kept: Vec<OwnedFd> = Vec::new();
    let mut paused_until: Option<std::time::Instant> = None;
    loop {
        let now = std::time::Instant::now();
        let accepting = kept.len() < MAX_KEPT && paused_until.is_none_or(|t| now >= t);
        let mut fds = Vec::with_capacity(kept.len() + 2);
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
            kept.iter()
                .map(|c| PollFd::new(c, PollFlags::IN | PollFlags::RDHUP)),
        );
        let deadline = (!accepting).then_some(paused_until).flatten();
        if sys::poll_many(&mut fds, deadline).is_err() {
            return;
        }
        if !fds[0].revents().is_empty() {
            return;
        }
        let listener_ready = fds[1].revents().contains(PollFlags::IN);
        let gone: Vec<usize> = fds[2..]
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.revents().is_empty())
            .map(|(i, _)| i)
            .collect();
        drop(fds);
        for i in gone.into_iter().rev() {
            if !drain_input(&kept[i]) {
                kept.swap_remove(i);
            }
        }
        if listener_ready {
            while kept.len() < MAX_KEPT {
                match rustix::net::accept_with(
                    listener,
                    SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                ) {
                    Ok(conn) => kept.push(conn),
                    Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::CONNABORTED) => break,
                    Err(_) => {
                        // EMFILE and friends: the connection stays queued and
                        // the listener stays readable; pause instead of spinning.
                        paused_until =
                            Some(std::time::Instant::now() + std::time::Duration::from_millis(100));
                        break;
                    }
                }
            }
        }
    }
}

/// Reads and discards what a kept connection sent; false once it hung up.
fn drain_input(conn: &OwnedFd) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match rustix::io::read(conn, &mut buf) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(Errno::AGAIN) => return true,
            Err(Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}
