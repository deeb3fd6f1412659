//! One call from C: its arguments checked, its error kept for
//! `abslock_last_error`, its result one of the command's exit codes.

use std::ffi::{c_char, c_int, c_uint, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use abslock::{exit, AnyLock, Error, Named};

use crate::last_error;

/// Why a call failed: an exit code and one line of text.
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The caller's mistake (`ABSLOCK_USAGE`).
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

/// Runs `f` for C: `ABSLOCK_OK`, or the failure's code with its text
/// kept for `abslock_last_error`. A panic would be a bug; it must not
/// unwind into C frames, so it becomes `ABSLOCK_OSERR`.
pub(crate) fn call(f: impl FnOnce() -> Result<(), Failure>) -> c_int {
    last_error::clear();
    let failure = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return c_int::from(exit::OK),
        Ok(Err(failure)) => failure,
        Err(_) => Failure {
            code: exit::OSERR,
            message: "internal error in libabslock (a bug: please report it)".into(),
        },
    };
    last_error::set(&failure.message);
    c_int::from(failure.code)
}

/// `ABSLOCK_SYSTEM`.
pub(crate) const SYSTEM: c_uint = 0x1;
/// `ABSLOCK_INTERRUPTIBLE`.
pub(crate) const INTERRUPTIBLE: c_uint = 0x2;

/// The lock `name` names, taken as `flags` say (of which only those in
/// `allowed` may be set).
///
/// # Safety
/// `name` is NULL or points to a NUL-terminated string.
pub(crate) unsafe fn lock(
    name: *const c_char,
    flags: c_uint,
    allowed: c_uint,
) -> Result<AnyLock, Failure> {
    if flags & !allowed != 0 {
        return Err(Failure::usage(format!(
            "unknown flags {:#x}",
            flags & !allowed
        )));
    }
    if name.is_null() {
        return Err(Failure::usage("the lock name is NULL"));
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's contract; the
    // borrow ends with this function.
    let text = unsafe { CStr::from_ptr(name) };
    let text = text
        .to_str()
        .map_err(|_| Failure::usage("the lock name is not UTF-8"))?;
    let how = Named {
        system: flags & SYSTEM != 0,
        ..Named::default()
    };
    Ok(AnyLock::named(text, &how)?)
}
