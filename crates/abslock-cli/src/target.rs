//! From parsed arguments to the lock they name: the `--backend file:`
//! spelling rewritten, the local syntax every front end shares
//! ([`AnyLock::named`]) or a cluster engine, `-s`.

use std::path::Path;
use std::time::Duration;

use abslock::AnyLock;

use crate::cli::{AcquireArgs, Command, NameArgs};
use crate::exit::{self, Failure};

/// Rewrites the lock the subcommand names in the form every subcommand
/// takes (`--backend file:PATH NAME` becomes NAME `file:...`), and
/// returns its NAME, escaped, for the errors that do not say what they
/// concern.
///
/// # Errors
/// The one-line reason the `--backend file:` spelling is wrong.
pub fn resolve(command: &mut Command) -> Result<Option<String>, String> {
    let args = match command {
        Command::Run(a) => &mut a.lock,
        Command::Status(a) => &mut a.lock,
        Command::Wait(a) => &mut a.lock,
        Command::Kill(a) => &mut a.lock,
        Command::Lock(a) => match a.lock.as_mut() {
            Some(lock) => lock,
            None => return Ok(None),
        },
        Command::Held(a) => &mut a.lock,
        Command::Send(a) => &mut a.lock,
        _ => return Ok(None),
    };
    args.resolve_file_backend()?;
    Ok(Some(abslock::__private::escape::escape_str(&args.name)))
}

impl NameArgs {
    /// `--backend file:PATH NAME` is the file backend in the cluster
    /// backends' form: the lock file PATH, or, when PATH is a directory,
    /// the lock file PATH/NAME (the URL says where, NAME which lock).
    /// Rewritten here to NAME `file:...`, so that every subcommand treats
    /// it as the lock file it is.
    fn resolve_file_backend(&mut self) -> Result<(), String> {
        let Some(path) = self
            .backend
            .as_deref()
            .and_then(|b| b.strip_prefix("file:"))
        else {
            return Ok(());
        };
        if path.is_empty() {
            return Err("--backend file:PATH needs a path".into());
        }
        self.name = if Path::new(path).is_dir() {
            if matches!(self.name.as_str(), "" | "." | "..")
                || self.name.contains('/')
                || self.name.starts_with("file:")
            {
                return Err(
                    "--backend file:DIR takes a NAME that is a file name (not empty, '.' or \
                     '..', no '/'): the lock file DIR/NAME"
                        .into(),
                );
            }
            format!("file:{}/{}", path.trim_end_matches('/'), self.name)
        } else {
            format!("file:{path}")
        };
        self.backend = None;
        Ok(())
    }

    /// The lock these arguments name, with their trust policy: on a
    /// cluster engine with `--backend URL`, else a local one, in the
    /// syntax every front end shares ([`AnyLock::named`]).
    pub fn lock(&self) -> abslock::Result<AnyLock> {
        if let Some(url) = &self.backend {
            return (crate::engines::get().lock)(url, &self.name);
        }
        AnyLock::named(
            &self.name,
            &abslock::Named {
                system: self.system,
                trust_uids: self.trust_uid.clone(),
                trust_any: self.trust_any,
                file: self.file.clone(),
            },
        )
    }
}

impl AcquireArgs {
    /// `-n`, or `-w 0`.
    pub fn nonblocking(&self) -> bool {
        self.nonblock || self.timeout == Some(Duration::ZERO)
    }
}

/// `-s`: a shared lock, which only a lock file can be.
pub fn shared_if(lock: AnyLock, shared: bool) -> Result<AnyLock, Failure> {
    match lock {
        AnyLock::File(file) if shared => Ok(AnyLock::File(file.shared(true))),
        lock if shared => Err(Failure::new(
            exit::USAGE,
            format!(
                "--shared needs a lock file alone (file:PATH, or a path): {lock} \
                 has one holder at a time"
            ),
        )),
        lock => Ok(lock),
    }
}
