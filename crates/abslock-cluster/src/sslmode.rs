//! libpq's TLS settings for the PostgreSQL backend: `sslmode`,
//! `sslrootcert`, `sslcert`, `sslkey` in the URL, else `PGSSLMODE`,
//! `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, else libpq's files under
//! `~/.postgresql/` (PostgreSQL docs, "SSL Support" in libpq).
//!
//! The PostgreSQL client library knows only `disable`, `prefer` and
//! `require` and no file options, so these are taken out of the URL here
//! and turned into a rustls configuration ([`crate::tls`]):
//!
//! | sslmode | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | no | - |
//! | `prefer` (default) | if the server can | chain, if a root certificate file exists; else not |
//! | `require` | yes | chain, if a root certificate file exists; else not |
//! | `verify-ca` | yes | chain up to `sslrootcert` |
//! | `verify-full` | yes | chain, and the host name or address |

use std::path::PathBuf;

use tokio_postgres_rustls::MakeRustlsConnect;

use crate::pg::env;
use crate::tls::{TlsFiles, Verify};
use crate::{Error, Result};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A connection's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgTls {
    mode: SslMode,
    files: TlsFiles,
}

/// libpq's options that the PostgreSQL client library does not know:
/// taken out of the connection string here.
const OPTIONS: [&str; 6] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "service",
    "connect_timeout",
];

/// `url` without the options the client library does not know, the TLS
/// settings they (or the service file, or the environment, or libpq's
/// default files) give, and the other settings of the service file
/// (`service=` or `PGSERVICE`; [`crate::service`]), which apply where the
/// URL says nothing; and the URL's `connect_timeout`, taken out because
/// the client library drops a 0, which in libpq means "no limit" and must
/// win over `PGCONNECT_TIMEOUT` and the default.
pub(crate) fn split(
    conn: &str,
) -> Result<(String, PgTls, crate::service::Settings, Option<String>)> {
    let (rest, given) = if conn.contains("://") {
        split_url(conn)
    } else {
        split_key_values(conn)?
    };
    let [mode, rootcert, cert, key, service, connect_timeout] = given;
    let mut service = match service.or_else(|| env("PGSERVICE")) {
        Some(name) => crate::service::lookup(&name)?,
        None => Vec::new(),
    };
    // A TLS option of the service comes after the URL's, before PG*.
    let mut from_service = |option: &str| {
        let i = service.iter().position(|(k, _)| k == option)?;
        Some(service.remove(i).1)
    };
    let (mode, rootcert, cert, key) = (
        mode.or_else(|| from_service("sslmode")),
        rootcert.or_else(|| from_service("sslrootcert")),
        cert.or_else(|| from_service("sslcert")),
        key.or_else(|| from_service("sslkey")),
    );
    let mode = mode.or_else(|| env("PGSSLMODE"));
    let explicit_mode = mode.is_some();
    let mode = match mode.as_deref() {
        None | Some("prefer") => SslMode::Prefer,
        Some("disable") => SslMode::Disable,
        // libpq's `allow` tries plain text first; the closest is prefer.
        Some("allow") => SslMode::Prefer,
        Some("require") => SslMode::Require,
        Some("verify-ca") => SslMode::VerifyCa,
        Some("verify-full") => SslMode::VerifyFull,
        Some(other) => {
            return Err(Error::InvalidUrl(format!(
            "sslmode={other}: expected disable, allow, prefer, require, verify-ca or verify-full"
        )))
        }
    };
    let home = env("HOME").map(|h| PathBuf::from(h).join(".postgresql"));
    let default_file = |name: &str| {
        home.as_ref()
            .map(|dir| dir.join(name))
            .filter(|path| path.exists())
    };
    let rootcert = rootcert.or_else(|| env("PGSSLROOTCERT"));
    // libpq 16's `sslrootcert=system`: the system's trust store, and
    // nothing weaker than verify-full (which it then defaults to).
    let system = rootcert.as_deref() == Some("system");
    let mode =
        match (system, mode) {
            (false, mode) => mode,
            (true, SslMode::VerifyFull) => SslMode::VerifyFull,
            (true, _) if explicit_mode => return Err(Error::InvalidUrl(
                "sslrootcert=system takes sslmode=verify-full (libpq refuses weaker modes with it)"
                    .into(),
            )),
            (true, _) => SslMode::VerifyFull,
        };
    let rootcert = if system {
        None
    } else {
        rootcert
            .map(PathBuf::from)
            .or_else(|| default_file("root.crt"))
    };
    let (cert, key) = match (
        cert.or_else(|| env("PGSSLCERT")),
        key.or_else(|| env("PGSSLKEY")),
    ) {
        (None, None) => match (
            default_file("postgresql.crt"),
            default_file("postgresql.key"),
        ) {
            (Some(c), Some(k)) => (Some(c), Some(k)),
            _ => (None, None),
        },
        (c, k) => (c.map(PathBuf::from), k.map(PathBuf::from)),
    };
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && rootcert.is_none() && !system {
        return Err(Error::InvalidUrl(
            "sslmode=verify-ca and verify-full need the CA's certificate: sslrootcert=FILE (or sslrootcert=system for the system's trust store), PGSSLROOTCERT or ~/.postgresql/root.crt".into(),
        ));
    }
    let files = TlsFiles {
        cacert: rootcert,
        cert,
        key,
    };
    Ok((rest, PgTls { mode, files }, service, connect_timeout))
}

