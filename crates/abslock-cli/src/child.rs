//! Running the command under supervision, for every backend: the kernel
//! SIGKILLs it if abslock dies (`PR_SET_PDEATHSIG`), and the signals sent to
//! abslock are passed on to it.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;

use crate::exit::{self, Failure};

/// The signals a supervising abslock passes on to its command.
const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// Runs `command` as abslock's child and returns how it ended. `prepare`
/// adjusts the `Command` before the spawn (descriptors, environment);
/// `started` gets the child's pid once it runs.
pub fn supervise(
    command: &[OsString],
    prepare: impl FnOnce(&mut Command),
    started: impl FnOnce(u32),
) -> Result<ExitStatus, Failure> {
    // Registered before the spawn so that no signal can end abslock between
    // the spawn and the forwarding; early ones wait in the queue.
    let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED)
        .map_err(|e| Failure::new(exit::OSERR, format!("installing signal handlers: {e}")))?;
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    prepare(&mut cmd);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: runs between fork and exec and calls only prctl, getppid and
    // raise, which are async-signal-safe; it touches no shared state.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // abslock died before prctl took effect: follow it now.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| cannot_execute(&command[0], &e))?;
    drop(cmd);
    let child_pid = child.id() as libc::pid_t;
    started(child.id());
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for origin in signals.forever() {
            // A terminal's ^C or ^\ (sent by the kernel to the whole
            // foreground process group) already reached the command.
            if origin.cause == Cause::Kernel {
                continue;
            }
            // SAFETY: kill(2) has no memory-safety preconditions. The pid
            // cannot be reused while we have not reaped the child.
            unsafe { libc::kill(child_pid, origin.signal) };
        }
    });
    let status = child.wait();
    handle.close();
    let _ = forwarder.join();
    status.map_err(|e| Failure::new(exit::OSERR, format!("waiting for the command: {e}")))
}

/// A pidfd for our child `pid`, for signalling it later without the risk
/// of hitting a recycled pid once it has been reaped.
pub fn pidfd(pid: u32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

/// The failure for a command that could not be started.
pub fn cannot_execute(program: &OsString, err: &std::io::Error) -> Failure {
    Failure::new(
        exit::UNAVAILABLE,
        format!(
            "cannot execute '{}': {err}",
            abslock::escape::escape(std::os::unix::ffi::OsStrExt::as_bytes(program.as_os_str()))
        ),
    )
}
