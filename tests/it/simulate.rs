//! `simulate`: the real daemon against the in-process emulator in virtual time.
//!
//! The shipped example (`config/simulate/`) is a week of a small team in Paris; these tests
//! pin what it must show: a job crossing the evening window is stopped right after it
//! ends, not before; an outage shorter than `catch_up` still acts (late, marked catch-up),
//! a longer one does not; the same inputs give the same output.

use std::path::Path;

use azure_ml_emulator::Fleet;
use lightsout::engine::report::ActionTaken;
use lightsout::sim::simulate::{Outage, Simulation, simulate};

const FROM: &str = "2026-03-23T00:00:00Z";
const TO: &str = "2026-03-30T12:00:00Z";

fn example(poll: &str) -> (lightsout::engine::config::Config, Fleet) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/simulate");
    let text = std::fs::read_to_string(root.join("lightsout.toml")).unwrap();
    // A coarser poll keeps the test quick; boundaries still wake the daemon on time.
    let text = text.replace(
        "poll_interval = \"60s\"",
        &format!("poll_interval = \"{poll}\""),
    );
    let (cfg, _) = lightsout::engine::config::parse(&text, &root.join("lightsout.toml")).unwrap();
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

/// A month (March 2026, across Paris's DST change) of a small fleet: on Tuesdays and
/// Thursdays bob's job runs past the 19:00 window close.
fn month_fleet() -> (String, Vec<(jiff::Timestamp, jiff::Timestamp)>) {
    let mut text = String::from(
        "tenant_id = \"00000000-0000-0000-0000-0000000000aa\"\nseed = 3\n\n[[principal]]\nclient_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret = \"s3cret\"\nactions = [\"Microsoft.MachineLearningServices/workspaces/computes/*\"]\n\n[timing]\ncreate = \"3m\"\nstart = \"2m\"\nstop = \"2m\"\nrestart = \"3m\"\ndelete = \"1m\"\n\n[[workspace]]\nsubscription_id = \"34adfa4f-cedf-4dc0-ba29-b6d1a69ab345\"\nresource_group = \"rg-research\"\nname = \"mlw-research\"\nlocation = \"westeurope\"\n",
    );
    let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
    let at = |day: jiff::civil::Date, h: i8, m: i8| {
        day.at(h, m, 0, 0)
            .to_zoned(paris.clone())
            .unwrap()
            .timestamp()
    };
    let mut alice = String::new();
    let mut bob = String::new();
    let mut jobs = Vec::new();
    let mut day = jiff::civil::date(2026, 3, 2);
    while day < jiff::civil::date(2026, 4, 1) {
        use jiff::civil::Weekday::*;
        let weekday = day.weekday();
        if !matches!(weekday, Saturday | Sunday) {
            for (a, b) in [((8, 15), (12, 0)), ((13, 30), (17, 30))] {
                alice.push_str(&format!(
                    "[[workspace.instance.activity]]\nkind = \"kernel\"\nfrom = \"{}\"\nto = \"{}\"\n",
                    at(day, a.0, a.1),
                    at(day, b.0, b.1)
                ));
            }
        }
        if matches!(weekday, Tuesday | Thursday) {
            let (job_from, job_to) = (at(day, 16, 0), at(day, 21, 30));
            bob.push_str(&format!(
                "[[workspace.instance.activity]]\nkind = \"kernel\"\nfrom = \"{}\"\nto = \"{}\"\n[[workspace.instance.activity]]\nkind = \"job\"\nfrom = \"{job_from}\"\nto = \"{job_to}\"\n",
                at(day, 8, 10),
                at(day, 15, 55)
            ));
            jobs.push((job_from, job_to));
        }
        day = day.tomorrow().unwrap();
    }
    text.push_str(&format!("\n[[workspace.instance]]\nname = \"ci-alice\"\nvm_size = \"Standard_DS3_v2\"\nstate = \"Stopped\"\n{alice}"));
    text.push_str(&format!("\n[[workspace.instance]]\nname = \"ci-bob\"\nvm_size = \"Standard_NC6s_v3\"\nstate = \"Stopped\"\n{bob}"));
    text.push_str("\n[[workspace.instance]]\nname = \"ci-dave\"\nvm_size = \"Standard_E4ds_v4\"\nstate = \"Running\"\n");
    (text, jobs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_with_jobs_crossing_the_evening_window() {
    let (fleet_text, jobs) = month_fleet();
    let fleet = Fleet::from_toml_str(&fleet_text, "month.toml").unwrap();
    let (cfg, _) = example("5m");
    let sim = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        simulate(
            cfg,
            fleet,
            "2026-03-02T00:00:00Z".parse().unwrap(),
            "2026-04-01T00:00:00Z".parse().unwrap(),
            &[],
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let bob = of(&sim, "ci-bob");
    assert_eq!(jobs.len(), 9);
    for (from, to) in &jobs {
        // Never stopped while its job runs...
        assert!(
            !bob.iter()
                .any(|a| a.action == "stop" && a.at > *from && a.at < *to),
            "bob stopped during the job {from}..{to}: {bob:#?}"
        );
        // ...and stopped within one poll after it ends (the window closed at 19:00).
        let stop = bob
            .iter()
            .find(|a| a.action == "stop" && a.at >= *to)
            .unwrap_or_else(|| panic!("bob not stopped after the job ending {to}"));
        assert!(
            stop.at.duration_since(*to) <= jiff::SignedDuration::from_mins(5),
            "{stop:?}"
        );
        assert_eq!(stop.reason, "outside_window");
    }
    // Every weekday morning the window opens at 08:00 Paris time, before and after the
    // DST change: 07:00Z in CET, 06:00Z in CEST.
    let starts: Vec<String> = of(&sim, "ci-alice")
        .iter()
        .filter(|a| a.action == "start")
        .map(|a| a.at.to_string())
        .collect();
    assert!(
        starts.contains(&"2026-03-27T07:00:00Z".to_string()),
        "{starts:?}"
    );
    assert!(
        starts.contains(&"2026-03-30T06:00:00Z".to_string()),
        "{starts:?}"
    );
    assert_eq!(
        starts.len(),
        22,
        "one start per weekday in March 2026: {starts:?}"
    );
    assert!(sim.cost.avoided > sim.cost.spent);
}

/// Issue 15: four instances, one morning, each kind of activity the agent sees and Azure's
/// own idle shutdown may not. `native` gives every instance `idle_time_before_shutdown`
/// PT30M (the emulator carries it out) and lightsout a policy that matches nothing; without
/// it, lightsout's idle rule (30 minutes) asks the agents, whose verdicts come from the
/// emulator's agent view in process.
fn agent_morning(native: bool) -> (lightsout::engine::config::Config, Fleet) {
    let idle = if native {
        "idle_time_before_shutdown = \"PT30M\"\n"
    } else {
        ""
    };
    let instance = |name: &str, windows: &[(&str, &str, &str)]| {
        let mut s = format!(
            "[[workspace.instance]]\nname = \"{name}\"\nvm_size = \"Standard_NC6s_v3\"\nstarted_at = \"2026-03-30T09:00:00Z\"\n{idle}"
        );
        for (kind, from, to) in windows {
            s += &format!(
                "[[workspace.instance.activity]]\nkind = \"{kind}\"\nfrom = \"2026-03-30T{from}:00Z\"\nto = \"2026-03-30T{to}:00Z\"\n"
            );
        }
        s
    };
    let fleet = [
        "tenant_id = \"00000000-0000-0000-0000-0000000000aa\"\n[[principal]]\nclient_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret = \"s3cret\"\nactions = [\"Microsoft.MachineLearningServices/workspaces/computes/*\"]\n[timing]\nstop = \"2m\"\nstart = \"2m\"\n[[workspace]]\nsubscription_id = \"34adfa4f-cedf-4dc0-ba29-b6d1a69ab345\"\nresource_group = \"rg\"\nname = \"mlw\"\nlocation = \"westeurope\"\n".to_owned(),
        // A training in tmux started over SSH: typing for ten minutes, the GPU until 13:00.
        instance("ci-tmux", &[("ssh", "09:00", "09:10"), ("gpu_busy", "09:00", "13:00")]),
        // A notebook cell that computes for three hours without printing.
        instance("ci-silent", &[("silent_kernel", "09:00", "12:00")]),
        instance("ci-vscode", &[("vscode_connected", "09:00", "12:00")]),
        instance("ci-idle", &[]),
    ]
    .concat();
    let fleet = Fleet::from_toml_str(&fleet, "agent-morning.toml").unwrap();
    let policy = if native {
        "[[policy]]\nname = \"nothing\"\ntags = { never = \"set\" }\n[policy.idle]\ntimeout = \"24h\"\nsignals = [\"arm\"]\n"
    } else {
        "[agent]\naccount = \"lightsouttest\"\n[[policy]]\nname = \"agent\"\n[policy.idle]\ntimeout = \"30m\"\nsignals = [\"arm\", \"agent\"]\n"
    };
    let config = format!(
        "[daemon]\npoll_interval = \"60s\"\n[azure]\n[[workspace]]\nname = \"ws\"\nsubscription_id = \"34adfa4f-cedf-4dc0-ba29-b6d1a69ab345\"\nresource_group = \"rg\"\nworkspace = \"mlw\"\nregion = \"westeurope\"\n[pricing]\ncurrency = \"USD\"\n[pricing.vm_hourly]\nStandard_NC6s_v3 = 3.06\n{policy}"
    );
    let (cfg, _) =
        lightsout::engine::config::parse(&config, Path::new("agent-morning.toml")).unwrap();
    (cfg, fleet)
}

async fn morning(native: bool) -> Simulation {
    let (cfg, fleet) = agent_morning(native);
    tokio::time::timeout(
        std::time::Duration::from_secs(300),
        simulate(
            cfg,
            fleet,
            "2026-03-30T09:00:00Z".parse().unwrap(),
            "2026-03-30T15:00:00Z".parse().unwrap(),
            &[],
        ),
    )
    .await
    .expect("simulation finished in time")
    .expect("simulation ran")
}

fn minutes_after_nine(t: jiff::Timestamp) -> i64 {
    let nine: jiff::Timestamp = "2026-03-30T09:00:00Z".parse().unwrap();
    t.duration_since(nine).as_secs() / 60
}

/// The silent cell's stop rests on the emulator's assumption that Azure's idle check reads
/// Jupyter's frozen `last_activity` (crates/azure-ml-emulator/src/fleet.rs); Microsoft's
/// definition ("no active kernel sessions") may count it. The tmux training's stop rests on
/// SSH and GPU being absent from that definition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_idle_shutdown_stops_the_tmux_training_and_the_silent_cell_mid_work() {
    let sim = morning(true).await;
    assert!(sim.actions.is_empty(), "{:?}", sim.actions);
    let stop = |name: &str| {
        let at: Vec<i64> = sim
            .native_stops
            .iter()
            .filter(|s| s.instance == name)
            .map(|s| minutes_after_nine(s.at))
            .collect();
        assert!(sim.native_stops.iter().all(|s| s.workspace == "ws"));
        at
    };
    // SSH, tmux, the GPU and a silent cell are invisible to it: 30 minutes after the start,
    // in the middle of the work.
    assert_eq!(stop("ci-tmux"), [30]);
    assert_eq!(stop("ci-silent"), [30]);
    assert_eq!(stop("ci-idle"), [30]);
    // A VS Code connection counts: 30 minutes after it ends at 12:00.
    assert_eq!(stop("ci-vscode"), [210]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightsout_with_the_agent_stops_each_only_after_its_work() {
    let sim = morning(false).await;
    assert!(sim.native_stops.is_empty());
    let stops = |name: &str| -> Vec<i64> {
        of(&sim, name)
            .into_iter()
            .filter(|a| a.action == lightsout::engine::model::Action::Stop)
            .map(|a| minutes_after_nine(a.at))
            .collect()
    };
    // Never while the agent says busy; 30 minutes (one poll at most later) after the work.
    let tmux = stops("ci-tmux");
    assert_eq!(tmux.len(), 1, "{tmux:?}");
    assert!((270..=272).contains(&tmux[0]), "{tmux:?}");
    for name in ["ci-silent", "ci-vscode"] {
        let s = stops(name);
        assert_eq!(s.len(), 1, "{name}: {s:?}");
        assert!((210..=212).contains(&s[0]), "{name}: {s:?}");
    }
    // No activity since the start: idle from the start.
    let idle = stops("ci-idle");
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert!((30..=32).contains(&idle[0]), "{idle:?}");
}
