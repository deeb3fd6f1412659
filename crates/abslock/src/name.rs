//! Lock names and the abstract socket addresses they map to.
//!
//! An abstract Unix socket address is a `sun_path` whose first byte is NUL;
//! the name is the `addrlen`-delimited bytes after it, at most
//! [`MAX_ADDRESS_LEN`] (107) bytes, and every byte counts, NULs included
//! (`unix(7)`, "Abstract sockets"). `ss -xa` and `/proc/net/unix` print such
//! a name with a leading `@` and every NUL byte shown as `@`.
//!
//! abslock maps a lock name to an address in one documented, stable way:
//!
//! | scope | address (after the leading NUL) |
//! |---|---|
//! | [`Scope::User`] (default) | `abslock/user/<uid>/<name>` |
//! | [`Scope::System`] | `abslock/system/<name>` |
//! | [`Scope::Raw`] | exactly the bytes given (`@name` on the command line) |
//!
//! When `prefix + name` would exceed 107 bytes, the address becomes
//! `prefix + <start of name> + "~" + <32 hex digits>`, exactly 107 bytes, where
//! the hex digits are the 128-bit FNV-1a digest of the whole name. Distinct
//! names therefore never collide by truncation. A short name that happens to
//! produce an address of exactly that shape is hashed too, so a hashed address
//! can only come from hashing.

use std::fmt;

use crate::error::{Error, Result};

/// The longest abstract name Linux accepts: `sizeof(sun_path)` (108) minus the
/// leading NUL byte.
pub const MAX_ADDRESS_LEN: usize = 107;

/// The common prefix of every address abslock derives from a lock name.
pub const ADDRESS_PREFIX: &str = "abslock/";

const DIGEST_HEX_LEN: usize = 32;

/// Who shares a lock name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Private to one user: the uid is part of the address, so two users who
    /// pick the same name never collide.
    User(u32),
    /// One name for the whole network namespace, whoever takes it.
    System,
    /// An exact abstract address chosen by another program (interop with
    /// code that binds `"\0name"` itself).
    Raw,
}

/// A validated lock name together with the abstract address it maps to.
///
/// ```
/// use abslock::{LockName, Scope};
///
/// let name = LockName::system("backup")?;
/// assert_eq!(name.address(), b"abslock/system/backup");
/// assert_eq!(name.to_string(), "@abslock/system/backup");
///
/// let user = LockName::user_of(1000, "backup")?;
/// assert_eq!(user.address(), b"abslock/user/1000/backup");
/// assert_eq!(user.scope(), Scope::User(1000));
///
/// // Names an `ss -xa` user would type, in either scope.
/// let raw = LockName::parse("@my-daemon", false)?;
/// assert_eq!(raw.address(), b"my-daemon");
/// assert!(LockName::user("").is_err());
/// # Ok::<(), abslock::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockName {
    scope: Scope,
    name: Vec<u8>,
    address: Vec<u8>,
    hashed: bool,
}

impl LockName {
    /// A per-user name for the calling process's real uid.
    ///
    /// # Errors
    /// [`Error::InvalidName`] if `name` is empty or contains a NUL byte or an
    /// ASCII control character.
    pub fn user(name: impl AsRef<[u8]>) -> Result<Self> {
        Self::user_of(rustix::process::getuid().as_raw(), name)
    }

    /// A per-user name for `uid`, for example to look at another user's lock.
    ///
    /// # Errors
    /// As [`LockName::user`].
    pub fn user_of(uid: u32, name: impl AsRef<[u8]>) -> Result<Self> {
        Self::scoped(Scope::User(uid), name.as_ref())
    }

    /// A system-wide name shared by every user in the network namespace.
    ///
    /// # Errors
    /// As [`LockName::user`].
    pub fn system(name: impl AsRef<[u8]>) -> Result<Self> {
        Self::scoped(Scope::System, name.as_ref())
    }

    /// An exact abstract address, without the leading NUL byte.
    ///
    /// Every byte is significant, NULs included, as the kernel compares
    /// `addrlen` bytes.
    ///
    /// # Errors
    /// [`Error::InvalidName`] if `address` is empty or longer than
    /// [`MAX_ADDRESS_LEN`] bytes.
    pub fn raw(address: impl AsRef<[u8]>) -> Result<Self> {
        let address = address.as_ref();
        if address.is_empty() {
            return Err(Error::InvalidName(
                "a raw name needs at least one byte after '@'".into(),
            ));
        }
        if address.len() > MAX_ADDRESS_LEN {
            return Err(Error::InvalidName(format!(
                "raw name is {} bytes; Linux allows at most {MAX_ADDRESS_LEN} after the leading NUL",
                address.len()
            )));
        }
        Ok(LockName {
            scope: Scope::Raw,
            name: address.to_vec(),
            address: address.to_vec(),
            hashed: false,
        })
    }

