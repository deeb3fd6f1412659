//! Running the command under supervision, for every backend, in one
//! thread: one `poll(2)` over the command's pidfd (readable when it exits),
//! a `signalfd(2)` for the signals abslock passes on, the lock socket's
//! connections (the library's serving loop, driven from here:
//! `abslock::OwnLoop`), the requests they bring, and under systemd
//! the command's `sd_notify` messages (`crate::supervise::systemd`). The kernel
//! SIGKILLs the command if abslock dies (`PR_SET_PDEATHSIG`).

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitStatus;

use nix::sys::signal::{SigSet, Signal as NixSignal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{pidfd_send_signal, Signal};

use crate::exit::{self, Failure};
use crate::supervise::spawn::{self, Spawn};
use crate::supervise::systemd::Systemd;

/// The signals a supervising abslock passes on to its command.
const FORWARDED: [NixSignal; 6] = [
    NixSignal::SIGINT,
    NixSignal::SIGTERM,
    NixSignal::SIGHUP,
    NixSignal::SIGQUIT,
    NixSignal::SIGUSR1,
    NixSignal::SIGUSR2,
];

/// `si_code` of a signal the kernel itself sent: a terminal's ^C or ^\,
/// which went to the whole foreground process group, the command included.
const SI_KERNEL: i32 = 0x80;

/// Runs `command` as abslock's child and returns how it ended. `prepare`
/// adjusts the [`Spawn`] before the spawn (descriptors, environment);
/// `started` gets the child's pid once it runs. Stop requests to `guard`'s
/// socket get the command SIGTERM; messages are refused (the command has
/// no way to receive them). If `guard`, a cluster lock, is lost, the
/// command gets SIGTERM too, and SIGKILL once the guard's
/// [`stop_within`](abslock::AnyGuard::stop_within) has passed, so that it
/// is dead before the engine can give the lock to another client.
pub fn supervise(
    command: &[OsString],
    prepare: impl FnOnce(&mut Spawn),
    started: impl FnOnce(u32),
    server: Option<abslock::OwnLoop>,
    guard: &abslock::AnyGuard,
) -> Result<ExitStatus, Failure> {
    // Taken before the spawn: a request that comes meanwhile waits in it.
    let requests = guard.socket().map(abslock::Guard::requests);
    // Blocked before the spawn, so that no signal can end abslock between
    // the spawn and the forwarding; they wait in the signalfd. (The
    // library's threads block every signal; the command starts with an
    // empty mask, below.)
    let mut mask = SigSet::empty();
    for signal in FORWARDED {
        mask.add(signal);
    }
    mask.thread_block()
        .map_err(|e| exit::system("blocking signals", e))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| exit::system("creating a signalfd", e))?;
    let systemd = Systemd::from_env();
    let mut cmd = systemd.command(command);
    prepare(&mut cmd);
    // The command starts with no signal blocked (ours are, for the
    // signalfd), and dies with abslock (PR_SET_PDEATHSIG): crate::supervise::spawn.
    let pid = cmd.spawn().map_err(|e| cannot_execute(&command[0], &e))?;
    drop(cmd);
    // Our unreaped child: its pid cannot be reused before we wait for it.
    let pidfd = pidfd(pid).map_err(|e| exit::system("opening a pidfd for the command", e))?;
    // Kills the command at a cluster lock's deadline even while we are
    // stopped; ended and reaped when dropped, once the command is.
    let keeper = match guard.deadline_fd() {
        Some(deadline) => Some(
            crate::supervise::keeper::start(pidfd.as_fd(), deadline)
                .map_err(|e| exit::system("starting the deadline keeper", e))?,
        ),
        None => None,
    };
    started(pid);
    let mut serving = requests.as_ref();
    let mut lost_fd = guard.lost_fd();
    let mut kill_at = None;
    let mut killed = false;
    loop {
        let ready = serving.and_then(abslock::Requests::readiness);
        let lock_socket = server.as_ref().map(abslock::OwnLoop::readiness);
        let mut fds = vec![
            PollFd::new(&pidfd, PollFlags::IN),
            PollFd::new(&signals, PollFlags::IN),
        ];
        let notify_fd = systemd.readiness();
        let notify = notify_fd.as_ref().map(|fd| {
            fds.push(PollFd::new(fd, PollFlags::IN));
            fds.len() - 1
        });
        let asked = ready.as_ref().map(|fd| {
            fds.push(PollFd::new(fd, PollFlags::IN));
            fds.len() - 1
        });
        if let Some(fd) = &lock_socket {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        let lost_at = lost_fd.as_ref().map(|fd| {
            fds.push(PollFd::new(fd, PollFlags::IN));
            fds.len() - 1
        });
        let timeout = [
            server.and_then(|s| s.deadline()),
            systemd.deadline(),
            kill_at,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|d| timespec(d.saturating_duration_since(std::time::Instant::now())));
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(exit::system("waiting for the command", e)),
        }
        let woke = |i: Option<usize>| i.is_some_and(|i| !fds[i].revents().is_empty());
        let (exited, signalled) = (woke(Some(0)), woke(Some(1)));
        let (notified, asked, lost) = (woke(notify), woke(asked), woke(lost_at));
        drop(fds);
        if lost {
            let why = guard.lost().unwrap_or_default();
            lost_fd = None;
            match guard.stop_within() {
                // The engine has freed the lock: another client may hold
                // it already.
                Some(std::time::Duration::ZERO) => {
                    eprintln!(
                        "abslock: lock lost: {why}; the engine has freed it: sending SIGKILL to the command"
                    );
                    let _ = pidfd_send_signal(&pidfd, Signal::KILL);
                    killed = true;
                }
                grace => {
                    eprintln!("abslock: lock lost: {why}; sending SIGTERM to the command");
                    let _ = pidfd_send_signal(&pidfd, Signal::TERM);
                    kill_at = grace.and_then(|g| std::time::Instant::now().checked_add(g));
                }
            }
        }
        if !exited && kill_at.is_some_and(|at| std::time::Instant::now() >= at) {
            eprintln!(
                "abslock: the command outlived the lost lock's grace period; sending SIGKILL"
            );
            let _ = pidfd_send_signal(&pidfd, Signal::KILL);
            kill_at = None;
            killed = true;
        }
        // The lock's socket: connections to keep, requests to read.
        if let Some(server) = server {
            server.turn();
        }
        if signalled {
            forward(&signals, &pidfd);
        }
        if notified || systemd.deadline().is_some() {
            systemd.relay(pid);
        }
        if asked {
            if let Some(requests) = serving {
                if !answer(requests, &pidfd) {
                    serving = None;
                }
            }
        }
        if exited {
            // A last word (STOPPING=1) sent just before the exit.
            systemd.relay(pid);
            break;
        }
    }
    let status = spawn::wait(pid);
    // The keeper and our own SIGKILL fall due together; either may come
    // first (or the keeper alone, while we were stopped). A command that
    // had exited by itself just before is a zombie the kill did not end.
    let died_of_kill = status
        .as_ref()
        .is_ok_and(|s| std::os::unix::process::ExitStatusExt::signal(s) == Some(libc::SIGKILL));
    if keeper.is_some_and(crate::supervise::keeper::Keeper::finish) && died_of_kill && !killed {
        eprintln!(
            "abslock: lock lost: the deadline keeper sent SIGKILL to the command at the lock's deadline"
        );
    }
    let _ = mask.thread_unblock();
    status.map_err(|e| exit::system("waiting for the command", e))
}

