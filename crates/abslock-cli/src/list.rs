//! `abslock list`: the locks of this network namespace and their holders.

use std::collections::BTreeMap;

use abslock::internals::procfs::{self, ProcessInfo, UnixSocket};
use abslock::{display_address, LockName, Scope};
use serde_json::json;

use crate::cli::ListArgs;
use crate::exit::{self, Failure};
use crate::out::outln;
use crate::status::process_json;
use crate::users;

/// Runs `abslock list`.
pub fn list(args: &ListArgs) -> Result<u8, Failure> {
    // Runtime files left by killed holders go first: a per-user NAME's
    // file exists only while the lock is held (crate docs: runtime_file).
    let _ = abslock::runtime_file::prune(rustix::process::getuid().as_raw());
    let sockets = procfs::sockets()
        .map_err(|e| Failure::new(exit::OSERR, format!("listing Unix sockets: {e}")))?;
    let owners: Vec<UnixSocket> = sockets
        .into_iter()
        .filter(|s| s.owns_name())
        .filter(|s| args.all || s.abstract_name.as_deref().is_some_and(is_ours))
        // A waiter's place in a queue (abslock's queue module), not a lock.
        .filter(|s| {
            !s.abstract_name
                .as_deref()
                .is_some_and(abslock::internals::is_ticket)
        })
        .collect();
    let inodes: Vec<u64> = owners.iter().map(|s| s.inode).collect();
    let mut holders: BTreeMap<u64, Vec<ProcessInfo>> = BTreeMap::new();
    for (pid, inode) in procfs::processes_holding(&inodes) {
        if let Ok(info) = procfs::process_info(pid) {
            holders.entry(inode).or_default().push(info);
        }
    }
    let none = Vec::new();
    if args.json {
        let rows: Vec<_> = owners
            .iter()
            .map(|s| {
                let procs = holders.get(&s.inode).unwrap_or(&none);
                json!({
                    "address": format!("@{}", shown(s)),
                    "name": name_of(s),
                    "type": type_name(s.socket_type),
                    "listening": s.listening,
                    "inode": s.inode,
                    "processes": procs.iter().map(process_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!("{}", serde_json::Value::Array(rows));
        return Ok(exit::OK);
    }
    let row = |address: &str, kind: &str, pid: &str, user: &str, command: &str| {
        outln!("{address:<44} {kind:<9} {pid:>8}  {user:<12} {command}");
    };
    row("ADDRESS", "TYPE", "PID", "USER", "COMMAND");
    let mut names = users::Names::default();
    for s in &owners {
        let address = format!("@{}", shown(s));
        let kind = format!(
            "{}{}",
            type_name(s.socket_type),
            if s.listening { "" } else { "*" }
        );
        let procs = holders.get(&s.inode).unwrap_or(&none);
        if procs.is_empty() {
            row(&address, &kind, "?", "?", "");
        }
        for (i, p) in procs.iter().enumerate() {
            let (address, kind) = if i == 0 {
                (&address[..], &kind[..])
            } else {
                ("", "")
            };
            row(
                address,
                kind,
                &p.pid.to_string(),
                names.get(p.uid),
                &p.command(),
            );
        }
    }
    if owners.iter().any(|s| !s.listening) {
        outln!("(* bound but not listening)");
    }
    Ok(exit::OK)
}

fn is_ours(name: &[u8]) -> bool {
    LockName::from_address(name).is_some()
}

fn shown(s: &UnixSocket) -> String {
    display_address(s.abstract_name.as_deref().unwrap_or_default())
}

fn name_of(s: &UnixSocket) -> serde_json::Value {
    match s.abstract_name.as_deref().and_then(LockName::from_address) {
        Some((Scope::User(uid), name)) => json!({"scope": "user", "uid": uid, "name": name}),
        Some((Scope::System, name)) => json!({"scope": "system", "name": name}),
        _ => serde_json::Value::Null,
    }
}

fn type_name(t: u16) -> &'static str {
    match t {
        1 => "stream",
        2 => "dgram",
        5 => "seqpacket",
        _ => "other",
    }
}
