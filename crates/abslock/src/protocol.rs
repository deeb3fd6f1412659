//! The wire protocol spoken on a lock's socket: framing, encoding and
//! decoding, nothing else (no I/O). `docs/protocol.md` is the specification.
//!
//! ```text
//! frame  = length:u32be body          1 <= length <= MAX_FRAME
//! body   = version:u8 kind:u8 field*
//! field  = tag:u8 length:u32be value
//! ```
//!
//! One request per connection: the client writes one frame, the holder
//! answers with one frame and closes. Fields with unknown tags are skipped,
//! so later versions can add fields without breaking older peers.
//!
//! ```
//! use abslock::__private::protocol::{Message, Request, HEADER_LEN};
//!
//! let request = Request::Message(Message {
//!     argv: vec![b"open".to_vec(), b"\xffnot-utf8".to_vec()],
//!     cwd: b"/tmp".to_vec(),
//!     payload: Vec::new(),
//! });
//! let frame = request.encode()?;
//! assert_eq!(Request::decode(&frame[HEADER_LEN..])?, request);
//! # Ok::<(), abslock::__private::protocol::FrameError>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The protocol version this library speaks.
pub const VERSION: u8 = 1;

/// The largest frame body, in bytes. A peer announcing more is rejected
/// before anything is allocated for it.
pub const MAX_FRAME: usize = 64 * 1024;

/// The length prefix of every frame: a big-endian `u32`.
pub const HEADER_LEN: usize = 4;

const REQ_INFO: u8 = 0x01;
const REQ_MESSAGE: u8 = 0x02;
const REQ_STOP: u8 = 0x03;
const RESP_INFO: u8 = 0x81;
const RESP_REPLY: u8 = 0x82;
const RESP_SHUTTING_DOWN: u8 = 0x83;
const RESP_STOPPING: u8 = 0x84;
const RESP_REFUSED: u8 = 0x85;
const RESP_NOT_SERVING: u8 = 0x86;
const RESP_INVALID: u8 = 0x87;

// Field tags, per kind.
const MSG_ARG: u8 = 1;
const MSG_CWD: u8 = 2;
const MSG_PAYLOAD: u8 = 3;
const INFO_PID: u8 = 1;
const INFO_UID: u8 = 2;
const INFO_ACQUIRED: u8 = 3;
const INFO_NAME: u8 = 4;
const INFO_VERSION: u8 = 5;
const INFO_META: u8 = 6;
const REPLY_STATUS: u8 = 1;
const REPLY_PAYLOAD: u8 = 2;
const REASON: u8 = 1;

/// A frame that cannot be encoded or decoded; the message says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(String);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FrameError {}

fn bad<T>(why: impl Into<String>) -> Result<T, FrameError> {
    Err(FrameError(why.into()))
}

/// What a client asks of the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Who are you? Answered with [`Response::Info`].
    Info,
    /// A second instance hands over its command line.
    Message(Message),
    /// Please shut down cleanly.
    Stop,
}

/// A second instance's command line, as raw bytes (not lossy UTF-8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The arguments, the program name first as the sender saw it.
    pub argv: Vec<Vec<u8>>,
    /// The sender's working directory.
    pub cwd: Vec<u8>,
    /// Anything else the application wants to pass; opaque to abslock.
    pub payload: Vec<u8>,
}

impl Message {
    /// This process's arguments and working directory, with no payload.
    pub fn from_env() -> Message {
        use std::os::unix::ffi::OsStringExt;
        Message {
            argv: std::env::args_os().map(OsStringExt::into_vec).collect(),
            cwd: std::env::current_dir()
                .map(|d| d.into_os_string().into_vec())
                .unwrap_or_default(),
            payload: Vec::new(),
        }
    }
}

/// What the holder says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    /// The holder's pid, in the holder's pid namespace.
    pub pid: u32,
    /// The holder's uid.
    pub uid: u32,
    /// When the lock was acquired, in microseconds since the Unix epoch.
    pub acquired_micros: u64,
    /// The lock's abstract address.
    pub name: Vec<u8>,
    /// The holder's self-declared version (empty if it set none).
    pub version: String,
    /// Key/value pairs the holder chose to publish.
    pub metadata: Vec<(String, String)>,
}

