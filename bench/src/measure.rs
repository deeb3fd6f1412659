//! The whole-process experiments. Each returns raw samples; `main` turns
//! them into tables and plots.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::roles::Method;
use crate::stats::mono_ns;

/// Where things live for one run.
pub struct Env {
    /// The `abslock` binary under test (as `cargo install` builds it).
    pub abslock: PathBuf,
    /// The static binary the .deb ships (`scripts/build-static.sh`), if
    /// built: measured beside `abslock` where start-up and memory count.
    pub abslock_static: Option<PathBuf>,
    /// This binary, for the roles.
    pub me: PathBuf,
    /// A scratch directory for lock and PID files.
    pub dir: PathBuf,
    /// Unique prefix for lock names.
    pub tag: String,
}

impl Env {
    pub fn target(&self, method: Method, what: &str) -> String {
        match method {
            Method::Abslock | Method::AbslockUnserved | Method::RawSocket => {
                format!("{}/{what}", self.tag)
            }
            Method::Flock => self.dir.join(format!("{what}.lock")).display().to_string(),
            Method::PidFile => self.dir.join(format!("{what}.pid")).display().to_string(),
        }
    }

    fn role(&self, args: &[&str]) -> Role {
        let mut child = Command::new(&self.me)
            .arg("role")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn role");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Role { child, out }
    }
}

struct Role {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Role {
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read role");
        line.trim_end().to_string()
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        let _ = writeln!(stdin, "{line}");
        let _ = stdin.flush();
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the holder goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Sigkill,
    Exit,
}

/// Hand-over latency in µs: from the holder's end (the kill, or the
/// request to exit) to the moment the waiting process holds the lock. The
/// holder takes the lock with `method`, the waiter with `waiting` (the same
/// method, or abslock with another serving setting).
pub fn handover(
    env: &Env,
    (method, waiting): (Method, Method),
    ending: Ending,
    rounds: usize,
) -> Vec<f64> {
    let target = env.target(
        method,
        &format!("handover-{}-{}", method.arg(), waiting.arg()),
    );
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut holder = env.role(&["hold", method.arg(), &target]);
        assert_eq!(holder.line(), "ready");
        let mut waiter = env.role(&["wait", waiting.arg(), &target]);
        assert_eq!(waiter.line(), "waiting");
        // Let the waiter get into its wait (poll, flock, or a sleep).
        std::thread::sleep(Duration::from_millis(10));
        let start = mono_ns();
        match ending {
            Ending::Sigkill => {
                let _ = holder.child.kill();
            }
            Ending::Exit => holder.send("exit"),
        }
        // Reaped at once, so a PID-file waiter's kill(pid, 0) sees it gone.
        let _ = holder.child.wait();
        let got: u64 = waiter.line().parse().expect("waiter's time");
        samples.push(got.saturating_sub(start) as f64 / 1000.0);
        let _ = waiter.child.wait();
        if method == Method::PidFile {
            let _ = std::fs::remove_file(&target);
        }
    }
    samples
}

/// Contention: `waiters` processes take and release one lock in a loop for
/// `duration`. Returns hand-overs per second and every wait in µs.
pub fn contention(
    env: &Env,
    method: Method,
    waiters: usize,
    duration: Duration,
) -> (f64, Vec<f64>) {
    let target = env.target(method, &format!("contend-{}-{waiters}", method.arg()));
    let mut roles: Vec<Role> = (0..waiters)
        .map(|_| env.role(&["contend", method.arg(), &target]))
        .collect();
    for r in &mut roles {
        assert_eq!(r.line(), "ready");
    }
    let deadline = mono_ns() + duration.as_nanos() as u64;
    for r in &mut roles {
        r.send(&format!("go {deadline}"));
    }
    let mut waits = Vec::new();
    for r in &mut roles {
        let line = r.line();
        let list = line.strip_prefix("waits").unwrap_or("");
        waits.extend(
            list.split_whitespace()
                .filter_map(|w| w.parse::<u64>().ok())
                .map(|ns| ns as f64 / 1000.0),
        );
    }
    let rate = waits.len() as f64 / duration.as_secs_f64();
    if method == Method::PidFile {
        let _ = std::fs::remove_file(&target);
    }
    (rate, waits)
}

fn time_command(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    let elapsed = start.elapsed().as_secs_f64() * 1e6;
    assert!(status.code().is_some(), "{cmd:?} was killed");
    elapsed
}

/// Paired runs of `BIN run -n NAME true` (BIN an abslock binary) and
/// `flock -n FILE true`, in alternating order: (abslock µs, flock µs) per
/// pair.
pub fn whole_command(env: &Env, bin: &Path, pairs: usize) -> Vec<(f64, f64)> {
    let name = env.target(Method::Abslock, "command");
    let file = env.target(Method::Flock, "command");
    let abslock = || time_command(Command::new(bin).args(["run", "-n", &name, "true"]));
    let flock = || time_command(Command::new("flock").args(["-n", &file, "true"]));
    (0..pairs)
        .map(|i| {
            if i % 2 == 0 {
                let a = abslock();
                (a, flock())
            } else {
                let f = flock();
                (abslock(), f)
            }
        })
        .collect()
}

