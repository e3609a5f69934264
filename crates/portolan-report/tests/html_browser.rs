//! The HTML report in a real browser: headless Chromium, driven over the DevTools
//! protocol. Screenshots go to target/report-screenshots/.

mod html_common;

use std::path::PathBuf;

use html_common::*;
use portolan_browser_test::Browser;
use portolan_report::html::{self, ReportInput};
use serde_json::json;

fn out_dir() -> PathBuf {
    portolan_browser_test::screenshot_dir(env!("CARGO_TARGET_TMPDIR"))
}

fn write(name: &str, input: &ReportInput) -> PathBuf {
    let path = out_dir().join(format!("{name}.html"));
    let mut f = std::fs::File::create(&path).unwrap();
    html::render(input, &mut f).unwrap();
    path
}

const VISIBLE_FINDINGS: &str = "[...document.querySelectorAll('#finding-list .finding')].filter(e => e.offsetParent !== null).length";
const VISIBLE_LISTENERS: &str = "[...document.querySelectorAll('#listener-table tbody tr')].filter(e => e.offsetParent !== null).length";

#[test]
fn browser_shows_counts_filters_and_requests_nothing() {
    let Some(mut b) = Browser::for_test("browser_shows_counts_filters_and_requests_nothing") else {
        return;
    };
    let input = sample();
    let url = b.open(&write("sample", &input)).unwrap();
    // The script ran: its CSP hash matched.
    assert_eq!(b.eval("document.documentElement.dataset.js").unwrap(), "on");
    b.screenshot(&out_dir().join("report-full.png"), 1280, 6000)
        .unwrap();
    b.call(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    )
    .unwrap();
    b.screenshot(&out_dir().join("report-dark.png"), 1280, 6000)
        .unwrap();
    b.call("Emulation.setEmulatedMedia", json!({"features": []}))
        .unwrap();
    // The picture for docs/report.md: the summary, the critical finding and the map.
    b.eval("document.querySelector('.sev-filter[data-severity=critical]').click(); document.activeElement.blur()").unwrap();
    b.screenshot(&out_dir().join("report.png"), 1280, 1640)
        .unwrap();
    b.eval("document.querySelector('.sev-filter[data-severity=\"\"]').click()")
        .unwrap();

    // Findings by severity, in the summary and in the list.
    for (s, want) in severity_counts(&input) {
        b.assert_severity_count(s.as_str(), want as u64);
    }
    let listeners = input.listeners.as_ref().unwrap();
    assert_eq!(b.count(VISIBLE_LISTENERS), listeners.len() as u64);
    let beyond = listeners
        .iter()
        .filter(|l| l.exposure != portolan_model::Exposure::Loopback)
        .count();
    assert_eq!(
        b.eval("document.getElementById('beyond-loopback').textContent")
            .unwrap(),
        beyond.to_string()
    );

    // The chart: a mark for every listener, open port and finding on a port.
    assert_eq!(b.chart_marks("listener"), listeners.len() as u64);
    let open = input.scans[0].hosts[0]
        .ports
        .iter()
        .filter(|p| p.result.state.may_be_open())
        .count();
    assert_eq!(b.chart_marks("scan"), open as u64);
    let on_ports = input
        .audit
        .as_ref()
        .unwrap()
        .findings
        .iter()
        .filter(|f| f.port.is_some())
        .count();
    assert_eq!(b.chart_marks("finding"), on_ports as u64);
    assert!(
        b.count("document.querySelectorAll('#chart .mark[tabindex=\"0\"] > title').length") > 10
    );
    // Focusing a mark shows what it holds.
    b.eval("document.querySelector('#chart .mark[data-kind=finding]').focus()")
        .unwrap();
    let info = b
        .eval("document.getElementById('mark-info').textContent")
        .unwrap();
    assert!(
        info.as_str()
            .unwrap()
            .contains("23/tcp telnet CRITICAL cleartext-exposed"),
        "{info}"
    );

    // Filter the findings to one severity, then back to all.
    b.eval("document.querySelector('.sev-filter[data-severity=high]').click()")
        .unwrap();
    assert_eq!(b.count(VISIBLE_FINDINGS), 2);
    b.eval("document.querySelector('.sev-filter[data-severity=critical]').click()")
        .unwrap();
    assert_eq!(b.count(VISIBLE_FINDINGS), 1);
    b.eval("document.querySelector('.sev-filter[data-severity=\"\"]').click()")
        .unwrap();
    assert_eq!(b.count(VISIBLE_FINDINGS), 6);
    // Filter the listeners by text and by exposure.
    let filter = |q: &str, x: &str| {
        format!(
            "(() => {{ const t = document.querySelector('.row-filter[data-table=listener-table]'); t.value = '{q}'; t.dispatchEvent(new Event('input'));
               const s = document.querySelector('.exposure-filter[data-table=listener-table]'); s.value = '{x}'; s.dispatchEvent(new Event('input')); }})()"
        )
    };
    b.eval(&filter("sshd", "")).unwrap();
    assert_eq!(b.count(VISIBLE_LISTENERS), 2);
    b.eval(&filter("", "loopback")).unwrap();
    let lo = listeners.len() - beyond;
    assert_eq!(b.count(VISIBLE_LISTENERS), lo as u64);
    b.eval(&filter("", "")).unwrap();
    // Sort by port, descending on the second click.
    b.eval("document.querySelectorAll('#listener-table th')[2].click()")
        .unwrap();
    assert_eq!(
        b.eval("document.querySelector('#listener-table tbody tr').cells[2].textContent")
            .unwrap(),
        "22"
    );
    b.eval("document.querySelectorAll('#listener-table th')[2].click()")
        .unwrap();
    assert_eq!(
        b.eval("document.querySelector('#listener-table tbody tr').cells[2].textContent")
            .unwrap(),
        "40123"
    );
    // The copy buttons are there with JavaScript, next to the commands.
    assert_eq!(
        b.count("[...document.querySelectorAll('.fix button.copy')].filter(e => !e.hidden).length"),
        b.count("document.querySelectorAll('.fix pre code').length")
    );

    // The policy starts folded on screen...
    assert_eq!(
        b.eval("document.querySelector('#policy pre').checkVisibility()")
            .unwrap(),
        false
    );
    b.call("Emulation.setEmulatedMedia", json!({"media": "print"}))
        .unwrap();
    // ...and print shows it, by CSS alone.
    assert_eq!(
        b.eval("document.querySelector('#policy pre').checkVisibility()")
            .unwrap(),
        true
    );
    assert_eq!(
        b.eval("getComputedStyle(document.querySelector('nav')).display")
            .unwrap(),
        "none"
    );
    b.screenshot(&out_dir().join("report-print.png"), 900, 6000)
        .unwrap();
    b.assert_clean(&url);
}

