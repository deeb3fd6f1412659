//! systemd's socket activation (`sd_listen_fds(3)`) and readiness
//! notification (`sd_notify(3)`) for a command that abslock supervises.
//!
//! systemd gives its variables to the unit's main process, which is
//! abslock; the command is abslock's child. Two things would break:
//!
//! * `LISTEN_PID` names abslock, and `sd_listen_fds` in the command
//!   ignores descriptors meant for another pid. When it names us, the
//!   command starts through `abslock __listen-pid COMMAND...` ([`SHIM`]),
//!   which sets `LISTEN_PID` to its own pid and execs the command: the same
//!   pid, with the right value from the command's first instruction.
//! * With `NotifyAccess=main` (the default) systemd drops notifications
//!   from any pid but the main one. abslock binds a datagram socket of its
//!   own in the abstract namespace, gives it to the command as
//!   `NOTIFY_SOCKET`, and relays what it receives to systemd's socket, so
//!   that it comes from the main pid. The kernel vouches for each sender
//!   (`SCM_CREDENTIALS`): a message is relayed if it comes from root, from
//!   abslock's own uid (a process that could as well signal abslock), or
//!   from the command's process tree (a daemon that dropped privileges);
//!   the tree is checked only while the sender lives, because a
//!   `systemd-notify` may exit before its message is read. Anything else
//!   is dropped. `MAINPID=` is dropped too (the main
//!   process stays abslock, which holds the lock), and so are the lines
//!   that need descriptors (`FDSTORE=`, `BARRIER=`), which are not relayed.
//!   Lines are split where systemd splits them, at `\n` and `\r`, and a
//!   message with a NUL byte is dropped whole, as systemd drops it.
//! * Any local user can find the relay's name in `/proc/net/unix` and
//!   flood it. The relay reads at most [`BATCH`] messages per [`REST`]
//!   and then stops polling its socket until that window ends, so a flood
//!   costs abslock a bounded share of a core and fills the socket's small
//!   queue instead (`net.unix.max_dgram_qlen`; the flooder then blocks); a stranger's uid, once found
//!   outside the command's tree, is not looked up in `/proc` again for
//!   [`STRANGER_MEMORY`].

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use crate::supervise::spawn::Spawn;

/// The hidden first argument that makes abslock the `LISTEN_PID` shim.
pub const SHIM: &str = "__listen-pid";

/// The largest notification systemd reads (its `NOTIFY_BUFFER_MAX`).
const MESSAGE_MAX: usize = 4096;

/// Messages read at most per [`REST`]: 3200 a second, many more than a
/// service sends, few enough to cost a small share of a core.
const BATCH: usize = 32;

/// The window of the rate limit.
const REST: Duration = Duration::from_millis(10);

/// How long a uid found sending from outside the command's tree is
/// dropped without looking at `/proc` again.
const STRANGER_MEMORY: Duration = Duration::from_secs(1);

/// Lines of a notification that are not passed on.
const DROPPED: [&str; 5] = ["MAINPID=", "BARRIER=", "FDSTORE", "FDNAME=", "FDPOLL="];

/// What systemd handed us, and the relay for the command's notifications.
pub struct Systemd {
    /// Our own executable, when `LISTEN_PID` names us.
    shim: Option<std::path::PathBuf>,
    relay: Option<Relay>,
}

struct Relay {
    socket: UnixDatagram,
    /// Not read again before this instant (after a full batch).
    resting_until: Cell<Option<Instant>>,
    /// The current window of the rate limit, and the messages read in it.
    window: Cell<(Instant, usize)>,
    /// The last uid caught sending from outside the command's tree, and
    /// when.
    stranger: Cell<Option<(u32, Instant)>>,
    /// The address the command gets, as `NOTIFY_SOCKET` spells it.
    ours: OsString,
    /// systemd's socket.
    target: SocketAddr,
    out: UnixDatagram,
}

