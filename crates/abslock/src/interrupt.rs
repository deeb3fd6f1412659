//! Waits that give way to signal handlers.
//!
//! A signal whose handler was installed without `SA_RESTART` makes a
//! blocking system call fail with `EINTR` (`signal(7)`, "Interruption of
//! system calls and library functions by signal handlers"). The library's
//! waits restart after `EINTR` by default, so that a program's unrelated
//! handler (`SIGCHLD`, `SIGWINCH`) does not end a wait. A caller whose
//! handlers only record the signal, and which must act on it before the
//! wait ends, runs the wait inside [`interruptible`]: every wait started
//! there on this thread, whether in `poll(2)`, `flock(2)` or a back-off
//! sleep, returns [`Error::Interrupted`](crate::Error::Interrupted)
//! instead. Python's handlers are such handlers: the `abslock` Python
//! package waits this way so that Ctrl-C raises `KeyboardInterrupt`.

use std::cell::Cell;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with interruptible waits on this thread: a wait that a signal
/// handler interrupts returns
/// [`Error::Interrupted`](crate::Error::Interrupted) rather than
/// restarting. The lock (or the progress of the wait) is not lost: call
/// again to go on waiting.
///
/// ```
/// use std::time::Duration;
/// use abslock::{interrupt, Lock};
///
/// let lock = Lock::user("abslock-interrupt-example")?;
/// let guard = interrupt::interruptible(|| lock.acquire_timeout(Duration::from_secs(1)))?;
/// # drop(guard);
/// # Ok::<(), abslock::Error>(())
/// ```
pub fn interruptible<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ON.with(|on| on.set(self.0));
        }
    }
    let _restore = Restore(ON.with(|on| on.replace(true)));
    f()
}

/// Whether a wait that failed with `EINTR` on this thread goes on waiting.
pub(crate) fn restarts() -> bool {
    !ON.with(Cell::get)
}
