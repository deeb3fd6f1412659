//! Library cost of one uncontended acquire + release, against the raw
//! system calls (the floor) and what people use today. `scripts/bench.sh`
//! runs it and turns criterion's estimates into BENCHMARKS.md.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use abslock::FileLock;
use abslock::Lock;
use criterion::{criterion_group, criterion_main, Criterion};
use rustix::fs::{flock, FlockOperation, Mode, OFlags};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("abslock-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn acquire_release(c: &mut Criterion) {
    let dir = dir();
    let pid = std::process::id();
    let mut group = c.benchmark_group("acquire_release");

    // The floor: what any abstract-socket lock must do at least.
    let address = format!("abslock-bench/{pid}/raw");
    let addr = SocketAddrUnix::new_abstract_name(address.as_bytes()).expect("address");
    group.bench_function("raw_syscalls", |b| {
        b.iter(|| {
            let fd = rustix::net::socket_with(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                None,
            )
            .expect("socket");
            rustix::net::bind(&fd, &addr).expect("bind");
            rustix::net::listen(&fd, 4096).expect("listen");
            drop(fd);
        })
    });

    let lock = Lock::user(format!("bench/{pid}/served")).expect("name");
    group.bench_function("abslock", |b| {
        b.iter(|| drop(lock.try_acquire().expect("free")))
    });
    let unserved = Lock::user(format!("bench/{pid}/unserved"))
        .expect("name")
        .serving(false);
    group.bench_function("abslock_unserved", |b| {
        b.iter(|| drop(unserved.try_acquire().expect("free")))
    });

    let flock_path = dir.join("flock.lock");
    group.bench_function("flock_open_close", |b| {
        b.iter(|| {
            let fd = rustix::fs::open(
                &flock_path,
                OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .expect("open");
            flock(&fd, FlockOperation::NonBlockingLockExclusive).expect("flock");
            drop(fd);
        })
    });

    let file_lock = FileLock::new(dir.join("abslock-file.lock"));
    group.bench_function("abslock_file", |b| {
        b.iter(|| drop(file_lock.try_acquire().expect("free")))
    });

    let fd_lock_path = dir.join("fd-lock.lock");
    group.bench_function("fd_lock", |b| {
        b.iter(|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&fd_lock_path)
                .expect("open");
            let mut lock = fd_lock::RwLock::new(file);
            drop(lock.try_write().expect("free"));
        })
    });

    let fslock_path = dir.join("fslock.lock");
    group.bench_function("fslock", |b| {
        b.iter(|| {
            let mut lock = fslock::LockFile::open(&fslock_path).expect("open");
            assert!(lock.try_lock().expect("lock"));
            lock.unlock().expect("unlock");
        })
    });

    let instance_name = format!("abslock-bench-{pid}-single-instance");
    group.bench_function("single_instance", |b| {
        b.iter(|| {
            let instance = single_instance::SingleInstance::new(&instance_name).expect("new");
            assert!(instance.is_single());
            drop(instance);
        })
    });

    // A correct PID-file protocol: exclusive create, write, close; unlink
    // on release.
    let pid_path = dir.join("app.pid");
    group.bench_function("pid_file", |b| {
        b.iter(|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC)
                .open(&pid_path)
                .expect("create");
            writeln!(f, "{pid}").expect("write");
            drop(f);
            std::fs::remove_file(&pid_path).expect("unlink");
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, acquire_release);
criterion_main!(benches);
