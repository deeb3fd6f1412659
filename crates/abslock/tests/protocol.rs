//! The wire protocol between real processes: info, messages with replies,
//! stop, credential checks, and a holder that keeps serving under bad input.

mod common;

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::os::unix::process::CommandExt;
use std::time::{Duration, SystemTime};

use abslock::__private::protocol::{Message, Request, Response, HEADER_LEN, MAX_FRAME};
use abslock::{Error, Lock, LockName};
use common::{arg, is_root, serial, spawn, spawn_with, unique, Helper};

#[test]
#[ignore = "entry point of helper processes, run by the other tests"]
fn helper() {
    common::helper_main();
}

const WAIT: Duration = Duration::from_secs(5);

fn me() -> u32 {
    rustix::process::getuid().as_raw()
}

/// A helper serving `name` in `mode` (see the "serve" role).
fn server(name: &LockName, mode: &str) -> (Helper, u32) {
    let mut helper = spawn("serve", &[arg(name), mode]);
    let pid = helper.expect("ready").parse().unwrap();
    (helper, pid)
}

fn connect(name: &LockName) -> UnixStream {
    let addr = SocketAddr::from_abstract_name(name.address()).unwrap();
    let conn = UnixStream::connect_addr(&addr).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn
}

/// Reads the holder's one answer on `conn`, or `None` if it just closed.
fn answer(conn: &mut UnixStream) -> Option<Response> {
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).unwrap();
    if bytes.is_empty() {
        return None;
    }
    Some(Response::decode(&bytes[HEADER_LEN..]).unwrap())
}

