//! Who holds a lock, and how to signal or await them.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags};

use crate::access::Access;
use crate::error::{Error, Result};
use crate::escape::escape_str;
use crate::procfs::{self, ProcessInfo};
use crate::signal::Signal;
use crate::sys::{self, Connect};
use crate::wait;

/// How the holder's identity was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `SO_PEERCRED` on a connection to the holder's listening socket: the
    /// credentials of the process that called `listen(2)`, exact and
    /// unforgeable, and a pidfd from `SO_PEERPIDFD` where the kernel has it.
    PeerCred,
    /// The socket does not listen (or its backlog is full): the socket was
    /// found by its exact name with `sock_diag` (its owner's uid too), and
    /// the processes by matching its inode against `/proc/*/fd`.
    Procfs,
    /// A file lock: the holder was found in `/proc/locks` and confirmed in
    /// `/proc/PID/fdinfo`.
    ProcLocks,
    /// A lock on a cluster engine: the engine said who holds it
    /// ([`Holder::as_remote`]).
    Remote,
}

/// What is held: an abstract socket name, a lock file, or a lock on an
/// engine elsewhere.
#[derive(Debug, Clone)]
enum Target {
    Socket(Vec<u8>),
    Remote(Box<RemoteHolder>),
    File {
        path: PathBuf,
        dev: u64,
        inode: u64,
        kind: String,
        shared: bool,
    },
}

/// The holder of a lock kept on a cluster engine (a [`crate::Backend`]
/// outside this crate), as the engine describes it. Whoever can write the
/// lock's key or session chose these values: [`fmt::Display`] escapes
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHolder {
    /// The holder's host, as it named itself (`uname -n` or `ABSLOCK_HOST`).
    pub host: String,
    /// The holder's pid on that host.
    pub pid: u32,
    /// The fencing token of its hold, if the engine has one.
    pub token: Option<u64>,
    /// How long its lease has left if it stopped renewing now, if the
    /// engine has leases.
    pub lease_left: Option<Duration>,
    /// For a holder that is not abslock (`etcdctl lock`, a `psql` session
    /// holding the advisory lock): what the engine says about it. `host`
    /// is then `?` and `pid` 0.
    pub client: Option<String>,
}

impl fmt::Display for RemoteHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(client) = &self.client {
            return write!(f, "a client that is not abslock ({})", escape_str(client));
        }
        write!(f, "pid {} on host {}", self.pid, escape_str(&self.host))
    }
}

/// The process holding a lock, as seen when it was discovered.
///
/// Obtained from [`Error::Held`], [`Error::Squatted`] or
/// [`Lock::holder`](crate::Lock::holder).
#[derive(Debug)]
pub struct Holder {
    target: Target,
    pid: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    source: Source,
    pidfd: Option<OwnedFd>,
    pidfd_exact: bool,
}

impl Holder {
    /// Finds who holds `address`, or `None` if it is free.
    pub(crate) fn discover(address: &[u8]) -> Result<Option<Holder>> {
        let connect =
            sys::connect_abstract(address).map_err(Error::io("connecting to the lock holder"))?;
        match connect {
            Connect::Connected(conn) => Ok(Some(Self::from_connection(address, conn.as_fd()))),
            Connect::Refused | Connect::BacklogFull => Self::from_procfs(address),
        }
    }

    pub(crate) fn from_connection(address: &[u8], conn: BorrowedFd<'_>) -> Holder {
        let mut holder = Holder {
            target: Target::Socket(address.to_vec()),
            pid: None,
            uid: None,
            gid: None,
            source: Source::PeerCred,
            pidfd: None,
            pidfd_exact: false,
        };
        if let Ok(cred) = sys::peer_cred(conn) {
            holder.uid = Some(cred.uid);
            holder.gid = Some(cred.gid);
            // 0: the listener's pid is not visible in our pid namespace.
            holder.pid = u32::try_from(cred.pid).ok().filter(|&p| p != 0);
        }
        let mut reaped = false;
        match sys::peer_pidfd(conn) {
            Ok(fd) => {
                holder.pidfd = Some(fd);
                holder.pidfd_exact = true;
            }
            // A reaped listener (recent kernels give a pidfd that polls
            // readable instead, handled below): its number may name another
            // process already, so it is not opened by number.
            Err(e) if listener_reaped(&e) => reaped = true,
            // Kernels before 6.5 lack SO_PEERPIDFD (ENOPROTOOPT): fall
            // back to pidfd_open (racy, see pidfd_is_exact).
            Err(_) => holder.pidfd = holder.pid.and_then(open_pidfd),
        }
        if reaped || holder.has_exited() || (holder.pid.is_some() && holder.pidfd.is_none()) {
            // The process that called listen() is gone, yet the socket
            // lives: a child inherited it. Its pid may be reused already,
            // so name a process that holds the socket now.
            holder.pid = procfs::holders_of(address)
                .ok()
                .flatten()
                .and_then(|(_, pids)| pids.first().copied());
            holder.pidfd = holder.pid.and_then(open_pidfd);
            holder.pidfd_exact = false;
        }
        holder
    }

