//! Everything a flock(1) user writes, and programs that already bind
//! "\0name" (issue 14): util-linux's flock scenarios against real flock(1),
//! the Python SOCK_DGRAM recipe, the C program from the original question
//! (a NUL-padded name), fcntl locks, read-only files and directories, the
//! fd form, the self-lock idiom, closed pipes.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use predicates::prelude::*;

fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("abslock-flock-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

fn sh(script: &str) -> std::process::Output {
    Command::new("bash")
        .args(["-c", script])
        .env("A", BIN)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `flock -o ARGS` in the background, once it holds the lock: with `-o`
/// only flock itself holds it, so killing flock releases it.
fn flock_holding(args: &[&str], file: &std::path::Path) -> Child {
    let child = Command::new("flock").arg("-o").args(args).spawn().unwrap();
    let pid = child.id();
    eventually("flock(1) to lock", || {
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .contains(&format!(" {pid} "))
    });
    assert!(file.exists());
    child
}

/// A line-printing child: waits for its first line.
fn ready(mut child: Child) -> Child {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("ready") || line.starts_with("locked"),
        "{line}"
    );
    child
}

// ------------------------------------------------ util-linux's scenarios

#[test]
fn shared_and_exclusive_against_real_flock() {
    let d = dir("shared");
    let file = d.join("lock");
    let path = file.to_str().unwrap();
    let mut reader = flock_holding(&["-s", path, "sleep", "30"], &file);
    // Another shared holder gets in; an exclusive one does not.
    abslock()
        .args(["run", "-n", "-s", path, "--", "true"])
        .assert()
        .code(0);
    abslock()
        .args(["run", "-n", "-x", path, "--", "true"])
        .assert()
        .code(1);
    abslock()
        .args(["run", "-n", "-e", path, "--", "true"])
        .assert()
        .code(1);
    let status = status_json(path);
    assert_eq!(status["holder"]["lock"]["shared"], true, "{status}");
    abslock()
        .args(["status", path])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("FLOCK READ (shared)"));
    reader.kill().unwrap();
    reader.wait().unwrap();
    // An exclusive flock(1) keeps a shared abslock out, too.
    let mut writer = flock_holding(&["-x", path, "sleep", "30"], &file);
    abslock()
        .args(["run", "-n", "--shared", path, "--", "true"])
        .assert()
        .code(1);
    writer.kill().unwrap();
    writer.wait().unwrap();
    // A shared abslock keeps flock -x out while it runs.
    let out = sh(&format!(
        "$A run -s {path} -- sh -c 'flock -n -x {path} true; echo x=$?; flock -n -s {path} true; echo s=$?'"
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "x=1\ns=0\n",
        "{}",
        text(&out)
    );
}

#[test]
fn nonblock_conflict_exit_code_no_fork_and_command_strings() {
    let d = dir("opts");
    let file = d.join("lock");
    let path = file.to_str().unwrap();
    let mut holder = flock_holding(&[path, "sleep", "30"], &file);
    abslock()
        .args([
            "run",
            "--nonblock",
            "--conflict-exit-code",
            "42",
            path,
            "--",
            "true",
        ])
        .assert()
        .code(42);
    abslock()
        .args(["run", "--nb", "-E", "7", path, "-c", "true"])
        .assert()
        .code(7);
    holder.kill().unwrap();
    holder.wait().unwrap();
    // -c runs a command string through sh, as flock -c does.
    abslock()
        .args(["run", path, "-c", "echo \"$((6 * 7))\"; exit 3"])
        .assert()
        .code(3)
        .stdout("42\n");
    // -F/--no-fork: the command itself holds the lock (its pid in
    // /proc/locks), as flock -F.
    let out = sh(&format!(
        "$A run --no-fork {path} -- sh -c 'grep -c \" $$ \" /proc/locks'"
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "{}",
        text(&out)
    );
    abslock()
        .args(["run", "-F", path, "--", "true"])
        .assert()
        .code(0);
}

#[test]
fn timeout_waits_for_a_shared_holder_to_leave() {
    let d = dir("timeout");
    let file = d.join("lock");
    let path = file.to_str().unwrap();
    let mut holder = flock_holding(&["-s", path, "sleep", "1"], &file);
    let start = Instant::now();
    abslock()
        .args(["run", "-w", "0.2", "-x", path, "--", "true"])
        .assert()
        .code(1);
    abslock()
        .args(["run", "--timeout", "10s", "-x", path, "--", "true"])
        .assert()
        .code(0);
    assert!(start.elapsed() >= Duration::from_millis(800));
    holder.wait().unwrap();
}

#[test]
fn the_fd_form_holds_for_the_script_and_what_inherited_it() {
    let d = dir("fd");
    let file = d.join("lock");
    let path = file.to_str().unwrap();
    // flock's idiom, word for word but for the command.
    let out = sh(&format!(
        "( exec 9>{path}; $A lock -n --fd 9 || exit 1; flock -n {path} true; echo inside=$? ) ; \
         flock -n {path} true; echo after=$?"
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "inside=1\nafter=0\n",
        "{}",
        text(&out)
    );
    // Held: a second script gets the conflict code.
    let out = sh(&format!(
        "exec 9>{path}; flock {path} sleep 2 & sleep 0.3; $A lock -n -E 9 --fd 9; echo rc=$?"
    ));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rc=9"),
        "{}",
        text(&out)
    );
    // SIGKILL the script: the background job that inherited fd 9 keeps
    // the lock; when it goes, the lock goes.
    let mut script = Command::new("bash")
        .args([
            "-c",
            &format!("exec 9>{path}; $A lock --fd 9; sleep 30 & echo ready $!; wait"),
        ])
        .env("A", BIN)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(script.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let job: u64 = line.trim().strip_prefix("ready ").unwrap().parse().unwrap();
    script.kill().unwrap();
    script.wait().unwrap();
    assert_eq!(sh(&format!("flock -n {path} true")).status.code(), Some(1));
    kill_pid(job);
    eventually("release", || {
        sh(&format!("flock -n {path} true")).status.success()
    });
    // abslock unlock --fd releases early.
    let out = sh(&format!(
        "exec 9>{path}; $A lock --fd 9; $A unlock --fd 9; flock -n {path} true; echo rc=$?"
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "rc=0\n",
        "{}",
        text(&out)
    );
}

#[test]
fn lock_name_holds_until_the_script_exits_even_by_sigkill() {
    let lock = name("keeper");
    // `held` in the same script agrees with `lock` (issue 21, point 10);
    // another script is not under it.
    let mut script = Command::new("bash")
        .args([
            "-c",
            &format!("$A lock -n {lock} && $A held {lock} && echo ready && sleep 30"),
        ])
        .env("A", BIN)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    script = ready(script);
    assert!(held(&lock));
    abslock().args(["lock", "-n", &lock]).assert().code(1);
    abslock().args(["held", &lock]).assert().code(1);
    let nested = Command::new("bash")
        .args(["-c", &format!("$A held {lock} || echo no")])
        .env("A", BIN)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&nested.stdout), "no\n");
    script.kill().unwrap();
    script.wait().unwrap();
    eventually("the keeper to let go", || !held(&lock));
}

// ------------------------------------------------ the self-lock idiom

#[test]
fn the_self_lock_idiom_is_safe_when_scripts_nest() {
    let d = dir("idiom");
    let outer = d.join("outer.sh");
    let inner = d.join("inner.sh");
    let (a, b) = (name("idiom-a"), name("idiom-b"));
    std::fs::write(
        &inner,
        format!(
            "#!/bin/bash\n$A held {b} || exec $A run -n {b} -- \"$0\" \"$@\"\n\
             $A held {a} && echo inner-under-a\n$A status {b} >/dev/null && echo inner-locked-b\n"
        ),
    )
    .unwrap();
    std::fs::write(
        &outer,
        format!(
            "#!/bin/bash\n$A held {a} || exec $A run -n {a} -- \"$0\" \"$@\"\n\
             echo outer-locked\n{} \n$A held {b} || echo outer-not-under-b\n",
            inner.display()
        ),
    )
    .unwrap();
    for f in [&outer, &inner] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let out = Command::new(&outer).env("A", BIN).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "outer-locked\ninner-under-a\ninner-locked-b\nouter-not-under-b\n",
        "{}",
        text(&out)
    );
    // Outside any lock, held says no; and a holder that is not an
    // ancestor (another instance) is a conflict, not a pass.
    abslock().args(["held", &a]).assert().code(1);
    let mut other = background(&["run", &a, "--", "sleep", "30"]);
    eventually("the other instance", || held(&a));
    let out = Command::new(&outer).env("A", BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    other.kill().unwrap();
    other.wait().unwrap();
}

// ------------------------------------------------ programs that bind "\0name"

#[test]
fn the_python_dgram_recipe_and_abslock_exclude_each_other() {
    // The widely copied recipe (Stack Overflow question 7758075).
    const RECIPE: &str = r#"
import socket, sys, time
lock_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    lock_socket.bind('\0' + sys.argv[1])
except socket.error:
    print('held', flush=True)
    sys.exit(1)
print('locked', flush=True)
time.sleep(60)
"#;
    let raw = format!("py-recipe-{}", std::process::id());
    let at = format!("@{raw}");
    let py = ready(
        Command::new("python3")
            .args(["-c", RECIPE, &raw])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    abslock()
        .args(["run", "-n", &at, "--", "true"])
        .assert()
        .code(1);
    let status = status_json(&at);
    assert_eq!(
        status["holder"]["pid"].as_u64(),
        Some(u64::from(py.id())),
        "{status}"
    );
    // Nobody can wait on a datagram socket: waiters poll, and say so.
    assert_eq!(status["holder"]["waiters"]["woken"], false, "{status}");
    abslock().args(["wait", "-w", "0.3", &at]).assert().code(1);
    abslock()
        .args(["list", "--all"])
        .assert()
        .stdout(predicates::str::contains(&at).and(predicates::str::contains("dgram")));
    abslock().args(["kill", &at]).assert().code(0);
    // abslock first: the recipe finds it held.
    let mut run = background(&["run", &at, "--", "sleep", "30"]);
    eventually("abslock to hold it", || held(&at));
    let out = Command::new("python3")
        .args(["-c", RECIPE, &raw])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "held\n");
    run.kill().unwrap();
    run.wait().unwrap();
    let mut py = py;
    let _ = py.wait();
}

#[test]
fn a_nul_padded_name_from_c_is_addressable_by_every_command() {
    let d = dir("c");
    // The program from the question this project answers: it binds with
    // addrlen = sizeof(struct sockaddr_un), so its name is NUL-padded to
    // 107 bytes, and never listens.
    let source = d.join("holder.c");
    std::fs::write(
        &source,
        r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv) {
  struct sockaddr_un sun;
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  strcpy(sun.sun_path + 1, argv[1]);
  if (bind(s, (struct sockaddr *) &sun, sizeof(sun))) { perror("bind"); exit(1); }
  printf("ready\n"); fflush(stdout);
  pause();
}
"#,
    )
    .unwrap();
    let binary = d.join("holder");
    let cc = Command::new("cc")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .status();
    assert!(
        cc.is_ok_and(|s| s.success()),
        "cc (scripts/setup.sh installs it)"
    );
    let raw = format!("c-padded-{}", std::process::id());
    let mut c = ready(
        Command::new(&binary)
            .arg(&raw)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let at = format!("@{raw}\\0*");
    let status = status_json(&at);
    assert_eq!(
        status["holder"]["pid"].as_u64(),
        Some(u64::from(c.id())),
        "{status}"
    );
    assert_eq!(status["address"], at, "status shows the address as typed");
    abslock()
        .args(["run", "-n", &at, "--", "true"])
        .assert()
        .code(1);
    abslock().args(["wait", "-w", "0.3", &at]).assert().code(1);
    // The unpadded name is another name, and free.
    abslock()
        .args(["status", &format!("@{raw}")])
        .assert()
        .code(1);
    // What ss -xa shows (each NUL as @), copied: refused with the form to
    // write, never taken as another address beside the daemon.
    let ss = String::from_utf8(Command::new("ss").args(["-xaH"]).output().unwrap().stdout).unwrap();
    let copied = ss
        .split_whitespace()
        .find(|w| w.starts_with(&format!("@{raw}")))
        .unwrap_or_else(|| panic!("ss -xa does not show @{raw}: {ss}"))
        .to_string();
    assert_eq!(copied.len(), 108, "{copied}");
    for sub in [
        vec!["run", "-n", &copied, "--", "true"],
        vec!["status", &copied],
    ] {
        abslock()
            .args(&sub)
            .assert()
            .code(64)
            .stderr(predicates::str::contains(format!("'{at}'")));
    }
    abslock()
        .args(["list", "--all"])
        .assert()
        .stdout(predicates::str::contains(&at));
    abslock().args(["kill", &at]).assert().code(0);
    assert!(c.wait().unwrap().code().is_none(), "killed by the signal");
    abslock().args(["status", &at]).assert().code(1);
}

// ------------------------------------------------ lock files

#[test]
fn fcntl_locks_read_only_files_and_directories() {
    let d = dir("files");
    let file = d.join("lockf");
    let path = file.to_str().unwrap();
    // A POSIX fcntl lock, as lckdo or setlock take.
    let posix = ready(
        Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time\nf=open(sys.argv[1],'w')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('ready',flush=True)\ntime.sleep(60)",
                path,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    abslock()
        .args(["run", "-n", path, "--", "true"])
        .assert()
        .code(1);
    abslock()
        .args(["status", path])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("POSIX WRITE"));
    // A waiter cannot be woken by an fcntl unlock: status -v says it polls
    // (issue 22).
    abslock()
        .args(["status", "-v", path])
        .assert()
        .code(0)
        .stdout(predicates::str::contains(
            "waiters:   polling: an fcntl(2) lock",
        ));
    let mut posix = posix;
    posix.kill().unwrap();
    posix.wait().unwrap();
    abslock()
        .args(["run", "-n", path, "--", "true"])
        .assert()
        .code(0);
    // A directory, as flock(1) locks one.
    let sub = d.join("dir");
    std::fs::create_dir(&sub).unwrap();
    let sub = sub.to_str().unwrap();
    let mut holder = flock_holding(&[sub, "sleep", "30"], std::path::Path::new(sub));
    abslock()
        .args(["run", "-n", sub, "--", "true"])
        .assert()
        .code(1);
    abslock()
        .args(["status", "-v", sub])
        .assert()
        .code(0)
        .stdout(predicates::str::contains(
            "waiters:   woken: the kernel reports the close",
        ));
    holder.kill().unwrap();
    holder.wait().unwrap();
    abslock()
        .args(["run", "-n", sub, "--", "true"])
        .assert()
        .code(0);
    // A file we may only read (a script's own file, owned by root).
    if is_root() {
        let ro = d.join("script.sh");
        std::fs::write(&ro, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let out = Command::new(BIN)
            .args(["run", "-n", &format!("file:{}", ro.display()), "--", "true"])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    // A relative path is a lock file, as flock(1) takes it; never a
    // socket name.
    let out = Command::new(BIN)
        .args(["run", "-n", "./rel.lock", "--", "true"])
        .current_dir(&d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(d.join("rel.lock").exists());
}

// ------------------------------------------------ the rest

#[test]
fn no_panic_on_a_closed_pipe() {
    let lock = name("pipe");
    for (command, want) in [
        (format!("$A status {lock} | true"), 1),
        ("$A list --all | head -c1 >/dev/null".to_string(), 0),
        ("$A doctor | true".to_string(), 0),
        ("$A completions bash | head -c1 >/dev/null".to_string(), 0),
        ("$A man run | true".to_string(), 0),
    ] {
        for _ in 0..3 {
            let out = sh(&format!("set -o pipefail; {command}"));
            assert_eq!(out.status.code(), Some(want), "{command}: {}", text(&out));
            assert!(
                !text(&out).contains("panicked"),
                "{command}: {}",
                text(&out)
            );
            assert!(out.stderr.is_empty(), "{command}: {}", text(&out));
        }
    }
}

#[test]
fn bare_abslock_prints_one_usage_line() {
    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--help") && err.contains("run"), "{err}");
}

#[test]
fn durations_and_real_time_signals() {
    let lock = name("rt");
    abslock()
        .args(["run", "-w", "1h30m", &lock, "--", "true"])
        .assert()
        .code(0);
    abslock()
        .args(["run", "-w", "soon", &lock, "--", "true"])
        .assert()
        .code(64);
    // A holder that reports the signal it gets.
    let raw = format!("@rt-{}", std::process::id());
    let py = ready(
        Command::new("python3")
            .args([
                "-c",
                "import signal,socket,sys,time\ndef h(n,f):\n    print('got',n,flush=True)\n    sys.exit(0)\nsignal.signal(signal.SIGRTMIN+1,h)\ns=socket.socket(socket.AF_UNIX)\ns.bind(b'\\0'+sys.argv[1].encode())\ns.listen()\nprint('ready',flush=True)\ntime.sleep(60)",
                &raw[1..],
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    abslock()
        .args(["kill", "-s", "RTMIN+1", "-w", "5", &raw])
        .assert()
        .code(0);
    let out = py.wait_with_output().unwrap();
    let rtmin1 = 1 + libc::SIGRTMIN();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("got {rtmin1}\n")
    );
    abslock()
        .args(["kill", "-s", "RTMAX+1", &raw])
        .assert()
        .code(64);
}
