//! The file backend, combined mode and PID files from the command line.

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{abslock, background, eventually, is_root, name, sigkill, status_json, BIN};
use predicates::prelude::*;

fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("abslock-cli-files-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn held(spec: &[&str]) -> bool {
    let mut args = vec!["status"];
    args.extend_from_slice(spec);
    Command::new(BIN)
        .args(&args)
        .output()
        .unwrap()
        .status
        .code()
        == Some(0)
}

#[test]
fn a_lock_file_works_like_a_name_and_is_never_deleted() {
    let path = dir("file").join("job.lock");
    let spec = format!("file:{}", path.display());
    let mut holder = background(&["run", &spec, "--", "sleep", "30"]);
    eventually("the file lock to be taken", || held(&[&spec]));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "lock files are private");
    abslock()
        .args(["run", "-n", "-v", &spec, "--", "true"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("pid {}", holder.id())));
    let status = status_json(&spec);
    assert_eq!(status["holder"]["pid"], holder.id());
    assert_eq!(status["holder"]["source"], "proc-locks");
    assert_eq!(status["file"], path.display().to_string());
    abslock()
        .args(["status", &spec])
        .assert()
        .success()
        .stdout(predicate::str::contains("FLOCK WRITE on"));
    // kill goes through the same pidfd path.
    abslock().args(["kill", &spec]).assert().success();
    holder.wait().unwrap();
    assert!(!held(&[&spec]));
    assert!(path.exists(), "the lock file must stay");
    // A symlink of our own is followed, as flock(1) follows it: the lock
    // is on its target. (One another user planted is refused, exit 77:
    // `an_untrusted_symlink_in_a_path_is_never_followed` in attacks.rs.)
    let link = dir("file").join("link.lock");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let linked = format!("file:{}", link.display());
    let mut holder = background(&["run", &linked, "--", "sleep", "30"]);
    eventually("the lock taken through the link", || held(&[&spec]));
    assert!(held(&[&linked]));
    sigkill(&holder);
    holder.wait().unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// `--backend file:PATH NAME`, the cluster backends' form for the file
/// backend: the lock file PATH, or DIR/NAME for a directory, for every
/// subcommand.
#[test]
fn backend_file_path_is_the_lock_file() {
    let d = dir("backend");
    let backend = format!("file:{}", d.display());
    let mut holder = background(&["run", "--backend", &backend, "job", "--", "sleep", "30"]);
    let spec = format!("file:{}", d.join("job").display());
    eventually("the file lock to be taken", || held(&[&spec]));
    assert!(held(&["--backend", &backend, "job"]));
    abslock()
        .args(["run", "-n", "--backend", &backend, "job", "--", "true"])
        .assert()
        .code(1);
    abslock()
        .args(["run", "-n", "--backend", &backend, "other", "--", "true"])
        .assert()
        .code(0);
    abslock()
        .args(["status", "--backend", &backend, "a/b"])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("file:DIR"));
    common::kill_pid(u64::from(holder.id()));
    holder.wait().unwrap();
    // Its command kept the lock's descriptor and dies of PDEATHSIG just
    // after it, not by the time abslock itself is reaped.
    eventually("the lock to be free", || {
        !held(&["--backend", &backend, "job"])
    });
    // A path that is not a directory is the lock file itself.
    let file = d.join("one.lock");
    let backend = format!("file:{}", file.display());
    let mut holder = background(&["run", "--backend", &backend, "job", "--", "sleep", "30"]);
    let spec = format!("file:{}", file.display());
    eventually("the file lock to be taken", || held(&[&spec]));
    abslock()
        .args(["run", "-n", "--backend", &backend, "job", "--", "true"])
        .assert()
        .code(1);
    common::kill_pid(u64::from(holder.id()));
    holder.wait().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn combined_mode_runs_despite_a_squatter_and_reports_it() {
    if !is_root() {
        eprintln!("skipped: needs root to squat as another uid");
        return;
    }
    let private = dir("combined").join("root-only");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let path = private.join("daemon.lock");
    let lock = name("combined");
    // nobody squats the system-wide name first.
    let mut squatter = Command::new(BIN)
        .args(["run", "--system", "--trust-any", &lock, "--", "sleep", "30"])
        .uid(65534)
        .spawn()
        .unwrap();
    // status says "squatted" (exit 3) once it holds the name.
    eventually("the squatter to bind", || {
        Command::new(BIN)
            .args(["status", "--system", &lock])
            .output()
            .unwrap()
            .status
            .code()
            == Some(3)
    });
    // The socket alone: denied, exit 3.
    abslock()
        .args(["run", "-n", "--system", &lock, "--", "true"])
        .assert()
        .code(3);
    // With the file: it runs, and says who squats the name.
    abslock()
        .args([
            "run",
            "-n",
            "--system",
            "--file",
            path.to_str().unwrap(),
            &lock,
            "--",
            "echo",
            "ran",
        ])
        .assert()
        .success()
        .stdout("ran\n")
        .stderr(predicate::str::contains("squat").and(predicate::str::contains("uid 65534")));
    squatter.kill().unwrap();
    squatter.wait().unwrap();
}

