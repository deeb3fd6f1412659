//! The cluster engines (etcd, PostgreSQL) for `--backend URL`, kept out of
//! the `abslock` binary. Their code (TLS, HTTP, the database client) was
//! most of a build with them, and its start-up cost (relocations, page
//! faults) and memory came with every local lock, which never runs it. So
//! `abslock` execs its sibling `abslock-cluster`, the same command with the
//! engines built in, when `--backend` names one, as `git` execs
//! `git-remote-https` for an HTTPS remote. The exec keeps the pid and the
//! arguments; every install route (cargo install, the .deb, the static
//! build) puts both binaries in one directory.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use abslock::{AnyLock, Error};

/// What `--backend URL` needs from the engines.
#[derive(Debug, Clone, Copy)]
pub struct Engines {
    /// The engine's lock that `url` names, for lock `name`.
    pub lock: fn(url: &str, name: &str) -> abslock::Result<AnyLock>,
    /// `url` with every password hidden.
    pub redact: fn(url: &str) -> String,
    /// This host's name, as the engines record a holder's.
    pub host: fn() -> String,
}

/// The binary with the engines, in the directory of the running one.
pub const HELPER: &str = "abslock-cluster";

static ENGINES: OnceLock<Engines> = OnceLock::new();

impl Engines {
    /// The `abslock` binary's: [`Engines::lock`] execs [`HELPER`] with this
    /// process's arguments, and never returns unless that fails. The others
    /// are never reached here (nothing remote exists in this process), and
    /// answer safely: everything after the scheme hidden, no host.
    pub fn helper() -> Engines {
        Engines {
            lock: exec_helper,
            redact: |url| match url.split_once("://") {
                Some((scheme, _)) => format!("{scheme}://***"),
                None => "***".into(),
            },
            host: String::new,
        }
    }
}

/// Sets the engines of this process, once.
pub(crate) fn set(engines: Engines) {
    let _ = ENGINES.set(engines);
}

/// The engines of this process.
pub(crate) fn get() -> Engines {
    ENGINES.get().copied().unwrap_or_else(Engines::helper)
}

/// Replaces this process with [`HELPER`], same arguments, same pid.
fn exec_helper(_: &str, _: &str) -> abslock::Result<AnyLock> {
    let helper = helper_path();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let err = std::process::Command::new(&helper)
        .arg0("abslock")
        .args(args)
        .exec();
    Err(Error::Engine(format!(
        "--backend needs {HELPER}, the same command with the cluster engines, which could not \
         be run from {}: {err}; install it beside abslock (cargo install, the .deb and the \
         static build all do)",
        helper.display()
    )))
}

fn helper_path() -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_default();
    dir.join(HELPER)
}
