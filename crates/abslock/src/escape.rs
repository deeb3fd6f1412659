//! Text that other processes control, made safe to print on a terminal.
//!
//! A holder's command line, its process name, the version and metadata it
//! reports, a lock name, a user name from NSS: another user chooses each of
//! them. Printed raw, an escape sequence in one can clear the screen, set
//! the window title, move the cursor, or forge whole output lines (CR, LF)
//! on the terminal of whoever runs `abslock status`, often root. Every
//! human-readable output of abslock goes through [`escape`]; JSON output
//! keeps the exact text (its encoder escapes control characters).
//!
//! Escaped: C0 controls, DEL and C1 controls (Unicode category Cc), the
//! bidirectional formatting characters that reorder what a reader sees
//! (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), and bytes that
//! are not UTF-8. Controls below U+0100 and invalid bytes become `\xNN`,
//! the others `\u{NNNN}`; a backslash stays a backslash.

/// `text` with every control character, bidi control and invalid UTF-8
/// byte escaped (see this module's docs).
///
/// ```
/// use abslock::__private::escape::escape;
///
/// assert_eq!(escape(b"sleep 10"), "sleep 10");
/// assert_eq!(escape(b"\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");
/// assert_eq!(escape("a\u{9b}b\u{202e}".as_bytes()), "a\\x9bb\\u{202e}");
/// assert_eq!(escape(b"caf\xe9"), "caf\\xe9");
/// ```
pub fn escape(text: &[u8]) -> String {
    escape_with(text, |_| None)
}

/// [`escape`] for text that is already a `str`.
pub fn escape_str(text: &str) -> String {
    escape(text.as_bytes())
}

/// [`escape`], with `special` choosing another rendering for some
/// characters (for example NUL as `\0` in abstract names).
pub(crate) fn escape_with(text: &[u8], special: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(text.len());
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            match special(c) {
                Some(shown) => out.push_str(shown),
                None if needs_escape(c) => push_escaped(&mut out, c),
                None => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    let code = u32::from(c);
    if code < 0x100 {
        out.push_str(&format!("\\x{code:02x}"));
    } else {
        out.push_str(&format!("\\u{{{code:x}}}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_a_terminal_interprets_survives() {
        let mut hostile = Vec::new();
        for b in 0u8..0x20 {
            hostile.push(b);
        }
        hostile.push(0x7f);
        for c in '\u{80}'..='\u{9f}' {
            hostile.extend_from_slice(c.to_string().as_bytes());
        }
        hostile.extend_from_slice(b"\xff\xfe\xc2");
        let shown = escape(&hostile);
        assert!(shown.chars().all(|c| !c.is_control()), "{shown:?}");
        assert!(shown.is_ascii());
        assert_eq!(
            escape(b"plain text, \\ and \xc3\xa9"),
            "plain text, \\ and é"
        );
    }
}
