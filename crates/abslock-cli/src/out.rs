//! Standard output that a closed pipe cannot crash.
//!
//! Rust ignores `SIGPIPE`, so `println!` panics with "failed printing to
//! stdout: Broken pipe" when the reader is gone (`abslock list | head -1`),
//! exit 101 with a backtrace in cron mail. Like ripgrep, abslock stops
//! writing instead and exits with the status it would have had anyway, so
//! `abslock status NAME | true` under `set -o pipefail` still says held or
//! free.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::Verbosity;

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to stdout, unless the reader has gone; other write
/// errors are reported once on stderr.
pub fn write(bytes: &[u8]) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("abslock: writing to standard output: {e}");
        }
    }
}

/// `println!` through [`write()`].
macro_rules! outln {
    () => { $crate::out::write(b"\n") };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::out::write(line.as_bytes());
    }};
}
pub(crate) use outln;

impl Verbosity {
    /// `-v` given.
    pub fn verbose(&self) -> bool {
        self.verbose > 0
    }

    /// Prints a warning unless `-q`.
    pub fn warn(&self, what: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("abslock: warning: {what}");
        }
    }
}