impl Info {
    /// When the lock was acquired.
    pub fn acquired(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.acquired_micros)
    }
}

/// What the holder answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The answer to [`Request::Info`].
    Info(Info),
    /// The answer to a [`Request::Message`]: the exit status the second
    /// instance should end with, and a reply for it.
    Reply {
        /// Exit status for the sender.
        status: i32,
        /// Opaque reply.
        payload: Vec<u8>,
    },
    /// The holder is releasing the lock; the client may try to take it.
    ShuttingDown,
    /// The answer to [`Request::Stop`]: the holder will shut down.
    Stopping,
    /// The holder will not do this (for example: the client's uid is not
    /// allowed to); the reason is for humans.
    Refused(String),
    /// The holder does not serve messages or stop requests.
    NotServing,
    /// The request was malformed; the reason is for humans.
    Invalid(String),
}

impl Request {
    /// The complete frame, length prefix included.
    ///
    /// # Errors
    /// If the body would exceed [`MAX_FRAME`].
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        match self {
            Request::Info => Body::new(REQ_INFO).finish(),
            Request::Stop => Body::new(REQ_STOP).finish(),
            Request::Message(m) => {
                let mut body = Body::new(REQ_MESSAGE);
                for arg in &m.argv {
                    body.field(MSG_ARG, arg);
                }
                body.field(MSG_CWD, &m.cwd);
                body.field(MSG_PAYLOAD, &m.payload);
                body.finish()
            }
        }
    }

    /// Decodes a frame body (without the length prefix).
    ///
    /// # Errors
    /// If the version is not [`VERSION`], the kind is unknown, or a field
    /// is truncated or has the wrong size.
    pub fn decode(body: &[u8]) -> Result<Request, FrameError> {
        let (kind, mut fields) = split(body)?;
        match kind {
            REQ_INFO | REQ_STOP => {
                // No fields defined yet, but a malformed one is still an error.
                fields.try_for_each(|f| f.map(drop))?;
                Ok(if kind == REQ_INFO {
                    Request::Info
                } else {
                    Request::Stop
                })
            }
            REQ_MESSAGE => {
                let mut m = Message::default();
                for field in fields {
                    let (tag, value) = field?;
                    match tag {
                        MSG_ARG => m.argv.push(value.to_vec()),
                        MSG_CWD => m.cwd = value.to_vec(),
                        MSG_PAYLOAD => m.payload = value.to_vec(),
                        _ => {}
                    }
                }
                Ok(Request::Message(m))
            }
            other => bad(format!("unknown request kind {other:#04x}")),
        }
    }
}

