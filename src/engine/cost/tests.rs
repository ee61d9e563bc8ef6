//! Accounting math: rates, caps, day splits, unpriced sizes, currencies.

use super::*;
use crate::engine::config::{PriceSource, PricingSettings};

const DS3: f64 = 0.293;
const EXTRAS: f64 = 0.03;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn plus(ts: Timestamp, secs: i64) -> Timestamp {
    ts.checked_add(SignedDuration::from_secs(secs)).unwrap()
}

fn book() -> PriceBook {
    let mut s = PricingSettings {
        source: PriceSource::Table,
        ..PricingSettings::default()
    };
    s.vm_hourly.insert("standard_ds3_v2".into(), DS3);
    s.stopped_hourly.insert("disk".into(), 0.02);
    s.stopped_hourly.insert("public_ip".into(), 0.01);
    PriceBook::new(&s)
}

fn obs(at: Timestamp, billing: Billing, vm_size: &str) -> Observed {
    Observed {
        at,
        billing,
        vm_size: vm_size.into(),
        region: Some("eastus2".into()),
        currency: "USD".into(),
        ours: false,
        idle: false,
        started_seen: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

const MIN: SignedDuration = SignedDuration::from_secs(180);

#[test]
fn running_interval_costs_compute_and_extras() {
    let t0 = t("2026-03-27T12:00:00Z");
    let days = integrate(
        &obs(t0, Billing::Running, "Standard_DS3_v2"),
        plus(t0, 60),
        MIN,
        &book(),
    );
    assert_eq!(days.len(), 1);
    let a = days[0].1;
    assert!(close(a.accrued, (DS3 + EXTRAS) / 60.0), "{a:?}");
    assert_eq!((a.avoided, a.idle, a.unpriced_seconds), (0.0, 0.0, 0.0));
    assert_eq!(a.running_seconds, 60.0);
}

#[test]
fn idle_and_avoided_count_compute_only() {
    let t0 = t("2026-03-27T12:00:00Z");
    let mut idle = obs(t0, Billing::Running, "Standard_DS3_v2");
    idle.idle = true;
    let a = integrate(
        &idle,
        plus(t0, 3600),
        SignedDuration::from_hours(2),
        &book(),
    )[0]
    .1;
    assert!(
        close(a.idle, DS3) && close(a.accrued, DS3 + EXTRAS),
        "{a:?}"
    );

    let mut ours = obs(t0, Billing::Stopped, "Standard_DS3_v2");
    ours.ours = true;
    let a = integrate(
        &ours,
        plus(t0, 3600),
        SignedDuration::from_hours(2),
        &book(),
    )[0]
    .1;
    assert!(close(a.avoided, DS3) && close(a.accrued, EXTRAS), "{a:?}");
    assert_eq!(a.stopped_seconds, 3600.0);

    // Stopped by someone else: only the stopped rate, nothing avoided.
    let theirs = obs(t0, Billing::Stopped, "Standard_DS3_v2");
    let a = integrate(
        &theirs,
        plus(t0, 3600),
        SignedDuration::from_hours(2),
        &book(),
    )[0]
    .1;
    assert!(close(a.avoided, 0.0) && close(a.accrued, EXTRAS), "{a:?}");
}

#[test]
fn gaps_are_capped_from_the_previous_observation() {
    let t0 = t("2026-03-27T12:00:00Z");
    let cap = gap_cap(std::time::Duration::from_secs(60));
    assert_eq!(cap, SignedDuration::from_secs(180));
    let days = integrate(
        &obs(t0, Billing::Running, "Standard_DS3_v2"),
        plus(t0, 7200),
        cap,
        &book(),
    );
    assert_eq!(days[0].1.running_seconds, 180.0);
    // Clock going backwards, or a repeated instant: nothing.
    assert!(
        integrate(
            &obs(t0, Billing::Running, "Standard_DS3_v2"),
            t0,
            cap,
            &book()
        )
        .is_empty()
    );
    assert!(
        integrate(
            &obs(t0, Billing::Running, "Standard_DS3_v2"),
            plus(t0, -5),
            cap,
            &book()
        )
        .is_empty()
    );
}

#[test]
fn intervals_split_at_utc_midnight() {
    let t0 = t("2026-03-27T23:59:00Z");
    let days = integrate(
        &obs(t0, Billing::Running, "Standard_DS3_v2"),
        plus(t0, 120),
        MIN,
        &book(),
    );
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].0.to_string(), "2026-03-27");
    assert_eq!(days[1].0.to_string(), "2026-03-28");
    assert_eq!(days[0].1.running_seconds, 60.0);
    assert_eq!(days[1].1.running_seconds, 60.0);
}

#[test]
fn unpriced_sizes_are_marked_not_zeroed() {
    let t0 = t("2026-03-27T12:00:00Z");
    let mut o = obs(t0, Billing::Running, "Standard_Unknown_v1");
    o.idle = true;
    let a = integrate(&o, plus(t0, 3600), SignedDuration::from_hours(2), &book())[0].1;
    // The known part (disk, IP) is counted; the compute part is marked, not invented.
    assert!(close(a.accrued, EXTRAS), "{a:?}");
    assert_eq!(a.unpriced_seconds, 3600.0);
    assert_eq!(a.idle, 0.0);
}

#[test]
fn a_currency_change_counts_nothing_for_the_old_interval() {
    let t0 = t("2026-03-27T12:00:00Z");
    let mut o = obs(t0, Billing::Running, "Standard_DS3_v2");
    o.currency = "EUR".into();
    assert!(integrate(&o, plus(t0, 60), MIN, &book()).is_empty());
}
