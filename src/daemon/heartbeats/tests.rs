//! The mapping of a listing onto instances, pure.

use std::collections::BTreeMap;

use super::*;
use crate::engine::heartbeat::{VERDICT_VERSION, Verdict};
use crate::engine::model::InstanceState;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn obs(name: &str) -> InstanceObservation {
    InstanceObservation {
        workspace: "research".into(),
        name: name.into(),
        state: InstanceState::Running,
        vm_size: "Standard_DS3_v2".into(),
        tags: BTreeMap::new(),
        last_operation: None,
        jupyter: Default::default(),
        agent: Default::default(),
        native: Default::default(),
    }
}

fn verdict(instance: &str, at: &str) -> Verdict {
    Verdict {
        v: VERDICT_VERSION,
        instance: instance.into(),
        at: ts(at),
        busy: false,
        reasons: Vec::new(),
        last_activity: Some(ts("2026-12-07T09:12:00Z")),
        interval_secs: 60,
        snooze: None,
    }
}

fn blob(name: &str, meta: Option<String>) -> ListedBlob {
    ListedBlob {
        name: name.into(),
        size: 800,
        last_modified: None,
        metadata: meta
            .map(|m| BTreeMap::from([(METADATA_KEY.to_owned(), m)]))
            .unwrap_or_default(),
    }
}

#[test]
fn a_listing_maps_onto_the_governed_running_instances() {
    let now = ts("2026-12-07T10:00:00Z");
    let mut instances = vec![
        obs("fresh"),
        obs("stale"),
        obs("missing"),
        obs("rejected"),
        obs("stopped"),
    ];
    let wants = [true, true, true, true, false];
    let known = [true, true, true, true, true];
    let blobs = vec![
        blob(
            "mlw/fresh.json",
            Some(verdict("fresh", "2026-12-07T09:59:00Z").to_metadata()),
        ),
        // Three intervals (180 s) and a second.
        blob(
            "mlw/stale.json",
            Some(verdict("stale", "2026-12-07T09:56:59Z").to_metadata()),
        ),
        blob("mlw/rejected.json", Some("{not json".into())),
        blob(
            "mlw/stopped.json",
            Some(verdict("stopped", "2026-12-07T09:00:00Z").to_metadata()),
        ),
        blob(
            "mlw/stranger.json",
            Some(verdict("stranger", "2026-12-07T09:59:00Z").to_metadata()),
        ),
        blob("mlw/nested/x.json", None),
    ];
    let out = assign(
        &blobs,
        "mlw/",
        &mut instances,
        &wants,
        &known,
        Duration::from_secs(60),
        now,
    );
    assert!(matches!(&instances[0].agent, AgentActivity::Seen(v) if v.instance == "fresh"));
    assert_eq!(
        instances[1].agent,
        AgentActivity::Unknown(AgentUnknown::Stale)
    );
    assert_eq!(
        instances[2].agent,
        AgentActivity::Unknown(AgentUnknown::Missing)
    );
    assert_eq!(
        instances[3].agent,
        AgentActivity::Unknown(AgentUnknown::Rejected)
    );
    assert_eq!(instances[4].agent, AgentActivity::NotObserved);
    assert_eq!(
        out.stale_at.get(&InstanceKey::new("research", "stale")),
        Some(&ts("2026-12-07T09:56:59Z"))
    );
    assert_eq!(
        out.ignored,
        vec![
            ("mlw/rejected.json".to_owned(), "bad_verdict"),
            ("mlw/stranger.json".to_owned(), NOT_GOVERNED),
            ("mlw/nested/x.json".to_owned(), "bad_name"),
        ]
    );
}

#[test]
fn the_configured_staleness_is_a_floor_over_three_intervals() {
    let now = ts("2026-12-07T10:00:00Z");
    let v = verdict("a", "2026-12-07T09:55:00Z");
    assert!(is_stale(&v, Duration::from_secs(60), now));
    assert!(!is_stale(&v, Duration::from_secs(300), now));
    let mut slow = v.clone();
    slow.interval_secs = 120;
    assert!(!is_stale(&slow, Duration::from_secs(60), now));
}

#[test]
fn an_instance_the_daemon_does_not_ask_keeps_not_observed() {
    let mut instances = vec![obs("a")];
    let blobs = vec![blob(
        "mlw/a.json",
        Some(verdict("a", "2026-12-07T09:59:00Z").to_metadata()),
    )];
    let out = assign(
        &blobs,
        "mlw/",
        &mut instances,
        &[false],
        &[false],
        Duration::from_secs(180),
        ts("2026-12-07T10:00:00Z"),
    );
    assert_eq!(instances[0].agent, AgentActivity::NotObserved);
    assert_eq!(out.ignored, vec![("mlw/a.json".to_owned(), NOT_GOVERNED)]);
}