fn metadata(info: &abslock::Info, key: &str) -> Option<String> {
    info.metadata
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

#[test]
fn info_reports_the_holder() {
    let _s = serial();
    let name = unique("info");
    let before = SystemTime::now();
    let (_holder, pid) = server(&name, "requests");
    let info = Lock::new(name.clone()).info(WAIT).unwrap();
    assert_eq!(info.pid, pid);
    assert_eq!(info.uid, me());
    assert_eq!(info.name, name.address());
    assert_eq!(info.version, "9.9.9");
    assert_eq!(metadata(&info, "k").as_deref(), Some("v"));
    let acquired = info.acquired();
    assert!(
        acquired >= before - Duration::from_millis(1),
        "{acquired:?}"
    );
    assert!(acquired <= SystemTime::now(), "{acquired:?}");
}

#[test]
fn a_message_carries_raw_argv_and_gets_the_reply() {
    let _s = serial();
    let name = unique("message");
    let (mut holder, _) = server(&name, "requests");
    let message = Message {
        argv: vec![b"app".to_vec(), vec![0xff, 0xfe, 0], b"--flag".to_vec()],
        cwd: b"/no/such/\xffdir".to_vec(),
        payload: (0..=255).collect(),
    };
    let reply = Lock::new(name).send(&message, WAIT).unwrap();
    assert_eq!(holder.expect("message"), me().to_string());
    // The helper answers with its argv count and the message it decoded.
    assert_eq!(reply.status, 3);
    assert_eq!(
        Request::decode(&reply.payload[HEADER_LEN..]).unwrap(),
        Request::Message(message)
    );
}

#[test]
fn a_stop_request_releases_the_lock() {
    let _s = serial();
    let name = unique("stop");
    let (mut holder, _) = server(&name, "requests");
    let lock = Lock::new(name);
    lock.request_stop(WAIT).unwrap();
    assert_eq!(holder.expect("stop"), me().to_string());
    assert!(lock.wait_released(Some(WAIT)).unwrap());
    assert!(holder.wait().success());
}

#[test]
fn without_serving_only_info_is_answered() {
    let _s = serial();
    let name = unique("plain");
    let (_holder, pid) = server(&name, "plain");
    let lock = Lock::new(name);
    assert!(matches!(
        lock.send(&Message::default(), WAIT),
        Err(Error::NotServing)
    ));
    assert!(matches!(lock.request_stop(WAIT), Err(Error::NotServing)));
    assert_eq!(lock.info(WAIT).unwrap().pid, pid);
    assert_eq!(lock.holder().unwrap().unwrap().pid(), Some(pid));
}

#[test]
fn a_holder_that_does_not_answer_is_reported_not_killed() {
    let _s = serial();
    let name = unique("mute");
    let (mut holder, pid) = server(&name, "exec");
    let waited = Duration::from_millis(300);
    match Lock::new(name.clone()).send(&Message::default(), waited) {
        Err(Error::Unresponsive { holder, waited: w }) => {
            assert_eq!(holder.pid(), Some(pid));
            assert_eq!(w, waited);
        }
        other => panic!("expected Unresponsive, got {other:?}"),
    }
    assert!(
        holder.child.try_wait().unwrap().is_none(),
        "holder was hurt"
    );
    assert!(Lock::new(name).holder().unwrap().is_some());
}

#[test]
fn a_message_dropped_during_shutdown_answers_shutting_down() {
    let _s = serial();
    let name = unique("shutdown");
    let (mut holder, _) = server(&name, "requests");
    let lock = Lock::new(name);
    let message = Message {
        payload: b"drop-during-shutdown".to_vec(),
        ..Message::default()
    };
    assert!(matches!(
        lock.send(&message, WAIT),
        Err(Error::ShuttingDown)
    ));
    holder.expect("released");
    // "Shutting down" means: the lock is free, or about to be.
    assert!(lock.wait_released(Some(WAIT)).unwrap());
    assert!(lock.try_acquire().is_ok());
}

#[test]
fn other_uids_are_refused_and_logged() {
    let _s = serial();
    if !is_root() {
        eprintln!("skipped: needs root to run a client as another uid");
        return;
    }
    // A raw name: per-user names differ between uids.
    let raw = format!("@abslock-test/{}/refuse", std::process::id());
    let (mut holder, _) = {
        let mut h = spawn("serve", &[&raw, "requests"]);
        let pid: u32 = h.expect("ready").parse().unwrap();
        (h, pid)
    };
    // The client runs as nobody, as a helper in the "client" role.
    let mut client = spawn_with("client", &[&raw], |c| {
        c.uid(65534);
    });
    let result = client.expect("result");
    assert!(
        result.contains("uid 65534 may not send a message"),
        "{result}"
    );
    let (_, line) = holder.lines_until("rejected");
    assert!(line.contains("uid 65534 may not send a message"), "{line}");
    let info = Lock::new(LockName::parse(&raw, false).unwrap())
        .info(WAIT)
        .unwrap();
    assert_eq!(metadata(&info, "messages").as_deref(), Some("0"));
}

#[test]
fn a_squatter_is_not_sent_our_arguments() {
    let _s = serial();
    if !is_root() {
        eprintln!("skipped: needs root to run a holder as another uid");
        return;
    }
    let raw = format!("@abslock-test/{}/squat", std::process::id());
    // The squatter serves anyone and counts what it receives.
    let mut squatter = spawn_with("serve", &[&raw, "anyone"], |c| {
        c.uid(65534);
    });
    squatter.expect("ready");
    let lock = Lock::new(LockName::parse(&raw, false).unwrap());
    let secret = Message {
        argv: vec![b"--password=hunter2".to_vec()],
        ..Message::default()
    };
    match lock.send(&secret, WAIT) {
        Err(Error::Squatted(h)) => assert_eq!(h.uid(), Some(65534)),
        other => panic!("expected Squatted, got {other:?}"),
    }
    assert!(matches!(lock.request_stop(WAIT), Err(Error::Squatted(_))));
    let info = lock.info(WAIT).unwrap();
    assert_eq!(metadata(&info, "messages").as_deref(), Some("0"));
}

#[test]
fn bad_input_is_turned_away_one_line_each_while_the_lock_is_kept() {
    let _s = serial();
    let name = unique("bad-input");
    let (mut holder, pid) = server(&name, "requests");
    let lock = Lock::new(name.clone());
    // A waiter-like client that connects and never writes stays connected
    // through all of this without disturbing anyone.
    let idle = connect(&name);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            [&100u32.to_be_bytes()[..], b"0123456789"].concat(),
            "truncated",
        ),
        ("oversized", u32::MAX.to_be_bytes().to_vec(), "exceeds"),
        ("empty", 0u32.to_be_bytes().to_vec(), "empty frame"),
        (
            "garbage",
            [&5u32.to_be_bytes()[..], b"hello"].concat(),
            "version 104",
        ),
        (
            "unknown kind",
            [&2u32.to_be_bytes()[..], &[1, 0x55]].concat(),
            "unknown request kind",
        ),
    ];
    for (what, bytes, why) in &cases {
        let mut conn = connect(&name);
        conn.write_all(bytes).unwrap();
        if *what == "truncated" {
            conn.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let (before, line) = holder.lines_until("rejected");
        assert!(before.is_empty(), "{what}: {before:?}");
        assert!(line.contains(why), "{what}: {line}");
        if *what != "truncated" {
            match answer(&mut conn) {
                Some(Response::Invalid(reason)) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{what}: expected Invalid, got {other:?}"),
            }
        }
    }

    // A flood is cut off after one frame's worth of bytes.
    let mut flood = connect(&name);
    flood
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    flood.write_all(&(MAX_FRAME as u32).to_be_bytes()).unwrap();
    let chunk = vec![0x01u8; 64 * 1024];
    let mut sent = 0usize;
    while flood.write_all(&chunk).is_ok() {
        sent += chunk.len();
        // The socket buffers take a few hundred KiB; a holder that kept
        // reading would take all of it.
        assert!(sent < 4 * 1024 * 1024, "holder kept reading the flood");
    }
    let (before, line) = holder.lines_until("rejected");
    assert!(before.is_empty(), "{before:?}");
    assert!(line.contains("announces 16843009 bytes"), "{line}");

    // A client that starts a request and stalls is cut off after the read
    // timeout, without holding anyone else up meanwhile.
    let mut slow = connect(&name);
    slow.write_all(&[0, 0]).unwrap();
    assert_eq!(lock.info(WAIT).unwrap().pid, pid);
    let (before, line) = holder.lines_until("rejected");
    assert!(before.is_empty(), "{before:?}");
    assert!(line.contains("not a whole request"), "{line}");

    // Through all of it: the same holder, still serving messages, and the
    // idle client still connected (no hang-up: it would read EOF).
    let reply = lock.send(&Message::default(), WAIT).unwrap();
    assert_eq!(reply.status, 0);
    let (before, _) = holder.lines_until("message");
    assert!(
        before.is_empty(),
        "one line per client, got extra: {before:?}"
    );
    assert_eq!(lock.holder().unwrap().unwrap().pid(), Some(pid));
    idle.set_nonblocking(true).unwrap();
    let err = (&idle).read(&mut [0u8; 1]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert!(sent >= MAX_FRAME, "the flood did not even fill one frame");
}

#[test]
fn a_thousand_clients_at_once_are_all_answered() {
    let _s = serial();
    let clients = 1000;
    raise_nofile(clients as u64 + 200);
    let name = unique("thousand");
    let (_holder, pid) = server(&name, "requests");
    let request = Request::Info.encode().unwrap();
    let mut conns: Vec<UnixStream> = (0..clients).map(|_| connect(&name)).collect();
    for conn in &mut conns {
        conn.write_all(&request).unwrap();
    }
    for (i, conn) in conns.iter_mut().enumerate() {
        match answer(conn) {
            Some(Response::Info(info)) => assert_eq!(info.pid, pid, "client {i}"),
            other => panic!("client {i}: {other:?}"),
        }
    }
    assert_eq!(Lock::new(name).info(WAIT).unwrap().pid, pid);
}

fn raise_nofile(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(hard >= want, "RLIMIT_NOFILE hard limit {hard} < {want}");
    if limit.current.is_some_and(|c| c < want) {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: limit.maximum,
            },
        )
        .unwrap();
    }
}

