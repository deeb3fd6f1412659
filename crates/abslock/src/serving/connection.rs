//! One accepted connection: reading its request within bounds, and which
//! connection to evict when too many are kept.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::protocol::{frame_len, HEADER_LEN};
use crate::sys;

/// Connections kept open at most, and never more than half the soft
/// `RLIMIT_NOFILE` (see [`capacity`]), so that the holder never runs out of
/// descriptors for the requests it must answer.
const MAX_KEPT: usize = 1024;

/// How old an idle connection of the busiest uid must be before a newcomer
/// of that same uid may evict it. Bounds the churn when more waiters queue
/// than are kept. A newcomer of a uid with fewer connections evicts at
/// once: one user cannot starve another's requests.
const EVICT_AGE: Duration = Duration::from_secs(1);

/// How long a client may take to send a request once it sent its first
/// byte.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// One accepted connection and the request it is sending, if any.
pub(crate) struct Conn {
    pub(crate) fd: OwnedFd,
    /// The client's uid (`SO_PEERCRED`), for fair eviction.
    pub(crate) uid: Option<u32>,
    accepted: Instant,
    pub(crate) started: Option<Instant>,
    pub(super) buf: Vec<u8>,
}

pub(crate) enum Progress {
    /// Nothing more to read now.
    Pending,
    /// A whole frame is in `buf`.
    Complete,
    /// The client hung up without sending anything: a waiter leaving.
    Gone,
    /// Turn the client away, for this reason.
    Reject(String),
}

impl Conn {
    pub(crate) fn new(fd: OwnedFd) -> Conn {
        Conn {
            uid: sys::peer_cred(fd.as_fd()).ok().map(|c| c.uid),
            fd,
            accepted: Instant::now(),
            started: None,
            buf: Vec::new(),
        }
    }

    /// How many bytes the frame being read has in all, once known.
    fn wanted(&self) -> std::result::Result<usize, String> {
        match self.buf.get(..HEADER_LEN) {
            Some(header) => {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(header);
                frame_len(h)
                    .map(|len| HEADER_LEN + len)
                    .map_err(|e| e.to_string())
            }
            None => Ok(HEADER_LEN),
        }
    }

    /// Reads what is there, never past the end of one frame, so a flood
    /// costs at most one frame of memory and reading.
    pub(crate) fn read(&mut self) -> Progress {
        let mut chunk = [0u8; 4096];
        loop {
            let want = match self.wanted() {
                Ok(want) => want,
                Err(why) => return Progress::Reject(why),
            };
            if self.buf.len() == want && want > HEADER_LEN {
                return Progress::Complete;
            }
            let room = (want - self.buf.len()).min(chunk.len());
            match rustix::io::read(&self.fd, &mut chunk[..room]) {
                Ok(0) if self.buf.is_empty() => return Progress::Gone,
                Ok(0) => {
                    return Progress::Reject(format!(
                        "hung up after {} of {want} bytes (truncated frame)",
                        self.buf.len()
                    ))
                }
                Ok(n) => {
                    self.started.get_or_insert_with(Instant::now);
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(Errno::AGAIN) => return Progress::Pending,
                Err(Errno::INTR) => {}
                Err(_) if self.buf.is_empty() => return Progress::Gone,
                Err(e) => return Progress::Reject(format!("read failed: {e}")),
            }
        }
    }

    /// How many bytes of a request it has sent.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn overdue(&self, now: Instant) -> bool {
        self.started
            .is_some_and(|t| now.saturating_duration_since(t) >= READ_TIMEOUT)
    }

    fn idle_for(&self, now: Instant) -> Option<Duration> {
        self.started
            .is_none()
            .then(|| now.saturating_duration_since(self.accepted))
    }
}

/// How many connections to keep: [`MAX_KEPT`], but at most half the soft
/// descriptor limit, so that a client flood cannot use up the descriptors
/// the holder needs to accept and answer a request.
pub(crate) fn capacity() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let half = soft.map_or(MAX_KEPT, |s| usize::try_from(s / 2).unwrap_or(MAX_KEPT));
    half.clamp(8, MAX_KEPT)
}

/// The connection to close to make room for `newcomer` (a uid, if known),
/// or `None` if the newcomer should rather be turned away. The victim
/// belongs to the uid with the most connections: the oldest of its
/// connections, if the newcomer's uid has fewer, so that one user's flood
/// cannot starve another's requests; otherwise, among that uid's idle
/// connections, one older than [`EVICT_AGE`].
pub(crate) fn victim(
    conns: &HashMap<u32, Conn>,
    newcomer: Option<u32>,
    now: Instant,
) -> Option<u32> {
    let mut counts: HashMap<Option<u32>, usize> = HashMap::new();
    for c in conns.values() {
        *counts.entry(c.uid).or_default() += 1;
    }
    let (&busiest, &most) = counts.iter().max_by_key(|&(_, n)| *n)?;
    let mine = counts.get(&newcomer).copied().unwrap_or(0);
    let theirs = conns.iter().filter(|(_, c)| c.uid == busiest);
    if mine + 1 < most {
        theirs.min_by_key(|(_, c)| c.accepted).map(|(&t, _)| t)
    } else {
        theirs
            .filter(|(_, c)| c.idle_for(now).is_some_and(|d| d >= EVICT_AGE))
            .min_by_key(|(_, c)| c.accepted)
            .map(|(&t, _)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_favours_the_uid_with_fewer_connections() {
        let now = Instant::now();
        let old = now.checked_sub(EVICT_AGE * 2).unwrap_or(now);
        let conn = |uid: u32, accepted: Instant| {
            let (fd, _) = rustix::net::socketpair(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )
            .unwrap();
            Conn {
                fd,
                uid: Some(uid),
                accepted,
                started: None,
                buf: Vec::new(),
            }
        };
        // uid 7 floods with fresh connections; uid 8 has one.
        let mut conns: HashMap<u32, Conn> = (0..5).map(|t| (t, conn(7, now))).collect();
        conns.insert(5, conn(8, old));
        // A newcomer of uid 8 evicts one of uid 7's, however young.
        let v = victim(&conns, Some(8), now).unwrap();
        assert_eq!(conns[&v].uid, Some(7));
        // Another of uid 7 must wait until one of its own is old enough.
        assert_eq!(victim(&conns, Some(7), now), None);
        conns.get_mut(&2).unwrap().accepted = old;
        assert_eq!(victim(&conns, Some(7), now), Some(2));
    }
}
