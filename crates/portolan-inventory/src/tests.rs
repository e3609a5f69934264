use std::net::IpAddr;

use proptest::prelude::*;

use super::fake::{FakeOs, owner, sock};
use super::*;

fn collect(os: &FakeOs, opts: &Options) -> Inventory {
    Inventory::collect_with(os, opts, Registry::embedded()).unwrap()
}

fn spec(text: &str) -> Option<PortSpec> {
    Some(PortSpec::parse_with(text, Registry::embedded()).unwrap())
}

fn ports(inv: &Inventory) -> Vec<(Proto, u16)> {
    inv.listeners.iter().map(|l| (l.protocol, l.port)).collect()
}

#[test]
fn exposure_of_addresses() {
    let e = |a: &str| Exposure::of(a.parse().unwrap(), None);
    assert_eq!(e("0.0.0.0"), Exposure::All);
    assert_eq!(e("::"), Exposure::All);
    assert_eq!(e("::ffff:0.0.0.0"), Exposure::All);
    assert_eq!(e("127.0.0.53"), Exposure::Loopback);
    assert_eq!(e("::1"), Exposure::Loopback);
    assert_eq!(e("::ffff:127.0.0.1"), Exposure::Loopback);
    assert_eq!(e("198.18.0.2"), Exposure::Address);
    assert_eq!(e("fe80::1"), Exposure::Address);
    assert_eq!(
        Exposure::of("0.0.0.0".parse().unwrap(), Some("lo")),
        Exposure::Loopback
    );
    assert_eq!(
        Exposure::of("0.0.0.0".parse().unwrap(), Some("eth0")),
        Exposure::All
    );
    assert!(Exposure::All > Exposure::Address && Exposure::Address > Exposure::Loopback);
}

#[test]
fn sample_is_sorted_by_risk_then_protocol_and_port() {
    let inv = collect(&FakeOs::sample(), &Options::default());
    let exp: Vec<Exposure> = inv.listeners.iter().map(|l| l.exposure).collect();
    let mut sorted = exp.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(exp, sorted);
    assert_eq!(
        ports(&inv),
        vec![
            (Proto::Tcp, 22),
            (Proto::Tcp, 80),
            (Proto::Tcp, 443),
            (Proto::Tcp, 9090),
            (Proto::Udp, 68),
            (Proto::Udp, 5353),
            (Proto::Tcp, 5432),
            (Proto::Tcp, 53),
            (Proto::Tcp, 631),
            (Proto::Tcp, 631),
            (Proto::Udp, 53),
        ]
    );
}

#[test]
fn socket_activation_names_the_socket_unit() {
    let inv = collect(&FakeOs::sample(), &Options::default());
    let l = inv.listeners.iter().find(|l| l.port == 9090).unwrap();
    assert!(l.socket_activated);
    assert_eq!(l.socket_unit.as_deref(), Some("cockpit.socket"));
    let ssh = inv.listeners.iter().find(|l| l.port == 22).unwrap();
    assert!(!ssh.socket_activated);
    assert_eq!(ssh.socket_unit, None);
}

#[test]
fn daemons_come_before_systemd_among_owners() {
    let mut os = FakeOs::new();
    let systemd = owner(
        1,
        "systemd",
        "/lib/systemd/systemd",
        "/sbin/init",
        0,
        "root",
        None,
    );
    let sshd = owner(
        77,
        "sshd",
        "/usr/sbin/sshd",
        "sshd -i",
        0,
        "root",
        Some("ssh.service"),
    );
    os.add(
        "host",
        sock(Proto::Tcp, "::", 22, Some(false), 0, 5),
        &[&systemd, &sshd],
    );
    let inv = collect(&os, &Options::default());
    let pids: Vec<u32> = inv.listeners[0].processes.iter().map(|o| o.pid).collect();
    assert_eq!(pids, vec![77, 1]);
    assert!(inv.listeners[0].socket_activated);
}

#[test]
fn unreadable_owners_are_unknown_with_one_warning() {
    let inv = collect(&FakeOs::sample(), &Options::default());
    let unknown: Vec<u16> = inv
        .listeners
        .iter()
        .filter(|l| l.owner_unknown)
        .map(|l| l.port)
        .collect();
    assert_eq!(unknown, vec![68, 5353]);
    assert_eq!(inv.warnings.len(), 1);
    assert_eq!(
        inv.warnings[0],
        "owner unknown for 2 sockets: cannot read /proc/PID/fd of 1 process \
         (permission denied; run as root to see them)"
    );
    // With every process readable, a socket without owners is the kernel's, not unknown.
    let mut os = FakeOs::sample();
    os.unreadable.clear();
    let inv = collect(&os, &Options::default());
    assert!(inv.listeners.iter().all(|l| !l.owner_unknown));
    assert!(inv.warnings.is_empty());
}