#[test]
fn a_pid_file_is_written_for_the_command_and_removed_after() {
    let path = dir("pidfile").join("app.pid");
    std::fs::write(&path, "1\n").unwrap(); // stale content from before: ignored
    let lock = name("pidfile");
    let holder = background(&[
        "run",
        "--pidfile",
        path.to_str().unwrap(),
        &lock,
        "--",
        "sleep",
        "30",
    ]);
    eventually("the PID file to name the command", || {
        std::fs::read_to_string(&path).is_ok_and(|t| t != "1\n")
    });
    let pid: u32 = std::fs::read_to_string(&path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let status = Command::new(BIN)
        .args([
            "status",
            "--json",
            "--pidfile",
            path.to_str().unwrap(),
            &lock,
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["pidfile"]["state"], "current");
    // SIGTERM to abslock ends the command; the file goes with it.
    common::signal(holder.id(), libc::SIGTERM);
    let out = holder.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM));
    assert!(!path.exists(), "PID file left behind");
}

#[test]
fn status_explains_a_stale_or_reused_pid_file() {
    let path = dir("stale").join("app.pid");
    let lock = name("stale");
    let check = |want: &str, says: &str| {
        abslock()
            .args(["status", "--pidfile", path.to_str().unwrap(), &lock])
            .assert()
            .code(1)
            .stdout(predicate::str::contains(want).and(predicate::str::contains(says)));
    };
    // A pid that no longer exists.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&path, format!("{gone_pid}\n")).unwrap();
    check("stale", &format!("pid {gone_pid} no longer exists"));
    // A pid that now belongs to a process started after the file was
    // written: reused.
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(&path, format!("{}\n", other.id())).unwrap();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    check("stale", "was reused; it is now 'sleep 30'");
    other.kill().unwrap();
    other.wait().unwrap();
    std::fs::write(&path, "not a pid\n").unwrap();
    check("malformed", "'not a pid' is not a pid");
}

/// A private runtime directory (`XDG_RUNTIME_DIR`) for one test.
fn runtime(tag: &str) -> PathBuf {
    let dir = dir(tag);
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    dir
}

fn run_in(runtime: &std::path::Path, args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Issue 21, point 8: a per-user NAME's runtime file goes with the lock,
/// never while someone keeps it, and hand-overs through it never let two
/// holders in.
#[test]
fn runtime_files_are_removed_at_release_and_never_let_two_in() {
    let rt = runtime("runtime-rm");
    let lock = name("rtfile");
    let file = rt
        .join("abslock")
        .join(format!("{}.lock", lock.replace('/', "%2F")));
    // Run and released: nothing left.
    let out = run_in(
        &rt,
        &[
            "run",
            "-n",
            &lock,
            "--",
            "sh",
            "-c",
            "test -e \"$0\"",
            file.to_str().unwrap(),
        ],
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the file exists while held: {out:?}"
    );
    assert!(!file.exists(), "left behind: {}", file.display());
    // A descendant that keeps the lock keeps the file too.
    let out = run_in(
        &rt,
        &[
            "run",
            &lock,
            "--",
            "sh",
            "-c",
            "sleep 3 >/dev/null 2>&1 & echo $!",
        ],
    )
    .wait_with_output()
    .unwrap();
    let kept: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(file.exists(), "removed under a keeper");
    let out = run_in(&rt, &["run", "-n", &lock, "--", "true"])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    eventually("the keeper to end", || {
        !std::path::Path::new(&format!("/proc/{kept}")).exists()
    });
    // The next holder removes it.
    let out = run_in(&rt, &["run", "-n", &lock, "--", "true"])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!file.exists());
    // Twelve at once, each waiting: one inside at a time, none left out.
    let inside = rt.join("inside");
    let script = "mkdir \"$0\" || echo OVERLAP; sleep 0.02; rmdir \"$0\"";
    let all: Vec<_> = (0..12)
        .map(|_| {
            run_in(
                &rt,
                &[
                    "run",
                    "-w",
                    "60",
                    &lock,
                    "--",
                    "sh",
                    "-c",
                    script,
                    inside.to_str().unwrap(),
                ],
            )
        })
        .collect();
    for child in all {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("OVERLAP"));
    }
    assert!(!file.exists());
    std::fs::remove_dir_all(&rt).unwrap();
}

