//! PID files for tools that still read them (init scripts,
//! `start-stop-daemon --pidfile`, monitoring checks), written so that they
//! cannot mislead: the lock decides who runs; the PID file only reports.
//!
//! A PID file goes stale when its process dies without removing it
//! (SIGKILL, crash), and then lies once the pid is reused. [`check`] tells
//! these cases apart using the lock: a pid is current only if that process
//! keeps the lock now.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::procfs;

/// A PID file this process wrote; [`PidFile::remove`] (or drop) deletes it
/// if it still holds our pid.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes `pid` and a newline to `path` atomically: to a temporary file
    /// in the same directory, then `rename(2)` over `path`, so a reader
    /// sees the old content or the new, never a partial one. An existing
    /// file is replaced without being read: it is advisory.
    ///
    /// # Errors
    /// If the temporary file cannot be written or renamed.
    pub fn write(path: impl Into<PathBuf>, pid: u32) -> Result<PidFile> {
        let path = path.into();
        let file_name = path.file_name().ok_or_else(|| {
            Error::InvalidName(format!("PID file {} has no file name", path.display()))
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            writeln!(f, "{pid}")?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io("writing the PID file")(e));
        }
        Ok(PidFile { path, pid })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the file, unless someone else has replaced its content.
    pub fn remove(self) {
        drop(self);
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if read_pid(&self.path).ok() == Some(self.pid) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What a PID file says, checked against the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidFileState {
    /// There is no PID file.
    Missing,
    /// The content is not a pid; the reason says what is wrong.
    Malformed(String),
    /// The process keeps the lock: the file is right.
    Current(u32),
    /// No process has this pid any more: stale.
    Gone(u32),
    /// A process has this pid but does not keep the lock. `reused` is
    /// true when it started after the file was last written, which proves
    /// the pid was recycled.
    NotHolder {
        /// The pid in the file.
        pid: u32,
        /// What runs under that pid now.
        command: String,
        /// Started after the file was written.
        reused: bool,
    },
}

/// Reads the PID file at `path` and judges it against `keepers`, the
/// processes that keep the lock (empty if it is free).
///
/// # Errors
/// If the file exists but cannot be read.
pub fn check(path: &Path, keepers: &[u32]) -> Result<PidFileState> {
    let written = match fs::metadata(path) {
        Ok(meta) => meta.modified().ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PidFileState::Missing),
        Err(e) => return Err(Error::io("reading the PID file")(e)),
    };
    let pid = match read_pid(path) {
        Ok(pid) => pid,
        Err(Some(e)) => return Err(Error::io("reading the PID file")(e)),
        Err(None) => {
            let text = fs::read(path).unwrap_or_default();
            let shown = String::from_utf8_lossy(&text[..text.len().min(40)])
                .trim()
                .to_string();
            return Ok(PidFileState::Malformed(format!("'{shown}' is not a pid")));
        }
    };
    if keepers.contains(&pid) {
        return Ok(PidFileState::Current(pid));
    }
    match procfs::process_info(pid) {
        Ok(info) => Ok(PidFileState::NotHolder {
            pid,
            command: info.command(),
            reused: matches!((info.started, written), (Some(s), Some(w)) if later(s, w)),
        }),
        Err(_) => Ok(PidFileState::Gone(pid)),
    }
}

/// `started` is from clock ticks (10 ms) and the boot time (1 s), so allow
/// a second of slack before calling it later.
fn later(started: SystemTime, written: SystemTime) -> bool {
    started
        .duration_since(written)
        .is_ok_and(|d| d > std::time::Duration::from_secs(1))
}

/// The pid in the file; `Err(None)` if the content is not one.
fn read_pid(path: &Path) -> std::result::Result<u32, Option<std::io::Error>> {
    let text = fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => None,
        _ => Some(e),
    })?;
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("abslock-pidfile-{}-{tag}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join("app.pid")
    }

    #[test]
    fn written_atomically_and_removed_only_if_still_ours() {
        let path = temp("write");
        fs::write(&path, "garbage from before\n").unwrap();
        let file = PidFile::write(&path, 4242).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "4242\n");
        // No temporary file is left beside it.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        file.remove();
        assert!(!path.exists());

        let file = PidFile::write(&path, 4242).unwrap();
        fs::write(&path, "99\n").unwrap(); // someone else's now
        drop(file);
        assert_eq!(fs::read_to_string(&path).unwrap(), "99\n");
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn states_are_told_apart() {
        let path = temp("check");
        assert_eq!(check(&path, &[]).unwrap(), PidFileState::Missing);
        fs::write(&path, "12x\n").unwrap();
        assert!(matches!(
            check(&path, &[]).unwrap(),
            PidFileState::Malformed(_)
        ));
        let me = std::process::id();
        fs::write(&path, format!("{me}\n")).unwrap();
        assert_eq!(check(&path, &[me]).unwrap(), PidFileState::Current(me));
        match check(&path, &[]).unwrap() {
            PidFileState::NotHolder { pid, reused, .. } => assert_eq!((pid, reused), (me, false)),
            other => panic!("{other:?}"),
        }
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