#[test]
fn filters() {
    let os = FakeOs::sample();
    let tcp = collect(
        &os,
        &Options {
            tcp: true,
            ..Options::default()
        },
    );
    assert!(tcp.listeners.iter().all(|l| l.protocol == Proto::Tcp));
    assert_eq!(tcp.listeners.len(), 8);
    let udp = collect(
        &os,
        &Options {
            udp: true,
            ..Options::default()
        },
    );
    assert_eq!(
        ports(&udp),
        vec![(Proto::Udp, 68), (Proto::Udp, 5353), (Proto::Udp, 53)]
    );
    let p = collect(
        &os,
        &Options {
            ports: spec("50-80"),
            ..Options::default()
        },
    );
    assert_eq!(
        ports(&p),
        vec![
            (Proto::Tcp, 80),
            (Proto::Udp, 68),
            (Proto::Tcp, 53),
            (Proto::Udp, 53)
        ]
    );
    let exposed = collect(
        &os,
        &Options {
            exposed: true,
            ..Options::default()
        },
    );
    assert!(
        exposed
            .listeners
            .iter()
            .all(|l| l.exposure != Exposure::Loopback)
    );
    assert_eq!(exposed.listeners.len(), 7);
    let v6 = collect(
        &os,
        &Options {
            ipv6: true,
            ..Options::default()
        },
    );
    assert!(v6.listeners.iter().all(|l| l.family == Family::V6));
    assert_eq!(v6.listeners.len(), 4);
    for (want, expect) in [
        ("nginx", vec![80, 443]),
        ("900", vec![80, 443]),
        ("ssh", vec![22]),
        ("ssh.service", vec![22]),
        ("systemd-resolved", vec![53, 53]),
        ("postgresql@16-main", vec![5432]),
        ("nobody-here", vec![]),
    ] {
        let inv = collect(
            &os,
            &Options {
                process: Some(want.into()),
                ..Options::default()
            },
        );
        let got: Vec<u16> = inv.listeners.iter().map(|l| l.port).collect();
        assert_eq!(got, expect, "--process {want}");
    }
}

#[test]
fn connected_udp_only_with_all() {
    let mut os = FakeOs::new();
    let mut s = sock(Proto::Udp, "198.18.0.1", 40000, None, 0, 9);
    s.state = SocketState::Connected;
    s.remote = Some(("198.18.0.2".parse().unwrap(), 53));
    os.add("host", s, &[]);
    assert!(collect(&os, &Options::default()).listeners.is_empty());
    let all = collect(
        &os,
        &Options {
            all: true,
            ..Options::default()
        },
    );
    assert_eq!(all.listeners.len(), 1);
    assert_eq!(all.listeners[0].remote.as_deref(), Some("198.18.0.2:53"));
}

#[test]
fn namespaces_label_rows() {
    let mut os = FakeOs::new();
    os.add_namespace("blue", 77);
    os.add("host", sock(Proto::Tcp, "0.0.0.0", 80, None, 0, 1), &[]);
    os.add("blue", sock(Proto::Tcp, "0.0.0.0", 80, None, 0, 2), &[]);
    let all = collect(
        &os,
        &Options {
            netns: NetnsChoice::All,
            ..Options::default()
        },
    );
    let labels: Vec<(&str, u64)> = all
        .listeners
        .iter()
        .map(|l| (&*l.netns, l.netns_inode))
        .collect();
    assert_eq!(labels, vec![("blue", 77), ("host", 4026531840)]);
    let blue = collect(
        &os,
        &Options {
            netns: NetnsChoice::Named("blue".into()),
            ..Options::default()
        },
    );
    assert_eq!(blue.listeners.len(), 1);
    assert!(matches!(
        Inventory::collect_with(
            &os,
            &Options {
                netns: NetnsChoice::Named("red".into()),
                ..Options::default()
            },
            Registry::embedded()
        ),
        Err(Error::NoSuchNetns { .. })
    ));
}

#[test]
fn proc_sockets_get_options_from_the_socket() {
    let mut os = FakeOs::new();
    let o = owner(10, "d", "/d", "d", 0, "root", None);
    let mut s = sock(Proto::Tcp, "::", 80, None, 0, 3);
    s.from_proc = true;
    os.add("host", s, &[&o]);
    os.options.insert(3, (Some(false), Some("lo".into())));
    let inv = collect(&os, &Options::default());
    assert_eq!(inv.listeners[0].v6only, Some(false));
    assert_eq!(inv.listeners[0].interface.as_deref(), Some("lo"));
    assert_eq!(inv.listeners[0].exposure, Exposure::Loopback);
}

