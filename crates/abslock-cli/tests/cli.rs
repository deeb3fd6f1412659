//! End-to-end tests of the `abslock` binary: exit codes, supervision,
//! --exec, --close, status, wait, kill, list. Real processes, real signals.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::Value;

mod common;

use common::*;

// ------------------------------------------------------------ exit codes

#[test]
fn usage_errors_exit_64_with_one_line() {
    let cases: &[&[&str]] = &[
        &["run", "x"],
        &["run", "-w", "-1", "x", "--", "true"],
        &["run", "-w", "abc", "x", "--", "true"],
        &["run", "-w", "nan", "x", "--", "true"],
        &["run", "@", "--", "true"],
        &["run", &"@".repeat(200), "--", "true"],
        &["run", "", "--", "true"],
        &["run", "a\x01b", "--", "true"],
        &["kill", "-s", "NOPE", "x"],
        &["status"],
        &["bogus"],
    ];
    for args in cases {
        let out = abslock().args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("abslock: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn exec_failure_exits_69() {
    abslock()
        .args(["run", &name("noexec"), "--", "/nonexistent/command"])
        .assert()
        .code(69)
        .stderr(predicate::str::contains(
            "cannot execute '/nonexistent/command'",
        ));
    abslock()
        .args([
            "run",
            "--exec",
            &name("noexec2"),
            "--",
            "/nonexistent/command",
        ])
        .assert()
        .code(69);
}

#[test]
fn the_commands_status_is_passed_through() {
    abslock()
        .args(["run", &name("code"), "--", "sh", "-c", "exit 7"])
        .assert()
        .code(7);
    abslock()
        .args(["run", &name("code"), "sh", "-c", "exit 0"])
        .assert()
        .code(0);
    // Killed by a signal: 128 + the signal number, as shells report it.
    abslock()
        .args(["run", &name("code"), "--", "sh", "-c", "kill -TERM $$"])
        .assert()
        .code(143);
}

#[test]
fn conflicts_exit_1_or_the_chosen_code() {
    let lock = name("conflict");
    let mut holder = background(&["run", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    abslock()
        .args(["run", "-n", &lock, "--", "true"])
        .assert()
        .code(1)
        .stderr("");
    abslock()
        .args(["run", "-w", "0", &lock, "--", "true"])
        .assert()
        .code(1);
    abslock()
        .args(["run", "-n", "-E", "9", &lock, "--", "true"])
        .assert()
        .code(9);
    let t = Instant::now();
    abslock()
        .args(["run", "-v", "-w", "0.3", &lock, "--", "true"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "is still held by pid {}",
            holder.id()
        )));
    assert!(t.elapsed() >= Duration::from_millis(300));
    holder.kill().unwrap();
    holder.wait().unwrap();
}

// ----------------------------------------------------------- supervision

#[test]
fn sigterm_to_abslock_is_forwarded_to_the_command() {
    let lock = name("forward");
    let mut run = background(&[
        "run",
        &lock,
        "--",
        "sh",
        "-c",
        "trap 'exit 42' TERM; echo ready; while :; do sleep 0.01; done",
    ]);
    let mut line = String::new();
    BufReader::new(run.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    signal(run.id(), libc::SIGTERM);
    let status = run.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "the command's TERM trap should decide the status"
    );
    assert!(!held(&lock));
}

#[test]
fn sigkill_of_abslock_kills_the_command_and_frees_the_lock() {
    let lock = name("pdeath");
    let mut run = background(&["run", &lock, "--", "sleep", "30"]);
    let status = wait_held(&lock);
    assert_eq!(status["holder"]["pid"].as_u64(), Some(u64::from(run.id())));
    let child = *pids(&status)
        .iter()
        .find(|&&p| p != u64::from(run.id()))
        .expect("child listed");
    assert!(alive(child));
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();
    eventually("the command to die with its supervisor", || !alive(child));
    eventually("the lock to be free", || !held(&lock));
}

#[test]
fn exec_mode_makes_the_command_the_holder() {
    let lock = name("exec");
    let mut run = background(&["run", "--exec", &lock, "--", "sleep", "30"]);
    let status = wait_held(&lock);
    assert_eq!(status["holder"]["pid"].as_u64(), Some(u64::from(run.id())));
    assert_eq!(status["holder"]["command"][0], "sleep");
    assert_eq!(pids(&status), vec![u64::from(run.id())]);
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(!held(&lock));
}

#[test]
fn the_command_inherits_the_lock_unless_close_is_given() {
    let lock = name("inherit");
    let mut run = background(&["run", &lock, "--", "sleep", "30"]);
    let with = wait_held(&lock);
    assert_eq!(pids(&with).len(), 2, "abslock and its command: {with}");
    run.kill().unwrap();
    run.wait().unwrap();
    eventually("release", || !held(&lock));

    let mut run = background(&["run", "-o", &lock, "--", "sleep", "30"]);
    let without = wait_held(&lock);
    assert_eq!(
        pids(&without),
        vec![u64::from(run.id())],
        "only abslock: {without}"
    );
    run.kill().unwrap();
    run.wait().unwrap();
}

#[test]
fn descendants_that_keep_the_lock_are_named() {
    let lock = name("leftover");
    let out = abslock()
        .args([
            "run",
            &lock,
            "--",
            "sh",
            "-c",
            // Exits once the background child has become `sleep`, so that
            // its name is settled when abslock reports it.
            "sleep 30 >/dev/null 2>&1 & p=$!; \
             until [ \"$(cat /proc/$p/comm)\" = sleep ]; do :; done; echo $p",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let orphan: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("still hold") && err.contains(&format!("{orphan} (sleep 30)")),
        "{err}"
    );
    let status = status_json(&lock);
    assert_eq!(status["held"], true);
    assert_eq!(pids(&status), vec![orphan]);
    assert_eq!(status["holder"]["pid"].as_u64(), Some(orphan));
    kill_pid(orphan);
    eventually("release", || !held(&lock));
}

// ------------------------------------------------ status, wait, kill, list

#[test]
fn status_reports_free_and_held() {
    let lock = name("status");
    abslock()
        .args(["status", &lock])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(": free"));
    let json = status_json(&lock);
    assert_eq!(json["held"], false);
    assert_eq!(json["scope"], "user");
    let mut run = background(&["run", &lock, "--", "sleep", "30"]);
    let json = wait_held(&lock);
    let me = rustix::process::getuid().as_raw();
    assert_eq!(json["holder"]["uid"].as_u64(), Some(u64::from(me)));
    assert_eq!(json["holder"]["listening"], true);
    assert_eq!(json["holder"]["source"], "peercred");
    assert_eq!(json["holder"]["trusted"], true);
    assert_eq!(json["address"], format!("@abslock/user/{me}/{lock}"));
    abslock().args(["status", &lock]).assert().code(0).stdout(
        predicate::str::contains(format!("pid {}", run.id()))
            .and(predicate::str::contains("sleep 30")),
    );
    run.kill().unwrap();
    run.wait().unwrap();
}

#[test]
fn wait_returns_once_released_or_times_out() {
    let lock = name("wait");
    abslock().args(["wait", &lock]).assert().code(0);
    let mut run = background(&["run", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    abslock()
        .args(["wait", "-w", "0.2", &lock])
        .assert()
        .code(1);
    let waiter = background(&["wait", "-w", "30", &lock]);
    run.kill().unwrap();
    run.wait().unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn kill_signals_the_holder_and_reports_the_release() {
    let lock = name("kill");
    abslock()
        .args(["kill", &lock])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not held"));
    // SIGINT must reach sleep with its default action, however the test
    // itself was started (a background job has SIGINT ignored).
    let mut run = background_with_default_signals(&["run", "--exec", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    abslock()
        .args(["kill", "-s", "INT", "-w", "10", &lock])
        .assert()
        .code(0);
    let status = run.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGINT)
    );
}

/// Holds `lock` (as the exec'd shell) ignoring SIGTERM, with a child
/// `sleep` that inherited the lock.
fn stubborn_holder(lock: &str) -> std::process::Child {
    let run = background(&[
        "run",
        "--exec",
        lock,
        "--",
        "sh",
        "-c",
        "trap '' TERM; sleep 30; true",
    ]);
    wait_held(lock);
    run
}

#[test]
fn kill_after_escalates_to_sigkill() {
    let lock = name("escalate");
    // The holder ignores SIGTERM, and so does its child that keeps the lock.
    let mut run = stubborn_holder(&lock);
    abslock()
        .args(["kill", "--kill-after", "0.3", "-w", "10", &lock])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("sending SIGKILL"));
    let status = run.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    // Without escalation, a holder that ignores the signal outlasts the wait.
    let mut run = stubborn_holder(&lock);
    abslock()
        .args(["kill", "-w", "0.3", &lock])
        .assert()
        .code(2);
    // Clean up: escalate at once, which also reaches the inheriting sleep.
    abslock()
        .args(["kill", "--kill-after", "0", "-w", "10", &lock])
        .assert()
        .code(0);
    run.wait().unwrap();
    assert!(!held(&lock));
}

#[test]
fn list_shows_abslock_locks_and_raw_names_of_other_programs() {
    let lock = name("list");
    let mut run = background(&["run", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    // A Python program that binds "\0name" and never listens.
    let raw = format!("abslock-cli-test-raw-{}", std::process::id());
    let mut py = Command::new("python3")
        .args(["-c", "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(b'\\0'+sys.argv[1].encode())\nprint('ready',flush=True)\ntime.sleep(60)", &raw])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(py.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();

    let out = abslock().args(["list"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&lock) && text.contains(&run.id().to_string()),
        "{text}"
    );
    assert!(!text.contains(&raw), "raw names only with --all: {text}");

    let out = abslock()
        .args(["list", "--all", "--json"])
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == format!("@{raw}"))
        .unwrap_or_else(|| panic!("{raw} not listed"));
    assert_eq!(row["listening"], false);
    assert_eq!(
        row["processes"][0]["pid"].as_u64(),
        Some(u64::from(py.id()))
    );
    // And status finds its holder through /proc.
    let status = status_json(&format!("@{raw}"));
    assert_eq!(status["holder"]["pid"].as_u64(), Some(u64::from(py.id())));
    assert_eq!(status["holder"]["source"], "procfs");
    py.kill().unwrap();
    py.wait().unwrap();
    run.kill().unwrap();
    run.wait().unwrap();
}

#[test]
fn a_squatted_system_lock_exits_3() {
    if !is_root() {
        eprintln!("skipped: needs root to run a squatter as another uid");
        return;
    }
    use std::os::unix::process::CommandExt;
    let lock = name("squat");
    let mut py = Command::new("python3")
        .args(["-c", "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(b'\\0abslock/system/'+sys.argv[1].encode())\ns.listen()\nprint('ready',flush=True)\ntime.sleep(60)", &lock])
        .uid(65534)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(py.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    abslock()
        .args(["run", "-n", "--system", &lock, "--", "true"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("uid 65534").and(predicate::str::contains("does not trust")),
        );
    // Trusting that uid (or any) makes it an ordinary conflict.
    abslock()
        .args([
            "run",
            "-n",
            "-v",
            "--system",
            "--trust-uid",
            "65534",
            &lock,
            "--",
            "true",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "is held by pid {}",
            py.id()
        )));
    abslock()
        .args(["run", "-n", "--system", "--trust-any", &lock, "--", "true"])
        .assert()
        .code(1);
    let trusted = |extra: &[&str]| {
        let mut args = vec!["status", "--json", "--system"];
        args.extend_from_slice(extra);
        args.push(&lock);
        let out = abslock().args(&args).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["holder"]["trusted"].clone()
    };
    assert_eq!(trusted(&[]), false);
    assert_eq!(trusted(&["--trust-uid", "65534"]), true);
    py.kill().unwrap();
    py.wait().unwrap();
}

// ------------------------------------------------------------ the rest

#[test]
fn help_version_completions_and_doctor() {
    abslock()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("abslock "));
    abslock()
        .args(["help", "run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--nonblock"));
    for shell in ["bash", "zsh", "fish"] {
        abslock()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("abslock"));
    }
    let out = abslock().args(["doctor", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(out.status.code(), Some(0));
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 18);
    if is_root() {
        assert!(checks.iter().all(|c| c["status"] == "pass"), "{report}");
    }
}

/// `abslock` carries no cluster engine: `--backend` execs `abslock-cluster`
/// from its own directory, same arguments, same pid; without it, one line
/// that says what to install, exit 69.
#[test]
fn backend_runs_through_abslock_cluster_beside_abslock() {
    let dir = std::env::temp_dir().join(format!("abslock-helper-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let alone = dir.join("abslock");
    copy_executable(BIN, &alone);
    let args = ["status", "--backend", "etcd://127.0.0.1:1", "job"];
    let out = std::process::Command::new(&alone)
        .args(args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{said}");
    assert!(said.contains("needs abslock-cluster"), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    // With the helper beside it, the engine answers (here: nobody there).
    let helper = std::path::Path::new(BIN).with_file_name("abslock-cluster");
    copy_executable(&helper, dir.join("abslock-cluster"));
    let out = std::process::Command::new(&alone)
        .args(args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "etcd") {
        assert!(said.contains("no etcd endpoint answered"), "{said}");
    } else {
        assert!(said.contains("without cluster backends"), "{said}");
    }
    // Local locks never need it.
    std::fs::remove_file(dir.join("abslock-cluster")).unwrap();
    let lock = name("helper-local");
    let out = std::process::Command::new(&alone)
        .args(["run", "-n", &lock, "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// flock's habits: `-n` says nothing on a conflict, even on a terminal,
/// unless `-v`; `-v` repeats; `-q` silences warnings (issue 25).
#[test]
fn nonblock_is_silent_on_a_terminal_verbose_repeats_and_quiet_silences_warnings() {
    let lock = name("habits");
    let mut holder = background(&["run", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    // script(1) gives abslock a terminal as stderr.
    let on_terminal = |args: &str| {
        let out = std::process::Command::new("script")
            .args(["-qec", &format!("{BIN} {args}; echo rc=$?"), "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).replace('\r', "")
    };
    assert_eq!(on_terminal(&format!("run -n {lock} -- true")), "rc=1\n");
    let said = on_terminal(&format!("run -n -vv {lock} -- true"));
    assert!(
        said.contains("is held by pid") && said.ends_with("rc=1\n"),
        "{said}"
    );
    abslock()
        .args(["run", "-q", "-v", &lock, "--", "true"])
        .assert()
        .code(64);
    holder.kill().unwrap();
    holder.wait().unwrap();
    // A lock file in world-writable /tmp: a warning, unless -q.
    let file = format!("file:/tmp/abslock-habits-{}.lock", std::process::id());
    abslock()
        .args(["run", "-n", &file, "--", "true"])
        .assert()
        .success()
        .stderr(predicate::str::contains("warning"));
    abslock()
        .args(["run", "-n", "-q", &file, "--", "true"])
        .assert()
        .success()
        .stderr("");
    let _ = std::fs::remove_file(file.trim_start_matches("file:"));
}

/// `cargo install` users get the man pages with `abslock man --install`.
#[test]
fn man_install_writes_every_page_where_man_finds_it() {
    let dir = std::env::temp_dir().join(format!("abslock-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    abslock()
        .args(["man", "--install", dir.to_str().unwrap()])
        .assert()
        .success();
    let pages: Vec<String> = std::fs::read_dir(dir.join("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(pages.contains(&"abslock.1".to_string()), "{pages:?}");
    assert!(pages.contains(&"abslock-run.1".to_string()), "{pages:?}");
    let run = std::fs::read_to_string(dir.join("man1/abslock-run.1")).unwrap();
    for section in [
        "SYNOPSIS",
        "OPTIONS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(run.contains(&format!(".SH {section}")), "no {section}");
    }
    assert!(run.contains("\\fISECS\\fR"), "value names in the synopsis");
    assert!(!run.contains(".SH EXTRA"));
    // Installing again replaces the pages; a symlink or a FIFO in their
    // place is neither followed nor written to (exit 73).
    abslock()
        .args(["man", "--install", dir.to_str().unwrap()])
        .assert()
        .success();
    let victim = dir.join("victim");
    std::fs::write(&victim, "mine\n").unwrap();
    let page = dir.join("man1/abslock-run.1");
    std::fs::remove_file(&page).unwrap();
    std::os::unix::fs::symlink(&victim, &page).unwrap();
    abslock()
        .args(["man", "--install", dir.to_str().unwrap()])
        .assert()
        .code(73)
        .stderr(predicate::str::contains("abslock-run.1"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine\n");
    std::fs::remove_file(&page).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &page,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    abslock()
        .args(["man", "--install", dir.to_str().unwrap()])
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .code(73)
        .stderr(predicate::str::contains("abslock-run.1"));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&page)
        .unwrap()
        .file_type()
        .is_fifo());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The command starts as `posix_spawn` would start it (crate::spawn): no
/// signal blocked, SIGPIPE not ignored (abslock ignores it), and the lock's
/// socket open at the number `ABSLOCK_FD` names. (`grep` reads its own
/// status: through `sh -c`, `/proc/$$` is the shell, and dash blocks every
/// signal for a moment around each fork.)
#[test]
fn the_command_starts_with_no_signal_blocked_sigpipe_default_and_the_lock_at_abslock_fd() {
    let lock = name("spawn-state");
    let out = abslock()
        .args([
            "run",
            &lock,
            "--",
            "grep",
            "-E",
            "^Sig(Blk|Ign):",
            "/proc/self/status",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |key: &str| {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        u64::from_str_radix(line[key.len()..].trim(), 16).unwrap()
    };
    assert_eq!(field("SigBlk:"), 0, "{text}");
    let sigpipe = 1 << (libc::SIGPIPE - 1);
    assert_eq!(field("SigIgn:") & sigpipe, 0, "SIGPIPE ignored: {text}");
    let out = abslock()
        .args([
            "run",
            &lock,
            "--",
            "sh",
            "-c",
            "readlink /proc/$$/fd/$ABSLOCK_FD",
        ])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&out.stdout);
    assert!(
        link.starts_with("socket:["),
        "no socket at ABSLOCK_FD: {link}"
    );
}

/// Started with standard output closed, abslock puts `/dev/null` there
/// before it opens anything (as std's runtime start does, which the glibc
/// build skips: crate::start), so that no lock socket or file takes
/// descriptor 1 and receives what is printed.
#[test]
fn a_closed_stdout_is_dev_null_not_the_lock_socket() {
    let lock = name("closed-stdout");
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            r#"exec "$0" run "$1" -- sh -c 'readlink /proc/$PPID/fd/1 >&2' 1>&-"#,
            BIN,
            &lock,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "/dev/null");
}

/// A system call's failure says which lock it concerns: under a tiny
/// `ulimit -n`, `run` fails in one line that starts with the NAME (issue
/// 27: it used to read only `binding the lock name: Too many open files`).
#[test]
fn a_system_error_names_the_lock_it_concerns() {
    // A raw name fails in system calls; a per-user NAME may fail first at
    // its runtime file, a path the user never typed; a lock file NAME is
    // named by its path. Each limit that gets past the loader fails at a
    // later step of `run`.
    let dir = std::env::temp_dir().join(format!("abslock-emfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("emfile.lock").display().to_string();
    for lock in [
        format!("@{}", name("emfile")),
        name("emfile-user"),
        format!("file:{file}"),
    ] {
        let mut failures = 0;
        for limit in 4..=12 {
            let out = std::process::Command::new("sh")
                .args([
                    "-c",
                    &format!("ulimit -n {limit}; exec {BIN} run -n '{lock}' true"),
                ])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if !(stderr.starts_with("abslock:") && stderr.contains("Too many open files")) {
                continue;
            }
            failures += 1;
            assert_eq!(out.status.code(), Some(71), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.starts_with(&format!("abslock: {lock}: "))
                    || (lock.starts_with("file:")
                        && stderr.starts_with(&format!("abslock: cannot open lock file {file}: "))),
                "{stderr}"
            );
            assert!(stderr.contains("(raise the open-files limit"), "{stderr}");
        }
        assert!(failures > 0, "no limit made abslock run out of descriptors");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
