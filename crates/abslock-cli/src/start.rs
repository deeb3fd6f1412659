//! What Rust's runtime start does for `main` that `abslock` needs, without
//! what it costs.
//!
//! Before `main`, std's `lang_start` also sets up the main thread's
//! stack-overflow handler: with glibc, `pthread_getattr_np` reads
//! `/proc/self/maps` to find the stack, then a guard page and an
//! alternate signal stack are mapped. That was about 90 µs of every
//! `abslock run -n NAME true` here (BENCHMARKS.md), as much as the rest of
//! a C program's start. The `abslock` binary built against glibc therefore
//! has a C `main` (`#![no_main]`, src/main.rs) that calls [`prepare`] and
//! then [`crate::run`]. (glibc passes the arguments to std's `.init_array`
//! hook, so `std::env::args_os` works as usual; musl does not, so the
//! static build keeps std's start, which costs little there.) A stack
//! overflow in the main thread is then a plain SIGSEGV, without std's
//! one-line message.

use std::io::Write;
use std::os::fd::IntoRawFd;

use rustix::fs::{open, Mode, OFlags};

/// Does what std's start does that abslock relies on: descriptors 0, 1
/// and 2 open (a closed one gets `/dev/null`, so that no lock socket or
/// file can take its number and receive what is printed), and SIGPIPE
/// ignored (a closed pipe is an `EPIPE` error, reported, not a silent
/// death).
pub fn prepare() {
    // Raw pollfds: a closed descriptor cannot be borrowed as a BorrowedFd.
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll(2) reads and writes the three pollfd structs of `fds`,
    // which we own; a zero timeout reports POLLNVAL at once.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if polled >= 0 {
        for fd in &fds {
            if fd.revents & libc::POLLNVAL != 0 {
                // The lowest free number: the one that is closed.
                if let Ok(null) = open("/dev/null", OFlags::RDWR, Mode::empty()) {
                    let _ = null.into_raw_fd();
                }
            }
        }
    }
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Flushes standard output, as std's runtime does after `main` returns.
pub fn finish() {
    let _ = std::io::stdout().flush();
}
