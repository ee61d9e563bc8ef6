//! Decision tests: scenarios pinned to instants, then properties over random inputs.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::engine::model::{InstanceState, LastOperation};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const BASE: &str = r#"
[azure]
jupyter_token_scope = "https://ml.azure.com/.default"

[[workspace]]
name = "research"
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "rg"
workspace = "mlw"
"#;

fn policies(policy_toml: &str) -> Vec<Policy> {
    let text = format!("{BASE}\n{policy_toml}");
    let (cfg, _) =
        crate::engine::config::validate::from_str(&text).unwrap_or_else(|e| panic!("{e:#?}"));
    cfg.policies
}

/// Paris office hours, transition enforcement, catch-up 1h, idle 45m (ARM + Jupyter).
fn office() -> Vec<Policy> {
    policies(
        r#"
[[policy]]
name = "office"
timezone = "Europe/Paris"
uptime = ["Mon-Fri 08:00-19:00"]
start = "window"
catch_up = "1h"
[policy.idle]
timeout = "45m"
min_uptime = "15m"
max_uptime = "12h"
signals = ["arm", "jupyter"]
[[policy.event]]
cron = "0 3 * * Sun"
action = "restart"
"#,
    )
}

fn obs(state: InstanceState) -> InstanceObservation {
    InstanceObservation {
        workspace: "research".into(),
        name: "ci-alice".into(),
        state,
        vm_size: "Standard_DS3_v2".into(),
        tags: BTreeMap::new(),
        last_operation: None,
        jupyter: JupyterActivity::Seen {
            last_activity: None,
            kernel_busy: false,
        },
        agent: Default::default(),
        native: Default::default(),
    }
}

fn started(at: &str, trigger: OperationTrigger) -> Option<LastOperation> {
    Some(LastOperation {
        kind: OperationKind::Start,
        at: ts(at),
        succeeded: true,
        trigger,
    })
}

fn act(action: Action, reason: Reason, catch_up: bool) -> Verdict {
    Verdict::Act(Planned {
        action,
        reason,
        catch_up,
    })
}

fn skip(action: Action, reason: Reason, why: SkipReason) -> Verdict {
    Verdict::Skip {
        planned: Planned {
            action,
            reason,
            catch_up: false,
        },
        why,
    }
}

/// A memory of an instance known since the morning (so idle time is not floored).
fn known_since(at: &str) -> InstanceMemory {
    InstanceMemory {
        first_seen: Some(ts(at)),
        ..InstanceMemory::default()
    }
}

// 2026-03-27 is a Friday; Paris is at +01:00 then, so 19:00 local is 18:00Z.
const FRI_1900: &str = "2026-03-27T18:00:00Z";

