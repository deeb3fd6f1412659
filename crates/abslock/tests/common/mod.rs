//! Helper processes for the integration tests: the test binary runs itself
//! again with `ABSLOCK_TEST_ROLE` set, entering `helper_main` through the
//! ignored `helper` test of each test file.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use abslock::{Backend, Lock, LockName};

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
    spawn_with(role, args, |_| {})
}

/// [`spawn`], with `customize` applied to the command first (for example
/// to run the helper as another uid).
pub fn spawn_with(role: &str, args: &[&str], customize: impl FnOnce(&mut Command)) -> Helper {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    customize(&mut cmd);
    let mut child = cmd
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
        self.lines_until(word).1
    }

    /// Reads lines until one starts with `word `; returns the lines before
    /// it and the rest of that line.
    pub fn lines_until(&mut self, word: &str) -> (Vec<String>, String) {
        let mut before = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "helper exited before printing '{word}'");
            match line.trim_end().strip_prefix(&format!("{word} ")) {
                Some(rest) => return (before, rest.to_string()),
                None => before.push(line.trim_end().to_string()),
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

/// CLOCK_MONOTONIC in nanoseconds: comparable between processes.
pub fn mono_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `t` is.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    assert_eq!(rc, 0);
    u64::try_from(t.tv_sec).unwrap() * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap()
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
    // "@address" is a raw name (shared across uids), anything else per-user.
    let name = || LockName::parse(&args[0], false).unwrap();
    match role.as_str() {
        // Hold the lock until stdin closes, then release and linger.
        "hold" => {
            let guard = Lock::new(name()).try_acquire().unwrap();
            say("ready", std::process::id());
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            // When the release began, on the clock every process shares.
            let releasing = mono_ns();
            drop(guard);
            say("released", releasing);
            std::thread::sleep(Duration::from_secs(30));
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
        // Hold the lock with its socket also registered in an io_uring as
        // a fixed file, then exit when stdin closes: the ring's teardown
        // drops the last reference after the exit (a late release).
        "uring-hold" => {
            use std::os::fd::{AsFd, AsRawFd};
            let guard = Lock::new(name()).try_acquire().unwrap();
            let mut params = [0u8; 120];
            // SAFETY: io_uring_setup(2) writes at most 120 bytes there.
            let ring =
                unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
            if ring < 0 {
                say("no-uring", std::io::Error::last_os_error());
                std::process::exit(0);
            }
            let files = [guard.as_fd().as_raw_fd()];
            // SAFETY: IORING_REGISTER_FILES reads one descriptor from `files`.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_io_uring_register,
                    ring,
                    2u32,
                    files.as_ptr(),
                    1u32,
                )
            };
            assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
            say("ready", std::process::id());
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            // Without the guard's release: the process's exit closes it.
            std::process::exit(0);
        }
        // Hold the lock with args[1] MiB of memory written to, until killed.
        "big-hold" => {
            let mib: usize = args[1].parse().unwrap();
            let mut ballast = vec![0u8; mib << 20];
            for (i, page) in ballast.chunks_mut(4096).enumerate() {
                page[0] = i as u8 | 1;
            }
            let _guard = Lock::new(name()).try_acquire().unwrap();
            say("ready", std::process::id());
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            std::hint::black_box(&ballast);
        }
        // Hold the lock with 256 MiB of memory written to, core dumps on
        // (in the directory args[1]), then crash on a line of stdin.
        "dump-hold" => {
            rustix::process::setrlimit(
                rustix::process::Resource::Core,
                rustix::process::Rlimit {
                    current: None,
                    maximum: None,
                },
            )
            .unwrap();
            std::env::set_current_dir(&args[1]).unwrap();
            let mut ballast = vec![0u8; 256 << 20];
            for (i, page) in ballast.chunks_mut(4096).enumerate() {
                page[0] = i as u8 | 1;
            }
            let _guard = Lock::new(name()).try_acquire().unwrap();
            say("ready", std::process::id());
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            std::hint::black_box(&ballast);
            // SAFETY: a deliberate invalid write, to crash for real.
            unsafe { std::ptr::null_mut::<u8>().write_volatile(1) };
            unreachable!();
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
        // Hold the lock and serve the protocol; args[1] says how:
        // "requests" serves messages and stops, "anyone" does so for every
        // uid, "plain" never calls requests(), "exec" gives up serving
        // (into_fd) as `abslock run --exec` does.
        "serve" => serve(name(), &args[1]),
        // The backend-generic roles of the contract suite; args[0] is a
        // spec for any_lock().
        "any-hold" => {
            let guard = any_lock(&args[0]).acquire(None).unwrap();
            if let abslock::AnyGuard::Combined(g) = &guard {
                say(
                    "squatter",
                    g.squatter().and_then(|h| h.uid()).map_or(-1, i64::from),
                );
            }
            say("ready", std::process::id());
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            // When the release began, on the clock every process shares.
            let releasing = mono_ns();
            drop(guard);
            say("released", releasing);
            std::thread::sleep(Duration::from_secs(30));
        }
        "any-try" => match any_lock(&args[0]).try_acquire() {
            Ok(_) => say("result", "acquired"),
            Err(e) => say("result", format!("{e:?}")),
        },
        // Take the lock, fork a child that inherits it, and exit at once.
        "any-fork-hold" => {
            let guard = any_lock(&args[0]).try_acquire().unwrap();
            // SAFETY: the child only calls async-signal-safe alarm/pause.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: as above; alarm bounds the orphan's life.
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
        // Take the lock and start `sleep`, passing the lock to it if
        // args[1] is "pass"; then exit at once.
        "any-spawn" => {
            let guard = any_lock(&args[0]).try_acquire().unwrap();
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            if args[1] == "pass" {
                guard.pass_to(&mut cmd);
            }
            let child = cmd.spawn().unwrap();
            say("child", child.id());
            std::process::exit(0);
        }
        // Send a message with this process's argv; report the outcome.
        "client" => {
            let outcome =
                Lock::new(name()).send(&abslock::Message::from_env(), Duration::from_secs(5));
            match outcome {
                Ok(reply) => say("result", format!("ok {}", reply.status)),
                Err(e) => say("result", e),
            }
        }
        other => panic!("unknown helper role {other}"),
    }
    std::process::exit(0);
}

fn serve(name: LockName, mode: &str) {
    use abslock::__private::protocol::Request;
    use abslock::Incoming;

    let guard = Lock::new(name).try_acquire().unwrap();
    guard.set_version("9.9.9");
    guard.set_metadata("k", "v");
    guard.set_metadata("messages", "0");
    guard.on_reject(|line| say("rejected", line));
    if mode == "exec" {
        let fd = guard.into_fd().unwrap();
        say("ready", std::process::id());
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        drop(fd);
        std::process::exit(0);
    }
    if mode == "anyone" {
        guard.set_access(abslock::Access::anyone());
    }
    let requests = (mode != "plain").then(|| guard.requests());
    say("ready", std::process::id());
    let Some(requests) = requests else {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    };
    let mut count = 0;
    for request in requests {
        match request {
            Incoming::Message(m) => {
                count += 1;
                guard.set_metadata("messages", count.to_string());
                say("message", m.peer().uid);
                if m.message().payload == b"drop-during-shutdown" {
                    drop(guard);
                    drop(m);
                    say("released", std::process::id());
                    std::process::exit(0);
                }
                // Echo the whole message back, encoded, so the test can
                // compare it byte for byte.
                let echo = Request::Message(m.message().clone()).encode().unwrap();
                let status = m.message().argv.len() as i32;
                m.reply(status, &echo).unwrap();
            }
            Incoming::Stop(stop) => {
                say("stop", stop.peer().uid);
                stop.accept();
                break;
            }
            _ => {}
        }
    }
    drop(guard);
    say("released", std::process::id());
}

/// A lock of any backend from a spec: `socket:NAME`, `file:PATH`, or
/// `combined:NAME:PATH` (NAME as `LockName::parse` takes it).
pub fn any_lock(spec: &str) -> abslock::AnyLock {
    use abslock::AnyLock;
    use abslock::CombinedLock;
    use abslock::FileLock;
    let socket = |name: &str| Lock::new(LockName::parse(name, false).unwrap());
    if let Some(path) = spec.strip_prefix("file:") {
        AnyLock::File(FileLock::new(path))
    } else if let Some(rest) = spec.strip_prefix("combined:") {
        let (name, path) = rest.split_once(':').unwrap();
        AnyLock::Combined(CombinedLock::new(socket(name), FileLock::new(path)))
    } else {
        AnyLock::Socket(socket(spec.strip_prefix("socket:").unwrap()))
    }
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

/// Whether `name`'s address is bound now: a stream socket's bind probe,
/// closed at once.
pub fn bound(name: &LockName) -> bool {
    use std::os::fd::AsFd;
    let fd = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    let address = rustix::net::SocketAddrUnix::new_abstract_name(name.address()).unwrap();
    rustix::net::bind(fd.as_fd(), &address).is_err()
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The name part of a per-user test name, as helpers take it.
pub fn arg(name: &LockName) -> &str {
    std::str::from_utf8(name.name()).unwrap()
}
