//! The per-user runtime file. Each network namespace has its own abstract
//! socket names (rule 3 of `docs/semantics.md`), so a per-user lock taken
//! in a sandbox without network access (`unshare -n`, Flatpak without
//! `--share=network`, systemd's `PrivateNetwork=yes`) would not see the
//! same lock taken outside it, and both instances would run.
//!
//! So a per-user name ([`crate::AnyLock::named`], the `abslock` command's
//! NAME, the Python package's `Lock(name)`) also takes a `flock(2)` file in
//! the user's runtime
//! directory (`$XDG_RUNTIME_DIR/abslock/`, else `/run/user/UID/abslock/`,
//! and `/run/abslock/` for root), which every namespace that shares the
//! file system sees: the file decides who runs, as in combined mode, and
//! the socket still names the holder and carries messages. Where no such
//! directory exists (no login session, or a sandbox with its own runtime
//! directory, as Flatpak gives each app), the socket alone decides, as
//! before. `docs/semantics.md` ("Sandboxes") says what happens where.
//!
//! A holder removes its file at its release; one killed before that
//! leaves it, for the next holder of the name to reuse or for [`prune`]
//! (run by `abslock list`) to remove.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::name::{LockName, Scope};

/// The runtime file for `name`, creating its directory if needed; `None`
/// for names that are not per-user, or without a private runtime directory.
/// Every front end must use this very file for the same name, or they
/// would not exclude each other across network namespaces.
pub fn for_name(name: &LockName) -> Option<PathBuf> {
    let Scope::User(uid) = name.scope() else {
        return None;
    };
    let dir = runtime_dir(uid)?.join("abslock");
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    private(&dir, uid).then(|| dir.join(file_name(name.name())))
}

/// Removes the runtime files of `uid` that no process holds: those of
/// holders killed before they could remove theirs (SIGKILL, a crash; a
/// holder that exits removes its own). Returns how many were removed.
///
/// Each one is taken without waiting and released, as the lock
/// [`crate::AnyLock::named`] builds for it would be: the release removes
/// the file under the lock, only if it is still the file at that name and
/// nobody else has it open. A file held now is never touched.
///
/// # Errors
/// If the directory exists but cannot be read.
pub fn prune(uid: u32) -> std::io::Result<usize> {
    let Some(dir) = runtime_dir(uid).map(|d| d.join("abslock")) else {
        return Ok(0);
    };
    if !private(&dir, uid) {
        return Ok(0);
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if !path.as_os_str().as_encoded_bytes().ends_with(b".lock") {
            continue;
        }
        let lock = crate::FileLock::new(&path)
            .fcntl_aware(false)
            .remove_on_release(true);
        if let Ok(guard) = lock.try_acquire() {
            drop(guard);
            if std::fs::symlink_metadata(&path).is_err() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// `$XDG_RUNTIME_DIR`, `/run/user/UID`, or `/run` for root: the first that
/// is ours and private.
fn runtime_dir(uid: u32) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        Some(PathBuf::from(format!("/run/user/{uid}"))),
        (uid == 0).then(|| PathBuf::from("/run")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|dir| dir.is_absolute() && private(dir, uid))
}

/// Owned by `uid` and writable by nobody else.
fn private(dir: &Path, uid: u32) -> bool {
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0)
}

/// The name as one file name: `%` and `/` percent-encoded, a leading `.`
/// too; a name too long for a file name keeps its start and a digest.
fn file_name(name: &[u8]) -> String {
    let mut out = String::new();
    for chunk in name.utf8_chunks() {
        for (i, c) in chunk.valid().char_indices() {
            match c {
                '%' | '/' => out.push_str(&format!("%{:02X}", c as u32)),
                '.' if out.is_empty() && i == 0 => out.push_str("%2E"),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > 200 {
        let mut cut = 150;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}~{:016x}", &out[..cut], fnv1a_64(name));
    }
    out.push_str(".lock");
    out
}

/// 64-bit FNV-1a: stable across versions, which a file name must be.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_one_safe_file_name_each() {
        assert_eq!(file_name(b"job"), "job.lock");
        assert_eq!(file_name(b"a/b%c"), "a%2Fb%25c.lock");
        assert_eq!(file_name(b".."), "%2E..lock");
        assert_ne!(file_name(b"a/b"), file_name(b"a%2Fb"));
        let long = "x".repeat(300);
        let mut other = long.clone();
        other.push('y');
        assert!(file_name(long.as_bytes()).len() < 255);
        assert_ne!(file_name(long.as_bytes()), file_name(other.as_bytes()));
    }
}