#[test]
fn browser_without_javascript_has_every_finding_and_listener() {
    let Some(mut b) =
        Browser::for_test("browser_without_javascript_has_every_finding_and_listener")
    else {
        return;
    };
    b.call(
        "Emulation.setScriptExecutionDisabled",
        json!({"value": true}),
    )
    .unwrap();
    let input = sample();
    let url = b.open(&write("sample-nojs", &input)).unwrap();
    assert_eq!(
        b.eval("document.documentElement.dataset.js ?? 'off'")
            .unwrap(),
        "off",
        "the page's script ran"
    );
    let total = input.audit.as_ref().unwrap().findings.len() as u64;
    assert_eq!(b.count(VISIBLE_FINDINGS), total);
    assert_eq!(
        b.count(VISIBLE_LISTENERS),
        input.listeners.as_ref().unwrap().len() as u64
    );
    assert_eq!(
        b.count("document.querySelectorAll('#scans tbody tr').length"),
        input.scans[0].hosts[0].ports.len() as u64
    );
    assert_eq!(
        b.count("document.querySelectorAll('#drift tbody tr').length"),
        6
    );
    // Controls that need the script stay hidden; the commands stay selectable text.
    assert_eq!(b.count("[...document.querySelectorAll('[data-js-only]')].filter(e => e.offsetParent !== null).length"), 0);
    assert!(
        b.eval("document.querySelector('.fix pre code').textContent")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("systemctl disable")
    );
    b.screenshot(&out_dir().join("report-nojs.png"), 1280, 1600)
        .unwrap();
    b.assert_clean(&url);
}

