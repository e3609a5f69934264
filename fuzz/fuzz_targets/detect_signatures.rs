//! Signature files and the protocol parsers must never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_detect::Signatures;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(sigs) = Signatures::parse(text, "fuzz") {
            let _ = sigs.identify(None, text);
        }
    }
    let _ = portolan_detect::ber::parse(data);
    let _ = portolan_detect::ber::children(data);
    portolan_detect::parse_all(data);
});