/// Issue 22: waiters with a timeout are served in the order they came, on
/// a raw socket name (each waits on the ticket of the one before it:
/// abslock's queue module), on a lock file, in combined mode and on a
/// per-user name (whose runtime file is the queue): they block in
/// flock(2), whose kernel queue wakes the first waiter at each release,
/// and a timer interrupts the wait at the deadline. A queued waiter that dies leaves the queue without delaying
/// the others, and a timeout still ends on time.
#[test]
fn waiters_with_a_timeout_are_served_in_arrival_order() {
    let d = dir("order");
    let file = d.join("order.lock").display().to_string();
    let raw = format!("@abslock-test-order-{}", std::process::id());
    let cases: [(&str, Vec<String>); 4] = [
        ("raw", vec![raw]),
        ("file", vec![format!("file:{file}")]),
        (
            "combined",
            vec![
                "--file".into(),
                d.join("c.lock").display().to_string(),
                name("order-c"),
            ],
        ),
        ("name", vec![name("order-n")]),
    ];
    for (what, spec) in cases {
        let log = d.join(format!("{what}.log"));
        let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
        let mut run = vec!["run"];
        run.extend(&spec);
        let mut holder_args = run.clone();
        holder_args.extend(["--", "sh", "-c", "echo ready; read x"]);
        let mut holder = Command::new(BIN)
            .args(&holder_args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        assert_eq!(common::first_line(&mut holder), "ready", "{what}");
        let mut waiters = Vec::new();
        for i in 0..6 {
            let script = format!("echo {i} >> '{}'", log.display());
            let mut args = vec!["run", "-w", "30"];
            args.extend(&spec);
            args.extend(["--", "sh", "-c", &script]);
            waiters.push(background(&args));
            std::thread::sleep(Duration::from_millis(80));
        }
        // One dies while queued.
        sigkill(&waiters[2]);
        // A timed waiter gives up on time, and loses nobody's place.
        let mut late = vec!["run", "-w", "0.3"];
        late.extend(&spec);
        late.extend(["--", "true"]);
        let started = std::time::Instant::now();
        let out = Command::new(BIN).args(&late).output().unwrap();
        let waited = started.elapsed();
        assert_eq!(out.status.code(), Some(1), "{what}: {out:?}");
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_millis(800),
            "{what}: a 0.3 s timeout took {waited:?}"
        );
        drop(holder.stdin.take());
        holder.wait().unwrap();
        for (i, w) in waiters.iter_mut().enumerate() {
            let status = w.wait().unwrap();
            assert!(i == 2 || status.success(), "{what}: waiter {i}: {status:?}");
        }
        let order = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            order.split_whitespace().collect::<Vec<_>>(),
            ["0", "1", "3", "4", "5"],
            "{what}"
        );
    }
}

/// A per-user NAME's runtime file exists only while the lock is held: the
/// one a SIGKILLed holder leaves behind goes at the next `abslock list`,
/// and one that is held stays.
#[test]
fn list_removes_the_runtime_files_of_killed_holders_and_keeps_held_ones() {
    let rt = runtime("runtime-prune");
    let file_of = |lock: &str| {
        rt.join("abslock")
            .join(format!("{}.lock", lock.replace('/', "%2F")))
    };
    let (killed, held) = (name("pruned"), name("kept"));
    let mut holder = run_in(&rt, &["run", &killed, "--", "sleep", "30"]);
    let mut keeper = run_in(&rt, &["run", &held, "--", "sleep", "30"]);
    let status = |lock: &str| run_in(&rt, &["status", lock]).wait().unwrap().code();
    eventually("both locks to be taken", || {
        status(&killed) == Some(0) && status(&held) == Some(0)
    });
    sigkill(&holder);
    holder.wait().unwrap();
    // Its command dies of PDEATHSIG, and the lock with it.
    eventually("the killed holder's lock to go", || {
        status(&killed) == Some(1)
    });
    assert!(file_of(&killed).exists(), "a killed holder leaves its file");
    let out = run_in(&rt, &["list"]).wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !file_of(&killed).exists(),
        "list left the killed holder's file"
    );
    assert!(file_of(&held).exists(), "list removed a held lock's file");
    sigkill(&keeper);
    keeper.wait().unwrap();
}

/// A lock file path that names a FIFO is neither opened nor replaced: one
/// line naming it, usage exit 64 (`Error::NotAFile`), the command not run.
#[test]
fn a_lock_file_path_naming_a_fifo_is_refused_in_one_line_and_left_alone() {
    let dir = dir("fifo");
    let fifo = dir.join("job.lock");
    let _ = std::fs::remove_file(&fifo);
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let ran = dir.join("ran");
    let spec = format!("file:{}", fifo.display());
    let out = abslock()
        .args(["run", "-n", &spec, "--", "touch", ran.to_str().unwrap()])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "abslock: lock file {} is neither a regular file nor a directory",
            fifo.display()
        )
    );
    assert!(!ran.exists(), "the command ran");
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&kind),
        "the FIFO was replaced"
    );
}
