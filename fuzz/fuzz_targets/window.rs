//! The uptime window grammar: parse never panics, and what parses prints back to text that
//! parses to the same window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightsout::engine::schedule::Window;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(w) = text.parse::<Window>() {
        let shown = w.to_string();
        let again: Window = shown
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} parsed, its display {shown:?} did not: {e}"));
        assert_eq!(w, again, "{text:?} -> {shown:?}");
    }
});
