//! The library's guarantees, on real processes and real signals.

mod common;

use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use abslock::{Error, Lock, LockName, Signal, Source};
use common::{arg, eventually, spawn, unique};

#[test]
#[ignore = "entry point of helper processes, run by the other tests"]
fn helper() {
    common::helper_main();
}

fn me() -> u32 {
    rustix::process::getuid().as_raw()
}

#[test]
fn contention_reports_the_holder_pid_and_uid() {
    let _serial = common::serial();
    let name = unique("contention");
    let mut h = spawn("hold", &[arg(&name)]);
    let pid: u32 = h.expect("ready").parse().unwrap();
    assert_eq!(pid, h.pid());
    match Lock::new(name.clone()).try_acquire() {
        Err(Error::Held(holder)) => {
            assert_eq!(holder.pid(), Some(pid));
            assert_eq!(holder.uid(), Some(me()));
            assert_eq!(holder.gid(), Some(rustix::process::getgid().as_raw()));
            assert_eq!(holder.source(), Source::PeerCred);
            assert!(holder.pidfd().is_some());
            let procs = holder.processes().unwrap();
            assert_eq!(procs.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![pid]);
        }
        other => panic!("expected Held, got {other:?}"),
    }
    h.close_stdin();
    h.expect("released");
    Lock::new(name).try_acquire().unwrap();
}

#[test]
fn sigkill_of_the_holder_frees_the_name_immediately() {
    let _serial = common::serial();
    let name = unique("sigkill");
    let lock = Lock::new(name.clone());
    let mut h = spawn("hold", &[arg(&name)]);
    h.expect("ready");
    assert!(matches!(lock.try_acquire(), Err(Error::Held(_))));
    h.kill(libc::SIGKILL);
    let status = h.wait();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    // No sleep, no retry: the name is free as soon as the process is reaped.
    lock.try_acquire().expect("free right after SIGKILL");
}

#[test]
fn blocking_acquire_is_woken_by_release() {
    let _serial = common::serial();
    let name = unique("wake");
    let lock = Lock::new(name.clone());
    let mut h = spawn("hold", &[arg(&name)]);
    h.expect("ready");
    let waiter = std::thread::spawn(move || {
        lock.acquire_timeout(Duration::from_secs(30))
            .map(|g| g.name().clone())
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(!waiter.is_finished(), "acquired while held");
    // The helper releases and keeps running: the release, not the exit, wakes us.
    h.close_stdin();
    h.expect("released");
    assert_eq!(waiter.join().unwrap().unwrap(), name);
    assert!(
        h.child.try_wait().unwrap().is_none(),
        "helper should still run"
    );
}

#[test]
fn blocking_acquire_times_out_and_names_the_holder() {
    let _serial = common::serial();
    let name = unique("timeout");
    let mut h = spawn("hold", &[arg(&name)]);
    h.expect("ready");
    let start = Instant::now();
    match Lock::new(name).acquire_timeout(Duration::from_millis(200)) {
        Err(Error::Timeout(Some(holder))) => assert_eq!(holder.pid(), Some(h.pid())),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_millis(200));
}

#[test]
fn the_socket_does_not_leak_into_exec_unless_passed() {
    let _serial = common::serial();
    let name = unique("cloexec");
    let lock = Lock::new(name.clone());
    let guard = lock.try_acquire().unwrap();
    let mut plain = Command::new("sleep").arg("30").spawn().unwrap();
    let mut passed_cmd = Command::new("sleep");
    passed_cmd.arg("30");
    guard.pass_to(&mut passed_cmd);
    let mut passed = passed_cmd.spawn().unwrap();
    drop(passed_cmd);
    let pids: Vec<u32> = guard.processes().unwrap().iter().map(|p| p.pid).collect();
    assert!(pids.contains(&std::process::id()));
    assert!(
        pids.contains(&passed.id()),
        "{pids:?} lacks the passed child"
    );
    assert!(!pids.contains(&plain.id()), "{pids:?} has the plain child");
    drop(guard);
    // Still held, by the child it was passed to, and only by it.
    match lock.try_acquire() {
        Err(Error::Held(holder)) => {
            let pids: Vec<u32> = holder.processes().unwrap().iter().map(|p| p.pid).collect();
            assert_eq!(pids, vec![passed.id()]);
        }
        other => panic!("expected Held, got {other:?}"),
    }
    passed.kill().unwrap();
    passed.wait().unwrap();
    lock.try_acquire()
        .expect("free once the passed child is gone");
    plain.kill().unwrap();
    plain.wait().unwrap();
}

#[test]
fn a_forked_child_keeps_the_lock_after_its_parent_dies() {
    let _serial = common::serial();
    let name = unique("fork");
    let lock = Lock::new(name.clone());
    let mut h = spawn("any-fork-hold", &[&format!("socket:{}", arg(&name))]);
    let child: u32 = h.expect("child").parse().unwrap();
    assert!(h.wait().success());
    let holder = match lock.try_acquire() {
        Err(Error::Held(holder)) => holder,
        other => panic!("expected Held by the orphan, got {other:?}"),
    };
    // The listener's pid (SO_PEERCRED) is dead; abslock names the child.
    assert_eq!(holder.pid(), Some(child));
    assert!(!holder.pidfd_is_exact());
    let pids: Vec<u32> = holder.processes().unwrap().iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![child]);
    holder.signal(Signal::KILL).unwrap();
    assert!(holder.wait_released(Some(Duration::from_secs(10))).unwrap());
    lock.try_acquire().unwrap();
}

#[test]
fn signal_goes_through_the_pidfd_and_wait_released_sees_the_end() {
    let _serial = common::serial();
    let name = unique("signal");
    let mut h = spawn("hold", &[arg(&name)]);
    h.expect("ready");
    let holder = Lock::new(name.clone()).holder().unwrap().expect("held");
    assert!(
        holder.pidfd_is_exact(),
        "SO_PEERPIDFD should work on Linux 6.5+"
    );
    assert!(!holder
        .wait_released(Some(Duration::from_millis(50)))
        .unwrap());
    holder.signal(Signal::TERM).unwrap();
    assert!(holder.wait_released(Some(Duration::from_secs(10))).unwrap());
    let status = h.wait();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    assert!(holder.has_exited());
    assert!(Lock::new(name).holder().unwrap().is_none());
}

#[test]
fn racing_waiters_take_turns_one_at_a_time() {
    let _serial = common::serial();
    let name = unique("queue");
    let lock = Lock::new(name.clone());
    let guard = lock.try_acquire().unwrap();
    let dir = std::env::temp_dir().join(format!("abslock-queue-{}", std::process::id()));
    let log = dir.to_str().unwrap().to_string();
    let _ = std::fs::remove_file(&log);
    let n = 6;
    let mut waiters: Vec<_> = (0..n)
        .map(|_| spawn("queue", &[arg(&name), &log]))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    drop(guard);
    for w in &mut waiters {
        assert!(w.wait().success());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * n, "{text}");
    for pair in lines.chunks(2) {
        let (a, b) = (
            pair[0].strip_prefix("in ").unwrap(),
            pair[1].strip_prefix("out ").unwrap(),
        );
        assert_eq!(a, b, "interleaved critical sections:\n{text}");
    }
    std::fs::remove_file(&log).unwrap();
}

#[test]
fn a_raw_name_bound_without_listen_is_held_and_found_through_proc() {
    let _serial = common::serial();
    let address = format!("abslock-test-raw-{}", std::process::id());
    let name = LockName::raw(&address).unwrap();
    // A stream socket that is bound but never listens, as the classic
    // "\0name" single-instance snippets do.
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    rustix::net::bind(
        &sock,
        &rustix::net::SocketAddrUnix::new_abstract_name(address.as_bytes()).unwrap(),
    )
    .unwrap();
    let lock = Lock::new(name);
    match lock.try_acquire() {
        Err(Error::Held(holder)) => {
            assert_eq!(holder.source(), Source::Procfs);
            assert!(!holder.is_listening());
            assert_eq!(holder.pid(), Some(std::process::id()));
            assert_eq!(holder.uid(), Some(me()));
        }
        other => panic!("expected Held, got {other:?}"),
    }
    // Blocking acquire falls back to back-off polling and still succeeds.
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(sock);
    });
    lock.acquire_timeout(Duration::from_secs(10)).unwrap();
    closer.join().unwrap();
}

