//! The page: its sections in the order a reader wants them.

use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;
use portolan_model::{
    Change, ChangeKind, Counts, Detection, Exposure, Finding, HostResult, Listener, ScanReport,
    Severity, Subject,
};
use sha2::{Digest, Sha256};

use super::chart;
use super::data::{DATA_ID, Embedded};
use super::escape::{bounded, escape as e};
use super::{HistoryKind, HistoryRef, ReportInput};

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("script.js");
/// The longest text a table cell shows (the embedded data keeps all of it).
const CELL_MAX: usize = 240;
/// A table with more rows than this starts folded: every row is in the page, but the
/// browser lays it out only when the reader opens it (or filters it), so a report of
/// 10,000 listeners still opens in well under a second.
pub(crate) const FOLD_ROWS: usize = 1000;

fn fold_start(o: &mut String, rows: usize, what: &str) -> bool {
    let fold = rows > FOLD_ROWS;
    if fold {
        let _ = write!(
            o,
            "<details class=\"rows\"><summary>Show all {rows} {what} (folded because the table is long; filtering opens it)</summary>"
        );
    }
    fold
}

fn fold_end(o: &mut String, fold: bool) {
    if fold {
        o.push_str("</details>");
    }
}

fn hash(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(d)
    )
}

pub(crate) fn csp() -> String {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; script-src {}; style-src {}; img-src data:; base-uri 'none'; form-action 'none'",
            hash(SCRIPT),
            hash(STYLE)
        )
    })
    .clone()
}

/// A severity as a word with its glyph; colour is only a third signal.
fn glyph(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "✖",
        Severity::High => "▲",
        Severity::Medium => "◆",
        Severity::Low => "▼",
        Severity::Info => "ℹ",
    }
}

fn badge(out: &mut String, s: Severity) {
    let _ = write!(
        out,
        r#"<span class="sev sev-{n}"><span class="glyph" aria-hidden="true">{g}</span> {n}</span>"#,
        n = s.as_str(),
        g = glyph(s)
    );
}

fn change_glyph(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Added => "+",
        ChangeKind::Removed => "−",
        ChangeKind::Changed => "~",
        ChangeKind::Restarted => "↻",
        ChangeKind::Reopened => "↺",
    }
}

fn exposure_words(x: Exposure) -> &'static str {
    match x {
        Exposure::All => "all addresses",
        Exposure::Address => "one address",
        Exposure::Loopback => "loopback only",
    }
}

fn counts(input: &ReportInput) -> Counts {
    let mut c = Counts::default();
    for f in input.audit.iter().flat_map(|a| &a.findings) {
        c.add(f.severity);
    }
    c
}

pub(crate) fn page(input: &ReportInput, data: &Embedded) -> String {
    let rows = input.listeners.as_ref().map_or(0, Vec::len)
        + input
            .scans
            .iter()
            .flat_map(|s| &s.hosts)
            .map(|h| h.ports.len())
            .sum::<usize>();
    let mut o = String::with_capacity(32 * 1024 + rows * 260 + data.text.len());
    let host = e(&input.run.host);
    let _ = write!(
        o,
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="portolan {version}">
<title>portolan report: {host}</title>
<style>{STYLE}</style>
</head>
<body>
<header class="top">
<h1><span class="brand">portolan</span> report <span class="host">{host}</span></h1>
<p class="meta">{time} · portolan {version} · policy <strong>{policy}</strong></p>
<nav aria-label="Sections"><a href="#summary">Summary</a> <a href="#findings">Findings</a> <a href="#chart-section">Port map</a> <a href="#listeners">Listeners</a> <a href="#scans">Scans</a> <a href="#drift">Drift</a> <a href="#policy">Policy</a> <a href="#provenance">Provenance</a></nav>
</header>
<main>
"##,
        csp = csp(),
        version = e(&input.run.version),
        time = e(&input.run.started),
        policy = e(&input.policy.name),
    );
    summary(&mut o, input);
    findings(&mut o, input);
    chart_section(&mut o, input);
    listeners(&mut o, input);
    scans(&mut o, input);
    drift(&mut o, input);
    policy(&mut o, input);
    provenance(&mut o, input, data);
    let _ = write!(
        o,
        r#"</main>
<footer><p>Made by portolan {version}. One file: it loads nothing from anywhere.</p></footer>
<script type="application/json" id="{DATA_ID}" data-encoding="{enc}" data-sha256="{sha}">{text}</script>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        version = e(&input.run.version),
        enc = data.encoding,
        sha = data.sha256,
        text = data.text,
    );
    o
}