#[test]
fn socket_unit_matching() {
    let units = vec![
        SocketUnitListen {
            unit: "a.socket".into(),
            protocol: Proto::Tcp,
            address: None,
            port: 80,
        },
        SocketUnitListen {
            unit: "b.socket".into(),
            protocol: Proto::Tcp,
            address: Some("127.0.0.1".parse().unwrap()),
            port: 80,
        },
        SocketUnitListen {
            unit: "c.socket".into(),
            protocol: Proto::Udp,
            address: None,
            port: 80,
        },
    ];
    let f = |p, a: &str, port| find_socket_unit(&units, p, a.parse::<IpAddr>().unwrap(), port);
    assert_eq!(f(Proto::Tcp, "127.0.0.1", 80).as_deref(), Some("b.socket"));
    assert_eq!(
        f(Proto::Tcp, "::ffff:127.0.0.1", 80).as_deref(),
        Some("b.socket")
    );
    assert_eq!(f(Proto::Tcp, "::", 80).as_deref(), Some("a.socket"));
    assert_eq!(f(Proto::Udp, "0.0.0.0", 80).as_deref(), Some("c.socket"));
    assert_eq!(f(Proto::Udp, "0.0.0.0", 81), None);
}

#[test]
fn socket_unit_files() {
    let text = "[Unit]\nDescription=x\nListenStream=1\n[Socket]\nListenStream=22\n\
                ListenStream=[::1]:2222\nListenStream=/run/x.sock\nListenDatagram=127.0.0.53:53\n\
                # ListenStream=99\n[Install]\nWantedBy=sockets.target\n";
    let l = owners::parse_socket_unit("x.socket", text);
    let got: Vec<(Proto, Option<IpAddr>, u16)> =
        l.iter().map(|u| (u.protocol, u.address, u.port)).collect();
    assert_eq!(
        got,
        vec![
            (Proto::Tcp, None, 22),
            (Proto::Tcp, Some("::1".parse().unwrap()), 2222),
            (Proto::Udp, Some("127.0.0.53".parse().unwrap()), 53),
        ]
    );
    let reset = owners::parse_socket_unit(
        "y.socket",
        "[Socket]\nListenStream=80\nListenStream=\nListenStream=81\n",
    );
    assert_eq!(reset.iter().map(|u| u.port).collect::<Vec<_>>(), vec![81]);
}

#[test]
fn cgroup_units() {
    let u = owners::unit_from_cgroup;
    assert_eq!(
        u("0::/system.slice/ssh.service\n").as_deref(),
        Some("ssh.service")
    );
    assert_eq!(
        u("0::/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service\n").as_deref(),
        Some("foo.service")
    );
    assert_eq!(u("0::/init.scope\n").as_deref(), Some("init.scope"));
    assert_eq!(
        u("12:cpu:/x\n1:name=systemd:/system.slice/cron.service\n").as_deref(),
        Some("cron.service")
    );
    assert_eq!(u("0::/\n"), None);
    assert_eq!(u("0::/docker/abc123\n"), None);
    assert_eq!(u(""), None);
}

#[test]
fn passwd() {
    let users = owners::parse_passwd(
        "root:x:0:0:root:/root:/bin/bash\n# comment\nbad line\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n\
         dup:x:0:0::/:/bin/sh\n+nis::::::\n:x:5:5::/:\n",
    );
    assert_eq!(users.get(&0).map(String::as_str), Some("root"));
    assert_eq!(users.get(&33).map(String::as_str), Some("www-data"));
    assert_eq!(users.len(), 2);
}

#[test]
fn socket_inode_links() {
    assert_eq!(owners::socket_inode(b"socket:[12345]"), Some(12345));
    assert_eq!(owners::socket_inode(b"socket:[]"), None);
    assert_eq!(owners::socket_inode(b"socket:[12a]"), None);
    assert_eq!(owners::socket_inode(b"pipe:[12]"), None);
    assert_eq!(
        owners::socket_inode(b"socket:[99999999999999999999999]"),
        None
    );
}

