//! `portolan detect` targets (`HOST:PORT[/udp]`, `[V6%zone]:PORT`) must parse or fail
//! with an error, never panic; a parsed target's server name is never an address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_app::detect::parse_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(t) = parse_target(text)
    {
        assert!(t.port != 0);
        if let Some(name) = t.server_name() {
            assert!(name.parse::<std::net::IpAddr>().is_err());
        }
    }
});