fn summary(o: &mut String, input: &ReportInput) {
    o.push_str("<section id=\"summary\" class=\"summary\" aria-labelledby=\"summary-h\">\n<h2 id=\"summary-h\">Summary</h2>\n<div class=\"cards\">\n");
    // Findings.
    o.push_str("<div class=\"card\"><h3>Findings</h3>");
    match &input.audit {
        None => o.push_str("<p class=\"none\">No audit in this report.</p>"),
        Some(a) => {
            let c = counts(input);
            let _ = write!(
                o,
                "<p class=\"big\"><span id=\"findings-total\">{}</span> <span class=\"unit\">findings</span></p><ul class=\"sevs\">",
                a.findings.len()
            );
            for s in Severity::ALL {
                let _ = write!(
                    o,
                    "<li class=\"sev-count\" data-severity=\"{n}\">",
                    n = s.as_str()
                );
                badge(o, s);
                let _ = write!(o, " <b class=\"n\">{}</b></li>", c.get(s));
            }
            o.push_str("</ul>");
            if !a.suppressed.is_empty() {
                let _ = write!(
                    o,
                    "<p class=\"muted\">{} held back by policy exceptions.</p>",
                    a.suppressed.len()
                );
            }
        }
    }
    o.push_str("</div>\n");
    // Listeners.
    o.push_str("<div class=\"card\"><h3>Listeners</h3>");
    let counted = input.listeners.as_ref().map(|ls| {
        let beyond = ls
            .iter()
            .filter(|l| l.exposure != Exposure::Loopback)
            .count();
        (beyond, ls.len() - beyond)
    });
    let from_audit = input
        .audit
        .as_ref()
        .and_then(|a| Some((a.summary.exposed?, a.summary.listeners?)))
        .map(|(x, n)| (x, n.saturating_sub(x)));
    match counted.or(from_audit) {
        None => o.push_str("<p class=\"none\">No inventory in this report.</p>"),
        Some((beyond, lo)) => {
            let _ = write!(
                o,
                "<p class=\"big\"><span id=\"beyond-loopback\">{beyond}</span> <span class=\"unit\">beyond loopback</span></p><p><span id=\"loopback-only\">{lo}</span> on loopback only</p>"
            );
        }
    }
    o.push_str("</div>\n");
    // Scans.
    o.push_str("<div class=\"card\"><h3>Outside view</h3>");
    if input.scans.is_empty() {
        o.push_str("<p class=\"none\">No scan in this report: nothing was probed from outside, so nothing here says what is reachable.</p>");
    } else {
        let (mut hosts, mut up, mut ports, mut open) = (0, 0, 0, 0);
        for s in &input.scans {
            hosts += s.summary.hosts_total;
            up += s.summary.hosts_up;
            ports += s.summary.ports_scanned;
            open += s.summary.open;
        }
        let _ = write!(
            o,
            "<p class=\"big\">{open} <span class=\"unit\">open</span></p><p>{ports} ports probed on {up} of {hosts} hosts up</p>"
        );
    }
    o.push_str("</div>\n");
    // Drift.
    o.push_str("<div class=\"card\"><h3>Since the last run</h3>");
    match &input.diff {
        None => o.push_str("<p class=\"none\">No history in this report.</p>"),
        Some(d) if d.is_empty() => {
            let _ = write!(
                o,
                "<p class=\"big\">0 <span class=\"unit\">changes</span></p><p class=\"muted\">{} → {}</p>",
                e(&d.from),
                e(&d.to)
            );
        }
        Some(d) => {
            let _ = write!(
                o,
                "<p class=\"big\">{} <span class=\"unit\">changes</span></p><ul class=\"changes\">",
                d.changes.len()
            );
            for k in ChangeKind::ALL {
                let n = d.changes.iter().filter(|c| c.change == k).count();
                if n > 0 {
                    let _ = write!(
                        o,
                        "<li class=\"ch ch-{k}\" data-change=\"{k}\"><span aria-hidden=\"true\">{g}</span> <b class=\"n\">{n}</b> {k}</li>",
                        g = change_glyph(k)
                    );
                }
            }
            let _ = write!(
                o,
                "</ul><p class=\"muted\">{} → {}</p>",
                e(&d.from),
                e(&d.to)
            );
        }
    }
    o.push_str("</div>\n</div>\n");
    if !input.warnings.is_empty() {
        o.push_str("<ul class=\"warnings\">");
        for w in &input.warnings {
            let _ = write!(o, "<li>⚠ {}</li>", bounded(w, 500));
        }
        o.push_str("</ul>\n");
    }
    if let Some(a) = &input.audit
        && !a.summary.next_step.is_empty()
    {
        let _ = write!(
            o,
            "<p class=\"next\">Next: {}</p>",
            inline_code(&a.summary.next_step)
        );
    }
    o.push_str("</section>\n");
}

