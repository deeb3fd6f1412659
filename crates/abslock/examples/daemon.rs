//! A daemon that refuses to start twice and says who holds the lock.
//!
//! ```text
//! cargo run -p abslock --example daemon -- [SECONDS]
//! ```
//! Start it twice: the second exits with status 1 and names the first. Kill
//! the first with `kill -9`: the next start succeeds at once, with no stale
//! file to clean up.

use std::process::ExitCode;
use std::time::Duration;

use abslock::{Error, Lock};

fn main() -> ExitCode {
    let seconds: u64 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 30,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("daemon: SECONDS must be a whole number");
            return ExitCode::from(64);
        }
    };
    // Take the lock after any daemonising fork: SO_PEERCRED reports the pid
    // of the process that called listen().
    let lock = match Lock::user("abslock-example-daemon") {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("daemon: {e}");
            return ExitCode::from(64);
        }
    };
    let guard = match lock.try_acquire() {
        Ok(guard) => guard,
        Err(Error::Held(holder)) => {
            let command = holder
                .processes()
                .ok()
                .and_then(|p| p.first().map(|p| p.command()))
                .unwrap_or_else(|| "?".into());
            eprintln!("daemon: already running as {holder}: {command}");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("daemon: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "daemon: pid {} holds {} for {seconds}s",
        std::process::id(),
        guard.name()
    );
    std::thread::sleep(Duration::from_secs(seconds));
    println!("daemon: done, releasing");
    ExitCode::SUCCESS
}