    /// Parses a name as the command line writes it: `@address` is
    /// [`LockName::raw`] (with the escapes of [`display_address`]: `\0` or
    /// `\x00` for a NUL byte, `\\` for a backslash, a final `\0*` for NUL
    /// padding up to 107 bytes), anything else is [`LockName::system`] if
    /// `system` is set and [`LockName::user`] otherwise.
    ///
    /// # Errors
    /// As the constructor it delegates to.
    pub fn parse(text: &str, system: bool) -> Result<Self> {
        match text.strip_prefix('@') {
            Some(raw) => {
                let address = unescape_address(raw)?;
                copied_from_ss(raw, &address)?;
                Self::raw(address)
            }
            None if system => Self::system(text),
            None => Self::user(text),
        }
    }

    /// Recognises an address that abslock derived from a name, as found in
    /// `/proc/net/unix`, and returns its scope and name (or, for a hashed
    /// address, the visible start of the name followed by `~digest`).
    /// Returns `None` for any other address.
    pub fn from_address(address: &[u8]) -> Option<(Scope, String)> {
        // Bytes, not text: names may be any bytes but NUL and controls.
        let rest = address.strip_prefix(ADDRESS_PREFIX.as_bytes())?;
        let (scope, name) = if let Some(name) = rest.strip_prefix(b"system/") {
            (Scope::System, name)
        } else {
            let rest = rest.strip_prefix(b"user/")?;
            let slash = rest.iter().position(|&b| b == b'/')?;
            let uid = std::str::from_utf8(&rest[..slash]).ok()?.parse().ok()?;
            (Scope::User(uid), &rest[slash + 1..])
        };
        (!name.is_empty()).then(|| (scope, String::from_utf8_lossy(name).into_owned()))
    }

    fn scoped(scope: Scope, name: &[u8]) -> Result<Self> {
        validate(name)?;
        let prefix = match scope {
            Scope::User(uid) => format!("{ADDRESS_PREFIX}user/{uid}/"),
            Scope::System => format!("{ADDRESS_PREFIX}system/"),
            Scope::Raw => String::new(),
        };
        let mut address = prefix.into_bytes();
        let plain_len = address.len() + name.len();
        let hashed =
            plain_len > MAX_ADDRESS_LEN || (plain_len == MAX_ADDRESS_LEN && looks_hashed(name));
        if hashed {
            let room = MAX_ADDRESS_LEN - address.len() - 1 - DIGEST_HEX_LEN;
            address.extend_from_slice(&name[..utf8_floor(name, room)]);
            address.push(b'~');
            address.extend_from_slice(format!("{:032x}", fnv1a_128(name)).as_bytes());
        } else {
            address.extend_from_slice(name);
        }
        Ok(LockName {
            scope,
            name: name.to_vec(),
            address,
            hashed,
        })
    }

    /// The scope the name was created in.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The name as given (for raw names, the address).
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The abstract address, without the leading NUL byte.
    pub fn address(&self) -> &[u8] {
        &self.address
    }

    /// Whether the name was too long and the address carries a digest.
    pub fn is_hashed(&self) -> bool {
        self.hashed
    }
}

/// Shows the address as `ss -xa` does: `@` then the bytes, NUL as `@`, and
/// other unprintable bytes escaped as `\xNN`.
impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("@")?;
        f.write_str(&display_address(&self.address))
    }
}

/// Renders an abstract address exactly, readably and safely for a
/// terminal, in the form `@ADDRESS` arguments take back: a NUL byte as
/// `\0` (`ss -xa` shows it as `@`, which is ambiguous), a backslash as
/// `\\`, control characters and invalid UTF-8 as `\xNN`, and a name padded
/// with NULs to the full 107 bytes (as C programs that pass
/// `sizeof(struct sockaddr_un)` bind) as its text followed by `\0*`.
///
/// ```
/// use abslock::display_address;
///
/// assert_eq!(display_address(b"db\0prod"), "db\\0prod");
/// let mut padded = b"mydaemon".to_vec();
/// padded.resize(107, 0);
/// assert_eq!(display_address(&padded), "mydaemon\\0*");
/// ```
pub fn display_address(address: &[u8]) -> String {
    let body_len = address.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let padded = address.len() == MAX_ADDRESS_LEN && MAX_ADDRESS_LEN - body_len >= 2;
    let body = if padded {
        &address[..body_len]
    } else {
        address
    };
    let mut shown = crate::escape::escape_with(body, |c| match c {
        '\0' => Some("\\0"),
        '\\' => Some("\\\\"),
        _ => None,
    });
    if padded {
        shown.push_str("\\0*");
    }
    shown
}