/// Text whose commands are in backticks, with the commands as `<code>`.
fn inline_code(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", e(part));
        } else {
            out.push_str(&e(part));
        }
    }
    out
}

fn section_start(o: &mut String, id: &str, title: &str, open: bool, count: Option<usize>) {
    let _ = write!(
        o,
        "<details class=\"section\" id=\"{id}\"{open}><summary><h2>{title}",
        open = if open { " open" } else { "" }
    );
    if let Some(n) = count {
        let _ = write!(o, " <span class=\"count-badge\">{n}</span>");
    }
    o.push_str("</h2></summary>\n");
}

fn findings(o: &mut String, input: &ReportInput) {
    let Some(a) = &input.audit else {
        section_start(o, "findings", "Findings", true, None);
        o.push_str("<p class=\"none\">No audit in this report.</p></details>\n");
        return;
    };
    section_start(o, "findings", "Findings", true, Some(a.findings.len()));
    if a.findings.is_empty() {
        let _ = write!(
            o,
            "<p class=\"none\">No finding against policy <strong>{}</strong>.</p>",
            e(&a.summary.policy)
        );
    } else {
        let c = counts(input);
        o.push_str("<div class=\"filters\" data-js-only hidden role=\"group\" aria-label=\"Show findings of one severity\"><button type=\"button\" class=\"sev-filter\" data-severity=\"\" aria-pressed=\"true\">all</button>");
        for s in Severity::ALL {
            if c.get(s) > 0 {
                let _ = write!(
                    o,
                    "<button type=\"button\" class=\"sev-filter\" data-severity=\"{n}\" aria-pressed=\"false\"><span aria-hidden=\"true\">{g}</span> {n} ({c})</button>",
                    n = s.as_str(),
                    g = glyph(s),
                    c = c.get(s)
                );
            }
        }
        o.push_str("<span class=\"shown\" id=\"findings-shown\" aria-live=\"polite\"></span></div>\n<div id=\"finding-list\">\n");
        for f in &a.findings {
            finding(o, f);
        }
        o.push_str("</div>\n");
    }
    if !a.suppressed.is_empty() {
        let _ = write!(
            o,
            "<details class=\"sub\"><summary>{} held back by policy exceptions</summary><table><thead><tr><th>Rule</th><th>Port</th><th>Reason</th></tr></thead><tbody>",
            a.suppressed.len()
        );
        for s in &a.suppressed {
            let port = match (s.port, s.protocol) {
                (Some(p), Some(pr)) => format!("{p}/{pr}"),
                _ => String::new(),
            };
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.rule.id(),
                port,
                bounded(&s.reason, CELL_MAX)
            );
        }
        o.push_str("</tbody></table></details>\n");
    }
    o.push_str("</details>\n");
}

