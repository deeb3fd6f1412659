//! The lock a user names, in the syntax of the `abslock` command's NAME,
//! which every front end shares: the command, the Python package's
//! `Lock(name)`, the C library's `abslock_acquire(name, …)`. The same text gives the same lock
//! everywhere, so that they exclude each other.
//!
//! * `job`: a per-user name (`--system`: one shared by all users), plus
//!   the user's runtime file against other network namespaces
//!   ([`crate::runtime_file`]);
//! * `@ADDRESS`: an exact abstract socket address, as `ss -xa` shows it
//!   ([`LockName::parse`] states the escapes);
//! * `file:PATH`, or a path as `flock(1)` takes it (`/…`, `./…`, `../…`):
//!   a `flock(2)` lock file alone.
//!
//! ```
//! use abslock::{AnyLock, Backend, Named};
//!
//! let lock = AnyLock::named("abslock-named-example", &Named::default())?;
//! let guard = lock.try_acquire()?;
//! # drop(guard);
//! # Ok::<(), abslock::Error>(())
//! ```

use std::path::{Path, PathBuf};

use crate::backend::AnyLock;
use crate::combined::CombinedLock;
use crate::error::{Error, Result};
use crate::file::FileLock;
use crate::lock::Lock;
use crate::name::LockName;
use crate::netns::NetnsLock;

/// How a name is taken: its scope, whose holding is trusted, and an
/// optional lock file (combined mode). The default is a per-user name that
/// trusts the caller's uid and root.
#[derive(Debug, Clone, Default)]
pub struct Named {
    /// The system-wide scope instead of the per-user one (`--system`).
    pub system: bool,
    /// Also trust holders running as these uids (`--trust-uid`).
    pub trust_uids: Vec<u32>,
    /// Trust holders of any uid (`--trust-any`).
    pub trust_any: bool,
    /// Also lock this file, and let the file decide (`--file`, combined
    /// mode, [`CombinedLock`]).
    pub file: Option<PathBuf>,
}

/// The lock file `name` names: `file:PATH`, or a path as `flock(1)` takes
/// it (`/…`, `./…`, `../…`), never silently a socket name. `None` for a
/// socket name.
pub fn lock_file_path(name: &str) -> Option<&Path> {
    if let Some(path) = name.strip_prefix("file:") {
        return Some(Path::new(path));
    }
    (name.starts_with('/') || name.starts_with("./") || name.starts_with("../"))
        .then(|| Path::new(name))
}

impl Named {
    fn file_lock(&self, path: &Path) -> FileLock {
        let lock = FileLock::new(path);
        if self.trust_any {
            lock.trust_any_uid()
        } else {
            self.trust_uids
                .iter()
                .fold(lock, |l, &uid| l.trust_uid(uid))
        }
    }

    fn socket_lock(&self, name: LockName) -> Lock {
        let lock = Lock::new(name);
        if self.trust_any {
            lock.trust_any_uid()
        } else {
            self.trust_uids
                .iter()
                .fold(lock, |l, &uid| l.trust_uid(uid))
        }
    }
}

impl AnyLock {
    /// The lock `name` names, in the `abslock` command's syntax (see
    /// [`Named`]): `job`, `@ADDRESS`, `file:PATH`, or a path as `flock(1)`
    /// takes it; a per-user name also takes the user's runtime file
    /// ([`crate::runtime_file`]).
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a name that cannot be used (empty, too
    /// long, a bad escape; `file:` without a path, or with
    /// [`Named::file`]).
    pub fn named(name: &str, how: &Named) -> Result<AnyLock> {
        if let Some(path) = lock_file_path(name) {
            if path.as_os_str().is_empty() || how.file.is_some() {
                return Err(Error::InvalidName(
                    "file:PATH needs a path, and takes no --file".into(),
                ));
            }
            return Ok(AnyLock::File(how.file_lock(path)));
        }
        let lock = how.socket_lock(LockName::parse(name, how.system)?);
        if let Some(path) = &how.file {
            return Ok(AnyLock::Combined(CombinedLock::new(
                lock,
                how.file_lock(path),
            )));
        }
        // A per-user name also takes a file in the runtime directory, so
        // that another network namespace cannot run a second instance.
        Ok(match crate::runtime_file::for_name(lock.name()) {
            // Only abslock locks these files: no fcntl locks to look for;
            // the last holder removes its file.
            Some(path) => AnyLock::Netns(NetnsLock::new(
                lock,
                how.file_lock(&path)
                    .fcntl_aware(false)
                    .remove_on_release(true),
            )),
            None => AnyLock::Socket(lock),
        })
    }
}
