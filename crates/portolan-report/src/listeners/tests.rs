use portolan_model::{Proto, SocketState};

use super::*;

fn render(ls: &[Listener], view: View) -> String {
    let mut buf = Vec::new();
    table(&mut buf, ls, &view).unwrap();
    String::from_utf8(buf).unwrap()
}

fn hostile() -> Listener {
    let mut p = Process::new(66, "evil\x1b[2J");
    p.cmdline = "evil --title \x1b]0;pwned\x07\nrm".into();
    Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 8080).with_process(p)
}

#[test]
fn process_names_and_commands_are_escaped_in_tables() {
    let text = render(
        &[hostile()],
        View {
            wide: true,
            ..View::default()
        },
    );
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(text.contains("evil\\x1b[2J[66]"), "{text}");
    assert!(text.contains("\\x1b]0;pwned\\x07\\nrm"), "{text}");
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn json_and_csv_keep_the_text_as_it_is() {
    let mut buf = Vec::new();
    json(&mut buf, &[hostile()]).unwrap();
    let back: Vec<Listener> = serde_json::from_slice(&buf).unwrap();
    assert_eq!(back[0].processes[0].name, "evil\x1b[2J");
    let mut buf = Vec::new();
    csv(&mut buf, &[hostile()]).unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert!(text.contains("evil\x1b[2J"));
}

#[test]
fn groups_are_separated_and_coloured() {
    let mut udp = Listener::new(Proto::Udp, "127.0.0.1".parse().unwrap(), 53);
    udp.state = SocketState::Unconnected;
    let ls = [
        Listener::new(Proto::Tcp, "::".parse().unwrap(), 22),
        Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 80),
        udp,
    ];
    let plain = render(&ls, View::default());
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("EXPOSURE  PROTO"));
    assert!(lines[1].starts_with("all ") && lines[2].starts_with("    "));
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with("loopback"));
    let color = render(
        &ls,
        View {
            color: true,
            ..View::default()
        },
    );
    assert!(color.starts_with("\x1b[1mEXPOSURE"));
    assert!(color.contains("\x1b[31mall\x1b[0m") && color.contains("\x1b[32mloopback\x1b[0m"));
    assert_eq!(render(&[], View::default()), "");
}
