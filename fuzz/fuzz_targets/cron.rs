//! The cron grammar: parse never panics, and a parsed expression's fire times over a week, in
//! UTC and in a zone with DST, come back quickly, ascending and inside the range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightsout::engine::schedule::CronExpr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cron) = CronExpr::parse(text) else {
        return;
    };
    // 2026-03-27 .. 2026-04-03 crosses Europe's spring-forward.
    let after = jiff::Timestamp::from_second(1_774_569_600).unwrap();
    let until = jiff::Timestamp::from_second(1_775_174_400).unwrap();
    for tz in ["UTC", "Europe/Paris"] {
        let tz = jiff::tz::TimeZone::get(tz).unwrap();
        let times = cron.fire_times(&tz, after, until);
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{text:?}: not ascending");
        assert!(times.iter().all(|t| *t > after && *t <= until), "{text:?}: out of range");
    }
});
