//! Table-driven schedule tests: time zones on both hemispheres, half-hour offsets, both
//! DST changes of 2026 and 2027, gaps, folds, midnight-crossing windows, leap day.

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn schedule(tz: &str, windows: &[&str]) -> Schedule {
    let mut s = Schedule::new(TimeZone::get(tz).unwrap());
    s.windows = windows.iter().map(|w| w.parse().unwrap()).collect();
    s
}

fn up(b: bool) -> Option<Desired> {
    Some(if b { Desired::Up } else { Desired::Down })
}

/// (zone, windows, instant, expected up?, expected next transition instant).
type Case = (
    &'static str,
    &'static [&'static str],
    &'static str,
    bool,
    &'static str,
);

const OFFICE: &[&str] = &["Mon-Fri 08:00-19:00"];

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Europe/Paris: CET +01:00, CEST +02:00 from 2026-03-29 and 2027-03-28,
    // back to CET on 2026-10-25 and 2027-10-31.
    ("Europe/Paris", OFFICE, "2026-03-27T17:59:00Z", true,  "2026-03-27T18:00:00Z"), // Fri 19:00 CET
    ("Europe/Paris", OFFICE, "2026-03-28T12:00:00Z", false, "2026-03-30T06:00:00Z"), // Mon 08:00 CEST
    ("Europe/Paris", OFFICE, "2026-10-23T12:00:00Z", true,  "2026-10-23T17:00:00Z"), // Fri 19:00 CEST
    ("Europe/Paris", OFFICE, "2026-10-24T12:00:00Z", false, "2026-10-26T07:00:00Z"), // Mon 08:00 CET
    ("Europe/Paris", OFFICE, "2027-03-27T12:00:00Z", false, "2027-03-29T06:00:00Z"),
    ("Europe/Paris", OFFICE, "2027-10-30T12:00:00Z", false, "2027-11-01T07:00:00Z"),
    // America/New_York: EST -05:00, EDT -04:00 from 2026-03-08 / 2027-03-14,
    // back on 2026-11-01 / 2027-11-07.
    ("America/New_York", OFFICE, "2026-03-07T12:00:00Z", false, "2026-03-09T12:00:00Z"),
    ("America/New_York", OFFICE, "2026-03-06T23:30:00Z", true,  "2026-03-07T00:00:00Z"), // Fri 19:00 EST = Sat 00:00Z
    ("America/New_York", OFFICE, "2026-10-31T12:00:00Z", false, "2026-11-02T13:00:00Z"),
    ("America/New_York", OFFICE, "2027-03-13T12:00:00Z", false, "2027-03-15T12:00:00Z"),
    ("America/New_York", OFFICE, "2027-11-06T12:00:00Z", false, "2027-11-08T13:00:00Z"),
    // Australia/Sydney (southern hemisphere): AEDT +11:00 until 2026-04-05 03:00,
    // AEST +10:00 until 2026-10-04 02:00; 2027: 04-04 and 10-03.
    // Monday 08:00 local is Sunday evening UTC: the weekday differs from the UTC one.
    ("Australia/Sydney", OFFICE, "2026-04-04T12:00:00Z", false, "2026-04-05T22:00:00Z"), // Mon 08:00 AEST
    ("Australia/Sydney", OFFICE, "2026-04-05T22:30:00Z", true,  "2026-04-06T09:00:00Z"), // Sun 22:30Z is Mon 08:30
    ("Australia/Sydney", OFFICE, "2026-10-03T12:00:00Z", false, "2026-10-04T21:00:00Z"), // Mon 08:00 AEDT
    ("Australia/Sydney", OFFICE, "2027-04-03T12:00:00Z", false, "2027-04-04T22:00:00Z"),
    ("Australia/Sydney", OFFICE, "2027-10-02T12:00:00Z", false, "2027-10-03T21:00:00Z"),
    // Asia/Kolkata: +05:30 all year.
    ("Asia/Kolkata", OFFICE, "2026-03-29T12:00:00Z", false, "2026-03-30T02:30:00Z"),
    ("Asia/Kolkata", OFFICE, "2026-03-30T13:29:00Z", true,  "2026-03-30T13:30:00Z"),
    // A boundary inside the spring gap: 02:30 does not exist in Paris on 2026-03-29 (a
    // Sunday) and moves to 03:30 CEST = 01:30Z.
    ("Europe/Paris", &["Sun 02:30-06:00"], "2026-03-29T00:00:00Z", false, "2026-03-29T01:30:00Z"),
    // A boundary inside the autumn fold: 02:30 happens twice on 2026-10-25; first is 00:30Z.
    ("Europe/Paris", &["Sun 02:30-06:00"], "2026-10-25T00:00:00Z", false, "2026-10-25T00:30:00Z"),
    ("Europe/Paris", &["Sun 02:30-06:00"], "2026-10-25T00:45:00Z", true,  "2026-10-25T05:00:00Z"),
    // Sydney's spring gap is 02:00-03:00 on 2026-10-04 (a Sunday).
    ("Australia/Sydney", &["Sun 02:30-04:00"], "2026-10-03T14:00:00Z", false, "2026-10-03T16:30:00Z"),
    // Friday night into Saturday, crossing midnight.
    ("Europe/Paris", &["Fri 22:00-06:00"], "2026-06-05T19:00:00Z", false, "2026-06-05T20:00:00Z"),
    ("Europe/Paris", &["Fri 22:00-06:00"], "2026-06-06T03:00:00Z", true,  "2026-06-06T04:00:00Z"), // Sat 05:00
    ("Europe/Paris", &["Fri 22:00-06:00"], "2026-06-06T05:00:00Z", false, "2026-06-12T20:00:00Z"), // Sat 07:00
    // Leap day 2028-02-29 is a Tuesday.
    ("UTC", &["Tue 09:00-17:00"], "2028-02-29T10:00:00Z", true, "2028-02-29T17:00:00Z"),
    ("UTC", &["Tue 09:00-17:00"], "2028-02-28T10:00:00Z", false, "2028-02-29T09:00:00Z"),
    // Two windows a day, and a 24-hour window.
    ("UTC", &["Mon-Fri 08:00-12:00", "Mon-Fri 13:00-18:00"], "2026-06-01T12:30:00Z", false, "2026-06-01T13:00:00Z"),
    ("UTC", &["daily 00:00-24:00"], "2026-06-01T12:30:00Z", true, ""),
];

