//! The queue of a socket name's waiters: first come, first served, one
//! waiter woken per release.
//!
//! A socket name has no queue of its own: the release of the holder's
//! listener resets every connection to it at once (`unix_release_sock`),
//! so every waiter wakes and the first to `bind(2)` wins, in no particular
//! order. So a waiter that finds the name taken also takes a **ticket**: it
//! binds and listens on the abstract name `NAME\0q` followed by the
//! `CLOCK_MONOTONIC` time it came, in 16 hex digits. It then waits on the
//! ticket just before its own (the latest earlier one, owned by a uid the
//! lock trusts, found with `sock_diag`), until that one is gone; only the
//! first in line waits on the name itself. A ticket is a socket name too,
//! so it lives exactly as long as its waiter (rule 1 of
//! `docs/semantics.md`): a waiter that takes the lock, gives up or dies
//! leaves the queue at once, and the one behind it moves up. A release
//! therefore wakes one waiter, the first in line.
//!
//! Where no ticket can be made (a name too long for the suffix, a kernel
//! without `sock_diag` to find the tickets by their exact bytes), waiters
//! wait on the name and race, as before. A newcomer that tries the name
//! in the instant between a release and the first waiter's `bind` can
//! still take it first, as with `flock(2)`. Waiters in different time
//! namespaces with different `CLOCK_MONOTONIC` offsets are ordered by
//! their own clocks.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use crate::access::Access;
use crate::error::{Error, Result};
use crate::name::MAX_ADDRESS_LEN;
use crate::procfs::SOCK_STREAM;
use crate::sys::{self, Bind, Connect};

/// What follows the lock's address in a ticket's: a NUL, `q`, 16 hex digits.
const SUFFIX_LEN: usize = 2 + 16;

/// A waiter's place in the queue of one lock.
#[derive(Debug)]
pub(crate) struct Ticket {
    /// When it came: the ticket's number.
    number: u64,
    /// Bound to the ticket's name and listening, so that the waiter behind
    /// can wait for it to go.
    _socket: OwnedFd,
}

/// The start of every ticket name of the lock at `lock`.
fn prefix(lock: &[u8]) -> Vec<u8> {
    let mut prefix = lock.to_vec();
    prefix.extend_from_slice(b"\0q");
    prefix
}

/// The ticket number in `name`, if it is a ticket of the lock at `lock`.
fn number_in(lock: &[u8], name: &[u8]) -> Option<u64> {
    let digits = name.strip_prefix(prefix(lock).as_slice())?;
    if digits.len() != 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Whether the abstract `name` is a ticket of some lock (not a lock).
pub fn is_ticket(name: &[u8]) -> bool {
    name.len() > SUFFIX_LEN && {
        let (lock, rest) = name.split_at(name.len() - SUFFIX_LEN);
        rest.starts_with(b"\0q") && number_in(lock, name).is_some()
    }
}

impl Ticket {
    /// Joins the queue of the lock at `lock`; `None` where no ticket can
    /// be made (module docs).
    pub(crate) fn take(lock: &[u8]) -> Option<Ticket> {
        if lock.len() + SUFFIX_LEN > MAX_ADDRESS_LEN {
            return None;
        }
        // Two waiters that come in the same nanosecond: the second binds
        // the next reading.
        for _ in 0..8 {
            let number = sys::monotonic_ns();
            let mut name = prefix(lock);
            name.extend_from_slice(format!("{number:016x}").as_bytes());
            match sys::bind_abstract(&name).ok()? {
                Bind::InUse => continue,
                Bind::Bound(socket) => {
                    sys::listen_on(socket.as_fd(), 8).ok()?;
                    return Some(Ticket {
                        number,
                        _socket: socket,
                    });
                }
            }
        }
        None
    }

    /// The name of the ticket just before ours in the queue of the lock at
    /// `lock` (of a uid `trusted` allows), or `None` if we are first (or
    /// the tickets cannot be listed: then we wait on the name).
    pub(crate) fn ahead(&self, lock: &[u8], trusted: &Access) -> Option<Vec<u8>> {
        let sockets = crate::sock_diag::unix_sockets().ok()?;
        sockets
            .into_iter()
            .filter(|s| s.socket_type == SOCK_STREAM && s.listening && s.exact)
            .filter(|s| s.uid.is_some_and(|uid| trusted.allows(uid)))
            .filter_map(|s| {
                let name = s.abstract_name?;
                let number = number_in(lock, &name)?;
                (number < self.number).then_some((number, name))
            })
            .max_by_key(|(number, _)| *number)
            .map(|(_, name)| name)
    }
}

/// Waits until the ticket `name` is gone (its waiter took the lock, gave
/// up or died), or `deadline`; `false` if the deadline passed first.
pub(crate) fn wait_gone(name: &[u8], deadline: Option<Instant>) -> Result<bool> {
    match sys::connect_abstract(name).map_err(Error::io("joining the lock's queue"))? {
        Connect::Connected(conn) => sys::wait_event(conn.as_fd(), deadline)
            .map_err(Error::io("waiting in the lock's queue")),
        // Gone already, or its backlog is full (look again, after a
        // moment, rather than spin).
        Connect::Refused => Ok(true),
        Connect::BacklogFull => {
            // Never past the deadline: a timeout ends on time.
            let pause = Instant::now().checked_add(crate::wait::MAX_BACKOFF);
            let until = match (pause, deadline) {
                (Some(p), Some(d)) => Some(p.min(d)),
                (p, d) => p.or(d),
            };
            let _ = sys::poll_many(&mut [], until);
            Ok(deadline.is_none_or(|d| Instant::now() < d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_names_are_told_from_lock_names() {
        let lock = b"job\0x";
        let mut name = prefix(lock);
        name.extend_from_slice(b"00000000000000ff");
        assert_eq!(number_in(lock, &name), Some(255));
        assert!(is_ticket(&name));
        assert_eq!(number_in(b"job", &name), None, "another lock's ticket");
        assert!(!is_ticket(b"job"));
        assert!(!is_ticket(b"job\0q0000000000000zzz"));
        assert!(!is_ticket(b"\0q00000000000000ff"), "no lock before it");
    }

    /// Tickets taken one after another are in that order, and a waiter
    /// sees only the tickets before its own, of uids it trusts.
    #[test]
    fn each_ticket_sees_the_one_before_it() {
        let lock = format!("abslock-test-queue-{}", std::process::id()).into_bytes();
        let first = Ticket::take(&lock).unwrap();
        let second = Ticket::take(&lock).unwrap();
        let third = Ticket::take(&lock).unwrap();
        assert!(first.number < second.number && second.number < third.number);
        let me = Access::same_user();
        let name_of = |t: &Ticket| {
            let mut name = prefix(&lock);
            name.extend_from_slice(format!("{:016x}", t.number).as_bytes());
            name
        };
        assert_eq!(first.ahead(&lock, &me), None);
        assert_eq!(third.ahead(&lock, &me), Some(name_of(&second)));
        drop(second);
        assert_eq!(third.ahead(&lock, &me), Some(name_of(&first)));
        assert_eq!(third.ahead(&lock, &Access::only([])), None, "untrusted");
        assert!(wait_gone(&name_of(&third), Some(Instant::now())).is_ok_and(|gone| !gone));
        drop(first);
        assert_eq!(third.ahead(&lock, &me), None);
    }
}
