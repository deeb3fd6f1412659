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

use std::collections::HashSet;

use abslock::{procfs, Backend, RemoteHolder};

use crate::cli::HeldArgs;
use crate::exit::{self, Failure};

/// Runs `abslock held`: 0 if the caller or an ancestor holds the lock.
pub fn held(args: &HeldArgs) -> Result<u8, Failure> {
    let ancestors = ancestors();
    let holds = match args.lock.lock()?.holder()? {
        None => false,
        Some(holder) => match holder.as_remote() {
            Some(remote) => on_this_host(remote) && ancestors.contains(&remote.pid),
            None => {
                holder.pid().is_some_and(|p| ancestors.contains(&p))
                    || holder
                        .processes()?
                        .iter()
                        .any(|p| ancestors.contains(&p.pid))
            }
        },
    };
    Ok(if holds { exit::OK } else { exit::CONFLICT })
}

/// Whether a cluster lock's holder named this host (as abslock names it).
#[cfg(any(feature = "etcd", feature = "postgres"))]
fn on_this_host(holder: &RemoteHolder) -> bool {
    holder.host == abslock_cluster::Identity::current().host
}

/// Without cluster backends there are no remote holders.
#[cfg(not(any(feature = "etcd", feature = "postgres")))]
fn on_this_host(_: &RemoteHolder) -> bool {
    false
}

/// Our parent, its parent, and so on up to pid 1.
fn ancestors() -> HashSet<u32> {
    procfs::lineage(std::os::unix::process::parent_id()).collect()
}
