//! The config loader: any text must give a config or diagnostics, never a panic or a hang.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((cfg, _warnings)) = lightsout::engine::config::parse(text, Path::new("fuzz.toml")) {
        // A config that validates must be usable: every schedule answers a question about now.
        let now = jiff::Timestamp::from_second(1_780_000_000).unwrap();
        for p in &cfg.policies {
            let _ = p.schedule.desired_at(now);
            let _ = p.schedule.next_transition(now);
            let _ = p.schedule.previous_transition(now);
        }
    }
});
