//! `abslock run`: hold the lock while a command runs.
//!
//! By default abslock stays the command's parent (it supervises): it
//! forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to it,
//! makes the kernel SIGKILL the command should abslock die
//! (`PR_SET_PDEATHSIG`), keeps the lock socket's backlog drained, and passes
//! the command a duplicate of the lock descriptor. That duplicate matters:
//! a dying process's files are closed before its children get the
//! parent-death signal, so without it a SIGKILLed abslock would free the
//! name while its command still runs.
//!
//! Every backend takes this one path. A cluster lock (`--backend URL`) is
//! abslock's own lease or connection: the command gets its fencing token
//! in `ABSLOCK_FENCING_TOKEN` instead of a descriptor, and SIGTERM if the
//! lock is lost while it runs (exit 5).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::{RunArgs, Verbosity};
use crate::exit::{self, Failure};
use crate::progress::Spinner;
use crate::report::describe_holder;
use crate::stop::replace;
use crate::supervise::child::{self, cannot_execute};
use crate::target::shared_if;
use abslock::__private::escape::escape;
use abslock::pidfile::PidFile;
use abslock::{AnyGuard, AnyLock, Backend, Error, Holder, FD_ENV};
use std::os::unix::ffi::OsStrExt;

/// `--replace` without `-w`: how long the holder has to go.
const REPLACE_WAIT: Duration = Duration::from_secs(10);

/// The environment variable that carries a cluster lock's fencing token to
/// the command.
pub const TOKEN_ENV: &str = "ABSLOCK_FENCING_TOKEN";

/// Runs `abslock run`.
pub fn run(args: RunArgs) -> Result<u8, Failure> {
    // The supervisor's loop serves the lock socket too: no serving thread.
    let server = abslock::own_loop().ok();
    let lock = shared_if(args.lock.lock()?, args.acquire.shared)?;
    if let AnyLock::Remote(_) = &lock {
        refuse_for_remote(&args)?;
    }
    let pidfile = open_pidfile(&args)?;
    if let AnyLock::File(file) = &lock {
        // Alone, a lock file is the user's choice: warn. Combined mode,
        // where the file must defeat squatters, refuses (exit 77).
        if let Some(why) = file.exposure()? {
            args.talk.warn(format_args!(
                "{lock}: {why}; another user could lock it first"
            ));
        }
    }
    if args.replace {
        replace(
            &lock,
            args.acquire.timeout.unwrap_or(REPLACE_WAIT),
            args.talk.verbose(),
        )?;
    }
    // After a replacement the lock is free; someone faster wins, and that
    // is a conflict like any other.
    let nonblock = args.acquire.nonblocking() || args.replace;
    // A conflict is said with -v; a wait that ended without the lock also
    // on a terminal (-n stays silent there, as flock -n does).
    let talk =
        args.talk.verbose() || (!nonblock && !args.talk.quiet && std::io::stderr().is_terminal());
    let start = Instant::now();
    let (guard, waited_for) = match acquire(&lock, nonblock, args.acquire.timeout, args.talk.quiet)
    {
        Ok(acquired) => acquired,
        Err(Error::Held(holder)) | Err(Error::Timeout(Some(holder))) => {
            if talk {
                let what = if nonblock { "is held" } else { "is still held" };
                eprintln!("abslock: {} {what} by {}", lock, describe_holder(&holder));
            }
            return Ok(args.acquire.conflict_exit_code);
        }
        Err(Error::Timeout(None)) => {
            if talk {
                eprintln!("abslock: timed out waiting for {}", lock);
            }
            return Ok(args.acquire.conflict_exit_code);
        }
        Err(e) => return Err(e.into()),
    };
    if let AnyGuard::Combined(g) = &guard {
        if let Some(squatter) = g.squatter() {
            args.talk.warn(format_args!(
                "the socket name of {lock} is held by {}, which does not hold the lock file: \
                 a squatter (or a program using the name without the file); running anyway, \
                 but status details and messages will not reach this instance",
                describe_holder(squatter)
            ));
        }
    }
    if args.talk.verbose() {
        let token = guard
            .fencing_token()
            .map_or_else(String::new, |t| format!(" (fencing token {t})"));
        match waited_for {
            Some(who) => eprintln!(
                "abslock: acquired {lock}{token} after {:.3}s; it was held by {who}",
                start.elapsed().as_secs_f64()
            ),
            None => eprintln!("abslock: acquired {lock}{token} at once"),
        }
    }
    if args.exec {
        exec(guard, pidfile, &args)
    } else {
        supervise(&lock, guard, pidfile, &args, server)
    }
}

/// What `run` cannot do with a cluster lock, and why.
fn refuse_for_remote(args: &RunArgs) -> Result<(), Failure> {
    for (given, option, why) in [
        (
            args.exec,
            "--exec",
            "abslock must stay to keep the lease alive",
        ),
        (
            args.replace,
            "--replace",
            "a holder on another host cannot be signalled",
        ),
        (
            args.close,
            "-o",
            "the lock is abslock's lease or connection, never the command's",
        ),
    ] {
        if given {
            return Err(Failure::new(
                exit::USAGE,
                format!("{option} does not work with --backend: {why}"),
            ));
        }
    }
    Ok(())
}

