//! Reaching a lock file or PID file by path without following a symlink
//! that an untrusted user could have planted, and judging whether such a
//! user could take the file over.
//!
//! A root process that opens `/tmp/x/run/app.pid` follows whatever
//! `/tmp/x/run` is: if its owner made it a symlink to `/etc`, root writes,
//! chmods and deletes files in `/etc`. [`open_parent`] resolves the
//! directory one component at a time with `openat(2)` and `O_PATH |
//! O_NOFOLLOW`, and follows a symlink only if a trusted uid owns it (root,
//! or one the lock trusts): the owner of a symlink is whoever created it,
//! and the kernel's `fs.protected_symlinks` covers only sticky directories.
//! Every later step (`openat`, `renameat`, `unlinkat`) is relative to the
//! directory descriptor, so nothing can swap the path afterwards. This is
//! the rule systemd applies to `PIDFile=` (`chase()` with `CHASE_SAFE`).
//!
//! [`Dir::exposure`] says whether an untrusted user could create, replace or
//! lock the file itself: a directory it can write to (sticky or not: it
//! can create the name first, as on Debian's 1777 `/run/lock`), a
//! directory or an ancestor it owns, or an ancestor it can write to whose
//! entry is not protected by the sticky bit.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

use crate::access::Access;
use crate::error::{Error, PathUse, Result};
use crate::escape::escape;

/// What to do about a directory other users control.
const DIR_FIX: &str = "put it in a directory only trusted users can write to, such as a \
                       root-owned 0755 /run/NAME (systemd's RuntimeDirectory=)";

/// Symlinks followed at most, as the kernel's `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;

/// An open directory reached safely, and the name of the file in it.
#[derive(Debug)]
pub(crate) struct Dir {
    /// `O_PATH` descriptor of the directory.
    pub(crate) fd: OwnedFd,
    /// The file's name in it.
    pub(crate) name: OsString,
    /// Why an untrusted user could take over files in it, if one could.
    exposure: Option<String>,
    /// Untrusted users cannot reach files in it (a directory on the way
    /// is not searchable by them).
    closed: bool,
}

impl Dir {
    /// Why a uid the caller does not trust could create, replace or lock
    /// the file first, or `None` if none could.
    pub(crate) fn exposure(&self) -> Option<&str> {
        self.exposure.as_deref()
    }

    /// `fstatat` of the file, without following a symlink.
    pub(crate) fn stat_file(&self) -> rustix::io::Result<Stat> {
        rustix::fs::statat(&self.fd, &self.name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
    }

    /// `openat` of the file with `O_NOFOLLOW | O_CLOEXEC | O_NOCTTY` added.
    pub(crate) fn open_file(&self, flags: OFlags, mode: u32) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat(
            &self.fd,
            &self.name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::from_raw_mode(mode as _),
        )
    }
}

/// Opens the directory that holds `path`, following only symlinks owned by
/// root or by a uid `trusted` allows; errors name `path` and `used_as`.
///
/// # Errors
/// [`Error::UnsafePath`] for a symlink owned by another uid;
/// [`Error::InvalidName`] if `path` does not end in a file name;
/// [`Error::PathIo`] if a directory cannot be opened.
pub(crate) fn open_parent(path: &Path, trusted: &Access, used_as: PathUse) -> Result<Dir> {
    resolve(path, trusted, false).map_err(|e| e.of_path(used_as, path))
}

/// [`open_parent`], and if the file itself is a symlink owned by root or a
/// trusted uid, the directory and name it points to (as `flock(1)` follows
/// it; a symlink that only a trusted user can have made is as safe as a
/// path they typed). A symlink owned by another uid is refused.
///
/// # Errors
/// As [`open_parent`].
pub(crate) fn open_target(path: &Path, trusted: &Access, used_as: PathUse) -> Result<Dir> {
    resolve(path, trusted, true).map_err(|e| e.of_path(used_as, path))
}

fn resolve(path: &Path, trusted: &Access, follow_last: bool) -> Result<Dir> {
    let mut name = file_name(path)?;
    let parent = path.parent().unwrap_or(Path::new(""));
    let mut walk = Walk::start(path.is_absolute(), trusted)?;
    let mut queue: VecDeque<OsString> = components(parent);
    let mut followed = 0;
    loop {
        while let Some(part) = queue.pop_front() {
            let target = match walk.step(&part)? {
                Step::Dir => continue,
                Step::Link(target) => target,
            };
            followed += 1;
            if followed > MAX_SYMLINKS {
                return Err(io_error(path, Errno::LOOP));
            }
            if target.as_bytes().starts_with(b"/") {
                walk = Walk::start(true, trusted)?;
            }
            for part in components(Path::new(&target)).into_iter().rev() {
                queue.push_front(part);
            }
        }
        if !follow_last {
            break;
        }
        let Some(target) = walk.last(&name)? else {
            break;
        };
        followed += 1;
        if followed > MAX_SYMLINKS {
            return Err(io_error(path, Errno::LOOP));
        }
        let target = PathBuf::from(target);
        name = file_name(&target)?;
        if target.is_absolute() {
            walk = Walk::start(true, trusted)?;
        }
        queue = components(target.parent().unwrap_or(Path::new("")));
    }
    walk.finish(name, path)
}

