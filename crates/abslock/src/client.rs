//! The client's side of the protocol: asking a lock's holder for its
//! `info`, sending it a message, asking it to stop.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::frame_io::{self, Received};
use crate::holder::Holder;
use crate::lock::Lock;
use crate::protocol::{Info, Message, Request, Response};
use crate::sys::{self, Connect};

/// The holder's answer to a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The exit status the holder suggests the sender end with.
    pub status: i32,
    /// The holder's reply, opaque to abslock.
    pub payload: Vec<u8>,
}

impl Lock {
    /// Asks the holder about itself: pid, uid, when it took the lock, its
    /// version and metadata. Holders of any uid are asked (`info` carries
    /// nothing of ours).
    ///
    /// # Errors
    /// [`Error::NotHeld`]; [`Error::Unresponsive`] if no answer came within
    /// `timeout` (a holder that is not an abslock guard, or is stuck);
    /// [`Error::ShuttingDown`]; [`Error::Protocol`] for a malformed answer.
    pub fn info(&self, timeout: Duration) -> Result<Info> {
        match ask(self, &Request::Info, timeout, false)? {
            Response::Info(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// Hands `message` (usually [`Message::from_env`]) to the holder and
    /// waits at most `timeout` for its reply. Only a trusted holder (see
    /// [`Lock::trust_uid`]) is sent anything: a squatter must not learn
    /// our arguments.
    ///
    /// # Errors
    /// [`Error::Squatted`] for an untrusted holder; [`Error::ShuttingDown`]
    /// if the holder is releasing the lock (try to take it instead);
    /// [`Error::NotServing`], [`Error::Refused`]; [`Error::Unresponsive`]
    /// on timeout (the holder is left alone); [`Error::NotHeld`];
    /// [`Error::InvalidRequest`] if `message` exceeds
    /// [`MAX_FRAME`](crate::protocol::MAX_FRAME).
    pub fn send(&self, message: &Message, timeout: Duration) -> Result<Reply> {
        match ask(self, &Request::Message(message.clone()), timeout, true)? {
            Response::Reply { status, payload } => Ok(Reply { status, payload }),
            other => Err(unexpected(other)),
        }
    }

    /// Asks a trusted holder to shut down, and returns once it said it
    /// will. It does not wait for the release: follow with
    /// [`Lock::wait_released`].
    ///
    /// # Errors
    /// As [`Lock::send`].
    pub fn request_stop(&self, timeout: Duration) -> Result<()> {
        match ask(self, &Request::Stop, timeout, true)? {
            Response::Stopping => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

/// One request, one answer, on a fresh connection.
fn ask(lock: &Lock, request: &Request, timeout: Duration, trusted_only: bool) -> Result<Response> {
    let frame = request
        .encode()
        .map_err(|e| Error::InvalidRequest(format!("cannot send this request: {e}")))?;
    let address = lock.name().address();
    // A timeout too large for the clock is as good as a year.
    let deadline = Instant::now()
        .checked_add(timeout)
        .or_else(|| Instant::now().checked_add(Duration::from_secs(365 * 86_400)))
        .ok_or_else(|| Error::InvalidRequest("the timeout is too long".into()))?;
    let conn =
        match sys::connect_abstract(address).map_err(Error::io("connecting to the lock holder"))? {
            Connect::Connected(conn) => conn,
            Connect::Refused | Connect::BacklogFull => {
                return Err(match Holder::discover(address)? {
                    None => Error::NotHeld,
                    Some(holder) => Error::Unresponsive {
                        holder,
                        waited: Duration::ZERO,
                    },
                })
            }
        };
    let holder = Holder::from_connection(address, conn.as_fd());
    if trusted_only && holder.uid().is_some_and(|uid| !lock.trusts(uid)) {
        return Err(Error::Squatted(holder));
    }
    let outcome = frame_io::send_all(conn.as_fd(), &frame, deadline)
        .and_then(|()| frame_io::recv_frame(conn.as_fd(), deadline));
    match outcome {
        Ok(Received::Frame(body)) => Response::decode(&body)
            .map_err(|e| Error::Protocol(format!("malformed answer from the holder: {e}"))),
        // The holder closed without answering: it released the lock.
        Ok(Received::Closed) => Ok(Response::ShuttingDown),
        Err(e) => Err(match e.kind() {
            io::ErrorKind::TimedOut => Error::Unresponsive {
                holder,
                waited: timeout,
            },
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::UnexpectedEof => Error::ShuttingDown,
            io::ErrorKind::InvalidData => Error::Protocol(e.to_string()),
            _ => Error::io("talking to the lock holder")(e),
        }),
    }
}

/// The error for an answer that does not fit the request.
fn unexpected(response: Response) -> Error {
    match response {
        Response::ShuttingDown => Error::ShuttingDown,
        Response::NotServing => Error::NotServing,
        Response::Refused(why) => Error::Refused(why),
        Response::Invalid(why) => {
            Error::Protocol(format!("the holder rejected the request: {why}"))
        }
        other => Error::Protocol(format!("unexpected answer: {other:?}")),
    }
}
