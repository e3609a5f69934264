//! Fuzzes the query parser of `lookup` and `explain` and the port-spec parser, over the
//! embedded registry and one merged with a services file: any text gives a query or an
//! error that names the token, never a panic; and a parsed query looks up without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_model::spec::{PortSpec, Query};
use portolan_registry::services::parse_services;
use portolan_registry::{Origin, Registry};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.len() > 256 {
        return;
    }
    let merged = Registry::with_services(parse_services(b"rtmp 1/ddp\nx11 6000/tcp\n"), Origin::System);
    for reg in [Registry::embedded(), &merged] {
        match Query::parse(text, reg) {
            Ok(Query::Ports(r, _)) => {
                assert!(r.first <= r.last);
                // Look up a bounded number of ports.
                for port in r.iter().take(64) {
                    let _ = reg.at_port(port);
                }
            }
            Ok(Query::Name(n, _)) => {
                assert!(!n.trim().is_empty());
                let _ = reg.by_name(&n);
            }
            Err(_) => {}
        }
        let _ = PortSpec::parse_with(text, reg);
    }
});
