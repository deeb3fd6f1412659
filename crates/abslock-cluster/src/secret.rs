//! Keeping passwords out of everything abslock prints: status lines, JSON,
//! error messages, the holder's metadata.
//!
//! A backend URL may carry a password (`etcd://USER:PASSWORD@HOST`,
//! `postgres://USER:PASSWORD@HOST/DB`, `?password=...`). Anything that
//! shows a URL shows [`redact`]'s copy. Better still, give the password
//! without the command line, where `ps` cannot see it either:
//! `ETCDCTL_PASSWORD`, `PGPASSWORD` or `~/.pgpass` (docs/cluster.md).

/// What a password is replaced by.
pub const HIDDEN: &str = "***";

/// `url` with every password in it replaced by [`HIDDEN`]: the PASSWORD of
/// `SCHEME://USER:PASSWORD@HOST...` and the value of each `password=`
/// parameter (a URL query, or a libpq `key=value` string, quoted or not).
///
/// ```
/// use abslock_cluster::redact;
/// assert_eq!(redact("postgres://app:s3cret@db/app"), "postgres://app:***@db/app");
/// assert_eq!(redact("etcd://h:2379?ttl=5&password=pw"), "etcd://h:2379?ttl=5&password=***");
/// assert_eq!(redact("host=db password='a b' user=x"), "host=db password=*** user=x");
/// ```
pub fn redact(url: &str) -> String {
    let url = redact_userinfo(url);
    redact_parameters(&url)
}

fn redact_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // The userinfo ends at the last '@': an unescaped '@' in a password
    // stays hidden too.
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:{HIDDEN}{}",
        &url[..start],
        &userinfo[..colon],
        &url[start + at..]
    )
}

fn redact_parameters(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let key_end = from + found + "password".len();
        // libpq allows spaces around '=' (`password = X`).
        let Some(value) = value_start(text, key_end) else {
            from = key_end;
            continue;
        };
        // Any key ending in `password` (`sslpassword=` too) is hidden.
        let end = value_end(text, value);
        out.push_str(&text[copied..value]);
        out.push_str(HIDDEN);
        copied = end;
        from = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Where the value of a key ending at `key_end` starts: after `=` and any
/// spaces around it; `None` if no `=` follows.
fn value_start(text: &str, key_end: usize) -> Option<usize> {
    let rest = &text[key_end..];
    let after_key = rest.trim_start_matches([' ', '\t']);
    let after_eq = after_key.strip_prefix('=')?;
    let value = after_eq.trim_start_matches([' ', '\t']);
    Some(text.len() - value.len())
}

/// Where the value starting at `start` ends: after its closing quote
/// (libpq's `'...'` with `\'` escapes), or at an unescaped `&` or
/// whitespace (libpq's `\ ` keeps a space in an unquoted value), or at
/// the end.
fn value_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let quoted = bytes.get(start) == Some(&b'\'');
    let mut i = start + usize::from(quoted);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\'' if quoted => return i + 1,
            b'&' | b' ' | b'\t' | b'\n' | b'\r' if !quoted => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_and_nothing_else_changes() {
        let cases = [
            ("etcd://127.0.0.1:2379", "etcd://127.0.0.1:2379"),
            (
                "etcd://alice:pw@h1:2379,h2:2379?ttl=3",
                "etcd://alice:***@h1:2379,h2:2379?ttl=3",
            ),
            ("etcd://alice@h1:2379", "etcd://alice@h1:2379"),
            ("postgres://u:p@ss@db:5432/x", "postgres://u:***@db:5432/x"),
            (
                "postgres://u:pw@db/x?sslmode=require",
                "postgres://u:***@db/x?sslmode=require",
            ),
            (
                "postgres://db/x?user=u&password=pw&sslpassword=k",
                "postgres://db/x?user=u&password=***&sslpassword=***",
            ),
            (
                "postgresql:///x?PASSWORD=pw",
                "postgresql:///x?PASSWORD=***",
            ),
            ("host=db password=pw", "host=db password=***"),
            (
                "host=db password='it\\'s' dbname=x",
                "host=db password=*** dbname=x",
            ),
            ("password=", "password=***"),
            (
                "host=db password = pw user=u",
                "host=db password = *** user=u",
            ),
            ("host=db password\t=\tpw", "host=db password\t=\t***"),
            ("password=Sec\\ ret user=u", "password=*** user=u"),
            ("the password is unknown", "the password is unknown"),
            ("no secrets here", "no secrets here"),
            ("db/x?mypassword_hint=1", "db/x?mypassword_hint=1"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn the_secret_never_survives_in_odd_places() {
        for url in [
            "postgres://u:SECRET@a,b/x",
            "etcd://u:SECRET@h:1,u:SECRET@h:2",
            "x://u:SECRET@h/p?password=SECRET",
            "host=h password=SECRET\tuser=u",
            "host=h password = SECRET",
            "host=h PASSWORD=SEC\\ SECRET",
            "host=h password='SECRET \\' SECRET'",
        ] {
            assert!(!redact(url).contains("SECRET"), "{url} -> {}", redact(url));
        }
    }
}
