//! Helpers shared by the CLI's end-to-end tests.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command as Cmd;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_abslock");

/// The abslock the cluster and contract tests run: `ABSLOCK_TEST_BIN` if
/// set (CI points it at the binary `cargo install` built, without feature
/// flags), else the one cargo built for the tests.
pub fn bin() -> String {
    std::env::var("ABSLOCK_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

pub fn abslock() -> Cmd {
    Cmd::new(BIN)
}

/// A lock name unique to this test process and `tag`.
pub fn name(tag: &str) -> String {
    format!("cli-test/{}/{tag}", std::process::id())
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `abslock ARGS` in the background.
pub fn background(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `abslock ARGS` in the background with SIGINT and SIGQUIT back at their
/// default action: a test started from a shell's background job inherits
/// them ignored (and exec keeps them so), and a test that signals with
/// them must not depend on how it was started.
pub fn background_with_default_signals(args: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure calls only signal(2),
    // which is async-signal-safe, and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

/// The first line a child writes on its piped stdout, without the newline.
pub fn first_line(child: &mut Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim_end().to_string()
}

/// Copies an executable with cp(1), not `std::fs::copy`: a file this
/// process had open for writing could be inherited by a child another
/// test thread is forking, and exec'ing the copy would then fail with
/// ETXTBSY ("Text file busy").
pub fn copy_executable(from: impl AsRef<std::path::Path>, to: impl AsRef<std::path::Path>) {
    let ok = Command::new("cp")
        .arg(from.as_ref())
        .arg(to.as_ref())
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp {:?} {:?}", from.as_ref(), to.as_ref());
}

pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`eventually`] for slower things (a server starting, a lease running
/// out): up to `within`, asking every 20 ms.
pub fn eventually_within(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL to our own child, not yet reaped.
pub fn sigkill(child: &Child) {
    // SAFETY: kill(2) has no memory preconditions; the pid is our child's,
    // which cannot be reused before we wait for it.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
}

pub fn status_json(lock: &str) -> Value {
    let out = Command::new(BIN)
        .args(["status", "--json", lock])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn held(lock: &str) -> bool {
    Command::new(BIN)
        .args(["status", lock])
        .output()
        .unwrap()
        .status
        .code()
        == Some(0)
}

pub fn wait_held(lock: &str) -> Value {
    eventually("the lock to be taken", || held(lock));
    status_json(lock)
}

pub fn pids(status: &Value) -> Vec<u64> {
    status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect()
}

pub fn alive(pid: u64) -> bool {
    // A zombie still has /proc/PID; look at its state too.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own unreaped child.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

pub fn kill_pid(pid: u64) {
    // SAFETY: kill(2) has no memory preconditions; tests only target
    // processes they started and that are still alive.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}
