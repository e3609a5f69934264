//! The chart of the port space, as inline SVG.
//!
//! The 65,536 ports are one horizontal axis cut into IANA's three regions, each drawn at
//! its own scale so the small well-known region can be read: well-known (0-1023) takes
//! 30% of the width (about 4 ports per unit), registered (1024-49151) 45% (about 122 per
//! unit) and dynamic (49152-65535) 25% (about 74 per unit). A thin strip under the axis
//! shows the regions at their true proportions. The kernel's ephemeral range is hatched.
//!
//! Marks sit in lanes: findings, scanned ports (open, open|filtered), the listeners by
//! exposure (all addresses, one address, loopback), and, in a report with drift, what
//! changed (a glyph per change class: + − ~ ↻ ↺). Marks closer than one mark's width in
//! a lane are one mark that lists them all; so the chart holds at most a few hundred marks
//! whatever the number of ports. Each mark is focusable and has a `<title>` with the
//! port, service, process and finding.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use portolan_model::{
    Change, ChangeKind, Exposure, Finding, Listener, PortState, Severity, SocketState, Subject,
};

use super::ReportInput;
use super::escape::bounded;

/// The geometry of the chart (SVG user units).
#[derive(Debug, Clone, Copy)]
pub struct Layout;

impl Layout {
    pub const WIDTH: f64 = 1000.0;
    /// Where the port axis starts and ends.
    pub const LEFT: f64 = 118.0;
    pub const RIGHT: f64 = 990.0;
    /// The share of the axis each region takes: well-known, registered, dynamic.
    pub const SHARES: [f64; 3] = [0.30, 0.45, 0.25];
    /// Marks closer than this merge.
    pub const BIN: f64 = 6.0;
    const LANE: f64 = 22.0;
    const TOP: f64 = 34.0;

    /// The region boundaries: the first port of each region, and one past the last.
    const BOUNDS: [u32; 4] = [0, 1024, 49152, 65536];

    /// The x coordinate of `port` (its left edge).
    pub fn x(port: u16) -> f64 {
        Self::x_of(u32::from(port))
    }

    fn x_of(p: u32) -> f64 {
        let width = Self::RIGHT - Self::LEFT;
        let mut start = Self::LEFT;
        for i in 0..3 {
            let (lo, hi) = (Self::BOUNDS[i], Self::BOUNDS[i + 1]);
            let w = width * Self::SHARES[i];
            if p < hi || i == 2 {
                return start + w * f64::from(p.min(hi) - lo) / f64::from(hi - lo);
            }
            start += w;
        }
        Self::RIGHT
    }

    /// The x coordinate of `port` at the true, linear scale (the proportions strip).
    fn linear(p: u32) -> f64 {
        Self::LEFT + (Self::RIGHT - Self::LEFT) * f64::from(p) / 65536.0
    }
}

/// The lanes, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Lane {
    Finding,
    Scan,
    All,
    Address,
    Loopback,
    /// Only in a report with drift.
    Drift,
}

impl Lane {
    const ALL: [Lane; 6] = [
        Lane::Finding,
        Lane::Scan,
        Lane::All,
        Lane::Address,
        Lane::Loopback,
        Lane::Drift,
    ];

    /// The lanes `input` draws: the drift lane only when it has a diff.
    fn drawn(input: &ReportInput) -> &'static [Lane] {
        if input.diff.is_some() {
            &Lane::ALL
        } else {
            &Lane::ALL[..5]
        }
    }

    fn label(self) -> &'static str {
        match self {
            Lane::Finding => "findings",
            Lane::Scan => "scanned open",
            Lane::All => "all addresses",
            Lane::Address => "one address",
            Lane::Loopback => "loopback only",
            Lane::Drift => "drift",
        }
    }

    fn of(e: Exposure) -> Lane {
        match e {
            Exposure::All => Lane::All,
            Exposure::Address => Lane::Address,
            Exposure::Loopback => Lane::Loopback,
        }
    }

    fn y(self) -> f64 {
        Layout::TOP + Layout::LANE * (self as u8 as f64) + Layout::LANE / 2.0
    }
}

