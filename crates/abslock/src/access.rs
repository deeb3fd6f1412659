//! Which uids a lock trusts as holders, and which a holder lets send
//! messages and stop requests.

/// A set of uids: by default this process's own uid and root.
///
/// Uids come from `SO_PEERCRED` (`socket(7)`), which the kernel fills in
/// and the peer cannot forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `None`: every uid.
    uids: Option<Vec<u32>>,
}

impl Access {
    /// This process's uid and root.
    pub fn same_user() -> Access {
        let me = rustix::process::getuid().as_raw();
        Access::only(if me == 0 { vec![0] } else { vec![me, 0] })
    }

    /// Exactly these uids (root too only if listed).
    pub fn only(uids: impl IntoIterator<Item = u32>) -> Access {
        Access {
            uids: Some(uids.into_iter().collect()),
        }
    }

    /// Every uid.
    pub fn anyone() -> Access {
        Access { uids: None }
    }

    /// Adds `uid`.
    pub fn allow(mut self, uid: u32) -> Access {
        if let Some(uids) = &mut self.uids {
            uids.push(uid);
        }
        self
    }

    /// Whether `uid` is in the set.
    pub fn allows(&self, uid: u32) -> bool {
        self.uids.as_ref().is_none_or(|u| u.contains(&uid))
    }
}

impl Default for Access {
    /// [`Access::same_user`].
    fn default() -> Access {
        Access::same_user()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_behave_as_named() {
        let me = rustix::process::getuid().as_raw();
        assert!(Access::same_user().allows(me) && Access::same_user().allows(0));
        assert!(!Access::only([me]).allows(me.wrapping_add(1)));
        assert!(Access::only([]).allow(5).allows(5));
        assert!(!Access::only([]).allows(0));
        assert!(Access::anyone().allows(12345));
    }
}
