//! Exact facts about Unix sockets from the kernel's `sock_diag` netlink
//! interface (`sock_diag(7)`, `NETLINK_SOCK_DIAG` with `AF_UNIX`).
//!
//! `/proc/net/unix` prints a NUL byte of an abstract name as `@`, so the
//! names `db@prod` and `db\0prod` look alike there, and it has no uid.
//! `sock_diag` returns the name's exact bytes (`UNIX_DIAG_NAME`, the
//! `sun_path` the socket was bound with), and since Linux 5.3 the uid that
//! owns the socket (`UNIX_DIAG_UID`: the creator's fsuid, which an
//! unprivileged user cannot forge). Like `/proc/net/unix` it lists the
//! sockets of the caller's network namespace and needs no privilege.
//!
//! Everything here is plain byte encoding of `linux/netlink.h`,
//! `linux/sock_diag.h` and `linux/unix_diag.h`: no `unsafe`.

use std::io;
use std::os::fd::OwnedFd;

use rustix::net::{
    netlink, recv, send, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType,
};

use crate::procfs::UnixSocket;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
const UNIX_DIAG_MSG_LEN: usize = 16;

const UDIAG_SHOW_NAME: u32 = 0x1;
const UDIAG_SHOW_UID: u32 = 0x40;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_UID: u16 = 7;

/// `TCP_*` states as `unix_diag_msg.udiag_state` reports them.
const TCP_ESTABLISHED: u8 = 1;
const TCP_SYN_SENT: u8 = 2;
const TCP_LISTEN: u8 = 10;

/// Every Unix socket of the caller's network namespace, with exact names
/// and owners.
///
/// # Errors
/// If the netlink socket cannot be created or the kernel reports an error
/// (a kernel built without `CONFIG_UNIX_DIAG`).
pub fn unix_sockets() -> io::Result<Vec<UnixSocket>> {
    let fd = socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?;
    send(&fd, &request(), SendFlags::empty())?;
    read_dump(&fd)
}

/// `nlmsghdr` + `unix_diag_req` asking for every socket in every state.
fn request() -> Vec<u8> {
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + 24);
    msg.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it
    msg.push(libc::AF_UNIX as u8); // sdiag_family
    msg.push(0); // sdiag_protocol
    msg.extend_from_slice(&0u16.to_ne_bytes()); // pad
    msg.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: all
    msg.extend_from_slice(&0u32.to_ne_bytes()); // udiag_ino
    msg.extend_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_UID).to_ne_bytes());
    msg.extend_from_slice(&[0u8; 8]); // udiag_cookie
    msg
}

fn read_dump(fd: &OwnedFd) -> io::Result<Vec<UnixSocket>> {
    let mut sockets = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, _) = recv(fd, &mut buf[..], RecvFlags::empty())?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "sock_diag dump ended without NLMSG_DONE",
            ));
        }
        if parse_messages(&buf[..n.min(buf.len())], &mut sockets)? {
            return Ok(sockets);
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Parses one datagram of netlink messages into `out`; returns whether the
/// dump is complete.
pub(crate) fn parse_messages(mut data: &[u8], out: &mut Vec<UnixSocket>) -> io::Result<bool> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag message");
    while data.len() >= NLMSG_HDRLEN {
        let len = u32_at(data, 0).ok_or_else(malformed)? as usize;
        let kind = u16_at(data, 4).ok_or_else(malformed)?;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(malformed());
        }
        let payload = &data[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(payload, 0).ok_or_else(malformed)? as i32;
                return Err(io::Error::from_raw_os_error(errno.saturating_neg()));
            }
            SOCK_DIAG_BY_FAMILY => {
                if let Some(socket) = parse_socket(payload) {
                    out.push(socket);
                }
            }
            _ => {}
        }
        data = data.get(align4(len)..).unwrap_or_default();
    }
    Ok(false)
}

