//! `simulate`: the real daemon against the in-process emulator in virtual time.
//!
//! The shipped example (`config/simulate/`) is a week of a small team in Paris; these tests
//! pin what it must show: a job crossing the evening window is stopped right after it
//! ends, not before; an outage shorter than `catch_up` still acts (late, marked catch-up),
//! a longer one does not; the same inputs give the same output.

use std::path::Path;

use lightsout::daemon::ActionTaken;
use lightsout::emulator::Fleet;
use lightsout::simulate::{Outage, Simulation, simulate};

const FROM: &str = "2026-03-23T00:00:00Z";
const TO: &str = "2026-03-30T12:00:00Z";

fn example(poll: &str) -> (lightsout::config::Config, Fleet) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/simulate");
    let text = std::fs::read_to_string(root.join("lightsout.toml")).unwrap();
    // A coarser poll keeps the test quick; boundaries still wake the daemon on time.
    let text = text.replace(
        "poll_interval = \"60s\"",
        &format!("poll_interval = \"{poll}\""),
    );
    let (cfg, _) = lightsout::config::parse(&text, &root.join("lightsout.toml")).unwrap();
    let fleet = Fleet::load(&root.join("fleet.toml")).unwrap();
    (cfg, fleet)
}

async fn run(poll: &str, outages: &[Outage]) -> Simulation {
    let (cfg, fleet) = example(poll);
    tokio::time::timeout(
        std::time::Duration::from_secs(300),
        simulate(
            cfg,
            fleet,
            FROM.parse().unwrap(),
            TO.parse().unwrap(),
            outages,
        ),
    )
    .await
    .expect("simulation finished in time")
    .expect("simulation ran")
}

fn of<'a>(sim: &'a Simulation, instance: &str) -> Vec<&'a ActionTaken> {
    sim.actions
        .iter()
        .filter(|a| a.instance == instance)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_crossing_the_evening_window_is_stopped_when_it_ends() {
    let sim = run("5m", &[]).await;
    // Thursday: the window closes at 18:00Z (19:00 CET) while bob's job runs until 20:30Z.
    let bob_thursday: Vec<_> = of(&sim, "ci-bob")
        .into_iter()
        .filter(|a| a.at.to_string().starts_with("2026-03-26"))
        .collect();
    let stop = bob_thursday
        .iter()
        .find(|a| a.action == "stop")
        .expect("bob stopped on Thursday");
    assert_eq!(stop.reason, "outside_window");
    let at = stop.at.to_string();
    assert!(
        at.as_str() >= "2026-03-26T20:30:00Z" && at.as_str() <= "2026-03-26T20:35:00Z",
        "stopped at {at}"
    );
    assert!(!stop.catch_up);
    // Excluded instances are never touched; the held one not before its hold ends.
    assert!(of(&sim, "ci-frank").is_empty());
    let erin_first_stop = of(&sim, "ci-erin")
        .into_iter()
        .find(|a| a.action == "stop")
        .unwrap();
    assert!(erin_first_stop.at.to_string().as_str() >= "2026-03-25T12:00:00Z");
    // Money: lightsout avoided more than it spent, and never more than always-on.
    assert!(sim.cost.avoided > sim.cost.spent, "{:?}", sim.cost);
    assert!(
        sim.cost.spent < sim.cost.always_on && sim.cost.avoided < sim.cost.always_on,
        "{:?}",
        sim.cost
    );
    assert!(sim.unpriced.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_shorter_and_longer_than_catch_up() {
    // Monday 2026-03-23: the window opens at 07:00Z (08:00 CET) and bob, stopped, is
    // started then (start = window); catch_up is 1h.
    let short = Outage {
        from: "2026-03-23T06:30:00Z".parse().unwrap(),
        to: "2026-03-23T07:40:00Z".parse().unwrap(),
    };
    let sim = run("5m", &[short]).await;
    let starts: Vec<_> = of(&sim, "ci-bob")
        .into_iter()
        .filter(|a| a.action == "start" && a.at.to_string().starts_with("2026-03-23"))
        .collect();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0].at.to_string(), "2026-03-23T07:40:00Z");
    assert!(starts[0].catch_up, "a start 40 minutes late is a catch-up");
    assert_eq!(starts[0].reason, "window_open");

    let long = Outage {
        from: "2026-03-23T06:30:00Z".parse().unwrap(),
        to: "2026-03-23T08:30:00Z".parse().unwrap(),
    };
    let sim = run("5m", &[long]).await;
    let monday_bob: Vec<_> = of(&sim, "ci-bob")
        .into_iter()
        .filter(|a| a.at.to_string().starts_with("2026-03-23"))
        .collect();
    assert!(
        monday_bob.is_empty(),
        "missed by 90 minutes (> catch_up 1h): {monday_bob:?}"
    );
    // Tuesday is back to normal.
    assert!(
        of(&sim, "ci-bob")
            .iter()
            .any(|a| a.action == "start" && a.at.to_string() == "2026-03-24T07:00:00Z")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_inputs_same_output() {
    let a = serde_json::to_string(&run("10m", &[]).await).unwrap();
    let b = serde_json::to_string(&run("10m", &[]).await).unwrap();
    assert_eq!(a, b);
}
