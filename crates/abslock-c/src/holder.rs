//! `abslock_holder`: who holds a name, as a process ID.

use std::ffi::{c_char, c_int, c_uint};

use abslock::Backend;

use crate::call::{call, lock, Failure, SYSTEM};

/// Who holds `name`: on success `*pid` is the holder's process ID, 0 if
/// it is free, -1 if a process this one cannot see holds it.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `pid` is NULL or points to
/// a writable `pid_t`.
#[no_mangle]
pub unsafe extern "C" fn abslock_holder(
    name: *const c_char,
    flags: c_uint,
    pid: *mut libc::pid_t,
) -> c_int {
    call(|| {
        if pid.is_null() {
            return Err(Failure::usage("the pid pointer is NULL"));
        }
        // SAFETY: `name` as the caller promised.
        let lock = unsafe { lock(name, flags, SYSTEM) }?;
        let found = match Backend::holder(&lock)? {
            None => 0,
            Some(holder) => holder
                .pid()
                .and_then(|p| libc::pid_t::try_from(p).ok())
                .unwrap_or(-1),
        };
        // SAFETY: not NULL and writable, as the caller promised.
        unsafe { pid.write(found) };
        Ok(())
    })
}
