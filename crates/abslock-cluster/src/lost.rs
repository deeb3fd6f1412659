//! The flag a backend raises when a held lock is lost.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Set once, when the lock is lost; clones share it.
#[derive(Debug, Clone, Default)]
pub struct LostFlag(Arc<(Mutex<Option<String>>, Condvar)>);

impl LostFlag {
    /// Raises the flag with the reason, waking every waiter.
    pub fn set(&self, why: impl Into<String>) {
        let (lock, cond) = &*self.0;
        let mut reason = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if reason.is_none() {
            *reason = Some(why.into());
        }
        cond.notify_all();
    }

    /// Whether it is raised.
    pub fn is_set(&self) -> bool {
        self.reason().is_some()
    }

    /// Why the lock was lost, once it was.
    pub fn reason(&self) -> Option<String> {
        self.0
             .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the flag is raised or `timeout` passes (`None`: forever);
    /// returns the reason if raised.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<String> {
        let (lock, cond) = &*self.0;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let guard = match timeout {
            Some(t) => {
                cond.wait_timeout_while(guard, t, |r| r.is_none())
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => cond
                .wait_while(guard, |r| r.is_none())
                .unwrap_or_else(PoisonError::into_inner),
        };
        guard.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins_and_wakes_waiters() {
        let flag = LostFlag::default();
        assert_eq!(flag.wait(Some(Duration::from_millis(10))), None);
        let other = flag.clone();
        let waiter = std::thread::spawn(move || other.wait(None));
        flag.set("lease expired");
        flag.set("second");
        assert_eq!(waiter.join().unwrap().as_deref(), Some("lease expired"));
        assert!(flag.is_set());
    }
}
