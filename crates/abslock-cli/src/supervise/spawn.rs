//! Starting the command as `posix_spawn(3)` does, plus the two things
//! `posix_spawn` cannot do: `PR_SET_PDEATHSIG` and descriptors kept across
//! `exec`.
//!
//! `std::process::Command` needs a `pre_exec` hook for those, and a hook
//! makes it `fork(2)`: the kernel then copies abslock's page tables, both
//! processes take copy-on-write faults, and the child's `exec` tears the
//! copy down again. That was most of what `abslock run -n NAME true` cost
//! beyond `flock -n` (BENCHMARKS.md). Here the child is a
//! `clone(CLONE_VM | CLONE_VFORK)`, as in glibc's `posix_spawn`: it runs on
//! our memory, on a stack of its own, while the calling thread is
//! suspended until it has called `execve(2)` or exited, and it makes only
//! raw system calls on data prepared before the clone.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};

/// What to run: the program, its arguments, the environment it gets on top
/// of ours, and the descriptors it keeps.
#[derive(Debug)]
pub struct Spawn {
    program: OsString,
    argv: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    keep: Vec<RawFd>,
}

impl Spawn {
    /// `command[0]`, looked up in `PATH` unless it has a `/`, run with
    /// `command` as its arguments.
    pub fn new(program: impl Into<OsString>, argv: Vec<OsString>) -> Spawn {
        Spawn {
            program: program.into(),
            argv,
            env: Vec::new(),
            keep: Vec::new(),
        }
    }

