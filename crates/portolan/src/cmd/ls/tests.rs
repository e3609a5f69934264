//! Rendering from fixed data: no root, no kernel.

use portolan_app::inventory::{NetnsChoice, Request as Options, run_with};
use portolan_inventory::fake::{FakeOs, owner, sock};
use portolan_model::{PortSpec, SocketState};
use portolan_registry::{Proto, Registry};

use super::*;

fn render(os: &FakeOs, opts: &Options, format: Format, view: View) -> String {
    let inv = run_with(os, opts, Registry::embedded()).unwrap();
    let mut buf = Vec::new();
    match format {
        Format::Json => listeners::json(&mut buf, &inv.listeners),
        Format::Csv => listeners::csv(&mut buf, &inv.listeners),
        Format::Table => listeners::table(&mut buf, &inv.listeners, &view),
    }
    .unwrap();
    String::from_utf8(buf).unwrap()
}

/// `render` with the default options and view.
fn plain(os: &FakeOs, format: Format) -> String {
    render(os, &Options::default(), format, View::default())
}

#[test]
fn table_of_a_typical_host() {
    let text = plain(&FakeOs::sample(), Format::Table);
    insta::assert_snapshot!(text);
}

#[test]
fn wide_table() {
    let opts = Options {
        exposed: true,
        ..Options::default()
    };
    let view = View {
        wide: true,
        ..View::default()
    };
    insta::assert_snapshot!(render(&FakeOs::sample(), &opts, Format::Table, view));
}

#[test]
fn table_with_namespaces() {
    let mut os = FakeOs::new();
    os.add_namespace("blue", 4026532300);
    let web = owner(
        300,
        "python3",
        "/usr/bin/python3.11",
        "python3 -m http.server",
        0,
        "root",
        None,
    );
    os.add(
        "host",
        sock(Proto::Tcp, "0.0.0.0", 8000, None, 0, 1),
        &[&web],
    );
    os.add(
        "blue",
        sock(Proto::Tcp, "198.18.0.2", 8000, None, 0, 2),
        &[&web],
    );
    os.add("blue", sock(Proto::Udp, "::1", 5353, Some(true), 0, 3), &[]);
    let opts = Options {
        netns: NetnsChoice::All,
        ..Options::default()
    };
    insta::assert_snapshot!(render(&os, &opts, Format::Table, View::default()));
}

#[test]
fn color_marks_exposure_and_header() {
    let view = View {
        color: true,
        ..View::default()
    };
    let text = render(&FakeOs::sample(), &Options::default(), Format::Table, view);
    assert!(text.starts_with("\x1b[1mEXPOSURE"));
    assert!(text.contains("\x1b[31mall\x1b[0m"));
    assert!(text.contains("\x1b[32mloopback\x1b[0m"));
}

#[test]
fn json_of_a_typical_host() {
    let opts = Options {
        ports: Some(PortSpec::parse_with("22,9090", Registry::embedded()).unwrap()),
        ..Options::default()
    };
    insta::assert_snapshot!(render(
        &FakeOs::sample(),
        &opts,
        Format::Json,
        View::default()
    ));
}

#[test]
fn csv_of_a_typical_host() {
    insta::assert_snapshot!(plain(&FakeOs::sample(), Format::Csv));
}

#[test]
fn empty_table_prints_nothing() {
    let text = plain(&FakeOs::new(), Format::Table);
    assert_eq!(text, "");
    let json = plain(&FakeOs::new(), Format::Json);
    assert_eq!(json, "[]\n");
}

#[test]
fn connected_udp_gets_a_peer_column() {
    let mut os = FakeOs::new();
    let resolver = owner(
        77,
        "dig",
        "/usr/bin/dig",
        "dig @198.18.0.2 example",
        0,
        "root",
        None,
    );
    let mut s = sock(Proto::Udp, "198.18.0.1", 40000, None, 0, 5);
    s.state = SocketState::Connected;
    s.remote = Some(("198.18.0.2".parse().unwrap(), 53));
    os.add("host", s, &[&resolver]);
    os.add("host", sock(Proto::Udp, "0.0.0.0", 53, None, 0, 6), &[]);
    let opts = Options {
        all: true,
        ..Options::default()
    };
    insta::assert_snapshot!(render(&os, &opts, Format::Table, View::default()));
}