/// Start-up alone: `BIN --version` and `flock --version`, in µs, for
/// `runs` paired runs. The floor under `whole_command`.
pub fn startup(bin: &Path, runs: usize) -> (Vec<f64>, Vec<f64>) {
    (0..runs)
        .map(|_| {
            (
                time_command(Command::new(bin).arg("--version")),
                time_command(Command::new("flock").arg("--version")),
            )
        })
        .unzip()
}

/// Peak RSS in KiB of the process `program args` (which must live at
/// least 200 ms): its VmHWM from /proc/PID/status, sampled while it runs,
/// and the largest RssAnon seen (its private memory; the rest of RSS is
/// its program and libraries, mapped from the page cache and shared with
/// every process that runs them). Not wait4's ru_maxrss: that also counts
/// the pages the child had as a fork of this (larger) process before its
/// exec.
pub fn peak_rss(program: &Path, args: &[&str]) -> Rss {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let status = format!("/proc/{}/status", child.id());
    let (mut peak, mut anon) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(50));
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        peak = peak.max(field("VmHWM:"));
        anon = anon.max(field("RssAnon:"));
    }
    let _ = child.wait();
    (peak, anon)
}

/// One process's (peak RSS, private RSS) in KiB.
pub type Rss = (f64, f64);

/// [`Rss`] samples of `BIN run NAME -- sleep 0.3` and of
/// `flock FILE sleep 0.3` (each supervising a command).
pub fn memory(env: &Env, bin: &Path, runs: usize) -> (Vec<Rss>, Vec<Rss>) {
    let name = env.target(Method::Abslock, "memory");
    let file = env.target(Method::Flock, "memory");
    let a = (0..runs)
        .map(|_| peak_rss(bin, &["run", &name, "--", "sleep", "0.3"]))
        .collect();
    let f = (0..runs)
        .map(|_| peak_rss(Path::new("flock"), &[&file, "sleep", "0.3"]))
        .collect();
    (a, f)
}

/// Time in µs of `abslock ARGS`, `runs` times.
pub fn query(env: &Env, args: &[&str], runs: usize) -> Vec<f64> {
    (0..runs)
        .map(|_| time_command(Command::new(&env.abslock).args(args)))
        .collect()
}

/// Query costs: status of a listening holder (with its info answer), of a
/// raw name that is bound but not listening (found through /proc), and
/// `list` with `counts` extra listening sockets bound on the system.
pub struct Queries {
    pub status_socket: Vec<f64>,
    pub status_procfs: Vec<f64>,
    pub list: Vec<(usize, Vec<f64>)>,
}

pub fn queries(env: &Env, runs: usize, counts: &[usize]) -> Queries {
    let name = env.target(Method::Abslock, "query");
    let mut holder = Command::new(&env.abslock)
        .args(["run", &name, "--", "sleep", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("holder");
    while !Command::new(&env.abslock)
        .args(["status", &name])
        .stdout(Stdio::null())
        .status()
        .expect("status")
        .success()
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let status_socket = query(env, &["status", &name], runs);
    let _ = holder.kill();
    let _ = holder.wait();

    // A raw name bound without listen(): only /proc can say who holds it.
    let raw = format!("{}/raw-unlistened", env.tag);
    let fd = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    let addr = rustix::net::SocketAddrUnix::new_abstract_name(raw.as_bytes()).expect("address");
    rustix::net::bind(&fd, &addr).expect("bind");
    let status_procfs = query(env, &["status", &format!("@{raw}")], runs);
    drop(fd);

    let mut list = Vec::new();
    for &count in counts {
        let mut many = (count > 0).then(|| {
            let mut r = env.role(&[
                "bind-many",
                "abslock",
                &format!("{}/many", env.tag),
                &count.to_string(),
            ]);
            assert_eq!(r.line(), "ready");
            r
        });
        list.push((count, query(env, &["list"], runs)));
        if let Some(r) = many.as_mut() {
            r.send("done");
        }
    }
    Queries {
        status_socket,
        status_procfs,
        list,
    }
}

/// How a user locks on the command line, for [`cli_handover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliMode {
    /// `flock -F FILE` holder, `flock -w 10 FILE` waiter.
    Flock,
    /// `abslock run NAME`: a per-user name (socket and runtime file).
    Name,
    /// `abslock run @NAME`: a raw socket name alone.
    Raw,
    /// `abslock run file:PATH`.
    File,
    /// `abslock run --file PATH NAME`: combined.
    Combined,
}

impl CliMode {
    pub const ALL: [CliMode; 5] = [
        CliMode::Flock,
        CliMode::Name,
        CliMode::Raw,
        CliMode::File,
        CliMode::Combined,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CliMode::Flock => "flock(1) on a lock file",
            CliMode::Name => "abslock, default per-user NAME",
            CliMode::Raw => "abslock, `@raw` name",
            CliMode::File => "abslock, `file:PATH`",
            CliMode::Combined => "abslock, `--file PATH NAME`",
        }
    }

    /// The program and its arguments up to the command, holder or waiter.
    pub fn argv(self, env: &Env, what: &str, waiter: bool) -> Vec<String> {
        let file = env.dir.join(format!("{what}.lock")).display().to_string();
        let name = format!("{}/{what}", env.tag);
        let abslock = env.abslock.display().to_string();
        let wait: &[&str] = if waiter { &["-w", "10"] } else { &[] };
        let mut argv = match self {
            CliMode::Flock => {
                let mut v = vec!["flock".to_string()];
                v.push(if waiter { "-w" } else { "-F" }.into());
                if waiter {
                    v.push("10".into());
                }
                v.push(file);
                return v;
            }
            _ => vec![abslock, "run".to_string()],
        };
        argv.extend(wait.iter().map(|s| s.to_string()));
        match self {
            CliMode::Name => argv.push(name),
            CliMode::Raw => argv.push(format!("@{name}")),
            CliMode::File => argv.push(format!("file:{file}")),
            CliMode::Combined => argv.extend(["--file".into(), file, name]),
            CliMode::Flock => {}
        }
        argv.push("--".into());
        argv
    }
}

