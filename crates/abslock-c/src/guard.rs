//! `abslock_acquire` and `abslock_release`: a held lock as an opaque
//! pointer that C owns.

use std::ffi::{c_char, c_int, c_longlong, c_uint};
use std::time::Duration;

use abslock::{interrupt, AnyGuard, Backend};

use crate::call::{call, lock, Failure, INTERRUPTIBLE, SYSTEM};

/// A held lock: `abslock_guard` in C, which sees only its address. The
/// lock goes when the guard is dropped.
#[derive(Debug)]
pub struct AbslockGuard {
    _held: AnyGuard,
}

// The header lets any thread release a guard: it must be `Send`.
const _: fn() = {
    fn sendable<T: Send>() {}
    sendable::<AbslockGuard>
};

/// Takes the lock `name`: `timeout_ms` 0 tries once, -1
/// (`ABSLOCK_FOREVER`) waits as long as it takes, more waits at most that
/// long. On success `*guard` owns the lock.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `guard` is NULL or points to
/// writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn abslock_acquire(
    name: *const c_char,
    flags: c_uint,
    timeout_ms: c_longlong,
    guard: *mut *mut AbslockGuard,
) -> c_int {
    call(|| {
        if guard.is_null() {
            return Err(Failure::usage("the guard pointer is NULL"));
        }
        let timeout = match timeout_ms {
            -1 => None,
            ms => Some(Duration::from_millis(u64::try_from(ms).map_err(|_| {
                Failure::usage(format!(
                    "timeout {ms} ms: give 0 to try once, -1 to wait forever, or more"
                ))
            })?)),
        };
        // SAFETY: `name` as the caller promised.
        let lock = unsafe { lock(name, flags, SYSTEM | INTERRUPTIBLE) }?;
        // 0 tries once, and a conflict says "held", not "timed out".
        let take = || match timeout {
            Some(t) if t.is_zero() => Backend::try_acquire(&lock),
            _ => Backend::acquire(&lock, timeout),
        };
        let held = if flags & INTERRUPTIBLE != 0 {
            interrupt::interruptible(take)
        } else {
            take()
        }?;
        // SAFETY: not NULL and writable, as the caller promised.
        unsafe { guard.write(Box::into_raw(Box::new(AbslockGuard { _held: held }))) };
        Ok(())
    })
}

/// Lets the lock go and frees `guard`; NULL is ignored.
///
/// # Safety
/// `guard` is NULL or a pointer `abslock_acquire` gave, not yet released.
#[no_mangle]
pub unsafe extern "C" fn abslock_release(guard: *mut AbslockGuard) {
    if guard.is_null() {
        return;
    }
    // SAFETY: made by Box::into_raw in abslock_acquire and, by the
    // caller's contract, not released before: we own it again.
    let guard = unsafe { Box::from_raw(guard) };
    // A release has nothing to report; a panic must not reach C.
    let _ = call(|| {
        drop(guard);
        Ok(())
    });
}
