//! Talking to the running instance from the command line: `send`, the
//! `info` fields of `status`, `run --replace`, and the
//! `single_instance_app` example end to end.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{abslock, background, held, name, status_json, wait_held};
use predicates::prelude::*;

/// The example's binary, next to ours; built if `cargo test` did not.
/// `None` outside the workspace (a packaged crate has no library examples
/// to build).
fn example() -> Option<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../abslock/examples");
    if !workspace.exists() {
        eprintln!("skipped: the library's example is built in the workspace only");
        return None;
    }
    let bin = PathBuf::from(common::BIN);
    let path = bin
        .parent()
        .unwrap()
        .join("examples")
        .join("single_instance_app");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "abslock", "--example", "single_instance_app"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "building the example failed");
    }
    Some(path)
}

struct App {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl App {
    fn start(example: &PathBuf, lock: &str) -> App {
        let mut child = Command::new(example)
            .env("SINGLE_INSTANCE_NAME", lock)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.starts_with("first instance"), "{line}");
        App { child, out }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_example_forwards_a_second_launch_to_the_first() {
    let Some(example) = example() else { return };
    let lock = name("example");
    let mut first = App::start(&example, &lock);
    let cwd = std::env::temp_dir();

    // A second launch of the app: hands over its argv, exits 0.
    let second = Command::new(&example)
        .env("SINGLE_INSTANCE_NAME", &lock)
        .args(["a.txt", "--new-window"])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert!(second.status.success(), "{second:?}");
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        "opened 2 argument(s)\n"
    );
    let seen = first.line();
    assert!(seen.starts_with("second instance (pid "), "{seen}");
    assert!(
        seen.ends_with(&format!("in {}: a.txt --new-window", cwd.display())),
        "{seen}"
    );

    // The CLI speaks the same protocol.
    abslock()
        .args(["send", &lock, "--", "app", "b.txt"])
        .assert()
        .success()
        .stdout("opened 1 argument(s)\n");
    assert!(first.line().ends_with(": b.txt"));

    // status shows what the holder says about itself.
    let status = status_json(&lock);
    let info = &status["info"];
    assert_eq!(info["pid"], first.child.id());
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["metadata"]["role"], "example");
    assert!(info["acquired_unix"].as_u64().unwrap() > 1_600_000_000);

    // run --replace: the example gets a stop request and leaves cleanly.
    abslock()
        .args(["run", "--replace", &lock, "--", "true"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success();
    assert!(first.line().starts_with("stop requested by pid "));
    assert!(first.child.wait().unwrap().success());
}

#[test]
fn send_failures_have_their_own_exit_codes() {
    let lock = name("send-errors");
    abslock()
        .args(["send", &lock, "--", "x"])
        .assert()
        .code(69)
        .stderr(predicate::str::contains("not held"));

    // `abslock run` serves stop requests only: it takes no messages, 69
    // as the README's table says.
    let mut holder = background(&["run", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    abslock()
        .args(["send", &lock, "--", "x"])
        .assert()
        .code(69)
        .stderr(predicate::str::contains("does not take messages"));
    holder.kill().unwrap();
    holder.wait().unwrap();

    // With --exec nobody serves the socket: the holder is reported, by
    // pid, as not answering, and left alone.
    let lock = name("send-mute");
    let mut mute = background(&["run", "--exec", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    let pid = mute.id();
    abslock()
        .args(["send", "-w", "0.3", &lock, "--", "x"])
        .assert()
        .code(75)
        .stderr(
            predicate::str::contains(format!("pid {pid}"))
                .and(predicate::str::contains("left running")),
        );
    assert!(mute.try_wait().unwrap().is_none(), "the holder was hurt");
    mute.kill().unwrap();
    mute.wait().unwrap();
}

#[test]
fn status_shows_the_info_of_an_abslock_run_holder() {
    let lock = name("status-info");
    let mut holder = background(&["run", &lock, "--", "sleep", "30"]);
    let status = wait_held(&lock);
    let info = &status["info"];
    assert_eq!(info["pid"], holder.id());
    assert!(info["version"]
        .as_str()
        .unwrap()
        .starts_with("abslock-run "));
    assert_eq!(info["metadata"]["command"], "sleep 30");
    abslock().args(["status", &lock]).assert().success().stdout(
        predicate::str::contains("acquired:")
            .and(predicate::str::contains("version:   abslock-run")),
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
}

#[test]
fn replace_stops_an_abslock_run_holder_and_takes_over() {
    let lock = name("replace");
    let old = background(&["run", &lock, "--", "sleep", "30"]);
    wait_held(&lock);
    let start = Instant::now();
    abslock()
        .args(["run", "--replace", &lock, "--", "echo", "new"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout("new\n");
    // The stop request became a SIGTERM for the old command, well before
    // the 10 s at which --replace would have escalated.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let out = old.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM));
    assert!(!held(&lock));
}

#[test]
fn replace_escalates_to_sigkill_for_a_holder_that_ignores_everything() {
    let lock = name("replace-stubborn");
    // --exec: the shell is the holder; it serves nothing and ignores TERM.
    let mut old = background(&[
        "run",
        "--exec",
        &lock,
        "--",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1; done",
    ]);
    wait_held(&lock);
    abslock()
        .args(["run", "--replace", "-w", "0.5", &lock, "--", "echo", "new"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout("new\n")
        .stderr(predicate::str::contains("sending SIGKILL"));
    let status = old.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}
