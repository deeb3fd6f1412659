//! A desktop-style single-instance app: the first launch takes the lock and
//! serves; each later launch hands its arguments and working directory to
//! the first, prints the reply and exits with the status the first chose
//! (as GApplication and Electron's `second-instance` do).
//!
//! ```text
//! cargo run --example single_instance_app            # first: keeps running
//! cargo run --example single_instance_app -- a.txt   # second: forwards, exits 0
//! abslock send single-instance-app -- stop-please    # the CLI can talk to it too
//! abslock kill single-instance-app                   # or ask it to stop
//! ```
//!
//! `SINGLE_INSTANCE_NAME` overrides the lock name (the tests use it).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use abslock::Incoming;
use abslock::{Error, Lock, Message};

fn main() -> ExitCode {
    let name =
        std::env::var("SINGLE_INSTANCE_NAME").unwrap_or_else(|_| "single-instance-app".into());
    let lock = match Lock::user(&name) {
        Ok(lock) => lock,
        Err(e) => return fail(&e),
    };
    // A first instance that is shutting down answers "shutting down": try
    // to become the first instance then, a few times.
    for _ in 0..3 {
        match lock.try_acquire() {
            Ok(guard) => return first(guard),
            Err(Error::Held(_)) => match lock.send(&Message::from_env(), Duration::from_secs(5)) {
                Ok(reply) => {
                    let _ = std::io::stdout().write_all(&reply.payload);
                    return ExitCode::from(u8::try_from(reply.status).unwrap_or(1));
                }
                Err(Error::ShuttingDown) => continue,
                // Unresponsive included: report the first instance's pid,
                // never kill it.
                Err(e) => return fail(&e),
            },
            Err(e) => return fail(&e),
        }
    }
    fail(&Error::ShuttingDown)
}

fn first(guard: abslock::Guard) -> ExitCode {
    guard.set_version(env!("CARGO_PKG_VERSION"));
    guard.set_metadata("role", "example");
    let requests = guard.requests();
    println!("first instance: pid {}", std::process::id());
    let _ = std::io::stdout().flush();
    for request in requests {
        match request {
            Incoming::Message(m) => {
                let args: Vec<String> = m
                    .args_os()
                    .iter()
                    .skip(1)
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                println!(
                    "second instance ({}) in {}: {}",
                    m.peer(),
                    m.cwd().display(),
                    args.join(" ")
                );
                let _ = std::io::stdout().flush();
                let reply = format!("opened {} argument(s)\n", args.len());
                if let Err(e) = m.reply(0, reply.as_bytes()) {
                    eprintln!("single_instance_app: could not answer: {e}");
                }
            }
            Incoming::Stop(stop) => {
                println!("stop requested by {}", stop.peer());
                stop.accept();
                break;
            }
            _ => {}
        }
    }
    drop(guard);
    ExitCode::SUCCESS
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("single_instance_app: {e}");
    ExitCode::FAILURE
}
