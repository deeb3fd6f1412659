//! Whole frames over non-blocking sockets, each bounded by a deadline.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};

use crate::protocol::{frame_len, FrameError, HEADER_LEN};
use crate::sys;

/// Writes all of `bytes`, waiting for room until `deadline`. `MSG_NOSIGNAL`:
/// a peer that hung up gives `EPIPE`, never a SIGPIPE that would kill us.
pub(crate) fn send_all(fd: BorrowedFd<'_>, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::net::send(fd, bytes, SendFlags::NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait(fd, PollFlags::OUT, deadline)?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What [`recv_frame`] got.
pub(crate) enum Received {
    /// A complete frame body.
    Frame(Vec<u8>),
    /// The peer closed (or reset) the connection before sending a byte.
    Closed,
}

/// Reads one frame and returns its body, waiting until `deadline`.
pub(crate) fn recv_frame(fd: BorrowedFd<'_>, deadline: Instant) -> io::Result<Received> {
    let mut header = [0u8; HEADER_LEN];
    if !recv_exact(fd, &mut header, deadline)? {
        return Ok(Received::Closed);
    }
    let len = frame_len(header).map_err(invalid)?;
    let mut body = vec![0u8; len];
    if !recv_exact(fd, &mut body, deadline)? {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the peer hung up before the end of a {len}-byte frame"),
        ));
    }
    Ok(Received::Frame(body))
}

/// Fills `buf`; `false` if the peer closed before the first byte.
fn recv_exact(fd: BorrowedFd<'_>, buf: &mut [u8], deadline: Instant) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::net::recv(fd, &mut buf[filled..], RecvFlags::empty()) {
            Ok((0, _)) | Err(Errno::CONNRESET) if filled == 0 => return Ok(false),
            Ok((0, _)) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok((n, _)) => filled += n,
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait(fd, PollFlags::IN, deadline)?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

fn wait(fd: BorrowedFd<'_>, events: PollFlags, deadline: Instant) -> io::Result<()> {
    let mut fds = [PollFd::new(&fd, events)];
    if sys::poll_many(&mut fds, Some(deadline))? == 0 {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(())
}

fn invalid(e: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
