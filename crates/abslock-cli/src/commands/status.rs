//! `abslock status`: who holds a lock.

use std::time::{Duration, SystemTime};

use abslock::__private::escape::{escape, escape_str};
use abslock::pidfile::{self, PidFileState};
use abslock::{AnyLock, Backend, Holder, Info, ProcessInfo, RemoteHolder, Source};
use serde_json::{json, Value};
use std::os::unix::ffi::OsStrExt;

use crate::cli::StatusArgs;
use crate::exit::{self, Failure};
use crate::out::outln;
use crate::report::{process_json, unix_secs};
use crate::users;

/// Runs `abslock status`: exit 0 when held, 1 when free, 3 when held by a
/// uid the lock does not trust.
pub fn status(args: &StatusArgs) -> Result<u8, Failure> {
    let lock = args.lock.lock()?;
    let holder = lock.holder()?;
    if let AnyLock::Remote(_) = &lock {
        return Ok(remote_status(
            args,
            holder.as_ref().and_then(Holder::as_remote),
        ));
    }
    let processes = match &holder {
        Some(h) => h.processes()?,
        None => Vec::new(),
    };
    let info = holder.as_ref().and_then(|h| ask_info(&lock, h));
    let pidfile = match &args.pidfile {
        Some(path) => {
            let keepers: Vec<u32> = processes.iter().map(|p| p.pid).collect();
            Some((path, pidfile::check(path, &keepers)?))
        }
        None => None,
    };
    if args.json {
        let mut json = to_json(&lock, holder.as_ref(), &processes, info.as_ref());
        if let Some((path, state)) = &pidfile {
            json["pidfile"] = pidfile_json(path, state);
        }
        outln!("{json}");
    } else {
        print_human(&lock, holder.as_ref(), &processes, info.as_ref());
        if let (true, Some(h)) = (args.verbose, &holder) {
            let (how, why) = waking(h);
            outln!("  waiters:   {how}: {why}");
        }
        if let Some((path, state)) = &pidfile {
            outln!(
                "  pidfile:   {}: {}",
                escape(path.as_os_str().as_bytes()),
                explain(state)
            );
        }
    }
    Ok(match &holder {
        None => exit::CONFLICT,
        Some(h) if h.uid().is_some_and(|uid| !lock.trusts(uid)) => exit::SQUATTED,
        Some(_) => exit::OK,
    })
}

/// `status --backend URL NAME`: the engine's view of the holder. Exit 0
/// if held, 1 if free.
fn remote_status(args: &StatusArgs, holder: Option<&RemoteHolder>) -> u8 {
    let name = escape_str(&args.lock.name);
    // Never the password: redacted. Escaped, as everything printed.
    let url = args.lock.backend.as_deref().map(redact).unwrap_or_default();
    if args.json {
        outln!(
            "{}",
            json!({
                "name": args.lock.name,
                "backend": url,
                "scope": "cluster",
                "held": holder.is_some(),
                "holder": holder.map(|h| json!({
                    "host": h.host,
                    "pid": h.pid,
                    "fencing_token": h.token,
                    "lease_left_secs": h.lease_left.map(|d| d.as_secs()),
                    "client": h.client,
                })),
            })
        );
    } else {
        let url = escape_str(&url);
        match holder {
            None => outln!("{name} on {url}: free"),
            Some(h) => {
                outln!("{name} on {url}: held");
                if h.client.is_some() {
                    outln!("  holder:    {h}");
                } else {
                    // Whoever can write the lock's key chose this: escaped.
                    outln!("  host:      {}", escape_str(&h.host));
                    outln!("  pid:       {}", h.pid);
                }
                if let Some(t) = h.token {
                    outln!("  token:     {t} (fencing token)");
                }
                if let Some(left) = h.lease_left {
                    outln!("  lease:     {}s left unless renewed", left.as_secs());
                }
            }
        }
    }
    if holder.is_some() {
        exit::OK
    } else {
        exit::CONFLICT
    }
}

/// The URL without its password.
fn redact(url: &str) -> String {
    (crate::engines::get().redact)(url)
}

