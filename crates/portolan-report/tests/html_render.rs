//! The HTML report without a browser: its structure (golden), its data round trip, its
//! size and speed, its CSP, and hostile text.

mod html_common;

use std::time::Instant;

use base64::Engine as _;
use html_common::*;
use portolan_report::html::{self, Error, read_back};
use sha2::{Digest, Sha256};

fn render(input: &html::ReportInput) -> String {
    let mut out = Vec::new();
    html::render(input, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The text between `open` (whose tag ends with `>`) and `close`.
fn element<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html.find(open).unwrap_or_else(|| panic!("no {open}"));
    let body = start + html[start..].find('>').unwrap() + 1;
    let end = body + html[body..].find(close).unwrap();
    &html[body..end]
}

/// The page with the style sheet, the script and the data replaced by their sizes, one
/// element or text run per line: the structure a golden test should pin.
fn structure(page: &str) -> String {
    let mut s = page.to_string();
    for (open, close) in [
        ("<style>", "</style>"),
        ("<script>", "</script>"),
        ("<script type=\"application/json\"", "</script>"),
    ] {
        let body = element(&s, open, close).to_string();
        s = s.replacen(&body, &format!("[{} bytes]", body.len()), 1);
    }
    let csp = html::content_security_policy();
    s = s.replace(&csp, "[csp]");
    s.replace("><", ">\n<")
}

#[test]
fn golden_structure_of_a_full_report() {
    let page = render(&sample());
    insta::assert_snapshot!("html_sample", structure(&page));
}

#[test]
fn data_reads_back_as_it_went_in() {
    let input = sample();
    let page = render(&input);
    let back = read_back(&page).unwrap();
    assert_eq!(back.input, input);
    assert_eq!(back.encoding, "json");
    assert_eq!(back.schema, 1);
    // The digest shown is the SHA-256 of the element's text as it stands in the file.
    let text = element(&page, "<script type=\"application/json\"", "</script>");
    let digest: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(back.sha256, digest);
    assert!(page.contains(&format!("data-sha256=\"{digest}\"")));
    assert!(page.contains(&format!("<code id=\"data-sha256\">{digest}</code>")));
    // The JSON is the model's JSON: jq can read it.
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["format"], "portolan-report");
    assert_eq!(v["report"]["listeners"][0]["port"], 22);
}

#[test]
fn large_data_is_compressed_and_reads_back() {
    let input = many(5_000);
    let page = render(&input);
    let back = read_back(&page).unwrap();
    assert_eq!(back.encoding, "gzip+base64");
    assert_eq!(back.input, input);
}

#[test]
fn hostile_data_reads_back_and_cannot_close_its_element() {
    let input = hostile();
    let page = render(&input);
    let text = element(&page, "<script type=\"application/json\"", "</script>");
    assert!(!text.contains('<'), "a '<' in the embedded data");
    assert!(text.len() > 10_000, "the data element ended early");
    assert_eq!(read_back(&page).unwrap().input, input);
}

#[test]
fn tampered_or_missing_data_is_an_error() {
    let page = render(&sample());
    let tampered = page.replacen("\"port\":22", "\"port\":23", 1);
    assert!(
        matches!(read_back(&tampered), Err(Error::Digest { .. })),
        "tampering went unnoticed"
    );
    assert!(matches!(
        read_back("<html><script>1</script></html>"),
        Err(Error::NoData)
    ));
    let err = read_back("").unwrap_err().to_string();
    assert!(err.contains("portolan-data"), "{err}");
}

#[test]
fn hostile_strings_are_text_everywhere() {
    let full = render(&hostile());
    // The embedded data holds them as JSON (with every `<` escaped; checked above).
    let data = element(&full, "<script type=\"application/json\"", "</script>");
    let page = full.replacen(data, "", 1);
    for p in PAYLOADS {
        assert!(!page.contains(p), "payload {p:?} is in the page unescaped");
    }
    for bad in [
        "<img",
        "<svg onload",
        "<iframe",
        "onerror=alert(1)>",
        "<script>alert",
    ] {
        assert!(!page.contains(bad), "{bad:?} in the page");
    }
    // Exactly the two scripts portolan writes.
    assert_eq!(page.matches("<script").count(), 2);
    // And they are there, escaped.
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn csp_allows_exactly_the_inline_style_and_script() {
    let page = render(&sample());
    let csp = html::content_security_policy();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(page.contains(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">"
    )));
    let b64 =
        |t: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(t.as_bytes()));
    let style = element(&page, "<style>", "</style>");
    let script = element(&page, "<script>", "</script>");
    assert!(
        csp.contains(&format!("style-src 'sha256-{}'", b64(style))),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("script-src 'sha256-{}'", b64(script))),
        "{csp}"
    );
    // No style attribute (the CSP would block it) and nothing to fetch.
    assert!(!page.contains(" style=\""));
    for remote in [
        "http://", "https://", "src=\"", "@import", "url(http", "<link",
    ] {
        assert!(!page.contains(remote), "{remote:?} in the page");
    }
}

#[test]
fn ten_thousand_listeners_stay_under_two_megabytes_and_one_second() {
    let input = many(10_000);
    let t = Instant::now();
    let page = render(&input);
    let took = t.elapsed();
    eprintln!("10k listeners: {} bytes in {took:?}", page.len());
    assert!(page.len() < 2 * 1024 * 1024, "{} bytes", page.len());
    // Optimised, it takes a few tens of milliseconds; an unoptimised test build spends
    // most of a second in serde_json alone.
    let limit = if cfg!(debug_assertions) { 10.0 } else { 1.0 };
    assert!(took.as_secs_f64() < limit, "rendering took {took:?}");
    assert_eq!(page.matches("<td class=\"x-").count(), 10_000);
}