impl Response {
    /// The complete frame, length prefix included.
    ///
    /// # Errors
    /// If the body would exceed [`MAX_FRAME`].
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        match self {
            Response::Info(i) => {
                let mut body = Body::new(RESP_INFO);
                body.field(INFO_PID, &i.pid.to_be_bytes());
                body.field(INFO_UID, &i.uid.to_be_bytes());
                body.field(INFO_ACQUIRED, &i.acquired_micros.to_be_bytes());
                body.field(INFO_NAME, &i.name);
                body.field(INFO_VERSION, i.version.as_bytes());
                for (key, value) in &i.metadata {
                    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
                    let mut pair = key_len.to_be_bytes().to_vec();
                    pair.extend_from_slice(key.as_bytes());
                    pair.extend_from_slice(value.as_bytes());
                    body.field(INFO_META, &pair);
                }
                body.finish()
            }
            Response::Reply { status, payload } => {
                let mut body = Body::new(RESP_REPLY);
                body.field(REPLY_STATUS, &status.to_be_bytes());
                body.field(REPLY_PAYLOAD, payload);
                body.finish()
            }
            Response::ShuttingDown => Body::new(RESP_SHUTTING_DOWN).finish(),
            Response::Stopping => Body::new(RESP_STOPPING).finish(),
            Response::NotServing => Body::new(RESP_NOT_SERVING).finish(),
            Response::Refused(why) => Body::new(RESP_REFUSED).reason(why).finish(),
            Response::Invalid(why) => Body::new(RESP_INVALID).reason(why).finish(),
        }
    }

    /// Decodes a frame body (without the length prefix).
    ///
    /// # Errors
    /// As [`Request::decode`].
    pub fn decode(body: &[u8]) -> Result<Response, FrameError> {
        let (kind, fields) = split(body)?;
        let mut fields = fields.collect::<Result<Vec<_>, _>>()?.into_iter();
        match kind {
            RESP_INFO => {
                let mut i = Info::default();
                for (tag, value) in fields {
                    match tag {
                        INFO_PID => i.pid = u32::from_be_bytes(fixed(tag, value)?),
                        INFO_UID => i.uid = u32::from_be_bytes(fixed(tag, value)?),
                        INFO_ACQUIRED => i.acquired_micros = u64::from_be_bytes(fixed(tag, value)?),
                        INFO_NAME => i.name = value.to_vec(),
                        INFO_VERSION => i.version = text(value),
                        INFO_META => i.metadata.push(meta(value)?),
                        _ => {}
                    }
                }
                Ok(Response::Info(i))
            }
            RESP_REPLY => {
                let (mut status, mut payload) = (0, Vec::new());
                for (tag, value) in fields {
                    match tag {
                        REPLY_STATUS => status = i32::from_be_bytes(fixed(tag, value)?),
                        REPLY_PAYLOAD => payload = value.to_vec(),
                        _ => {}
                    }
                }
                Ok(Response::Reply { status, payload })
            }
            RESP_SHUTTING_DOWN => Ok(Response::ShuttingDown),
            RESP_STOPPING => Ok(Response::Stopping),
            RESP_NOT_SERVING => Ok(Response::NotServing),
            RESP_REFUSED => Ok(Response::Refused(reason(&mut fields))),
            RESP_INVALID => Ok(Response::Invalid(reason(&mut fields))),
            other => bad(format!("unknown response kind {other:#04x}")),
        }
    }
}

/// The body length announced by a frame's header.
///
/// # Errors
/// If it is zero or exceeds [`MAX_FRAME`].
pub fn frame_len(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    match len {
        0 => bad("empty frame"),
        n if n > MAX_FRAME => bad(format!(
            "frame of {n} bytes exceeds the {MAX_FRAME}-byte limit"
        )),
        n => Ok(n),
    }
}

/// A body under construction.
struct Body(Vec<u8>);

impl Body {
    fn new(kind: u8) -> Body {
        let mut bytes = vec![0; HEADER_LEN];
        bytes.extend_from_slice(&[VERSION, kind]);
        Body(bytes)
    }

    fn field(&mut self, tag: u8, value: &[u8]) -> &mut Body {
        // A value too long for u32 cannot fit in a frame anyway; finish()
        // rejects the frame, so the saturated length is never sent.
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.0.push(tag);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(value);
        self
    }

    fn reason(mut self, why: &str) -> Body {
        self.field(REASON, why.as_bytes());
        self
    }

    fn finish(&mut self) -> Result<Vec<u8>, FrameError> {
        let len = self.0.len() - HEADER_LEN;
        if len > MAX_FRAME {
            return bad(format!(
                "a frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"
            ));
        }
        let mut bytes = std::mem::take(&mut self.0);
        bytes[..HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(bytes)
    }
}

type Field<'a> = Result<(u8, &'a [u8]), FrameError>;

/// Checks the version and returns the kind and an iterator over the fields.
fn split(body: &[u8]) -> Result<(u8, impl Iterator<Item = Field<'_>>), FrameError> {
    let [version, kind, rest @ ..] = body else {
        return bad("frame shorter than its version and kind");
    };
    if *version != VERSION {
        return bad(format!(
            "protocol version {version} is not supported (this side speaks {VERSION})"
        ));
    }
    let mut rest = rest;
    let fields = std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let field = match rest {
            [tag, a, b, c, d, tail @ ..] => {
                let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
                match (tail.get(..len), tail.get(len..)) {
                    (Some(value), Some(after)) => {
                        rest = after;
                        Ok((*tag, value))
                    }
                    _ => bad(format!(
                        "field {tag} announces {len} bytes, but only {} follow",
                        tail.len()
                    )),
                }
            }
            _ => bad("truncated field header"),
        };
        if field.is_err() {
            rest = &[];
        }
        Some(field)
    });
    Ok((*kind, fields))
}

