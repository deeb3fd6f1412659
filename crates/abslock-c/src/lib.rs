//! `libabslock`: the C binding of the `abslock` crate. The functions and
//! their contract are declared in `include/abslock.h`; each here is a thin
//! layer over the library's [`abslock::AnyLock::named`], so that a name
//! means the same lock as for the `abslock` command and the Python
//! package, and every failure returns the command's exit code
//! ([`abslock::exit`]).
//!
//! Nothing unwinds into C: every call runs in `call::call`, which keeps the
//! error's text for `abslock_last_error` and turns a panic (a bug) into
//! `ABSLOCK_OSERR`.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod call;
mod guard;
mod holder;
mod last_error;

pub use guard::{abslock_acquire, abslock_release, AbslockGuard};
pub use holder::abslock_holder;
pub use last_error::abslock_last_error;

/// The library's version, `MAJOR.MINOR.PATCH`, as a C string.
#[no_mangle]
pub extern "C" fn abslock_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
