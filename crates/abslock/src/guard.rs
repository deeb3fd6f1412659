//! The RAII guard that owns a held lock.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::access::Access;
use crate::error::{Error, Result};
use crate::name::LockName;
use crate::procfs::{self, ProcessInfo};
use crate::protocol::Info;
#[cfg(feature = "tokio")]
use crate::requests::Incoming;
use crate::requests::Requests;
use crate::serving::{self, Shared};
use crate::sys;

/// The environment variable [`Guard::pass_to`] sets in the child: the number
/// of the inherited descriptor of the lock's socket.
pub const FD_ENV: &str = "ABSLOCK_FD";

/// A held lock. Dropping it (or [`Guard::release`]) closes the socket, and
/// the kernel frees the name once no other process has it open.
///
/// The socket is created with `SOCK_CLOEXEC`: programs this process execs do
/// not inherit the lock unless [`Guard::pass_to`] or [`Guard::into_fd`] says
/// so. A plain `fork(2)` child does inherit it (descriptors are copied), and
/// then the name lives until both have closed it.
///
/// While the guard lives, the process's one serving thread serves the
/// lock's socket (`src/serving/`): it keeps waiters'
/// connections until release, so the backlog never fills and each waiter
/// is woken by the hang-up; it answers `info` requests with
/// [`Guard::info`]; and it hands messages and stop requests to the
/// application once [`Guard::requests`] was called. The thread is started
/// once per process, not per guard: taking and releasing a lock cost the
/// system calls and one `epoll_ctl` each.
#[derive(Debug)]
pub struct Guard {
    name: LockName,
    socket: Arc<OwnedFd>,
    /// For a raw name: the datagram and seqpacket sockets bound to it too.
    others: Arc<Vec<OwnedFd>>,
    shared: Arc<Shared>,
    server: Option<serving::Registration>,
    /// The connections the server kept, handed back on release; last, so
    /// that they close after `socket`.
    kept: Vec<OwnedFd>,
}

