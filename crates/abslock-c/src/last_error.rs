//! `abslock_last_error`: the text of this thread's last failure, as
//! `errno` keeps its number.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

/// Keeps `message` as this thread's last error.
pub(crate) fn set(message: &str) {
    // The library escapes what others control; a NUL cannot come from it,
    // but would cut the C string short, so it is shown as `\0`.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST.with(|last| *last.borrow_mut() = text);
}

/// Clears this thread's last error: a call that succeeds leaves "".
pub(crate) fn clear() {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if !last.is_empty() {
            *last = CString::default();
        }
    });
}

/// What the last failing call of this thread went wrong with, in one
/// line; "" after a call that succeeded. The string stays valid until
/// this thread's next abslock call.
#[no_mangle]
pub extern "C" fn abslock_last_error() -> *const c_char {
    // The CString's buffer lives in the thread-local until the next call
    // replaces it, which is the lifetime the header promises.
    LAST.with(|last| last.borrow().as_ptr())
}