impl Systemd {
    /// Reads `LISTEN_PID`, `LISTEN_FDS` and `NOTIFY_SOCKET`. Outside
    /// systemd this is a few `getenv` calls and nothing else.
    pub fn from_env() -> Systemd {
        let ours = std::env::var_os("LISTEN_PID")
            .is_some_and(|pid| pid.as_bytes() == std::process::id().to_string().as_bytes())
            && std::env::var_os("LISTEN_FDS").is_some();
        // Our own binary through /proc/self/exe (in the child, the same
        // file): it still runs after a package upgrade replaced the path
        // while we waited for the lock.
        let shim = ours.then(|| {
            let own = std::path::Path::new("/proc/self/exe");
            if own.exists() {
                Some(own.to_path_buf())
            } else {
                std::env::current_exe()
                    .map_err(|e| eprintln!("abslock: warning: cannot pass socket activation on ({e}): the command sees LISTEN_PID={}", std::process::id()))
                    .ok()
            }
        }).flatten();
        let relay = std::env::var_os("NOTIFY_SOCKET").and_then(|target| match Relay::new(&target) {
            Ok(relay) => relay,
            Err(e) => {
                eprintln!("abslock: warning: cannot relay the command's sd_notify messages ({e}); use NotifyAccess=all or --exec");
                None
            }
        });
        Systemd { shim, relay }
    }

    /// The [`Spawn`] for `command`: through the shim when socket activation
    /// is passed on, with the relay's `NOTIFY_SOCKET` when there is one.
    pub fn command(&self, command: &[OsString]) -> Spawn {
        let mut cmd = match &self.shim {
            Some(exe) => Spawn::new(
                exe,
                ["abslock".into(), SHIM.into()]
                    .into_iter()
                    .chain(command.iter().cloned())
                    .collect(),
            ),
            None => Spawn::new(&command[0], command.to_vec()),
        };
        if let Some(relay) = &self.relay {
            cmd.env("NOTIFY_SOCKET", &relay.ours);
        }
        cmd
    }

    /// The descriptor to poll for notifications, if we relay them and
    /// are not resting after a full batch.
    pub fn readiness(&self) -> Option<BorrowedFd<'_>> {
        let relay = self.relay.as_ref()?;
        match relay.resting_until.get() {
            Some(until) if Instant::now() < until => None,
            _ => Some(relay.socket.as_fd()),
        }
    }

    /// When the relay wants to be read again after resting, if it rests.
    pub fn deadline(&self) -> Option<Instant> {
        self.relay.as_ref()?.resting_until.get()
    }

    /// Passes on the notifications waiting from `child`'s process tree.
    pub fn relay(&self, child: u32) {
        if let Some(relay) = &self.relay {
            relay.pass_on(child);
        }
    }
}

