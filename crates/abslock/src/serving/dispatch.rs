//! What the serving thread does with a complete request: answer `info`
//! itself, hand `message` and `stop` to the application if it asked for
//! them, or turn the client away with a logged reason.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use crate::frame_io;
use crate::protocol::{Request, Response, HEADER_LEN};

use super::connection::{Conn, Progress};
use super::{lock, Shared};
use crate::requests::{Answerer, Incoming, Peer, Received, StopRequest};

/// Ends a connection the server is done with: a request to answer or hand
/// on, a client to turn away, or a waiter that left.
pub(crate) fn finish(conn: Conn, progress: Progress, shared: &Arc<Shared>) {
    match progress {
        Progress::Pending | Progress::Gone => {}
        Progress::Complete => dispatch(conn, shared),
        Progress::Reject(why) => turn_away(&conn.fd, shared, &why),
    }
}

/// Answers a complete request, or hands it to the application.
fn dispatch(conn: Conn, shared: &Arc<Shared>) {
    let request = match Request::decode(&conn.buf[HEADER_LEN..]) {
        Ok(request) => request,
        Err(e) => return turn_away(&conn.fd, shared, &e.to_string()),
    };
    let (what, unanswered) = match request {
        Request::Info => {
            let info = Response::Info(shared.info());
            return answer_now(&conn.fd, shared, &info);
        }
        Request::Message(_) => (
            "message",
            Response::Reply {
                status: 0,
                payload: Vec::new(),
            },
        ),
        Request::Stop => ("stop request", Response::Stopping),
    };
    let peer = Peer::of(conn.fd.as_fd());
    let allowed = peer.is_some_and(|p| lock(&shared.access).allows(p.uid));
    let Some(peer) = peer.filter(|_| allowed) else {
        let why = match peer {
            Some(p) => format!("uid {} may not send a {what}", p.uid),
            None => format!("a {what} without credentials"),
        };
        shared.reject(peer, &why);
        return answer_now(&conn.fd, shared, &Response::Refused(why));
    };
    let answer = Answerer {
        conn: Some(conn.fd),
        shared: Arc::clone(shared),
        unanswered,
    };
    let incoming = match request {
        Request::Message(message) => Incoming::Message(Received {
            message,
            peer,
            answer,
        }),
        _ => Incoming::Stop(StopRequest { peer, answer }),
    };
    let sink = lock(&shared.sink);
    let refused = match sink.as_ref() {
        Some(sink) => sink.send(incoming),
        None => Some(incoming),
    };
    drop(sink);
    if let Some(incoming) = refused {
        let mut answer = match incoming {
            Incoming::Message(m) => m.answer,
            Incoming::Stop(s) => s.answer,
        };
        let _ = answer.send(&Response::NotServing);
    }
}

/// Logs one line and tells the client why, if it still listens.
fn turn_away(conn: &OwnedFd, shared: &Shared, why: &str) {
    shared.reject(Peer::of(conn.as_fd()), why);
    answer_now(conn, shared, &Response::Invalid(why.to_string()));
}

/// Answers from the serving thread without waiting: a fresh connection has
/// room for a whole frame, and a client that hung up is not worth a wait.
fn answer_now(conn: &OwnedFd, shared: &Shared, response: &Response) {
    match response.encode() {
        Ok(frame) => {
            let _ = frame_io::send_all(conn.as_fd(), &frame, Instant::now());
        }
        Err(e) => shared.reject(Peer::of(conn.as_fd()), &format!("cannot answer: {e}")),
    }
}
