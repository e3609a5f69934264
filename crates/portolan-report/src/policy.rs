//! Policy outputs: the list of built-in profiles, and the one line `policy check` says
//! of a valid policy file.

use std::io::{self, Write};

use portolan_model::Severity;

use crate::table::Table;
use crate::text::terminal;

/// One built-in profile, as the list shows it.
#[derive(Debug, Clone, Copy)]
pub struct ProfileRow<'a> {
    pub name: &'a str,
    pub aliases: &'a [&'a str],
    pub description: Option<&'a str>,
}

/// The profiles table, and how to show one.
pub fn write_profiles(
    w: &mut dyn Write,
    profiles: &[ProfileRow<'_>],
    color: bool,
) -> io::Result<()> {
    let mut t = Table::new(["PROFILE", "ALIASES", "DESCRIPTION"]);
    for p in profiles {
        t.row([
            p.name.to_string(),
            p.aliases.join(", "),
            p.description.unwrap_or_default().to_string(),
        ]);
    }
    t.write(w, color)?;
    writeln!(w, "\nShow one with `portolan policy show NAME`.")
}

/// What `policy check` counts in a valid policy.
#[derive(Debug, Clone, Copy)]
pub struct CheckRow<'a> {
    pub file: &'a str,
    pub name: &'a str,
    pub allowed: usize,
    pub required: usize,
    pub forbidden_cleartext: usize,
    pub exceptions: usize,
    pub expired_exceptions: usize,
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `p.toml: ok: policy "x" allows 3 services, requires 1, ...`.
pub fn write_check(w: &mut dyn Write, c: &CheckRow<'_>) -> io::Result<()> {
    writeln!(
        w,
        "{}: ok: policy \"{}\" allows {} service{}, requires {}, forbids {} cleartext protocol{}, {} exception{}{}",
        terminal(c.file),
        terminal(c.name),
        c.allowed,
        plural(c.allowed),
        c.required,
        c.forbidden_cleartext,
        plural(c.forbidden_cleartext),
        c.exceptions,
        plural(c.exceptions),
        if c.expired_exceptions > 0 {
            format!(
                " ({} expired: {} finding)",
                c.expired_exceptions,
                Severity::Low
            )
        } else {
            String::new()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_line() {
        let c = CheckRow {
            file: "p.toml",
            name: "web",
            allowed: 1,
            required: 0,
            forbidden_cleartext: 2,
            exceptions: 1,
            expired_exceptions: 1,
        };
        let mut buf = Vec::new();
        write_check(&mut buf, &c).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "p.toml: ok: policy \"web\" allows 1 service, requires 0, forbids 2 cleartext protocols, 1 exception (1 expired: low finding)\n"
        );
    }
}
