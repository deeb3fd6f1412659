//! The unit files of docs/systemd.md, run as systemd would run them: their
//! `ExecStart=` lines with `%t`, `%N` and the daemon substituted, systemd's
//! side (socket activation, a notify socket that checks the sender's pid)
//! emulated by a Python script, and the files checked by
//! `systemd-analyze verify`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/systemd");

/// Whether the unit files are here: they are in the workspace, not in the
/// packaged crate.
fn have_units() -> bool {
    let here = Path::new(UNITS).exists();
    if !here {
        eprintln!("skipped: docs/systemd is in the workspace only");
    }
    here
}

/// A runtime directory (`%t`) for one test.
fn runtime_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("abslock-sd-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

fn script(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// The unit's `ExecStart=` as argv, the way systemd would run it for a
/// unit named `unit` in runtime directory `t` (which `RuntimeDirectory=%N`
/// creates root-owned and 0755), with the placeholder daemon replaced.
fn exec_start(file: &str, t: &Path, unit: &str, daemon: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(Path::new(UNITS).join(file)).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("ExecStart="))?;
    let dir = t.join(unit);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
    Some(
        line.split_whitespace()
            .map(|word| {
                let word = word.replace("%t", t.to_str().unwrap()).replace("%N", unit);
                match word.as_str() {
                    "/usr/bin/abslock" => BIN.to_string(),
                    w if w.starts_with("/usr/local/bin/") => daemon.to_str().unwrap().to_string(),
                    _ => word,
                }
            })
            .collect(),
    )
}

/// systemd's side of `Type=notify` with socket activation: a listening
/// socket on descriptor 3 with `LISTEN_FDS`/`LISTEN_PID` naming the main
/// process, a notify socket that reads each sender's pid from
/// `SCM_CREDENTIALS` (as `NotifyAccess=main` does). It collects
/// notifications until `READY=1`, then connects to the activated socket and
/// prints what it saw as JSON.
const EMULATOR: &str = r#"
import json, os, socket, struct, sys
tmp, argv = sys.argv[1], sys.argv[2:]
notify_path = os.path.join(tmp, "notify")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
listen_path = os.path.join(tmp, "daemon.sock")
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(listen_path)
listener.listen(8)
main = os.fork()
if main == 0:
    if listener.fileno() != 3:
        os.dup2(listener.fileno(), 3)
    os.set_inheritable(3, True)
    log = os.open(os.path.join(tmp, "abslock.log"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1",
                      LISTEN_FDNAMES="mydaemon", NOTIFY_SOCKET=notify_path)
    os.execvp(argv[0], argv)
listener.close()
def fail(why):
    os.kill(main, 9)
    os.waitpid(main, 0)
    sys.exit(why + ": " + open(os.path.join(tmp, "abslock.log")).read())
notify.settimeout(30)
messages = []
while True:
    try:
        data, ancillary, _, _ = notify.recvmsg(4096, socket.CMSG_SPACE(12))
    except OSError as e:
        fail("no READY=1 (%s) after %r" % (e, messages))
    sender = None
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            sender = struct.unpack("iII", raw[:12])[0]
    messages.append({"pid": sender, "text": data.decode()})
    if "READY=1" in data.decode().split("\n"):
        break
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.settimeout(30)
try:
    client.connect(listen_path)
    reply = client.makefile().readline().strip()
except OSError as e:
    fail("the activated socket did not answer (%s)" % e)
client.close()
_, status = os.waitpid(main, 0)
print(json.dumps({"main": main, "messages": messages, "reply": reply,
                  "status": os.waitstatus_to_exitcode(status)}))
"#;

/// The daemon: checks socket activation, says `STATUS=` and `MAINPID=`
/// itself (also behind `\r` and a NUL), has a stranger (a double-forked process, no longer in its tree,
/// under another uid when the test runs as root) send a forged status, then says `READY=1` from a child process (as
/// `systemd-notify --ready` would) and serves one client on descriptor 3.
const DAEMON: &str = r#"#!/usr/bin/env python3
import os, socket
target = os.environ["NOTIFY_SOCKET"]
address = "\0" + target[1:] if target.startswith("@") else target
def notify(text):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(text.encode(), address)
    s.close()
notify("STATUS=starting\nMAINPID=1")
# systemd splits lines at \r too, and drops a message with a NUL.
notify("STATUS=x\rMAINPID=1234")
notify("STATUS=y\rFDSTOREREMOVE=1\rFDNAME=z")
notify("STATUS=n\0MAINPID=5")
r, w = os.pipe()
if os.fork() == 0:
    middle = os.getpid()
    if os.fork() == 0:
        while os.getppid() == middle:
            pass
        if os.getuid() == 0:
            os.setuid(65534)
            notify("STATUS=forged")
        os.write(w, b"x")
        os._exit(0)
    os._exit(0)
os.wait()
os.read(r, 1)
if os.fork() == 0:
    notify("READY=1")
    os._exit(0)
os.wait()
listener = socket.socket(fileno=3)
conn, _ = listener.accept()
conn.sendall(("pid=%d LISTEN_PID=%s LISTEN_FDS=%s NOTIFY_SOCKET=%s\n" % (
    os.getpid(), os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS"), target)).encode())
conn.close()
"#;

#[test]
fn a_notify_unit_with_socket_activation_works_supervised() {
    if !have_units() {
        return;
    }
    let t = runtime_dir("notify");
    let unit = name("sdnotify").replace('/', "-");
    let daemon = script(&t, "mydaemon", DAEMON);
    let emulator = script(&t, "systemd.py", EMULATOR);
    let argv = exec_start("abslock-notify.service", &t, &unit, &daemon).unwrap();
    assert_eq!(argv[0], BIN, "ExecStart runs abslock: {argv:?}");
    assert!(
        !argv.iter().any(|a| a == "--exec" || a == "-F"),
        "the unit uses the supervising mode"
    );
    let out = Command::new("python3")
        .arg(&emulator)
        .arg(&t)
        .args(&argv)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "emulator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let main = seen["main"].as_u64().unwrap();
    assert_eq!(seen["status"], 0, "abslock's exit status: {seen}");
    // Socket activation reached the daemon, with its own pid.
    let reply = seen["reply"].as_str().unwrap();
    let fields: Vec<&str> = reply.split(' ').collect();
    let pid = fields[0].strip_prefix("pid=").unwrap();
    assert_ne!(pid, main.to_string(), "the daemon is abslock's child");
    assert_eq!(fields[1], format!("LISTEN_PID={pid}"), "{reply}");
    assert_eq!(fields[2], "LISTEN_FDS=1", "{reply}");
    assert!(
        fields[3].starts_with("NOTIFY_SOCKET=@abslock-notify/"),
        "{reply}"
    );
    // Every notification came from the main process, abslock; MAINPID= and
    // the stranger's message were dropped.
    let messages = seen["messages"].as_array().unwrap();
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["STATUS=starting", "STATUS=x", "STATUS=y", "READY=1"],
        "{seen}"
    );
    for m in messages {
        assert_eq!(m["pid"].as_u64(), Some(main), "sender of {m}");
    }
    let _ = std::fs::remove_dir_all(&t);
}

#[test]
fn a_simple_unit_runs_the_daemon_once_and_stops_on_sigterm() {
    if !have_units() {
        return;
    }
    let t = runtime_dir("simple");
    let unit = name("sdsimple").replace('/', "-");
    let daemon = script(&t, "mydaemon", "#!/bin/sh\nexec sleep 60\n");
    let argv = exec_start("abslock-simple.service", &t, &unit, &daemon).unwrap();
    let mut main = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_held(&unit);
    // A copy started by hand, with the unit's lock file, is refused.
    let lock_file = format!("{}/{unit}/lock", t.display());
    abslock()
        .args(["run", "-n", "--file", &lock_file, &unit, "--", "true"])
        .assert()
        .code(1);
    // systemctl stop: SIGTERM to the main process reaches the daemon.
    signal(main.id(), libc::SIGTERM);
    let status = main.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    assert!(!held(&unit));
    let _ = std::fs::remove_dir_all(&t);
}

#[test]
fn the_timer_job_skips_a_run_while_one_is_going_without_failing() {
    if !have_units() {
        return;
    }
    let t = runtime_dir("oneshot");
    let unit = name("sdjob").replace('/', "-");
    let job = script(&t, "nightly-job", "#!/bin/sh\nexec sleep 60\n");
    let argv = exec_start("abslock-job.service", &t, &unit, &job).unwrap();
    let mut first = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_held(&unit);
    let second = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(0), "-E 0: a skip is no failure");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("held"), "the journal says why: {said}");
    signal(first.id(), libc::SIGTERM);
    first.wait().unwrap();
    let _ = std::fs::remove_dir_all(&t);
}

/// Every unit file loads in systemd without a warning (with the binaries
/// it names replaced by ones that exist here).
#[test]
fn unit_files_pass_systemd_analyze_verify() {
    if !have_units() {
        return;
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs systemd (scripts/setup.sh)"
        );
        eprintln!("skipped: no systemd-analyze");
        return;
    }
    let dir = runtime_dir("verify");
    let mut units = Vec::new();
    for entry in std::fs::read_dir(UNITS).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/bin/abslock", BIN)
            .replace("/usr/local/bin/mydaemon", "/bin/true")
            .replace("/usr/local/bin/nightly-job", "/bin/true");
        let copy = dir.join(path.file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        units.push(copy);
    }
    assert!(units.len() >= 5, "{units:?}");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A package upgrade replaces abslock's binary while a socket-activated
/// abslock waits for the lock: the command still starts, with
/// `LISTEN_PID` naming it.
#[test]
fn socket_activation_survives_a_binary_replaced_while_waiting() {
    let t = runtime_dir("upgrade");
    let bin = t.join("abslock");
    copy_executable(BIN, &bin);
    let lock = name("sdupgrade");
    let mut holder = background(&["run", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    // As systemd starts it: LISTEN_PID is abslock's own pid.
    let waiter = Command::new("sh")
        .args([
            "-c",
            r#"export LISTEN_PID=$$ LISTEN_FDS=0; exec "$0" run "$1" -- sh -c 'echo "$$ $LISTEN_PID"'"#,
            bin.to_str().unwrap(),
            &lock,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the waiter to run abslock", || {
        std::fs::read_link(format!("/proc/{}/exe", waiter.id())).is_ok_and(|exe| exe == bin)
    });
    // Queued on the lock.
    std::thread::sleep(std::time::Duration::from_millis(200));
    // The upgrade: a new file at the path, the old one unlinked.
    std::fs::remove_file(&bin).unwrap();
    let new = t.join("new");
    std::fs::write(&new, "#!/bin/sh\nexit 99\n").unwrap();
    std::fs::set_permissions(&new, PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&new, &bin).unwrap();
    sigkill(&holder);
    holder.wait().unwrap();
    let out = waiter.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&str> = said.split_whitespace().collect();
    assert_eq!(fields.len(), 2, "{said}");
    assert_eq!(fields[0], fields[1], "LISTEN_PID names the command: {said}");
    let _ = std::fs::remove_dir_all(&t);
}