/// The last component of `path`, which must be a file name.
fn file_name(path: &Path) -> Result<OsString> {
    match path.components().next_back() {
        Some(Component::Normal(name)) => Ok(name.to_os_string()),
        _ => Err(Error::InvalidName(format!(
            "{} does not end in a file name",
            shown(path)
        ))),
    }
}

/// The walk so far: the directory reached, its path as followed (for
/// messages), and the first exposure found on the way.
struct Walk<'a> {
    fd: OwnedFd,
    stat: Stat,
    shown: PathBuf,
    trusted: &'a Access,
    exposure: Option<String>,
    /// A directory on the way that untrusted users cannot search: they
    /// cannot open the file, whatever its mode.
    closed: bool,
}

enum Step {
    Dir,
    Link(OsString),
}

impl<'a> Walk<'a> {
    fn start(absolute: bool, trusted: &'a Access) -> Result<Walk<'a>> {
        let from = if absolute { "/" } else { "." };
        let fd = rustix::fs::openat(CWD, from, dir_flags(), Mode::empty())
            .map_err(|e| io_error(Path::new(from), e))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(Path::new(from), e))?;
        Ok(Walk {
            fd,
            stat,
            closed: !searchable_by_others(&stat),
            shown: PathBuf::from(from),
            trusted,
            exposure: None,
        })
    }

    fn trusts(&self, uid: u32) -> bool {
        uid == 0 || self.trusted.allows(uid)
    }

    /// Looks up one component in the current directory.
    fn step(&mut self, part: &OsStr) -> Result<Step> {
        if part == "." {
            return Ok(Step::Dir);
        }
        let next = self.shown.join(part);
        let fd = rustix::fs::openat(
            &self.fd,
            part,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error(&next, e))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(&next, e))?;
        if part != ".." && self.exposure.is_none() {
            self.exposure = self.entry_exposure(&stat, &next);
        }
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                self.fd = fd;
                // Going up (`..`) may leave the closed directory behind:
                // forget it (reporting too much exposure is the safe side).
                self.closed = if part == ".." {
                    !searchable_by_others(&stat)
                } else {
                    self.closed || !searchable_by_others(&stat)
                };
                self.stat = stat;
                self.shown = next;
                Ok(Step::Dir)
            }
            FileType::Symlink if self.trusts(stat.st_uid) => {
                let target =
                    rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(|e| io_error(&next, e))?;
                Ok(Step::Link(OsString::from_vec(target.into_bytes())))
            }
            FileType::Symlink => Err(untrusted_link(&next, stat.st_uid)),
            _ => Err(io_error(&next, Errno::NOTDIR)),
        }
    }

    /// The target of `name` in the current directory if it is a symlink
    /// that a trusted uid owns; `None` if it is anything else or missing.
    fn last(&mut self, name: &OsStr) -> Result<Option<OsString>> {
        let next = self.shown.join(name);
        let stat = match rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_error(&next, e)),
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
            return Ok(None);
        }
        if !self.trusts(stat.st_uid) {
            return Err(untrusted_link(&next, stat.st_uid));
        }
        if self.exposure.is_none() {
            self.exposure = self.entry_exposure(&stat, &next);
        }
        rustix::fs::readlinkat(&self.fd, name, Vec::new())
            .map(|t| Some(OsString::from_vec(t.into_bytes())))
            .map_err(|e| io_error(&next, e))
    }

    /// Whether an untrusted user could replace the entry `stat` (found at
    /// `path`) in the current directory: it owns the directory, or can
    /// write to it and the sticky bit does not protect the entry.
    fn entry_exposure(&self, stat: &Stat, path: &Path) -> Option<String> {
        let dir = &self.stat;
        if !self.trusts(dir.st_uid) {
            return Some(format!(
                "{} is owned by uid {}",
                shown(&self.shown),
                dir.st_uid
            ));
        }
        let sticky = dir.st_mode & 0o1000 != 0;
        (self.writable_by_others(dir) && !(sticky && self.trusts(stat.st_uid))).then(|| {
            format!(
                "{} is in {}, which other users can write to (mode {:o}) and so replace it",
                shown(path),
                shown(&self.shown),
                dir.st_mode & 0o7777
            )
        })
    }

    /// World-writable, or group-writable by a group other than root's.
    fn writable_by_others(&self, dir: &Stat) -> bool {
        dir.st_mode & 0o002 != 0 || (dir.st_mode & 0o020 != 0 && dir.st_gid != 0)
    }

    fn finish(self, name: OsString, path: &Path) -> Result<Dir> {
        let dir = &self.stat;
        let exposure = self
            .exposure
            .clone()
            .map(|why| format!("{why}; {DIR_FIX}"))
            .or_else(|| {
                if !self.trusts(dir.st_uid) {
                    Some(format!(
                        "its directory {} is owned by uid {}; {DIR_FIX}",
                        shown(&self.shown),
                        dir.st_uid
                    ))
                } else if self.writable_by_others(dir) {
                    Some(format!(
                        "its directory {} can be written by other users (mode {:o}): \
                     any of them can create {} first; {DIR_FIX}",
                        shown(&self.shown),
                        dir.st_mode & 0o7777,
                        shown(path)
                    ))
                } else {
                    None
                }
            });
        Ok(Dir {
            fd: self.fd,
            name,
            exposure,
            closed: self.closed,
        })
    }
}

