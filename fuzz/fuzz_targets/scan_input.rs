//! The scanner's parsers of untrusted input: target tokens and lists, port specs, and the
//! packets read off raw sockets. None may panic, whatever the bytes.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use portolan_scan::packet;
use portolan_scan::{PortSpec, Proto, Target};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Target::parse(text);
        for t in portolan_scan::target::read_list(text) {
            let _ = Target::parse(&t);
        }
        let resolve = |name: &str| {
            if name == "https" {
                vec![(443, Proto::Tcp)]
            } else {
                Vec::new()
            }
        };
        if let Ok(spec) = PortSpec::parse(text, &resolve) {
            let _ = spec.ports(Proto::Tcp);
        }
    }
    let _ = packet::parse_tcp_v4(data);
    let _ = packet::parse_icmp_v4(data);
    let _ = packet::parse_icmp_v6(data, IpAddr::V6(Ipv6Addr::LOCALHOST));
});
