//! Signatures: lines that turn what a service said into a product and a version. The
//! format is described in `docs/signatures.md`.

use std::path::Path;

use regex::{Regex, RegexBuilder};

/// Where a signature file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum SigError {
    #[error("{file}:{line}: {msg}")]
    Parse {
        file: String,
        line: usize,
        msg: String,
    },
    #[error("reading signatures {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("signatures {file} is larger than {limit} bytes")]
    TooLarge { file: String, limit: u64 },
}

/// The largest signature file [`Signatures::load`] reads.
pub const MAX_SIGNATURE_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone)]
struct Sig {
    protocol: String,
    product: Template,
    version: Option<Template>,
    pattern: Pattern,
}

/// A pattern, compiled when first needed: a run that detects one SSH port compiles the
/// SSH signatures only. User files are compiled (and so checked) when parsed.
#[derive(Debug, Clone)]
struct Pattern {
    source: String,
    case_insensitive: bool,
    dot_all: bool,
    re: std::sync::OnceLock<Option<Regex>>,
}

impl Pattern {
    fn build(&self) -> Result<Regex, regex::Error> {
        RegexBuilder::new(&self.source)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 20)
            .multi_line(true)
            .case_insensitive(self.case_insensitive)
            .dot_matches_new_line(self.dot_all)
            .build()
    }

    fn get(&self) -> Option<&Regex> {
        self.re.get_or_init(|| self.build().ok()).as_ref()
    }
}

/// Text with `$1`..`$9` standing for the pattern's groups.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(String);

impl Template {
    fn expand(&self, caps: &regex::Captures<'_>) -> String {
        let mut out = String::new();
        let mut chars = self.0.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' {
                if let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    chars.next();
                    if let Some(m) = caps.get(d as usize) {
                        out.push_str(m.as_str());
                    }
                    continue;
                }
            }
            out.push(c);
        }
        clean(&out)
    }
}

/// Keeps printable text only, on one line, at most 100 characters.
fn clean(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(100)
        .collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a signature found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub protocol: String,
    pub product: String,
    pub version: Option<String>,
}

/// An ordered list of signatures; the first that matches wins.
#[derive(Debug, Clone, Default)]
pub struct Signatures {
    sigs: Vec<Sig>,
}

/// The signatures that ship with portolan.
pub const BUILTIN: &str = include_str!("../signatures.txt");

impl Signatures {
    /// The built-in signatures.
    pub fn builtin() -> Signatures {
        // Parsed once per process (compiling the patterns is the costly part); clones
        // share the compiled patterns.
        static PARSED: std::sync::OnceLock<Signatures> = std::sync::OnceLock::new();
        PARSED
            .get_or_init(|| {
                // The built-in file is part of the build and tested; an error is a bug.
                Signatures::parse_lazily(BUILTIN, "signatures.txt")
                    .expect("built-in signatures parse")
            })
            .clone()
    }

    /// Parses signature text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Signatures, SigError> {
        Signatures::parse_with(text, file, true)
    }

    /// Parses without compiling the patterns (the built-in file, which its tests check).
    fn parse_lazily(text: &str, file: &str) -> Result<Signatures, SigError> {
        Signatures::parse_with(text, file, false)
    }

    fn parse_with(text: &str, file: &str, compile: bool) -> Result<Signatures, SigError> {
        let mut sigs = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sig = parse_line(line, compile).map_err(|msg| SigError::Parse {
                file: file.to_string(),
                line: i + 1,
                msg,
            })?;
            sigs.push(sig);
        }
        Ok(Signatures { sigs })
    }

    /// Reads and parses a signature file.
    pub fn load(path: &Path) -> Result<Signatures, SigError> {
        let file = path.display().to_string();
        let read = |source| SigError::Read {
            file: file.clone(),
            source,
        };
        // Bounded: a FIFO or device that never ends must not fill the memory.
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                std::fs::File::open(path).map_err(read)?,
                MAX_SIGNATURE_BYTES + 1,
            ),
            &mut bytes,
        )
        .map_err(read)?;
        if bytes.len() as u64 > MAX_SIGNATURE_BYTES {
            return Err(SigError::TooLarge {
                file,
                limit: MAX_SIGNATURE_BYTES,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            SigError::Parse {
                file: file.clone(),
                line: good.iter().filter(|&&b| b == b'\n').count() + 1,
                msg: "not valid UTF-8".to_string(),
            }
        })?;
        Signatures::parse(&text, &file)
    }

    /// These signatures, then `other`'s.
    pub fn then(mut self, other: Signatures) -> Signatures {
        self.sigs.extend(other.sigs);
        self
    }

    pub fn len(&self) -> usize {
        self.sigs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sigs.is_empty()
    }

    /// The first signature for a protocol not in `known` whose pattern matches `text`:
    /// what an unrecognised greeting is matched against (the protocols portolan speaks
    /// have transcripts of their own).
    pub fn identify_other(&self, known: &[&str], text: &str) -> Option<Match> {
        self.sigs
            .iter()
            .filter(|s| !known.contains(&s.protocol.as_str()))
            .find_map(|s| s.matches(text))
    }

    /// The first signature for `protocol` (or for any protocol, when `protocol` is
    /// `None`) whose pattern matches `text`.
    pub fn identify(&self, protocol: Option<&str>, text: &str) -> Option<Match> {
        self.sigs
            .iter()
            .filter(|s| protocol.is_none_or(|p| p == s.protocol))
            .find_map(|s| s.matches(text))
    }
}