    fn from_procfs(address: &[u8]) -> Result<Option<Holder>> {
        let Some((socket, pids)) = holders_of(address)? else {
            return Ok(None);
        };
        let pid = pids.first().copied();
        Ok(Some(Holder {
            target: Target::Socket(address.to_vec()),
            pid,
            // The socket's owner from sock_diag needs no access to the
            // process, so another user's squatter is named even when its
            // /proc/PID/fd is closed to us.
            uid: socket.uid.or_else(|| pid.and_then(procfs::uid_of)),
            gid: None,
            source: Source::Procfs,
            pidfd: pid.and_then(open_pidfd),
            pidfd_exact: false,
        }))
    }

    /// Finds who holds a lock on the file `dev`/`inode` (found at `path`):
    /// a `flock(2)` lock, or else a POSIX or OFD `fcntl(2)` lock; `None` if
    /// nobody does.
    pub(crate) fn discover_file(path: &Path, dev: u64, inode: u64) -> Result<Option<Holder>> {
        let entries = procfs::locks_on(dev, inode).map_err(Error::io("reading /proc/locks"))?;
        let Some(entry) = entries
            .iter()
            .find(|e| e.kind == "FLOCK")
            .or_else(|| entries.first())
        else {
            return Ok(None);
        };
        let pid = if entry.kind == "FLOCK" {
            // /proc/locks records the pid of the flock() call; that process
            // may be gone while a child keeps the description, or its pid
            // reused.
            let recorded = entry.pid.filter(|&p| procfs::holds_flock(p, dev, inode));
            recorded.or_else(|| {
                procfs::flock_holders(dev, inode)
                    .first()
                    .copied()
                    // Other users' fds are unreadable without root: trust
                    // the record if that process still exists.
                    .or(entry.pid.filter(|&p| procfs::uid_of(p).is_some()))
            })
        } else {
            // A POSIX lock belongs to the process that took it (none is
            // recorded for an OFD lock).
            entry.pid.filter(|&p| procfs::uid_of(p).is_some())
        };
        Ok(Some(Holder {
            target: Target::File {
                path: path.to_path_buf(),
                dev,
                inode,
                kind: entry.kind.clone(),
                shared: entry.is_shared(),
            },
            pid,
            uid: pid.and_then(procfs::uid_of),
            gid: None,
            source: Source::ProcLocks,
            pidfd: pid.and_then(open_pidfd),
            pidfd_exact: false,
        }))
    }

    /// The holder of a lock on a cluster engine, as the engine describes
    /// it. It has no local pid, uid or pidfd: it may run on another host,
    /// and cannot be signalled from here.
    pub fn remote(holder: RemoteHolder) -> Holder {
        Holder {
            target: Target::Remote(Box::new(holder)),
            pid: None,
            uid: None,
            gid: None,
            source: Source::Remote,
            pidfd: None,
            pidfd_exact: false,
        }
    }

    /// For a lock on a cluster engine: the holder as the engine describes
    /// it.
    pub fn as_remote(&self) -> Option<&RemoteHolder> {
        match &self.target {
            Target::Remote(r) => Some(r),
            _ => None,
        }
    }

    /// For a file lock: its kind as `/proc/locks` shows it (`FLOCK`,
    /// `POSIX`, `OFDLCK`) and whether it is shared (`READ`).
    pub fn file_lock(&self) -> Option<(&str, bool)> {
        match &self.target {
            Target::File { kind, shared, .. } => Some((kind, *shared)),
            Target::Socket(_) | Target::Remote(_) => None,
        }
    }

