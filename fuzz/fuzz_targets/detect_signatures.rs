//! Signature files must parse or fail with an error, never panic; a parsed set matches
//! any transcript without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_detect::Signatures;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(sigs) = Signatures::parse(text, "fuzz")
    {
        let _ = sigs.identify(None, text);
        let _ = sigs.identify(Some("http"), text);
    }
});
