//! The holes two hostile reviews found (issues 13 and 21), each re-run as the attack
//! it was: an unprivileged user (uid 65534) prepares a trap, root (or
//! another unprivileged user) runs abslock into it. Each test fails
//! without its fix. They need root to act as two users; elsewhere they say
//! so and pass.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const ATTACKER: u32 = 65534;
/// A second unprivileged user, the victim where root would see too much.
const VICTIM: u32 = 65533;

fn skip_unless_root() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root to act as two users");
    }
    !is_root()
}

/// Binds the abstract `address` as uid `uid` from python3: `mode` is
/// `listen`, `bind` (never listens) or `full` (listens with its backlog
/// filled). Returns once bound.
fn squatter(uid: u32, address: &[u8], mode: &str) -> Child {
    const SCRIPT: &str = r#"
import socket, sys, time
addr = b'\0' + bytes.fromhex(sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(addr)
keep = []
if sys.argv[2] == 'listen':
    s.listen()
elif sys.argv[2] == 'full':
    s.listen(0)
    for i in range(16):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(addr)
            keep.append(c)
        except BlockingIOError:
            break
print('ready', flush=True)
time.sleep(120)
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT, &hex(address), mode])
        .uid(uid)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut child), "ready");
    child
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn system_address(name: &str) -> Vec<u8> {
    format!("abslock/system/{name}").into_bytes()
}

fn user_address(uid: u32, name: &str) -> Vec<u8> {
    format!("abslock/user/{uid}/{name}").into_bytes()
}

/// Runs `abslock ARGS` as `uid` (None: as we are), killing it after
/// `limit`; returns its output.
fn abslock_as(uid: Option<u32>, args: &[&str], limit: Duration) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "abslock {args:?} still ran after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh directory owned by `uid` with `mode`.
fn dir_of(tag: &str, uid: u32, mode: u32) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("abslock-attack-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).unwrap();
    dir
}