impl Sig {
    fn matches(&self, text: &str) -> Option<Match> {
        let caps = self.pattern.get()?.captures(text)?;
        let product = self.product.expand(&caps);
        let version = self
            .version
            .as_ref()
            .map(|v| v.expand(&caps))
            .filter(|v| !v.is_empty());
        Some(Match {
            protocol: self.protocol.clone(),
            product,
            version,
        })
    }
}

/// `PROTOCOL "PRODUCT" "VERSION"|- /PATTERN/FLAGS`
fn parse_line(line: &str, compile: bool) -> Result<Sig, String> {
    let (protocol, rest) = word(line);
    if protocol.is_empty()
        || !protocol
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "protocol '{protocol}' must be lower-case letters, digits and '-'"
        ));
    }
    let (product, rest) = quoted(rest).map_err(|e| format!("product: {e}"))?;
    let product = product.ok_or("product: expected a quoted string, not '-'")?;
    if product.is_empty() {
        return Err("product: must not be empty".into());
    }
    let (version, rest) = quoted(rest).map_err(|e| format!("version: {e}"))?;
    let (source, flags) = slashed(rest)?;
    let mut pattern = Pattern {
        source,
        case_insensitive: false,
        dot_all: false,
        re: std::sync::OnceLock::new(),
    };
    for f in flags.chars() {
        match f {
            'i' => pattern.case_insensitive = true,
            's' => pattern.dot_all = true,
            _ => return Err(format!("unknown pattern flag '{f}' (expected i or s)")),
        }
    }
    if compile {
        let re = pattern.build().map_err(|e| format!("pattern: {e}"))?;
        for t in std::iter::once(&product).chain(version.as_ref()) {
            check_groups(t, re.captures_len())?;
        }
        let _ = pattern.re.set(Some(re));
    }
    Ok(Sig {
        protocol: protocol.to_string(),
        product: Template(product),
        version: version.map(Template),
        pattern,
    })
}

fn check_groups(t: &str, groups: usize) -> Result<(), String> {
    let b = t.as_bytes();
    for i in 0..b.len().saturating_sub(1) {
        if b[i] == b'$' && b[i + 1].is_ascii_digit() {
            let g = usize::from(b[i + 1] - b'0');
            if g >= groups {
                return Err(format!(
                    "'${g}' refers to a group the pattern does not have"
                ));
            }
        }
    }
    Ok(())
}

fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// A double-quoted string (`\"` and `\\` escape), or `-` for none.
fn quoted(s: &str) -> Result<(Option<String>, &str), String> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('-') {
        if rest.is_empty() || rest.starts_with(char::is_whitespace) {
            return Ok((None, rest));
        }
    }
    let Some(body) = s.strip_prefix('"') else {
        return Err("expected a double-quoted string or '-'".into());
    };
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Some(out), &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                _ => return Err("only \\\" and \\\\ may be escaped in a string".into()),
            },
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

