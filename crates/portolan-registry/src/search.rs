//! Ranked full-text search over names, aliases, descriptions and portolan's notes.

use crate::Category;
use crate::registry::{Entry, Registry, Which};

/// A search result and its score (higher is better).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    pub entry: Entry<'a>,
    pub score: u32,
}

/// The words of a query: lower case, split on anything that is not a letter, digit or one
/// of `-_+.*/` (which occur in service names).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || "-_+.*/".contains(c)))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// True when `word` occurs in `text` (both lower case) starting at a word boundary;
/// `whole` also asks for a boundary at its end.
fn occurs(text: &str, word: &str, whole: bool) -> bool {
    let bytes = text.as_bytes();
    let boundary = |i: usize| bytes.get(i).is_none_or(|b| !b.is_ascii_alphanumeric());
    text.match_indices(word).any(|(i, _)| {
        let start = i == 0 || boundary(i - 1);
        start && (!whole || boundary(i + word.len()))
    })
}

/// How well one entry matches one word; 0 is no match.
fn score_word(e: &Entry<'_>, name: &str, desc: &str, word: &str) -> u32 {
    let mut s = 0;
    s += if name == word {
        100
    } else if e.aliases().any(|a| a.eq_ignore_ascii_case(word)) {
        80
    } else if name.starts_with(word) {
        60
    } else if name.contains(word) {
        30
    } else {
        0
    };
    if let Some(n) = e.notes() {
        if n.keywords.iter().any(|k| k.eq_ignore_ascii_case(word))
            || n.also.iter().any(|a| a.eq_ignore_ascii_case(word))
        {
            s += 80;
        }
    }
    if occurs(desc, word, true) {
        s += 40;
    } else if occurs(desc, word, false) {
        s += 20;
    }
    s
}

impl Registry {
    /// Ranked full-text search. Every word of `text` must match the entry's name, an
    /// alias, its description or portolan's notes about it (`mail` finds pop3 and imap,
    /// whose descriptions never say "mail"). Best first; on a tie, lower ports first.
    /// Reserved and unassigned rows are not searched.
    ///
    /// ```
    /// use portolan_registry::Registry;
    /// let hits = Registry::embedded().search("mail");
    /// let top: Vec<_> = hits.iter().take(12).map(|h| h.entry.name).collect();
    /// for name in ["smtp", "pop3", "imap", "submission"] {
    ///     assert!(top.contains(&name), "{name} not in {top:?}");
    /// }
    /// ```
    pub fn search(&self, text: &str) -> Vec<Hit<'_>> {
        let words = words(text);
        if words.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<Hit<'_>> = self
            .entries(Which::All)
            .into_iter()
            .filter(|e| !e.name.is_empty())
            .filter_map(|e| {
                let name = e.name.to_lowercase();
                let desc = e.description.to_lowercase();
                let mut total = 0;
                for w in &words {
                    let s = score_word(&e, &name, &desc, w);
                    if s == 0 {
                        return None;
                    }
                    total += s;
                }
                if e.notes().is_some() {
                    total += 40;
                }
                if e.category() == Some(Category::WellKnown) {
                    total += 5;
                }
                Some(Hit {
                    entry: e,
                    score: total,
                })
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .cmp(&a.score)
                .then_with(|| {
                    a.entry
                        .ports
                        .map(|p| p.first)
                        .cmp(&b.entry.ports.map(|p| p.first))
                })
                .then_with(|| a.entry.name.cmp(b.entry.name))
                .then_with(|| a.entry.proto.cmp(&b.entry.proto))
        });
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::parse_services;
    use crate::{Origin, Source};

    fn names(hits: &[Hit<'_>], n: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for h in hits {
            if !out.iter().any(|o| o == h.entry.name) {
                out.push(h.entry.name.to_string());
            }
        }
        out.truncate(n);
        out
    }

    #[test]
    fn exact_name_first() {
        let hits = Registry::embedded().search("ssh");
        assert_eq!(hits[0].entry.name, "ssh");
        assert_eq!(names(&Registry::embedded().search("HTTPS"), 1), ["https"]);
    }

    #[test]
    fn all_words_must_match() {
        let hits = Registry::embedded().search("secure mail");
        assert!(!hits.is_empty());
        for h in &hits {
            let text = format!("{} {}", h.entry.name, h.entry.description).to_lowercase();
            let n = h.entry.notes();
            let kw = n.is_some_and(|n| n.keywords.contains(&"mail") || n.keywords.contains(&"tls"));
            assert!(text.contains("mail") || kw, "{h:?}");
        }
        assert!(Registry::embedded().search("zzqqxx").is_empty());
        assert!(Registry::embedded().search("  ").is_empty());
    }

    #[test]
    fn database_finds_the_local_ones() {
        let top = names(&Registry::embedded().search("database"), 15);
        for n in ["postgresql", "mysql", "mongodb", "redis"] {
            assert!(top.iter().any(|t| t == n), "{n} not in {top:?}");
        }
    }

    #[test]
    fn system_entries_are_searched() {
        let reg = Registry::with_services(parse_services(b"webmin 10000/tcp\n"), Origin::System);
        let hits = reg.search("webmin");
        assert_eq!(hits[0].entry.source, Source::System);
    }

    #[test]
    fn word_boundaries() {
        assert!(occurs("simple mail transfer", "mail", true));
        assert!(!occurs("email", "mail", false));
        assert!(occurs("mailbox", "mail", false));
        assert!(!occurs("mailbox", "mail", true));
    }
}