#[test]
fn window_close_stops_once() {
    let p = office();
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-27T08:00:00Z", OperationTrigger::User);
    o.jupyter = JupyterActivity::Seen {
        last_activity: Some(ts("2026-03-27T17:59:00Z")),
        kernel_busy: false,
    };
    let mem = known_since("2026-03-27T07:00:00Z");
    let d = decide(&p, &o, &mem, ts("2026-03-27T17:59:59Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert_eq!(d.next.unwrap().at, ts(FRI_1900));

    let d = decide(&p, &o, &mem, ts("2026-03-27T18:00:00.500Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
    assert_eq!(d.memory.handled_transition, Some(ts(FRI_1900)));
    // Next pass, the request is in flight and the transition handled: no second request.
    let d2 = decide(&p, &o, &d.memory, ts("2026-03-27T18:00:30Z"));
    assert_eq!(
        d2.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert!(d2.memory.pending.is_some());
    // Stopping: wait. Stopped: nothing due.
    let d3 = decide(
        &p,
        &obs(InstanceState::Stopping),
        &d.memory,
        ts("2026-03-27T18:01:00Z"),
    );
    assert_eq!(d3.verdict, Verdict::Wait);
    let d4 = decide(
        &p,
        &obs(InstanceState::Stopped),
        &d3.memory,
        ts("2026-03-27T18:02:00Z"),
    );
    assert_eq!(
        d4.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert_eq!(d4.memory.pending, None);
}

#[test]
fn busy_instance_is_stopped_once_the_job_ends_even_after_catch_up() {
    let p = office();
    let mem = known_since("2026-03-27T07:00:00Z");
    let job = obs(InstanceState::JobRunning);
    let d = decide(&p, &job, &mem, ts("2026-03-27T18:00:01Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::Busy)
    );
    assert_eq!(d.memory.deferred_transition, Some(ts(FRI_1900)));
    assert_eq!(d.memory.last_busy_seen, Some(ts("2026-03-27T18:00:01Z")));
    // Still busy two hours later (beyond catch_up = 1h): still blocked, still due.
    let d = decide(&p, &job, &d.memory, ts("2026-03-27T20:00:00Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::Busy)
    );
    // The job ended: stop now, not a catch-up, not missed.
    let d = decide(
        &p,
        &obs(InstanceState::Running),
        &d.memory,
        ts("2026-03-27T20:05:00Z"),
    );
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

#[test]
fn outage_within_catch_up_acts_late_and_beyond_is_missed() {
    let p = office();
    let mut running = obs(InstanceState::Running);
    running.last_operation = started("2026-03-27T08:00:00Z", OperationTrigger::User);
    // First start of the daemon at 19:40 local: 40 minutes late, within 1h.
    let d = decide(
        &p,
        &running,
        &InstanceMemory::default(),
        ts("2026-03-27T18:40:00Z"),
    );
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, true));
    // First start at 20:30 local: 90 minutes late: missed, recorded once.
    let d = decide(
        &p,
        &running,
        &InstanceMemory::default(),
        ts("2026-03-27T19:30:00Z"),
    );
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::Missed).with_catch_up(true)
    );
    let d = decide(&p, &running, &d.memory, ts("2026-03-27T19:31:00Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
}

trait WithCatchUp {
    fn with_catch_up(self, c: bool) -> Verdict;
}

impl WithCatchUp for Verdict {
    fn with_catch_up(self, c: bool) -> Verdict {
        match self {
            Verdict::Skip { mut planned, why } => {
                planned.catch_up = c;
                Verdict::Skip { planned, why }
            }
            v => v,
        }
    }
}

#[test]
fn a_user_start_after_the_transition_is_respected_even_with_memory_lost() {
    let p = office();
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-27T18:30:00Z", OperationTrigger::User);
    let d = decide(
        &p,
        &o,
        &InstanceMemory::default(),
        ts("2026-03-27T18:45:00Z"),
    );
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert_eq!(d.memory.handled_transition, Some(ts(FRI_1900)));
}

#[test]
fn idle_timeout_counts_from_latest_activity() {
    let p = office();
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-25T08:00:00Z", OperationTrigger::User); // a Wednesday
    o.jupyter = JupyterActivity::Seen {
        last_activity: Some(ts("2026-03-25T09:30:00Z")),
        kernel_busy: false,
    };
    let mem = known_since("2026-03-25T07:00:00Z");
    let d = decide(&p, &o, &mem, ts("2026-03-25T10:14:00Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert_eq!(d.idle_for, Some(SignedDuration::from_mins(44)));
    let d = decide(&p, &o, &mem, ts("2026-03-25T10:15:00Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::Idle, false));
    // A busy kernel wins over the idle timeout.
    o.jupyter = JupyterActivity::Seen {
        last_activity: Some(ts("2026-03-25T09:30:00Z")),
        kernel_busy: true,
    };
    let d = decide(&p, &o, &mem, ts("2026-03-25T10:15:00Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert_eq!(d.idle_for, Some(SignedDuration::ZERO));
    // Jupyter configured but unreachable: no idle stop.
    o.jupyter = JupyterActivity::Unavailable;
    let d = decide(&p, &o, &mem, ts("2026-03-25T10:15:00Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::Idle, SkipReason::ActivityUnknown)
    );
}

#[test]
fn unknown_start_time_counts_as_just_started() {
    // No lastOperation and no memory: min_uptime holds a stop back rather than guess.
    let p = office();
    let d = decide(
        &p,
        &obs(InstanceState::Running),
        &InstanceMemory::default(),
        ts("2026-03-27T18:00:00Z"),
    );
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::MinUptime)
    );
    let d = decide(
        &p,
        &obs(InstanceState::Running),
        &d.memory,
        ts("2026-03-27T18:15:00Z"),
    );
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

#[test]
fn lost_memory_restarts_the_idle_clock() {
    let p = office();
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-25T08:00:00Z", OperationTrigger::User);
    let d = decide(
        &p,
        &o,
        &InstanceMemory::default(),
        ts("2026-03-25T12:00:00Z"),
    );
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert_eq!(d.idle_for, Some(SignedDuration::ZERO));
}

#[test]
fn min_uptime_defers_a_window_close() {
    let p = office();
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-27T17:55:00Z", OperationTrigger::User);
    let mem = known_since("2026-03-27T07:00:00Z");
    let d = decide(&p, &o, &mem, ts("2026-03-27T18:00:00Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::MinUptime)
    );
    let d = decide(&p, &o, &d.memory, ts("2026-03-27T18:10:00Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

#[test]
fn hold_tag_forbids_stopping_until_it_ends() {
    let p = office();
    let mut o = obs(InstanceState::Running);
    o.tags
        .insert("lightsout-hold-until".into(), "2026-03-27T20:00:00Z".into());
    let mem = known_since("2026-03-27T07:00:00Z");
    let d = decide(&p, &o, &mem, ts("2026-03-27T18:00:00Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::Held)
    );
    let d = decide(&p, &o, &d.memory, ts("2026-03-27T20:00:01Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

/// A hold someone wrote wrong (no time, no offset, a stray space, a year past what a
/// timestamp holds) still holds, with its own reason, and keeps holding: it has no end.
#[test]
fn unreadable_hold_tag_holds_and_says_so() {
    let p = office();
    let mem = known_since("2026-03-27T07:00:00Z");
    for bad in [
        "2099-01-01",
        "2099-01-01T18:00",
        " 2099-01-01T18:00:00Z",
        "9999-12-31T23:59:59Z",
        "tomorrow",
        "",
    ] {
        let mut o = obs(InstanceState::Running);
        o.tags.insert("lightsout-hold-until".into(), bad.into());
        let reason = o.invalid_hold().expect(bad);
        assert!(reason.contains("lightsout-hold-until"), "{reason}");
        for now in ["2026-03-27T18:00:00Z", "2026-03-27T18:30:00Z"] {
            let d = decide(&p, &o, &mem, ts(now));
            assert!(
                matches!(
                    d.verdict,
                    Verdict::Skip {
                        planned: Planned {
                            action: Action::Stop,
                            ..
                        },
                        why: SkipReason::InvalidHold
                    }
                ),
                "{bad:?} at {now}: {:?}",
                d.verdict
            );
        }
    }
    // A readable hold is not reported as unreadable; a past one no longer holds.
    let mut o = obs(InstanceState::Running);
    o.tags
        .insert("lightsout-hold-until".into(), "2026-03-27T17:00:00Z".into());
    assert_eq!(o.invalid_hold(), None);
    let d = decide(&p, &o, &mem, ts("2026-03-27T18:00:00Z"));
    assert!(
        !matches!(
            d.verdict,
            Verdict::Skip {
                why: SkipReason::Held | SkipReason::InvalidHold,
                ..
            }
        ),
        "{:?}",
        d.verdict
    );
    // An unreadable hold does not block a start.
    let mut o = obs(InstanceState::Stopped);
    o.tags
        .insert("lightsout-hold-until".into(), "2099-01-01".into());
    let d = decide(
        &p,
        &o,
        &InstanceMemory::default(),
        ts("2026-03-30T06:00:01Z"),
    );
    assert_eq!(d.verdict, act(Action::Start, Reason::WindowOpen, false));
}

#[test]
fn excluded_and_transitional_and_unmatched() {
    let p = office();
    let mut o = obs(InstanceState::Running);
    o.tags.insert("lightsout".into(), "off".into());
    assert_eq!(
        decide(&p, &o, &InstanceMemory::default(), ts(FRI_1900)).verdict,
        Verdict::Quiet {
            why: Quiet::Excluded
        }
    );
    let d = decide(
        &p,
        &obs(InstanceState::Starting),
        &InstanceMemory::default(),
        ts(FRI_1900),
    );
    assert_eq!(d.verdict, Verdict::Wait);
    let d = decide(
        &p,
        &obs(InstanceState::Other("Hibernating".into())),
        &InstanceMemory::default(),
        ts(FRI_1900),
    );
    assert_eq!(d.verdict, Verdict::Wait);
    let none = policies(
        "[[policy]]\nname = \"x\"\ninstances = [\"gpu-*\"]\nuptime = [\"daily 08:00-09:00\"]\n",
    );
    assert_eq!(
        decide(
            &none,
            &obs(InstanceState::Running),
            &InstanceMemory::default(),
            ts(FRI_1900)
        )
        .verdict,
        Verdict::Quiet {
            why: Quiet::NoPolicy
        }
    );
}

#[test]
fn window_open_starts_stopped_instances() {
    let p = office();
    // Monday 2026-03-30 08:00 CEST = 06:00Z.
    let d = decide(
        &p,
        &obs(InstanceState::Stopped),
        &InstanceMemory::default(),
        ts("2026-03-30T06:00:00.200Z"),
    );
    assert_eq!(d.verdict, act(Action::Start, Reason::WindowOpen, false));
    // A start is not blocked by a hold.
    let mut o = obs(InstanceState::Stopped);
    o.tags
        .insert("lightsout-hold-until".into(), "2026-04-30T00:00:00Z".into());
    let d = decide(
        &p,
        &o,
        &InstanceMemory::default(),
        ts("2026-03-30T06:00:01Z"),
    );
    assert_eq!(d.verdict, act(Action::Start, Reason::WindowOpen, false));
}

#[test]
fn always_enforcement_stops_a_user_start_outside_the_window() {
    let p = policies(
        "[[policy]]\nname = \"strict\"\ntimezone = \"Europe/Paris\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\nenforcement = \"always\"\n",
    );
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-27T19:30:00Z", OperationTrigger::User);
    let d = decide(
        &p,
        &o,
        &InstanceMemory::default(),
        ts("2026-03-27T19:45:00Z"),
    );
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

#[test]
fn cron_restart_fires_once_across_dst() {
    let p = office();
    // Sunday 2026-03-29 03:00 CEST (the spring-forward day) = 01:00Z.
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-28T18:00:00Z", OperationTrigger::User);
    let mem = InstanceMemory {
        first_seen: Some(ts("2026-03-28T18:00:00Z")),
        handled_transition: Some(ts(FRI_1900)),
        ..InstanceMemory::default()
    };
    o.jupyter = JupyterActivity::Seen {
        last_activity: Some(ts("2026-03-29T00:58:00Z")),
        kernel_busy: false,
    };
    // Saturday: outside the window but the Friday transition was handled (user started it).
    let d = decide(&p, &o, &mem, ts("2026-03-29T00:59:59Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    let d = decide(&p, &o, &mem, ts("2026-03-29T01:00:00Z"));
    assert_eq!(d.verdict, act(Action::Restart, Reason::Event, false));
    // The restart went through: Azure now reports it as the last operation.
    o.last_operation = Some(LastOperation {
        kind: OperationKind::Restart,
        at: ts("2026-03-29T01:00:05Z"),
        succeeded: true,
        trigger: OperationTrigger::User,
    });
    let d = decide(&p, &o, &d.memory, ts("2026-03-29T01:05:00Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
}

#[test]
fn max_uptime_stops_active_but_not_busy() {
    let p = policies(
        "[[policy]]\nname = \"cap\"\n[policy.idle]\nmax_uptime = \"12h\"\nsignals = [\"arm\"]\n",
    );
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-25T00:00:00Z", OperationTrigger::User);
    let d = decide(
        &p,
        &o,
        &known_since("2026-03-24T00:00:00Z"),
        ts("2026-03-25T12:00:00Z"),
    );
    assert_eq!(d.verdict, act(Action::Stop, Reason::MaxUptime, false));
    o.state = InstanceState::JobRunning;
    let d = decide(
        &p,
        &o,
        &known_since("2026-03-24T00:00:00Z"),
        ts("2026-03-25T12:00:00Z"),
    );
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::MaxUptime, SkipReason::Busy)
    );
}

// ---- properties ----

fn arb_state() -> impl Strategy<Value = InstanceState> {
    prop_oneof![
        Just(InstanceState::Running),
        Just(InstanceState::JobRunning),
        Just(InstanceState::Stopped),
        Just(InstanceState::Starting),
        Just(InstanceState::Stopping),
        Just(InstanceState::Unknown),
    ]
}

fn arb_ts() -> impl Strategy<Value = Timestamp> {
    // 2026-01-01 .. 2028-01-01, second resolution.
    (1_767_225_600i64..1_830_297_600).prop_map(|s| Timestamp::from_second(s).unwrap())
}

fn arb_opt_ts() -> impl Strategy<Value = Option<Timestamp>> {
    prop::option::of(arb_ts())
}

fn arb_jupyter() -> impl Strategy<Value = JupyterActivity> {
    prop_oneof![
        Just(JupyterActivity::NotObserved),
        Just(JupyterActivity::Unavailable),
        (arb_opt_ts(), any::<bool>()).prop_map(|(last_activity, kernel_busy)| {
            JupyterActivity::Seen {
                last_activity,
                kernel_busy,
            }
        }),
    ]
}

fn arb_obs() -> impl Strategy<Value = InstanceObservation> {
    (
        arb_state(),
        arb_jupyter(),
        arb_opt_ts(),
        any::<bool>(),
        arb_opt_ts(),
    )
        .prop_map(|(state, jupyter, op_at, user, hold)| {
            let mut o = obs(state);
            o.jupyter = jupyter;
            o.last_operation = op_at.map(|at| LastOperation {
                kind: OperationKind::Start,
                at,
                succeeded: true,
                trigger: if user {
                    OperationTrigger::User
                } else {
                    OperationTrigger::Schedule
                },
            });
            if let Some(h) = hold {
                o.tags.insert("lightsout-hold-until".into(), h.to_string());
            }
            o
        })
}

fn arb_memory() -> impl Strategy<Value = InstanceMemory> {
    (
        arb_opt_ts(),
        arb_opt_ts(),
        arb_opt_ts(),
        arb_opt_ts(),
        arb_opt_ts(),
    )
        .prop_map(
            |(
                first_seen,
                last_busy_seen,
                handled_transition,
                deferred_transition,
                handled_event,
            )| InstanceMemory {
                first_seen,
                running_since_seen: None,
                last_busy_seen,
                handled_transition,
                deferred_transition,
                handled_event,
                deferred_event: None,
                pending: None,
                failures: 0,
                retry_at: None,
                native_pending: Vec::new(),
                failed_request_at: None,
            },
        )
}

fn all_policies() -> Vec<Policy> {
    let mut p = policies(
        r#"
[[policy]]
name = "strict"
instances = ["strict-*"]
timezone = "America/New_York"
uptime = ["Mon-Fri 08:00-18:00", "Sat 22:00-02:00"]
enforcement = "always"
start = "window"
[policy.idle]
timeout = "30m"
signals = ["arm"]

[[policy]]
name = "hold-unknown"
instances = ["hold-*"]
timezone = "Europe/London"
uptime = ["Mon-Fri 09:00-17:00"]
unknown_activity = "hold"
[policy.idle]
timeout = "30m"
max_uptime = "4h"
signals = ["arm", "jupyter"]
[[policy.event]]
cron = "15 * * * *"
action = "stop"

[[policy]]
name = "schedule-only"
instances = ["sched-*"]
timezone = "Asia/Tokyo"
uptime = ["Mon-Fri 07:00-20:00"]
enforcement = "always"
[[policy.event]]
cron = "*/20 * * * *"
action = "restart"
"#,
    );
    p.extend(office());
    p
}

fn stops(v: &Verdict) -> bool {
    matches!(
        v,
        Verdict::Act(Planned {
            action: Action::Stop | Action::Restart,
            ..
        })
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn busy_is_never_stopped(mut o in arb_obs(), mem in arb_memory(), now in arb_ts(), which in 0..3u8) {
        // strict: ARM signal only; schedule-only: no idle section, default signals (ARM
        // only too); office: ARM and Jupyter.
        let arm_only = which != 2;
        o.name = ["strict-1", "sched-1", "ci-alice"][usize::from(which)].into();
        let busy = o.state == InstanceState::JobRunning
            || (!arm_only && matches!(o.jupyter, JupyterActivity::Seen { kernel_busy: true, .. }));
        let d = decide(&all_policies(), &o, &mem, now);
        if busy {
            prop_assert!(!stops(&d.verdict), "{:?}", d.verdict);
        }
    }

    #[test]
    fn unknown_notebook_activity_never_makes_an_idle_stop(mut o in arb_obs(), mem in arb_memory(), now in arb_ts(), sched in any::<bool>()) {
        o.name = if sched { "sched-1" } else { "ci-alice" }.into();
        o.jupyter = JupyterActivity::Unavailable;
        let d = decide(&all_policies(), &o, &mem, now);
        prop_assert!(
            !matches!(d.verdict, Verdict::Act(Planned { reason: Reason::Idle, .. })),
            "{:?}", d.verdict
        );
    }

    #[test]
    fn unknown_activity_hold_is_never_stopped(mut o in arb_obs(), mem in arb_memory(), now in arb_ts()) {
        o.name = "hold-1".into();
        o.jupyter = JupyterActivity::Unavailable;
        let d = decide(&all_policies(), &o, &mem, now);
        prop_assert!(!stops(&d.verdict), "{:?}", d.verdict);
    }

    #[test]
    fn stopped_is_never_stopped(mut o in arb_obs(), mem in arb_memory(), now in arb_ts()) {
        o.state = InstanceState::Stopped;
        let d = decide(&all_policies(), &o, &mem, now);
        prop_assert!(!stops(&d.verdict), "{:?}", d.verdict);
    }

    #[test]
    fn same_inputs_same_decision(o in arb_obs(), mem in arb_memory(), now in arb_ts()) {
        let p = all_policies();
        prop_assert_eq!(decide(&p, &o, &mem, now), decide(&p, &o, &mem, now));
    }

    #[test]
    fn an_acted_transition_is_not_planned_again(o in arb_obs(), mem in arb_memory(), now in arb_ts(), later in 1i64..7200) {
        let p = all_policies();
        let d = decide(&p, &o, &mem, now);
        if let Verdict::Act(Planned { reason: Reason::OutsideWindow | Reason::WindowOpen | Reason::Event, .. }) = d.verdict {
            // Even if the request had no effect (same observation) and was forgotten as
            // pending, the same transition or event does not lead to a second request.
            let mut m = d.memory.clone();
            m.pending = None;
            let next = now.checked_add(SignedDuration::from_secs(later)).unwrap();
            let again = decide(&p, &o, &m, next);
            if let Verdict::Act(planned) = again.verdict {
                let same_transition = matches!(planned.reason, Reason::OutsideWindow | Reason::WindowOpen)
                    && p[1].schedule.previous_transition(next) == p[1].schedule.previous_transition(now);
                prop_assert!(!(same_transition && o.name != "strict-1"), "{:?} then {:?}", d.verdict, again.verdict);
            }
        }
    }
}

#[test]
fn a_failed_stop_is_retried_after_backoff_then_given_up() {
    let p = office();
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-27T08:00:00Z", OperationTrigger::User);
    let d = decide(&p, &o, &known_since("2026-03-27T07:00:00Z"), ts(FRI_1900));
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
    let mut mem = d.memory;
    let mut at = ts(FRI_1900);
    for attempt in 1..=crate::engine::memory::MAX_FAILURES {
        mem.operation_failed(at);
        assert_eq!(mem.failures, attempt);
        // Within the backoff: held back.
        let d = decide(
            &p,
            &o,
            &mem,
            at.checked_add(SignedDuration::from_secs(30)).unwrap(),
        );
        let want = if attempt < crate::engine::memory::MAX_FAILURES {
            SkipReason::Backoff
        } else {
            SkipReason::GaveUp
        };
        assert_eq!(d.verdict, skip(Action::Stop, Reason::OutsideWindow, want));
        // After it: the same transition is due again (not missed, even past catch_up).
        at = mem.retry_at.unwrap();
        let d = decide(&p, &o, &mem, at);
        if attempt < crate::engine::memory::MAX_FAILURES {
            assert_eq!(
                d.verdict,
                act(Action::Stop, Reason::OutsideWindow, false),
                "attempt {attempt}"
            );
            mem = d.memory;
        } else {
            assert_eq!(
                d.verdict,
                skip(Action::Stop, Reason::OutsideWindow, SkipReason::GaveUp)
            );
        }
    }
}

/// Issue 8, found by the fault soak (`bench/soak.py`): after our stop failed, Azure's
/// lastOperation is our own failed Stop, later than the transition. It was taken for a
/// person's override, so the transition counted as answered and was never retried.
#[test]
fn our_own_failed_stop_does_not_supersede_the_transition() {
    let p = office();
    let mut o = obs(InstanceState::Running);
    o.last_operation = started("2026-03-27T08:00:00Z", OperationTrigger::User);
    // Seen running since the morning (the daemon has been up all day).
    let mut mem = known_since("2026-03-27T07:00:00Z");
    mem.running_since_seen = Some(ts("2026-03-27T08:01:00Z"));
    let d = decide(&p, &o, &mem, ts(FRI_1900));
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
    let mut mem = d.memory;
    let failed_at = ts("2026-03-27T18:00:05Z");
    mem.operation_failed(failed_at);
    // What Azure shows now: our Stop, failed, back to Running.
    o.last_operation = Some(LastOperation {
        kind: OperationKind::Stop,
        at: ts("2026-03-27T18:00:01Z"),
        succeeded: false,
        trigger: OperationTrigger::User,
    });
    let retry = mem.retry_at.unwrap();
    let d = decide(&p, &o, &mem, retry);
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
    // A person's successful start after that is still an override.
    let mut mem = d.memory;
    mem.operation_failed(retry);
    o.last_operation = started("2026-03-27T18:20:00Z", OperationTrigger::User);
    let later = ts("2026-03-27T18:30:00Z");
    let d = decide(&p, &o, &mem, later);
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
}

/// Paris office hours and nothing else, plus `extra` (TOML).
fn hours_only(extra: &str) -> Vec<Policy> {
    policies(&format!(
        "[[policy]]\nname = \"hours\"\ntimezone = \"Europe/Paris\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n{extra}"
    ))
}

/// A policy with windows and no `[policy.idle]` asks ARM only: a running job holds the
/// stop, Jupyter is not asked (it is an opt-in), and the stop is carried out once the job
/// has ended.
#[test]
fn schedule_only_policy_waits_for_a_job_and_does_not_need_jupyter() {
    let p = hours_only("");
    assert_eq!(p[0].signals(), crate::engine::policy::Signals::DEFAULT);
    let mem = known_since("2026-03-27T07:00:00Z");
    let mut o = obs(InstanceState::JobRunning);
    o.jupyter = JupyterActivity::Unavailable;
    let d = decide(&p, &o, &mem, ts("2026-03-27T18:00:01Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::Busy)
    );
    // The job ended beyond catch_up; the notebook cannot be read: the held stop goes ahead.
    o.state = InstanceState::Running;
    let d = decide(&p, &o, &d.memory, ts("2026-03-27T20:31:00Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

/// Jupyter opted in: a busy kernel holds a schedule stop; a Jupyter that cannot be read
/// does not, by default (what lightsout knows still blocks: here, nothing).
#[test]
fn opted_in_jupyter_busy_holds_but_unreadable_proceeds() {
    let p = hours_only("[policy.idle]\nsignals = [\"arm\", \"jupyter\"]\n");
    let mem = known_since("2026-03-27T07:00:00Z");
    let mut o = obs(InstanceState::Running);
    o.jupyter = JupyterActivity::Seen {
        last_activity: Some(ts("2026-03-27T18:00:00Z")),
        kernel_busy: true,
    };
    let d = decide(&p, &o, &mem, ts("2026-03-27T18:00:01Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::Busy)
    );
    o.jupyter = JupyterActivity::Unavailable;
    let d = decide(&p, &o, &d.memory, ts("2026-03-27T18:10:00Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

/// `unknown_activity = "hold"`: an unreadable Jupyter holds the stop, with the reason
/// said; once the kernel is seen idle the held stop is carried out.
#[test]
fn unknown_activity_hold_waits_for_a_readable_signal() {
    let p = hours_only(
        "unknown_activity = \"hold\"\n[policy.idle]\nsignals = [\"arm\", \"jupyter\"]\n",
    );
    assert_eq!(
        p[0].unknown_activity,
        crate::engine::policy::UnknownActivity::Hold
    );
    let mem = known_since("2026-03-27T07:00:00Z");
    let mut o = obs(InstanceState::Running);
    o.jupyter = JupyterActivity::Unavailable;
    let d = decide(&p, &o, &mem, ts("2026-03-27T18:00:01Z"));
    assert_eq!(
        d.verdict,
        skip(
            Action::Stop,
            Reason::OutsideWindow,
            SkipReason::ActivityUnknown
        )
    );
    o.jupyter = JupyterActivity::Seen {
        last_activity: Some(ts("2026-03-27T20:30:00Z")),
        kernel_busy: false,
    };
    let d = decide(&p, &o, &d.memory, ts("2026-03-27T20:31:00Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

/// `[policy.idle]` with only `signals` is how a schedule opts out of asking Jupyter.
#[test]
fn schedule_with_arm_signal_only_ignores_notebooks() {
    let p = hours_only("[policy.idle]\nsignals = [\"arm\"]\n");
    let mut o = obs(InstanceState::Running);
    o.jupyter = JupyterActivity::Unavailable;
    let d = decide(
        &p,
        &o,
        &known_since("2026-03-27T07:00:00Z"),
        ts("2026-03-27T18:00:01Z"),
    );
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

/// Idle time is reported only where the policy can tell idleness from use: not on ARM by
/// default (it sees jobs, not notebooks), yes when the sources are named or include Jupyter.
#[test]
fn idle_time_is_unknown_where_the_policy_cannot_see_use() {
    let mem = known_since("2026-03-27T07:00:00Z");
    let o = obs(InstanceState::Running);
    let at = ts("2026-03-27T10:00:00Z");
    assert_eq!(decide(&hours_only(""), &o, &mem, at).idle_for, None);
    assert_eq!(
        decide(
            &hours_only("[policy.idle]\nmax_uptime = \"12h\"\n"),
            &o,
            &mem,
            at
        )
        .idle_for,
        None
    );
    for named in ["[\"arm\"]", "[\"arm\", \"jupyter\"]"] {
        let p = hours_only(&format!("[policy.idle]\nsignals = {named}\n"));
        assert!(decide(&p, &o, &mem, at).idle_for.is_some(), "{named}");
    }
}

// --- The on-instance agent's signal (issue 15). ---

const AGENT: &str = "[agent]\naccount = \"mlwstorage\"\n";

/// Policies with `[agent]` configured (the default signals then include the agent).
fn agent_policies(policy_toml: &str) -> Vec<Policy> {
    policies(&format!("{AGENT}\n{policy_toml}"))
}

/// Paris office hours with an idle rule of 45 minutes and the default signals (ARM + agent).
fn agent_office(extra: &str) -> Vec<Policy> {
    agent_policies(&format!(
        "[[policy]]\nname = \"agent-office\"\ntimezone = \"Europe/Paris\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n{extra}\n[policy.idle]\ntimeout = \"45m\"\n"
    ))
}

fn heartbeat(
    busy: bool,
    last_activity: Option<&str>,
    at: &str,
) -> crate::engine::heartbeat::Verdict {
    use crate::engine::heartbeat::{BusyReason, VERDICT_VERSION};
    crate::engine::heartbeat::Verdict {
        v: VERDICT_VERSION,
        instance: "ci-alice".into(),
        at: ts(at),
        busy,
        reasons: if busy {
            vec![BusyReason::TerminalInput]
        } else {
            Vec::new()
        },
        last_activity: last_activity.map(ts),
        interval_secs: 60,
        snooze: None,
    }
}

fn agent_obs(state: InstanceState, agent: AgentActivity) -> InstanceObservation {
    let mut o = obs(state);
    o.jupyter = JupyterActivity::NotObserved;
    o.agent = agent;
    o.last_operation = started("2026-03-27T06:00:00Z", OperationTrigger::User);
    o
}

#[test]
fn agent_is_in_the_default_signals_once_configured() {
    let p = agent_office("");
    let s = p[0].signals();
    assert!(s.arm && s.agent && !s.jupyter, "{s:?}");
    assert!(p[0].sees_idleness());
    // Without [policy.idle] too: the agent's busy blocks schedule stops everywhere.
    let p = agent_policies("[[policy]]\nname = \"hours\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n");
    assert!(p[0].signals().agent);
    // Without [agent] nothing changes.
    assert_eq!(
        hours_only("")[0].signals(),
        crate::engine::policy::Signals::DEFAULT
    );
}

/// Busy by the agent blocks every stop like a running job: schedule, idle, max uptime and
/// event; a start is never blocked.
#[test]
fn agent_busy_blocks_every_stop() {
    let mem = known_since("2026-03-27T05:00:00Z");
    let busy = AgentActivity::Seen(heartbeat(
        true,
        Some("2026-03-27T18:00:00Z"),
        "2026-03-27T18:00:00Z",
    ));
    let o = agent_obs(InstanceState::Running, busy.clone());
    // Schedule.
    let d = decide(&agent_office(""), &o, &mem, ts("2026-03-27T18:00:30Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::Busy)
    );
    assert_eq!(d.memory.last_busy_seen, Some(ts("2026-03-27T18:00:30Z")));
    // Max uptime.
    let p = agent_policies("[[policy]]\nname = \"cap\"\n[policy.idle]\nmax_uptime = \"2h\"\n");
    let d = decide(&p, &o, &mem, ts("2026-03-27T10:00:00Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::MaxUptime, SkipReason::Busy)
    );
    // Event.
    let p = agent_policies(
        "[[policy]]\nname = \"nightly\"\n[[policy.event]]\ncron = \"0 22 * * *\"\naction = \"stop\"\n",
    );
    let d = decide(&p, &o, &mem, ts("2026-03-27T22:00:10Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::Event, SkipReason::Busy)
    );
    // Idle: the agent's old last_activity does not make it idle while it says busy.
    let frozen = AgentActivity::Seen(heartbeat(
        true,
        Some("2026-03-27T06:00:00Z"),
        "2026-03-27T12:00:00Z",
    ));
    let o = agent_obs(InstanceState::Running, frozen);
    let d = decide(&agent_office(""), &o, &mem, ts("2026-03-27T12:00:30Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert_eq!(d.idle_for, Some(SignedDuration::ZERO));
    // A start is not blocked (the agent of a stopped instance is not asked anyway).
    let p = agent_office("start = \"window\"");
    let o = agent_obs(InstanceState::Stopped, busy);
    let d = decide(&p, &o, &mem, ts("2026-03-27T07:00:10Z"));
    assert_eq!(d.verdict, act(Action::Start, Reason::WindowOpen, false));
}

/// Idle counts from the agent's last activity: stopped past the timeout, not before.
#[test]
fn agent_idle_counts_from_its_last_activity() {
    let p = agent_office("");
    let mem = known_since("2026-03-27T05:00:00Z");
    let idle = AgentActivity::Seen(heartbeat(
        false,
        Some("2026-03-27T09:12:00Z"),
        "2026-03-27T09:56:30Z",
    ));
    let o = agent_obs(InstanceState::Running, idle);
    let d = decide(&p, &o, &mem, ts("2026-03-27T09:56:59Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert_eq!(d.idle_for, Some(SignedDuration::from_secs(44 * 60 + 59)));
    let d = decide(&p, &o, &mem, ts("2026-03-27T09:57:00Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::Idle, false));
}

/// No activity since the agent started: idle counts from the start of the run (or the
/// last busy verdict the daemon saw), never from nothing.
#[test]
fn agent_without_any_activity_counts_from_the_run_start_or_last_busy() {
    let p = agent_office("");
    let none = AgentActivity::Seen(heartbeat(false, None, "2026-03-27T09:00:00Z"));
    let mut o = agent_obs(InstanceState::Running, none);
    o.last_operation = started("2026-03-27T08:30:00Z", OperationTrigger::User);
    let mem = known_since("2026-03-27T05:00:00Z");
    let d = decide(&p, &o, &mem, ts("2026-03-27T09:00:10Z"));
    assert_eq!(d.idle_for, Some(SignedDuration::from_secs(30 * 60 + 10)));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    let d = decide(&p, &o, &mem, ts("2026-03-27T09:15:00Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::Idle, false));
    let mut busy_lately = mem.clone();
    busy_lately.last_busy_seen = Some(ts("2026-03-27T09:00:00Z"));
    let d = decide(&p, &o, &busy_lately, ts("2026-03-27T09:15:00Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
}

/// Missing, stale, rejected or unreachable: idle time unknown, never an idle stop (said
/// as activity_unknown); schedule stops follow `unknown_activity`.
#[test]
fn agent_unknown_never_idles_and_follows_unknown_activity() {
    use crate::engine::model::AgentUnknown;
    let mem = known_since("2026-03-27T05:00:00Z");
    for why in [
        AgentUnknown::Missing,
        AgentUnknown::Stale,
        AgentUnknown::Rejected,
        AgentUnknown::Unreachable,
    ] {
        let o = agent_obs(InstanceState::Running, AgentActivity::Unknown(why));
        let d = decide(&agent_office(""), &o, &mem, ts("2026-03-27T12:00:00Z"));
        assert_eq!(d.idle_for, None, "{why:?}");
        assert_eq!(
            d.verdict,
            skip(Action::Stop, Reason::Idle, SkipReason::ActivityUnknown),
            "{why:?}"
        );
        // Proceed (the default): the schedule stop goes ahead.
        let d = decide(&agent_office(""), &o, &mem, ts("2026-03-27T18:00:10Z"));
        assert_eq!(
            d.verdict,
            act(Action::Stop, Reason::OutsideWindow, false),
            "{why:?}"
        );
        // Hold: it waits.
        let p = agent_office("unknown_activity = \"hold\"");
        let d = decide(&p, &o, &mem, ts("2026-03-27T18:00:10Z"));
        assert_eq!(
            d.verdict,
            skip(
                Action::Stop,
                Reason::OutsideWindow,
                SkipReason::ActivityUnknown
            ),
            "{why:?}"
        );
    }
}

/// A snooze in force holds every stop until its end, bounded by `max_snooze` from when it
/// was asked; after it, idle counts from its end.
#[test]
fn agent_snooze_holds_within_max_snooze() {
    use crate::engine::heartbeat::Snooze;
    let mem = known_since("2026-03-27T05:00:00Z");
    let mut v = heartbeat(false, Some("2026-03-27T09:00:00Z"), "2026-03-27T17:59:00Z");
    v.snooze = Some(Snooze {
        at: ts("2026-03-27T09:00:00Z"),
        until: ts("2026-03-28T09:00:00Z"),
        reason: Some("training".into()),
        by: Some("azureuser".into()),
    });
    let o = agent_obs(InstanceState::Running, AgentActivity::Seen(v));
    let p = agent_office("max_snooze = \"10h\"");
    assert_eq!(p[0].max_snooze, std::time::Duration::from_secs(10 * 3600));
    assert_eq!(
        snoozed_until(&p[0], &o, ts("2026-03-27T18:00:10Z")),
        Some(ts("2026-03-27T19:00:00Z"))
    );
    // Idle since 09:00, schedule closed at 18:00: both held by the snooze.
    let d = decide(&p, &o, &mem, ts("2026-03-27T18:00:10Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::OutsideWindow, SkipReason::Snoozed)
    );
    // Past max_snooze (19:00) the held transition is carried out.
    let d = decide(&p, &o, &d.memory, ts("2026-03-27T19:00:01Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
    // Without a schedule: the idle stop waits for the snooze, and idle then counts from
    // its end.
    let p = agent_policies(
        "[[policy]]\nname = \"idle\"\nmax_snooze = \"10h\"\n[policy.idle]\ntimeout = \"45m\"\n",
    );
    let d = decide(&p, &o, &mem, ts("2026-03-27T18:59:00Z"));
    assert_eq!(
        d.verdict,
        skip(Action::Stop, Reason::Idle, SkipReason::Snoozed)
    );
    let d = decide(&p, &o, &mem, ts("2026-03-27T19:30:00Z"));
    assert_eq!(
        d.verdict,
        Verdict::Quiet {
            why: Quiet::NothingDue
        }
    );
    assert_eq!(d.idle_for, Some(SignedDuration::from_mins(30)));
    let d = decide(&p, &o, &mem, ts("2026-03-27T19:45:00Z"));
    assert_eq!(d.verdict, act(Action::Stop, Reason::Idle, false));
}

/// A policy that does not use the agent ignores its heartbeat (busy, snooze or unknown).
#[test]
fn agent_ignored_where_the_policy_does_not_name_it() {
    let p = agent_policies(
        "[[policy]]\nname = \"hours\"\ntimezone = \"Europe/Paris\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n[policy.idle]\nsignals = [\"arm\"]\n",
    );
    let o = agent_obs(
        InstanceState::Running,
        AgentActivity::Seen(heartbeat(true, None, "2026-03-27T18:00:00Z")),
    );
    let d = decide(
        &p,
        &o,
        &known_since("2026-03-27T05:00:00Z"),
        ts("2026-03-27T18:00:10Z"),
    );
    assert_eq!(d.verdict, act(Action::Stop, Reason::OutsideWindow, false));
}

fn arb_agent() -> impl Strategy<Value = AgentActivity> {
    use crate::engine::model::AgentUnknown;
    prop_oneof![
        Just(AgentActivity::NotObserved),
        Just(AgentActivity::Unknown(AgentUnknown::Missing)),
        Just(AgentActivity::Unknown(AgentUnknown::Unreachable)),
        (arb_opt_ts(), any::<bool>(), arb_ts()).prop_map(|(last_activity, busy, at)| {
            let mut v = heartbeat(busy, None, "2026-03-27T00:00:00Z");
            v.last_activity = last_activity;
            v.at = at;
            AgentActivity::Seen(v)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn agent_busy_is_never_stopped_and_unknown_never_idles(mut o in arb_obs(), agent in arb_agent(), mem in arb_memory(), now in arb_ts(), hold in any::<bool>()) {
        o.agent = agent;
        let p = agent_office(if hold { "unknown_activity = \"hold\"\n[[policy.event]]\ncron = \"*/20 * * * *\"\naction = \"stop\"" } else { "[[policy.event]]\ncron = \"*/20 * * * *\"\naction = \"stop\"" });
        let d = decide(&p, &o, &mem, now);
        let busy = matches!(&o.agent, AgentActivity::Seen(v) if v.busy);
        let unknown = matches!(o.agent, AgentActivity::Unknown(_));
        if busy || (unknown && hold) {
            prop_assert!(!stops(&d.verdict), "{:?}", d.verdict);
        }
        if unknown {
            prop_assert!(
                !matches!(d.verdict, Verdict::Act(Planned { reason: Reason::Idle, .. })),
                "{:?}", d.verdict
            );
        }
    }
}
