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

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{open, Mode, OFlags};

/// Does what std's start does that abslock relies on: descriptors 0, 1
/// and 2 open (a closed one gets `/dev/null`, so that no lock socket or
/// file can take its number and receive what is printed), and SIGPIPE
/// ignored (a closed pipe is an `EPIPE` error, reported, not a silent
/// death).
pub fn prepare() {
    let fds: [_; 3] = std::array::from_fn(|fd| {
        // SAFETY: 0, 1 and 2 are only polled, never closed or used as
        // owned, and poll(2) reports POLLNVAL for one that is not open.
        PollFd::from_borrowed_fd(
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd as i32) },
            PollFlags::empty(),
        )
    });
    let mut fds = fds;
    // A zero timeout: POLLNVAL is reported at once, nothing is waited for.
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if poll(&mut fds, Some(&now)).is_ok() {
        for fd in &fds {
            if fd.revents().contains(PollFlags::NVAL) {
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