/// `unix_diag_msg` followed by its attributes.
fn parse_socket(payload: &[u8]) -> Option<UnixSocket> {
    let socket_type = u16::from(*payload.get(1)?);
    let state = *payload.get(2)?;
    let inode = u64::from(u32_at(payload, 4)?);
    let mut name = None;
    let mut uid = None;
    let mut attrs = payload.get(UNIX_DIAG_MSG_LEN..)?;
    while attrs.len() >= 4 {
        let len = usize::from(u16_at(attrs, 0)?);
        let kind = u16_at(attrs, 2)?;
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        match kind {
            UNIX_DIAG_NAME => {
                name = value.strip_prefix(&[0]).map(<[u8]>::to_vec);
            }
            UNIX_DIAG_UID => uid = u32_at(value, 0),
            _ => {}
        }
        attrs = attrs.get(align4(len)..).unwrap_or_default();
    }
    Some(UnixSocket {
        inode,
        socket_type,
        state: match state {
            TCP_ESTABLISHED => crate::procfs::SS_CONNECTED,
            TCP_SYN_SENT => crate::procfs::SS_CONNECTING,
            _ => crate::procfs::SS_UNCONNECTED,
        },
        listening: state == TCP_LISTEN,
        abstract_name: name,
        uid,
        exact: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(payload);
        m.resize(align4(m.len()), 0);
        m
    }

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize(align4(a.len()), 0);
        a
    }

    #[test]
    fn parses_names_with_nul_bytes_and_uids() {
        let mut diag = vec![1u8, 1, TCP_LISTEN, 0];
        diag.extend_from_slice(&4242u32.to_ne_bytes());
        diag.extend_from_slice(&[0u8; 8]);
        diag.extend(attr(UNIX_DIAG_NAME, b"\0db\0prod"));
        diag.extend(attr(UNIX_DIAG_UID, &65534u32.to_ne_bytes()));
        let mut data = message(SOCK_DIAG_BY_FAMILY, &diag);
        data.extend(message(NLMSG_DONE, &[0; 4]));
        let mut out = Vec::new();
        assert!(parse_messages(&data, &mut out).unwrap());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].abstract_name.as_deref(), Some(&b"db\0prod"[..]));
        assert_eq!((out[0].inode, out[0].uid), (4242, Some(65534)));
        assert!(out[0].listening && out[0].owns_name());
    }

    #[test]
    fn truncated_and_error_messages_are_errors_not_panics() {
        let mut out = Vec::new();
        let mut bad = message(SOCK_DIAG_BY_FAMILY, &[1, 1]);
        bad[0] = 200; // longer than the data
        assert!(parse_messages(&bad, &mut out).is_err());
        let err = message(NLMSG_ERROR, &(-libc::ENOENT).to_ne_bytes());
        let e = parse_messages(&err, &mut out).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        // A socket message too short to hold its fixed part is skipped.
        assert!(!parse_messages(&message(SOCK_DIAG_BY_FAMILY, &[1]), &mut out).unwrap());
        assert!(out.is_empty());
    }

    #[test]
    fn sees_our_own_listener_exactly() {
        let name = format!("abslock-diag-test/{}\0x", std::process::id());
        let bound = match crate::sys::bind_abstract(name.as_bytes()).unwrap() {
            crate::sys::Bind::Bound(fd) => fd,
            crate::sys::Bind::InUse => panic!("name in use"),
        };
        crate::sys::listen_on(std::os::fd::AsFd::as_fd(&bound), 1).unwrap();
        let inode = crate::sys::inode(&bound).unwrap();
        let all = unix_sockets().unwrap();
        let me = all.iter().find(|s| s.inode == inode).expect("our socket");
        assert_eq!(me.abstract_name.as_deref(), Some(name.as_bytes()));
        assert_eq!(me.uid, Some(rustix::process::geteuid().as_raw()));
        assert!(me.listening && me.exact);
    }
}
