//! How a holder names itself to other hosts.

/// A holder's identity: host name and pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The host: `$ABSLOCK_HOST` if set (containers sharing a hostname,
    /// tests), else the kernel's node name (`uname -n`).
    pub host: String,
    /// The process id.
    pub pid: u32,
}

impl Identity {
    /// This process on this host.
    pub fn current() -> Identity {
        let host = std::env::var("ABSLOCK_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                rustix::system::uname()
                    .nodename()
                    .to_string_lossy()
                    .into_owned()
            });
        Identity {
            host,
            pid: std::process::id(),
        }
    }
}
