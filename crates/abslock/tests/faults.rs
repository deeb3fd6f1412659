//! Fault cases: crashing holders, descriptor exhaustion, a stopped holder.
//! (Pid and network namespaces are tested end to end in the CLI's
//! `tests/faults.rs`; fork children in `lock.rs`.)

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use abslock::{Error, Lock, Signal};
use common::{arg, spawn, unique};

#[test]
#[ignore = "entry point of helper processes, run by the other tests"]
fn helper() {
    common::helper_main();
}

fn crash_wakes_the_waiter(how: &str, signal: i32) {
    let _serial = common::serial();
    let name = unique(how);
    let mut h = spawn("crash", &[arg(&name), how]);
    h.expect("ready");
    let lock = Lock::new(name);
    let waiter = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.acquire_timeout(Duration::from_secs(30)).map(|_| ()))
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(!waiter.is_finished());
    h.child.stdin.as_mut().unwrap().write_all(b"now\n").unwrap();
    let status = h.wait();
    assert_eq!(status.signal(), Some(signal), "{status}");
    waiter
        .join()
        .unwrap()
        .expect("the waiter takes over after the crash");
}

#[test]
fn a_holder_that_aborts_releases_and_wakes_waiters() {
    crash_wakes_the_waiter("abort", libc::SIGABRT);
}

#[test]
fn a_holder_that_segfaults_releases_and_wakes_waiters() {
    crash_wakes_the_waiter("segv", libc::SIGSEGV);
}

#[test]
fn descriptor_exhaustion_is_a_clear_error_not_a_panic() {
    let _serial = common::serial();
    let name = unique("emfile");
    let mut h = spawn("emfile", &[arg(&name)]);
    let error = h.expect("error");
    assert!(error.contains("Too many open files"), "{error}");
    assert!(
        error.contains("ulimit -n"),
        "the message should say what to do: {error}"
    );
    assert_eq!(h.expect("after"), "true");
    assert!(h.wait().success());
}

#[test]
fn a_stopped_holder_keeps_the_lock_and_can_still_be_killed() {
    let _serial = common::serial();
    let name = unique("stopped");
    let mut h = spawn("hold", &[arg(&name)]);
    h.expect("ready");
    h.kill(libc::SIGSTOP);
    let lock = Lock::new(name);
    // Waiters keep waiting: a stopped process still holds its descriptors.
    match lock.acquire_timeout(Duration::from_millis(200)) {
        Err(Error::Timeout(Some(holder))) => assert_eq!(holder.pid(), Some(h.pid())),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let holder = lock.holder().unwrap().expect("held");
    holder.signal(Signal::KILL).unwrap();
    assert!(holder.wait_released(Some(Duration::from_secs(10))).unwrap());
    assert_eq!(h.wait().signal(), Some(libc::SIGKILL));
    lock.try_acquire().unwrap();
}

/// Issue 26: a holder whose socket is also registered in an io_uring
/// exits; the kernel drops the ring's reference, and with it the name,
/// tens of milliseconds after `waitpid` returned. `try_acquire` waits for
/// such a release in progress (the holder gone, no process keeping the
/// socket) instead of reporting the dead process as the holder.
#[test]
fn try_acquire_waits_for_a_release_in_progress_instead_of_naming_a_dead_holder() {
    let _serial = common::serial();
    let mut late = 0;
    for round in 0..3 {
        let name = unique(&format!("uring-{round}"));
        let mut h = spawn("uring-hold", &[arg(&name)]);
        let (before, _) = h.lines_until("ready");
        if before.iter().any(|l| l.starts_with("no-uring")) {
            println!("skipped: io_uring unavailable here ({before:?})");
            return;
        }
        h.close_stdin();
        assert!(h.wait().success());
        // Still bound right after the reap: the release is late.
        if common::bound(&name) {
            late += 1;
        }
        let lock = Lock::new(name);
        match lock.try_acquire() {
            Ok(_guard) => {}
            Err(e) => panic!("round {round}: a release in progress was reported: {e}"),
        }
    }
    assert!(
        late > 0,
        "no round had a late release: the test proved nothing"
    );
}

/// Issue 26: a crashing holder that dumps core keeps the name until the
/// dump is written (`vfs_coredump` runs before the exit closes its files),
/// and `waitpid` reports the death only after both. Needs a file
/// `core_pattern` (a pipe, such as systemd-coredump, makes the kernel wait
/// for its reader instead: skipped, with the reason).
#[test]
fn a_holder_dumping_core_keeps_the_name_until_the_dump_is_written() {
    let _serial = common::serial();
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.starts_with('|') {
        println!("skipped: core_pattern is a pipe ({})", pattern.trim());
        return;
    }
    let dir = std::env::temp_dir().join(format!("abslock-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = unique("dump");
    let mut h = spawn("dump-hold", &[arg(&name), dir.to_str().unwrap()]);
    h.expect("ready");
    let probe = || common::bound(&name);
    h.child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"crash\n")
        .unwrap();
    // While the dump is written (the core file exists, the process is not
    // yet a zombie), the name is still bound.
    let pid = h.pid();
    let has_core = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("core"))
    };
    let mut seen_dumping = false;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        match abslock::ProcessInfo::of(pid) {
            Ok(p) if p.state.is_some_and(|(state, _)| state == 'Z') => break,
            Ok(_) if has_core() => {
                let held = probe();
                // Still dumping after the probe: the probe saw the dump.
                if abslock::ProcessInfo::of(pid)
                    .is_ok_and(|p| p.state.is_some_and(|(state, _)| state != 'Z'))
                {
                    assert!(held, "the name was free while the holder dumped core");
                    seen_dumping = true;
                }
                break;
            }
            Ok(_) => std::thread::sleep(Duration::from_micros(100)),
            Err(_) => break,
        }
    }
    let status = h.wait();
    let core = has_core();
    let _ = std::fs::remove_dir_all(&dir);
    if !status.core_dumped() || !core {
        println!(
            "skipped: no core was written here ({status:?}, core_pattern {})",
            pattern.trim()
        );
        return;
    }
    assert!(seen_dumping, "never saw the holder dumping core");
    assert!(!probe(), "the name was still bound after waitpid");
}