/// Takes the lock as the options say; returns the guard and, if it had to
/// wait, who held the lock at first.
fn acquire(
    lock: &AnyLock,
    nonblock: bool,
    timeout: Option<Duration>,
    quiet: bool,
) -> abslock::Result<(AnyGuard, Option<String>)> {
    let holder: Holder = match lock.try_acquire() {
        Ok(guard) => return Ok((guard, None)),
        Err(Error::Held(h)) if !nonblock => h,
        // A squatter (Error::Squatted) is reported, never waited for.
        Err(e) => return Err(e),
    };
    let who = describe_holder(&holder);
    let _spinner = (!quiet).then(|| Spinner::start(format!("waiting for {lock}, held by {who}")));
    Ok((crate::timed::acquire(lock, timeout)?, Some(who)))
}

/// `--exec`: the command replaces abslock and inherits the lock socket.
fn exec(guard: AnyGuard, mut pidfile: Option<PidFile>, args: &RunArgs) -> Result<u8, Failure> {
    let command = &args.argv()[..];
    // The pid stays the same across exec; nobody is left to remove the
    // file afterwards, which `status --pidfile` then reports as stale.
    record_pid(&mut pidfile, std::process::id());
    std::mem::forget(pidfile);
    let fds = guard.into_fds()?;
    let err = Command::new(&command[0])
        .args(&command[1..])
        .env(FD_ENV, fds[0].as_raw_fd().to_string())
        .exec();
    Err(cannot_execute(&command[0], &err))
}

/// Default mode: spawn the command, forward signals, wait, report.
fn supervise(
    lock: &AnyLock,
    guard: AnyGuard,
    mut pidfile: Option<PidFile>,
    args: &RunArgs,
    server: Option<abslock::OwnLoop>,
) -> Result<u8, Failure> {
    let argv = args.argv();
    let (command, close) = (&argv[..], args.close);
    if let Some(socket) = guard.socket() {
        socket.set_version(concat!("abslock-run ", env!("CARGO_PKG_VERSION")));
        socket.set_metadata("command", shell_words(command));
    }
    let status = child::supervise(
        command,
        |cmd| {
            if !close {
                cmd.pass(&guard);
            }
            if let Some(token) = guard.fencing_token() {
                cmd.env(TOKEN_ENV, token.to_string());
            }
        },
        |pid| record_pid(&mut pidfile, pid),
        server,
        &guard,
    )?;
    drop(pidfile);
    let lost = guard.lost().is_some();
    // A cluster lock must be confirmed at its release as held to the end:
    // if it was lost unnoticed (abslock paused, the command done before
    // the watchdog saw it), the command may have overlapped another
    // client's, and that is exit 5, never success.
    // (`-o` is refused with --backend.)
    let unconfirmed = if close {
        drop(guard);
        None
    } else {
        report_leftovers(lock, guard, &command[0], &args.talk)
    };
    if let Some(why) = &unconfirmed {
        eprintln!("abslock: lock lost: {lock}: {why}");
    }
    Ok(if lost || unconfirmed.is_some() {
        exit::LOST
    } else {
        exit::of_status(status)
    })
}

/// Resolves `--pidfile`'s directory before anything runs, so that a
/// symlink planted by another user refuses the run (exit 77) instead of
/// redirecting the write.
pub fn open_pidfile(args: &RunArgs) -> Result<Option<PidFile>, Failure> {
    Ok(args.pidfile.as_ref().map(PidFile::at).transpose()?)
}

/// Writes the command's pid into `--pidfile`, if asked; a failure is
/// reported, not fatal: the lock, not the PID file, keeps a second
/// instance out.
pub fn record_pid(pidfile: &mut Option<PidFile>, pid: u32) {
    if let Some(file) = pidfile {
        if let Err(e) = file.record(pid) {
            eprintln!("abslock: warning: {e}; running without the PID file");
            *pidfile = None;
        }
    }
}

/// The command as one line, arguments with spaces quoted.
fn shell_words(command: &[OsString]) -> String {
    command
        .iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Says which processes still keep the lock after the command exited (its
/// descendants that inherited the descriptor), instead of leaving the next
/// caller to hang without a clue.
/// Releases the lock and names what still keeps it; for a cluster lock,
/// returns why it could not be confirmed as held to the end, if it could
/// not.
fn report_leftovers(
    lock: &AnyLock,
    guard: AnyGuard,
    program: &OsString,
    talk: &Verbosity,
) -> Option<String> {
    let procs = match guard.release_and_list_keepers() {
        Ok(procs) => procs,
        Err(e) if matches!(lock, AnyLock::Remote(_)) => return Some(e.to_string()),
        Err(e) => {
            talk.warn(format_args!("releasing {lock}: {e}"));
            return None;
        }
    };
    let rest: Vec<String> = procs
        .iter()
        .map(|p| format!("{} ({})", p.pid, p.command()))
        .collect();
    if !rest.is_empty() && !talk.quiet {
        eprintln!(
            "abslock: '{}' exited, but {} still hold {}: it stays held until they exit: {}",
            escape(program.as_bytes()),
            if rest.len() == 1 {
                "this process"
            } else {
                "these processes"
            },
            lock,
            rest.join(", ")
        );
    }
    None
}

impl RunArgs {
    /// The command to run: COMMAND, or `sh -c COMMAND_STRING`.
    pub fn argv(&self) -> Vec<OsString> {
        match &self.command_string {
            Some(script) => vec!["sh".into(), "-c".into(), script.clone()],
            None => self.command.clone(),
        }
    }
}
