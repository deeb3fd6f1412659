//! The contract of `abslock::Backend`, one suite run against all five
//! backends: the abstract socket name, the flock(2) lock file, the
//! combined mode, etcd and PostgreSQL (real servers, secured as in
//! production: TLS, client certificates, passwords, a non-root etcd user).
//!
//! The lock is taken and inspected here through `&dyn Backend`, exactly as
//! the `abslock` command does for every backend; the other holder is a
//! real `abslock run` process, killed with real signals. Every backend
//! must:
//!
//! 1. be free before anyone takes it, and free again once its guard is
//!    released;
//! 2. have one holder at a time: a second `try_acquire`, even from the
//!    holding process, gets `Error::Held` naming the holder's pid;
//! 3. give up a timed `acquire` with `Error::Timeout` naming the holder,
//!    not before the time is up; a timed `wait_released` returns false;
//! 4. be free as soon as the holder releases it, and wake a waiter;
//! 5. be free after the holder is SIGKILLed, at once for a local lock,
//!    within the lease (etcd) or connection (PostgreSQL) bound for a
//!    cluster one, and hand it to the waiter then;
//! 6. where it hands out fencing tokens (etcd), give every later holder a
//!    greater one.

mod common;
#[cfg(any(feature = "etcd", feature = "postgres"))]
mod servers;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use abslock::CombinedLock;
use abslock::FileLock;
use abslock::{Backend, Error, Holder, Lock, LockName};
use common::{eventually_within, sigkill};

/// One backend under test.
struct Subject {
    /// The lock as this process sees it.
    lock: Box<dyn Backend>,
    /// `abslock run ARGS -- COMMAND` takes the same lock in another process.
    args: Vec<String>,
    /// The environment that process needs (credentials).
    env: Vec<(String, String)>,
    /// How long the lock may stay taken after its holder is SIGKILLed.
    after_sigkill: Duration,
    /// Whether the backend hands out fencing tokens.
    fencing: bool,
}

/// The pid that holds the lock, local or on a cluster engine.
fn pid_of(holder: &Holder) -> Option<u32> {
    holder.as_remote().map(|r| r.pid).or(holder.pid())
}

/// `abslock run ARGS -- cat`: holds the lock until its stdin closes (a
/// clean release) or it is killed. Returns once the lock names it.
fn holder_process(s: &Subject) -> Child {
    let child = Command::new(common::bin())
        .arg("run")
        .args(&s.args)
        .args(["--", "cat"])
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    eventually_within(
        &format!("{} to be held by pid {pid}", s.lock),
        Duration::from_secs(20),
        || {
            s.lock
                .holder()
                .unwrap()
                .is_some_and(|h| pid_of(&h) == Some(pid))
        },
    );
    child
}