/// Refuses the form in which `ss -xa` and `/proc/net/unix` print an
/// address NUL-padded to the full 107 bytes (as C programs bind with
/// `sizeof(struct sockaddr_un)`): they show each NUL byte as `@`, so the
/// copied text ends in a run of literal `@`. Taken as written, it would
/// lock a different address from the one the program holds. Any 107-byte
/// address that ends in a literal `@` is refused, with the form to write
/// instead (a literal `@` there is `\x40`).
fn copied_from_ss(text: &str, address: &[u8]) -> Result<()> {
    if address.len() != MAX_ADDRESS_LEN || !text.ends_with('@') {
        return Ok(());
    }
    let body = &address[..address
        .iter()
        .rposition(|&b| b != b'@')
        .map_or(0, |i| i + 1)];
    Err(Error::InvalidName(format!(
        "@{}: this is how ss -xa and /proc/net/unix show a NUL-padded address (each NUL \
         byte as @), not the address itself; for that address write '@{}\\0*' (and \\0 for \
         any other @ that ss showed for a NUL); for a literal @ at the end write \\x40",
        crate::escape::escape(text.as_bytes()),
        display_address(body)
    )))
}

/// Reads an address as [`display_address`] writes it.
fn unescape_address(text: &str) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::InvalidName(format!("@{text}: {why}"));
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'0') if bytes.get(i + 2) == Some(&b'*') => {
                if i + 3 != bytes.len() {
                    return Err(bad("\\0* (NUL padding) must come last"));
                }
                if out.len() > MAX_ADDRESS_LEN {
                    return Err(bad("too long to pad"));
                }
                out.resize(MAX_ADDRESS_LEN, 0);
                return Ok(out);
            }
            Some(b'0') => out.push(0),
            Some(b'x') => {
                let hex = bytes
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad("\\x needs two hex digits"))?;
                out.push(hex);
                i += 4;
                continue;
            }
            _ => {
                return Err(bad(
                    "unknown escape; use \\0 (NUL), \\xNN, \\\\ or a final \\0* (NUL padding)",
                ))
            }
        }
        i += 2;
    }
    Ok(out)
}

fn validate(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidName("a lock name must not be empty".into()));
    }
    if let Some(pos) = name.iter().position(|&b| b == 0) {
        return Err(Error::InvalidName(format!(
            "lock name has a NUL byte at offset {pos}; use a raw name for such addresses"
        )));
    }
    // Control characters would make `ss` and `/proc/net/unix` (one socket per
    // line) unreadable, and reach terminals. C1 controls (U+0080..U+009F,
    // in UTF-8 0xC2 0x80..0x9F) act as escape sequences on many terminals.
    if let Some(pos) = name.iter().position(|&b| b < 0x20 || b == 0x7f) {
        return Err(Error::InvalidName(format!(
            "lock name has a control character (0x{:02x}) at offset {pos}",
            name[pos]
        )));
    }
    if let Some(pos) = name
        .windows(2)
        .position(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]))
    {
        return Err(Error::InvalidName(format!(
            "lock name has a C1 control character (U+{:04X}) at offset {pos}",
            u32::from(name[pos + 1])
        )));
    }
    Ok(())
}

