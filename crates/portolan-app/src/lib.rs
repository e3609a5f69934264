//! The operations a user runs, as library calls that return portolan's model: take an
//! inventory, scan, detect, audit (the inside view, the outside view, the host's facts
//! and the evaluation) and plan a firewall. The binary parses flags, calls one of these
//! and renders the result with `portolan-report`; the store, the exporter and the HTML
//! report call the same functions.
#![forbid(unsafe_code)]

pub mod audit;
pub mod collect;
pub mod detect;
pub mod firewall;
pub mod history;
pub mod host;
pub mod input;
pub mod inventory;
pub mod policy;
pub mod registry;
pub mod report;
pub mod scan;

/// An error and its causes, `: `-separated, each said once: many errors already end with
/// their source's text, which would otherwise stand twice.
pub fn error_text(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut cur = err.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !msg.ends_with(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
        cur = cause.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct E(String, #[source] Option<std::io::Error>);

    #[test]
    fn error_text_says_each_cause_once() {
        let io = || std::io::Error::other("disk gone");
        let e = E("cannot read p.toml".into(), Some(io()));
        assert_eq!(super::error_text(&e), "cannot read p.toml: disk gone");
        // A message that already ends with its cause's text does not repeat it.
        let e = E("cannot read p.toml: disk gone".into(), Some(io()));
        assert_eq!(super::error_text(&e), "cannot read p.toml: disk gone");
    }
}
