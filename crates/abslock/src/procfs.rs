//! What `/proc` tells about sockets and processes.
//!
//! * `/proc/net/unix` (`proc(5)`) lists every Unix socket of the reader's
//!   network namespace, one per line: `Num RefCount Protocol Flags Type St
//!   Inode Path`. An abstract path is printed as `@` followed by the name
//!   bytes, with every NUL shown as `@` (kernel `unix_seq_show`).
//!   Accepted connections carry their listener's address too, so the holder
//!   of a name is the *unconnected* socket with that path.
//! * `sock_diag` (see [`crate::diag`]) lists the same sockets with the
//!   exact name bytes and the owning uid; [`sockets`] prefers it, and
//!   [`owner_of`] never takes a look-alike name for the real one.
//! * `/proc/PID/fd/N` is a link whose target is `socket:[INODE]` for a
//!   socket. Reading another user's links needs privilege
//!   (`ptrace_may_access`); without it such processes are not found.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::name::MAX_ADDRESS_LEN;

/// `__SO_ACCEPTCON` in the Flags column: the socket is listening.
const SO_ACCEPTCON: u32 = 1 << 16;
/// `SOCK_STREAM` in the Type column.
pub const SOCK_STREAM: u16 = 1;
/// `SS_UNCONNECTED` in the St column.
pub(crate) const SS_UNCONNECTED: u8 = 1;
/// `SS_CONNECTING` in the St column.
pub(crate) const SS_CONNECTING: u8 = 2;
/// `SS_CONNECTED` in the St column.
pub(crate) const SS_CONNECTED: u8 = 3;
/// `SOCK_DGRAM` in the Type column.
pub const SOCK_DGRAM: u16 = 2;

/// One line of `/proc/net/unix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocket {
    /// The socket's inode number.
    pub inode: u64,
    /// `SOCK_STREAM` (1), `SOCK_DGRAM` (2) or `SOCK_SEQPACKET` (5).
    pub socket_type: u16,
    /// The socket state (`SS_*`): 1 unconnected (listening sockets too),
    /// 2 connecting, 3 connected.
    pub state: u8,
    /// Whether the socket called `listen(2)`.
    pub listening: bool,
    /// The abstract name (without the leading NUL or `@`), or `None` for a
    /// filesystem or unnamed socket. Exact when [`UnixSocket::exact`];
    /// from `/proc/net/unix`, NUL bytes are shown as `@`.
    pub abstract_name: Option<Vec<u8>>,
    /// The uid owning the socket (`sock_diag`, Linux 5.3 and later).
    pub uid: Option<u32>,
    /// Whether `abstract_name` holds the exact bytes (from `sock_diag`)
    /// rather than `/proc/net/unix`'s rendering.
    pub exact: bool,
}

impl UnixSocket {
    /// Whether this socket is the one that owns its name: bound and not a
    /// connection (accepted stream and seqpacket connections inherit their
    /// listener's address; datagram sockets are never accepted).
    pub fn owns_name(&self) -> bool {
        self.abstract_name.is_some()
            && (self.state == SS_UNCONNECTED || self.socket_type == SOCK_DGRAM)
    }

    /// Whether this socket is bound to exactly `address`. From
    /// `/proc/net/unix` (no `sock_diag`), names with a NUL or `@` byte
    /// cannot be told apart, so they never match.
    pub fn is_named(&self, address: &[u8]) -> bool {
        match &self.abstract_name {
            Some(name) if self.exact => name == address,
            Some(name) => !address.contains(&b'@') && !address.contains(&0) && name == address,
            None => false,
        }
    }
}

/// Every Unix socket of this network namespace, from `sock_diag` (exact
/// names, owners) or, where the kernel lacks it, `/proc/net/unix`.
///
/// # Errors
/// If neither can be read.
pub fn sockets() -> io::Result<Vec<UnixSocket>> {
    crate::sock_diag::unix_sockets().or_else(|_| unix_sockets())
}

/// Reads `/proc/net/unix` of the calling thread's network namespace.
///
/// # Errors
/// If `/proc` is not mounted or not readable.
pub fn unix_sockets() -> io::Result<Vec<UnixSocket>> {
    let raw = fs::read("/proc/self/net/unix")?;
    Ok(parse_net_unix(&raw))
}

