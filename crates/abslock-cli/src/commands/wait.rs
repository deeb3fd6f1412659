//! `abslock wait`: block until a lock is free.

use abslock::Backend;

use crate::cli::WaitArgs;
use crate::exit::{self, Failure};

/// Runs `abslock wait`: exit 0 once free, 1 on timeout.
pub fn wait(args: &WaitArgs) -> Result<u8, Failure> {
    let lock = args.lock.lock()?;
    Ok(if lock.wait_released(args.timeout)? {
        exit::OK
    } else {
        exit::CONFLICT
    })
}