/// One entry under a mark.
struct Entry {
    /// The CSS class of the mark's shape (`m-all`, `m-open`, `m-high`...).
    class: &'static str,
    /// The order in which entries pick the mark's look: the worst wins.
    rank: u8,
    text: String,
}

#[derive(Default)]
struct Mark {
    entries: Vec<Entry>,
    first: u16,
    last: u16,
}

const TITLE_MAX: usize = 12;

fn finding_label(f: &Finding) -> String {
    format!(
        "{} {}: {}",
        f.severity.as_str().to_uppercase(),
        f.rule.id(),
        f.message
    )
}

fn findings_at(input: &ReportInput, proto: portolan_model::Proto, port: u16) -> Vec<&Finding> {
    input
        .audit
        .iter()
        .flat_map(|a| &a.findings)
        .filter(|f| f.port == Some(port) && f.protocol == Some(proto))
        .collect()
}

fn listener_entry(input: &ReportInput, l: &Listener) -> Entry {
    let mut text = format!(
        "{}/{} {} on {}",
        l.port,
        l.protocol,
        l.service.as_deref().unwrap_or("unknown service"),
        portolan_model::fmt_endpoint(l.address, l.port)
    );
    if let Some(i) = &l.interface {
        let _ = write!(text, "%{i}");
    }
    let _ = write!(text, " ({}, {})", l.exposure, l.state);
    let procs: Vec<String> = l
        .processes
        .iter()
        .map(|p| format!("{} pid {}", p.name, p.pid))
        .collect();
    if !procs.is_empty() {
        let _ = write!(text, " — {}", procs.join(", "));
    } else if l.owner_unknown {
        text.push_str(" — owner unknown");
    }
    for f in findings_at(input, l.protocol, l.port) {
        let _ = write!(text, " — finding: {} {}", f.severity, f.rule.id());
    }
    let (class, rank) = match (l.exposure, l.state) {
        (Exposure::All, SocketState::Listen) => ("m-all", 6),
        (Exposure::All, _) => ("m-all m-udp", 5),
        (Exposure::Address, SocketState::Listen) => ("m-addr", 4),
        (Exposure::Address, _) => ("m-addr m-udp", 3),
        (Exposure::Loopback, SocketState::Listen) => ("m-lo", 2),
        (Exposure::Loopback, _) => ("m-lo m-udp", 1),
    };
    Entry { class, rank, text }
}

fn severity_class(s: Severity) -> (&'static str, u8) {
    match s {
        Severity::Critical => ("m-critical", 5),
        Severity::High => ("m-high", 4),
        Severity::Medium => ("m-medium", 3),
        Severity::Low => ("m-low", 2),
        Severity::Info => ("m-info", 1),
    }
}

/// A change as a drift mark's entry: its class, what it is about, and what differs.
fn drift_entry(c: &Change) -> Entry {
    let (class, rank) = match c.change {
        ChangeKind::Removed => ("d-removed", 5),
        ChangeKind::Changed => ("d-changed", 4),
        ChangeKind::Added => ("d-added", 3),
        ChangeKind::Reopened => ("d-reopened", 2),
        ChangeKind::Restarted => ("d-restarted", 1),
    };
    let what = match &c.subject {
        Subject::Listener(k) => format!("listener {k}"),
        Subject::Port { host, .. } => format!("scanned port on {host}"),
        Subject::Finding { rule, .. } => format!("finding {rule}"),
    };
    let mut text = format!("{} ", c.change.as_str().to_uppercase());
    if let (Some(p), Some(proto)) = (c.port, c.protocol) {
        let _ = write!(text, "{p}/{proto} ");
    }
    text.push_str(&what);
    let detail = crate::drift::what(c);
    if !detail.is_empty() {
        let _ = write!(text, ": {detail}");
    }
    if c.noise {
        text.push_str(" (noise)");
    }
    Entry { class, rank, text }
}

