//! Fuzzes the reader of IANA's CSV: any text gives rows or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_registry::iana_csv;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = iana_csv::records(text);
    // With IANA's header in front, the body goes through the row checks too.
    let with_header = format!("{}\r\n{text}", iana_csv::HEADER.join(","));
    if let Ok(rows) = iana_csv::parse(&with_header) {
        for r in rows {
            if let Some((a, b)) = r.ports {
                assert!(a <= b);
            }
            assert!(!(r.name.is_empty() && r.ports.is_none()));
        }
    }
});