fn finding(o: &mut String, f: &Finding) {
    let _ = write!(
        o,
        "<article class=\"finding f-{s}\" data-severity=\"{s}\" id=\"f-{fp}\">\n<header>",
        s = f.severity.as_str(),
        fp = e(&f.fingerprint)
    );
    badge(o, f.severity);
    let _ = write!(o, " <span class=\"rule\">{}</span>", f.rule.id());
    let label = f.port_label();
    if !label.is_empty() {
        let _ = write!(o, " <span class=\"port\">{label}</span>");
    }
    if let Some(s) = &f.service {
        let _ = write!(o, " <span class=\"service\">{}</span>", bounded(s, 80));
    }
    let _ = write!(
        o,
        "</header>\n<p class=\"message\">{}</p>\n<dl class=\"evidence\">",
        bounded(&f.message, 1000)
    );
    let mut dd = |k: &str, v: &str| {
        let _ = write!(o, "<dt>{k}</dt><dd>{}</dd>", bounded(v, CELL_MAX));
    };
    if let Some(a) = &f.address {
        dd("address", a);
    }
    if let Some(n) = &f.netns {
        dd("namespace", n);
    }
    if let Some(p) = &f.process {
        dd("process", p);
    }
    // What the outside view measured: only a finding about a port has one to say.
    if f.port.is_some() {
        match f.reach {
            Some(r) => dd("outside view", r.as_str()),
            None => dd("outside view", "not probed (no scan)"),
        }
    }
    if let Some(p) = &f.product {
        dd("detected", p);
    }
    o.push_str("</dl>\n");
    if !f.evidence.is_empty() {
        o.push_str("<table class=\"owners\"><thead><tr><th>pid</th><th>process</th><th>executable</th><th>command line</th><th>user</th><th>unit</th><th>package</th></tr></thead><tbody>");
        for ev in &f.evidence {
            let p = &ev.process;
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"cmdline\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.pid,
                bounded(&p.name, 64),
                bounded(p.exe.as_deref().unwrap_or(""), CELL_MAX),
                bounded(&p.cmdline, CELL_MAX),
                bounded(p.user.as_deref().unwrap_or(""), 64),
                bounded(p.unit.as_deref().unwrap_or(""), 128),
                bounded(ev.package.as_deref().unwrap_or(""), 128)
            );
        }
        o.push_str("</tbody></table>\n");
    }
    if !f.remediation.text.is_empty() || !f.remediation.commands.is_empty() {
        let _ = write!(
            o,
            "<div class=\"fix\"><h4>Remediation</h4><p>{}</p>",
            inline_code(&f.remediation.text)
        );
        for c in &f.remediation.commands {
            let _ = write!(
                o,
                "<div class=\"cmd\"><pre><code>{}</code></pre><button type=\"button\" class=\"copy\" data-js-only hidden>Copy</button></div>",
                e(c)
            );
        }
        o.push_str("</div>\n");
    }
    let _ = write!(
        o,
        "<p class=\"fp\">fingerprint <code>{}</code></p>\n</article>\n",
        e(&f.fingerprint)
    );
}