#[test]
fn sections_come_in_the_readers_order() {
    let page = render(&sample());
    let at = |id: &str| {
        page.find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id}"))
    };
    let order = [
        "summary",
        "findings",
        "chart-section",
        "listeners",
        "scans",
        "drift",
        "policy",
        "provenance",
    ];
    for w in order.windows(2) {
        assert!(at(w[0]) < at(w[1]), "{} should come before {}", w[0], w[1]);
    }
}

#[test]
fn an_empty_report_says_what_it_lacks() {
    let page = render(&html::ReportInput::default());
    for words in [
        "No audit in this report",
        "No inventory in this report",
        "No scan in this report",
        "No history in this report",
    ] {
        assert!(page.contains(words), "missing {words:?}");
    }
    // Without a scan it never claims anything about reachability.
    assert!(!page.contains("not reachable"));
}

/// A sample as `report --run 42` makes it: the stored run, with where it came from.
fn with_history() -> html::ReportInput {
    let mut input = sample();
    input.history = Some(html::HistoryRef {
        kind: html::HistoryKind::Run,
        point: "42".into(),
        run: Some(42),
        db: Some("/var/lib/portolan/history.db".into()),
        made: Some(portolan_model::RunInfo {
            started: "2026-12-02T08:00:00Z".into(),
            host: "admin1.example.test".into(),
            command: "portolan report --run 42 -o run42.html".into(),
            version: "0.1.0".into(),
        }),
    });
    input
}

/// The parts of a page the drift makes: the summary card, the drift section, the drift
/// lane's marks and the history in the provenance.
fn drift_parts(page: &str) -> String {
    let s = structure(page);
    let mut out = Vec::new();
    let card = s.find("<h3>Since the last run</h3>").unwrap();
    out.push(&s[card..card + s[card..].find("</div>").unwrap()]);
    let sec = s.find("<details class=\"section\" id=\"drift\"").unwrap();
    out.push(&s[sec..sec + s[sec..].find("</details>").unwrap()]);
    let mut rest = &s[..];
    while let Some(at) = rest.find("<g class=\"mark d-") {
        let end = at + rest[at..].find("</g>").unwrap() + 4;
        out.push(&rest[at..end]);
        rest = &rest[end..];
    }
    let prov = s.find("<dl class=\"prov\" id=\"history\">").unwrap();
    out.push(&s[prov..prov + s[prov..].find("</dl>").unwrap()]);
    out.join("\n----\n")
}

#[test]
fn golden_structure_of_the_drift() {
    insta::assert_snapshot!("html_drift", drift_parts(&render(&with_history())));
}

#[test]
fn drift_is_counted_by_class_marked_on_the_map_and_reads_back() {
    let input = with_history();
    let page = render(&input);
    let d = input.diff.as_ref().unwrap();
    for k in portolan_model::ChangeKind::ALL {
        let n = d.changes.iter().filter(|c| c.change == k).count();
        let li = format!(
            "<li class=\"ch ch-{k}\" data-change=\"{k}\"><span aria-hidden=\"true\">{}</span> <b class=\"n\">{n}</b> {k}</li>",
            match k {
                portolan_model::ChangeKind::Added => "+",
                portolan_model::ChangeKind::Removed => "−",
                portolan_model::ChangeKind::Changed => "~",
                portolan_model::ChangeKind::Restarted => "↻",
                portolan_model::ChangeKind::Reopened => "↺",
            }
        );
        // Once in the summary card, once in the drift section.
        assert_eq!(page.matches(&li).count(), 2, "{k}: {li}");
    }
    // Every change on a port has a drift mark; marks closer than a mark's width merge.
    let marked: usize = page
        .match_indices("data-kind=\"drift\" data-n=\"")
        .map(|(i, m)| {
            let rest = &page[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(
        marked,
        d.changes.iter().filter(|c| c.port.is_some()).count()
    );
    assert!(page.contains(
        "<text class=\"lane-name\" x=\"110\" y=\"159\" text-anchor=\"end\">drift</text>"
    ));
    let back = read_back(&page).unwrap();
    assert_eq!(back.input, input);
    let v: serde_json::Value = serde_json::from_str(element(
        &page,
        "<script type=\"application/json\"",
        "</script>",
    ))
    .unwrap();
    assert_eq!(v["report"]["history"]["kind"], "run");
    assert_eq!(v["report"]["history"]["run"], 42);
    assert_eq!(v["report"]["diff"]["changes"][0]["change"], "added");
}

#[test]
fn a_report_without_drift_has_no_drift_lane_legend_or_history() {
    let mut input = sample();
    input.diff = None;
    let page = render(&input);
    for absent in [
        "data-kind=\"drift\"",
        "m-drift",
        ">drift</text>",
        "id=\"drift-counts\"",
        "id=\"history\"",
        "what changed since",
        "\"history\"",
    ] {
        assert!(!page.contains(absent), "{absent}");
    }
    // Five lanes: the axis sits under the loopback lane.
    assert!(page.contains("<line class=\"axis\" x1=\"118\" x2=\"990\" y1=\"144\" y2=\"144\"/>"));
}
