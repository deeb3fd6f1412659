//! Running a command under a held lock: starting it (`spawn`), watching
//! it and forwarding signals in one event loop (`child`), killing it at a
//! cluster lock's deadline even when abslock is paused (`keeper`), and
//! systemd's socket activation and readiness (`systemd`). Used by `run`
//! and by the keeper of `lock`.

pub mod child;
pub mod keeper;
pub mod spawn;
pub mod systemd;
