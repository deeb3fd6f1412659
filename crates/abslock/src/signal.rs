//! Signals that can be sent to a lock holder.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A standard Linux signal, as accepted by `pidfd_send_signal(2)`.
///
/// ```
/// use abslock::Signal;
///
/// assert_eq!("TERM".parse::<Signal>()?, Signal::TERM);
/// assert_eq!("sigkill".parse::<Signal>()?, Signal::KILL);
/// assert_eq!("9".parse::<Signal>()?, Signal::KILL);
/// assert_eq!(Signal::HUP.to_string(), "SIGHUP");
/// assert!("NOPE".parse::<Signal>().is_err());
/// # Ok::<(), abslock::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

macro_rules! signals {
    ($($name:ident = $raw:ident),* $(,)?) => {
        impl Signal {
            $(
                #[doc = concat!("`SIG", stringify!($name), "`.")]
                pub const $name: Signal = Signal(libc::$raw);
            )*
            const ALL: &'static [(&'static str, Signal)] = &[$((stringify!($name), Signal::$name)),*];
        }
    };
}

signals! {
    HUP = SIGHUP, INT = SIGINT, QUIT = SIGQUIT, ILL = SIGILL, TRAP = SIGTRAP,
    ABRT = SIGABRT, BUS = SIGBUS, FPE = SIGFPE, KILL = SIGKILL, USR1 = SIGUSR1,
    SEGV = SIGSEGV, USR2 = SIGUSR2, PIPE = SIGPIPE, ALRM = SIGALRM, TERM = SIGTERM,
    CHLD = SIGCHLD, CONT = SIGCONT, STOP = SIGSTOP, TSTP = SIGTSTP, TTIN = SIGTTIN,
    TTOU = SIGTTOU, URG = SIGURG, XCPU = SIGXCPU, XFSZ = SIGXFSZ, VTALRM = SIGVTALRM,
    PROF = SIGPROF, WINCH = SIGWINCH, IO = SIGIO, PWR = SIGPWR, SYS = SIGSYS,
}

impl Signal {
    /// The signal with this number, if it is one of the named standard
    /// signals.
    pub fn from_raw(raw: i32) -> Option<Signal> {
        Self::ALL.iter().map(|&(_, s)| s).find(|s| s.0 == raw)
    }

    /// The signal number.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// The name without the `SIG` prefix, such as `TERM`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|&&(_, s)| s == self)
            .map_or("?", |&(n, _)| n)
    }

    pub(crate) fn to_rustix(self) -> Option<rustix::process::Signal> {
        rustix::process::Signal::from_named_raw(self.0)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

/// Accepts `TERM`, `SIGTERM`, `sigterm` or `15`.
impl FromStr for Signal {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || {
            Error::InvalidSignal(format!(
                "unknown signal '{s}'; use a name such as TERM, KILL, HUP or a number such as 15"
            ))
        };
        if let Ok(raw) = s.parse::<i32>() {
            return Signal::from_raw(raw).ok_or_else(unknown);
        }
        let upper = s.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Self::ALL
            .iter()
            .find(|&&(n, _)| n == bare)
            .map(|&(_, s)| s)
            .ok_or_else(unknown)
    }
}
