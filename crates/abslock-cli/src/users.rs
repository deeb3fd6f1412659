//! User names for uids, asked of NSS (`getpwuid_r(3)`), so that users from
//! LDAP or SSSD are named like local ones; the uid is always shown too.
//! Names are escaped in human-readable output: whoever controls the user
//! database chose them.
//!
//! The static build links musl, which has no NSS: it reads `/etc/passwd`
//! (and asks nscd where one runs). For a uid it cannot name there, it asks
//! the system's `getent passwd UID`, which goes through NSS like any glibc
//! program, with a time limit so that a hung directory server cannot hang
//! `status` or `list`.

use abslock::__private::escape::escape_str;

/// The login name of `uid`, if the user database has one.
pub fn name_of(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.name)
        .or_else(|| {
            if cfg!(target_env = "musl") {
                getent(uid)
            } else {
                None
            }
        })
}

/// How long `getent` may take.
const GETENT_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The name `getent passwd UID` gives, from the first getent found in the
/// system's directories (not `$PATH`).
fn getent(uid: u32) -> Option<String> {
    use std::process::{Command, Stdio};
    let program = ["/usr/bin/getent", "/bin/getent"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let mut child = Command::new(program)
        .args(["passwd", &uid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = std::time::Instant::now();
    while child.try_wait().ok()?.is_none() {
        if start.elapsed() > GETENT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().ok()?;
    parse_passwd(&out.stdout, uid)
}

/// The name in a `passwd(5)` line for `uid`.
fn parse_passwd(line: &[u8], uid: u32) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?.lines().next()?;
    let mut fields = line.split(':');
    let name = fields.next()?;
    let listed: u32 = fields.nth(1)?.parse().ok()?;
    (listed == uid && !name.is_empty()).then(|| name.to_string())
}

/// User names looked up once per uid, for output with many rows.
#[derive(Default)]
pub struct Names(std::collections::HashMap<u32, String>);

impl Names {
    /// The login name of `uid`, or the number when it has none.
    pub fn get(&mut self, uid: u32) -> &str {
        self.0
            .entry(uid)
            .or_insert_with(|| name_of(uid).map_or_else(|| uid.to_string(), |n| escape_str(&n)))
    }
}

/// `uid 1000 (alice)`, or `uid 1000` when the name is unknown.
pub fn describe(uid: u32) -> String {
    match name_of(uid) {
        Some(name) => format!("uid {uid} ({})", escape_str(&name)),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn getent_lines_parse_and_must_name_the_uid() {
        let line = b"ldapbob:*:4242:4242:Bob:/home/bob:/bin/sh\n";
        assert_eq!(super::parse_passwd(line, 4242).as_deref(), Some("ldapbob"));
        assert_eq!(super::parse_passwd(line, 4243), None);
        assert_eq!(super::parse_passwd(b"", 0), None);
    }

    #[test]
    fn root_is_root() {
        assert_eq!(super::name_of(0).as_deref(), Some("root"));
        assert_eq!(super::describe(0), "uid 0 (root)");
    }
}
