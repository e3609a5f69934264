//! The one escaping function of the HTML report.
//!
//! Everything that goes into the page as text or as a quoted attribute value goes through
//! [`escape`]: banners, certificate subjects, HTTP headers, process names and command lines
//! are chosen by whoever runs the peer or the process.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Escapes `s` for HTML text and for double- or single-quoted attribute values:
/// `& < > " '` become character references. Control characters (other than tab and line
/// break) and the invisible format characters that could hide or reorder what a reader
/// sees (bidirectional overrides, zero-width characters) become visible `\xNN` or
/// `\u{NNNN}` escapes. Text that needs none is returned as it is.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_hidden(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape`], cut at `max` characters with an ellipsis (the whole text stays in the
/// embedded data).
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => escape(s),
        Some((at, _)) => Cow::Owned(format!("{}…", escape(&s[..at]))),
    }
}

fn needs_escape(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'')
        || (c.is_control() && c != '\t' && c != '\n')
        || is_hidden(c)
}

/// Bidirectional embeddings, overrides and isolates, zero-width characters, and the C1
/// controls: characters that make text read differently from what it is.
fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    ) || (c.is_control() && (c as u32) >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The inverse for text without control or hidden characters, as a browser decodes it.
    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn hostile_markup_is_text() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            escape("\"><img src=x onerror=alert(1)>"),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(escape("it's"), "it&#39;s");
        assert!(matches!(escape("sshd -D"), Cow::Borrowed(_)));
        assert_eq!(escape("a\x1b[2Jb\r"), "a\\x1b[2Jb\\x0d");
        assert_eq!(escape("txt.exe\u{202e}gpj"), "txt.exe\\u{202e}gpj");
        assert_eq!(escape("\u{85}"), "\\u{0085}");
        assert_eq!(bounded("<abcdef", 3), "&lt;ab…");
        assert_eq!(bounded("abc", 3), "abc");
    }

    proptest! {
        #[test]
        fn output_holds_no_markup(s in any::<String>()) {
            let e = escape(&s);
            prop_assert!(!e.contains(['<', '>', '"', '\'']));
            // Every `&` starts one of the five references.
            for (i, _) in e.match_indices('&') {
                let rest = &e[i..];
                prop_assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|r| rest.starts_with(r)),
                    "{}", rest
                );
            }
            prop_assert!(!e.chars().any(|c| (c.is_control() && c != '\t' && c != '\n') || is_hidden(c)));
        }

        #[test]
        fn printable_text_reads_back(s in "[ -~\t\n\u{a0}-\u{1fff}]{0,64}") {
            prop_assert_eq!(unescape(&escape(&s)), s);
        }

        #[test]
        fn bounded_cuts_at_max_characters(s in "[ -~\u{e9}\u{4e2d}]{0,40}", max in 0usize..40) {
            let want: String = if s.chars().count() > max {
                s.chars().take(max).chain(['…']).collect()
            } else {
                s.clone()
            };
            prop_assert_eq!(unescape(&bounded(&s, max)), want);
        }
    }
}