/// One line on what a PID file is worth.
fn explain(state: &PidFileState) -> String {
    match state {
        PidFileState::Missing => "missing".into(),
        PidFileState::Malformed(why) => format!("malformed: {}", escape_str(why)),
        PidFileState::Current(pid) => format!("current: pid {pid} keeps the lock"),
        PidFileState::Gone(pid) => format!("stale: pid {pid} no longer exists"),
        PidFileState::NotHolder {
            pid,
            command,
            reused: true,
        } => format!(
            "stale: pid {pid} was reused; it is now '{command}', started after the file was written"
        ),
        PidFileState::NotHolder {
            pid,
            command,
            reused: false,
        } => format!("stale: pid {pid} is '{command}', which does not keep the lock"),
    }
}

fn pidfile_json(path: &std::path::Path, state: &PidFileState) -> Value {
    let (name, pid, command, reused) = match state {
        PidFileState::Missing => ("missing", None, None, None),
        PidFileState::Malformed(_) => ("malformed", None, None, None),
        PidFileState::Current(pid) => ("current", Some(*pid), None, None),
        PidFileState::Gone(pid) => ("gone", Some(*pid), None, None),
        PidFileState::NotHolder {
            pid,
            command,
            reused,
        } => (
            "not-holder",
            Some(*pid),
            Some(command.clone()),
            Some(*reused),
        ),
    };
    json!({
        "path": path.display().to_string(),
        "state": name,
        "stale": !matches!(state, PidFileState::Current(_)),
        "pid": pid,
        "command": command,
        "reused": reused,
        "explanation": explain(state),
    })
}

/// How a waiter learns that `holder` let go: `("woken", why)` when the
/// kernel reports the release, `("polling", why)` when it cannot and a
/// waiter retries (every 100 ms at most).
fn waking(holder: &Holder) -> (&'static str, &'static str) {
    match holder.file_lock() {
        Some(("FLOCK", _)) => (
            "woken",
            "the kernel reports the close that drops the flock (inotify)",
        ),
        Some(_) => (
            "polling",
            "an fcntl(2) lock is held, whose release the kernel reports to nobody; \
             waiters retry every 100 ms at most",
        ),
        None if holder.is_listening() => (
            "woken",
            "the kernel resets waiting connections when the listener is released",
        ),
        None => (
            "polling",
            "the name is bound by a socket that does not listen, which nobody can wait on; \
             waiters retry every 100 ms at most",
        ),
    }
}

fn waiters_json(holder: &Holder) -> Value {
    let (how, why) = waking(holder);
    json!({"woken": how == "woken", "how": why})
}

/// How long `status` waits for the holder's `info` answer.
const INFO_TIMEOUT: Duration = Duration::from_millis(500);

/// The holder's own account of itself, if it speaks the protocol. Raw
/// `@names` belong to other programs: they are not sent anything.
fn ask_info(lock: &AnyLock, holder: &Holder) -> Option<Info> {
    let socket = lock.socket()?;
    if !holder.is_listening() || socket.name().scope() == abslock::Scope::Raw {
        return None;
    }
    socket.info(INFO_TIMEOUT).ok()
}

