//! The model's JSON readers (a scan report, an audit report, a drift snapshot, a
//! listener) take any bytes: a value or an error, never a panic. What parses writes out
//! to JSON that reads back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan_model::{AuditReport, Listener, ScanReport, Snapshot};
use serde::{Serialize, de::DeserializeOwned};

fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        let text = serde_json::to_string(&v).expect("a parsed value writes out");
        let back: T = serde_json::from_str(&text).expect("what was written reads back");
        let again = serde_json::to_string(&back).expect("writes out again");
        assert_eq!(text, again);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ScanReport>(data);
    round_trip::<AuditReport>(data);
    round_trip::<Snapshot>(data);
    round_trip::<Listener>(data);
});