fn contract(s: &Subject) {
    let me = std::process::id();
    let what = s.lock.to_string();

    // 1, 2: free; ours alone while we hold it; free after the release.
    assert!(
        s.lock.holder().unwrap().is_none(),
        "{what}: not free at first"
    );
    let guard = s.lock.try_acquire().unwrap();
    let first_token = guard.fencing_token();
    assert_eq!(first_token.is_some(), s.fencing, "{what}: fencing token");
    match s.lock.try_acquire() {
        Err(Error::Held(h)) => assert_eq!(pid_of(&h), Some(me), "{what}: {h}"),
        other => panic!("{what}: a second try_acquire gave {other:?}"),
    }
    let holder = s.lock.holder().unwrap().expect("held");
    assert_eq!(pid_of(&holder), Some(me), "{what}");
    guard.release_and_list_keepers().unwrap();
    assert!(
        s.lock.holder().unwrap().is_none(),
        "{what}: held after release"
    );

    // 2, 3: another process holds it.
    let mut other = holder_process(s);
    let pid = other.id();
    match s.lock.try_acquire() {
        Err(Error::Held(h)) => assert_eq!(pid_of(&h), Some(pid), "{what}: {h}"),
        other => panic!("{what}: try_acquire while held gave {other:?}"),
    }
    let start = Instant::now();
    match s.lock.acquire(Some(Duration::from_millis(300))) {
        Err(Error::Timeout(Some(h))) => assert_eq!(pid_of(&h), Some(pid), "{what}: {h}"),
        other => panic!("{what}: a timed acquire gave {other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_millis(300), "{what}");
    assert!(
        !s.lock
            .wait_released(Some(Duration::from_millis(200)))
            .unwrap(),
        "{what}: wait_released while held"
    );

    // 4: the holder releases (its command ends); a waiter sees it.
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| s.lock.wait_released(Some(Duration::from_secs(20))));
        std::thread::sleep(Duration::from_millis(100));
        drop(other.stdin.take());
        assert!(other.wait().unwrap().success(), "{what}: holder failed");
        assert!(waiter.join().unwrap().unwrap(), "{what}: waiter timed out");
    });
    let guard = s.lock.try_acquire().unwrap();
    let second_token = guard.fencing_token();
    drop(guard);

    // 5: the holder is SIGKILLed; the waiter gets the lock.
    let other = holder_process(s);
    let (taken, third_token) = std::thread::scope(|scope| {
        let bound = s.after_sigkill + Duration::from_secs(20);
        let waiter = scope.spawn(move || {
            let guard = s.lock.acquire(Some(bound))?;
            Ok::<_, Error>((Instant::now(), guard.fencing_token()))
        });
        std::thread::sleep(Duration::from_millis(200));
        let killed = Instant::now();
        sigkill(&other);
        let (at, token) = waiter
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: the waiter got {e}"));
        assert!(at >= killed, "{what}: taken before the holder died");
        (at - killed, token)
    });
    drop(other);
    assert!(
        taken <= s.after_sigkill,
        "{what}: taken {taken:?} after SIGKILL, bound {:?}",
        s.after_sigkill
    );
    eprintln!("measured: {what}: taken {taken:?} after SIGKILL of the holder");

    // 6: fencing tokens only grow.
    if s.fencing {
        assert!(first_token < second_token, "{what}: tokens must grow");
        assert!(second_token < third_token, "{what}: tokens must grow");
    }
    assert!(
        s.lock.wait_released(Some(Duration::from_secs(10))).unwrap(),
        "{what}: still held at the end"
    );
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("abslock-contract-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A raw `@name`: the command takes exactly this socket name, no
/// per-user runtime file besides.
fn raw_name(tag: &str) -> String {
    format!("@abslock-contract/{}/{tag}", std::process::id())
}

fn socket(name: &str) -> Lock {
    Lock::new(LockName::parse(name, false).unwrap())
}

const LOCAL_SIGKILL: Duration = Duration::from_secs(2);

#[test]
fn the_socket_backend_keeps_the_contract() {
    let name = raw_name("socket");
    contract(&Subject {
        lock: Box::new(socket(&name)),
        args: vec![name],
        env: Vec::new(),
        after_sigkill: LOCAL_SIGKILL,
        fencing: false,
    });
}

#[test]
fn the_file_backend_keeps_the_contract() {
    let path = scratch("file").join("job.lock");
    contract(&Subject {
        lock: Box::new(FileLock::new(&path)),
        args: vec![format!("file:{}", path.display())],
        env: Vec::new(),
        after_sigkill: LOCAL_SIGKILL,
        fencing: false,
    });
}

#[test]
fn the_combined_backend_keeps_the_contract() {
    let name = raw_name("combined");
    let path = scratch("combined").join("job.lock");
    contract(&Subject {
        lock: Box::new(CombinedLock::new(socket(&name), FileLock::new(&path))),
        args: vec!["--file".into(), path.display().to_string(), name],
        env: Vec::new(),
        after_sigkill: LOCAL_SIGKILL,
        fencing: false,
    });
}

/// etcd as Kubernetes runs it: TLS, client certificates, authentication,
/// and a user that may touch `abslock/` keys only. The holder process
/// reads its credentials from etcdctl's variables.
#[cfg(feature = "etcd")]
#[test]
fn the_etcd_backend_keeps_the_contract() {
    use servers::{enable_auth, Etcd, Server};
    const SECRET: &str = "contract-etcd-Secret-7";
    let Some(mut etcd) = Etcd::with_tls() else {
        return;
    };
    enable_auth(&etcd, SECRET);
    let env = [("ETCDCTL_USER", "app"), ("ETCDCTL_PASSWORD", SECRET)];
    etcd.probe_env = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let url = etcd.url();
    // Here the password is in the URL (this process's environment is
    // shared with the other tests).
    let own = url.replacen("etcds://", &format!("etcds://app:{SECRET}@"), 1);
    let lock = abslock_cluster::ClusterLock::from_url(&own, "contract").unwrap();
    assert!(!lock.to_string().contains(SECRET), "{lock}");
    contract(&Subject {
        lock: Box::new(lock),
        args: vec!["--backend".into(), url, "contract".into()],
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        // The lease's TTL (2 s), and a renewal period of slack.
        after_sigkill: Duration::from_secs(5),
        fencing: true,
    });
}

/// PostgreSQL as production runs it: TLS only (verify-full here), and a
/// scram-sha-256 password. The holder process reads it from PGPASSWORD.
#[cfg(feature = "postgres")]
#[test]
fn the_postgres_backend_keeps_the_contract() {
    use servers::Postgres;
    const SECRET: &str = "contract-pg-Secret-9";
    let Some(pg) = Postgres::with_tls(SECRET) else {
        return;
    };
    let ca = pg.tls.as_ref().unwrap().path("ca.pem");
    let url = |password: &str| {
        format!(
            "postgres://app{password}@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={ca}",
            pg.port
        )
    };
    let lock =
        abslock_cluster::ClusterLock::from_url(&url(&format!(":{SECRET}")), "contract").unwrap();
    assert!(!lock.to_string().contains(SECRET), "{lock}");
    contract(&Subject {
        lock: Box::new(lock),
        args: vec!["--backend".into(), url(""), "contract".into()],
        env: vec![("PGPASSWORD".into(), SECRET.into())],
        // The server sees the connection close when the holder dies.
        after_sigkill: Duration::from_secs(2),
        fencing: false,
    });
}
