//! The processes the experiments start: holders, waiters and contenders of
//! each locking method, run as `abslock-bench role ...`.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use abslock::Lock;
use rustix::fs::{flock, FlockOperation, Mode, OFlags};

use crate::stats::mono_ns;

/// A locking method under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// abslock, abstract socket, event-driven waiting.
    Abslock,
    /// The same with `Lock::serving(false)`: no serving thread per hold.
    AbslockUnserved,
    /// The kernel mechanism alone, no abslock code: bind + listen an
    /// abstract name; a waiter connects, polls for the hang-up, binds.
    RawSocket,
    /// flock(2) on a file, waiting inside flock.
    Flock,
    /// A PID file polled every 100 ms, as init scripts do.
    PidFile,
}

impl Method {
    pub fn arg(self) -> &'static str {
        match self {
            Method::Abslock => "abslock",
            Method::AbslockUnserved => "abslock-unserved",
            Method::RawSocket => "raw-socket",
            Method::Flock => "flock",
            Method::PidFile => "pidfile",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::Abslock => "abslock (event-driven)",
            Method::AbslockUnserved => "abslock, serving(false)",
            Method::RawSocket => "raw abstract socket (floor)",
            Method::Flock => "flock(2) blocking",
            Method::PidFile => "PID file, 100 ms poll",
        }
    }

    fn parse(s: &str) -> Method {
        match s {
            "abslock" => Method::Abslock,
            "abslock-unserved" => Method::AbslockUnserved,
            "raw-socket" => Method::RawSocket,
            "flock" => Method::Flock,
            _ => Method::PidFile,
        }
    }
}

/// A held lock of any method; dropping releases (the fields are held only
/// to be dropped).
#[allow(dead_code)]
enum Held {
    Socket(abslock::Guard),
    File(std::os::fd::OwnedFd),
    Pid(std::path::PathBuf),
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Held::Pid(path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn take(method: Method, target: &str) -> Held {
    match method {
        Method::Abslock | Method::AbslockUnserved => Held::Socket(
            Lock::user(target)
                .expect("name")
                .serving(method == Method::Abslock)
                .acquire()
                .expect("acquire"),
        ),
        Method::RawSocket => Held::File(raw_take(target)),
        Method::Flock => {
            let fd = rustix::fs::open(
                target,
                OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .expect("open");
            flock(&fd, FlockOperation::LockExclusive).expect("flock");
            Held::File(fd)
        }
        Method::PidFile => {
            let path = Path::new(target);
            loop {
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                {
                    Ok(mut f) => {
                        writeln!(f, "{}", std::process::id()).expect("write");
                        return Held::Pid(path.to_path_buf());
                    }
                    Err(_) if stale(path) => {
                        let _ = std::fs::remove_file(path);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
    }
}

/// The floor of a socket-name lock: bind and listen; if the name is taken,
/// connect to its holder, sleep in poll(2) until the connection hangs up
/// (the holder's socket closed), and bind again.
fn raw_take(name: &str) -> std::os::fd::OwnedFd {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::net::{
        bind, connect, listen, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType,
    };
    let addr = SocketAddrUnix::new_abstract_name(format!("abslock-bench-raw/{name}").as_bytes())
        .expect("address");
    let stream = || {
        socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .expect("socket")
    };
    loop {
        let fd = stream();
        if bind(&fd, &addr).is_ok() {
            listen(&fd, 16).expect("listen");
            return fd;
        }
        let conn = stream();
        if connect(&conn, &addr).is_ok() {
            let mut fds = [PollFd::new(&conn, PollFlags::IN)];
            let _ = poll(&mut fds, None);
        }
    }
}

/// A PID file whose process is gone (or that is empty or unreadable).
fn stale(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    match text.trim().parse::<i32>() {
        Ok(pid) => {
            // SAFETY: kill(2) with signal 0 only checks existence.
            let rc = unsafe { libc::kill(pid, 0) };
            rc == -1
        }
        Err(_) => true,
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn read_line() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line
}

/// `role KIND METHOD TARGET [ARGS]`.
pub fn main(args: &[String]) {
    let method = Method::parse(&args[1]);
    let target = &args[2];
    match args[0].as_str() {
        // Take the lock, say "ready", exit (without unlocking first) at the
        // first line of stdin; a PID file is removed, as a clean exit does.
        "hold" => {
            let held = take(method, target);
            say("ready");
            read_line();
            drop(held);
            std::process::exit(0);
        }
        // Say "waiting", wait for the lock, print when it was ours.
        "wait" => {
            say("waiting");
            let held = take(method, target);
            say(&mono_ns().to_string());
            std::mem::forget(held);
            std::process::exit(0);
        }
        // After "go DEADLINE" on stdin: take, hold a moment, release, until
        // DEADLINE; print every wait in ns.
        "contend" => {
            say("ready");
            let line = read_line();
            let deadline: u64 = line
                .trim()
                .strip_prefix("go ")
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            let mut waits = Vec::new();
            while mono_ns() < deadline {
                let asked = mono_ns();
                let held = take(method, target);
                waits.push(mono_ns() - asked);
                // The critical section: a few microseconds of work.
                let mut x = 0u64;
                for i in 0..2000u64 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                drop(held);
            }
            let text: Vec<String> = waits.iter().map(u64::to_string).collect();
            say(&format!("waits {}", text.join(" ")));
        }
        // Bind ARGS[3] listening abstract sockets, say "ready", hold them
        // until stdin closes.
        "bind-many" => {
            let n: usize = args[3].parse().expect("count");
            use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
            let limit = getrlimit(Resource::Nofile);
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: limit.maximum,
                    maximum: limit.maximum,
                },
            );
            let mut fds = Vec::with_capacity(n);
            for i in 0..n {
                let fd = rustix::net::socket_with(
                    rustix::net::AddressFamily::UNIX,
                    rustix::net::SocketType::STREAM,
                    rustix::net::SocketFlags::CLOEXEC,
                    None,
                )
                .expect("socket (raise ulimit -n)");
                let addr = rustix::net::SocketAddrUnix::new_abstract_name(
                    format!("{target}/{i}").as_bytes(),
                )
                .expect("address");
                rustix::net::bind(&fd, &addr).expect("bind");
                rustix::net::listen(&fd, 1).expect("listen");
                fds.push(fd);
            }
            say("ready");
            read_line();
        }
        other => panic!("unknown role {other}"),
    }
}
