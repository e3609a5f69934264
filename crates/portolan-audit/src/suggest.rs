//! "Did you mean": the nearest names by edit distance.

/// Edit distance with adjacent transpositions (optimal string alignment), counting
/// characters, with an early exit past `limit`.
pub fn distance(a: &str, b: &str, limit: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 0..a.len() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for j in 0..b.len() {
            let cost = usize::from(a[i] != b[j]);
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(prev2[j - 1] + 1);
            }
            cur[j + 1] = d;
            row_min = row_min.min(d);
        }
        if row_min > limit {
            return limit + 1;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Up to `max` names closest to `word`: within a third of its length (at least 2, at
/// most 3 edits), or names that start with it; nearest first, and among equals in the
/// order given (so callers put the common names first).
pub fn nearest<'a>(
    word: &str,
    names: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Vec<String> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).clamp(2, 3);
    let mut found: Vec<(usize, &str)> = names
        .into_iter()
        .filter_map(|n| {
            let d = distance(&word, n, limit);
            if d <= limit {
                Some((d, n))
            } else if word.len() >= 3 && n.starts_with(&word) {
                Some((limit + 1, n))
            } else {
                None
            }
        })
        .collect();
    found.sort_by_key(|&(d, _)| d);
    let mut out: Vec<String> = Vec::new();
    for (_, n) in found {
        if out.len() == max {
            break;
        }
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("smtp", "smtp", 3), 0);
        assert_eq!(distance("smpt", "smtp", 3), 1);
        assert_eq!(distance("imap", "imaps", 3), 1);
        assert_eq!(distance("", "abc", 3), 3);
        assert_eq!(distance("postgres", "postgresql", 1), 2);
    }

    #[test]
    fn nearest_names() {
        let names = ["smtp", "smtps", "snmp", "ssh", "submission", "postgresql"];
        assert_eq!(nearest("smpt", names, 3), ["smtp", "smtps", "snmp"]);
        assert_eq!(nearest("smtx", ["smtq", "smtp"], 1), ["smtq"]);
        assert_eq!(nearest("postgres", names, 3), ["postgresql"]);
        assert!(nearest("zzzzzz", names, 3).is_empty());
    }
}
