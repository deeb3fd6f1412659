//! The error that carries an exit code; the codes are the library's
//! ([`abslock::exit`]), which every binding shares.

use std::fmt;

use abslock::Error;

pub use abslock::exit::*;

/// A failure: one line for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// The message, without the `abslock:` prefix.
    pub message: String,
    /// Whether the message says which lock it concerns; a system call's
    /// failure (`binding the lock name: Too many open files`) or a file's
    /// (`cannot open lock file /run/abslock/x.lock: …`) does not, and is
    /// given the lock's name before it is printed.
    pub names_subject: bool,
}

impl Failure {
    /// A failure with `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            names_subject: true,
        }
    }
}

/// A system call's failure, told as the library tells its own (`context:
/// error`, with the `ulimit -n` hint for `EMFILE`); the lock's name goes
/// before it when it is printed.
pub fn system(context: &'static str, source: impl Into<std::io::Error>) -> Failure {
    Failure::from(Error::Io {
        context,
        source: source.into(),
    })
}

impl Failure {
    /// Appends what the user can do (`message; hint`).
    pub fn hint(mut self, hint: impl fmt::Display) -> Failure {
        self.message = format!("{}; {hint}", self.message);
        self
    }

    /// Prefixes the message with what it concerns (`NAME: message`).
    pub fn context(mut self, what: impl fmt::Display) -> Failure {
        self.message = format!("{what}: {}", self.message);
        self.names_subject = true;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let mut failure = Failure::new(e.exit_code(), e.to_string());
        failure.names_subject = !matches!(
            e,
            Error::Io { .. } | Error::PathIo { .. } | Error::Interrupted
        );
        failure
    }
}

/// The exit code of a child that ended with `status`: its own code, or
/// 128 + the signal number, as shells report it.
pub fn of_status(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(u8::MAX),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(u8::MAX),
        (None, None) => OSERR,
    }
}
