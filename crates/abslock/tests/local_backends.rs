//! The kernel rules the local backends rely on, one suite run against
//! each through helper processes: the abstract socket, the flock(2) file,
//! and the combined mode (forked children keep a lock, exec inherits it
//! only when passed, SIGKILL frees it). Plus the file-only traps (a deleted
//! lock file) and the combined mode's reason to exist (a squatter cannot
//! deny it). The contract of the `abslock::Backend` interface, on all five
//! backends including etcd and PostgreSQL, is
//! `crates/abslock-cli/tests/contract.rs`.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use abslock::__private::procfs;
use abslock::{AnyLock, Backend, Error};
use common::{any_lock, eventually, is_root, serial, spawn, spawn_with, Helper};

#[test]
#[ignore = "entry point of helper processes, run by the other tests"]
fn helper() {
    common::helper_main();
}

const BACKENDS: [&str; 3] = ["socket", "file", "combined"];

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("abslock-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh lock spec of `backend` for `tag` (see `common::any_lock`).
fn spec(backend: &str, tag: &str) -> String {
    let pid = std::process::id();
    let path = dir().join(format!("{tag}.lock"));
    match backend {
        "socket" => format!("socket:test/{pid}/{tag}"),
        "file" => format!("file:{}", path.display()),
        _ => format!("combined:test/{pid}/{tag}:{}", path.display()),
    }
}

fn holder_of(spec: &str) -> (Helper, u32) {
    let mut h = spawn("any-hold", &[spec]);
    let pid = h.expect("ready").parse().unwrap();
    (h, pid)
}

fn held_pid(lock: &AnyLock) -> Option<u32> {
    lock.holder().unwrap().and_then(|h| h.pid())
}

fn pid_alive(pid: u32) -> bool {
    procfs::process_info(pid).is_ok_and(|p| !p.cmdline.is_empty())
}

fn kill(pid: u32) {
    // SAFETY: kill(2) has no memory preconditions; the pid is a helper's
    // child that the test started and has not waited for.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

#[test]
fn a_held_lock_names_its_holder_and_is_free_after_release() {
    let _s = serial();
    for backend in BACKENDS {
        let spec = spec(backend, "held");
        let lock = any_lock(&spec);
        let (mut holder, pid) = holder_of(&spec);
        match lock.try_acquire() {
            Err(Error::Held(h)) => assert_eq!(h.pid(), Some(pid), "{backend}"),
            other => panic!("{backend}: expected Held, got {other:?}"),
        }
        assert_eq!(held_pid(&lock), Some(pid), "{backend}");
        holder.close_stdin();
        holder.expect("released");
        // Released, and the holder still runs: the release, not the exit.
        assert!(lock.try_acquire().is_ok(), "{backend}");
        assert_eq!(held_pid(&lock), None, "{backend}");
    }
}

#[test]
fn sigkill_of_the_holder_frees_it_and_wakes_a_waiter() {
    let _s = serial();
    for backend in BACKENDS {
        let spec = spec(backend, "sigkill");
        let (mut holder, _) = holder_of(&spec);
        let waiter = std::thread::spawn({
            let spec = spec.clone();
            move || {
                let got = any_lock(&spec).acquire(Some(Duration::from_secs(10)));
                got.map(|_| Instant::now())
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        holder.kill(libc::SIGKILL);
        let killed = Instant::now();
        let got = waiter
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert!(got >= killed, "{backend}: acquired before the kill");
    }
}

#[test]
fn acquire_timeout_gives_up_naming_the_holder() {
    let _s = serial();
    for backend in BACKENDS {
        let spec = spec(backend, "timeout");
        let (_holder, pid) = holder_of(&spec);
        let start = Instant::now();
        match any_lock(&spec).acquire(Some(Duration::from_millis(200))) {
            Err(Error::Timeout(Some(h))) => assert_eq!(h.pid(), Some(pid), "{backend}"),
            other => panic!("{backend}: expected Timeout, got {other:?}"),
        }
        assert!(start.elapsed() >= Duration::from_millis(200), "{backend}");
    }
}

/// A timed waiter sleeps until the kernel reports the release (issue 22):
/// woken within 5 ms of it (from the moment the holder began to release,
/// on the clock both processes share) on every backend, the best of eight
/// hand-overs counting, so that one slow wake-up on a loaded machine does
/// not decide.
/// Each waiter waits 300 ms first, where a back-off loop would have grown
/// to its 100 ms step. A timeout still ends on time (+50 ms, never early).
#[test]
fn a_timed_waiter_is_woken_by_the_release_and_times_out_on_time() {
    let _s = serial();
    for backend in BACKENDS {
        let mut best = Duration::MAX;
        for round in 0..8 {
            let spec = spec(backend, &format!("woken{round}"));
            let (mut holder, _) = holder_of(&spec);
            let waiter = std::thread::spawn({
                let spec = spec.clone();
                move || {
                    let got = any_lock(&spec).acquire(Some(Duration::from_secs(10)));
                    let at = common::mono_ns();
                    // Combined mode: the new holder has the socket name too
                    // (the old one let it go before the file).
                    got.map(|guard| match guard {
                        abslock::AnyGuard::Combined(g) => (at, g.socket().is_some()),
                        _ => (at, true),
                    })
                }
            });
            std::thread::sleep(Duration::from_millis(300));
            holder.close_stdin();
            // From the moment the holder began to release.
            let released: u64 = holder.expect("released").parse().unwrap();
            let (got, socket) = waiter
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("{backend}: {e}"));
            assert!(socket, "{backend}: the new holder lacks the socket name");
            best = best.min(Duration::from_nanos(got.saturating_sub(released)));
        }
        assert!(
            best < Duration::from_millis(5),
            "{backend}: the fastest of eight hand-overs took {best:?}"
        );
        let spec = spec(backend, "ontime");
        let (_holder, _) = holder_of(&spec);
        // Never early; late by less than 50 ms at least once in three (a
        // loaded machine may delay any one wake-up).
        let mut tries = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let got = any_lock(&spec).acquire(Some(Duration::from_millis(300)));
            let took = start.elapsed();
            assert!(matches!(got, Err(Error::Timeout(_))), "{backend}: {got:?}");
            assert!(
                took >= Duration::from_millis(300),
                "{backend}: early, {took:?}"
            );
            tries.push(took);
            if took < Duration::from_millis(350) {
                break;
            }
        }
        assert!(
            tries.iter().any(|t| *t < Duration::from_millis(350)),
            "{backend}: 300 ms timeouts took {tries:?}"
        );
    }
}

#[test]
fn wait_released_sees_the_release_or_times_out() {
    let _s = serial();
    for backend in BACKENDS {
        let spec = spec(backend, "wait");
        let lock = any_lock(&spec);
        let (mut holder, _) = holder_of(&spec);
        assert!(
            !lock
                .wait_released(Some(Duration::from_millis(100)))
                .unwrap(),
            "{backend}"
        );
        holder.close_stdin();
        assert!(
            lock.wait_released(Some(Duration::from_secs(5))).unwrap(),
            "{backend}"
        );
        assert!(lock.try_acquire().is_ok(), "{backend}");
    }
}

#[test]
fn a_forked_child_keeps_the_lock_and_signal_all_reaches_it() {
    let _s = serial();
    for backend in BACKENDS {
        let spec = spec(backend, "fork");
        let lock = any_lock(&spec);
        let mut parent = spawn("any-fork-hold", &[&spec]);
        let child: u32 = parent.expect("child").parse().unwrap();
        assert!(parent.wait().success());
        // The process that took the lock is gone; its child keeps it, and
        // is who the holder is now.
        assert_eq!(held_pid(&lock), Some(child), "{backend}");
        let holder = lock.holder().unwrap().unwrap();
        let names: Vec<u32> = holder.processes().unwrap().iter().map(|p| p.pid).collect();
        assert_eq!(names, vec![child], "{backend}");
        assert_eq!(
            holder.signal_all(abslock::Signal::KILL).unwrap(),
            1,
            "{backend}"
        );
        assert!(
            lock.wait_released(Some(Duration::from_secs(5))).unwrap(),
            "{backend}"
        );
        eventually("the child to die", || !pid_alive(child));
    }
}

#[test]
fn an_exec_inherits_the_lock_only_when_passed() {
    let _s = serial();
    for backend in BACKENDS {
        for pass in ["keep", "pass"] {
            let spec = spec(backend, &format!("exec-{pass}"));
            let lock = any_lock(&spec);
            let mut h = spawn("any-spawn", &[&spec, pass]);
            let sleeper: u32 = h.expect("child").parse().unwrap();
            assert!(h.wait().success());
            let held = held_pid(&lock);
            kill(sleeper);
            if pass == "pass" {
                assert_eq!(held, Some(sleeper), "{backend}: passed to sleep");
            } else {
                assert_eq!(held, None, "{backend}: close-on-exec leaked the lock");
            }
        }
    }
}

/// The flock trap: a process queued on a lock file that is then deleted
/// and recreated must not come out holding the old, unlinked inode while
/// someone else holds the new one.
#[test]
fn a_deleted_lock_file_does_not_let_a_waiter_in_twice() {
    let _s = serial();
    let path = dir().join("deleted.lock");
    let spec = format!("file:{}", path.display());
    let (mut first, _) = holder_of(&spec);
    let old_inode = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    // The waiter opens the file and blocks in flock() on the old inode.
    let mut waiter = spawn("any-hold", &[&spec]);
    let waiter_pid = waiter.child.id();
    let blocked_on = |inode: u64| {
        std::fs::read("/proc/locks").is_ok_and(|t| {
            procfs::parse_locks(&t)
                .iter()
                .any(|e| e.blocked && e.pid == Some(waiter_pid) && e.inode == inode)
        })
    };
    eventually("the waiter to block on the old inode", || {
        blocked_on(old_inode)
    });
    // Someone deletes the lock file; the next process creates a new one.
    std::fs::remove_file(&path).unwrap();
    let second = any_lock(&spec).try_acquire().unwrap();
    let new_inode = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    assert_ne!(old_inode, new_inode);
    // The first holder goes: the waiter's flock on the old inode succeeds,
    // it sees the path names another file, and queues on that one.
    first.close_stdin();
    first.expect("released");
    eventually("the waiter to queue on the new inode", || {
        blocked_on(new_inode)
    });
    drop(second);
    assert_eq!(waiter.expect("ready"), waiter_pid.to_string());
}

#[test]
fn combined_mode_defeats_a_squatter() {
    let _s = serial();
    if !is_root() {
        eprintln!("skipped: needs root to run a squatter as another uid");
        return;
    }
    // A root-only directory for the file; a raw name anyone can bind.
    let dir = dir().join("root-only");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let name = format!("@abslock-test/{}/daemon", std::process::id());
    let path = dir.join("daemon.lock");
    let combined = format!("combined:{name}:{}", path.display());
    let as_nobody = |c: &mut std::process::Command| {
        std::os::unix::process::CommandExt::uid(c, 65534);
    };

    let mut squatter = spawn_with("any-hold", &[&format!("socket:{name}")], as_nobody);
    squatter.expect("ready");
    // The socket alone is denied.
    assert!(matches!(
        any_lock(&format!("socket:{name}")).try_acquire(),
        Err(Error::Squatted(_))
    ));
    // The combined lock is not, and names the squatter.
    let mut daemon = spawn("any-hold", &[&combined]);
    assert_eq!(daemon.expect("squatter"), "65534");
    let daemon_pid: u32 = daemon.expect("ready").parse().unwrap();
    // A second instance sees the daemon (through the file), not the squatter.
    match any_lock(&combined).try_acquire() {
        Err(Error::Held(h)) => assert_eq!(h.pid(), Some(daemon_pid)),
        other => panic!("expected Held by the daemon, got {other:?}"),
    }
    // And the squatter cannot take the file.
    let mut intruder = spawn_with("any-try", &[&format!("file:{}", path.display())], as_nobody);
    let result = intruder.expect("result");
    assert!(
        result.contains("PermissionDenied") || result.contains("13"),
        "{result}"
    );
}

/// Waits until `waiter`'s descriptor is readable or its retry time has
/// come, at most `limit`; whether the descriptor became readable.
fn wait_for_waiter(waiter: &abslock::Waiter, limit: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let wait = waiter.retry_after().map_or(limit, |r| r.min(limit));
    let mut fds = [PollFd::new(waiter, PollFlags::IN)];
    let timeout = Timespec::try_from(wait).unwrap();
    poll(&mut fds, Some(&timeout)).unwrap() > 0
}

/// An event loop's waiter (`Waiter`, what the Python package's
/// `acquire_async` uses) asks for no timer while a holder holds the lock
/// on any backend: its one descriptor becomes readable when the holder
/// lets go, and the next poll takes the lock.
#[test]
fn an_event_loop_waiter_is_woken_by_the_release_without_a_timer() {
    let _s = serial();
    for backend in BACKENDS {
        let spec = spec(backend, "waiter");
        let lock = any_lock(&spec);
        let (mut holder, _) = holder_of(&spec);
        let mut waiter = abslock::Waiter::new().unwrap();
        assert!(waiter.poll(&lock).unwrap().is_none(), "{backend}");
        assert_eq!(waiter.retry_after(), None, "{backend}: it polls");
        assert!(
            !wait_for_waiter(&waiter, Duration::from_millis(200)),
            "{backend}: readable while held"
        );
        holder.close_stdin();
        let deadline = Instant::now() + Duration::from_secs(10);
        let guard = loop {
            assert!(Instant::now() < deadline, "{backend}: never woken");
            wait_for_waiter(&waiter, Duration::from_secs(10));
            if let Some(guard) = waiter.poll(&lock).unwrap() {
                break guard;
            }
        };
        holder.expect("released");
        assert!(lock.try_acquire().is_err(), "{backend}: not held by us");
        drop(guard);
    }
}

/// Inside `interrupt::interruptible`, a signal whose handler was installed
/// without SA_RESTART (as Python installs its handlers) ends a wait with
/// `Error::Interrupted` on every backend; outside, the wait goes on.
#[test]
fn an_interruptible_wait_returns_when_a_signal_handler_runs() {
    extern "C" fn noop(_: libc::c_int) {}
    let _s = serial();
    // SAFETY: a handler that does nothing is async-signal-safe; the
    // sigaction struct is zeroed, then filled in, before the call.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = noop as *const () as usize;
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
            0
        );
    }
    for backend in BACKENDS {
        let spec = spec(backend, "interrupt");
        let (_holder, _) = holder_of(&spec);
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn({
            let spec = spec.clone();
            move || {
                tid_tx.send(rustix::thread::gettid()).unwrap();
                let lock = any_lock(&spec);
                let start = Instant::now();
                let got = abslock::interrupt::interruptible(|| lock.acquire(None));
                (got.map(drop), start.elapsed())
            }
        });
        let tid = tid_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(150));
        // SAFETY: tgkill(2) to a thread of this process that is still
        // running (it waits for a lock that is held).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::getpid(),
                tid.as_raw_nonzero().get(),
                libc::SIGUSR2,
            )
        };
        assert_eq!(rc, 0);
        let (got, waited) = waiter.join().unwrap();
        assert!(matches!(got, Err(Error::Interrupted)), "{backend}: {got:?}");
        assert!(waited < Duration::from_secs(5), "{backend}: {waited:?}");
    }
}