/// CLOCK_REALTIME in nanoseconds, the clock of `date +%s%N`.
fn real_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Hand-over as a user runs it, in µs: a holder `MODE -- sleep 30` is
/// SIGKILLed (or its command `sh` exits), and a waiter already waiting
/// with a 10 s timeout runs `sh -c 'date +%s%N'`, which stamps the time;
/// both include the start of `sh`, for flock(1) as for abslock.
pub fn cli_handover(env: &Env, mode: CliMode, ending: Ending, rounds: usize) -> Vec<f64> {
    let what = format!(
        "cli-{}-{}",
        CliMode::ALL.iter().position(|m| *m == mode).unwrap_or(0),
        if ending == Ending::Sigkill {
            "kill"
        } else {
            "exit"
        }
    );
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let argv = mode.argv(env, &what, false);
        let script = match ending {
            Ending::Sigkill => "echo ready; exec sleep 30",
            Ending::Exit => "echo ready; read x",
        };
        let mut holder = start_holder(&argv, script);
        let argv = mode.argv(env, &what, true);
        let waiter = Command::new(&argv[0])
            .args(&argv[1..])
            .args(["sh", "-c", "date +%s%N"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the waiter");
        // Let the waiter start and get into its wait.
        std::thread::sleep(Duration::from_millis(300));
        let start = real_ns();
        match ending {
            Ending::Sigkill => {
                let _ = holder.kill();
            }
            Ending::Exit => {
                let _ = writeln!(holder.stdin.as_mut().expect("stdin"));
            }
        }
        let _ = holder.wait();
        let got = waiter.wait_with_output().expect("waiter");
        let stamp: u64 = String::from_utf8_lossy(&got.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{mode:?} waiter said {got:?}"));
        samples.push(stamp.saturating_sub(start) as f64 / 1000.0);
    }
    samples
}

/// Starts `argv` holding the lock with `sh -c script` as its command (a
/// script that prints `ready` once it runs), stdin piped, and returns once
/// it has.
fn start_holder(argv: &[String], script: &str) -> std::process::Child {
    let mut holder = Command::new(&argv[0])
        .args(&argv[1..])
        .args(["sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the holder");
    let mut out = BufReader::new(holder.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("holder ready");
    assert_eq!(line.trim(), "ready", "{argv:?}");
    holder
}

/// The order in which `waiters` processes, started `apart` from each
/// other while a holder holds the lock, get it once the holder exits:
/// each appends its index to a file and holds for 20 ms. Returns the
/// indices in the order they ran (`0..waiters` is arrival order).
pub fn waiting_order(env: &Env, mode: CliMode, waiters: usize, apart: Duration) -> Vec<usize> {
    let what = format!(
        "order-{}",
        CliMode::ALL.iter().position(|m| *m == mode).unwrap_or(0)
    );
    let log = env.dir.join(format!("{what}.log"));
    let _ = std::fs::remove_file(&log);
    let argv = mode.argv(env, &what, false);
    let mut holder = start_holder(&argv, "echo ready; read x");
    let mut queued = Vec::new();
    for i in 0..waiters {
        let mut argv = mode.argv(env, &what, true);
        // A wait long enough for all of them.
        if let Some(pos) = argv.iter().position(|a| a == "10") {
            argv[pos] = "60".into();
        }
        let script = format!("echo {i} >> '{}'; sleep 0.02", log.display());
        queued.push(
            Command::new(&argv[0])
                .args(&argv[1..])
                .args(["sh", "-c", &script])
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn a waiter"),
        );
        std::thread::sleep(apart);
    }
    let _ = writeln!(holder.stdin.as_mut().expect("stdin"));
    let _ = holder.wait();
    for mut w in queued {
        let _ = w.wait();
    }
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}
