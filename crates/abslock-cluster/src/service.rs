//! libpq's connection service file (`pg_service.conf`): named groups of
//! connection settings, chosen with `service=NAME` in the connection
//! string or `PGSERVICE` (PostgreSQL docs, "The Connection Service File").
//!
//! The files, as libpq reads them: `PGSERVICEFILE`, else
//! `~/.pg_service.conf`; then `PGSYSCONFDIR/pg_service.conf`, else Debian's
//! `/etc/postgresql-common/pg_service.conf`. The first file that defines
//! the service wins. Its settings come after the connection string's and
//! before the `PG*` environment variables.

use std::path::{Path, PathBuf};

use crate::pg::env;
use crate::{Error, Result};

/// A service's settings, as `(keyword, value)` pairs in file order.
pub(crate) type Settings = Vec<(String, String)>;

/// Where libpq's Debian build looks for the system-wide file.
const SYSTEM_DIR: &str = "/etc/postgresql-common";

/// The settings of service `name`.
///
/// # Errors
/// [`Error::InvalidUrl`] if no file defines it, or a file cannot be read.
pub(crate) fn lookup(name: &str) -> Result<Settings> {
    let files = files();
    for file in &files {
        if let Some(settings) = read(file, name)? {
            return Ok(settings);
        }
    }
    let looked: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Err(Error::InvalidUrl(format!(
        "definition of service \"{name}\" not found (looked in {})",
        looked.join(", ")
    )))
}

fn files() -> Vec<PathBuf> {
    let user = env("PGSERVICEFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pg_service.conf")));
    let system = Path::new(&env("PGSYSCONFDIR").unwrap_or_else(|| SYSTEM_DIR.into()))
        .join("pg_service.conf");
    user.into_iter().chain([system]).collect()
}

/// The section `[name]` of the file at `path`; `None` if the file or the
/// section is missing.
fn read(path: &Path, name: &str) -> Result<Option<Settings>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::InvalidUrl(format!(
                "service file {}: {e}",
                path.display()
            )))
        }
    };
    Ok(section(&text, name))
}

/// The `key=value` lines of section `[name]` in an INI text (`#` starts a
/// comment line, blank lines are skipped).
fn section(text: &str, name: &str) -> Option<Settings> {
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if found.is_some() {
                break;
            }
            if header.trim() == name {
                found = Some(Vec::new());
            }
            continue;
        }
        if let (Some(settings), Some((key, value))) = (found.as_mut(), line.split_once('=')) {
            settings.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::section;

    #[test]
    fn sections_are_read_as_libpq_reads_them() {
        let text = "# comment\n[other]\nhost=a\n\n[mydb]\nhost = db.internal\nport=5433\n#x=y\n[next]\nhost=b\n";
        assert_eq!(
            section(text, "mydb").unwrap(),
            vec![
                ("host".to_string(), "db.internal".to_string()),
                ("port".to_string(), "5433".to_string())
            ]
        );
        assert_eq!(section(text, "missing"), None);
    }
}
