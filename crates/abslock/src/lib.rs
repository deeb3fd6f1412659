//! A single-instance lock on a Linux abstract Unix socket name.
//!
//! A name bound in the abstract socket namespace (`unix(7)`: a `sun_path`
//! starting with a NUL byte) exists exactly as long as some reference to
//! the bound socket remains. The kernel frees it when the last one is
//! dropped (`unix_release_sock`), whatever ended the process: `exit`,
//! SIGKILL, a crash; for those, before the parent's `waitpid` returns (a
//! core dump being written, a tracer stopping the exit, a copy taken with
//! `pidfd_getfd` delay it: `docs/semantics.md`, "When the release is
//! late"). Nothing is left on disk, nothing goes stale, and a pid cannot be
//! mistaken for another process's. `docs/semantics.md` states each rule and
//! names the test that shows it.
//!
//! ```
//! use abslock::{Error, Lock};
//!
//! let lock = Lock::user("abslock-crate-example")?;
//! match lock.try_acquire() {
//!     Ok(guard) => {
//!         // ... the only instance runs here ...
//!         drop(guard); // or let it go out of scope
//!     }
//!     Err(Error::Held(holder)) => eprintln!("already running as {holder}"),
//!     Err(e) => return Err(e),
//! }
//! # Ok::<(), abslock::Error>(())
//! ```
//!
//! * [`Lock`]: try, blocking and timed acquire; blocking waits sleep until
//!   the kernel reports the holder's socket closed (rule 6 of
//!   `docs/semantics.md`).
//! * [`Guard`]: releases on drop; close-on-exec unless handed on purpose to
//!   a child with [`Guard::pass_to`] or [`Guard::into_fd`].
//! * [`Holder`]: pid, uid and gid of the holder from `SO_PEERCRED`, a pidfd
//!   from `SO_PEERPIDFD`, [`Holder::signal`] through that pidfd, and
//!   [`Holder::processes`]: every process that keeps the socket open.
//! * [`LockName`]: per-user, system-wide, or raw `@name` addresses;
//!   [`bound_names`]: every lock of the network namespace and the
//!   processes that hold it, as `abslock list` shows them.
//! * [`file::FileLock`]: the same on a `flock(2)` lock file, for locks
//!   that need permissions or must cross network namespaces;
//!   [`combined::CombinedLock`]: the file decides, the socket adds
//!   discovery and messaging. [`Backend`] is the one interface every
//!   backend implements (cluster engines in `abslock-cluster` too), and
//!   [`AnyLock`] holds any of them, for programs that let the user choose.
//! * Talking to the running instance over the lock's own socket
//!   (`docs/protocol.md`): [`Lock::info`], [`Lock::send`] (a second
//!   instance hands its argv to the first and gets a [`Reply`]),
//!   [`Lock::request_stop`]; the holder serves them with
//!   [`Guard::requests`], limited to the uids in its [`Access`].
//!
//! * The rules every front end shares, so that the command, the Python
//!   package and any other binding agree: [`AnyLock::named`] takes a lock
//!   name in the command's syntax (with [`runtime_file`] for per-user
//!   names), and [`Error::exit_code`] gives the command's exit code
//!   ([`exit`]) for every error.
//! * Event loops and signal handlers: a [`Waiter`] waits for a lock on one
//!   pollable descriptor, without a thread; inside
//!   [`interrupt::interruptible`], a signal handler ends a wait with
//!   [`Error::Interrupted`] (how Python's Ctrl-C reaches a waiter).
//!
//! * Hostile input: every text other users control (command lines, user
//!   names, holder metadata) is escaped before it is shown; holders are
//!   found by their exact name bytes and owner (`sock_diag`), so a
//!   look-alike name never counts as the holder; lock and PID file paths
//!   follow no symlink an untrusted user owns.
//!
//! What the crate keeps to itself, it keeps private. The pieces its own
//! crates (the command, the cluster engines, the Python package) share
//! are in a hidden module, `__private`, with no stability promise.
//!
//! Linux only: other targets fail to compile with a clear message.

#![deny(missing_docs)]
// `unsafe` is confined to `sys` (and the `semantics` experiments).
#![deny(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::undocumented_unsafe_blocks
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(not(target_os = "linux"))]
compile_error!("abslock needs Linux: abstract Unix socket names exist only there (see unix(7))");

mod access;
mod backend;
mod client;
mod combined;
mod error;
mod escape;
pub mod exit;
mod file;
mod file_wait;
mod frame_io;
mod guard;
mod holder;
pub mod interrupt;
mod listing;
mod lock;
mod name;
mod named;
mod netns;
pub mod pidfile;
mod procfs;
mod protocol;
mod queue;
mod requests;
pub mod runtime_file;
mod safe_path;
#[cfg(any(test, feature = "doctor"))]
#[allow(unsafe_code)]
pub mod semantics;
mod serving;
mod signal;
mod sock_diag;
#[allow(unsafe_code)]
mod sys;
mod wait;
mod waiter;

pub use access::Access;
pub use backend::{AnyGuard, AnyLock, Backend, RemoteGuard};
pub use client::Reply;
pub use combined::{CombinedGuard, CombinedLock};
pub use error::{Error, PathUse, Result};
pub use file::{FileGuard, FileLock};
pub use guard::{Guard, FD_ENV};
pub use holder::{Holder, RemoteHolder, Source};
pub use listing::{bound_names, BoundName};
pub use lock::{Lock, DEFAULT_BACKLOG};
pub use name::{display_address, LockName, Scope, ADDRESS_PREFIX, MAX_ADDRESS_LEN};
pub use named::{lock_file_path, Named};
pub use netns::{NetnsGuard, NetnsLock};
pub use procfs::ProcessInfo;
pub use protocol::{Info, Message};
pub use requests::{Incoming, Peer, Received, Requests, StopRequest};
pub use serving::{own_loop, OwnLoop, RejectLog};
pub use signal::Signal;
pub use waiter::Waiter;

/// Building blocks that abslock's own crates (the command, the cluster
/// engines, the Python package) and its tests share. Not part of the
/// API: they may change in any release. A program that needs one of them
/// is welcome to say why in an issue.
#[doc(hidden)]
pub mod __private {
    pub use crate::backend::{read_deadline, spawn_quiet, write_deadline};
    pub use crate::file::flock_timeout;
    /// Blocks every signal in the calling thread, as [`spawn_quiet`]'s
    /// threads do: for threads started by others (an async runtime's).
    pub use crate::sys::block_signals_in_this_thread as quiet_this_thread;
    pub use crate::sys::monotonic_ns;

    /// Text that other users control, made safe for a terminal.
    pub mod escape {
        pub use crate::escape::{escape, escape_str};
    }

    /// What `/proc` says about processes, sockets and file locks.
    pub mod procfs {
        pub use crate::procfs::*;
    }

    /// The wire format of `docs/protocol.md`: frames, requests, responses.
    pub mod protocol {
        pub use crate::protocol::*;
    }
}

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
