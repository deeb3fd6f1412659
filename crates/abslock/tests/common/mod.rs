//! Helper processes for the integration tests: the test binary runs itself
//! again with `ABSLOCK_TEST_ROLE` set, entering `helper_main` through the
//! ignored `helper` test of each test file.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use abslock::{Lock, LockName};

pub const ROLE: &str = "ABSLOCK_TEST_ROLE";

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Serialises the tests of one binary: a fork() in one test thread copies
/// every descriptor of the process (close-on-exec ones too) into a child
/// that holds them until it execs, so a lock another test just released
/// could look held for that moment.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A lock name unique to this test process and `tag`.
pub fn unique(tag: &str) -> LockName {
    LockName::user(format!("test/{}/{tag}", std::process::id())).unwrap()
}

/// Starts the test binary as a helper in `role`, with `args` in
/// `ABSLOCK_TEST_ARGS` (space-separated).
pub fn spawn(role: &str, args: &[&str]) -> Helper {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "helper",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(ROLE, role)
        .env("ABSLOCK_TEST_ARGS", args.join(" "))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    Helper { child, out }
}

pub struct Helper {
    pub child: Child,
    out: BufReader<ChildStdout>,
}

impl Helper {
    /// Reads lines until one starts with `word `, returning the rest.
    pub fn expect(&mut self, word: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "helper exited before printing '{word}'");
            if let Some(rest) = line.trim_end().strip_prefix(&format!("{word} ")) {
                return rest.to_string();
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the helper's stdin, its cue to release.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    pub fn kill(&mut self, signal: i32) {
        // SAFETY: kill(2) has no memory preconditions; the child is not yet
        // reaped, so its pid cannot have been reused.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0);
    }

    /// Waits for the helper and returns its raw wait status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn args() -> Vec<String> {
    std::env::var("ABSLOCK_TEST_ARGS")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn say(word: &str, rest: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{word} {rest}").unwrap();
    out.flush().unwrap();
}

/// Entry point of a helper process; never returns when a role is set.
pub fn helper_main() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let args = args();
    let name = || LockName::user(&args[0]).unwrap();
    match role.as_str() {
        // Hold the lock until stdin closes, then release and linger.
        "hold" => {
            let guard = Lock::new(name()).try_acquire().unwrap();
            say("ready", std::process::id());
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            drop(guard);
            say("released", std::process::id());
            std::thread::sleep(Duration::from_secs(30));
        }
        // Take the lock, fork a child that inherits it, and exit at once.
        "fork-hold" => {
            let guard = Lock::new(name()).try_acquire().unwrap();
            // SAFETY: the child only calls async-signal-safe pause/_exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: alarm(2) is async-signal-safe; it bounds the
                // orphan's life should the test die before killing it.
                unsafe { libc::alarm(60) };
                loop {
                    // SAFETY: plain syscall.
                    unsafe { libc::pause() };
                }
            }
            say("child", pid);
            std::mem::forget(guard);
            std::process::exit(0);
        }
        // Wait for the lock, log entry and exit to a shared file, leave.
        "queue" => {
            let log = &args[1];
            let guard = Lock::new(name())
                .acquire_timeout(Duration::from_secs(60))
                .unwrap();
            append(log, &format!("in {}\n", std::process::id()));
            std::thread::sleep(Duration::from_millis(20));
            append(log, &format!("out {}\n", std::process::id()));
            drop(guard);
            std::process::exit(0);
        }
        // Loop forever: take the lock, log entry and exit around a short
        // random pause, release, pause again. Killed by the chaos test.
        "contend" => {
            let log = &args[1];
            let lock = Lock::new(name());
            let mut rng = u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut pause = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                std::thread::sleep(Duration::from_micros(rng % 2000));
            };
            loop {
                let guard = lock.acquire().unwrap();
                append(log, &format!("in {}\n", std::process::id()));
                pause();
                append(log, &format!("out {}\n", std::process::id()));
                drop(guard);
                pause();
            }
        }
        // Hold the lock, then crash as told on a line of stdin.
        "crash" => {
            let _guard = Lock::new(name()).try_acquire().unwrap();
            say("ready", std::process::id());
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            match args[1].as_str() {
                "abort" => std::process::abort(),
                // SAFETY: a deliberate invalid write, to crash for real.
                _ => unsafe { std::ptr::null_mut::<u8>().write_volatile(1) },
            }
            unreachable!();
        }
        // Exhaust RLIMIT_NOFILE, then try to take a lock.
        "emfile" => {
            rustix::process::setrlimit(
                rustix::process::Resource::Nofile,
                rustix::process::Rlimit {
                    current: Some(32),
                    maximum: Some(32),
                },
            )
            .unwrap();
            let mut hoard = Vec::new();
            while let Ok(f) = std::fs::File::open("/dev/null") {
                hoard.push(f);
            }
            match Lock::new(name()).try_acquire() {
                Err(e @ abslock::Error::Io { .. }) => say("error", e),
                other => say("unexpected", format!("{other:?}")),
            }
            drop(hoard);
            // With descriptors free again, the same lock works.
            let ok = Lock::new(name()).try_acquire().is_ok();
            say("after", ok);
        }
        other => panic!("unknown helper role {other}"),
    }
    std::process::exit(0);
}

pub fn append(path: &str, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

/// Polls `cond` every millisecond until it holds or 10 s pass.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The name part of a per-user test name, as helpers take it.
pub fn arg(name: &LockName) -> &str {
    std::str::from_utf8(name.name()).unwrap()
}
