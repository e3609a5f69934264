//! The netlink sock_diag dump parser must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_inventory::diag;
use portolan_registry::Proto;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = diag::parse(data, Proto::Tcp, &mut out);
    let _ = diag::parse(data, Proto::Udp, &mut out);
});
