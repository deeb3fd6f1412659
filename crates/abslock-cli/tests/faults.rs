//! Fault cases of the command, end to end: namespaces and descriptor
//! exhaustion. Root-only parts report themselves skipped otherwise.

mod common;

use std::process::Command;

use common::*;

fn have_unshare() -> bool {
    is_root()
        && Command::new("unshare")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

#[test]
fn a_holder_in_a_child_pid_namespace_is_shown_with_our_pid() {
    if !have_unshare() {
        eprintln!("skipped: needs root and unshare(1)");
        return;
    }
    let lock = name("pidns-in");
    let mut ns = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            BIN,
            "run",
            &lock,
            "--",
            "sleep",
            "30",
        ])
        .spawn()
        .unwrap();
    let status = wait_held(&lock);
    let pid = status["holder"]["pid"]
        .as_u64()
        .expect("a pid visible from here");
    // Inside, abslock is pid 1; from here it is the child of unshare(1).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: u32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, ns.id(), "holder pid {pid} should be unshare's child");
    assert_eq!(status["holder"]["command"][1], "run");
    // --kill-child: the namespace's init, and with it everything inside, dies.
    ns.kill().unwrap();
    ns.wait().unwrap();
    eventually("release", || !held(&lock));
}

#[test]
fn a_holder_outside_our_pid_namespace_has_no_pid_rather_than_a_wrong_one() {
    if !have_unshare() {
        eprintln!("skipped: needs root and unshare(1)");
        return;
    }
    let lock = name("pidns-out");
    let mut run = background(&["run", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            BIN,
            "status",
            "--json",
            &lock,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["held"], true);
    assert!(status["holder"]["pid"].is_null(), "{status}");
    assert_eq!(status["holder"]["uid"].as_u64(), Some(0));
    run.kill().unwrap();
    run.wait().unwrap();
}

#[test]
fn two_network_namespaces_do_not_both_run() {
    if !have_unshare() {
        eprintln!("skipped: needs root and unshare(1)");
        return;
    }
    // Each namespace has its own abstract names (rule 3); the per-user
    // lock's runtime file, in a directory both see, keeps them apart.
    let runtime = std::env::temp_dir().join(format!("abslock-netns-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let lock = name("netns");
    let mut run = Command::new(BIN)
        .args(["run", &lock, "--", "sleep", "30"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .spawn()
        .unwrap();
    wait_held(&lock);
    let inside = |args: &[&str]| {
        Command::new("unshare")
            .arg("-n")
            .arg(BIN)
            .args(args)
            .env("XDG_RUNTIME_DIR", &runtime)
            .output()
            .unwrap()
    };
    let out = inside(&["run", "-n", "-v", &lock, "--", "true"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The holder outside is named, though its socket is not visible here.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("pid {}", run.id())),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = inside(&["status", &lock]);
    assert_eq!(out.status.code(), Some(0), "held, seen from inside");
    run.kill().unwrap();
    run.wait().unwrap();
    // And the other way round: held inside, refused outside.
    let mut inner = Command::new("unshare")
        .arg("-n")
        .arg(BIN)
        .args(["run", &lock, "--", "sleep", "30"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .spawn()
        .unwrap();
    eventually("the lock inside", || {
        Command::new(BIN)
            .args(["status", &lock])
            .env("XDG_RUNTIME_DIR", &runtime)
            .status()
            .unwrap()
            .code()
            == Some(0)
    });
    let out = Command::new(BIN)
        .args(["run", "-n", &lock, "--", "true"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    inner.kill().unwrap();
    inner.wait().unwrap();
    std::fs::remove_dir_all(&runtime).unwrap();
}

#[test]
fn descriptor_exhaustion_exits_71_with_one_line() {
    let lock = name("emfile");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -n 4 && exec {BIN} run {lock} -- true"),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(71), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("Too many open files") && err.contains("ulimit -n"),
        "{err}"
    );
}

/// Sets CLOCK_REALTIME; returns false if not permitted.
fn set_realtime(t: std::time::SystemTime) -> bool {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec that outlives the call.
    unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) == 0 }
}

#[test]
fn timeouts_ignore_wall_clock_jumps() {
    if !is_root() {
        eprintln!("skipped: needs root to set the clock");
        return;
    }
    use std::time::{Duration, Instant, SystemTime};
    let lock = name("clock");
    let mut run = background(&["run", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    let (wall0, mono0) = (SystemTime::now(), Instant::now());
    let waiter = background(&["wait", "-w", "1", &lock]);
    std::thread::sleep(Duration::from_millis(100));
    // Jump the wall clock a day ahead, then a day back, while it waits.
    let jumped = set_realtime(wall0 + Duration::from_secs(86_400));
    std::thread::sleep(Duration::from_millis(100));
    set_realtime(wall0 - Duration::from_secs(86_400));
    let out = waiter.wait_with_output().unwrap();
    let waited = mono0.elapsed();
    // Put the wall clock back where it would be without the jumps.
    set_realtime(wall0 + mono0.elapsed());
    run.kill().unwrap();
    run.wait().unwrap();
    if !jumped {
        eprintln!("skipped: clock_settime not permitted here");
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "still held: the wait must time out"
    );
    assert!(
        waited >= Duration::from_millis(950),
        "timed out early after a jump: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(20),
        "a backward jump stretched the wait: {waited:?}"
    );
}

/// The human status of `lock`.
fn status_text(lock: &str) -> String {
    let out = Command::new(BIN).args(["status", lock]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why a lock stays taken after a crash, a kill or a stop (issue 26):
/// `status` names a holder that is stopped, stopped by a tracer, or
/// dumping core, from `/proc/PID/stat`.
#[test]
fn status_says_why_a_stopped_traced_or_dumping_holder_still_holds() {
    // Stopped: -F makes `sleep` itself the holder.
    let lock = name("state-stop");
    let mut holder = background(&["run", "-F", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    signal(holder.id(), libc::SIGSTOP);
    eventually("the stop to show", || {
        status_text(&lock).contains("is stopped (SIGSTOP")
    });
    let json = status_json(&lock);
    assert_eq!(json["processes"][0]["state"], "T", "{json}");
    signal(holder.id(), libc::SIGKILL);
    holder.wait().unwrap();

    if !is_root() {
        eprintln!("skipped: the tracer and core-dump cases need root");
        return;
    }
    // Stopped by a tracer: python3 attaches with ptrace(2) and waits.
    let lock = name("state-traced");
    let mut holder = background(&["run", "-F", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    const TRACER: &str = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
pid = int(sys.argv[1])
if libc.ptrace(16, pid, None, None) != 0:  # PTRACE_ATTACH
    sys.exit("attach: errno %d" % ctypes.get_errno())
os.waitpid(pid, os.WUNTRACED if hasattr(os, "WUNTRACED") else 0)
print("attached", flush=True)
time.sleep(30)
"#;
    let mut tracer = Command::new("python3")
        .args(["-c", TRACER, &holder.id().to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut tracer), "attached");
    assert!(
        status_text(&lock).contains("stopped by a tracer"),
        "{}",
        status_text(&lock)
    );
    tracer.kill().unwrap();
    tracer.wait().unwrap();
    signal(holder.id(), libc::SIGKILL);
    holder.wait().unwrap();

    // Dumping core: only with a core_pattern that writes a file (a pipe
    // to systemd-coredump or apport is the machine's, not the test's).
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.trim().is_empty() || pattern.starts_with('|') || pattern.contains('/') {
        eprintln!("skipped: core_pattern is {pattern:?}, not a plain file name");
        return;
    }
    let dir = std::env::temp_dir().join(format!("abslock-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lock = name("state-core");
    // 1 GiB touched, so the dump takes a while to write.
    const BIG: &str = "import sys, time\nb = bytearray(1 << 30)\nb[::4096] = b'x' * (len(b) // 4096)\nprint('big', flush=True)\ntime.sleep(60)\n";
    let mut holder = Command::new(BIN)
        .args([
            "run",
            "-F",
            &lock,
            "--",
            "sh",
            "-c",
            "ulimit -c unlimited; exec python3 -c \"$0\"",
            BIG,
        ])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut holder), "big");
    signal(holder.id(), libc::SIGSEGV);
    let mut seen = false;
    let start = std::time::Instant::now();
    while !seen && start.elapsed() < std::time::Duration::from_secs(10) {
        let text = status_text(&lock);
        if text.ends_with(": free\n") || text.is_empty() {
            break;
        }
        seen = text.contains("dumping core");
    }
    holder.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(seen, "status never said the holder was dumping core");
}

/// A holder blocked closing a file on a hung file system (issue 26, "When
/// the release is late"): SIGKILL does not free the name, because the
/// exit closes descriptors in order and waits, in D state, for the FUSE
/// server to answer the FLUSH of the earlier one; `status` says so; the
/// name goes when the server answers.
#[test]
fn a_holder_stuck_in_d_state_on_a_hung_fuse_file_keeps_the_name_and_status_says_why() {
    if !is_root() || !std::path::Path::new("/dev/fuse").exists() {
        eprintln!("skipped: needs root and /dev/fuse to mount a FUSE file system");
        return;
    }
    let mnt = std::env::temp_dir().join(format!("abslock-fuse-{}", std::process::id()));
    std::fs::create_dir_all(&mnt).unwrap();
    let mut fuse = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/hung_fuse.py"
        ))
        .arg(&mnt)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mounted = first_line(&mut fuse);
    if mounted != "mounted" {
        fuse.wait().unwrap();
        let _ = std::fs::remove_dir(&mnt);
        eprintln!("skipped: the FUSE file system could not be mounted here");
        return;
    }
    // The file is opened first, so its descriptor is closed (and hangs)
    // before the socket's.
    let lock = format!("@{}", name("fuse-d"));
    const HOLDER: &str = "import socket, sys, time\nf = open(sys.argv[1], 'rb')\ns = socket.socket(socket.AF_UNIX)\ns.bind('\\0' + sys.argv[2])\ns.listen()\nprint('held', flush=True)\ntime.sleep(60)\n";
    let mut holder = Command::new("python3")
        .args(["-c", HOLDER])
        .arg(mnt.join("f"))
        .arg(&lock[1..])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut holder), "held");
    sigkill(&holder);
    let flush = first_line(&mut fuse);
    assert_eq!(flush, format!("flush {}", holder.id()));
    let stat = format!("/proc/{}/stat", holder.id());
    eventually("the killed holder to wait in D state", || {
        std::fs::read_to_string(&stat).is_ok_and(|s| s.contains(") D "))
    });
    // Killed, yet the name is bound and the holder named, with the reason.
    let text = status_text(&lock);
    assert!(
        text.contains("uninterruptible sleep (D)"),
        "status does not say why the lock is still taken: {text}"
    );
    let json = status_json(&lock);
    assert_eq!(json["processes"][0]["state"], "D", "{json}");
    abslock()
        .args(["run", "-n", &lock, "true"])
        .assert()
        .code(1);
    // The server answers: the exit goes on, and the name goes with it.
    {
        use std::io::Write;
        let mut stdin = fuse.stdin.take().unwrap();
        stdin.write_all(b"answer\n").unwrap();
        // Dropping stdin (EOF) unmounts once the flush is answered.
    }
    holder.wait().unwrap();
    assert!(!held(&lock), "{}", status_text(&lock));
    fuse.wait().unwrap();
    let _ = std::fs::remove_dir(&mnt);
}