#[test]
fn windows_across_zones_and_dst() {
    for (i, (tz, windows, at, want_up, want_next)) in CASES.iter().enumerate() {
        let s = schedule(tz, windows);
        let t = ts(at);
        assert_eq!(
            s.desired_at(t),
            up(*want_up),
            "case {i}: {tz} {windows:?} at {at}"
        );
        let next = s.next_transition(t).map(|n| n.at.to_string());
        let want = (!want_next.is_empty()).then(|| ts(want_next).to_string());
        assert_eq!(
            next, want,
            "case {i}: next transition for {tz} {windows:?} after {at}"
        );
    }
}

#[test]
fn next_transition_says_which_way() {
    let s = schedule("Europe/Paris", OFFICE);
    let n = s.next_transition(ts("2026-03-27T12:00:00Z")).unwrap();
    assert_eq!((n.from, n.to), (up(true), up(false)));
    let p = s.previous_transition(ts("2026-03-28T12:00:00Z")).unwrap();
    assert_eq!(p.at, ts("2026-03-27T18:00:00Z"));
    assert_eq!(p.to, up(false));
}

#[test]
fn holidays_are_whole_local_days_down() {
    let mut s = schedule("Europe/Paris", OFFICE);
    s.holidays.insert(jiff::civil::date(2026, 12, 25)); // a Friday
    assert_eq!(s.desired_at(ts("2026-12-25T10:00:00Z")), up(false));
    assert_eq!(s.desired_at(ts("2026-12-24T10:00:00Z")), up(true));
    // Thursday's window closes at 19:00; the next opening is Monday, not Friday.
    let n = s.next_transition(ts("2026-12-24T19:00:00Z")).unwrap();
    assert_eq!(n.at, ts("2026-12-28T07:00:00Z"));
}

#[test]
fn holiday_without_windows_is_down_then_no_opinion() {
    let mut s = Schedule::new(TimeZone::get("Asia/Kolkata").unwrap());
    s.holidays.insert(jiff::civil::date(2028, 2, 29));
    assert_eq!(s.desired_at(ts("2028-02-28T12:00:00Z")), None);
    let n = s.next_transition(ts("2028-02-28T12:00:00Z")).unwrap();
    assert_eq!((n.at, n.to), (ts("2028-02-28T18:30:00Z"), up(false)));
    let n = s.next_transition(n.at).unwrap();
    assert_eq!((n.at, n.to), (ts("2028-02-29T18:30:00Z"), None));
}

#[test]
fn exceptions_override_windows_and_holidays() {
    let mut s = schedule("Europe/Paris", OFFICE);
    s.exceptions.push(Exception {
        from: "2026-12-24T00:00".parse().unwrap(),
        to: "2026-12-27T00:00".parse().unwrap(),
        state: Desired::Down,
    });
    s.exceptions.push(Exception {
        from: "2026-12-27T10:00".parse().unwrap(),
        to: "2026-12-27T12:00".parse().unwrap(),
        state: Desired::Up,
    });
    assert_eq!(s.desired_at(ts("2026-12-24T10:00:00Z")), up(false));
    assert_eq!(s.desired_at(ts("2026-12-27T09:30:00Z")), up(true)); // Sunday, but up
    let n = s.next_transition(ts("2026-12-23T12:00:00Z")).unwrap();
    assert_eq!(n.at, ts("2026-12-23T18:00:00Z"));
    let n = s.next_transition(ts("2026-12-27T00:00:00Z")).unwrap();
    assert_eq!((n.at, n.to), (ts("2026-12-27T09:00:00Z"), up(true)));
}

#[test]
fn transitions_lists_every_change_once() {
    let s = schedule("America/New_York", OFFICE);
    let all = s.transitions(ts("2026-03-02T00:00:00Z"), ts("2026-03-09T00:00:00Z"));
    // Mon-Fri: open and close each day; 19:00 EST = 00:00Z next day.
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].at, ts("2026-03-02T13:00:00Z"));
    assert_eq!(all[9].at, ts("2026-03-07T00:00:00Z"));
}

#[test]
fn no_windows_no_opinion_no_transition() {
    let s = Schedule::new(TimeZone::UTC);
    assert_eq!(s.desired_at(ts("2026-01-01T00:00:00Z")), None);
    assert_eq!(s.next_transition(ts("2026-01-01T00:00:00Z")), None);
}
