//! Stopping a holder: `abslock run --replace` makes it go, politely
//! first; `kill` and `replace` end with [`escalate`].

use std::time::Duration;

use abslock::{AnyLock, Backend, Error, Signal};

use crate::exit::{self, Failure};
use crate::report::describe_holder;

/// How long the holder has to answer the stop request.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long to wait after SIGKILL; only a stuck kernel exceeds it.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// Asks the holder of `lock` to stop, or SIGTERMs it through its pidfd if
/// it takes no requests; waits `wait` for the release, then SIGKILLs every
/// process keeping the lock. Returns once the lock is free.
pub fn replace(lock: &AnyLock, wait: Duration, verbose: bool) -> Result<(), Failure> {
    let Some(holder) = lock.holder()? else {
        return Ok(());
    };
    if holder.uid().is_some_and(|uid| !lock.trusts(uid)) {
        // Not another instance of ours: never stopped on our behalf.
        return Err(Error::Squatted(holder).into());
    }
    let who = describe_holder(&holder);
    // The socket speaks for the holder only if its listener is the holder
    // itself; in combined mode it may be squatted while the file is not.
    let asked = match lock.socket() {
        Some(socket) if holder.is_listening() => socket.request_stop(ASK_TIMEOUT.min(wait)),
        _ => Err(Error::NotServing),
    };
    match asked {
        Ok(()) => note(verbose, format!("asked {who} to stop")),
        Err(Error::NotHeld | Error::ShuttingDown) => {}
        Err(e @ Error::Squatted(_)) => return Err(e.into()),
        Err(why) => {
            note(verbose, format!("{why}; sending SIGTERM to {who}"));
            match holder.signal(Signal::TERM) {
                // Already gone: the wait below returns at once.
                Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ESRCH) => {}
                other => other?,
            }
        }
    }
    if lock.wait_released(Some(wait))? {
        return Ok(());
    }
    eprintln!(
        "abslock: {} still held {:.1}s after asking {who} to stop; sending SIGKILL to every process keeping it",
        lock,
        wait.as_secs_f64()
    );
    escalate(lock)?;
    if lock.wait_released(Some(AFTER_KILL))? {
        Ok(())
    } else {
        Err(Failure::new(
            exit::STILL_HELD,
            format!("{} is still held after SIGKILL", lock),
        ))
    }
}

fn note(verbose: bool, what: String) {
    if verbose {
        eprintln!("abslock: {what}");
    }
}

/// SIGKILLs every process keeping the lock.
pub fn escalate(lock: &AnyLock) -> Result<(), Failure> {
    if let Some(holder) = lock.holder()? {
        // The listener itself first: it may be the only one we can see.
        let _ = holder.signal(Signal::KILL);
        holder.signal_all(Signal::KILL)?;
    }
    Ok(())
}
