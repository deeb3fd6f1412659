//! What several subcommands say about a lock's holder: one line for
//! messages, a process as JSON, whom a keeper holds a lock for.

use std::time::SystemTime;

use abslock::{Holder, ProcessInfo};
use serde_json::{json, Value};

use crate::users;

/// `pid 123 (uid 1000 (alice)): sleep 100`, for one-line messages.
pub fn describe_holder(holder: &Holder) -> String {
    let mut text = holder.to_string();
    if let Some(info) = holder.pid().and_then(|p| ProcessInfo::of(p).ok()) {
        text.push_str(": ");
        text.push_str(&info.command());
    }
    text
}

/// One process as JSON, shared with `list`.
pub fn process_json(p: &ProcessInfo) -> Value {
    json!({
        "pid": p.pid,
        "ppid": p.ppid,
        "uid": p.uid,
        "user": users::name_of(p.uid),
        "command": p.cmdline,
        "started_unix": p.started.and_then(unix_secs),
        "state": p.state.map(|(state, _)| state.to_string()),
        "unusual_state": p.unusual_state(),
    })
}

/// The keeper's metadata key that names the script it holds the lock for.
pub const HELD_FOR: &str = "held for";

/// The pid of the script a keeper holds the lock for, from the keeper's
/// `info` answer; `None` if the answer is not a keeper's.
pub fn kept_for(info: &abslock::Info) -> Option<u32> {
    if !info.version.starts_with("abslock-lock ") {
        return None;
    }
    let (_, value) = info.metadata.iter().find(|(k, _)| k == HELD_FOR)?;
    value.strip_prefix("pid ")?.split(':').next()?.parse().ok()
}

/// Seconds since the epoch, for JSON.
pub fn unix_secs(t: SystemTime) -> Option<u64> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}
