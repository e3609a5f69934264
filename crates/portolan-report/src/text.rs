//! Text from outside (banners, certificate subjects, process names and command lines),
//! made safe for a terminal: no control characters, bounded length.

use std::borrow::Cow;

/// Escapes control characters (`\x1b` becomes `\x1b` as four visible characters, a line
/// break `\n`) and cuts the text at `max` characters with an ellipsis. Text that needs
/// neither is returned as it is.
pub fn terminal_bounded(s: &str, max: usize) -> Cow<'_, str> {
    let clean = !s.chars().any(char::is_control) && s.chars().nth(max).is_none();
    if clean {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`terminal_bounded`] at 200 characters, the bound for one table cell.
pub fn terminal(s: &str) -> Cow<'_, str> {
    terminal_bounded(s, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bounds() {
        assert!(matches!(terminal("nginx"), Cow::Borrowed("nginx")));
        assert_eq!(terminal("a\x1b[2Jb\n"), "a\\x1b[2Jb\\n");
        assert_eq!(terminal_bounded("abcdef", 3), "abc…");
        assert_eq!(terminal(&"x".repeat(500)).chars().count(), 201);
    }
}
