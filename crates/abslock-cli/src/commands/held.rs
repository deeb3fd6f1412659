//! `abslock held NAME`: whether the caller runs under the lock already,
//! for a script that locks itself:
//!
//! ```sh
//! abslock held job || exec abslock run -n job -- "$0" "$@"
//! ```
//!
//! The first run takes the lock and runs the script again as its child;
//! there `held` finds the lock's holder among the script's ancestors and
//! says yes. Unlike an environment variable, this cannot be fooled by
//! nesting: a script called from a script that holds another lock, or a
//! process left over after the lock was released, is told no. It works
//! with every backend: for a cluster lock the holder must be on this host.
//!
//! `abslock lock NAME` holds a name for the calling script through a
//! keeper process, which is not the script's ancestor: it counts if it is
//! a trusted uid's keeper that says (in its `info` answer) that it holds
//! the lock for one of our ancestors.

use std::collections::HashSet;

use std::time::Duration;

use abslock::{AnyLock, Backend, Holder, RemoteHolder};

use crate::cli::HeldArgs;
use crate::exit::{self, Failure};
use crate::report::kept_for;

/// Runs `abslock held`: 0 if the caller or an ancestor holds the lock.
pub fn held(args: &HeldArgs) -> Result<u8, Failure> {
    let ancestors = ancestors();
    let lock = args.lock.lock()?;
    let holds = match lock.holder()? {
        None => false,
        Some(holder) => match holder.as_remote() {
            Some(remote) => on_this_host(remote) && ancestors.contains(&remote.pid),
            None => {
                holder.pid().is_some_and(|p| ancestors.contains(&p))
                    || holder
                        .processes()?
                        .iter()
                        .any(|p| ancestors.contains(&p.pid))
                    || kept_for_ancestor(&lock, &holder, &ancestors)
            }
        },
    };
    Ok(if holds { exit::OK } else { exit::CONFLICT })
}

/// Whether the holder is the keeper of `abslock lock` for one of our
/// ancestors (a keeper of a trusted uid; asked through the socket).
fn kept_for_ancestor(lock: &AnyLock, holder: &Holder, ancestors: &HashSet<u32>) -> bool {
    if holder.uid().is_none_or(|uid| !lock.trusts(uid)) || !holder.is_listening() {
        return false;
    }
    let Some(socket) = lock.socket() else {
        return false;
    };
    if socket.name().scope() == abslock::Scope::Raw {
        return false;
    }
    socket
        .info(Duration::from_secs(2))
        .ok()
        .and_then(|info| kept_for(&info))
        .is_some_and(|pid| ancestors.contains(&pid))
}

/// Whether a cluster lock's holder named this host (as abslock names it).
fn on_this_host(holder: &RemoteHolder) -> bool {
    holder.host == (crate::engines::get().host)()
}

/// Our parent, its parent, and so on up to pid 1.
fn ancestors() -> HashSet<u32> {
    abslock::ProcessInfo::lineage(std::os::unix::process::parent_id()).collect()
}