#[test]
fn browser_hostile_peer_shows_as_text_and_runs_nothing() {
    let Some(mut b) = Browser::for_test("browser_hostile_peer_shows_as_text_and_runs_nothing")
    else {
        return;
    };
    let input = hostile();
    let url = b.open(&write("hostile", &input)).unwrap();
    // No element the payloads would have made, no handler attribute anywhere.
    b.assert_inert();
    // The payloads are there, as text: in the findings, the scan table, the listeners
    // and the chart's titles.
    let text = b.eval("document.body.innerText").unwrap();
    let text = text.as_str().unwrap();
    for p in &PAYLOADS[..4] {
        assert!(text.contains(p), "{p:?} is not shown as text");
    }
    let banner = b.texts("#scans td.banner");
    assert!(
        banner
            .contains("Server: <script>alert(1)</script>; X-Evil: \"><img src=x onerror=alert(1)>"),
        "{banner}"
    );
    let tls = b.texts("#scans td.tls");
    assert!(
        tls.contains("subject CN=\"><img src=x onerror=alert(1)>"),
        "{tls}"
    );
    let title = b.texts("#chart .mark title");
    assert!(
        title.contains("<script>alert(1)</script> pid 6666"),
        "{title}"
    );
    b.screenshot(&out_dir().join("hostile.png"), 1280, 2400)
        .unwrap();
    b.assert_clean(&url);
    // The dialog check can fail: a real alert is seen.
    b.assert_dialogs_are_seen();
}

#[test]
fn browser_renders_ten_thousand_listeners_in_under_a_second() {
    let Some(mut b) = Browser::for_test("browser_renders_ten_thousand_listeners_in_under_a_second")
    else {
        return;
    };
    let path = write("many", &many(10_000));
    assert!(std::fs::metadata(&path).unwrap().len() < 2 * 1024 * 1024);
    b.call("Performance.enable", json!({})).unwrap();
    let url = b.open(&path).unwrap();
    let load = b
        .eval("performance.getEntriesByType('navigation')[0].loadEventEnd")
        .unwrap();
    let wall = load.as_f64().unwrap();
    let cpu = b.main_thread_cpu();
    eprintln!(
        "10k listeners: load event ends {wall:.0} ms after navigation; main thread CPU {:.0} ms",
        cpu * 1e3
    );
    assert!(
        cpu < 1.0,
        "the browser spent {cpu} s of CPU rendering the report"
    );
    // Every row is in the page; the long table starts folded.
    assert_eq!(
        b.count("document.querySelectorAll('#listener-table tbody tr').length"),
        10_000
    );
    assert_eq!(
        b.eval("document.querySelector('#listeners details.rows').open")
            .unwrap(),
        false
    );
    // The chart stays small: marks merge.
    let marks = b.count("document.querySelectorAll('#chart .mark').length");
    assert!(marks < 400, "{marks} marks");
    assert_eq!(b.chart_marks("listener"), 10_000);
    // Filtering opens the table.
    b.eval("(() => { const t = document.querySelector('.row-filter[data-table=listener-table]'); t.value = '29999'; t.dispatchEvent(new Event('input')); })()").unwrap();
    assert_eq!(b.count(VISIBLE_LISTENERS), 1);
    b.eval("(() => { const t = document.querySelector('.row-filter[data-table=listener-table]'); t.value = ''; t.dispatchEvent(new Event('input')); })()").unwrap();
    assert_eq!(b.count(VISIBLE_LISTENERS), 10_000);
    b.assert_clean(&url);
}