/// Parses the contents of `/proc/net/unix`; malformed lines are skipped.
pub fn parse_net_unix(raw: &[u8]) -> Vec<UnixSocket> {
    raw.split(|&b| b == b'\n')
        .skip(1)
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &[u8]) -> Option<UnixSocket> {
    // Seven space-separated columns, some padded (the inode is `%5lu`), then
    // the path, which may itself contain spaces.
    let mut rest = line;
    let mut column = || {
        let start = rest.iter().position(|&b| b != b' ')?;
        let len = rest[start..]
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(rest.len() - start);
        let token = std::str::from_utf8(&rest[start..start + len]).ok();
        rest = &rest[start + len..];
        token
    };
    let _num = column()?;
    let _refcount = column()?;
    let _protocol = column()?;
    let flags = u32::from_str_radix(column()?, 16).ok()?;
    let socket_type = u16::from_str_radix(column()?, 16).ok()?;
    let state = u8::from_str_radix(column()?, 16).ok()?;
    let inode = column()?.parse().ok()?;
    let abstract_name = rest
        .strip_prefix(b" ")
        .and_then(|p| p.strip_prefix(b"@"))
        .map(<[u8]>::to_vec);
    Some(UnixSocket {
        inode,
        socket_type,
        state,
        listening: flags & SO_ACCEPTCON != 0,
        abstract_name,
        uid: None,
        exact: false,
    })
}

/// How `/proc/net/unix` prints an abstract address: NUL bytes become `@`.
pub fn proc_form(address: &[u8]) -> Vec<u8> {
    address
        .iter()
        .map(|&b| if b == 0 { b'@' } else { b })
        .collect()
}

/// The socket that owns the abstract `address`, if one is bound in this
/// network namespace: a stream socket if there is one, else a datagram or
/// seqpacket socket. The kernel keeps one abstract namespace per socket
/// type (`unix_bind_abstract` hashes the name together with `sk_type`), so
/// a program holding a name with a datagram socket (the common Python
/// recipe) does not conflict with a stream `bind`; abslock counts it as the
/// holder anyway, and takes raw names in every type (`Lock`).
///
/// The name is compared byte for byte (see [`UnixSocket::is_named`]), so
/// `db\0prod` is never taken for `db@prod`, though `/proc/net/unix` prints
/// both alike (test `a_look_alike_name_is_not_the_lock`).
///
/// # Errors
/// If neither `sock_diag` nor `/proc/net/unix` can be read.
pub fn owner_of(address: &[u8]) -> io::Result<Option<UnixSocket>> {
    debug_assert!(address.len() <= MAX_ADDRESS_LEN);
    let mut owners: Vec<UnixSocket> = sockets()?
        .into_iter()
        .filter(|s| s.owns_name() && s.is_named(address))
        .collect();
    // The stream socket first: that is abslock's, and the one to ask.
    owners.sort_by_key(|s| s.socket_type != SOCK_STREAM);
    Ok(owners.into_iter().next())
}

/// The socket that owns `address` (see [`owner_of`]) and the pids, in
/// ascending order, of every process that has it open; `None` if the name
/// is free.
///
/// # Errors
/// If `/proc/net/unix` cannot be read.
pub fn holders_of(address: &[u8]) -> io::Result<Option<(UnixSocket, Vec<u32>)>> {
    Ok(owner_of(address)?.map(|socket| {
        let pids = processes_holding(&[socket.inode])
            .into_iter()
            .map(|(pid, _)| pid)
            .collect();
        (socket, pids)
    }))
}

/// [`process_info`] for each pid, skipping processes that have exited.
pub fn process_infos(pids: impl IntoIterator<Item = u32>) -> Vec<ProcessInfo> {
    pids.into_iter()
        .filter_map(|pid| process_info(pid).ok())
        .collect()
}

/// Every process that has a descriptor open on one of the socket `inodes`,
/// as `(pid, inode)` pairs sorted by pid (a process holding several of the
/// inodes appears once per inode). Processes whose `/proc/PID/fd` we may not
/// read are silently missing.
pub fn processes_holding(inodes: &[u64]) -> Vec<(u32, u64)> {
    let wanted: HashSet<u64> = inodes.iter().copied().collect();
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let mut held = socket_fds(&entry.path().join("fd"), &wanted);
        held.sort_unstable();
        held.dedup();
        found.extend(held.into_iter().map(|inode| (pid, inode)));
    }
    found.sort_unstable();
    found
}

