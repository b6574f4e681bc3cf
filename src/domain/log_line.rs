use serde::Serialize;
use std::fmt;

/// A line of a VM's launch log, safe to print on a terminal or a page: it
/// holds no control character but tabs. `vm show` prints these lines to an
/// admin's terminal, and a repository's build output is anyone's to write,
/// so escape sequences (colours, but also title changes, hyperlinks, cursor
/// moves, a terminal reset) are cut out whole, not left half-printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine(String);

impl LogLine {
    /// Strip ECMA-48 escape sequences and every other control character
    /// (C0, DEL, C1; CR and LF too: a line is one line) from what a VM sent.
    pub fn from_vm(raw: &str) -> Self {
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\t' => out.push(c),
                '\u{1b}' => match chars.next() {
                    Some('[') => skip_csi(&mut chars),
                    Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                    // ESC, intermediates (0x20-0x2F), one final byte.
                    Some(' '..='/') => {
                        while chars.next_if(|c| matches!(c, ' '..='/')).is_some() {}
                        chars.next();
                    }
                    _ => {}
                },
                '\u{9b}' => skip_csi(&mut chars),
                '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
                c if c.is_control() => {}
                c => out.push(c),
            }
        }
        Self(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A control sequence after its introducer: parameter bytes (0x30-0x3F),
/// intermediate bytes (0x20-0x2F), then one final byte (0x40-0x7E).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| matches!(c, '0'..='?')).is_some() {}
    while chars.next_if(|c| matches!(c, ' '..='/')).is_some() {}
    chars.next_if(|c| matches!(c, '@'..='~'));
}

/// A control string (OSC, DCS, SOS, PM, APC) up to its terminator: ST
/// (`ESC \` or U+009C) or, as terminals accept for OSC, BEL. An unended one
/// runs to the end of the line.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(raw: &str) -> String {
        LogLine::from_vm(raw).as_str().to_owned()
    }

    #[test]
    fn escape_sequences_are_cut_out_whole() {
        assert_eq!(clean("\u{1b}[1;31mred\u{1b}[0m"), "red");
        assert_eq!(clean("\u{1b}]0;title\u{7}text"), "text");
        assert_eq!(
            clean("\u{1b}]8;;https://x\u{1b}\\a\u{1b}]8;;\u{1b}\\b"),
            "ab"
        );
        assert_eq!(clean("\u{1b}Pq#0;2;0;0;0\u{1b}\\after"), "after");
        assert_eq!(clean("\u{1b}c\u{1b}(Bx\u{1b}7y"), "xy");
        assert_eq!(clean("\u{9b}2Jz\u{9d}osc\u{9c}w"), "zw");
    }

    #[test]
    fn other_controls_go_but_tabs_and_text_stay() {
        assert_eq!(clean("a\rb\nc\u{0}d\u{7}e\u{8}f\u{7f}g\u{85}h"), "abcdefgh");
        assert_eq!(clean("col1\tcol2 é ✓"), "col1\tcol2 é ✓");
        assert_eq!(clean("unended \u{1b}]0;title"), "unended ");
        assert_eq!(clean("trailing escape \u{1b}"), "trailing escape ");
    }

    #[test]
    fn nothing_but_tabs_among_the_controls_survives_any_input() {
        let nasty: Vec<char> = (0u32..0x200).filter_map(char::from_u32).collect();
        for window in nasty.windows(7) {
            let raw: String = window.iter().collect();
            let line = clean(&raw);
            assert!(
                !line.chars().any(|c| c.is_control() && c != '\t'),
                "{raw:?} -> {line:?}"
            );
        }
    }
}