#[test]
fn netlink_dump_round_trip() {
    let a = sock(Proto::Tcp, "198.18.0.2", 443, None, 33, 77);
    let mut b = sock(Proto::Tcp, "::", 22, Some(false), 0, 78);
    b.ifindex = 2;
    let mut buf = diag::encode(&a, 1);
    buf.extend(diag::encode(&b, 1));
    let mut out = Vec::new();
    assert_eq!(
        diag::parse(&buf, Proto::Tcp, &mut out),
        Ok(diag::Progress::More)
    );
    assert_eq!(out, vec![a, b]);
    let mut out = Vec::new();
    assert_eq!(
        diag::parse(&diag::encode_done(1), Proto::Tcp, &mut out),
        Ok(diag::Progress::Done)
    );
}

#[test]
fn netlink_errors_and_short_messages() {
    // NLMSG_ERROR with -ENOENT.
    let mut err = Vec::new();
    err.extend_from_slice(&36u32.to_ne_bytes());
    err.extend_from_slice(&2u16.to_ne_bytes());
    err.extend_from_slice(&[0; 10]);
    err.extend_from_slice(&(-2i32).to_ne_bytes());
    err.extend_from_slice(&[0; 16]);
    let mut out = Vec::new();
    assert_eq!(
        diag::parse(&err, Proto::Tcp, &mut out),
        Ok(diag::Progress::Error(2))
    );
    // A message cut short, a length below the header, a body shorter than inet_diag_msg.
    let full = diag::encode(&sock(Proto::Udp, "0.0.0.0", 53, None, 0, 1), 1);
    assert!(matches!(
        diag::parse(&full[..full.len() - 1], Proto::Udp, &mut out),
        Err(diag::ParseError::Truncated { .. })
    ));
    assert!(matches!(
        diag::parse(&[8, 0, 0, 0, 0, 0, 0, 0], Proto::Udp, &mut out),
        Err(diag::ParseError::BadLength { .. })
    ));
    let mut short = full[..40].to_vec();
    short[0..4].copy_from_slice(&40u32.to_ne_bytes());
    assert!(diag::parse(&short, Proto::Udp, &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn proc_net_lines() {
    let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 3500007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 20431 1 0000000000000000 100 0 0 10 5\n\
   1: 0100007F:1F90 0100007F:D2B4 01 00000000:00000000 00:00000000 00000000  1000        0 99 1 0000000000000000 20 4 30 10 -1\n";
    let mut out = Vec::new();
    procnet::parse(text, Proto::Tcp, Family::V4, &mut out).unwrap();
    assert_eq!(out.len(), 1, "the established socket is left out");
    assert_eq!(out[0].address, "127.0.0.53".parse::<IpAddr>().unwrap());
    assert_eq!((out[0].port, out[0].uid, out[0].inode), (53, 101, 20431));
    let v6 = "h\n   0: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1\n";
    let mut out = Vec::new();
    procnet::parse(v6, Proto::Tcp, Family::V6, &mut out).unwrap();
    assert_eq!(out[0].address, "::1".parse::<IpAddr>().unwrap());
    assert_eq!(out[0].port, 631);
    assert_eq!(out[0].v6only, None);
    let err =
        procnet::parse("h\n 0: zz:0 00:0 0A\n", Proto::Tcp, Family::V4, &mut out).unwrap_err();
    assert_eq!(err.line, 2);
}

fn arb_socket() -> impl Strategy<Value = RawSocket> {
    (
        prop_oneof![Just(Proto::Tcp), Just(Proto::Udp)],
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
        (any::<[u8; 16]>(), any::<u16>()),
    )
        .prop_map(
            |(protocol, v6, a, port, uid, inode, v6only, connected, (ra, rp))| {
                let (family, address, remote) = if v6 {
                    (Family::V6, IpAddr::from(a), IpAddr::from(ra))
                } else {
                    let v4 = |b: [u8; 16]| IpAddr::from([b[0], b[1], b[2], b[3]]);
                    (Family::V4, v4(a), v4(ra))
                };
                let state = match protocol {
                    Proto::Udp if connected => SocketState::Connected,
                    Proto::Udp => SocketState::Unconnected,
                    _ => SocketState::Listen,
                };
                RawSocket {
                    protocol,
                    family,
                    state,
                    address,
                    port,
                    remote: (state == SocketState::Connected).then_some((remote, rp)),
                    v6only: if v6 { Some(v6only) } else { Some(false) },
                    ifindex: 0,
                    interface: None,
                    uid,
                    inode: u64::from(inode),
                    from_proc: false,
                }
            },
        )
}

proptest! {
    #[test]
    fn netlink_parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut out = Vec::new();
        let _ = diag::parse(&buf, Proto::Tcp, &mut out);
        let _ = diag::parse(&buf, Proto::Udp, &mut out);
    }

    #[test]
    fn netlink_encoded_sockets_parse_back(socks in proptest::collection::vec(arb_socket(), 0..20)) {
        for proto in [Proto::Tcp, Proto::Udp] {
            let want: Vec<RawSocket> = socks.iter().filter(|s| s.protocol == proto).cloned().collect();
            let mut buf: Vec<u8> = want.iter().flat_map(|s| diag::encode(s, 7)).collect();
            buf.extend(diag::encode_done(7));
            let mut out = Vec::new();
            prop_assert_eq!(diag::parse(&buf, proto, &mut out), Ok(diag::Progress::Done));
            prop_assert_eq!(out, want);
        }
    }

    #[test]
    fn netlink_corrupted_dumps_never_panic(
        socks in proptest::collection::vec(arb_socket(), 1..5),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf: Vec<u8> = socks.iter().flat_map(|s| diag::encode(s, 1)).collect();
        let i = at.index(buf.len());
        buf[i] = byte;
        buf.truncate(cut.index(buf.len() + 1));
        let mut out = Vec::new();
        let _ = diag::parse(&buf, Proto::Tcp, &mut out);
    }

    #[test]
    fn proc_lines_parse_back(socks in proptest::collection::vec(arb_socket(), 0..20)) {
        for s in &socks {
            let mut want = s.clone();
            want.from_proc = true;
            if want.family == Family::V6 {
                want.v6only = None;
            }
            let line = procnet::format_line(0, s);
            let got = procnet::parse_line(&line, s.protocol, s.family, 2);
            prop_assert_eq!(got, Ok(Some(want)), "{}", line);
        }
    }

    #[test]
    fn proc_parse_never_panics(text in "\\PC{0,300}", v6 in any::<bool>()) {
        let family = if v6 { Family::V6 } else { Family::V4 };
        let mut out = Vec::new();
        let _ = procnet::parse(&text, Proto::Tcp, family, &mut out);
    }

    #[test]
    fn small_parsers_never_panic(text in "\\PC{0,200}") {
        let _ = owners::parse_passwd(&text);
        let _ = owners::unit_from_cgroup(&text);
        let _ = owners::parse_socket_unit("x.socket", &text);
        let _ = owners::socket_inode(text.as_bytes());
    }
}

#[test]
fn vanished_processes_are_skipped() {
    // A pid that does not exist reads as gone, not as an error.
    assert_eq!(owners::read_owner(u32::MAX - 7, &|_| None), None);
    // Processes that start and end during walks never show up as unreadable.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..40 {
                if let Ok(mut c) = std::process::Command::new("true").spawn() {
                    let _ = c.wait();
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let wanted: InodeSet = [1u64].into_iter().collect();
        let root =
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let scan = owners::scan(&wanted, false, &|_| None);
            if root {
                assert!(scan.unreadable.is_empty(), "{:?}", scan.unreadable);
            }
        }
    });
}