#[cfg(feature = "tokio")]
#[test]
fn requests_arrive_on_a_tokio_channel() {
    let _s = serial();
    let name = unique("tokio");
    let guard = Lock::new(name.clone()).try_acquire().unwrap();
    let mut rx = guard.requests_async();
    let client = std::thread::spawn(move || {
        let message = Message {
            argv: vec![b"x".to_vec()],
            ..Message::default()
        };
        Lock::new(name).send(&message, WAIT)
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let incoming = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        let abslock::Incoming::Message(m) = incoming else {
            panic!("expected a message, got {incoming:?}")
        };
        assert_eq!(m.message().argv, vec![b"x".to_vec()]);
        m.reply(7, b"async").unwrap();
    });
    let reply = client.join().unwrap().unwrap();
    assert_eq!((reply.status, &reply.payload[..]), (7, &b"async"[..]));
}

#[test]
fn an_unserved_guard_answers_nothing_but_its_release_is_still_seen() {
    let _s = serial();
    let name = unique("unserved");
    let lock = Lock::new(name.clone()).serving(false);
    let guard = lock.try_acquire().unwrap();
    assert!(matches!(
        lock.info(Duration::from_millis(200)),
        Err(Error::Unresponsive { .. })
    ));
    let waiter = std::thread::spawn(move || Lock::new(name).wait_released(Some(WAIT)));
    std::thread::sleep(Duration::from_millis(50));
    drop(guard);
    assert!(waiter.join().unwrap().unwrap());
}