/// Whether process `pid` has a descriptor of socket `inode` open now.
pub fn holds_inode(pid: u32, inode: u64) -> bool {
    let wanted = HashSet::from([inode]);
    !socket_fds(
        &Path::new("/proc").join(pid.to_string()).join("fd"),
        &wanted,
    )
    .is_empty()
}

fn socket_fds(fd_dir: &Path, wanted: &HashSet<u64>) -> Vec<u64> {
    let Ok(dir) = fs::read_dir(fd_dir) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.as_os_str().as_encoded_bytes();
            std::str::from_utf8(target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?)
                .ok()?
                .parse::<u64>()
                .ok()
        })
        .filter(|inode| wanted.contains(inode))
        .collect()
}

/// What `/proc/PID` says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The process id.
    pub pid: u32,
    /// The parent's pid.
    pub ppid: u32,
    /// The real uid.
    pub uid: u32,
    /// The command line, one entry per argument (lossy UTF-8); empty for
    /// kernel threads and zombies.
    pub cmdline: Vec<String>,
    /// The short command name from `/proc/PID/comm`.
    pub comm: String,
    /// When the process started (from `starttime` in `/proc/PID/stat` and
    /// the boot time in `/proc/stat`), if it could be computed.
    pub started: Option<SystemTime>,
    /// The state letter (`R`, `S`, `D`, `T`, `t`, `Z`, ...) and the kernel's
    /// `PF_*` flags, from `/proc/PID/stat` (`proc_pid_stat(5)`), if read.
    pub state: Option<(char, u64)>,
}

/// `PF_EXITING`: the process is exiting (`include/linux/sched.h`).
const PF_EXITING: u64 = 0x4;
/// `PF_DUMPCORE`: the process is writing a core dump.
const PF_DUMPCORE: u64 = 0x200;

impl ProcessInfo {
    /// Why this process may keep a lock although it crashed, was killed or
    /// is not running: a state the user should know of when a lock stays
    /// taken (`docs/semantics.md`, "When the release is late"); `None`
    /// for a process that runs or sleeps normally.
    pub fn unusual_state(&self) -> Option<&'static str> {
        let (state, flags) = self.state?;
        if flags & PF_DUMPCORE != 0 {
            return Some(
                "dumping core: its descriptors close, and the lock goes, only when the dump \
                 is written (core_pattern, core_pipe_limit)",
            );
        }
        match state {
            't' => Some(
                "stopped by a tracer (ptrace): its descriptors close only when the tracer \
                 lets it go on or detaches",
            ),
            'T' => Some("stopped (SIGSTOP or a job-control signal): it keeps the lock until continued or killed"),
            'D' => Some(
                "in uninterruptible sleep (D): blocked in the kernel, for example on a hung \
                 NFS or FUSE file; even SIGKILL waits for it",
            ),
            _ if flags & PF_EXITING != 0 => Some(
                "exiting: the kernel is tearing down its memory; its descriptors close next",
            ),
            _ => None,
        }
    }

    /// Whether the process is exiting (`PF_EXITING`): it may be closing
    /// its descriptors, from a table `/proc/PID/fd` no longer shows.
    pub fn is_exiting(&self) -> bool {
        self.state.is_some_and(|(_, flags)| flags & PF_EXITING != 0)
    }

    /// The command line joined with spaces, or `[comm]` when it is empty,
    /// escaped for a terminal: the process's owner
    /// chose every byte of it.
    pub fn command(&self) -> String {
        crate::escape::escape_str(&if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        })
    }
}

impl ProcessInfo {
    /// What `/proc/PID/{status,cmdline,stat,comm}` says about process
    /// `pid` (`proc_pid_status(5)`, `proc_pid_stat(5)`).
    ///
    /// # Errors
    /// `NotFound` if the process does not exist (any more).
    pub fn of(pid: u32) -> io::Result<ProcessInfo> {
        process_info(pid)
    }

    /// `pid`, its parent, the parent's parent, and so on, up to but not
    /// including pid 1 (or the first process that is gone), read from
    /// each `/proc/PID/status`; at most 4096 steps, since a pid reused
    /// while the chain is read could close a loop.
    pub fn lineage(pid: u32) -> impl Iterator<Item = u32> {
        lineage(pid)
    }
}

