//! The accountant across passes and restarts, with a real store.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::daemon::store::Intent;
use crate::engine::config::{self, PriceSource, PricingSettings};
use crate::engine::memory::InstanceMemory;
use crate::engine::model::Reason;
use crate::engine::plan::PlanRow;

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

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn cfg() -> Config {
    let text = r#"
[daemon]
poll_interval = "60s"
[[workspace]]
name = "lab"
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "rg"
workspace = "mlw"
region = "eastus2"
[pricing.vm_hourly]
Standard_DS3_v2 = 0.293
[pricing.stopped_hourly]
disk = 0.02
public_ip = 0.01
"#;
    config::parse(text, Path::new("t.toml")).unwrap().0
}

fn row(instance: &str, state: &str, idle_seconds: Option<i64>) -> PlanRow {
    PlanRow {
        workspace: "lab".into(),
        instance: instance.into(),
        state: state.into(),
        vm_size: "Standard_DS3_v2".into(),
        policy: Some("p".into()),
        decision: "none",
        action: None,
        reason: "nothing_due",
        skip: None,
        catch_up: false,
        idle_seconds,
        next: None,
        native_drift: Vec::new(),
        stopped_by: None,
        invalid_hold: None,
        agent: None,
    }
}

fn report(at: Timestamp, rows: Vec<PlanRow>) -> PassReport {
    PassReport {
        at: Some(at),
        rows: rows.into(),
        ..PassReport::default()
    }
}

fn totals(view: &CostView, instance: &str) -> Amounts {
    view.instances[&InstanceKey::new("lab", instance)].totals
}

#[test]
fn counters_resume_after_a_restart_without_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, book) = (cfg(), book());
    let t0 = t("2026-03-27T12:00:00Z");
    {
        let mut store = Store::open(dir.path()).unwrap();
        let mut acc = Accountant::load(&store).unwrap();
        let v = acc
            .pass(
                &cfg,
                &report(t0, vec![row("a", "Running", None)]),
                &book,
                &mut store,
            )
            .unwrap();
        assert_eq!(totals(&v, "a"), Amounts::default());
        let v = acc
            .pass(
                &cfg,
                &report(plus(t0, 60), vec![row("a", "Running", None)]),
                &book,
                &mut store,
            )
            .unwrap();
        assert!(close(totals(&v, "a").accrued, (DS3 + EXTRAS) / 60.0));
    }
    // Restart 30 s later: the first pass integrates from the stored observation.
    let mut store = Store::open(dir.path()).unwrap();
    let mut acc = Accountant::load(&store).unwrap();
    let v = acc
        .pass(
            &cfg,
            &report(plus(t0, 90), vec![row("a", "Running", None)]),
            &book,
            &mut store,
        )
        .unwrap();
    let a = totals(&v, "a");
    assert!(close(a.accrued, (DS3 + EXTRAS) * 90.0 / 3600.0), "{a:?}");
    assert_eq!(a.running_seconds, 90.0);
    // Down for two hours: only the cap (3 polls) of the gap is counted.
    let v = acc
        .pass(
            &cfg,
            &report(plus(t0, 90 + 7200), vec![row("a", "Running", None)]),
            &book,
            &mut store,
        )
        .unwrap();
    assert_eq!(totals(&v, "a").running_seconds, 90.0 + 180.0);
    // The report's days agree with the counters.
    let days = store.cost_days(None).unwrap();
    let sum: f64 = days.iter().map(|d| d.amounts.running_seconds).sum();
    assert_eq!(sum, 270.0);
}

