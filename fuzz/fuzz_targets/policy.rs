//! The policy parser never panics, and any error it reports points inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_audit::policy::Policy;
use portolan_registry::Registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = Policy::parse(text, "fuzz.toml", Registry::embedded()) {
        let lines = text.split('\n').count();
        for e in errors.0 {
            assert!(e.line >= 1 && e.line <= lines, "{e}");
        }
    }
});
