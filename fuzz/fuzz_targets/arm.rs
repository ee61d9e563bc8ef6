//! ARM response bodies: a compute, a page of computes and an error body. Parsing is lenient
//! and must never panic; what parses converts to the engine's view without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightsout::azure::{convert, wire, wire::ArmError};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<wire::ComputeResource>(data) {
        let _ = convert::instance_observation("ws", &r);
        let _ = convert::jupyter_base(&r);
    }
    if let Ok(page) = serde_json::from_slice::<wire::ComputeList>(data) {
        for r in &page.value {
            let _ = convert::instance_observation("ws", r);
            let _ = convert::jupyter_base(r);
        }
    }
    let status = data.first().map_or(500, |b| 400 + u16::from(*b) % 200);
    let e = ArmError::from_body(status, data);
    let _ = e.to_string();
});