impl Relay {
    /// `None` for a `NOTIFY_SOCKET` we cannot address (`vsock:`): the
    /// command then gets systemd's variable unchanged.
    fn new(target: &OsStr) -> std::io::Result<Option<Relay>> {
        let bytes = target.as_bytes();
        let target = match bytes.first() {
            Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
            Some(b'/') => SocketAddr::from_pathname(std::path::Path::new(target))?,
            _ => return Ok(None),
        };
        // Nothing on disk and nothing to clean up after a SIGKILL; a stranger
        // who finds the name is filtered out by its credentials.
        let mut last = None;
        for attempt in 0..8u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!("abslock-notify/{}/{nanos:x}{attempt}", std::process::id());
            let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
            match UnixDatagram::bind_addr(&addr) {
                Ok(socket) => {
                    socket.set_nonblocking(true)?;
                    rustix::net::sockopt::set_socket_passcred(&socket, true)?;
                    return Ok(Some(Relay {
                        socket,
                        resting_until: Cell::new(None),
                        window: Cell::new((Instant::now(), 0)),
                        stranger: Cell::new(None),
                        ours: format!("@{name}").into(),
                        target,
                        out: UnixDatagram::unbound()?,
                    }));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free name")))
    }

    fn pass_on(&self, child: u32) {
        let now = Instant::now();
        if self.resting_until.get().is_some_and(|until| now < until) {
            return;
        }
        self.resting_until.set(None);
        let (mut start, mut read) = self.window.get();
        if now.duration_since(start) >= REST {
            (start, read) = (now, 0);
        }
        let mut buf = [0u8; MESSAGE_MAX];
        while read < BATCH {
            read += 1;
            self.window.set((start, read));
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let Ok(msg) =
                rustix::net::recvmsg(&self.socket, &mut iov, &mut control, RecvFlags::DONTWAIT)
            else {
                return;
            };
            let sender = control.drain().find_map(|m| match m {
                RecvAncillaryMessage::ScmCredentials(cred) => Some(cred),
                _ => None,
            });
            let trusted = sender.is_some_and(|cred| {
                let uid = cred.uid.as_raw();
                if uid == 0 || uid == rustix::process::getuid().as_raw() {
                    return true;
                }
                if self
                    .stranger
                    .get()
                    .is_some_and(|(u, at)| u == uid && now.duration_since(at) < STRANGER_MEMORY)
                {
                    return false;
                }
                let ours = u32::try_from(cred.pid.as_raw_nonzero().get())
                    .is_ok_and(|pid| descends_from(pid, child));
                if !ours {
                    self.stranger.set(Some((uid, now)));
                }
                ours
            });
            if trusted {
                if let Some(kept) = filter(&buf[..msg.bytes.min(MESSAGE_MAX)]) {
                    let _ = self.out.send_to_addr(&kept, &self.target);
                }
            }
        }
        // A full window: more may be queued, maybe a flood. Rest.
        self.resting_until.set(start.checked_add(REST));
    }
}

/// The lines of a notification that may be relayed, joined by `\n`, or
/// `None` if nothing is left. systemd splits at `\n` and `\r` and drops
/// a message with a NUL byte (`manager_dispatch_notify_fd`,
/// `strv_split_newlines`), so the filter splits and drops alike: a line
/// it would see must be a line we saw.
fn filter(text: &[u8]) -> Option<Vec<u8>> {
    if text.contains(&0) {
        return None;
    }
    let kept: Vec<&[u8]> = text
        .split(|&b| b == b'\n' || b == b'\r')
        .filter(|line| !line.is_empty() && !DROPPED.iter().any(|d| line.starts_with(d.as_bytes())))
        .collect();
    (!kept.is_empty()).then(|| kept.join(&b'\n'))
}

/// Whether `pid` is `root` or one of its descendants.
fn descends_from(pid: u32, root: u32) -> bool {
    abslock::ProcessInfo::lineage(pid)
        .take(64)
        .any(|p| p == root)
}

/// `abslock __listen-pid COMMAND...`: sets `LISTEN_PID` to this process's
/// pid and execs COMMAND, which keeps the pid. Returns only on failure.
pub fn shim(mut command: impl Iterator<Item = OsString>) -> u8 {
    let Some(program) = command.next() else {
        eprintln!("abslock: {SHIM} needs a command");
        return crate::exit::USAGE;
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&program)
        .args(command)
        .env("LISTEN_PID", std::process::id().to_string())
        .exec();
    let failure = crate::supervise::child::cannot_execute(&program, &err);
    eprintln!("abslock: {failure}");
    failure.code
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn lines_are_split_and_dropped_as_systemd_splits_them() {
        let kept = |text: &[u8]| filter(text).map(|k| String::from_utf8(k).unwrap());
        assert_eq!(
            kept(b"READY=1\nSTATUS=up"),
            Some("READY=1\nSTATUS=up".into())
        );
        assert_eq!(kept(b"STATUS=x\rMAINPID=1234"), Some("STATUS=x".into()));
        assert_eq!(
            kept(b"STATUS=y\rFDSTOREREMOVE=1\r\nFDNAME=z\rREADY=1"),
            Some("STATUS=y\nREADY=1".into())
        );
        assert_eq!(kept(b"MAINPID=1\r\n"), None);
        assert_eq!(kept(b"STATUS=a\0MAINPID=5"), None);
    }
}