fn chart_section(o: &mut String, input: &ReportInput) {
    section_start(o, "chart-section", "Port map", true, None);
    o.push_str("<ul class=\"legend\" aria-label=\"Legend\">");
    let items: [(&str, &str, &str); 8] = [
        ("m-critical", "tri", "finding (colour by severity)"),
        ("m-open", "sq", "scanned: open"),
        ("m-openf", "sq", "scanned: open|filtered"),
        ("m-all", "dot", "listening on all addresses"),
        ("m-addr", "dot", "on one address"),
        ("m-lo", "dot", "on loopback only"),
        ("m-all m-udp", "dot", "ring: UDP (bound, unconnected)"),
        ("eph", "hatch", "the kernel's ephemeral range"),
    ];
    let drift = [(
        "m-drift",
        "glyph",
        "drift: + added, − removed, ~ changed, ↻ restarted, ↺ reopened",
    )];
    let drift = if input.diff.is_some() {
        &drift[..]
    } else {
        &[]
    };
    for &(class, shape, label) in items.iter().chain(drift) {
        let svg = match shape {
            "tri" => "<path d=\"M7 1L13 12L1 12Z\"/>",
            "sq" => "<rect x=\"2\" y=\"2\" width=\"10\" height=\"10\"/>",
            "hatch" => "<rect class=\"eph\" x=\"1\" y=\"1\" width=\"12\" height=\"12\"/>",
            "glyph" => {
                "<text x=\"7\" y=\"12\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"700\" fill=\"currentColor\">±</text>"
            }
            _ => "<circle cx=\"7\" cy=\"7\" r=\"5\"/>",
        };
        let _ = write!(
            o,
            "<li><svg class=\"swatch {class}\" viewBox=\"0 0 14 14\" width=\"14\" height=\"14\" aria-hidden=\"true\">{svg}</svg> {label}</li>"
        );
    }
    o.push_str("</ul>\n<div class=\"chart-wrap\">");
    o.push_str(&chart::svg(input));
    o.push_str("</div>\n<p id=\"mark-info\" class=\"mark-info\" aria-live=\"polite\">Hover over or focus a mark (Tab) to see its ports, services, processes and findings.</p>\n");
    o.push_str("<p class=\"muted small\">Each region has its own scale so the well-known ports can be told apart: well-known 0–1023 takes 30% of the width, registered 1024–49151 45%, dynamic 49152–65535 25%. The strip under the axis shows the true proportions. Marks closer than their own width merge and show how many they hold.</p>\n");
    o.push_str("</details>\n");
}

fn table_tools(o: &mut String, table: &str, what: &str, exposure: bool) {
    let _ = write!(
        o,
        "<div class=\"filters\" data-js-only hidden><label>Filter {what} <input type=\"search\" class=\"row-filter\" data-table=\"{table}\" placeholder=\"port, service, process…\"></label>"
    );
    if exposure {
        let _ = write!(
            o,
            "<label>Exposure <select class=\"exposure-filter\" data-table=\"{table}\"><option value=\"\">any</option><option value=\"all\">all addresses</option><option value=\"address\">one address</option><option value=\"loopback\">loopback only</option></select></label>"
        );
    }
    let _ = write!(
        o,
        "<span class=\"shown\" data-shown=\"{table}\" aria-live=\"polite\"></span></div>"
    );
}

fn listeners(o: &mut String, input: &ReportInput) {
    let Some(ls) = &input.listeners else {
        section_start(o, "listeners", "Listeners", true, None);
        o.push_str("<p class=\"none\">No inventory in this report.</p></details>\n");
        return;
    };
    section_start(o, "listeners", "Listeners", true, Some(ls.len()));
    if ls.is_empty() {
        o.push_str("<p class=\"none\">Nothing listens.</p></details>\n");
        return;
    }
    table_tools(o, "listener-table", "listeners", true);
    let fold = fold_start(o, ls.len(), "listeners");
    o.push_str("<div class=\"scroll\"><table id=\"listener-table\" class=\"data sortable\"><colgroup><col class=\"c-proto\"><col class=\"c-addr\"><col class=\"c-port\"><col class=\"c-svc\"><col class=\"c-exp\"><col class=\"c-state\"><col class=\"c-proc\"><col class=\"c-user\"><col class=\"c-unit\"><col class=\"c-ns\"></colgroup><thead><tr><th data-sort=\"text\">Proto</th><th data-sort=\"text\">Address</th><th data-sort=\"num\">Port</th><th data-sort=\"text\">Service</th><th data-sort=\"text\">Exposure</th><th data-sort=\"text\">State</th><th data-sort=\"text\">Process</th><th data-sort=\"text\">User</th><th data-sort=\"text\">Unit</th><th data-sort=\"text\">Namespace</th></tr></thead><tbody>\n");
    for l in ls {
        listener_row(o, l);
    }
    o.push_str("</tbody></table></div>");
    fold_end(o, fold);
    o.push_str("\n</details>\n");
}

