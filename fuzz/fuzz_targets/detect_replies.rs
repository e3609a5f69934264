//! What a peer sends (banners, greetings, and the replies to every probe: HTTP, telnet,
//! DNS, NTP, SNMP's BER, NetBIOS, TFTP, DHCP, LDAP, SMB) must never panic a parser,
//! whatever the bytes; and the built-in signatures match any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    portolan_detect::parse_all(data);
    let _ = portolan_detect::ber::parse(data);
    let _ = portolan_detect::ber::children(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = portolan_detect::Signatures::builtin().identify(None, text);
    }
});
