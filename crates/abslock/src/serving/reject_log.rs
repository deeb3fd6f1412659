//! The reject log: one line per client turned away, rate-limited so that
//! a hostile client cannot flood the holder's stderr (or journal) one line
//! per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{lock, Shared};
use crate::requests::Peer;

/// Rejected clients logged one by one per [`LOG_WINDOW`]; the rest are
/// counted and summed up in one line when the window ends.
const LOG_BURST: u32 = 20;

/// See [`LOG_BURST`].
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Receives one line for each client the holder turns away.
pub type RejectLog = Arc<dyn Fn(&str) + Send + Sync>;

/// The rate limit of the reject log: a hostile client must not be able to
/// flood the holder's stderr (or journal) one line per connection.
#[derive(Debug, Default)]
pub(super) struct RejectCount {
    pub(super) window_start: Option<Instant>,
    logged: u32,
    pub(super) suppressed: u64,
}

impl RejectCount {
    /// Counts a rejected client at `now`; whether to log it.
    pub(super) fn admit(&mut self, now: Instant) -> bool {
        self.window_start.get_or_insert(now);
        if self.logged >= LOG_BURST {
            self.suppressed += 1;
            return false;
        }
        self.logged += 1;
        true
    }

    /// Ends the window if it is over at `now`; how many clients went
    /// unlogged in it, if any.
    pub(super) fn flush(&mut self, now: Instant) -> Option<u64> {
        let start = self.window_start?;
        if now.saturating_duration_since(start) < LOG_WINDOW {
            return None;
        }
        let suppressed = self.suppressed;
        *self = RejectCount::default();
        (suppressed > 0).then_some(suppressed)
    }
}

impl Shared {
    /// Logs one line for a turned-away client, at most [`LOG_BURST`] per
    /// [`LOG_WINDOW`]; the others are counted for [`Shared::flush_rejects`].
    pub(super) fn reject(&self, peer: Option<Peer>, why: &str) {
        let now = Instant::now();
        self.flush_rejects(now);
        if !lock(&self.rejects).admit(now) {
            return;
        }
        let who = peer.map_or_else(|| "unknown credentials".to_string(), |p| p.to_string());
        self.log_line(&format!(
            "abslock: {}: rejected a client ({who}): {}",
            self.name,
            crate::escape::escape_str(why)
        ));
    }

    /// Ends the log window once it is over: one summary line for the
    /// clients not logged one by one.
    pub(crate) fn flush_rejects(&self, now: Instant) {
        let suppressed = lock(&self.rejects).flush(now);
        if let Some(n) = suppressed {
            self.log_line(&format!(
                "abslock: {}: rejected {n} more clients in the last {} s \
                 (logged {LOG_BURST} per {} s)",
                self.name,
                LOG_WINDOW.as_secs(),
                LOG_WINDOW.as_secs()
            ));
        }
    }

    /// When the reject log's window ends with clients still to sum up.
    pub(crate) fn rejects_due(&self) -> Option<Instant> {
        let count = lock(&self.rejects);
        (count.suppressed > 0)
            .then_some(count.window_start)
            .flatten()
            .and_then(|start| start.checked_add(LOG_WINDOW))
    }

    pub(super) fn log_line(&self, line: &str) {
        let log = lock(&self.log).clone();
        match log {
            Some(log) => log(line),
            None => eprintln!("{line}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reject_log_is_rate_limited_and_summed_up() {
        let t0 = Instant::now();
        let mut count = RejectCount::default();
        let logged = (0..100).filter(|_| count.admit(t0)).count();
        assert_eq!(logged, LOG_BURST as usize);
        assert_eq!(count.flush(t0 + LOG_WINDOW / 2), None, "window not over");
        assert_eq!(
            count.flush(t0 + LOG_WINDOW),
            Some(100 - u64::from(LOG_BURST))
        );
        // A new window logs again, and a quiet one sums up nothing.
        assert!(count.admit(t0 + LOG_WINDOW));
        assert_eq!(count.flush(t0 + LOG_WINDOW * 2), None);
    }
}