/// Issue 26: "at once" counts from the reap, not from the death. A holder
/// with a large address space is SIGKILLed: its memory is torn down
/// (`exit_mm`) before its files are closed (`exit_files`); the name is
/// free when `waitpid` returns, which is that much after the kill (the
/// test prints it).
#[test]
fn a_killed_holder_with_much_memory_frees_the_name_by_the_reap_not_at_the_kill() {
    let _serial = common::serial();
    let name = unique("big");
    let probe = || common::bound(&name);
    let mut h = spawn("big-hold", &[arg(&name), "2048"]);
    h.expect("ready");
    let killed = std::time::Instant::now();
    h.kill(libc::SIGKILL);
    let status = h.wait();
    let reaped = killed.elapsed();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!probe(), "still bound after waitpid");
    // Measured, not asserted (no timing in tests): the delay the docs cite.
    println!("a 2 GiB holder was reaped, its name free, {reaped:?} after SIGKILL");
}

/// Rule 1: a process reading `/proc/PID/fdinfo` of the holder as it dies
/// holds a reference to the socket's file for that read (`seq_show()` in
/// `fs/proc/fd.c` takes it with `fget_task()`), so the last `fput` may be
/// the reader's and come after `waitpid`. The audit saw that in 2 runs of
/// 3000; what this test asserts is the bound: whoever drops the last
/// reference, the name is free within milliseconds of the reap.
#[test]
fn a_concurrent_fdinfo_reader_delays_the_release_only_briefly() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;
    let _serial = common::serial();
    const ROUNDS: usize = 200;
    let target = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (target, stop) = (target.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let pid = target.load(Ordering::Relaxed);
                for fd in 3..8 {
                    if std::fs::read(format!("/proc/{pid}/fdinfo/{fd}")).is_ok() {
                        reads += 1;
                    }
                }
            }
            reads
        })
    };
    let (mut late, mut worst) = (0, Duration::ZERO);
    for round in 0..ROUNDS {
        let name = unique(&format!("fdinfo-{round}"));
        let mut h = spawn("hold", &[arg(&name)]);
        h.expect("ready");
        target.store(h.pid(), Ordering::Relaxed);
        std::thread::sleep(Duration::from_micros(200));
        h.kill(libc::SIGKILL);
        h.wait();
        let reaped = std::time::Instant::now();
        if common::bound(&name) {
            late += 1;
            while common::bound(&name) {
                assert!(
                    reaped.elapsed() < Duration::from_millis(100),
                    "round {round}: still bound 100 ms after the reap"
                );
                std::thread::yield_now();
            }
            worst = worst.max(reaped.elapsed());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(
        reads > ROUNDS as u64,
        "the reader never read the holder's fdinfo"
    );
    println!(
        "{late} of {ROUNDS} releases came after waitpid (latest {worst:?}); {reads} fdinfo reads"
    );
}
