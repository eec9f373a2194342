//! Text from outside (codes, peers, callers, files, the node's answers) made safe to print in a
//! terminal (issue 15 fault 4): a masked name of `ESC [1A ESC [2K \r RECOGNIZED ...` must not move
//! the cursor and overwrite the verdict, and a right-to-left override must not reorder a line.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` can change how a terminal shows other text: C0 and C1 control characters and DEL
/// (cursor movement, erasing, carriage return), the bidirectional controls (U+061C, U+200E,
/// U+200F, U+202A to U+202E, U+2066 to U+2069: they reorder what follows) and the zero-width and
/// invisible characters (U+200B to U+200D, U+2060, U+FEFF: text that cannot be seen).
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || crate::identity::is_bidi_control(c) || crate::identity::is_zero_width(c)
}

/// `s` with every unsafe character (see `is_unsafe`) written as `\u` and its code point in 4
/// upper-case hex digits (`\u202E`), except line feeds when `keep_newlines` (the layout of a whole
/// line of output; a single field escapes them too). The same escape as JSON's, so JSON output
/// stays valid and means the same; plain text shows the code point instead of acting on it.
pub fn terminal_safe(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| is_unsafe(c) && !(keep_newlines && c == '\n');
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{:04X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bidi_and_invisible_characters_are_escaped() {
        let forged = "\x1b[1A\x1b[2K\x1b[1A\x1b[2K\rRECOGNIZED  counts here as GREEN";
        assert_eq!(
            terminal_safe(forged, true),
            "\\u001B[1A\\u001B[2K\\u001B[1A\\u001B[2K\\u000DRECOGNIZED  counts here as GREEN"
        );
        assert_eq!(terminal_safe("\u{202e}*三", false), "\\u202E*三");
        assert_eq!(terminal_safe("\u{200d}", false), "\\u200D");
        assert_eq!(terminal_safe("a\u{9b}b\u{7f}", false), "a\\u009Bb\\u007F");
        assert_eq!(terminal_safe("a\nb\tc", true), "a\nb\\u0009c");
        assert_eq!(terminal_safe("a\nb", false), "a\\u000Ab");
        // Ordinary text, Chinese names and masks are left alone (and not copied).
        assert!(matches!(
            terminal_safe("张*三  5101*1234", false),
            Cow::Borrowed(_)
        ));
        // JSON's escapes mean the same character: the output stays valid JSON.
        let json = format!("\"{}\"", terminal_safe("\u{202e}x", false));
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), "\u{202e}x");
    }
}
