//! Signals that can be sent to a lock holder.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::sys;

/// A standard or real-time Linux signal, as accepted by
/// `pidfd_send_signal(2)`.
///
/// ```
/// use abslock::Signal;
///
/// assert_eq!("TERM".parse::<Signal>()?, Signal::TERM);
/// assert_eq!("sigkill".parse::<Signal>()?, Signal::KILL);
/// assert_eq!("9".parse::<Signal>()?, Signal::KILL);
/// assert_eq!(Signal::HUP.to_string(), "SIGHUP");
/// assert_eq!("RTMIN+1".parse::<Signal>()?, Signal::rt(1).unwrap());
/// assert_eq!("SIGRTMAX-0".parse::<Signal>()?.to_string(), format!("SIGRTMIN+{}", libc::SIGRTMAX() - libc::SIGRTMIN()));
/// assert_eq!("34".parse::<Signal>()?, Signal::rt(34 - libc::SIGRTMIN()).unwrap());
/// assert!("NOPE".parse::<Signal>().is_err());
/// assert!("RTMAX+1".parse::<Signal>().is_err());
/// assert!("RTMIN-1".parse::<Signal>().is_err());
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

/// The real-time signals applications may use: libc's `SIGRTMIN` to
/// `SIGRTMAX` (`signal(7)`; glibc keeps 32 and 33 for itself).
fn rt_range() -> std::ops::RangeInclusive<i32> {
    libc::SIGRTMIN()..=libc::SIGRTMAX()
}

impl Signal {
    /// The signal with this number: a named standard signal, or a
    /// real-time signal (`SIGRTMIN` to `SIGRTMAX`).
    pub fn from_raw(raw: i32) -> Option<Signal> {
        Self::ALL
            .iter()
            .map(|&(_, s)| s)
            .find(|s| s.0 == raw)
            .or_else(|| rt_range().contains(&raw).then_some(Signal(raw)))
    }

    /// `SIGRTMIN+offset`, if that is at most `SIGRTMAX`.
    pub fn rt(offset: i32) -> Option<Signal> {
        let raw = libc::SIGRTMIN().checked_add(offset)?;
        (offset >= 0 && rt_range().contains(&raw)).then_some(Signal(raw))
    }

    /// The signal number.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// The name without the `SIG` prefix, such as `TERM` or `RTMIN+1`.
    pub fn name(self) -> String {
        match Self::ALL.iter().find(|&&(_, s)| s == self) {
            Some(&(n, _)) => n.to_string(),
            None if self.0 == libc::SIGRTMIN() => "RTMIN".into(),
            None => format!("RTMIN+{}", self.0 - libc::SIGRTMIN()),
        }
    }

    pub(crate) fn to_rustix(self) -> Option<rustix::process::Signal> {
        rustix::process::Signal::from_named_raw(self.0).or_else(|| {
            rt_range()
                .contains(&self.0)
                .then(|| sys::rt_signal(self.0))
                .flatten()
        })
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

/// Accepts `TERM`, `SIGTERM`, `sigterm`, `15`, and real-time signals as
/// `kill(1)` writes them: `RTMIN`, `RTMIN+3`, `SIGRTMAX-1`, `34`.
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
        // RTMIN, RTMIN+N, RTMAX, RTMAX-N, as kill(1) writes them.
        let rt = |offset: &str, sign: char, base: i32| {
            let n: i32 = match offset.strip_prefix(sign) {
                None if offset.is_empty() => 0,
                Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => {
                    digits.parse().ok()?
                }
                _ => return None,
            };
            let raw = if sign == '+' {
                base.checked_add(n)?
            } else {
                base.checked_sub(n)?
            };
            Signal::from_raw(raw).filter(|s| rt_range().contains(&s.0))
        };
        if let Some(offset) = bare.strip_prefix("RTMIN") {
            return rt(offset, '+', libc::SIGRTMIN()).ok_or_else(unknown);
        }
        if let Some(offset) = bare.strip_prefix("RTMAX") {
            return rt(offset, '-', libc::SIGRTMAX()).ok_or_else(unknown);
        }
        Self::ALL
            .iter()
            .find(|&&(n, _)| n == bare)
            .map(|&(_, s)| s)
            .ok_or_else(unknown)
    }
}
