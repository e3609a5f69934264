//! Fuzzes the /etc/services parser: any bytes give entries and warnings, never a panic,
//! and every lookup answers with a line that matches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_registry::services::parse_services;

fuzz_target!(|data: &[u8]| {
    let f = parse_services(data);
    for l in &f.lines {
        assert_eq!(f.by_port(l.port, Some(&l.protocol)).map(|x| x.port), Some(l.port));
        let hit = f.by_name(&l.name, None).expect("its own name");
        assert!(hit.answers_to(&l.name));
    }
});
