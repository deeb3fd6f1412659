//! libpq's password file (`~/.pgpass`, or `PGPASSFILE`): lines of
//! `hostname:port:database:username:password`, `*` matching anything,
//! `\:` and `\\` escaping, `#` starting a comment; the first line that
//! matches wins. As libpq does, a file that its group or others may read is
//! ignored, with a warning (PostgreSQL docs, "The Password File").

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use postgres::config::Host;
use postgres::Config;

/// The password the file at `path` gives for `config`'s first host, port,
/// database and user, if any.
pub(crate) fn lookup(path: &Path, config: &Config) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        eprintln!(
            "abslock: warning: password file {} has group or world access; ignored (chmod 0600 it)",
            abslock::__private::escape::escape_str(&path.to_string_lossy())
        );
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        // libpq matches a Unix-domain socket as "localhost".
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let database = config.get_dbname().unwrap_or(user);
    find(&text, [&host, &port, database, user])
}

/// The password of the first line of `text` whose four fields match.
fn find(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(fields)
        .find(|fields| {
            fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(field, want)| field == "*" || field == want)
        })
        .map(|mut fields| fields.swap_remove(4))
}

/// A line split at unescaped colons, with escapes removed.
fn fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let file = "# comment\n\
                    db.example:5432:app:alice:first\n\
                    *:*:*:alice:fallback\n\
                    127.0.0.1:6543:*:bob:with\\:colon\\\\\n\
                    short:line\n";
        assert_eq!(
            find(file, ["db.example", "5432", "app", "alice"]).as_deref(),
            Some("first")
        );
        assert_eq!(
            find(file, ["other", "5432", "x", "alice"]).as_deref(),
            Some("fallback")
        );
        assert_eq!(
            find(file, ["127.0.0.1", "6543", "db", "bob"]).as_deref(),
            Some("with:colon\\")
        );
        assert_eq!(find(file, ["127.0.0.1", "6544", "db", "bob"]), None);
        assert_eq!(find(file, ["short", "line", "", ""]), None);
    }

    #[test]
    fn a_file_others_can_read_is_ignored() {
        let path = std::env::temp_dir().join(format!("abslock-pgpass-{}", std::process::id()));
        std::fs::write(&path, "*:*:*:*:secret\n").unwrap();
        let config: Config = "postgres://u@h/d".parse().unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(lookup(&path, &config), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&path, &config).as_deref(), Some("secret"));
        std::fs::remove_file(&path).unwrap();
    }
}