fn print_human(
    lock: &AnyLock,
    holder: Option<&Holder>,
    processes: &[ProcessInfo],
    reported: Option<&Info>,
) {
    let Some(h) = holder else {
        outln!("{lock}: free");
        return;
    };
    outln!("{lock}: held");
    match h.pid() {
        Some(pid) => outln!("  holder:    pid {pid}"),
        None => outln!("  holder:    pid not visible from here"),
    }
    if let Some(uid) = h.uid() {
        let trust = if lock.trusts(uid) {
            ""
        } else {
            "  (not trusted: possibly squatted)"
        };
        outln!("  user:      {}{trust}", users::describe(uid));
    }
    let info = h.pid().and_then(|p| processes.iter().find(|i| i.pid == p));
    if let Some(info) = info {
        outln!("  command:   {}", info.command());
        if let Some(started) = info.started {
            outln!("  started:   {} ago", age(started));
        }
    }
    // Why a lock stays taken after a crash or a kill: a holder or keeper
    // that is dumping core, traced, stopped or stuck in the kernel.
    for p in processes {
        if let Some(why) = p.unusual_state() {
            outln!("  state:     pid {} is {why}", p.pid);
        }
    }
    match h.source() {
        Source::PeerCred => outln!("  socket:    listening (SO_PEERCRED)"),
        Source::Procfs => outln!("  socket:    bound, not listening (found through /proc)"),
        Source::ProcLocks => {
            let (kind, shared) = h.file_lock().unwrap_or(("FLOCK", false));
            outln!(
                "  lock:      {kind} {} on {} (as lslocks shows it; from /proc/locks)",
                if shared { "READ (shared)" } else { "WRITE" },
                abslock::__private::escape::escape(h.address())
            )
        }
        Source::Remote => {}
    }
    if let Some(i) = reported {
        outln!("  acquired:  {} ago", age(i.acquired()));
        // The holder chose these: escaped, never raw on a terminal.
        if !i.version.is_empty() {
            outln!("  version:   {}", escape_str(&i.version));
        }
        for (key, value) in &i.metadata {
            outln!("  meta:      {} = {}", escape_str(key), escape_str(value));
        }
    }
    if processes.len() > 1 || info.is_none() {
        outln!("  kept open by:");
        for p in processes {
            outln!(
                "    {:>7}  {}  {}",
                p.pid,
                users::describe(p.uid),
                p.command()
            );
        }
        if processes.is_empty() {
            outln!("    (no process visible: other users' processes need root)");
        }
    }
}

fn to_json(
    lock: &AnyLock,
    holder: Option<&Holder>,
    processes: &[ProcessInfo],
    reported: Option<&Info>,
) -> Value {
    let holder_json = holder.map(|h| {
        let info = h.pid().and_then(|p| processes.iter().find(|i| i.pid == p));
        json!({
            "pid": h.pid(),
            "uid": h.uid(),
            "user": h.uid().and_then(users::name_of),
            "gid": h.gid(),
            "trusted": h.uid().map(|u| lock.trusts(u)),
            "listening": h.is_listening(),
            "lock": h.file_lock().map(|(kind, shared)| json!({"kind": kind, "shared": shared})),
            "source": match h.source() {
                Source::PeerCred => "peercred",
                Source::Procfs => "procfs",
                Source::ProcLocks => "proc-locks",
                Source::Remote => "remote",
            },
            "command": info.map(|i| i.cmdline.clone()),
            "started_unix": info.and_then(|i| unix_secs(i.started?)),
            "waiters": waiters_json(h),
        })
    });
    json!({
        "name": lock.socket().map_or_else(
            || lock.to_string(),
            |s| String::from_utf8_lossy(s.name().name()).into_owned(),
        ),
        "address": lock.socket().map(|s| s.name().to_string()),
        "file": file_path(lock),
        "scope": scope_name(lock),
        "held": holder.is_some(),
        "holder": holder_json,
        "processes": processes.iter().map(process_json).collect::<Vec<_>>(),
        "info": reported.map(|i| json!({
            "pid": i.pid,
            "uid": i.uid,
            "acquired_unix": unix_secs(i.acquired()),
            "version": i.version,
            "metadata": i.metadata.iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect::<serde_json::Map<_, _>>(),
        })),
    })
}

fn scope_name(lock: &AnyLock) -> &'static str {
    match lock.socket().map(|s| s.name().scope()) {
        Some(abslock::Scope::User(_)) => "user",
        Some(abslock::Scope::System) => "system",
        Some(abslock::Scope::Raw) => "raw",
        None => "file",
    }
}

fn file_path(lock: &AnyLock) -> Option<String> {
    match lock {
        AnyLock::File(f) => Some(f.path().display().to_string()),
        AnyLock::Combined(c) => Some(c.file().path().display().to_string()),
        _ => None,
    }
}

/// `3d 4h`, `5m 12s`, `8s`.
fn age(since: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(since)
        .map_or(0, |d| d.as_secs());
    match secs {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}