fn looks_hashed(name: &[u8]) -> bool {
    name.len() > DIGEST_HEX_LEN
        && name[name.len() - DIGEST_HEX_LEN - 1] == b'~'
        && name[name.len() - DIGEST_HEX_LEN..]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The largest `n <= max` such that `bytes[..n]` does not end inside a UTF-8
/// sequence, so that a truncated name stays readable.
fn utf8_floor(bytes: &[u8], max: usize) -> usize {
    let mut n = max.min(bytes.len());
    while n > 0 && n < bytes.len() && (bytes[n] & 0xc0) == 0x80 {
        n -= 1;
    }
    n
}

/// 128-bit FNV-1a. Stable by definition, which is what the address format
/// needs; collision resistance against a chosen name buys nothing here,
/// since anyone able to choose a colliding name can bind the address itself.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        // Reference values from the FNV authors' test suite.
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    }

    #[test]
    fn scoped_addresses() {
        let n = LockName::user_of(42, "job").unwrap();
        assert_eq!(n.address(), b"abslock/user/42/job");
        assert!(!n.is_hashed());
        assert_eq!(
            LockName::from_address(n.address()),
            Some((Scope::User(42), "job".into()))
        );
        let s = LockName::system("a/b c").unwrap();
        assert_eq!(s.address(), b"abslock/system/a/b c");
        assert_eq!(
            LockName::from_address(s.address()),
            Some((Scope::System, "a/b c".into()))
        );
        assert_eq!(LockName::from_address(b"other"), None);
        // Found by fuzzing: a name that is not UTF-8 is still recognised.
        let odd = LockName::user_of(7, b"caf\xe9").unwrap();
        assert_eq!(
            LockName::from_address(odd.address()),
            Some((Scope::User(7), "caf\u{fffd}".into()))
        );
        assert_eq!(LockName::from_address(b"abslock/user/x/y"), None);
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [&b""[..], b"a\0b", b"line\nbreak", b"\x7f", b"csi\xc2\x9b2J"] {
            assert!(matches!(LockName::system(bad), Err(Error::InvalidName(_))));
        }
        assert!(LockName::raw(b"").is_err());
        assert!(LockName::raw([b'x'; 108]).is_err());
        assert!(LockName::raw([b'x'; 107]).is_ok());
        assert_eq!(LockName::raw(b"a\0b").unwrap().address(), b"a\0b");
        assert!(LockName::parse("@", false).is_err());
    }

    #[test]
    fn long_names_hash_instead_of_truncating() {
        let long_a = "a".repeat(200);
        let mut long_b = long_a.clone();
        long_b.push('b');
        let a = LockName::system(&long_a).unwrap();
        let b = LockName::system(&long_b).unwrap();
        assert_eq!(a.address().len(), MAX_ADDRESS_LEN);
        assert_eq!(b.address().len(), MAX_ADDRESS_LEN);
        assert_ne!(a.address(), b.address());
        assert!(a.is_hashed() && b.is_hashed());
        assert!(a.address().starts_with(b"abslock/system/aaaa"));
        // Stable: the same name gives the same address.
        assert_eq!(a, LockName::system(&long_a).unwrap());
    }

    #[test]
    fn exact_fit_is_kept_but_a_hash_lookalike_is_hashed() {
        let room = MAX_ADDRESS_LEN - "abslock/system/".len();
        let fits = "x".repeat(room);
        assert_eq!(
            LockName::system(&fits).unwrap().address().len(),
            MAX_ADDRESS_LEN
        );
        assert!(!LockName::system(&fits).unwrap().is_hashed());
        let long = LockName::system("y".repeat(300)).unwrap();
        // Feed the hashed address back as a name of the same scope: it must
        // not map onto the address it looks like.
        let lookalike = &long.address()["abslock/system/".len()..];
        let again = LockName::system(lookalike).unwrap();
        assert_ne!(again.address(), long.address());
        assert!(again.is_hashed());
    }

    #[test]
    fn truncation_respects_utf8() {
        let name = "é".repeat(100);
        let n = LockName::system(&name).unwrap();
        assert!(std::str::from_utf8(n.address()).is_ok());
        assert!(n.address().len() <= MAX_ADDRESS_LEN);
    }

    #[test]
    fn an_address_copied_from_ss_is_refused_with_the_form_to_write() {
        // A C daemon binding "mydaemon" with sizeof(struct sockaddr_un):
        // ss -xa shows "@mydaemon" and 99 more '@'.
        let shown = format!("@mydaemon{}", "@".repeat(MAX_ADDRESS_LEN - 8));
        let Err(Error::InvalidName(why)) = LockName::parse(&shown, false) else {
            panic!("accepted {shown}");
        };
        assert!(why.contains("'@mydaemon\\0*'"), "{why}");
        // The form it names is the daemon's address.
        let mut padded = b"mydaemon".to_vec();
        padded.resize(MAX_ADDRESS_LEN, 0);
        assert_eq!(
            LockName::parse("@mydaemon\\0*", false).unwrap().address(),
            padded
        );
        // Shorter names with '@', and a literal '@' written as \x40, stay.
        assert_eq!(
            LockName::parse("@db@prod", false).unwrap().address(),
            b"db@prod"
        );
        let literal = format!("@{}\\x40", "a".repeat(MAX_ADDRESS_LEN - 1));
        assert_eq!(
            LockName::parse(&literal, false).unwrap().address().len(),
            MAX_ADDRESS_LEN
        );
    }

    #[test]
    fn display_escapes_exactly_and_parses_back() {
        let n = LockName::raw(b"a\0b\x01\xff\\").unwrap();
        assert_eq!(n.to_string(), "@a\\0b\\x01\\xff\\\\");
        let mut padded = b"daemon".to_vec();
        padded.resize(MAX_ADDRESS_LEN, 0);
        for address in [&b"a\0b\x01\xff\\"[..], &padded, b"x\0\0", b"@at@"] {
            let shown = LockName::raw(address).unwrap().to_string();
            let back = LockName::parse(&shown, false).unwrap();
            assert_eq!(back.address(), address, "{shown}");
        }
        assert_eq!(
            LockName::parse("@d\\0*", false).unwrap().address().len(),
            107
        );
        for bad in ["@a\\q", "@a\\x1", "@a\\0*b", "@a\\"] {
            assert!(LockName::parse(bad, false).is_err(), "{bad}");
        }
    }
}