/// `/PATTERN/FLAGS`, where `\/` stands for a slash inside the pattern.
fn slashed(s: &str) -> Result<(String, &str), String> {
    let s = s.trim_start();
    let Some(body) = s.strip_prefix('/') else {
        return Err("expected a pattern in slashes: /.../".into());
    };
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => {
                let rest = &body[i + 1..];
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let (flags, tail) = rest.split_at(end);
                if !tail.trim().is_empty() {
                    return Err(format!(
                        "unexpected text after the pattern: '{}'",
                        tail.trim()
                    ));
                }
                if out.is_empty() {
                    return Err("empty pattern".into());
                }
                return Ok((out, flags));
            }
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
                None => return Err("pattern ends with a lone backslash".into()),
            },
            c => out.push(c),
        }
    }
    Err("pattern has no closing slash".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn builtin_parses() {
        assert!(Signatures::builtin().len() > 20);
        // Compiled and checked as strictly as a user's file.
        assert!(Signatures::parse(BUILTIN, "signatures.txt").is_ok());
    }

    #[test]
    fn expands_groups() {
        let s =
            Signatures::parse(r#"ssh "OpenSSH" "$1" /^SSH-[\d.]+-OpenSSH_(\S+)/"#, "t").unwrap();
        let m = s
            .identify(Some("ssh"), "SSH-2.0-OpenSSH_9.2p1 Debian")
            .unwrap();
        assert_eq!(m.product, "OpenSSH");
        assert_eq!(m.version.as_deref(), Some("9.2p1"));
        assert!(s.identify(Some("ftp"), "SSH-2.0-OpenSSH_9.2p1").is_none());
    }

    /// What the third test bed's daemons answer, and recorded answers of servers in no
    /// bed (Courier, 389 DS), as the built-in signatures must read them.
    #[test]
    fn builtin_names_recorded_banners() {
        let s = Signatures::builtin();
        let cases = [
            (
                "dns",
                "version.bind: 9.18.49-1~deb12u3-Debian",
                "ISC BIND",
                "9.18.49",
            ),
            (
                "dns",
                "version.bind: 9.11.4-P2-RedHat-9.11.4-26.P2.el7",
                "ISC BIND",
                "9.11.4-P2",
            ),
            ("dns", "version.bind: 9.19.0rc1", "ISC BIND", "9.19.0rc1"),
            (
                "smtp",
                "220 testbed3.portolan.test ESMTP Sendmail 8.17.1.9/8.17.1.9; Tue, 1 Dec 2026",
                "Sendmail",
                "8.17.1.9",
            ),
            (
                "nntp",
                "201 news.portolan.test InterNetNews NNRP server INN 2.7.1 ready (no posting)",
                "INN",
                "2.7.1",
            ),
            (
                "ldap",
                "vendorName: 389 Project\nvendorVersion: 389-Directory/2.3.1 B2023.073.0000",
                "389 Directory Server",
                "2.3.1",
            ),
        ];
        let unversioned = [
            (
                "imap",
                "* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE STARTTLS] Courier-IMAP ready. Copyright 1998-2018 Double Precision, Inc.",
                "Courier imapd",
            ),
            (
                "pop3",
                "+OK Hello there.\n+OK Here's what I can do:\nSTLS\nIMPLEMENTATION Courier Mail Server\n.",
                "Courier pop3d",
            ),
            (
                "smtp",
                "220 testbed3.portolan.test ESMTP OpenSMTPD",
                "OpenSMTPD",
            ),
        ];
        for (proto, text, product) in unversioned {
            let m = s
                .identify(Some(proto), text)
                .unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                (m.product.as_str(), m.version.as_deref()),
                (product, None),
                "{text}"
            );
        }
        for (proto, text, product, version) in cases {
            let m = s
                .identify(Some(proto), text)
                .unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                (m.product.as_str(), m.version.as_deref()),
                (product, Some(version)),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_name_the_line() {
        let err = Signatures::parse("# c\n\nssh \"x\" - /(/\n", "my.sigs").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("my.sigs:3: pattern:"), "{msg}");
        for (bad, want) in [
            ("SSH \"x\" - /a/", "protocol"),
            ("ssh x - /a/", "product"),
            ("ssh \"x\" - a", "slashes"),
            ("ssh \"x\" - /a/q", "flag"),
            ("ssh \"x\" \"$2\" /(a)/", "group"),
            ("ssh \"x\" - /a/ junk", "after the pattern"),
            ("ssh \"x", "unterminated"),
        ] {
            let e = Signatures::parse(bad, "f").unwrap_err().to_string();
            assert!(e.starts_with("f:1: ") && e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn slash_escape_and_flags() {
        let s = Signatures::parse(r#"http "nginx" "$1" /^server: nginx\/(\S+)/i"#, "t").unwrap();
        let m = s
            .identify(Some("http"), "HTTP/1.1 200 OK\nServer: nginx/1.22.1\n")
            .unwrap();
        assert_eq!(m.version.as_deref(), Some("1.22.1"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = Signatures::parse(&text, "p");
        }

        #[test]
        fn any_quoted_product_and_literal_pattern_round_trip(
            product in "[a-zA-Z0-9 ._\"\\\\/-]{1,20}",
            literal in "[a-zA-Z0-9 ._/()\\[\\]+*?-]{1,20}",
        ) {
            let quoted = product.replace('\\', "\\\\").replace('"', "\\\"");
            let pattern = regex::escape(&literal).replace('/', "\\/");
            let line = format!("p \"{quoted}\" - /{pattern}/");
            let sigs = Signatures::parse(&line, "p").unwrap();
            let m = sigs.identify(Some("p"), &format!("x{literal}y")).unwrap();
            prop_assert_eq!(m.product, clean(&product));
            prop_assert_eq!(m.version, None);
        }

        #[test]
        fn parse_never_panics_on_lines(
            proto in "[a-z-]{0,6}",
            product in "[^\\n]{0,12}",
            pat in "[^\\n]{0,16}",
        ) {
            let line = format!("{proto} \"{product}\" - /{pat}/");
            if let Ok(s) = Signatures::parse(&line, "p") {
                let _ = s.identify(None, &pat);
            }
        }
    }
}
