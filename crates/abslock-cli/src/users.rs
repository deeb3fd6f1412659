//! User names for uids, asked of NSS (`getpwuid_r(3)`), so that users from
//! LDAP or SSSD are named like local ones; the uid is always shown too.
//! Names are escaped in human-readable output: whoever controls the user
//! database chose them.

use abslock::escape::escape_str;

/// The login name of `uid`, if the user database has one.
pub fn name_of(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.name)
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
    fn root_is_root() {
        assert_eq!(super::name_of(0).as_deref(), Some("root"));
        assert_eq!(super::describe(0), "uid 0 (root)");
    }
}