    /// The holder's pid, as seen from our pid namespace; `None` when it is
    /// not visible from here or could not be found.
    ///
    /// With [`Source::PeerCred`] this is the process that called `listen(2)`
    /// (`socket(7)`, `SO_PEERCRED`), which is why a daemon must take its lock
    /// after it has forked into the background.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The holder's uid, when known.
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }

    /// The holder's gid (only from `SO_PEERCRED`).
    pub fn gid(&self) -> Option<u32> {
        self.gid
    }

    /// How this holder was identified.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Whether the holder's socket listens, that is, whether it can be
    /// awaited without polling and asked for credentials.
    pub fn is_listening(&self) -> bool {
        self.source == Source::PeerCred
    }

    /// A pidfd for the holder's process, if one could be opened.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// Whether the pidfd came from `SO_PEERPIDFD` and so is guaranteed to
    /// refer to the process that holds the socket. Otherwise it came from
    /// `pidfd_open(2)` on a pid read earlier, and in the microseconds in
    /// between that process may have exited and its pid been reused.
    pub fn pidfd_is_exact(&self) -> bool {
        self.pidfd_exact
    }

    /// The abstract address held; for a file lock, the lock file's path;
    /// empty for a lock on a cluster engine.
    pub fn address(&self) -> &[u8] {
        use std::os::unix::ffi::OsStrExt;
        match &self.target {
            Target::Socket(address) => address,
            Target::File { path, .. } => path.as_os_str().as_bytes(),
            Target::Remote(_) => &[],
        }
    }

    /// The lock file, for a file lock.
    pub fn path(&self) -> Option<&Path> {
        match &self.target {
            Target::Socket(_) | Target::Remote(_) => None,
            Target::File { path, .. } => Some(path),
        }
    }

    /// The pids keeping the lock, with the socket inode to re-check each
    /// against after opening a pidfd.
    fn keepers(&self) -> Result<Vec<u32>> {
        Ok(match &self.target {
            Target::Socket(address) => holders_of(address)?.map(|(_, p)| p).unwrap_or_default(),
            Target::File { dev, inode, .. } => procfs::flock_holders(*dev, *inode),
            Target::Remote(_) => Vec::new(),
        })
    }

    /// Whether `pid` keeps the lock now.
    fn keeps(&self, pid: u32, socket_inode: Option<u64>) -> bool {
        match (&self.target, socket_inode) {
            (Target::Socket(_), Some(inode)) => procfs::holds_inode(pid, inode),
            (Target::File { dev, inode, .. }, _) => procfs::holds_flock(pid, *dev, *inode),
            (Target::Socket(_), None) | (Target::Remote(_), _) => false,
        }
    }

    /// Every process that has a descriptor of the lock's socket open, in pid
    /// order, with `/proc` details. All of them must close it (or exit)
    /// before the name is free: a child that inherited the descriptor keeps
    /// the lock after its parent dies.
    ///
    /// Processes of other users are missing unless we run as root.
    ///
    /// A holder in the middle of its exit is listed although `/proc/PID/fd`
    /// no longer shows the socket: `exit_files()` detaches the descriptor
    /// table before closing it, and a close that blocks (a hung FUSE or
    /// NFS file closed first, in D state) keeps the name with that exiting
    /// process ("When the release is late" in `docs/semantics.md`).
    ///
    /// # Errors
    /// If `/proc/net/unix` cannot be read.
    pub fn processes(&self) -> Result<Vec<ProcessInfo>> {
        let mut keepers = self.keepers()?;
        if let Some(pid) = self.pid() {
            if !keepers.contains(&pid)
                && !self.has_exited()
                && procfs::process_info(pid).is_ok_and(|p| p.is_exiting())
            {
                keepers.push(pid);
                keepers.sort_unstable();
            }
        }
        Ok(procfs::process_infos(keepers))
    }

    /// Sends `signal` to the holder through its pidfd
    /// (`pidfd_send_signal(2)`), which cannot hit an unrelated process that
    /// reused the pid.
    ///
    /// # Errors
    /// [`Error::HolderUnknown`] without a pidfd; [`Error::Io`] with `ESRCH`
    /// if the process has exited, `EPERM` if we may not signal it.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pidfd = self.pidfd.as_ref().ok_or(Error::HolderUnknown)?;
        let sig = signal.to_rustix().ok_or_else(|| {
            Error::InvalidSignal(format!("signal {} cannot be sent", signal.as_raw()))
        })?;
        pidfd_send_signal(pidfd, sig).map_err(|e| Error::io("signalling the lock holder")(e.into()))
    }

    /// Sends `signal` to every process that keeps the lock's socket open
    /// (see [`Holder::processes`]), each through a pidfd. Returns how many
    /// were signalled.
    ///
    /// Race-free against pid reuse: after opening each pidfd, the process
    /// is checked again for a descriptor of the socket; a process that
    /// merely reused the pid cannot have one, unless it inherited it from a
    /// holder, and then it holds the lock too.
    ///
    /// # Errors
    /// If `/proc/net/unix` cannot be read.
    pub fn signal_all(&self, signal: Signal) -> Result<usize> {
        let sig = signal.to_rustix().ok_or_else(|| {
            Error::InvalidSignal(format!("signal {} cannot be sent", signal.as_raw()))
        })?;
        let (pids, socket_inode) = match &self.target {
            Target::Socket(address) => match holders_of(address)? {
                Some((socket, pids)) => (pids, Some(socket.inode)),
                None => return Ok(0),
            },
            Target::File { .. } => (self.keepers()?, None),
            Target::Remote(_) => return Ok(0),
        };
        let mut sent = 0;
        for pid in pids {
            let Some(fd) = open_pidfd(pid) else { continue };
            if self.keeps(pid, socket_inode) && pidfd_send_signal(&fd, sig).is_ok() {
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Whether the holder's process (the one [`Holder::pid`] names) has
    /// exited. Other processes may still keep the lock.
    pub fn has_exited(&self) -> bool {
        match &self.pidfd {
            // A pidfd polls readable once its process has exited.
            Some(fd) => sys::wait_event(fd.as_fd(), Some(Instant::now())).unwrap_or(false),
            None => false,
        }
    }

    /// Waits until the lock is free, event-driven (rule 6 of
    /// `docs/semantics.md`).
    /// `None` waits forever. Returns `false` on timeout.
    ///
    /// # Errors
    /// If a socket operation fails; [`Error::Unsupported`] for a holder on
    /// a cluster engine, which only its lock can await
    /// ([`crate::Backend::wait_released`]).
    pub fn wait_released(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        match &self.target {
            Target::Socket(address) => {
                Ok(wait::until_free(address, deadline, &Access::anyone())? == wait::Wait::Free)
            }
            Target::File {
                path, dev, inode, ..
            } => wait::until_unlocked(path, *dev, *inode, deadline),
            Target::Remote(_) => Err(Error::Unsupported(
                "a holder on a cluster engine is awaited through its lock".into(),
            )),
        }
    }
}

fn holders_of(address: &[u8]) -> Result<Option<(procfs::UnixSocket, Vec<u32>)>> {
    procfs::holders_of(address).map_err(Error::io("reading /proc/net/unix"))
}

/// Whether `SO_PEERPIDFD` failed because the listener has been reaped:
/// `ESRCH`, or `EINVAL` on kernels before `PIDFD_STALE`, where
/// `pidfd_prepare()` refuses a pid with no thread-group leader (rule 4 of
/// `docs/semantics.md`).
fn listener_reaped(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ESRCH | libc::EINVAL))
}

fn open_pidfd(pid: u32) -> Option<OwnedFd> {
    let pid = Pid::from_raw(i32::try_from(pid).ok()?)?;
    pidfd_open(pid, PidfdFlags::empty()).ok()
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Target::Remote(r) = &self.target {
            return fmt::Display::fmt(r, f);
        }
        match self.pid {
            Some(pid) => write!(f, "pid {pid}")?,
            None => f.write_str("an unidentified process")?,
        }
        if let Some(uid) = self.uid {
            write!(f, " (uid {uid})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::listener_reaped;
    use std::io::Error;

    /// A reaped listener is not looked up by its number, whichever error
    /// the kernel gives for it; a kernel without `SO_PEERPIDFD` is.
    #[test]
    fn a_reaped_listener_is_told_from_a_kernel_without_so_peerpidfd() {
        assert!(listener_reaped(&Error::from_raw_os_error(libc::ESRCH)));
        assert!(listener_reaped(&Error::from_raw_os_error(libc::EINVAL)));
        assert!(!listener_reaped(&Error::from_raw_os_error(
            libc::ENOPROTOOPT
        )));
        assert!(!listener_reaped(&Error::other("no descriptor")));
    }
}
