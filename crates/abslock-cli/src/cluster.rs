//! `--backend URL`: `run`, `status` and `wait` on a cluster engine (etcd,
//! PostgreSQL) through `abslock-cluster`.

use abslock_cluster::{ClusterLock, Error, Holder};
use serde_json::json;

use crate::child;
use crate::cli::{NameArgs, RunArgs, StatusArgs, WaitArgs};
use crate::exit::{self, Failure};
use crate::out::outln;

/// The environment variable that carries the fencing token to the command.
pub const TOKEN_ENV: &str = "ABSLOCK_FENCING_TOKEN";

fn failure(e: Error) -> Failure {
    let code = match &e {
        Error::InvalidUrl(_) => exit::USAGE,
        Error::Held(_) | Error::Timeout(_) => exit::CONFLICT,
        _ => exit::UNAVAILABLE,
    };
    Failure::new(code, e.to_string())
}

fn lock(args: &NameArgs, url: &str) -> Result<ClusterLock, Failure> {
    ClusterLock::from_url(url, &args.name).map_err(failure)
}

/// The pid of the cluster lock's holder, if it runs on this host (same
/// identity as ours), for `abslock held`.
pub fn holder_pid_here(args: &NameArgs, url: &str) -> Result<Option<u32>, Failure> {
    let me = abslock_cluster::Identity::current();
    Ok(lock(args, url)?
        .holder()
        .map_err(failure)?
        .filter(|h| h.host == me.host)
        .map(|h| h.pid))
}

/// `abslock run --backend URL NAME -- COMMAND`.
pub fn run(args: &RunArgs, url: &str) -> Result<u8, Failure> {
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
    let lock = lock(&args.lock, url)?;
    let mut pidfile = crate::run::open_pidfile(args)?;
    let nonblock = args.acquire.nonblocking();
    let talk = args.verbose || std::io::IsTerminal::is_terminal(&std::io::stderr());
    let got = if nonblock {
        lock.try_acquire()
    } else {
        lock.acquire(args.acquire.timeout)
    };
    let guard = match got {
        Ok(guard) => guard,
        Err(Error::Held(h) | Error::Timeout(Some(h))) => {
            if talk {
                eprintln!("abslock: {} is held by {h}", args.lock.name);
            }
            return Ok(args.acquire.conflict_exit_code);
        }
        Err(Error::Timeout(None)) => {
            if talk {
                eprintln!("abslock: timed out waiting for {}", args.lock.name);
            }
            return Ok(args.acquire.conflict_exit_code);
        }
        Err(e) => return Err(failure(e)),
    };
    if args.verbose {
        match guard.fencing_token() {
            Some(t) => eprintln!("abslock: acquired {} (fencing token {t})", args.lock.name),
            None => eprintln!("abslock: acquired {}", args.lock.name),
        }
    }
    let token = guard.fencing_token();
    let lost = guard.lost_flag();
    let status = child::supervise(
        &args.argv(),
        |cmd| {
            if let Some(t) = token {
                cmd.env(TOKEN_ENV, t.to_string());
            }
        },
        |pid| {
            let pidfd = child::pidfd(pid);
            std::thread::spawn(move || {
                if let Some(why) = lost.wait(None) {
                    eprintln!("abslock: lock lost: {why}; sending SIGTERM to the command");
                    if let Some(fd) = &pidfd {
                        let _ =
                            rustix::process::pidfd_send_signal(fd, rustix::process::Signal::TERM);
                    }
                }
            });
            crate::run::record_pid(&mut pidfile, pid);
        },
        None,
        None,
    )?;
    drop(pidfile);
    let was_lost = guard.is_lost();
    if let Err(e) = guard.release() {
        eprintln!(
            "abslock: warning: releasing: {e}; the lease or connection will run out on its own"
        );
    }
    Ok(if was_lost {
        exit::LOST
    } else {
        exit::of_status(status)
    })
}

/// `abslock status --backend URL NAME`: exit 0 if held, 1 if free.
pub fn status(args: &StatusArgs, url: &str) -> Result<u8, Failure> {
    let lock = lock(&args.lock, url)?;
    let holder = lock.holder().map_err(failure)?;
    if args.json {
        outln!(
            "{}",
            json!({
                "name": args.lock.name,
                "backend": abslock_cluster::redact(url),
                "held": holder.is_some(),
                "holder": holder.as_ref().map(|h| json!({
                    "host": h.host,
                    "pid": h.pid,
                    "fencing_token": h.token,
                    "lease_left_secs": h.lease_left.map(|d| d.as_secs()),
                    "client": h.client,
                })),
            })
        );
    } else {
        print_human(
            &args.lock.name,
            &abslock_cluster::redact(url),
            holder.as_ref(),
        );
    }
    Ok(if holder.is_some() {
        exit::OK
    } else {
        exit::CONFLICT
    })
}

/// `url` is already redacted.
fn print_human(name: &str, url: &str, holder: Option<&Holder>) {
    let Some(h) = holder else {
        outln!("{name} on {url}: free");
        return;
    };
    outln!("{name} on {url}: held");
    if h.client.is_some() {
        outln!("  holder:    {h}");
        return;
    }
    // Whoever can write the lock's key chose this: escaped.
    outln!("  host:      {}", abslock::escape::escape_str(&h.host));
    outln!("  pid:       {}", h.pid);
    if let Some(t) = h.token {
        outln!("  token:     {t} (fencing token)");
    }
    if let Some(left) = h.lease_left {
        outln!("  lease:     {}s left unless renewed", left.as_secs());
    }
}

/// `abslock wait --backend URL NAME`: exit 0 once free, 1 on timeout.
pub fn wait(args: &WaitArgs, url: &str) -> Result<u8, Failure> {
    let lock = lock(&args.lock, url)?;
    Ok(if lock.wait_free(args.timeout).map_err(failure)? {
        exit::OK
    } else {
        exit::CONFLICT
    })
}
