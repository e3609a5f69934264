//! The /proc/net/{tcp,udp}{,6} parser and the small /proc and /etc parsers must never
//! panic, whatever the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_inventory::{Family, owners, procnet};
use portolan_registry::Proto;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for family in [Family::V4, Family::V6] {
        for proto in [Proto::Tcp, Proto::Udp] {
            let _ = procnet::parse(&text, proto, family, &mut out);
            let _ = procnet::read(data, std::path::Path::new("fuzz"), proto, family, &mut out);
        }
    }
    let _ = owners::parse_passwd(&text);
    let _ = owners::unit_from_cgroup(&text);
    let _ = owners::parse_socket_unit("fuzz.socket", &text);
    let _ = owners::socket_inode(data);
});