impl Guard {
    pub(crate) fn new(
        name: LockName,
        socket: OwnedFd,
        others: Vec<OwnedFd>,
        serving: bool,
    ) -> Result<Guard> {
        let socket = Arc::new(socket);
        let others = Arc::new(others);
        let info = Info {
            pid: crate::sys::pid(),
            uid: rustix::process::getuid().as_raw(),
            acquired_micros: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            name: name.address().to_vec(),
            version: String::new(),
            metadata: Vec::new(),
        };
        let shared = Arc::new(Shared::new(name.clone(), info));
        if !serving {
            return Ok(Guard {
                name,
                socket,
                others,
                shared,
                server: None,
                kept: Vec::new(),
            });
        }
        let server = serving::register(Arc::clone(&socket), Arc::clone(&shared))?;
        Ok(Guard {
            name,
            socket,
            others,
            shared,
            server: Some(server),
            kept: Vec::new(),
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
        command.env(FD_ENV, self.socket.as_raw_fd().to_string());
        let fds = self
            .inherited_fds()
            .iter()
            .map(AsRawFd::as_raw_fd)
            .collect();
        let owner = (Arc::clone(&self.socket), Arc::clone(&self.others));
        sys::inherit_across_exec(command, fds, owner);
    }

    /// The descriptors [`Guard::pass_to`] lets a child inherit, the one it
    /// names in [`FD_ENV`] first: for a program that starts its children
    /// without `Command` (and clears their close-on-exec flag itself).
    pub fn inherited_fds(&self) -> Vec<BorrowedFd<'_>> {
        std::iter::once(self.socket.as_fd())
            .chain(self.others.iter().map(AsFd::as_fd))
            .collect()
    }

    /// Gives up the guard and returns the lock's socket as an inheritable,
    /// blocking descriptor, for a process that is about to `exec` the
    /// program that should hold the lock (like `flock -F`). Nobody drains the
    /// backlog after this: once it is full, clients fall back to polling.
    ///
    /// # Errors
    /// If `fcntl(2)` or `dup(2)` fails.
    pub fn into_fd(self) -> Result<OwnedFd> {
        let mut fds = self.into_fds()?;
        Ok(fds.swap_remove(0))
    }

    /// [`Guard::into_fd`], plus, for a raw name, the datagram and seqpacket
    /// sockets that hold it for the other socket types, all inheritable:
    /// exec'd with them, the program holds the name in every type.
    ///
    /// # Errors
    /// If `fcntl(2)` or `dup(2)` fails.
    pub fn into_fds(mut self) -> Result<Vec<OwnedFd>> {
        self.stop_serving();
        let socket = Arc::clone(&self.socket);
        let others = Arc::clone(&self.others);
        drop(self);
        let fd = Arc::try_unwrap(socket)
            .or_else(|shared| shared.try_clone())
            .map_err(Error::io("duplicating the lock socket"))?;
        sys::set_blocking(fd.as_fd()).map_err(Error::io("clearing O_NONBLOCK"))?;
        let mut fds = vec![fd];
        for other in others.iter() {
            fds.push(
                other
                    .try_clone()
                    .map_err(Error::io("duplicating the lock socket"))?,
            );
        }
        for fd in &fds {
            sys::set_cloexec(fd.as_fd(), false).map_err(Error::io("clearing close-on-exec"))?;
        }
        Ok(fds)
    }

    /// Releases this process's hold and returns the processes that still
    /// keep the lock: children that inherited the descriptor (see
    /// [`Guard::pass_to`]). Cheap when there are none: one `connect(2)`
    /// finds the name free, and only otherwise is `/proc` searched.
    ///
    /// # Errors
    /// If `fstat(2)` on the socket fails.
    pub fn release_and_list_keepers(self) -> Result<Vec<ProcessInfo>> {
        let inode = self.inode()?;
        let address = self.name.address().to_vec();
        drop(self);
        if matches!(sys::connect_abstract(&address), Ok(sys::Connect::Refused)) {
            return Ok(Vec::new());
        }
        // Still bound: by our socket (kept by a child), or by someone who
        // took the name since; only the former are keepers.
        Ok(match procfs::holders_of(&address) {
            Ok(Some((socket, pids))) if socket.inode == inode => procfs::process_infos(pids),
            _ => Vec::new(),
        })
    }

    /// Releases the lock now: stops the serving thread, closes every kept
    /// connection (waking the waiters) and the socket.
    pub fn release(self) {
        drop(self);
    }

    /// What `info` requests are answered with.
    pub fn info(&self) -> Info {
        self.shared.info()
    }

    /// Sets the version `info` reports (for example
    /// `env!("CARGO_PKG_VERSION")`).
    pub fn set_version(&self, version: impl Into<String>) {
        let version = version.into();
        self.shared.update_info(|i| i.version = version);
    }

    /// Publishes `key = value` in `info` answers, replacing an earlier
    /// value of `key`. Anyone who can connect can read it: publish nothing
    /// secret. All of `info` must fit in one frame
    /// ([`MAX_FRAME`](crate::protocol::MAX_FRAME)); an `info` that does
    /// not is logged and not sent.
    pub fn set_metadata(&self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        self.shared.update_info(|i| {
            i.metadata.retain(|(k, _)| *k != key);
            i.metadata.push((key, value));
        });
    }

    /// Which uids may send messages and stop requests (default:
    /// [`Access::same_user`], our uid and root). Others are refused and
    /// logged. `info` is answered for everyone.
    pub fn set_access(&self, access: Access) {
        self.shared.set_access(access);
    }

    /// Where the one line per turned-away client goes (default: stderr).
    pub fn on_reject(&self, log: impl Fn(&str) + Send + Sync + 'static) {
        self.shared.set_log(Arc::new(log));
    }

    /// Starts handing messages and stop requests to the application.
    /// Until this is called they are answered "not serving". Calling it
    /// again replaces the earlier stream. The stream ends when the guard is
    /// released; drop it then, so that requests still queued are answered
    /// "shutting down".
    ///
    /// ```
    /// use abslock::{Incoming, Lock};
    ///
    /// let guard = Lock::user("abslock-doc-requests")?.try_acquire()?;
    /// let requests = guard.requests();
    /// std::thread::spawn(move || {
    ///     for request in requests {
    ///         match request {
    ///             Incoming::Message(m) => {
    ///                 let _ = m.reply(0, b"opened");
    ///             }
    ///             Incoming::Stop(stop) => {
    ///                 stop.accept();
    ///                 break; // and release the lock
    ///             }
    ///             _ => {}
    ///         }
    ///     }
    /// });
    /// # Ok::<(), abslock::Error>(())
    /// ```
    pub fn requests(&self) -> Requests {
        self.shared.requests()
    }

    /// [`Guard::requests`] as a tokio channel, for async daemons.
    #[cfg(feature = "tokio")]
    pub fn requests_async(&self) -> tokio::sync::mpsc::UnboundedReceiver<Incoming> {
        self.shared.requests_async()
    }

    /// Stops serving; returns the connections it kept, still open.
    fn stop_serving(&mut self) -> Vec<OwnedFd> {
        self.server
            .take()
            .map(|server| server.release())
            .unwrap_or_default()
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
        // Closed after the listener (`kept` is the last field): a waiter
        // woken by the hang-up of its kept connection finds the name free.
        self.kept = self.stop_serving();
    }
}