/// Reads `/proc/PID/{status,cmdline,stat,comm}`.
///
/// # Errors
/// `NotFound` if the process does not exist (any more).
pub fn process_info(pid: u32) -> io::Result<ProcessInfo> {
    let base = Path::new("/proc").join(pid.to_string());
    let status = fs::read_to_string(base.join("status"))?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
    };
    let uid = field("Uid:").ok_or_else(|| io::Error::other("no Uid in /proc/PID/status"))?;
    let ppid = field("PPid:").unwrap_or(0);
    let cmdline = fs::read(base.join("cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let comm = fs::read_to_string(base.join("comm"))
        .unwrap_or_default()
        .trim_end()
        .to_string();
    let stat = fs::read_to_string(base.join("stat")).ok();
    let state = stat.as_deref().and_then(state_and_flags);
    let started = stat.as_deref().and_then(start_ticks).and_then(|ticks| {
        let hz = crate::sys::clock_ticks_per_second();
        let boot = boot_time()?;
        (hz > 0).then(|| boot + Duration::from_millis(ticks.saturating_mul(1000) / hz))
    });
    Ok(ProcessInfo {
        pid,
        ppid,
        uid,
        cmdline,
        comm,
        started,
        state,
    })
}

/// `pid`, its parent, the parent's parent, and so on, up to but not
/// including pid 1 (or the first process that is gone). Reads only
/// `PPid:` from each `/proc/PID/status`. Bounded, since a pid reused while
/// the chain is read could close a loop.
pub fn lineage(pid: u32) -> impl Iterator<Item = u32> {
    let parent = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse::<u32>()
            .ok()
    };
    std::iter::successors(Some(pid), move |&p| parent(p))
        .take_while(|&p| p > 1)
        .take(4096)
}

/// The fields of a `/proc/PID/stat` line from field 3 (the state) on:
/// after the parenthesised command name, which may itself contain spaces
/// and parentheses.
fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// The state letter and the flags (fields 3 and 9).
fn state_and_flags(stat: &str) -> Option<(char, u64)> {
    let mut fields = stat_fields(stat)?;
    let state = fields.next()?.chars().next()?;
    let flags = fields.nth(5)?.parse().ok()?;
    Some((state, flags))
}

/// The start time in clock ticks after boot (field 22).
fn start_ticks(stat: &str) -> Option<u64> {
    stat_fields(stat)?.nth(19)?.parse().ok()
}

fn boot_time() -> Option<SystemTime> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The uid owning `/proc/PID`, for processes whose `status` is unreadable.
pub(crate) fn uid_of(pid: u32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    process_info(pid)
        .map(|p| p.uid)
        .ok()
        .or_else(|| fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_locks_lines_parse() {
        let text = b"1: FLOCK  ADVISORY  WRITE 11741 fe:00:10010639 0 EOF\n\
1: -> FLOCK  ADVISORY  WRITE 11745 fe:00:10010639 0 EOF\n\
2: OFDLCK ADVISORY  READ  -1 08:01:42 0 EOF\n\
garbage\n\
lock:\t3: POSIX  ADVISORY  WRITE 7 103:02:9 0 100\n";
        let entries = super::parse_locks(text);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].pid, Some(11741));
        assert_eq!(entries[0].dev, (0xfe, 0));
        assert_eq!(entries[0].inode, 10_010_639);
        assert!(!entries[0].blocked && entries[1].blocked);
        assert_eq!((entries[2].kind.as_str(), entries[2].pid), ("OFDLCK", None));
        assert_eq!(
            (entries[3].kind.as_str(), entries[3].dev),
            ("POSIX", (0x103, 2))
        );
        let dev = rustix::fs::makedev(0xfe, 0);
        assert!(entries[0].is_flock_on(dev, 10_010_639));
        assert!(
            !entries[1].is_flock_on(dev, 10_010_639),
            "a waiter is no holder"
        );
    }

    use super::*;

    const SAMPLE: &[u8] = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