#[test]
fn services_are_named_by_the_registry_passed_in() {
    let mut os = FakeOs::new();
    os.add("host", sock(Proto::Tcp, "0.0.0.0", 143, None, 0, 1), &[]);
    os.add("host", sock(Proto::Tcp, "0.0.0.0", 4, None, 0, 2), &[]);
    let inv = collect(&os, &Options::default());
    let names: Vec<Option<&str>> = inv.listeners.iter().map(|l| l.service.as_deref()).collect();
    assert_eq!(names, vec![None, Some("imap")]);
    // A services file in the registry names it as glibc would.
    let file = portolan_registry::services::ServicesFile::from_lines(vec![
        portolan_registry::services::ServiceLine::new(1, "imap2", 143, "tcp", &[]),
    ]);
    let reg = Registry::with_services(file, portolan_registry::Origin::System);
    let inv = Inventory::collect_with(&os, &Options::default(), &reg).unwrap();
    assert_eq!(inv.listeners[1].service.as_deref(), Some("imap2"));
}

#[test]
fn port_spec_with_a_protocol_narrows_to_it() {
    let os = FakeOs::sample();
    let got = |text: &str| {
        ports(&collect(
            &os,
            &Options {
                ports: spec(text),
                ..Options::default()
            },
        ))
    };
    assert_eq!(got("U:53"), vec![(Proto::Udp, 53)]);
    assert_eq!(got("53/tcp"), vec![(Proto::Tcp, 53)]);
    assert_eq!(got("53"), vec![(Proto::Tcp, 53), (Proto::Udp, 53)]);
    assert_eq!(got("dns"), vec![(Proto::Tcp, 53), (Proto::Udp, 53)]);
    assert_eq!(got("T:22,U:68"), vec![(Proto::Tcp, 22), (Proto::Udp, 68)]);
}