impl Dir {
    /// Adds the exposure of the existing file `file`: it belongs to an
    /// untrusted uid, or untrusted users can open it. `flock(2)` needs
    /// only a descriptor, and opening for reading needs only read
    /// permission, so a lock file that others can read (0644, as `touch`
    /// and `flock(1)` leave it) or a directory can be locked first by any
    /// of them.
    pub(crate) fn check_file(&mut self, file: &Stat, trusted: &Access, path: &Path) {
        if self.exposure.is_some() {
            return;
        }
        if file.st_uid != 0 && !trusted.allows(file.st_uid) {
            self.exposure = Some(format!(
                "{} is owned by uid {}, a user this lock does not trust",
                shown(path),
                file.st_uid
            ));
        } else if !self.closed && openable_by_others(file) {
            let what = if FileType::from_raw_mode(file.st_mode) == FileType::Directory {
                "a directory"
            } else {
                "a file"
            };
            self.exposure = Some(format!(
                "{} is {what} other users can open (mode {:o}), and flock(2) needs only \
                 that: any of them can lock it first; chmod 600 {} (or go-rwx), or keep \
                 it in a directory only the lock's users can search",
                shown(path),
                file.st_mode & 0o7777,
                shown(path)
            ));
        }
    }
}

/// Others can search the directory: execute for everyone, or for a group
/// other than root's and ours.
fn searchable_by_others(dir: &Stat) -> bool {
    dir.st_mode & 0o001 != 0 || (dir.st_mode & 0o010 != 0 && foreign_group(dir.st_gid))
}

/// Others can open the file: read or write for everyone, or for a group
/// other than root's and ours.
fn openable_by_others(file: &Stat) -> bool {
    file.st_mode & 0o006 != 0 || (file.st_mode & 0o060 != 0 && foreign_group(file.st_gid))
}

/// A group that may have members outside the lock's trust: not root's,
/// not our own primary group (a private group on most systems).
fn foreign_group(gid: u32) -> bool {
    gid != 0 && gid != rustix::process::getgid().as_raw()
}

fn untrusted_link(path: &Path, uid: u32) -> Error {
    Error::UnsafePath(format!(
        "{} is a symbolic link owned by uid {uid}, a user this lock does not trust; \
         refusing to follow it",
        shown(path)
    ))
}

fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn shown(path: &Path) -> String {
    escape(path.as_os_str().as_bytes())
}

/// An error at `path`, a part of the path being resolved: the caller
/// names the whole path and its use ([`Error::of_path`]).
fn io_error(path: &Path, e: Errno) -> Error {
    Error::PathIo {
        used_as: crate::error::PathUse::LockFile,
        path: path.to_path_buf(),
        at: None,
        source: e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("abslock-safe-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    #[test]
    fn follows_our_own_symlinks_and_reports_exposure() {
        let dir = temp("own");
        std::fs::create_dir(dir.join("real")).unwrap();
        symlink("real", dir.join("link")).unwrap();
        let found = open_parent(
            &dir.join("link/x.lock"),
            &Access::same_user(),
            PathUse::LockFile,
        )
        .unwrap();
        assert_eq!(found.name, "x.lock");
        let real = std::fs::metadata(dir.join("real")).unwrap();
        let got = rustix::fs::fstat(&found.fd).unwrap();
        assert_eq!(got.st_ino, std::os::unix::fs::MetadataExt::ino(&real));
        // std::env::temp_dir() is /tmp, mode 1777: our own subdirectory is
        // safe (sticky bit, and we own the entry).
        assert_eq!(found.exposure(), None, "{:?}", found.exposure());
        std::fs::set_permissions(dir.join("real"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let open = open_parent(
            &dir.join("link/x.lock"),
            &Access::same_user(),
            PathUse::LockFile,
        )
        .unwrap();
        assert!(open.exposure().unwrap().contains("mode 777"), "{open:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_paths_without_a_file_name() {
        for bad in ["/", "", "/tmp/.."] {
            assert!(matches!(
                open_parent(Path::new(bad), &Access::same_user(), PathUse::LockFile),
                Err(Error::InvalidName(_))
            ));
        }
    }
}