fn drift_glyph(class: &str) -> &'static str {
    match class {
        "d-removed" => "−",
        "d-changed" => "~",
        "d-added" => "+",
        "d-reopened" => "↺",
        _ => "↻",
    }
}

/// The chart's marks, by lane and bin.
fn marks(input: &ReportInput) -> BTreeMap<(Lane, u32), Mark> {
    let mut out: BTreeMap<(Lane, u32), Mark> = BTreeMap::new();
    let mut add = |lane: Lane, port: u16, e: Entry| {
        let bin = ((Layout::x(port) - Layout::LEFT) / Layout::BIN) as u32;
        let m = out.entry((lane, bin)).or_insert_with(|| Mark {
            first: port,
            last: port,
            ..Mark::default()
        });
        m.first = m.first.min(port);
        m.last = m.last.max(port);
        m.entries.push(e);
    };
    for l in input.listeners.iter().flatten() {
        add(Lane::of(l.exposure), l.port, listener_entry(input, l));
    }
    for scan in &input.scans {
        for h in &scan.hosts {
            for p in &h.ports {
                let r = &p.result;
                if !r.state.may_be_open() {
                    continue;
                }
                let mut text = format!(
                    "{}/{} {} on {}: {}",
                    r.port,
                    r.proto,
                    p.service.as_deref().unwrap_or("unknown service"),
                    h.host,
                    r.state
                );
                if let Some(d) = &p.detected {
                    let what: Vec<&str> = [&d.protocol, &d.product, &d.version]
                        .into_iter()
                        .flatten()
                        .map(String::as_str)
                        .collect();
                    if !what.is_empty() {
                        let _ = write!(text, " — detected {}", what.join(" "));
                    }
                }
                for f in findings_at(input, r.proto, r.port) {
                    let _ = write!(text, " — finding: {} {}", f.severity, f.rule.id());
                }
                let (class, rank) = if r.state == PortState::Open {
                    ("m-open", 2)
                } else {
                    ("m-openf", 1)
                };
                add(Lane::Scan, r.port, Entry { class, rank, text });
            }
        }
    }
    for c in input.diff.iter().flat_map(|d| &d.changes) {
        if let Some(port) = c.port {
            add(Lane::Drift, port, drift_entry(c));
        }
    }
    for f in input.audit.iter().flat_map(|a| &a.findings) {
        let Some(port) = f.port else { continue };
        let mut text = format!("{} ", f.port_label());
        if let Some(s) = &f.service {
            let _ = write!(text, "{s} ");
        }
        text.push_str(&finding_label(f));
        if let Some(p) = &f.process {
            let _ = write!(text, " (process {p})");
        }
        let (class, rank) = severity_class(f.severity);
        add(Lane::Finding, port, Entry { class, rank, text });
    }
    out
}

