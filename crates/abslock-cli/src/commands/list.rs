//! `abslock list`: the locks of this network namespace and their holders.

use abslock::{display_address, BoundName, Scope};
use serde_json::json;

use crate::cli::ListArgs;
use crate::exit::{self, Failure};
use crate::out::outln;
use crate::report::process_json;
use crate::users;

/// Runs `abslock list`.
pub fn list(args: &ListArgs) -> Result<u8, Failure> {
    // Runtime files left by killed holders go first: a per-user NAME's
    // file exists only while the lock is held (crate docs: runtime_file).
    let _ = abslock::runtime_file::prune(rustix::process::getuid().as_raw());
    let owners =
        abslock::bound_names(args.all).map_err(|e| exit::system("listing Unix sockets", e))?;
    if args.json {
        let rows: Vec<_> = owners
            .iter()
            .map(|s| {
                json!({
                    "address": format!("@{}", shown(s)),
                    "name": name_of(s),
                    "type": type_name(s.socket_type),
                    "listening": s.listening,
                    "inode": s.inode,
                    "processes": s.processes.iter().map(process_json).collect::<Vec<_>>(),
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
        if s.processes.is_empty() {
            row(&address, &kind, "?", "?", "");
        }
        for (i, p) in s.processes.iter().enumerate() {
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

fn shown(s: &BoundName) -> String {
    display_address(&s.address)
}

fn name_of(s: &BoundName) -> serde_json::Value {
    match s.lock_name() {
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