fn fixed<const N: usize>(tag: u8, value: &[u8]) -> Result<[u8; N], FrameError> {
    value
        .try_into()
        .or_else(|_| bad(format!("field {tag} has {} bytes, not {N}", value.len())))
}

fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

fn meta(value: &[u8]) -> Result<(String, String), FrameError> {
    let [a, b, c, d, rest @ ..] = value else {
        return bad("truncated metadata entry");
    };
    let key_len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    match (rest.get(..key_len), rest.get(key_len..)) {
        (Some(key), Some(value)) => Ok((text(key), text(value))),
        _ => bad("metadata key longer than its entry"),
    }
}

fn reason<'a>(fields: impl Iterator<Item = (u8, &'a [u8])>) -> String {
    fields
        .filter(|(tag, _)| *tag == REASON)
        .last()
        .map(|(_, v)| text(v))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &[u8]) -> &[u8] {
        let len = frame_len(frame[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(frame.len(), HEADER_LEN + len);
        &frame[HEADER_LEN..]
    }

    #[test]
    fn every_request_round_trips() {
        for request in [
            Request::Info,
            Request::Stop,
            Request::Message(Message::default()),
            Request::Message(Message {
                argv: vec![b"a".to_vec(), vec![0xff, 0, 0xfe], Vec::new()],
                cwd: b"/srv".to_vec(),
                payload: vec![7; 1000],
            }),
        ] {
            let frame = request.encode().unwrap();
            assert_eq!(Request::decode(body(&frame)).unwrap(), request);
        }
    }

    #[test]
    fn every_response_round_trips() {
        for response in [
            Response::Info(Info {
                pid: 42,
                uid: 1000,
                acquired_micros: 1_700_000_000_123_456,
                name: b"abslock/user/1000/x".to_vec(),
                version: "1.2.3".into(),
                metadata: vec![("k".into(), "v".into()), (String::new(), "é".into())],
            }),
            Response::Reply {
                status: -3,
                payload: b"done".to_vec(),
            },
            Response::ShuttingDown,
            Response::Stopping,
            Response::NotServing,
            Response::Refused("uid 7 may not".into()),
            Response::Invalid("bad".into()),
        ] {
            let frame = response.encode().unwrap();
            assert_eq!(Response::decode(body(&frame)).unwrap(), response);
        }
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let huge = Request::Message(Message {
            payload: vec![0; MAX_FRAME],
            ..Message::default()
        });
        assert!(huge.encode().unwrap_err().to_string().contains("limit"));
        assert!(frame_len((MAX_FRAME as u32 + 1).to_be_bytes()).is_err());
        assert!(frame_len([0; 4]).is_err());
        assert_eq!(frame_len((MAX_FRAME as u32).to_be_bytes()), Ok(MAX_FRAME));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let cases: &[(&[u8], &str)] = &[
            (&[], "shorter"),
            (&[1], "shorter"),
            (&[2, REQ_INFO], "version 2"),
            (&[1, 0x7f], "unknown request kind"),
            (&[1, REQ_MESSAGE, MSG_ARG, 0, 0], "truncated field header"),
            (
                &[1, REQ_MESSAGE, MSG_ARG, 0, 0, 0, 9, b'x'],
                "announces 9 bytes",
            ),
        ];
        for (bytes, why) in cases {
            let err = Request::decode(bytes).unwrap_err().to_string();
            assert!(err.contains(why), "{bytes:?}: {err}");
        }
        let short_pid = [1, RESP_INFO, INFO_PID, 0, 0, 0, 2, 0, 1];
        assert!(Response::decode(&short_pid).is_err());
        let bad_meta = [1, RESP_INFO, INFO_META, 0, 0, 0, 4, 0, 0, 0, 9];
        assert!(Response::decode(&bad_meta).is_err());
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut frame = Request::Message(Message {
            argv: vec![b"x".to_vec()],
            ..Message::default()
        })
        .encode()
        .unwrap();
        frame.extend_from_slice(&[200, 0, 0, 0, 3, 1, 2, 3]);
        let decoded = Request::decode(&frame[HEADER_LEN..]).unwrap();
        let Request::Message(m) = decoded else {
            panic!("{decoded:?}")
        };
        assert_eq!(m.argv, vec![b"x".to_vec()]);
    }
}
