//! nmap XML that nmap itself wrote, against listeners on 127.0.0.1 only.

use std::net::TcpListener;
use std::process::Command;

use portolan_model::{PortState, Proto, Snapshot};
use portolan_store::{DiffOptions, Point, Store, diff_snapshots, nmap_xml};

fn nmap(ports: &str) -> Option<Vec<u8>> {
    let out = Command::new("nmap")
        .args(["-oX", "-", "-sT", "-Pn", "-n", "-p", ports, "127.0.0.1"])
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "nmap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

#[test]
fn reads_what_nmap_wrote_and_diffs_it() {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let gone = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = gone.local_addr().unwrap().port();
    drop(gone);
    let spec = format!("{port},{closed}");
    let Some(xml) = nmap(&spec) else {
        if std::env::var_os("CI").is_some() {
            panic!("nmap is not installed");
        }
        eprintln!("nmap not installed: skipped");
        return;
    };
    let scan = nmap_xml::read_scan(&xml[..], "nmap.xml").unwrap();
    let r = &scan.report;
    let lo = "127.0.0.1".parse().unwrap();
    assert_eq!(
        r.port(lo, Proto::Tcp, port).unwrap().result.state,
        PortState::Open
    );
    let c = r.port(lo, Proto::Tcp, closed).map(|p| p.result.state);
    assert!(c.is_none() || c == Some(PortState::Closed), "{c:?}");
    assert!(r.coverage.covers(lo, Proto::Tcp, closed));
    assert!(scan.started.is_some() && scan.args.contains("nmap"));

    // a diff of the file against itself is empty
    let snap = scan.clone().into_snapshot("localhost");
    assert!(diff_snapshots(&snap, &snap, &DiffOptions::default()).is_empty());

    // recorded, read back, and diffed after the port closed
    let t = tempfile::tempdir().unwrap();
    let mut store = Store::open(t.path().join("h.db")).unwrap();
    let id = store.record(&snap).unwrap();
    assert_eq!(store.snapshot(id).unwrap(), snap);
    drop(open);
    let xml2 = nmap(&spec).unwrap();
    let snap2: Snapshot = nmap_xml::read_scan(&xml2[..], "2.xml")
        .unwrap()
        .into_snapshot("localhost");
    store.record(&snap2).unwrap();
    let d = store
        .diff(&Point::Run(1), &Point::Last, &DiffOptions::default())
        .unwrap();
    let ours: Vec<_> = d.changes.iter().filter(|c| c.port == Some(port)).collect();
    assert_eq!(ours.len(), 1, "{:?}", d.changes);
    let pure = diff_snapshots(&snap, &snap2, &DiffOptions::default());
    assert_eq!(
        pure.changes
            .iter()
            .map(|c| (c.change, c.port))
            .collect::<Vec<_>>(),
        d.changes
            .iter()
            .map(|c| (c.change, c.port))
            .collect::<Vec<_>>()
    );
    // a truncated nmap file is a clear error
    let e = nmap_xml::read(&xml[..xml.len() / 2], "half.xml").unwrap_err();
    assert!(
        e.to_string().starts_with("read nmap XML half.xml line "),
        "{e}"
    );
}