/// Passes the queued signals on to the command, except those the kernel
/// sent the whole terminal process group, which the command already got.
fn forward(signals: &SignalFd, child: &OwnedFd) {
    while let Ok(Some(info)) = signals.read_signal() {
        if info.ssi_code == SI_KERNEL {
            continue;
        }
        let signal = i32::try_from(info.ssi_signo)
            .ok()
            .and_then(Signal::from_named_raw);
        if let Some(signal) = signal {
            let _ = pidfd_send_signal(child, signal);
        }
    }
}

/// Answers the requests waiting; `false` once the stream has ended.
fn answer(requests: &abslock::Requests, child: &OwnedFd) -> bool {
    loop {
        let request = match requests.try_recv() {
            Ok(request) => request,
            Err(std::sync::mpsc::TryRecvError::Empty) => return true,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
        };
        match request {
            abslock::Incoming::Stop(stop) => {
                let _ = pidfd_send_signal(child, Signal::TERM);
                stop.accept();
            }
            abslock::Incoming::Message(m) => {
                // It has no way to pass messages to its command: "takes no
                // messages", exit 69 for `send`, as documented.
                let _ = m.not_served();
            }
            _ => {}
        }
    }
}

/// A pidfd for our child `pid`, for signalling it later without the risk
/// of hitting a recycled pid once it has been reaped.
pub fn pidfd(pid: u32) -> std::io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or(rustix::io::Errno::SRCH)?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// The failure for a command that could not be started.
pub fn cannot_execute(program: &OsString, err: &std::io::Error) -> Failure {
    Failure::new(
        exit::UNAVAILABLE,
        format!(
            "cannot execute '{}': {err}",
            abslock::__private::escape::escape(std::os::unix::ffi::OsStrExt::as_bytes(
                program.as_os_str()
            ))
        ),
    )
}

pub fn timespec(d: std::time::Duration) -> rustix::event::Timespec {
    rustix::event::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}
