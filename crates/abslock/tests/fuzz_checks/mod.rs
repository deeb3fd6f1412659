//! Invariant checks on untrusted input, shared by the cargo-fuzz targets in
//! `fuzz/` (which include this file) and by `tests/fuzz_regressions.rs`,
//! which replays every input kept under `tests/fuzz-regressions/`.
#![allow(dead_code)]

use abslock::__private::procfs;
use abslock::{LockName, Scope, Signal, MAX_ADDRESS_LEN};

/// Any bytes as a lock name, in every scope: a clear error or a valid
/// address of at most 107 bytes; scoped addresses map back to their scope.
pub fn lock_name(data: &[u8]) {
    let made = [
        LockName::system(data),
        LockName::user_of(1000, data),
        LockName::raw(data),
    ];
    for name in made.into_iter().flatten() {
        assert!(!name.address().is_empty() && name.address().len() <= MAX_ADDRESS_LEN);
        let _ = name.to_string();
        match name.scope() {
            Scope::Raw => assert_eq!(name.address(), data),
            scope => {
                let (back, _) = LockName::from_address(name.address()).expect("own address");
                assert_eq!(back, scope);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = LockName::parse(text, true);
        let _ = LockName::parse(text, false);
    }
    let _ = LockName::from_address(data);
    let _ = abslock::display_address(data);
}

/// Any bytes as `/proc/net/unix`: parsed without panicking; every socket
/// found owns at most a 107-byte name plus the `@`-rendered NULs.
pub fn net_unix(data: &[u8]) {
    for socket in procfs::parse_net_unix(data) {
        let _ = socket.owns_name();
    }
}

/// Any text as a signal: a standard signal or a clear error.
pub fn signal(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(sig) = text.parse::<Signal>() {
            assert_eq!(Signal::from_raw(sig.as_raw()), Some(sig));
            assert_eq!(sig.to_string().parse::<Signal>().ok(), Some(sig));
        }
    }
}

/// Any bytes as a frame body, both ways: a clear error, or a value that
/// encodes to a frame within the limit and decodes back to itself.
pub fn protocol(data: &[u8]) {
    use abslock::__private::protocol::{frame_len, Request, Response, HEADER_LEN, MAX_FRAME};
    if let Some(header) = data.get(..HEADER_LEN) {
        if let Ok(len) = frame_len(header.try_into().expect("4 bytes")) {
            assert!((1..=MAX_FRAME).contains(&len));
        }
    }
    if let Ok(request) = Request::decode(data) {
        let frame = request.encode().expect("a decoded request re-encodes");
        assert_eq!(Request::decode(&frame[HEADER_LEN..]).as_ref(), Ok(&request));
    }
    if let Ok(response) = Response::decode(data) {
        let frame = response.encode().expect("a decoded response re-encodes");
        assert_eq!(
            Response::decode(&frame[HEADER_LEN..]).as_ref(),
            Ok(&response)
        );
    }
}
