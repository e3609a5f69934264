//! Property tests of both parsers: the services file and IANA's CSV.

use portolan_registry::iana_csv;
use portolan_registry::services::{EtcServices, ServiceLine, parse_services};
use proptest::prelude::*;

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9+._*/-]{0,14}"
}

fn proto() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("tcp".to_string()),
        Just("udp".to_string()),
        Just("sctp".to_string()),
        Just("dccp".to_string()),
        Just("ddp".to_string()),
    ]
}

fn line() -> impl Strategy<Value = (String, u16, String, Vec<String>, String)> {
    (
        word(),
        any::<u16>(),
        proto(),
        proptest::collection::vec(word(), 0..3),
        "[ -~\t\n]{0,30}",
    )
}

/// A naive reading of glibc's rule: scan lines in order, first match wins.
fn first(lines: &[ServiceLine], hit: impl Fn(&ServiceLine) -> bool) -> Option<&ServiceLine> {
    lines.iter().find(|l| hit(l))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Anything at all: no panic, warnings point at real lines, parsed lines are valid.
    #[test]
    fn services_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let f = parse_services(&bytes);
        let nlines = bytes.split(|&b| b == b'\n').count();
        for w in &f.warnings {
            prop_assert!(w.line >= 1 && w.line <= nlines);
        }
        for l in &f.lines {
            prop_assert!(!l.name.is_empty() && !l.protocol.is_empty());
            prop_assert!(!l.name.contains('#'));
        }
    }

    /// Text made of plausible lines, comments, blanks and junk: every line is either an
    /// entry or a warning or nothing (blank/comment), and lookups are first-match.
    #[test]
    fn services_first_match(lines in proptest::collection::vec(
        prop_oneof![
            line().prop_map(|(n, p, pr, a, _)| format!("{n} {p}/{pr} {}", a.join(" "))),
            line().prop_map(|(n, p, pr, _, c)| format!("  {n}\t{p}/{pr}#{}", c.replace('\n', " "))),
            Just("# comment".to_string()),
            Just(String::new()),
            (word(), 1u32..70000, 1u32..70000).prop_map(|(n, a, b)| format!("{n} {a}-{b}/tcp")),
            (word(), 65536u32..1_000_000).prop_map(|(n, p)| format!("{n} {p}/tcp")),
        ],
        0..30,
    ), probe in word(), port in any::<u16>()) {
        let text = lines.join("\n");
        let f = parse_services(text.as_bytes());
        for l in &f.lines {
            prop_assert!(!lines[l.line - 1].trim_start().starts_with('#'));
        }
        let all: Vec<&str> = f.lines.iter().map(|l| l.name.as_str()).collect();
        let names = all.iter().copied().chain([probe.as_str()]);
        for name in names {
            for p in [None, Some("tcp"), Some("udp")] {
                let want = first(&f.lines, |l| l.answers_to(name) && p.is_none_or(|p| p == l.protocol));
                prop_assert_eq!(f.by_name(name, p), want);
            }
        }
        for port in f.lines.iter().map(|l| l.port).chain([port]) {
            for p in [None, Some("tcp"), Some("ddp")] {
                let want = first(&f.lines, |l| l.port == port && p.is_none_or(|p| p == l.protocol));
                prop_assert_eq!(f.by_port(port, p), want);
            }
        }
    }

    /// The etc-services writer and the parser: what is written reads back the same.
    #[test]
    fn etc_services_round_trip(lines in proptest::collection::vec(line(), 0..40)) {
        let etc = EtcServices {
            lines: lines
                .iter()
                .map(|(n, p, pr, a, c)| {
                    let a: Vec<&str> = a.iter().map(String::as_str).collect();
                    (ServiceLine::new(0, n, *p, pr, &a), c.clone())
                })
                .collect(),
            skipped: Vec::new(),
        };
        let text = etc.render("a header\nof two lines");
        let back = parse_services(text.as_bytes());
        prop_assert!(back.warnings.is_empty(), "{:?}", back.warnings);
        let back: Vec<ServiceLine> = back.lines.into_iter().map(|l| l.with_line(0)).collect();
        let want: Vec<ServiceLine> = etc.lines.into_iter().map(|(l, _)| l).collect();
        prop_assert_eq!(back, want);
    }

    /// Any text: the CSV reader returns records or an error, never a panic.
    #[test]
    fn csv_never_panics(text in "[a-z,\"\r\n0-9 -]{0,300}") {
        let _ = iana_csv::records(&text);
        let _ = iana_csv::parse(&text);
    }

    /// Fields with commas, quotes and line breaks survive quoting and reading.
    #[test]
    fn csv_round_trip(rows in proptest::collection::vec(
        proptest::collection::vec("[a-z ,\"\n]{0,12}", 12),
        1..10,
    )) {
        let quote = |f: &String| {
            if f.contains([',', '"', '\n']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.clone() }
        };
        let mut text = String::new();
        for r in &rows {
            text.push_str(&r.iter().map(quote).collect::<Vec<_>>().join(","));
            text.push_str("\r\n");
        }
        let back = iana_csv::records(&text).unwrap();
        // A record whose only field is empty is a blank line, which the reader skips; a
        // 12-field record is never that.
        let back: Vec<Vec<String>> = back.into_iter().map(|(_, f)| f).collect();
        prop_assert_eq!(back, rows);
    }
}