ffff0001: 00000002 00000000 00010000 0001 01  3456 @abslock/user/0/x y\n\
ffff0002: 00000003 00000000 00000000 0001 03 23457 @abslock/user/0/x y\n\
ffff0003: 00000002 00000000 00000000 0002 01 23458 @raw@@@\n\
ffff0004: 00000002 00000000 00000000 0001 03 23459\n\
ffff0005: 00000002 00000000 00010000 0001 01 23460 /run/file.sock\n\
ffff0006: 00000003 00000000 00000000 0001 02     0 @abslock/user/0/x y\n\
garbage\n";

    #[test]
    fn parses_net_unix() {
        let all = parse_net_unix(SAMPLE);
        assert_eq!(all.len(), 6);
        assert!(all[0].listening && all[0].owns_name());
        assert_eq!(all[0].inode, 3456);
        assert_eq!(
            all[0].abstract_name.as_deref(),
            Some(&b"abslock/user/0/x y"[..])
        );
        // The accepted connection shares the path but does not own it.
        assert_eq!(all[1].state, 3);
        assert!(!all[1].owns_name());
        assert_eq!(all[2].socket_type, 2);
        assert!(!all[2].listening && all[2].owns_name());
        assert_eq!(all[3].abstract_name, None);
        assert_eq!(all[4].abstract_name, None);
        // A connection still in the backlog (state 2, no inode yet).
        assert_eq!((all[5].state, all[5].inode), (2, 0));
        assert!(!all[5].owns_name());
    }

    #[test]
    fn proc_form_shows_nul_as_at() {
        assert_eq!(proc_form(b"raw\0\0\0"), b"raw@@@");
    }

    #[test]
    fn stat_start_time_survives_odd_comm() {
        let stat = "123 (a) b) S 1 123 123 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(start_ticks(stat), Some(987654));
        assert_eq!(state_and_flags(stat), Some(('S', 4194560)));
    }

    #[test]
    fn lineage_runs_from_a_process_up_to_init() {
        let me = std::process::id();
        let chain: Vec<u32> = lineage(me).collect();
        assert_eq!(chain.first(), Some(&me));
        assert!(chain.contains(&std::os::unix::process::parent_id()));
        assert!(!chain.contains(&1) && !chain.contains(&0));
        assert_eq!(lineage(u32::MAX).collect::<Vec<_>>(), vec![u32::MAX]);
    }

    #[test]
    fn reads_own_process() {
        let me = process_info(std::process::id()).unwrap();
        assert_eq!(me.uid, rustix::process::getuid().as_raw());
        assert!(!me.cmdline.is_empty());
        let started = me.started.unwrap();
        assert!(started <= SystemTime::now());
        assert!(process_info(u32::MAX).is_err());
    }
}

/// One line of `/proc/locks` (`proc(5)`), or a `lock:` line of
/// `/proc/PID/fdinfo/FD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLockEntry {
    /// `FLOCK`, `POSIX`, `OFDLCK`, `LEASE`, ...
    pub kind: String,
    /// `WRITE` (exclusive) or `READ` (shared).
    pub mode: String,
    /// The pid recorded when the lock was taken; `None` when the kernel
    /// shows -1 (OFD locks) or the pid is not visible in our namespace.
    pub pid: Option<u32>,
    /// The device's major and minor numbers.
    pub dev: (u32, u32),
    /// The file's inode number.
    pub inode: u64,
    /// A waiter blocked on the lock (`->`), not a holder.
    pub blocked: bool,
}

impl FileLockEntry {
    /// Whether this is a granted `flock(2)` lock on the file `dev`/`inode`
    /// (`st_dev`, `st_ino`).
    pub fn is_flock_on(&self, dev: u64, inode: u64) -> bool {
        self.kind == "FLOCK" && self.is_lock_on(dev, inode)
    }

    /// Whether this is a granted lock of any kind (`flock(2)`, POSIX
    /// `fcntl(2)`, OFD) on the file `dev`/`inode`.
    pub fn is_lock_on(&self, dev: u64, inode: u64) -> bool {
        !self.blocked && self.inode == inode && self.dev == dev_parts(dev)
    }

    /// Whether the lock is shared (`READ`), not exclusive (`WRITE`).
    pub fn is_shared(&self) -> bool {
        self.mode == "READ"
    }
}

/// Splits an `st_dev` into major and minor numbers as `/proc/locks` shows
/// them.
pub fn dev_parts(dev: u64) -> (u32, u32) {
    (rustix::fs::major(dev), rustix::fs::minor(dev))
}

/// Parses `/proc/locks` text (or `lock:` lines of fdinfo, prefix
/// included); lines that do not parse are skipped.
pub fn parse_locks(raw: &[u8]) -> Vec<FileLockEntry> {
    raw.split(|&b| b == b'\n')
        .filter_map(|line| parse_lock_line(std::str::from_utf8(line).ok()?))
        .collect()
}