/// One row of the listeners table. This table can hold tens of thousands of rows, so its
/// cells leave out their optional `</td>` (HTML ends a cell at the next one).
fn listener_row(o: &mut String, l: &Listener) {
    let x = l.exposure.as_str();
    let _ = write!(o, "<tr><td>{}<td>{}", l.protocol, l.address);
    if let Some(i) = &l.interface {
        let _ = write!(o, "%{}", bounded(i, 32));
    }
    if l.dual_stack() {
        o.push_str(" <small>+ipv4</small>");
    }
    let _ = write!(
        o,
        "<td>{}<td>{}<td class=\"x-{x}\">{}<td>{}<td>",
        l.port,
        bounded(l.service.as_deref().unwrap_or(""), 64),
        exposure_words(l.exposure),
        l.state
    );
    for (i, p) in l.processes.iter().enumerate() {
        if i > 0 {
            o.push_str(", ");
        }
        let _ = write!(o, "{} {}", bounded(&p.name, 64), p.pid);
    }
    if l.processes.is_empty() && l.owner_unknown {
        o.push_str("<i>unknown</i>");
    }
    let user = l.processes.first().and_then(|p| p.user.as_deref());
    let user = user.or(l.user.as_deref()).unwrap_or("");
    let unit = l
        .socket_unit
        .as_deref()
        .or_else(|| l.processes.first().and_then(|p| p.unit.as_deref()))
        .unwrap_or("");
    let _ = writeln!(
        o,
        "<td>{}<td>{}<td>{}</tr>",
        bounded(user, 64),
        bounded(unit, 128),
        bounded(&l.netns, 64)
    );
}

fn detected(d: &Detection) -> String {
    let mut out = String::new();
    let what: Vec<&str> = [&d.protocol, &d.product, &d.version]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if what.is_empty() {
        out.push_str("<i>not recognised</i>");
    } else {
        out.push_str(&bounded(&what.join(" "), CELL_MAX));
    }
    if d.cleartext {
        out.push_str(" <span class=\"tag warn\">cleartext</span>");
    }
    if d.starttls {
        out.push_str(" <span class=\"tag\">starttls</span>");
    }
    if d.unauthenticated == Some(true) {
        out.push_str(" <span class=\"tag warn\">no authentication</span>");
    }
    out
}

fn tls(d: &Detection) -> String {
    let Some(t) = &d.tls else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (k, v) in [
        ("", &t.version),
        ("", &t.cipher),
        ("subject ", &t.subject),
        ("issuer ", &t.issuer),
        ("expires ", &t.not_after),
        ("alpn ", &t.alpn),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k}{}", bounded(v, CELL_MAX)));
        }
    }
    parts.join("<br>")
}

fn scans(o: &mut String, input: &ReportInput) {
    let hosts: usize = input.scans.iter().map(|s| s.hosts.len()).sum();
    section_start(o, "scans", "Scanned hosts", true, Some(hosts));
    if input.scans.is_empty() {
        o.push_str("<p class=\"none\">No scan in this report.</p></details>\n");
        return;
    }
    let mut t = 0;
    for s in &input.scans {
        scan(o, s, &mut t);
    }
    o.push_str("</details>\n");
}

fn scan(o: &mut String, s: &ScanReport, t: &mut usize) {
    let mode = s.summary.mode.map_or("", |m| m.as_str());
    let _ = write!(
        o,
        "<p class=\"scan-meta\">Targets <code>{}</code> · {} ports probed{}{} in {:.1} s</p>",
        bounded(&s.targets.join(" "), CELL_MAX),
        s.summary.ports_scanned,
        if mode.is_empty() {
            String::new()
        } else {
            format!(" · TCP {mode}")
        },
        if s.summary.udp { " · UDP" } else { "" },
        s.summary.elapsed.as_secs_f64()
    );
    for h in &s.hosts {
        host(o, h, *t);
        *t += 1;
    }
}

