//! Every lock of this network namespace, as `abslock list` shows them:
//! the names bound in the abstract socket namespace (`unix(7)`), from
//! `sock_diag(7)` or, where the kernel lacks it, `/proc/net/unix`, and
//! the processes that keep each socket open, from `/proc/PID/fd`.

use std::collections::BTreeMap;
use std::io;

use crate::name::{LockName, Scope};
use crate::procfs::{self, ProcessInfo};

/// A name bound in this network namespace's abstract socket namespace,
/// and the processes keeping its socket open: a lock and its holders.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BoundName {
    /// The address, without its leading NUL: the exact bytes when
    /// [`BoundName::exact`], else as `/proc/net/unix` shows it (NUL bytes
    /// as `@`). Shown safely by [`display_address`](crate::display_address).
    pub address: Vec<u8>,
    /// Whether [`BoundName::address`] holds the exact bytes (`sock_diag`).
    pub exact: bool,
    /// `SOCK_STREAM` (1), `SOCK_DGRAM` (2) or `SOCK_SEQPACKET` (5).
    pub socket_type: u16,
    /// Whether the socket called `listen(2)`: abslock's own locks do, so
    /// that waiters and `info` requests can connect.
    pub listening: bool,
    /// The socket's inode number, as `/proc/PID/fd` links name it.
    pub inode: u64,
    /// The owner of the socket (`sock_diag`, Linux 5.3 and later).
    pub uid: Option<u32>,
    /// Every process with a descriptor of the socket open, by pid; those
    /// whose `/proc/PID/fd` the caller may not read are missing.
    pub processes: Vec<ProcessInfo>,
}

impl BoundName {
    /// The scope and lock name, if abslock derived the address from one
    /// ([`LockName::from_address`]).
    pub fn lock_name(&self) -> Option<(Scope, String)> {
        LockName::from_address(&self.address)
    }
}

/// The locks of this network namespace: every abstract name abslock
/// derived from a lock name, or with `all` every abstract name bound
/// (raw `@names` and other programs' sockets too). Waiters' places in a
/// queue (`queue.rs`) are left out: they are not locks. Sorted as the
/// kernel lists the sockets.
///
/// # Errors
/// If neither `sock_diag` nor `/proc/net/unix` can be read.
///
/// # Example
/// ```
/// let lock = abslock::Lock::user("abslock-doc-listing")?;
/// let guard = lock.try_acquire()?;
/// let mine = abslock::bound_names(false)?
///     .into_iter()
///     .find(|b| b.address == guard.name().address());
/// assert!(mine.is_some_and(|b| b.processes.iter().any(|p| p.pid == std::process::id())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bound_names(all: bool) -> io::Result<Vec<BoundName>> {
    let owners: Vec<procfs::UnixSocket> = procfs::sockets()?
        .into_iter()
        .filter(procfs::UnixSocket::owns_name)
        .filter(|s| {
            s.abstract_name.as_deref().is_some_and(|name| {
                (all || LockName::from_address(name).is_some()) && !crate::queue::is_ticket(name)
            })
        })
        .collect();
    let inodes: Vec<u64> = owners.iter().map(|s| s.inode).collect();
    let mut holders: BTreeMap<u64, Vec<ProcessInfo>> = BTreeMap::new();
    for (pid, inode) in procfs::processes_holding(&inodes) {
        if let Ok(info) = procfs::process_info(pid) {
            holders.entry(inode).or_default().push(info);
        }
    }
    Ok(owners
        .into_iter()
        .map(|s| BoundName {
            processes: holders.remove(&s.inode).unwrap_or_default(),
            address: s.abstract_name.unwrap_or_default(),
            exact: s.exact,
            socket_type: s.socket_type,
            listening: s.listening,
            inode: s.inode,
            uid: s.uid,
        })
        .collect())
}