fn parse_lock_line(line: &str) -> Option<FileLockEntry> {
    let line = line.strip_prefix("lock:").unwrap_or(line);
    let mut words = line.split_whitespace();
    words.next()?.strip_suffix(':')?;
    let mut kind = words.next()?;
    let blocked = kind == "->";
    if blocked {
        kind = words.next()?;
    }
    let _advisory = words.next()?;
    let mode = words.next()?;
    let pid = words.next()?.parse::<i64>().ok()?;
    let mut id = words.next()?.split(':');
    let major = u32::from_str_radix(id.next()?, 16).ok()?;
    let minor = u32::from_str_radix(id.next()?, 16).ok()?;
    let inode = id.next()?.parse().ok()?;
    Some(FileLockEntry {
        kind: kind.to_string(),
        mode: mode.to_string(),
        pid: u32::try_from(pid).ok().filter(|&p| p != 0),
        dev: (major, minor),
        inode,
        blocked,
    })
}

/// The granted `flock(2)` lock on file `dev`/`inode`, from `/proc/locks`.
///
/// # Errors
/// If `/proc/locks` cannot be read.
pub fn flock_on(dev: u64, inode: u64) -> io::Result<Option<FileLockEntry>> {
    Ok(parse_locks(&fs::read("/proc/locks")?)
        .into_iter()
        .find(|e| e.is_flock_on(dev, inode)))
}

/// Every granted lock on file `dev`/`inode`: `flock(2)` locks and POSIX
/// and OFD `fcntl(2)` locks (which `lckdo`, `setlock -f` or databases
/// take), from `/proc/locks`.
///
/// # Errors
/// If `/proc/locks` cannot be read.
pub fn locks_on(dev: u64, inode: u64) -> io::Result<Vec<FileLockEntry>> {
    Ok(parse_locks(&fs::read("/proc/locks")?)
        .into_iter()
        .filter(|e| e.is_lock_on(dev, inode))
        .collect())
}

/// Every process with a descriptor of the open file description that
/// holds the `flock(2)` lock on `dev`/`inode`, in pid order. Those are the
/// processes that must close it (or exit) before the lock is free; other
/// processes that merely have the file open (waiters) are not listed,
/// because fdinfo shows a lock only on the description that owns it.
pub fn flock_holders(dev: u64, inode: u64) -> Vec<u32> {
    processes_where(|pid| holds_flock(pid, dev, inode))
}

/// The processes that keep the `flock(2)` lock on `dev`/`inode` that
/// process `locker` took: the lock bears the pid of the process that
/// called `flock`, so a later holder's lock (a waiter's) is not counted.
/// Read from each process's fdinfo, never from `/proc/locks` (whose read
/// takes the kernel's `file_rwsem` for writing, an RCU grace period).
pub fn flock_keepers(dev: u64, inode: u64, locker: u32) -> Vec<u32> {
    processes_where(|pid| {
        fd_locks(pid, dev, inode)
            .iter()
            .any(|e| e.is_flock_on(dev, inode) && e.pid == Some(locker))
    })
}

fn processes_where(mut keep: impl FnMut(u32) -> bool) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| keep(pid))
        .collect();
    pids.sort_unstable();
    pids
}

/// Whether process `pid` has a descriptor of the description holding the
/// `flock(2)` lock on `dev`/`inode` now.
pub fn holds_flock(pid: u32, dev: u64, inode: u64) -> bool {
    fd_locks(pid, dev, inode)
        .iter()
        .any(|e| e.is_flock_on(dev, inode))
}

/// The locks shown in process `pid`'s fdinfo for its descriptors of the
/// file `dev`/`inode` (a description shows the locks it owns).
fn fd_locks(pid: u32, dev: u64, inode: u64) -> Vec<FileLockEntry> {
    let base = Path::new("/proc").join(pid.to_string());
    let Ok(fds) = fs::read_dir(base.join("fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter(|fd| {
            // stat follows the magic link to the open file: cheap filter
            // before reading fdinfo.
            fs::metadata(fd.path()).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.dev() == dev && m.ino() == inode
            })
        })
        .filter_map(|fd| fs::read(base.join("fdinfo").join(fd.file_name())).ok())
        .flat_map(|info| parse_locks(&info))
        .collect()
}
