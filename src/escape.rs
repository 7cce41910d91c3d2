//! Escaping control characters, so that text from the input or from a
//! model cannot drive a terminal or forge a line.
//!
//! Contexts, model answers, `throw` messages and file names are untrusted.
//! Written raw to a terminal, an ESC starts a control sequence (`ESC[2J`
//! clears the screen, OSC 52 writes the clipboard, OSC 8 hides a link), a
//! CR or a backspace overwrites what was printed, and a newline in a file
//! name forges a `==> secrets.txt <==` document header. Two functions:
//!
//! * [`line()`] escapes every control character, newline included: for
//!   names and other one-line fields, such as document headers.
//! * [`text()`] keeps newlines, tabs and the CR of a CRLF line ending, and
//!   escapes every other control character: for multi-line text bound for
//!   a person (the CLI's text output and its messages on standard error).
//!
//! Control characters are C0 (`U+0000`–`U+001F`), DEL and C1
//! (`U+0080`–`U+009F`, which some terminals read as ESC sequences). They
//! become `\n`, `\r`, `\t`, `\0`, `\x1b` (C0 and DEL) and `\u{9b}` (C1).
//! Backslashes are left alone, so ordinary text never changes, and a name
//! that contains a literal `\n` reads like one that contained a newline:
//! the escaping makes lines unforgeable, not names reversible. Bidirectional
//! overrides and other format characters are printable and kept.
//!
//! ```
//! use rlm::escape;
//! assert_eq!(escape::line("a\nb.txt"), "a\\nb.txt");
//! assert_eq!(escape::text("red \x1b[31mtext\r\n"), "red \\x1b[31mtext\r\n");
//! assert_eq!(escape::text("plain\ttext\n"), "plain\ttext\n");
//! ```
//!
//! Cost: one pass over the bytes; text without control characters is
//! returned borrowed, without a copy.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every control character escaped, newlines and tabs included.
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, |_, _| false)
}

/// `s` with control characters escaped except newlines, tabs and the CR
/// of a CRLF pair.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, |c, next| match c {
        '\n' | '\t' => true,
        '\r' => next == Some('\n'),
        _ => false,
    })
}

/// Whether any byte of `s` may start a control character: an ASCII control
/// or the lead byte of a C1 character in UTF-8.
fn may_need(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2)
}

fn escape(s: &str, keep: impl Fn(char, Option<char>) -> bool) -> Cow<'_, str> {
    if !may_need(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.chars().peekable();
    let mut changed = false;
    while let Some(c) = chars.next() {
        if !c.is_control() || keep(c, chars.peek().copied()) {
            out.push(c);
            continue;
        }
        changed = true;
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_character_is_escaped_in_a_line() {
        assert_eq!(
            line("\0\x07\x08\t\n\r\x1b\x7f"),
            "\\0\\x07\\x08\\t\\n\\r\\x1b\\x7f"
        );
        assert_eq!(line("a\u{9b}b\u{85}"), "a\\u{9b}b\\u{85}");
    }

    #[test]
    fn text_keeps_newlines_tabs_and_crlf_but_not_a_lone_cr() {
        assert_eq!(text("a\tb\r\nc\rd\n"), "a\tb\r\nc\\rd\n");
        assert_eq!(text("end\r"), "end\\r");
    }

    #[test]
    fn text_without_controls_is_borrowed_unchanged() {
        for s in ["", "plain", "caf\u{e9} \u{202e} \\n", "\u{a0}\u{ff}"] {
            assert!(matches!(text(s), Cow::Borrowed(_)), "{s:?}");
            assert!(matches!(line(s), Cow::Borrowed(_)), "{s:?}");
        }
    }

    #[test]
    fn escaping_is_idempotent_and_leaves_no_control_character() {
        let nasty = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\0\r\u{9b}31m\n";
        let once = text(nasty).into_owned();
        assert_eq!(text(&once), once);
        assert!(!once.chars().any(|c| c.is_control() && c != '\n'));
        assert!(!line(nasty).chars().any(char::is_control));
    }
}
