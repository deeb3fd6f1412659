//! The library against a hostile local user: look-alike names, planted
//! symlinks, exposed lock directories, squatters that never listen.
//! `docs/semantics.md` and SECURITY.md point here.

use std::io::BufRead;
use std::os::fd::AsFd;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use abslock::CombinedLock;
use abslock::FileLock;
use abslock::{Error, Lock, LockName};

mod common;

use common::serial;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn temp(tag: &str, mode: u32) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("abslock-hostile-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

/// python3 binding the abstract `address` without listening, as `uid`.
fn bind_only(address: &[u8], uid: Option<u32>) -> Child {
    let hex: String = address.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(b'\\0'+bytes.fromhex(sys.argv[1]))\nprint('ready',flush=True)\ntime.sleep(60)",
        &hex,
    ])
    .stdout(Stdio::piped());
    if let Some(uid) = uid {
        cmd.uid(uid);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

#[test]
fn a_look_alike_name_is_not_the_lock() {
    let _serial = serial();
    // `/proc/net/unix` prints both of these as `...db@prod`.
    let real = format!("abslock-hostile/{}/db@prod", std::process::id());
    let lookalike = real.replace('@', "\0");
    let mut other = bind_only(lookalike.as_bytes(), None);
    let lock = Lock::new(LockName::raw(&real).unwrap());
    assert!(
        lock.holder().unwrap().is_none(),
        "the look-alike is not ours"
    );
    assert!(lock.wait_released(Some(std::time::Duration::ZERO)).unwrap());
    let guard = lock.try_acquire().unwrap();
    // And the other way round: the look-alike's holder is found exactly.
    let theirs = Lock::new(LockName::raw(lookalike.as_bytes()).unwrap());
    let holder = theirs.holder().unwrap().expect("the look-alike is bound");
    assert_eq!(holder.pid(), Some(other.id()));
    assert_eq!(holder.signal_all(abslock::Signal::CONT).unwrap(), 1);
    let ours = lock.holder().unwrap().expect("ours is held");
    assert_eq!(ours.pid(), Some(std::process::id()));
    assert_eq!(
        ours.processes()
            .unwrap()
            .iter()
            .map(|p| p.pid)
            .collect::<Vec<_>>(),
        vec![std::process::id()]
    );
    drop(guard);
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn a_squatter_that_never_listens_is_named_by_uid() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root to squat as another uid");
        return;
    }
    let name = format!("hostile-nolisten-{}", std::process::id());
    let address = format!("abslock/system/{name}");
    let mut squatter = bind_only(address.as_bytes(), Some(65534));
    let lock = Lock::system(&name).unwrap();
    for result in [
        lock.try_acquire(),
        lock.acquire(),
        lock.acquire_timeout(std::time::Duration::from_secs(30)),
    ] {
        match result {
            Err(Error::Squatted(h)) => assert_eq!(h.uid(), Some(65534)),
            other => panic!("expected Squatted, got {other:?}"),
        }
    }
    assert!(matches!(lock.wait_released(None), Err(Error::Squatted(_))));
    squatter.kill().unwrap();
    squatter.wait().unwrap();
}

#[test]
fn an_untrusted_symlink_is_never_followed() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root to plant a symlink as another uid");
        return;
    }
    let victim = temp("victim", 0o700);
    let trap = temp("trap", 0o755);
    std::os::unix::fs::chown(&trap, Some(65534), Some(65534)).unwrap();
    let link = trap.join("dir");
    symlink(&victim, &link).unwrap();
    lchown(&link, Some(65534), Some(65534)).unwrap();
    let lock = FileLock::new(link.join("x.lock"));
    assert!(matches!(lock.try_acquire(), Err(Error::UnsafePath(_))));
    assert!(matches!(lock.exposure(), Err(Error::UnsafePath(_))));
    assert!(matches!(
        abslock::pidfile::PidFile::write(link.join("x.pid"), 1),
        Err(Error::UnsafePath(_))
    ));
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    // The same symlink owned by root is followed.
    lchown(&link, Some(0), Some(0)).unwrap();
    let guard = lock.try_acquire().unwrap();
    let inode = rustix::fs::fstat(guard.as_fd()).unwrap().st_ino;
    let real = std::fs::metadata(victim.join("x.lock")).unwrap();
    assert_eq!(inode, std::os::unix::fs::MetadataExt::ino(&real));
    drop(guard);
    std::fs::remove_dir_all(&victim).unwrap();
    std::fs::remove_dir_all(&trap).unwrap();
}

#[test]
fn combined_mode_refuses_a_world_writable_directory() {
    let _serial = serial();
    let open = temp("open", 0o1777);
    let socket = Lock::user(format!("hostile-combined-{}", std::process::id())).unwrap();
    let combined = CombinedLock::new(socket.clone(), FileLock::new(open.join("d.lock")));
    match combined.try_acquire() {
        Err(Error::UnsafePath(why)) => assert!(why.contains("mode 1777"), "{why}"),
        other => panic!("expected UnsafePath, got {other:?}"),
    }
    assert!(matches!(combined.acquire(), Err(Error::UnsafePath(_))));
    // The file lock alone works there, and says why it is exposed.
    let alone = FileLock::new(open.join("d.lock"));
    assert!(alone.exposure().unwrap().unwrap().contains("other users"));
    drop(alone.try_acquire().unwrap());
    // A private directory is fine.
    let private = temp("private", 0o755);
    let combined = CombinedLock::new(socket, FileLock::new(private.join("d.lock")));
    assert_eq!(combined.file().exposure().unwrap(), None);
    drop(combined.try_acquire().unwrap());
    std::fs::remove_dir_all(&open).unwrap();
    std::fs::remove_dir_all(&private).unwrap();
}