/// The chart as one `<svg>` element. Every text that came from outside goes through
/// [`bounded`], the report's escaping.
pub(crate) fn svg(input: &ReportInput) -> String {
    let marks = marks(input);
    let lanes = Lane::drawn(input);
    let lanes_h = Layout::LANE * lanes.len() as f64;
    let axis_y = Layout::TOP + lanes_h;
    let height = axis_y + 78.0;
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        r#"<svg id="chart" class="chart" viewBox="0 0 {w} {height}" role="img" aria-labelledby="chart-title chart-desc">"#,
        w = Layout::WIDTH
    );
    s.push_str(r#"<title id="chart-title">The port space of this report: every listening or open port, and every finding</title>"#);
    s.push_str(r#"<desc id="chart-desc">Ports 0 to 65535 from left to right in IANA's three regions, each at its own scale; lanes from top to bottom: findings, scanned open ports, listeners on all addresses, on one address, on loopback only"#);
    if input.diff.is_some() {
        s.push_str(", and what changed since the earlier point");
    }
    s.push_str(".</desc>");
    s.push_str(r#"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect class="hatch" width="2.5" height="6"/></pattern></defs>"#);

    // Regions, as columns behind the lanes, with their names above.
    let names = [
        ("well-known", "0–1023", "r-wk"),
        ("registered", "1024–49151", "r-reg"),
        ("dynamic", "49152–65535", "r-dyn"),
    ];
    for (i, (name, range, class)) in names.iter().enumerate() {
        let x0 = Layout::x_of(Layout::BOUNDS[i]);
        let x1 = Layout::x_of(Layout::BOUNDS[i + 1]);
        let _ = write!(
            s,
            r#"<rect class="region {class}" x="{x0:.1}" y="{top}" width="{w:.1}" height="{lanes_h}"/><text class="region-name" x="{tx:.1}" y="{ty}">{name} <tspan class="muted">{range}</tspan></text>"#,
            top = Layout::TOP,
            w = x1 - x0,
            tx = x0 + 4.0,
            ty = Layout::TOP - 8.0,
        );
    }
    // The ephemeral range.
    if let Some(r) = input.ephemeral {
        let x0 = Layout::x(r.first);
        let x1 = Layout::x_of(u32::from(r.last) + 1);
        let _ = write!(
            s,
            r#"<g class="ephemeral"><title>The kernel's ephemeral port range, {a}–{b}: the ports it picks for outgoing connections</title><rect class="eph" x="{x0:.1}" y="{top}" width="{w:.1}" height="{lanes_h}" fill="url(#hatch)"/><line class="eph-line" x1="{x0:.1}" x2="{x1:.1}" y1="{ly}" y2="{ly}"/><text class="eph-label" x="{x0:.1}" y="{ty}">ephemeral {a}–{b}</text></g>"#,
            a = r.first,
            b = r.last,
            top = Layout::TOP,
            w = (x1 - x0).max(1.0),
            ly = axis_y + 34.0,
            ty = axis_y + 46.0,
        );
    }
    // Lanes.
    for &lane in lanes {
        let y = lane.y();
        let _ = write!(
            s,
            r#"<line class="lane" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/><text class="lane-name" x="{lx}" y="{ty}" text-anchor="end">{name}</text>"#,
            l = Layout::LEFT,
            r = Layout::RIGHT,
            lx = Layout::LEFT - 8.0,
            ty = y + 4.0,
            name = lane.label(),
        );
    }
    // The axis, with ticks.
    let _ = write!(
        s,
        r#"<line class="axis" x1="{l}" x2="{r}" y1="{axis_y}" y2="{axis_y}"/>"#,
        l = Layout::LEFT,
        r = Layout::RIGHT
    );
    let ticks: [u32; 11] = [
        0, 256, 512, 768, 1024, 8192, 16384, 32768, 49152, 57344, 65535,
    ];
    for t in ticks {
        let x = Layout::x_of(t);
        let anchor = match t {
            0 => "start",
            65535 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            r#"<line class="tick" x1="{x:.1}" x2="{x:.1}" y1="{axis_y}" y2="{y2}"/><text class="tick-label" x="{x:.1}" y="{ty}" text-anchor="{anchor}">{t}</text>"#,
            y2 = axis_y + 5.0,
            ty = axis_y + 16.0,
        );
    }
    // The true proportions.
    let py = axis_y + 24.0;
    for (i, (_, _, class)) in names.iter().enumerate() {
        let x0 = Layout::linear(Layout::BOUNDS[i]);
        let x1 = Layout::linear(Layout::BOUNDS[i + 1]);
        let _ = write!(
            s,
            r#"<rect class="region {class} strip" x="{x0:.1}" y="{py}" width="{w:.1}" height="5"/>"#,
            w = (x1 - x0).max(1.0)
        );
    }
    let _ = write!(
        s,
        r#"<text class="tick-label" x="{x}" y="{y}" text-anchor="end">true scale</text>"#,
        x = Layout::LEFT - 8.0,
        y = py + 5.0
    );
    if let Some(r) = input.ephemeral {
        let x0 = Layout::linear(u32::from(r.first));
        let x1 = Layout::linear(u32::from(r.last) + 1);
        let _ = write!(
            s,
            r#"<rect class="eph-strip" x="{x0:.1}" y="{y}" width="{w:.1}" height="2"/>"#,
            y = py + 6.0,
            w = (x1 - x0).max(1.0)
        );
    }

    // The marks.
    s.push_str(r#"<g class="marks">"#);
    for ((lane, bin), m) in &marks {
        let best = m
            .entries
            .iter()
            .max_by_key(|e| e.rank)
            .expect("a mark has an entry");
        let x = Layout::LEFT + (f64::from(*bin) + 0.5) * Layout::BIN;
        let y = lane.y();
        let kind = match lane {
            Lane::Finding => "finding",
            Lane::Scan => "scan",
            Lane::Drift => "drift",
            _ => "listener",
        };
        let ports = if m.first == m.last {
            format!("port {}", m.first)
        } else {
            format!("ports {}–{}", m.first, m.last)
        };
        let _ = write!(
            s,
            r#"<g class="mark {class}" tabindex="0" data-kind="{kind}" data-n="{n}"><title>"#,
            class = best.class,
            n = m.entries.len(),
        );
        if m.entries.len() > 1 {
            let _ = writeln!(s, "{} entries at {ports}:", m.entries.len());
        }
        for e in m.entries.iter().take(TITLE_MAX) {
            let _ = writeln!(s, "{}", bounded(&e.text, 300));
        }
        if m.entries.len() > TITLE_MAX {
            let _ = writeln!(
                s,
                "… and {} more (see the tables)",
                m.entries.len() - TITLE_MAX
            );
        }
        s.push_str("</title>");
        match lane {
            Lane::Finding => {
                let _ = write!(
                    s,
                    r#"<path d="M{x:.1} {a:.1}L{b:.1} {c:.1}L{d:.1} {c:.1}Z"/>"#,
                    a = y - 7.0,
                    b = x + 6.5,
                    c = y + 5.0,
                    d = x - 6.5
                );
            }
            Lane::Scan => {
                let _ = write!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="10" height="10"/>"#,
                    x - 5.0,
                    y - 5.0
                );
            }
            Lane::Drift => {
                // The glyph says the class; the ring is what hover and focus outline.
                let _ = write!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="6.5" fill="none"/><text class="glyph" x="{x:.1}" y="{ty:.1}" text-anchor="middle" font-size="13" font-weight="700">{g}</text>"#,
                    ty = y + 4.5,
                    g = drift_glyph(best.class)
                );
            }
            _ => {
                let _ = write!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="5"/>"#);
            }
        }
        if m.entries.len() > 1 {
            let _ = write!(
                s,
                r#"<text class="count" x="{x:.1}" y="{ty:.1}" text-anchor="middle">{n}</text>"#,
                ty = y - 8.0,
                n = if m.entries.len() > 99 {
                    "99+".to_string()
                } else {
                    m.entries.len().to_string()
                }
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</g></svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_meet_and_fill_the_axis() {
        assert_eq!(Layout::x(0), Layout::LEFT);
        assert!((Layout::x_of(65536) - Layout::RIGHT).abs() < 1e-9);
        let w = Layout::RIGHT - Layout::LEFT;
        assert!((Layout::x(1024) - Layout::LEFT - 0.30 * w).abs() < 1e-9);
        assert!((Layout::x(49152) - Layout::LEFT - 0.75 * w).abs() < 1e-9);
        // Monotone: a later port is never left of an earlier one.
        let mut last = 0.0;
        for p in (0..=u16::MAX).step_by(7) {
            let x = Layout::x(p);
            assert!(x >= last);
            last = x;
        }
        // The well-known region is readable: ssh and http are apart by several units.
        assert!(Layout::x(80) - Layout::x(22) > 10.0);
    }
}