#[test]
fn avoided_only_after_our_stop_until_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, book) = (cfg(), book());
    let mut store = Store::open(dir.path()).unwrap();
    let mut acc = Accountant::load(&store).unwrap();
    let t0 = t("2026-03-27T12:00:00Z");
    let pass = |acc: &mut Accountant, store: &mut Store, secs: i64, rows: Vec<PlanRow>| {
        acc.pass(&cfg, &report(plus(t0, secs), rows), &book, store)
            .unwrap()
    };
    pass(
        &mut acc,
        &mut store,
        0,
        vec![
            row("ours", "Running", Some(600)),
            row("theirs", "Running", None),
        ],
    );
    // Our stop of `ours` at t0 (recorded as lightsout records it); `theirs` is stopped by hand.
    let intent = |instance: &str, dry_run: bool| Intent {
        at: t0,
        workspace: "lab".into(),
        instance: instance.into(),
        action: Action::Stop,
        reason: Reason::Idle,
        policy: "p".into(),
        catch_up: false,
        dry_run,
    };
    store
        .record_intent(&intent("ours", false), &InstanceMemory::default())
        .unwrap();
    store
        .record_intent(&intent("theirs", true), &InstanceMemory::default())
        .unwrap();
    let v = pass(
        &mut acc,
        &mut store,
        60,
        vec![row("ours", "Stopped", None), row("theirs", "Stopped", None)],
    );
    // The minute before was running, and idle for `ours` (600 s idle at t0).
    assert!(close(totals(&v, "ours").idle, DS3 / 60.0));
    assert_eq!(totals(&v, "theirs").idle, 0.0);
    assert!(v.instances[&InstanceKey::new("lab", "ours")].stopped_by_lightsout);
    assert!(!v.instances[&InstanceKey::new("lab", "theirs")].stopped_by_lightsout);
    let v = pass(
        &mut acc,
        &mut store,
        120,
        vec![row("ours", "Stopped", None), row("theirs", "Stopped", None)],
    );
    assert!(close(totals(&v, "ours").avoided, DS3 / 60.0));
    assert_eq!(totals(&v, "theirs").avoided, 0.0);
    // Started again (by anyone): no more avoided money, even when stopped by hand later.
    pass(
        &mut acc,
        &mut store,
        180,
        vec![row("ours", "Running", None)],
    );
    pass(
        &mut acc,
        &mut store,
        240,
        vec![row("ours", "Stopped", None)],
    );
    let v = pass(
        &mut acc,
        &mut store,
        300,
        vec![row("ours", "Stopped", None)],
    );
    // Avoided for 60..180 (the state seen at 120 holds until 180), nothing after.
    assert!(close(totals(&v, "ours").avoided, 2.0 * DS3 / 60.0));
    assert!(!v.instances[&InstanceKey::new("lab", "ours")].stopped_by_lightsout);
    // `theirs` is gone from an observed workspace: forgotten.
    assert!(!v.instances.contains_key(&InstanceKey::new("lab", "theirs")));
}

#[test]
fn instances_of_an_unlisted_workspace_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, book) = (cfg(), book());
    let mut store = Store::open(dir.path()).unwrap();
    let mut acc = Accountant::load(&store).unwrap();
    let t0 = t("2026-03-27T12:00:00Z");
    acc.pass(
        &cfg,
        &report(t0, vec![row("a", "Running", None)]),
        &book,
        &mut store,
    )
    .unwrap();
    let mut failed = report(plus(t0, 60), Vec::new());
    failed.failed_workspaces = vec!["lab".into()];
    let v = acc.pass(&cfg, &failed, &book, &mut store).unwrap();
    assert!(v.instances.contains_key(&InstanceKey::new("lab", "a")));
    // Listed again within the cap: the whole interval counts.
    let v = acc
        .pass(
            &cfg,
            &report(plus(t0, 120), vec![row("a", "Running", None)]),
            &book,
            &mut store,
        )
        .unwrap();
    assert_eq!(totals(&v, "a").running_seconds, 120.0);
}

#[test]
fn unpriced_instances_have_no_hourly_figure() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, book) = (cfg(), book());
    let mut store = Store::open(dir.path()).unwrap();
    let mut acc = Accountant::load(&store).unwrap();
    let mut r = row("odd", "Running", None);
    r.vm_size = "Standard_Odd_v7".into();
    let mut s = row("odd-stopped", "Stopped", None);
    s.vm_size = "Standard_Odd_v7".into();
    let v = acc
        .pass(
            &cfg,
            &report(t("2026-03-27T12:00:00Z"), vec![r, s]),
            &book,
            &mut store,
        )
        .unwrap();
    let odd = &v.instances[&InstanceKey::new("lab", "odd")];
    assert!(odd.unpriced);
    assert_eq!(odd.hourly, None);
    let stopped = &v.instances[&InstanceKey::new("lab", "odd-stopped")];
    assert!(stopped.unpriced);
    assert_eq!(stopped.hourly, Some(EXTRAS));
}