fn host(o: &mut String, h: &HostResult, n: usize) {
    let id = format!("host-{n}");
    let _ = write!(
        o,
        "<details class=\"sub host\" open><summary><h3>{} <span class=\"tag\">{}</span> <span class=\"muted\">{} ports shown",
        h.host,
        h.state.as_str(),
        h.ports.len()
    );
    for (state, count) in &h.not_shown {
        let _ = write!(o, " · {count} {state} not shown");
    }
    o.push_str("</span></h3></summary>\n");
    if h.ports.is_empty() {
        o.push_str("<p class=\"none\">No port to show.</p></details>\n");
        return;
    }
    table_tools(o, &id, "ports", false);
    let fold = fold_start(o, h.ports.len(), "ports");
    let _ = writeln!(
        o,
        "<div class=\"scroll\"><table id=\"{id}\" class=\"data sortable ports\"><thead><tr><th data-sort=\"num\">Port</th><th data-sort=\"text\">Proto</th><th data-sort=\"text\">State</th><th data-sort=\"text\">Reason</th><th data-sort=\"text\">Service</th><th data-sort=\"text\">Detected</th><th>TLS</th><th>What it said</th></tr></thead><tbody>"
    );
    for p in &h.ports {
        let r = &p.result;
        let _ = write!(
            o,
            "<tr data-state=\"{st}\"><td>{}</td><td>{}</td><td class=\"st-{cls}\">{st}</td><td>{}</td><td>{}</td>",
            r.port,
            r.proto,
            r.reason,
            bounded(p.service.as_deref().unwrap_or(""), 64),
            st = r.state,
            cls = r.state.as_str().replace('|', "-"),
        );
        match &p.detected {
            None => o.push_str("<td class=\"muted\">not probed</td><td></td><td></td>"),
            Some(d) => {
                let _ = write!(
                    o,
                    "<td>{}</td><td class=\"tls\">{}</td><td class=\"banner\"><code>{}</code></td>",
                    detected(d),
                    tls(d),
                    bounded(&d.evidence, CELL_MAX)
                );
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div>");
    fold_end(o, fold);
    o.push_str("\n</details>\n");
}

fn subject(c: &Change) -> String {
    match &c.subject {
        Subject::Listener(k) => format!("listener {k}"),
        Subject::Port {
            host,
            protocol,
            port,
        } => format!("port {port}/{protocol} on {host}"),
        Subject::Finding { fingerprint, rule } => format!("finding {rule} ({fingerprint})"),
    }
}

fn drift(o: &mut String, input: &ReportInput) {
    let Some(d) = &input.diff else {
        section_start(o, "drift", "Drift", true, None);
        o.push_str("<p class=\"none\">No history in this report: drift needs an earlier run to compare with.</p></details>\n");
        return;
    };
    section_start(o, "drift", "Drift", true, Some(d.changes.len()));
    let _ = write!(
        o,
        "<p>From <strong>{}</strong> to <strong>{}</strong>.</p>",
        bounded(&d.from, CELL_MAX),
        bounded(&d.to, CELL_MAX)
    );
    if d.is_empty() {
        o.push_str("<p class=\"none\">Nothing changed.</p></details>\n");
        return;
    }
    o.push_str("<ul class=\"changes\" id=\"drift-counts\" aria-label=\"Changes by class\">");
    for k in ChangeKind::ALL {
        let n = d.changes.iter().filter(|c| c.change == k).count();
        let _ = write!(
            o,
            "<li class=\"ch ch-{k}\" data-change=\"{k}\"><span aria-hidden=\"true\">{g}</span> <b class=\"n\">{n}</b> {k}</li>",
            g = change_glyph(k)
        );
    }
    o.push_str("</ul>\n");
    table_tools(o, "drift-table", "changes", false);
    let fold = fold_start(o, d.changes.len(), "changes");
    o.push_str("<div class=\"scroll\"><table id=\"drift-table\" class=\"data sortable\"><thead><tr><th data-sort=\"text\">Change</th><th data-sort=\"text\">What</th><th data-sort=\"num\">Port</th><th>Details</th><th data-sort=\"text\">Seen</th></tr></thead><tbody>\n");
    for c in &d.changes {
        let _ = write!(
            o,
            "<tr class=\"ch-{k}{noise}\" data-change=\"{k}\"><td><span aria-hidden=\"true\">{g}</span> {k}{nw}</td><td>{}</td><td>{}</td><td>",
            bounded(&subject(c), CELL_MAX),
            c.port.map(|p| p.to_string()).unwrap_or_default(),
            k = c.change,
            g = change_glyph(c.change),
            noise = if c.noise { " noise" } else { "" },
            nw = if c.noise {
                " <small>(noise)</small>"
            } else {
                ""
            },
        );
        for (i, f) in c.fields.iter().enumerate() {
            if i > 0 {
                o.push_str("<br>");
            }
            let _ = write!(
                o,
                "{}: {} → {}",
                bounded(&f.field, 64),
                bounded(f.before.as_deref().unwrap_or("—"), CELL_MAX),
                bounded(f.after.as_deref().unwrap_or("—"), CELL_MAX)
            );
        }
        if c.fields.is_empty()
            && let Some(l) = &c.listener
        {
            let names = l.process_names().join(", ");
            let _ = write!(
                o,
                "{} {}",
                portolan_model::fmt_endpoint(l.address, l.port),
                bounded(&names, CELL_MAX)
            );
        }
        let _ = writeln!(
            o,
            "</td><td>{}</td></tr>",
            bounded(c.at.as_deref().unwrap_or(""), 64)
        );
    }
    o.push_str("</tbody></table></div>");
    fold_end(o, fold);
    o.push_str("\n</details>\n");
}

fn policy(o: &mut String, input: &ReportInput) {
    section_start(o, "policy", "Policy and firewall", false, None);
    let _ = write!(
        o,
        "<p>Policy <strong>{}</strong>.</p>",
        e(&input.policy.name)
    );
    match &input.policy.text {
        Some(t) => {
            let _ = write!(
                o,
                "<h3>The policy</h3><pre class=\"file\"><code>{}</code></pre>",
                e(t)
            );
        }
        None => o.push_str("<p class=\"none\">The policy's text is not in this report.</p>"),
    }
    match &input.ruleset {
        Some(t) => {
            let _ = write!(
                o,
                "<h3>The firewall ruleset it generates</h3><div class=\"cmd\"><pre class=\"file\"><code>{}</code></pre><button type=\"button\" class=\"copy\" data-js-only hidden>Copy</button></div>",
                e(t)
            );
        }
        None => o.push_str("<p class=\"none\">No firewall ruleset in this report.</p>"),
    }
    o.push_str("</details>\n");
}

fn provenance(o: &mut String, input: &ReportInput, data: &Embedded) {
    section_start(o, "provenance", "Provenance", true, None);
    let _ = write!(
        o,
        "<dl class=\"prov\"><dt>command line</dt><dd><code>{}</code></dd><dt>portolan</dt><dd>{}</dd><dt>time</dt><dd>{}</dd><dt>host</dt><dd>{}</dd><dt>data</dt><dd>SHA-256 <code id=\"data-sha256\">{}</code> of the <code>#{DATA_ID}</code> element ({}, {} bytes)</dd></dl>",
        e(&input.run.command),
        e(&input.run.version),
        e(&input.run.started),
        e(&input.run.host),
        data.sha256,
        data.encoding,
        data.text.len()
    );
    if let Some(h) = &input.history {
        history_rows(o, h);
    }
    o.push_str("<p class=\"muted small\">The report's whole data is embedded in it as JSON; docs/report.md shows how to read it back.</p></details>\n");
}

/// Where the drift came from, and (with `--run`) who made this report of a stored run.
fn history_rows(o: &mut String, h: &HistoryRef) {
    let flag = match h.kind {
        HistoryKind::Run => "--run",
        HistoryKind::Since => "--since",
    };
    let _ = write!(
        o,
        "<dl class=\"prov\" id=\"history\"><dt>history</dt><dd><code>{flag} {}</code>",
        bounded(&h.point, CELL_MAX)
    );
    if let Some(r) = h.run {
        let _ = write!(o, ": run {r}");
    }
    if let Some(db) = &h.db {
        let _ = write!(o, " of <code>{}</code>", bounded(db, CELL_MAX));
    }
    o.push_str("</dd>");
    if let Some(m) = &h.made {
        let _ = write!(
            o,
            "<dt>this report</dt><dd><code>{}</code> · portolan {} · {} · {}</dd>",
            e(&m.command),
            e(&m.version),
            e(&m.started),
            e(&m.host)
        );
    }
    o.push_str("</dl>");
}
