//! Benchmark: one `decide` pass over 10,000 instances governed by 50 policies.
//!
//! Prints the time per pass (median and worst of the measured passes). Run with
//! `cargo bench --bench decide`. Not a test: nothing is asserted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;

use lightsout::engine::decide::Engine;
use lightsout::engine::memory::InstanceMemory;
use lightsout::engine::model::{
    InstanceObservation, InstanceState, JupyterActivity, LastOperation, OperationKind,
    OperationTrigger,
};

const INSTANCES: usize = 10_000;
const POLICIES: usize = 50;
const PASSES: usize = 30;

fn config() -> String {
    let zones = [
        "Europe/Paris",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Kolkata",
        "UTC",
    ];
    let mut s = String::from(
        "[[workspace]]\nname = \"ws\"\nsubscription_id = \"34adfa4f-cedf-4dc0-ba29-b6d1a69ab345\"\nresource_group = \"rg\"\nworkspace = \"w\"\n",
    );
    for i in 0..POLICIES {
        let tz = zones[i % zones.len()];
        writeln!(
            s,
            "[[policy]]\nname = \"p{i}\"\ninstances = [\"team{i}-*\"]\ntimezone = \"{tz}\"\nuptime = [\"Mon-Fri 08:00-19:00\", \"Sat 10:00-14:00\"]\nholidays = [\"2026-12-25\"]\nstart = \"window\"\n[policy.idle]\ntimeout = \"45m\"\nmin_uptime = \"10m\"\nmax_uptime = \"12h\"\n[[policy.event]]\ncron = \"0 3 * * Sun\"\naction = \"restart\"\n"
        )
        .unwrap_or_default();
    }
    s
}

fn main() {
    let (cfg, _) = lightsout::engine::config::parse(&config(), std::path::Path::new("bench.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let policies = cfg.policies;
    let now: jiff::Timestamp = "2026-03-27T18:00:00.5Z".parse().unwrap_or_default();
    let states = [
        InstanceState::Running,
        InstanceState::JobRunning,
        InstanceState::Stopped,
        InstanceState::Starting,
    ];
    let fleet: Vec<(InstanceObservation, InstanceMemory)> = (0..INSTANCES)
        .map(|i| {
            let obs = InstanceObservation {
                workspace: "ws".into(),
                name: format!("team{}-{i}", i % POLICIES),
                state: states[i % states.len()].clone(),
                vm_size: "Standard_DS3_v2".into(),
                tags: BTreeMap::new(),
                last_operation: Some(LastOperation {
                    kind: OperationKind::Start,
                    at: "2026-03-27T07:00:00Z".parse().unwrap_or_default(),
                    succeeded: true,
                    trigger: OperationTrigger::User,
                }),
                jupyter: JupyterActivity::Seen {
                    last_activity: None,
                    kernel_busy: i % 7 == 0,
                },
                agent: Default::default(),
                native: Default::default(),
            };
            (obs, InstanceMemory::default())
        })
        .collect();

    let mut times = Vec::with_capacity(PASSES);
    let mut acted = 0usize;
    for _ in 0..PASSES {
        let start = std::time::SystemTime::now();
        acted = 0;
        let engine = Engine::new(black_box(&policies), now);
        for (obs, mem) in &fleet {
            let d = engine.decide(obs, mem);
            if matches!(d.verdict, lightsout::engine::decide::Verdict::Act(_)) {
                acted += 1;
            }
        }
        times.push(start.elapsed().unwrap_or_default());
    }
    times.sort();
    println!(
        "decide: {INSTANCES} instances, {POLICIES} policies, {PASSES} passes: median {:.2} ms/pass, worst {:.2} ms/pass ({acted} actions planned per pass)",
        times[PASSES / 2].as_secs_f64() * 1e3,
        times[PASSES - 1].as_secs_f64() * 1e3,
    );
}