    /// Sets `key` in the command's environment.
    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Spawn {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Lets the command inherit `fd` at the same number (close-on-exec is
    /// cleared in the child only). The caller keeps it open until
    /// [`Spawn::spawn`] has returned.
    pub fn keep(&mut self, fd: BorrowedFd<'_>) -> &mut Spawn {
        self.keep.push(fd.as_raw_fd());
        self
    }

    /// Lets the command inherit `guard`'s lock, as
    /// [`AnyGuard::pass_to`](abslock::AnyGuard::pass_to) does for a
    /// `Command`: its descriptors kept, the first one named in
    /// [`abslock::FD_ENV`].
    pub fn pass(&mut self, guard: &abslock::AnyGuard) -> &mut Spawn {
        let fds = guard.inherited_fds();
        if let Some(first) = fds.first() {
            self.env(abslock::FD_ENV, first.as_raw_fd().to_string());
        }
        for fd in fds {
            self.keep(fd);
        }
        self
    }

    /// Starts the command with an empty signal mask, SIGPIPE and every
    /// caught signal at their defaults, and `PR_SET_PDEATHSIG` SIGKILL: it
    /// dies with abslock. Returns its pid once it has called `execve`.
    ///
    /// # Errors
    /// Why no candidate path could be executed (as `execvp(3)`: the first
    /// error other than `ENOENT`/`ENOTDIR`, else `ENOENT`), or why the
    /// clone failed.
    pub fn spawn(&self) -> io::Result<u32> {
        let plan = Plan::new(self)?;
        // Left uninitialised: only the pages the child touches are faulted in.
        let mut stack = Vec::<u8>::with_capacity(STACK);
        // The stack grows down: start at the top, 16-byte aligned.
        let top = stack.as_mut_ptr().wrapping_add(STACK);
        let top = top.wrapping_sub(top as usize % 16);
        let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `child` runs on `stack`, which outlives the clone (the
        // caller is suspended until the child has exec'd or exited:
        // CLONE_VFORK), and reads only `plan`, which outlives it too.
        // Every signal is blocked around the clone so that no handler of
        // ours can run in the child on our memory; the child resets the
        // handlers before it unblocks. The masks are plain sigset_t values
        // filled by sigfillset and pthread_sigmask.
        let pid = unsafe {
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
            let pid = libc::clone(
                child,
                top.cast(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                std::ptr::from_ref(&plan).cast_mut().cast(),
            );
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut());
            if pid == -1 {
                return Err(clone_error);
            }
            pid
        };
        drop(stack);
        match plan.error.load(Ordering::Relaxed) {
            0 => Ok(pid.unsigned_abs()),
            errno => {
                let _ = wait(pid.unsigned_abs());
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }
}

/// Waits for our child `pid` and returns how it ended.
pub fn wait(pid: u32) -> io::Result<ExitStatus> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ECHILD))?;
    let mut status = 0;
    loop {
        // SAFETY: waitpid(2) writes one int, `status`, which we own.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != -1 {
            return Ok(ExitStatus::from_raw(status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The shell that runs a script without `#!`, as `execvp(3)` does.
const SH: &std::ffi::CStr = c"/bin/sh";
const SH_ARG0: &std::ffi::CStr = c"sh";

/// The child's stack: it makes a handful of system calls and nothing else.
const STACK: usize = 64 * 1024;

/// Everything the child reads, prepared before the clone: C strings and
/// null-terminated pointer arrays, so that it allocates nothing.
struct Plan {
    /// The paths to try, in order (one unless `PATH` is searched).
    paths: Vec<CString>,
    /// For each path, the argv that runs it with `/bin/sh` should it be a
    /// script without `#!` (`ENOEXEC`), as `execvp(3)` does.
    sh_argv_ptrs: Vec<Vec<*const libc::c_char>>,
    /// Owns the strings `argv_ptrs` points into.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `envp_ptrs` points into.
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    keep: Vec<RawFd>,
    parent: libc::pid_t,
    /// The child's errno if it could not exec; 0 if it did.
    error: AtomicI32,
}

impl Plan {
    fn new(spawn: &Spawn) -> io::Result<Plan> {
        let cstr = |s: &OsStr| {
            CString::new(s.as_bytes()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the command")
            })
        };
        let argv = spawn
            .argv
            .iter()
            .map(|a| cstr(a))
            .collect::<io::Result<Vec<_>>>()?;
        let mut envp = Vec::new();
        for (key, value) in std::env::vars_os() {
            if !spawn.env.iter().any(|(k, _)| *k == key) {
                envp.push(cstr(&join(&key, &value))?);
            }
        }
        for (key, value) in &spawn.env {
            envp.push(cstr(&join(key, value))?);
        }
        let paths = candidates(&spawn.program)
            .iter()
            .map(|p| cstr(p))
            .collect::<io::Result<Vec<_>>>()?;
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        let sh_argv_ptrs = paths
            .iter()
            .map(|path| {
                [SH_ARG0.as_ptr(), path.as_ptr()]
                    .into_iter()
                    .chain(argv.iter().skip(1).map(|a| a.as_ptr()))
                    .chain(std::iter::once(std::ptr::null()))
                    .collect()
            })
            .collect();
        Ok(Plan {
            sh_argv_ptrs,
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envp),
            paths,
            _argv: argv,
            _envp: envp,
            keep: spawn.keep.clone(),
            parent: libc::pid_t::try_from(std::process::id()).unwrap_or(0),
            error: AtomicI32::new(0),
        })
    }
}

fn join(key: &OsStr, value: &OsStr) -> OsString {
    let mut pair = key.to_os_string();
    pair.push("=");
    pair.push(value);
    pair
}

/// The paths `execvp(3)` would try for `program`: itself if it has a `/`,
/// else each `PATH` entry joined with it (an empty entry is the current
/// directory; no `PATH` is glibc's default).
fn candidates(program: &OsStr) -> Vec<OsString> {
    if program.as_bytes().contains(&b'/') {
        return vec![program.to_os_string()];
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| {
            let mut full = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            full.push(b'/');
            full.extend_from_slice(program.as_bytes());
            OsString::from_vec(full)
        })
        .collect()
}

/// The child, between the clone and `execve`: raw system calls only.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Plan` the parent passed, alive and unchanged
    // while the parent is suspended (CLONE_VFORK).
    let plan = unsafe { &*arg.cast::<Plan>() };
    // SAFETY: each call is a plain system call wrapper that glibc's own
    // posix_spawn child makes too (sigaction, prctl, getppid, kill, fcntl,
    // sigprocmask, execve, _exit); the arguments are valid C strings and
    // null-terminated arrays from `plan`, or values on this stack.
    unsafe {
        // A handler of ours must not run here, on the parent's memory: every
        // caught signal goes back to its default, SIGPIPE too (ignored by
        // abslock, not by the command). Other ignored signals stay ignored.
        for signal in 1..=libc::SIGRTMAX() {
            let mut action = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
            if libc::sigaction(signal, std::ptr::null(), action.as_mut_ptr()) != 0 {
                continue;
            }
            let handler = action.assume_init_ref().sa_sigaction;
            if handler != libc::SIG_DFL && (handler != libc::SIG_IGN || signal == libc::SIGPIPE) {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
            return fail(plan);
        }
        // abslock died before prctl took effect: follow it now.
        if libc::getppid() != plan.parent {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        for &fd in &plan.keep {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return fail(plan);
            }
        }
        let mut none = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), std::ptr::null_mut());
        let mut first = 0;
        for (path, sh_argv) in plan.paths.iter().zip(&plan.sh_argv_ptrs) {
            libc::execve(
                path.as_ptr(),
                plan.argv_ptrs.as_ptr(),
                plan.envp_ptrs.as_ptr(),
            );
            let mut errno = *libc::__errno_location();
            if errno == libc::ENOEXEC {
                libc::execve(SH.as_ptr(), sh_argv.as_ptr(), plan.envp_ptrs.as_ptr());
                errno = *libc::__errno_location();
            }
            // execvp: a missing entry lets the search go on; the first
            // other error is the one reported.
            if first == 0 && errno != libc::ENOENT && errno != libc::ENOTDIR {
                first = errno;
            }
            if errno != libc::ENOENT && errno != libc::ENOTDIR && errno != libc::EACCES {
                break;
            }
        }
        plan.error.store(
            if first == 0 { libc::ENOENT } else { first },
            Ordering::Relaxed,
        );
        libc::_exit(127)
    }
}

/// Records the child's errno for the parent and exits.
fn fail(plan: &Plan) -> libc::c_int {
    // SAFETY: __errno_location returns this thread's errno, always valid;
    // _exit ends the child without running anything of the parent's.
    unsafe {
        plan.error
            .store(*libc::__errno_location(), Ordering::Relaxed);
        libc::_exit(127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One spawning test at a time: a child cloned while another test has
    /// the script open for writing would make its exec fail (ETXTBSY).
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn a_program_without_a_slash_is_searched_in_path_in_order() {
        let found = candidates(OsStr::new("true"));
        assert!(found.len() > 1 || std::env::var_os("PATH").is_none());
        assert!(found.iter().all(|p| p.as_bytes().ends_with(b"/true")));
        assert_eq!(candidates(OsStr::new("./x")), vec![OsString::from("./x")]);
    }

    #[test]
    fn the_child_runs_with_our_environment_plus_its_own_and_its_exit_is_reported() {
        let _serial = SERIAL.lock().unwrap();
        let mut spawn = Spawn::new(
            "sh",
            vec![
                "sh".into(),
                "-c".into(),
                "test \"$ABSLOCK_SPAWN_TEST\" = yes && exit 7".into(),
            ],
        );
        spawn.env("ABSLOCK_SPAWN_TEST", "yes");
        let pid = spawn.spawn().unwrap();
        assert_eq!(wait(pid).unwrap().code(), Some(7));
    }

    #[test]
    fn a_script_without_a_shebang_runs_with_bin_sh_as_execvp_runs_it() {
        let _serial = SERIAL.lock().unwrap();
        let dir = std::env::temp_dir().join(format!("abslock-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("noshebang");
        std::fs::write(&script, "exit \"$1\"\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let pid = Spawn::new(&script, vec![script.clone().into(), "5".into()])
            .spawn()
            .unwrap();
        let status = wait(pid).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(status.code(), Some(5));
    }

    #[test]
    fn a_missing_program_is_enoent() {
        let error = Spawn::new("abslock-no-such-program", vec!["x".into()])
            .spawn()
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
