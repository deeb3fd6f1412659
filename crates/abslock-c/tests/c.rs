//! libabslock from C: `tests/c/lockctl.c`, compiled by `cc` against
//! `include/abslock.h` and the shared library laid out as installed
//! (`libabslock.so` → `libabslock.so.0`, the soname), run as real
//! processes and killed with real signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use abslock::{exit, AnyLock, Backend, Named};

/// One test at a time: a fork() for a child copies every descriptor of
/// the process until the child execs, the lock a test holds included.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const CFLAGS: &[&str] = &[
    "-std=c99",
    "-D_POSIX_C_SOURCE=200809L",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
];

/// Where cargo put this test binary (`target/debug/deps`), and the
/// library beside it.
fn deps_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn built(file: &str) -> PathBuf {
    let deps = deps_dir();
    [deps.join(file), deps.parent().unwrap().join(file)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{file} not built beside {}", deps.display()))
}

/// Where the tests lay the library out as installed and build programs.
fn work_dir() -> PathBuf {
    deps_dir().parent().unwrap().join("abslock-c-tests")
}

/// Compiles `src` into `exe` with `compiler` and `flags` (the header on
/// the include path), then `link`.
fn build(compiler: &str, flags: &[&str], src: &Path, exe: &Path, link: &[&str]) {
    let out = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(include())
        .arg(src)
        .args(link)
        .arg("-o")
        .arg(exe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{compiler} {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`build`], linked against the shared library as installed (`lockctl`
/// lays it out).
fn build_shared(compiler: &str, flags: &[&str], src: &Path, exe: &Path) {
    let lib = path(&work_dir().join("lib"));
    let rpath = format!("-Wl,-rpath,{lib}");
    build(
        compiler,
        flags,
        src,
        exe,
        &["-L", &lib, "-labslock", &rpath],
    );
}

/// `lockctl` linked against the shared library, compiled once.
fn lockctl() -> &'static str {
    static BUILT: OnceLock<String> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = work_dir();
        let lib = dir.join("lib");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::copy(built("libabslock_c.so"), lib.join("libabslock.so.0")).unwrap();
        std::os::unix::fs::symlink("libabslock.so.0", lib.join("libabslock.so")).unwrap();
        let exe = dir.join("lockctl");
        build_shared("cc", CFLAGS, &source(), &exe);
        path(&exe)
    })
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/lockctl.c")
}

fn include() -> String {
    format!("{}/include", env!("CARGO_MANIFEST_DIR"))
}

fn name(tag: &str) -> String {
    format!("c-test/{}/{tag}", std::process::id())
}

fn run(args: &[&str]) -> Output {
    Command::new(lockctl()).args(args).output().unwrap()
}

/// What C's `abslock_holder` says of `name`: the pid, "0" if free.
fn holder_of(name: &str) -> String {
    let out = run(&["holder", name]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A C process holding a lock; SIGKILLed when dropped.
struct Holder {
    child: Child,
    pid: u32,
}

impl Holder {
    fn start(name: &str) -> Holder {
        let mut child = Command::new(lockctl())
            .args(["hold", name])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, format!("held {}\n", child.id()));
        let pid = child.id();
        Holder { child, pid }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn a_second_c_program_is_refused_and_told_who_holds() {
    let _serial = serial();
    let name = name("refused");
    let holder = Holder::start(&name);

    let out = run(&["take", &name, "0"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CONFLICT)));
    let said = stderr(&out);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.starts_with("lock is held by") && said.contains(&holder.pid.to_string()),
        "{said}"
    );

    assert_eq!(holder_of(&name), holder.pid.to_string());
}

#[test]
fn a_timeout_runs_out_with_the_holder_named() {
    let _serial = serial();
    let name = name("timeout");
    let holder = Holder::start(&name);
    let started = Instant::now();
    let out = run(&["take", &name, "300"]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(out.status.code(), Some(i32::from(exit::CONFLICT)));
    let said = stderr(&out);
    assert!(
        said.starts_with("timed out") && said.contains(&holder.pid.to_string()),
        "{said}"
    );
}

#[test]
fn sigkill_of_the_holder_hands_the_lock_to_a_waiting_c_program() {
    let _serial = serial();
    let name = name("sigkill");
    let mut holder = Holder::start(&name);
    let waiter = Command::new(lockctl())
        .args(["take", &name, "20000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    holder.kill();
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    assert_eq!(holder_of(&name), "0");
}

#[test]
fn c_and_the_rust_library_take_one_and_the_same_lock() {
    let _serial = serial();
    let name = name("shared");
    let lock = AnyLock::named(&name, &Named::default()).unwrap();

    let guard = Backend::try_acquire(&lock).unwrap();
    let out = run(&["take", &name, "0"]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::CONFLICT)),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&std::process::id().to_string()));
    drop(guard);

    let holder = Holder::start(&name);
    let seen = Backend::holder(&lock)
        .unwrap()
        .expect("the C holder is seen");
    assert_eq!(seen.pid(), Some(holder.pid));
}

#[test]
fn a_lock_is_held_by_the_process_a_second_take_in_it_conflicts() {
    let _serial = serial();
    let child = Command::new(lockctl())
        .args(["twice", &name("twice")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.starts_with(&format!("1 lock is held by pid {pid} ")),
        "{said}"
    );
}

#[test]
fn a_fork_child_may_let_go_of_its_copy_and_the_parent_still_holds() {
    let _serial = serial();
    let out = run(&["fork", &name("fork")]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The parent takes it again at once after both let go; the child,
    // after releasing its copy, found it held (its code 0).
    assert_eq!(String::from_utf8_lossy(&out.stdout), "parent 0 child 0\n");
}

#[test]
fn a_handled_signal_ends_an_interruptible_wait_and_nothing_is_taken() {
    let _serial = serial();
    let name = name("interrupt");
    let holder = Holder::start(&name);
    let out = run(&["interrupt", &name]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::INTERRUPTED)),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("interrupted by a signal"));
    assert_eq!(holder_of(&name), holder.pid.to_string());
}

#[test]
fn bad_arguments_get_usage_and_one_line_each() {
    let _serial = serial();
    let out = run(&["null"]);
    assert!(out.status.success(), "a guard was written on failure");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let expected = [
        ("name", "the lock name is NULL"),
        ("guard", "the guard pointer is NULL"),
        ("pid", "the pid pointer is NULL"),
        ("flags", "unknown flags 0x100"),
        ("timeout", "timeout -2 ms"),
        ("holder-flags", "unknown flags 0x2"),
    ];
    assert_eq!(said.lines().count(), expected.len(), "{said}");
    for (line, (what, message)) in said.lines().zip(expected) {
        assert!(line.starts_with(&format!("{what} 64 {message}")), "{line}");
    }

    let out = run(&["take", "", "0"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE)));
    assert!(
        stderr(&out).starts_with("invalid lock name"),
        "{}",
        stderr(&out)
    );
}

/// C programmers run their programs under valgrind: it must neither fault
/// in the library (rustix's own vDSO lookup did, rustix issue 1559) nor
/// find a definite leak, on the taking, refusing and asking paths.
#[test]
fn valgrind_finds_nothing_wrong_in_a_c_program_using_the_library() {
    let _serial = serial();
    let name = name("valgrind");
    let holder = Holder::start(&name);
    let free = format!("{name}-free");
    for (args, code) in [
        (vec!["take", &name, "0"], exit::CONFLICT),
        (vec!["take", &name, "200"], exit::CONFLICT),
        (vec!["holder", &name], exit::OK),
        (vec!["take", &free, "0"], exit::OK),
    ] {
        let out = Command::new("valgrind")
            .args([
                "-q",
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
                lockctl(),
            ])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(i32::from(code)),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    drop(holder);
}

#[test]
fn the_header_says_the_librarys_codes_and_version() {
    let out = run(&["codes"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let expected = [
        ("OK", exit::OK),
        ("CONFLICT", exit::CONFLICT),
        ("SQUATTED", exit::SQUATTED),
        ("USAGE", exit::USAGE),
        ("NOINPUT", exit::NOINPUT),
        ("UNAVAILABLE", exit::UNAVAILABLE),
        ("OSERR", exit::OSERR),
        ("CANTCREAT", exit::CANTCREAT),
        ("TEMPFAIL", exit::TEMPFAIL),
        ("PROTOCOL", exit::PROTOCOL),
        ("NOPERM", exit::NOPERM),
        ("INTERRUPTED", exit::INTERRUPTED),
    ]
    .map(|(what, code)| format!("ABSLOCK_{what}={code}\n"))
    .concat();
    assert_eq!(
        said,
        format!("{expected}version={}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_cpp_program_links_against_the_header_unmangled() {
    lockctl(); // the library laid out as installed
    let (src, exe) = (
        work_dir().join("version.cpp"),
        work_dir().join("version-cpp"),
    );
    std::fs::write(
        &src,
        "#include <abslock.h>\n#include <cstdio>\n\
         int main() { abslock_guard *g = nullptr; (void)g; std::puts(abslock_version()); }\n",
    )
    .unwrap();
    let flags = ["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"];
    build_shared("c++", &flags, &src, &exe);
    let out = Command::new(&exe).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_readmes_c_example_compiles_and_runs() {
    let _serial = serial();
    lockctl(); // the library laid out as installed
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let code = readme
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```c block in the README");
    let (src, exe) = (work_dir().join("readme.c"), work_dir().join("readme"));
    std::fs::write(&src, code).unwrap();
    build_shared("cc", CFLAGS, &src, &exe);
    // Its name is free here: it runs and exits 0; held, it exits 1.
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let holder = Holder::start("my-daemon");
    let out = Command::new(&exe).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!(
            "already running: lock is held by pid {}",
            holder.pid
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_static_library_links_alone() {
    lockctl(); // the directory
    let exe = work_dir().join("lockctl-static");
    // The system libraries Rust's std needs, as abslock.pc's Libs.private
    // lists them (scripts/install-c.sh).
    let archive = path(&built("libabslock_c.a"));
    let system: Vec<&str> = include_str!("../static-libs").split_whitespace().collect();
    build(
        "cc",
        CFLAGS,
        &source(),
        &exe,
        &[&[&archive[..]], &system[..]].concat(),
    );
    let out = Command::new(&exe)
        .arg("holder")
        .arg(name("static"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
}
