//! `abslock kill`: signal the holder safely, wait, escalate.

use std::time::{Duration, Instant};

use abslock::{Backend, Error, Signal};

use crate::cli::KillArgs;
use crate::exit::{self, Failure};
use crate::report::describe_holder;
use crate::stop::escalate;

/// Runs `abslock kill`: 0 once released, 1 if it was not held, 2 if still
/// held when the wait ran out.
pub fn kill(args: &KillArgs) -> Result<u8, Failure> {
    let signal: Signal = args.signal.parse()?;
    let lock = args.lock.lock()?;
    let Some(holder) = lock.holder()? else {
        eprintln!("abslock: {lock}: {}", abslock::Error::NotHeld);
        return Ok(exit::CONFLICT);
    };
    // A squatter is not the instance the user means to stop: report it
    // (exit 3) and signal nothing, unless the user trusts its uid.
    if holder.uid().is_some_and(|uid| !lock.trusts(uid)) {
        let uid = holder.uid().unwrap_or_default();
        return Err(Failure::from(Error::Squatted(holder))
            .context(&lock)
            .hint(format!(
                "nothing was signalled; to signal it anyway, add --trust-uid {uid}"
            )));
    }
    holder.signal(signal).map_err(|e| match e {
        Error::HolderUnknown => Failure::new(
            exit::OSERR,
            format!("cannot signal the holder of {}: {e}", lock),
        ),
        e => e.into(),
    })?;
    let start = Instant::now();
    // A timeout too large for the clock waits forever.
    let deadline = start.checked_add(args.timeout);
    if let Some(after) = args.kill_after.filter(|&a| a < args.timeout) {
        if holder.wait_released(Some(after))? {
            return Ok(exit::OK);
        }
        eprintln!(
            "abslock: {} still held {:.1}s after {signal}; sending SIGKILL to every process keeping it",
            lock,
            after.as_secs_f64()
        );
        escalate(&lock)?;
    }
    let left = deadline.map(|d| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    });
    // Whoever holds it (the signalled holder may be a squatter root chose
    // to remove): the name must be free.
    if holder.wait_released(left)? {
        Ok(exit::OK)
    } else {
        let who = lock
            .holder()
            .ok()
            .flatten()
            .map_or_else(|| "?".into(), |h| describe_holder(&h));
        eprintln!(
            "abslock: {} is still held by {who} after {:.1}s",
            lock,
            start.elapsed().as_secs_f64()
        );
        Ok(exit::STILL_HELD)
    }
}
