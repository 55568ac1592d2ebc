//! Removing terminal escape sequences from text a tenant's build or release command wrote
//! (colours, cursor moves, window titles), for places that are not a terminal: the output
//! kept for `paas releases:output` and what is relayed to a client that is not a TTY.

use std::borrow::Cow;

const ESC: char = '\u{1b}';
const BEL: char = '\u{7}';
/// The 8-bit form of `ESC [`.
const CSI: char = '\u{9b}';
/// The 8-bit form of `ESC ]`.
const OSC: char = '\u{9d}';

/// `text` without its ANSI escape sequences: CSI (`ESC [ … final`, colours and cursor
/// moves), OSC (`ESC ] … BEL` or `ESC ] … ESC \`, titles and hyperlinks), the other
/// two-character `ESC x` sequences and their 8-bit forms. Everything else, line breaks and
/// tabs included, is kept; an unterminated sequence at the end is dropped.
pub fn strip_ansi(text: &str) -> Cow<'_, str> {
    if !text.contains([ESC, CSI, OSC]) {
        return Cow::Borrowed(text);
    }
    let mut kept = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']') => skip_osc(&mut chars),
                // A two-character sequence (`ESC c`, `ESC 7`, `ESC (B`'s first part…).
                Some(_) | None => {}
            },
            CSI => skip_csi(&mut chars),
            OSC => skip_osc(&mut chars),
            other => kept.push(other),
        }
    }
    Cow::Owned(kept)
}

/// Parameters and intermediates (0x20–0x3F) up to the final byte (0x40–0x7E).
fn skip_csi(chars: &mut impl Iterator<Item = char>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
    }
}

/// Up to BEL or the string terminator `ESC \`.
fn skip_osc(chars: &mut std::iter::Peekable<impl Iterator<Item = char>>) {
    while let Some(c) = chars.next() {
        match c {
            BEL => return,
            ESC => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "Step 1/3 : FROM paas/busybox\n\tdone";
        assert!(matches!(strip_ansi(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn colours_and_cursor_moves_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[1;32mok\u{1b}[0m done"), "ok done");
        assert_eq!(strip_ansi("a\u{1b}[2K\u{1b}[1Gb"), "ab");
        assert_eq!(strip_ansi("\u{9b}31mred\u{9b}0m"), "red");
    }

    #[test]
    fn titles_and_hyperlinks_are_removed() {
        assert_eq!(strip_ansi("\u{1b}]0;pwned\u{7}build"), "build");
        assert_eq!(
            strip_ansi("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\"),
            "link"
        );
    }

    #[test]
    fn two_character_and_unterminated_sequences_are_removed() {
        assert_eq!(strip_ansi("a\u{1b}cb\u{1b}7c"), "abc");
        assert_eq!(strip_ansi("kept\u{1b}[31"), "kept");
        assert_eq!(strip_ansi("kept\u{1b}"), "kept");
    }

    #[test]
    fn line_breaks_tabs_and_other_text_are_kept() {
        assert_eq!(
            strip_ansi("\u{1b}[33mwarn\u{1b}[0m:\tü\r\nnext"),
            "warn:\tü\r\nnext"
        );
    }
}
