//! `abslock send`: hand an argv to the running instance, print its reply,
//! exit with the status it chose.

use std::os::unix::ffi::OsStringExt;

use abslock::{Message, Reply};

use crate::cli::SendArgs;
use crate::exit::{self, Failure};

/// Runs `abslock send`.
pub fn send(args: &SendArgs) -> Result<u8, Failure> {
    let any = args.lock.lock()?;
    let Some(lock) = any.socket() else {
        return Err(Failure::new(
            exit::USAGE,
            format!("{any} is a lock file alone; messages need a socket NAME (add --file PATH to keep the file)"),
        ));
    };
    let message = Message {
        argv: args
            .args
            .iter()
            .cloned()
            .map(OsStringExt::into_vec)
            .collect(),
        cwd: std::env::current_dir()
            .map(|d| d.into_os_string().into_vec())
            .unwrap_or_default(),
        payload: args
            .payload
            .clone()
            .map(OsStringExt::into_vec)
            .unwrap_or_default(),
    };
    let Reply { status, payload } = lock
        .send(&message, args.timeout)
        .map_err(|e| Failure::from(e).context(lock.name()))?;
    crate::out::write(&payload);
    Ok(u8::try_from(status).unwrap_or_else(|_| {
        eprintln!("abslock: the holder replied with status {status}, outside 0-255; exiting 1");
        exit::CONFLICT
    }))
}