#[test]
fn the_guard_drains_its_backlog_so_queries_get_through() {
    let _serial = common::serial();
    let name = unique("backlog");
    let lock = Lock::new(name.clone()).backlog(2);
    let guard = lock.try_acquire().unwrap();
    // Many clients that connect and never leave: without draining, the
    // third would get EAGAIN and the holder could no longer be queried.
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let s = rustix::net::socket_with(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                rustix::net::SocketFlags::NONBLOCK,
                None,
            )
            .unwrap();
            let addr = rustix::net::SocketAddrUnix::new_abstract_name(name.address()).unwrap();
            eventually("a backlog slot", || rustix::net::connect(&s, &addr).is_ok());
            s
        })
        .collect();
    // A query connects and reads SO_PEERCRED once the drain thread has
    // caught up with the burst; without draining, the backlog would stay
    // full and every query would get EAGAIN (and fall back to /proc).
    eventually("a query through the socket", || {
        lock.holder().unwrap().expect("held").source() == Source::PeerCred
    });
    assert_eq!(
        lock.holder().unwrap().expect("held").pid(),
        Some(std::process::id())
    );
    // Releasing wakes every one of them with a hang-up.
    drop(guard);
    for c in &clients {
        let mut buf = [0u8; 1];
        let got = rustix::io::read(c.as_fd(), &mut buf);
        assert!(
            matches!(got, Ok(0) | Err(rustix::io::Errno::CONNRESET)),
            "{got:?}"
        );
    }
}

#[test]
fn squatting_by_another_uid_is_reported_as_such() {
    let _serial = common::serial();
    if !common::is_root() {
        eprintln!("skipped: needs root to run a helper as another uid");
        return;
    }
    let address = format!("abslock/system/test-squat-{}", std::process::id());
    // A process of uid 65534 takes the system-scope name first.
    let mut squatter = Command::new("python3")
        .args([
            "-c",
            "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(b'\\0'+sys.argv[1].encode())\ns.listen()\nprint('ready',flush=True)\ntime.sleep(60)",
            &address,
        ])
        .uid(65534)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(squatter.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    let name = LockName::system(address.strip_prefix("abslock/system/").unwrap()).unwrap();
    match Lock::new(name.clone()).try_acquire() {
        Err(Error::Squatted(holder)) => {
            assert_eq!(holder.uid(), Some(65534));
            assert_eq!(holder.pid(), Some(squatter.id()));
        }
        other => panic!("expected Squatted, got {other:?}"),
    }
    // Trusting that uid turns it into an ordinary Held.
    assert!(matches!(
        Lock::new(name).trust_uid(65534).try_acquire(),
        Err(Error::Held(_))
    ));
    squatter.kill().unwrap();
    squatter.wait().unwrap();
}

use std::os::unix::process::CommandExt;