/// A URL without the TLS options in its query, and their values.
fn split_url(url: &str) -> (String, [Option<String>; 6]) {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut given: [Option<String>; 6] = Default::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match OPTIONS.iter().position(|o| *o == key) {
            Some(i) => given[i] = Some(value.to_string()),
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, given)
}

/// A libpq `key=value` string without the TLS options, and their values.
/// Values may be single-quoted, with `\'` and `\\` escapes.
fn split_key_values(conn: &str) -> Result<(String, [Option<String>; 6])> {
    let mut kept = Vec::new();
    let mut given: [Option<String>; 6] = Default::default();
    let mut rest = conn.trim_start();
    let mut previous: Option<&str> = None;
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| {
            // What follows a value may be the tail of a password with an
            // unescaped space: name the key before it, never the text.
            Error::InvalidUrl(match previous {
                Some(key) => format!(
                    "expected key=value after the value of {key}= in the connection string \
                     (a value with spaces is written '...' or with \\ before each space)"
                ),
                None => format!(
                    "'{}': expected key=value in the connection string",
                    crate::secret::redact(rest)
                ),
            })
        })?;
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let (value, end) = match after.strip_prefix('\'') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, next)) = chars.next() {
                                value.push(next);
                            }
                        }
                        '\'' => {
                            end = Some(i + 2);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let end = end.ok_or_else(|| {
                    Error::InvalidUrl(format!("{key}=: unterminated quoted value"))
                })?;
                (value, end)
            }
            None => {
                // Unquoted: `\` keeps the next character, even a space.
                let mut value = String::new();
                let mut chars = after.char_indices();
                let mut end = after.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, next)) = chars.next() {
                                value.push(next);
                            }
                        }
                        c if c.is_whitespace() => {
                            end = i;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, end)
            }
        };
        previous = Some(key);
        match OPTIONS.iter().position(|o| *o == key) {
            Some(i) => given[i] = Some(value),
            None => kept.push(format!("{key}={}", &after[..end])),
        }
        rest = after[end..].trim_start();
    }
    Ok((kept.join(" "), given))
}

impl PgTls {
    /// What the PostgreSQL client library is told.
    pub(crate) fn client_mode(&self) -> postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        }
    }

    /// The TLS connector, `None` for `sslmode=disable`.
    pub(crate) fn connector(&self) -> Result<Option<MakeRustlsConnect>> {
        let verify = match self.mode {
            SslMode::Disable => return Ok(None),
            SslMode::Prefer | SslMode::Require if self.files.cacert.is_none() => Verify::Nothing,
            SslMode::Prefer | SslMode::Require | SslMode::VerifyCa => Verify::Chain,
            SslMode::VerifyFull => Verify::Full,
        };
        Ok(Some(MakeRustlsConnect::new(self.files.config(verify)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_out_and_the_rest_is_kept() {
        let (url, tls, _, _) = split(
            "postgres://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=/ca.pem&sslcert=/c&sslkey=/k",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h/db?application_name=x");
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.files.cacert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(tls.files.cert, Some(PathBuf::from("/c")));
        assert_eq!(tls.files.key, Some(PathBuf::from("/k")));
        assert_eq!(tls.client_mode(), postgres::config::SslMode::Require);
        let (url, tls, _, _) = split("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(
            (url.as_str(), tls.mode),
            ("postgres://u@h/db", SslMode::Disable)
        );
        assert!(split("postgres://u@h/db?sslmode=sometimes").is_err());
    }

    #[test]
    fn key_values_keep_escaped_spaces_and_errors_quote_no_password() {
        let (kept, _) = split_key_values("host=db password=Sec\\ ret sslmode=require").unwrap();
        assert_eq!(kept, "host=db password=Sec\\ ret");
        for bad in ["host=db password=Sec ret", "password = Sec ret x"] {
            let said = split_key_values(bad).unwrap_err().to_string();
            assert!(!said.contains("ret"), "{bad}: {said}");
            assert!(said.contains("password="), "{said}");
        }
    }
}