fn still_running(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

// ------------------------------------------------------------ 1, 2: paths

#[test]
fn combined_mode_refuses_lock_files_other_users_can_take() {
    if skip_unless_root() {
        return;
    }
    let lock = name("exposed");
    // Debian's /run/lock is 1777: anyone creates the file first.
    let open = dir_of("sticky", 0, 0o1777);
    let file = open.join("job.lock");
    let out = abslock_as(
        None,
        &["run", "--file", file.to_str().unwrap(), &lock, "--", "true"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(text(&out).contains("other users"), "{}", text(&out));
    assert!(!file.exists(), "nothing is created on refusal");

    // A root-owned 0755 directory, but the file was planted by the
    // attacker.
    let safe = dir_of("planted", 0, 0o755);
    let planted = safe.join("job.lock");
    std::fs::write(&planted, "").unwrap();
    std::os::unix::fs::chown(&planted, Some(ATTACKER), Some(ATTACKER)).unwrap();
    let out = abslock_as(
        None,
        &[
            "run",
            "--file",
            planted.to_str().unwrap(),
            &lock,
            "--",
            "true",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(text(&out).contains("uid 65534"), "{}", text(&out));

    // The recommended place works.
    let good = safe.join("good.lock");
    let out = abslock_as(
        None,
        &["run", "--file", good.to_str().unwrap(), &lock, "--", "true"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // file: alone is the user's choice: a warning, and an attacker who
    // locked it first is a squatter (exit 3), not "already running".
    let squatted = open.join("squatted.lock");
    let mut flock = Command::new("flock")
        .args([squatted.to_str().unwrap(), "sleep", "60"])
        .uid(ATTACKER)
        .gid(ATTACKER)
        .spawn()
        .unwrap();
    eventually("the attacker's flock", || {
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .contains(&format!(" {} ", flock.id()))
    });
    let target = format!("file:{}", squatted.display());
    let out = abslock_as(
        None,
        &["run", "-n", &target, "--", "true"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("warning"), "{}", text(&out));
    flock.kill().unwrap();
    flock.wait().unwrap();
    std::fs::remove_dir_all(&open).unwrap();
    std::fs::remove_dir_all(&safe).unwrap();
}

#[test]
fn an_untrusted_symlink_in_a_path_is_never_followed() {
    if skip_unless_root() {
        return;
    }
    let lock = name("symlink");
    // The victim: a root-only directory with a root file.
    let victim = dir_of("victim", 0, 0o700);
    let secret = victim.join("victim.pid");
    std::fs::write(&secret, "precious\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The trap: the attacker's directory with a symlink to it.
    let trap = dir_of("trap", ATTACKER, 0o755);
    let link = trap.join("rundir");
    symlink(&victim, &link).unwrap();
    lchown(&link, Some(ATTACKER), Some(ATTACKER)).unwrap();

    let through = |leaf: &str| link.join(leaf).to_str().unwrap().to_string();
    for args in [
        vec![
            "run",
            "--pidfile",
            &through("victim.pid"),
            &lock,
            "--",
            "true",
        ],
        vec!["run", &format!("file:{}", through("x.lock")), "--", "true"],
        vec!["run", "--file", &through("x.lock"), &lock, "--", "true"],
    ] {
        let out = abslock_as(None, &args, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(77), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    }
    let out = abslock_as(
        None,
        &["status", "--pidfile", &through("victim.pid"), &lock],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(!text(&out).contains("precious"));
    // Nothing root-owned changed: same content, same mode, no new file.
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "precious\n");
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o600);
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);

    // A symlink root owns is followed as before.
    let root_dir = dir_of("rootlink", 0, 0o755);
    std::fs::create_dir(root_dir.join("real")).unwrap();
    symlink("real", root_dir.join("link")).unwrap();
    let pidfile = root_dir.join("link/app.pid");
    let out = abslock_as(
        None,
        &[
            "run",
            "--pidfile",
            pidfile.to_str().unwrap(),
            &lock,
            "--",
            "sh",
            "-c",
            // The PID file is written once the command has started.
            "while [ ! -s \"$0\" ]; do sleep 0.01; done; cat \"$0\"",
            root_dir.join("real/app.pid").to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<u32>()
        .is_ok());
    // So is a lock file that is a symlink root owns in a root-only
    // directory (issue 21, point 11), as flock(1) follows it; one the
    // attacker owns, in the same place, is refused.
    let private = dir_of("rootonly", 0, 0o700);
    std::fs::write(private.join("real.lock"), "").unwrap();
    std::fs::set_permissions(
        private.join("real.lock"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    symlink(private.join("real.lock"), private.join("link.lock")).unwrap();
    let link_arg = private.join("link.lock");
    let link_arg = link_arg.to_str().unwrap();
    for args in [
        vec!["run", "-n", "--file", link_arg, &lock, "--", "true"],
        vec!["run", "-n", &format!("file:{link_arg}"), "--", "true"],
    ] {
        let out = abslock_as(None, &args, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    }
    lchown(private.join("link.lock"), Some(ATTACKER), Some(ATTACKER)).unwrap();
    let out = abslock_as(
        None,
        &["run", "-n", "--file", link_arg, &lock, "--", "true"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    std::fs::remove_dir_all(private).unwrap();
    for d in [victim, trap, root_dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn status_pidfile_reads_no_fifo_no_device_and_quotes_no_secret() {
    let lock = name("pidfile-read");
    let dir = std::env::temp_dir().join(format!("abslock-attack-{}-read", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let fifo = dir.join("fifo.pid");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let secret = dir.join("secret");
    std::fs::write(&secret, "hunter2\n").unwrap();
    let link = dir.join("link.pid");
    symlink(&secret, &link).unwrap();
    for path in [fifo.as_path(), Path::new("/dev/zero"), link.as_path()] {
        let out = abslock_as(
            None,
            &["status", "--pidfile", path.to_str().unwrap(), &lock],
            Duration::from_secs(5),
        );
        assert_eq!(out.status.code(), Some(1), "{path:?}: {}", text(&out));
        assert!(text(&out).contains("malformed"), "{}", text(&out));
        assert!(!text(&out).contains("hunter2"), "{}", text(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------ 3: escapes

/// Nothing a terminal would interpret: no C0 but newline, no DEL, no C1.
fn assert_printable(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect();
    assert!(bad.is_empty(), "{what} printed {bad:?}: {text:?}");
}

#[test]
fn another_users_command_line_reaches_no_terminal_raw() {
    if skip_unless_root() {
        return;
    }
    let lock = name("escapes");
    let hostile = [
        "\x1b]0;pwned\x07",
        "\x1b[2J",
        "\r\nabslock: forged line",
        "\u{9b}31m",
    ];
    // The arguments stay in abslock run's command line and published
    // metadata while the command sleeps; `exec` makes sleep abslock's own
    // child, which dies with it (a grandchild would outlive the test,
    // keeping the lock).
    let mut cmd = Command::new(BIN);
    cmd.args([
        "run",
        "--system",
        "--trust-any",
        &lock,
        "--",
        "sh",
        "-c",
        "exec sleep 60",
    ])
    .args(hostile)
    .uid(ATTACKER)
    .gid(ATTACKER)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let holder = cmd.spawn().unwrap();
    eventually("the attacker to hold the lock", || {
        Command::new(BIN)
            .args(["status", "--system", "--trust-any", &lock])
            .output()
            .unwrap()
            .status
            .code()
            == Some(0)
    });
    let status = abslock_as(
        None,
        &["status", "--system", "--trust-any", &lock],
        Duration::from_secs(10),
    );
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert_printable("status", &status.stdout);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("\\x1b]0;pwned\\x07"), "{shown}");
    assert!(shown.contains("meta:"), "the holder's info block: {shown}");
    let list = abslock_as(None, &["list"], Duration::from_secs(10));
    assert_printable("list", &list.stdout);
    assert!(String::from_utf8_lossy(&list.stdout).contains("\\x1b[2J"));
    let run = abslock_as(
        None,
        &[
            "run",
            "-n",
            "-v",
            "--system",
            "--trust-any",
            &lock,
            "--",
            "true",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert_printable("run -v", &run.stderr);
    assert!(!String::from_utf8_lossy(&run.stderr).contains("\nabslock: forged"));
    // JSON keeps the exact bytes.
    let json = status_json_args(&["--system", "--trust-any", &lock]);
    let processes = json["processes"].as_array().unwrap();
    assert!(
        processes.iter().any(|p| p["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "\x1b[2J")),
        "{json}"
    );
    stop(holder);
}

fn status_json_args(args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("status")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn names_with_c1_controls_are_refused() {
    let out = abslock_as(None, &["status", "bad\u{9b}2Jname"], Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert_printable("the error", &out.stderr);
}

// ------------------------------------------------------------ 4: squatters

#[test]
fn a_squatter_is_exit_3_whatever_it_does() {
    if skip_unless_root() {
        return;
    }
    for mode in ["bind", "full", "listen"] {
        let lock = name(&format!("squat-{mode}"));
        let squat = squatter(ATTACKER, &system_address(&lock), mode);
        // An unprivileged victim cannot read the squatter's /proc/PID/fd.
        for args in [
            vec!["run", "-n", "--system", &lock, "--", "true"],
            vec!["run", "--system", &lock, "--", "true"],
            vec!["run", "-w", "1", "--system", &lock, "--", "true"],
            vec!["status", "--system", &lock],
            vec!["wait", "--system", &lock],
        ] {
            let out = abslock_as(Some(VICTIM), &args, Duration::from_secs(5));
            assert_eq!(
                out.status.code(),
                Some(3),
                "{mode} {args:?}: {}",
                text(&out)
            );
            if args[0] != "status" {
                assert!(text(&out).contains("uid 65534"), "{mode}: {}", text(&out));
            }
        }
        // Root's `kill` reports the squatter, exit 3, and signals nothing.
        let mut squat = squat;
        let out = abslock_as(None, &["kill", "--system", &lock], Duration::from_secs(5));
        assert_eq!(out.status.code(), Some(3), "{mode} kill: {}", text(&out));
        assert!(text(&out).contains("--trust-uid 65534"), "{}", text(&out));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            still_running(&mut squat),
            "{mode}: kill signalled the squatter"
        );
        // Trusting its uid is the way to stop it on purpose.
        let out = abslock_as(
            None,
            &["kill", "--system", "--trust-uid", "65534", &lock],
            Duration::from_secs(5),
        );
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", text(&out));
        stop(squat);
    }
}

// ------------------------------------------------------------ 5: descriptors

#[test]
fn the_holder_answers_at_the_descriptor_limit_under_a_flood() {
    if skip_unless_root() {
        return;
    }
    let lock = name("fd-flood");
    let holder = Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -n 1024 && exec {BIN} run {lock} -- sleep 60"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the holder", || held(&lock));
    // Another uid keeps 1200 idle connections open, more than the holder
    // has descriptors for, and churns 100 more that start a frame and
    // stall.
    const FLOOD: &str = r#"
import socket, sys, time, resource, collections
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
addr = b'\0' + bytes.fromhex(sys.argv[1])
def conn(partial):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect(addr)
        if partial:
            c.send(b'\0\0')
    except OSError:
        pass
    return c
idle = [conn(False) for i in range(1200)]
stalled = collections.deque(conn(True) for i in range(100))
print('ready', flush=True)
end = time.time() + 60
while time.time() < end:
    for i in range(20):
        stalled.append(conn(True))
        stalled.popleft().close()
    time.sleep(0.05)
"#;
    let mut flood = Command::new("python3")
        .args(["-c", FLOOD, &hex(&user_address(0, &lock))])
        .uid(ATTACKER)
        .gid(ATTACKER)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(flood.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let status = status_json(&lock);
        assert!(
            status["info"].is_object(),
            "the holder did not answer info under the flood: {status}"
        );
    }
    // A stop request gets through too: --replace asks, the holder stops.
    let out = abslock_as(
        None,
        &["run", "--replace", "-w", "5", "-v", &lock, "--", "true"],
        Duration::from_secs(15),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("asked"), "{}", text(&out));
    stop(flood);
    // The reject log is rate-limited: no line per hostile client.
    let mut holder = holder;
    let _ = holder.wait();
    let mut err = String::new();
    holder
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let lines = err
        .lines()
        .filter(|l| l.contains("rejected a client"))
        .count();
    assert!(lines <= 20, "{lines} reject lines:\n{err}");
}

// ------------------------------------------------------------ 6: look-alikes

#[test]
fn a_look_alike_name_is_never_mistaken_for_the_lock() {
    if skip_unless_root() {
        return;
    }
    // /proc/net/unix shows `db\0prod` as `db@prod`.
    let lock = name("db@prod");
    let mut lookalike = user_address(0, &lock);
    let at = lookalike.iter().rposition(|&b| b == b'@').unwrap();
    lookalike[at] = 0;
    let mut squat = squatter(ATTACKER, &lookalike, "bind");
    let out = abslock_as(None, &["status", &lock], Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1), "free: {}", text(&out));
    let out = abslock_as(None, &["wait", "-w", "2", &lock], Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = abslock_as(None, &["kill", &lock], Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1), "not held: {}", text(&out));
    let out = abslock_as(
        None,
        &["run", "--replace", "-w", "1", &lock, "--", "true"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(still_running(&mut squat), "the look-alike was signalled");
    stop(squat);
}

// ------------------------------------------------------------ 7: the rest

#[test]
fn combined_replace_works_when_only_the_socket_is_squatted() {
    if skip_unless_root() {
        return;
    }
    let lock = name("combined-replace");
    let dir = dir_of("combined", 0, 0o755);
    let file = dir.join("job.lock");
    let mut squat = squatter(ATTACKER, &system_address(&lock), "listen");
    let mut first = Command::new(BIN)
        .args([
            "run",
            "--system",
            "--file",
            file.to_str().unwrap(),
            &lock,
            "--",
            "sleep",
            "60",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the first holder", || {
        Command::new(BIN)
            .args(["status", &format!("file:{}", file.display())])
            .output()
            .unwrap()
            .status
            .code()
            == Some(0)
    });
    let out = abslock_as(
        None,
        &[
            "run",
            "--replace",
            "-w",
            "5",
            "--system",
            "--file",
            file.to_str().unwrap(),
            &lock,
            "--",
            "true",
        ],
        Duration::from_secs(15),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        first.try_wait().unwrap().is_some(),
        "the old holder stopped"
    );
    assert!(still_running(&mut squat), "the squatter was not signalled");
    stop(squat);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn absurd_values_are_usage_errors_not_panics() {
    let lock = name("absurd");
    let mut holder = background(&["run", &lock, "--", "sleep", "60"]);
    eventually("the holder", || held(&lock));
    let big = "x".repeat(70_000);
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    let dir_backend = format!("file:{dir}");
    for args in [
        vec!["run", "-w", "5m5m", &lock, "--", "true"],
        vec!["run", "--backend", "etcd://[::1", &lock, "--", "true"],
        vec!["run", "--backend", &dir_backend, "", "--", "true"],
        vec!["status", "--backend", &dir_backend, "."],
        vec!["kill", "-w", "1e19", &lock],
        vec!["send", "-w", "1e19", &lock, "--", "x"],
        vec!["send", &lock, "--", &big],
        vec!["run", "--backend", "etcd://host:99999", &lock, "--", "true"],
    ] {
        let out = abslock_as(None, &args, Duration::from_secs(10));
        assert_eq!(
            out.status.code(),
            Some(64),
            "{:?}: {}",
            &args[..2],
            text(&out)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    }
    // The longest timeout accepted does not overflow the clock.
    let out = abslock_as(None, &["kill", "-w", "1e9", &lock], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let _ = holder.wait();
}

#[test]
fn path_errors_name_the_whole_path_and_have_one_rule() {
    let lock = name("paths");
    let missing = format!("/nonexistent-{}/dir/app", std::process::id());
    // A PID file that cannot be written: before the command runs, exit 73.
    let ran = std::env::temp_dir().join(format!("abslock-paths-ran-{}", std::process::id()));
    let pid = format!("{missing}.pid");
    let out = abslock_as(
        None,
        &[
            "run",
            "--pidfile",
            &pid,
            &lock,
            "--",
            "touch",
            ran.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("cannot write PID file {pid}: /nonexistent-")),
        "{}",
        text(&out)
    );
    assert!(!ran.exists(), "the command ran");
    // A lock file that cannot be opened: flock(1)'s words and exit 66.
    let file = format!("{missing}.lock");
    for args in [
        vec![
            "run".to_string(),
            format!("file:{file}"),
            "--".into(),
            "true".into(),
        ],
        vec![
            "run".to_string(),
            "--file".into(),
            file.clone(),
            lock.clone(),
            "--".into(),
            "true".into(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = abslock_as(None, &args, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(66), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("cannot open lock file {file}")),
            "{}",
            text(&out)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    }
    if is_root() {
        // An unwritable PID-file directory: the same rule, not a warning.
        let dir = dir_of("pid-unwritable", 0, 0o755);
        let pid = dir.join("app.pid");
        let out = abslock_as(
            Some(VICTIM),
            &[
                "run",
                "--pidfile",
                pid.to_str().unwrap(),
                &lock,
                "--",
                "touch",
                ran.to_str().unwrap(),
            ],
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(73), "{}", text(&out));
        assert!(
            text(&out).contains("cannot write PID file"),
            "{}",
            text(&out)
        );
        assert!(!ran.exists(), "the command ran");
        // A FIFO another user planted at a file: path: exit 77.
        let open = dir_of("fifo-planted", 0, 0o1777);
        let fifo = open.join("job.lock");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o666),
        )
        .unwrap();
        std::os::unix::fs::chown(&fifo, Some(ATTACKER), Some(ATTACKER)).unwrap();
        let out = abslock_as(
            None,
            &[
                "run",
                "-n",
                &format!("file:{}", fifo.display()),
                "--",
                "true",
            ],
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(77), "{}", text(&out));
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&open).unwrap();
    }
}

// ------------------------------------------- the second review (issue 21)

#[test]
fn a_pid_file_path_holding_a_device_fifo_or_someones_file_is_left_alone() {
    if skip_unless_root() {
        return;
    }
    let lock = name("pidfile-keep");
    let dir = dir_of("pidkeep", 0, 0o755);
    let device = dir.join("null");
    // The same device as /dev/null, in a directory of ours.
    let made = rustix::fs::mknodat(
        rustix::fs::CWD,
        &device,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    );
    assert!(made.is_ok(), "mknod as root: {made:?}");
    let fifo = dir.join("fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    let notes = dir.join("notes");
    std::fs::write(&notes, "not a pid\n").unwrap();
    let ran = dir.join("ran");
    for path in [&device, &fifo, &notes] {
        let out = abslock_as(
            None,
            &[
                "run",
                "--pidfile",
                path.to_str().unwrap(),
                &lock,
                "--",
                "touch",
                ran.to_str().unwrap(),
            ],
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(77), "{path:?}: {}", text(&out));
        assert!(text(&out).contains("will not replace"), "{}", text(&out));
        assert!(!ran.exists(), "the command ran for {path:?}");
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&device)
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not a pid\n");
    // A stale PID file is replaced, and removed at the end.
    let stale = dir.join("stale.pid");
    std::fs::write(&stale, "999999\n").unwrap();
    let out = abslock_as(
        None,
        &[
            "run",
            "--pidfile",
            stale.to_str().unwrap(),
            &lock,
            "--",
            "true",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!stale.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Locks `path` with flock(2) as `uid`; returns once locked (or prints
/// the error and exits).
fn flock_as(uid: u32, path: &Path) -> Child {
    const SCRIPT: &str = r#"
import fcntl, os, sys, time
try:
    fd = os.open(sys.argv[1], os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print('locked', flush=True)
except OSError as e:
    print('failed', e, flush=True)
    sys.exit(1)
time.sleep(120)
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT, path.to_str().unwrap()])
        .uid(uid)
        .gid(uid)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut child), "locked", "flock as uid {uid}");
    child
}

#[test]
fn a_lock_file_others_can_read_is_refused_before_a_squatter_locks_it() {
    if skip_unless_root() {
        return;
    }
    let lock = name("readable");
    // The setup SECURITY.md calls safe: a root-owned 0755 directory; the
    // file as `touch` or flock(1) leave it, 0644.
    let dir = dir_of("readable", 0, 0o755);
    let file = dir.join("job.lock");
    std::fs::write(&file, "").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file_arg = file.to_str().unwrap();
    // The attack works: the other user can lock it first.
    let squatter = flock_as(ATTACKER, &file);
    let out = abslock_as(
        None,
        &["run", "-n", "--file", file_arg, &lock, "--", "true"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));
    stop(squatter);
    // file: alone warns, as documented, and still takes it when free.
    let out = abslock_as(
        None,
        &["run", "-n", &format!("file:{file_arg}"), "--", "true"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("warning") && text(&out).contains("chmod 600"),
        "{}",
        text(&out)
    );
    // chmod 600 is the fix: accepted, and the other user cannot open it.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = abslock_as(
        None,
        &["run", "-n", "--file", file_arg, &lock, "--", "true"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A directory others can open (0755) as the lock path: refused too.
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = abslock_as(
        None,
        &[
            "run",
            "-n",
            "--file",
            sub.to_str().unwrap(),
            &lock,
            "--",
            "true",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(
        text(&out).contains("a directory other users can open"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// CPU time (user + system) of `pid` in clock ticks, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_flood_of_the_notify_relay_costs_little_and_delays_ready_little() {
    if skip_unless_root() {
        return;
    }
    let dir = dir_of("flood", 0, 0o755);
    let notify = dir.join("notify");
    // systemd's side: records when READY=1 arrives.
    const SYSTEMD: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('ready', flush=True)
s.settimeout(30)
while True:
    data = s.recv(4096)
    if b'READY=1' in data.split(b'\n'):
        print(time.time_ns(), flush=True)
        break
"#;
    let mut systemd = Command::new("python3")
        .args(["-c", SYSTEMD, notify.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut systemd_out = BufReader::new(systemd.stdout.take().unwrap());
    let mut line = String::new();
    systemd_out.read_line(&mut line).unwrap();
    let sent_at = dir.join("sent");
    // The command says READY=1 after 2 s, into the flood.
    let command = format!(
        "sleep 2; exec python3 -c \"import os, socket, time; a = os.environ['NOTIFY_SOCKET']; \
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \
         open('{}', 'w').write(str(time.time_ns())); s.sendto(b'READY=1', '\\0' + a[1:]); \
         time.sleep(3)\"",
        sent_at.display()
    );
    let lock = name("flood");
    let abslock = Command::new(BIN)
        .args(["run", &lock, "-c", &command])
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = abslock.id();
    // The attacker finds the relay in /proc/net/unix and floods it.
    const FLOOD: &str = r#"
import socket, sys, time
want = '@abslock-notify/' + sys.argv[1] + '/'
addr = None
deadline = time.time() + 10
while addr is None and time.time() < deadline:
    for line in open('/proc/net/unix'):
        f = line.split()
        if len(f) > 7 and f[7].startswith(want):
            addr = '\0' + f[7][1:]
    time.sleep(0.01)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setblocking(False)
end = time.time() + 3.5
n = 0
while time.time() < end:
    try:
        s.sendto(b'MAINPID=1', addr)
        n += 1
    except BlockingIOError:
        time.sleep(0.0001)
    except ConnectionRefusedError:
        break
print(n, flush=True)
"#;
    let before = cpu_ticks(pid);
    let started = Instant::now();
    let flood = Command::new("python3")
        .args(["-c", FLOOD, &pid.to_string()])
        .uid(ATTACKER)
        .gid(ATTACKER)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let flooded = flood.wait_with_output().unwrap();
    let spent = cpu_ticks(pid) - before;
    let wall = started.elapsed();
    let sent: u64 = String::from_utf8_lossy(&flooded.stdout)
        .trim()
        .parse()
        .unwrap();
    let mut arrived = String::new();
    systemd_out.read_line(&mut arrived).unwrap();
    let _ = systemd.wait();
    let status = abslock.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(0));
    let sent_ns: u64 = std::fs::read_to_string(&sent_at)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let arrived_ns: u64 = arrived.trim().parse().unwrap();
    let delay = Duration::from_nanos(arrived_ns.saturating_sub(sent_ns));
    // Clock ticks are 10 ms: 15 % of a core over the flood.
    let ticks = wall.as_millis() as u64 / 10;
    eprintln!("flood: {sent} messages, abslock used {spent}/{ticks} ticks, READY=1 {delay:?} late");
    assert!(
        spent * 100 <= ticks * 15,
        "abslock used {spent} of {ticks} ticks under a flood of {sent} messages"
    );
    assert!(
        delay < Duration::from_millis(500),
        "READY=1 came {delay:?} late"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
