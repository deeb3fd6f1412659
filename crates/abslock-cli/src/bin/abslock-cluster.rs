//! `abslock-cluster`: the `abslock` command with the cluster engines (etcd,
//! PostgreSQL) built in. `abslock` execs it, with the same arguments and
//! the same pid, when `--backend` names an engine; it can be run directly
//! too.

use abslock::AnyLock;
use abslock_cli::Engines;

fn main() -> std::process::ExitCode {
    abslock_cli::main(engines())
}

#[cfg(any(feature = "etcd", feature = "postgres"))]
fn engines() -> Engines {
    Engines {
        lock: |url, name| {
            let lock = abslock_cluster::ClusterLock::from_url(url, name)?;
            Ok(AnyLock::Remote(Box::new(lock)))
        },
        redact: abslock_cluster::redact,
        host: || abslock_cluster::Identity::current().host,
    }
}

#[cfg(not(any(feature = "etcd", feature = "postgres")))]
fn engines() -> Engines {
    Engines {
        lock: |_, _| -> abslock::Result<AnyLock> {
            Err(abslock::Error::InvalidBackend(
                "this abslock was built without cluster backends (--no-default-features); \
                 rebuild with the default features"
                    .into(),
            ))
        },
        ..Engines::helper()
    }
}