#[test]
fn browser_blocks_a_script_the_policy_does_not_hash() {
    let Some(mut b) = Browser::for_test("browser_blocks_a_script_the_policy_does_not_hash") else {
        return;
    };
    // The control for the checks above: a report whose script was altered after the
    // fact. The CSP must block it, and the violation must show in the errors.
    let page = html::to_string(&sample()).unwrap();
    let altered = page.replacen("\"use strict\";", "\"use strict\"; window.altered = 1;", 1);
    assert_ne!(page, altered);
    let path = out_dir().join("altered.html");
    std::fs::write(&path, altered).unwrap();
    b.open(&path).unwrap();
    assert_eq!(
        b.eval("document.documentElement.dataset.js ?? 'off'")
            .unwrap(),
        "off",
        "an unhashed script ran"
    );
    assert_eq!(b.eval("window.altered ?? 0").unwrap(), 0);
    let errors = b.errors().join("\n");
    assert!(
        errors.contains("Content Security Policy"),
        "no CSP violation reported: {errors}"
    );
}

/// 10,000 listeners, and a drift of `changes` changes: half of them listeners added,
/// the rest listeners removed and restarted.
fn many_with_drift(changes: usize) -> ReportInput {
    use portolan_model::{Change, ChangeKind, Diff, FieldChange, Subject};
    let mut input = many(10_000);
    let ls = input.listeners.clone().unwrap();
    let changes = (0..changes)
        .map(|i| {
            let l = &ls[i * 7 % ls.len()];
            let (change, fields) = match i % 4 {
                0 | 1 => (ChangeKind::Added, vec![]),
                2 => (ChangeKind::Removed, vec![]),
                _ => (
                    ChangeKind::Restarted,
                    vec![FieldChange {
                        field: "pid".into(),
                        before: Some("6999".into()),
                        after: Some("7000".into()),
                    }],
                ),
            };
            Change {
                change,
                subject: Subject::Listener(l.key()),
                protocol: Some(l.protocol),
                port: Some(l.port),
                fields,
                listener: Some(l.clone()),
                at: Some("2026-12-01T19:40:00Z".into()),
                noise: false,
            }
        })
        .collect();
    input.diff = Some(Diff {
        from: "run 41 (2026-11-30T19:40:00Z)".into(),
        to: "run 42 (2026-12-01T19:40:00Z)".into(),
        changes,
    });
    input
}

#[test]
fn browser_renders_ten_thousand_listeners_with_two_thousand_changes() {
    let Some(mut b) =
        Browser::for_test("browser_renders_ten_thousand_listeners_with_two_thousand_changes")
    else {
        return;
    };
    let input = many_with_drift(2_000);
    let path = write("many-drift", &input);
    let size = std::fs::metadata(&path).unwrap().len();
    b.call("Performance.enable", json!({})).unwrap();
    let url = b.open(&path).unwrap();
    let cpu = b.main_thread_cpu();
    eprintln!(
        "10k listeners, 2k changes: {size} bytes; main thread CPU {:.0} ms",
        cpu * 1e3
    );
    assert!(size < 3 * 1024 * 1024, "{size} bytes");
    assert!(cpu < 1.0, "the browser spent {cpu} s of CPU");
    let d = input.diff.as_ref().unwrap();
    for k in portolan_model::ChangeKind::ALL {
        let want = d.changes.iter().filter(|c| c.change == k).count();
        b.assert_drift_count(k.as_str(), want as u64);
    }
    assert_eq!(b.chart_marks("drift"), 2_000);
    // The long drift table starts folded, and filtering opens it.
    assert_eq!(
        b.eval("document.querySelector('#drift details.rows').open")
            .unwrap(),
        false
    );
    let port = d.changes[2].port.unwrap();
    b.eval(&format!("(() => {{ const t = document.querySelector('.row-filter[data-table=drift-table]'); t.value = ':{port} '; t.dispatchEvent(new Event('input')); }})()")).unwrap();
    assert_eq!(
        b.eval("document.querySelector('#drift details.rows').open")
            .unwrap(),
        true
    );
    let shown = b.count("[...document.querySelectorAll('#drift-table tbody tr')].filter(e => e.offsetParent !== null).length");
    let want = d.changes.iter().filter(|c| c.port == Some(port)).count() as u64;
    assert_eq!(shown, want);
    b.assert_clean(&url);
}
