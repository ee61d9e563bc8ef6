//! Pass tests: settling and crash recovery written as policies and fixed instants, then a
//! property over random runs of passes (a pending intent is never sent twice).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::engine::model::Reason;
use crate::engine::model::{JupyterActivity, LastOperation, OperationKind, OperationTrigger};

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

[[workspace]]
name = "lab"
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "rg"
workspace = "mlw-lab"
"#;

fn config(policy_toml: &str) -> Config {
    let text = format!("{BASE}\n{policy_toml}");
    let (cfg, _) =
        crate::engine::config::validate::from_str(&text).unwrap_or_else(|e| panic!("{e:#?}"));
    cfg
}

/// Paris office hours, transitions enforced, catch-up 1h, idle 45m.
const OFFICE: &str = r#"
[[policy]]
name = "office"
timezone = "Europe/Paris"
uptime = ["Mon-Fri 08:00-19:00"]
start = "window"
catch_up = "1h"
[policy.idle]
timeout = "45m"
signals = ["arm", "jupyter"]
"#;

/// Office hours, and Azure's own idle shutdown enforced at one hour.
const NATIVE: &str = r#"
[[policy]]
name = "native"
timezone = "Europe/Paris"
uptime = ["Mon-Fri 08:00-19:00"]
[policy.native]
mode = "enforce"
idle_shutdown = "60m"
"#;

// 2026-03-27 is a Friday; Paris is at +01:00 then, so 19:00 local is 18:00Z.
const FRI_1900: &str = "2026-03-27T18:00:00Z";
/// Long before anything in these tests: the daemon has been up all along.
const BOOT: &str = "2026-03-27T06:00:00Z";

fn obs(name: &str, state: InstanceState) -> InstanceObservation {
    InstanceObservation {
        workspace: "research".into(),
        name: name.into(),
        state,
        vm_size: "Standard_DS3_v2".into(),
        tags: BTreeMap::new(),
        last_operation: Some(LastOperation {
            kind: OperationKind::Start,
            at: ts("2026-03-27T08:00:00Z"),
            succeeded: true,
            trigger: OperationTrigger::User,
        }),
        jupyter: JupyterActivity::Seen {
            last_activity: Some(ts("2026-03-27T17:59:00Z")),
            kernel_busy: false,
        },
        agent: Default::default(),
        native: Default::default(),
    }
}

fn alice(state: InstanceState) -> InstanceObservation {
    obs("ci-alice", state)
}

fn key(name: &str) -> InstanceKey {
    InstanceKey::new("research", name)
}

/// A memory of an instance known since the morning (so idle time is not floored).
fn known() -> BTreeMap<InstanceKey, InstanceMemory> {
    let mem = InstanceMemory {
        first_seen: Some(ts("2026-03-27T07:00:00Z")),
        ..InstanceMemory::default()
    };
    BTreeMap::from([(key("ci-alice"), mem)])
}

/// A `pending` audit row.
fn row(id: i64, name: &str, action: Action, request_id: Option<&str>) -> AuditRecord {
    AuditRecord {
        id: AuditId(id),
        at: ts(FRI_1900),
        workspace: "research".into(),
        instance: name.into(),
        action,
        reason: "outside_window".into(),
        policy: "office".into(),
        catch_up: false,
        outcome: Outcome::Pending,
        error: None,
        dry_run: false,
        request_id: request_id.map(str::to_owned),
        finished_at: None,
    }
}

/// One pass over the `research` workspace (`lab` not observed).
struct Pass<'a> {
    cfg: &'a Config,
    memory: &'a BTreeMap<InstanceKey, InstanceMemory>,
    pending: Option<&'a [AuditRecord]>,
    started: &'a str,
    dry_run: bool,
}

impl Pass<'_> {
    fn run(&self, instances: &[InstanceObservation], now: &str) -> PassPlan {
        let observed = [
            Observed {
                alias: "research",
                instances: Some(instances),
            },
            Observed {
                alias: "lab",
                instances: None,
            },
        ];
        plan_pass(&PassInput {
            cfg: self.cfg,
            observed: &observed,
            memory: self.memory,
            pending: self.pending,
            started: ts(self.started),
            now: ts(now),
            dry_run: self.dry_run,
        })
    }
}

fn pass<'a>(cfg: &'a Config, memory: &'a BTreeMap<InstanceKey, InstanceMemory>) -> Pass<'a> {
    Pass {
        cfg,
        memory,
        pending: Some(&[]),
        started: BOOT,
        dry_run: false,
    }
}

/// The memory the plan writes for `name`.
fn written(plan: &PassPlan, name: &str) -> InstanceMemory {
    plan.writes[0]
        .memory
        .iter()
        .find(|(k, _)| *k == key(name))
        .map(|(_, m)| m.clone())
        .unwrap_or_else(|| panic!("no memory written for {name}"))
}

/// Memory after applying the plan's writes to `before`.
fn after(
    before: &BTreeMap<InstanceKey, InstanceMemory>,
    plan: &PassPlan,
) -> BTreeMap<InstanceKey, InstanceMemory> {
    let mut m = before.clone();
    for w in &plan.writes {
        m.extend(w.memory.iter().cloned());
        for k in &w.forget {
            m.remove(k);
        }
    }
    m
}

/// The pass that stops ci-alice at 19:00 Paris, and the memory it leaves.
fn stopped_at_1900(cfg: &Config) -> BTreeMap<InstanceKey, InstanceMemory> {
    let mem = known();
    let plan = pass(cfg, &mem).run(&[alice(InstanceState::Running)], "2026-03-27T18:00:00.500Z");
    assert_eq!(plan.requests.len(), 1);
    after(&mem, &plan)
}

#[test]
fn acting_writes_the_intent_with_its_memory_and_plans_one_request() {
    let cfg = config(OFFICE);
    let mem = known();
    let plan = pass(&cfg, &mem).run(&[alice(InstanceState::Running)], "2026-03-27T18:00:00.500Z");
    assert_eq!(plan.rows[0].decision, "act");
    let w = &plan.writes[0];
    assert_eq!(w.intents.len(), 1);
    assert_eq!(w.intents[0].intent.action, Action::Stop);
    assert_eq!(w.intents[0].intent.reason, Reason::OutsideWindow);
    assert_eq!(w.intents[0].outcome(), Outcome::Pending);
    assert!(written(&plan, "ci-alice").pending.is_some());
    assert_eq!(
        plan.requests,
        vec![Request {
            key: key("ci-alice"),
            workspace: cfg.workspaces[0].reference.clone(),
            kind: RequestKind::Power(Action::Stop),
            write: 0,
            intents: vec![0],
            actions: vec![0],
        }]
    );
    assert_eq!(plan.actions[0].outcome, "not_sent");
    assert_eq!(plan.failed, vec!["lab".to_owned()]);
    assert_eq!(
        plan.writes.len(),
        1,
        "nothing is written for a blind workspace"
    );

    // A dry run records the same intent as `dry_run` and sends nothing.
    let dry = Pass {
        dry_run: true,
        ..pass(&cfg, &mem)
    }
    .run(&[alice(InstanceState::Running)], "2026-03-27T18:00:00.500Z");
    assert!(dry.requests.is_empty());
    assert_eq!(dry.writes[0].intents[0].outcome(), Outcome::DryRun);
    assert_eq!(dry.actions[0].outcome, "dry_run");
    assert_eq!(dry.rows, plan.rows, "a dry run shows what a real pass does");
}

#[test]
fn a_pending_request_confirmed_by_the_state_closes_its_row_succeeded() {
    let cfg = config(OFFICE);
    let mem = stopped_at_1900(&cfg);
    let rows = [row(7, "ci-alice", Action::Stop, Some("req-1"))];
    let p = Pass {
        pending: Some(&rows),
        ..pass(&cfg, &mem)
    };
    // Still running a minute later: in flight, nothing closed, nothing sent again.
    let plan = p.run(&[alice(InstanceState::Running)], "2026-03-27T18:01:00Z");
    assert!(plan.writes[0].close.is_empty());
    assert!(plan.requests.is_empty());
    // Stopped: the row is closed as succeeded and the memory forgets the request.
    let plan = p.run(&[alice(InstanceState::Stopped)], "2026-03-27T18:02:00Z");
    assert_eq!(
        plan.writes[0].close,
        vec![Close {
            id: AuditId(7),
            outcome: Outcome::Succeeded,
            error: None,
        }]
    );
    let m = written(&plan, "ci-alice");
    assert_eq!((m.pending, m.failures), (None, 0));
    assert!(plan.requests.is_empty());
}

#[test]
fn a_pending_request_without_effect_for_30_minutes_is_failed_then_retried_once() {
    let cfg = config(OFFICE);
    let mem = stopped_at_1900(&cfg);
    let rows = [row(7, "ci-alice", Action::Stop, Some("req-1"))];
    let p = Pass {
        pending: Some(&rows),
        ..pass(&cfg, &mem)
    };
    let at_29 = p.run(&[alice(InstanceState::Running)], "2026-03-27T18:29:00Z");
    assert!(at_29.writes[0].close.is_empty() && at_29.requests.is_empty());
    let plan = p.run(&[alice(InstanceState::Running)], "2026-03-27T18:31:00Z");
    assert_eq!(
        plan.writes[0].close,
        vec![Close {
            id: AuditId(7),
            outcome: Outcome::Failed,
            error: Some(EXPIRED_ERROR),
        }]
    );
    let m = written(&plan, "ci-alice");
    assert_eq!((m.pending.is_none(), m.failures), (true, 1));
    // After the backoff, the transition is due again: one new request.
    let mem = after(&mem, &plan);
    let retry = pass(&cfg, &mem).run(&[alice(InstanceState::Running)], "2026-03-27T18:33:00Z");
    assert_eq!(retry.requests.len(), 1);
    assert_eq!(retry.requests[0].kind, RequestKind::Power(Action::Stop));
}

#[test]
fn an_intent_written_before_a_crash_and_never_sent_is_closed_failed() {
    let cfg = config(OFFICE);
    let mem = stopped_at_1900(&cfg);
    let never_sent = [row(7, "ci-alice", Action::Stop, None)];
    // The daemon restarted at 18:05: its intent of 18:00 has no request id, the instance
    // shows no operation since and is in no transition.
    let restarted = Pass {
        pending: Some(&never_sent),
        started: "2026-03-27T18:05:00Z",
        ..pass(&cfg, &mem)
    };
    let now = "2026-03-27T18:05:01Z";
    let plan = restarted.run(&[alice(InstanceState::Running)], now);
    assert_eq!(
        plan.writes[0].close,
        vec![Close {
            id: AuditId(7),
            outcome: Outcome::Failed,
            error: Some(NEVER_SENT_ERROR),
        }]
    );
    assert!(written(&plan, "ci-alice").pending.is_none());

    // Every sign that it may have gone out keeps it pending, and nothing is sent.
    let accepted = [row(7, "ci-alice", Action::Stop, Some("req-1"))];
    let mut azure_saw_it = alice(InstanceState::Running);
    azure_saw_it.last_operation = Some(LastOperation {
        kind: OperationKind::Stop,
        at: ts("2026-03-27T18:00:02Z"),
        succeeded: false,
        trigger: OperationTrigger::User,
    });
    let cases: [(&str, Pass<'_>, InstanceObservation); 5] = [
        (
            "accepted (request id)",
            Pass {
                pending: Some(&accepted),
                ..restarted
            },
            alice(InstanceState::Running),
        ),
        ("Azure's lastOperation", Pass { ..restarted }, azure_saw_it),
        (
            "in transition",
            Pass { ..restarted },
            alice(InstanceState::Stopping),
        ),
        (
            "written by this run",
            Pass {
                started: BOOT,
                ..restarted
            },
            alice(InstanceState::Running),
        ),
        (
            "pending rows unreadable",
            Pass {
                pending: None,
                ..restarted
            },
            alice(InstanceState::Running),
        ),
    ];
    for (why, p, o) in cases {
        let plan = p.run(&[o], now);
        assert!(plan.writes[0].close.is_empty(), "{why}");
        assert!(plan.requests.is_empty(), "{why}");
        assert!(written_or_stored(&plan, &mem).pending.is_some(), "{why}");
    }
}

/// The memory of ci-alice after the plan: written, or as stored when unchanged.
fn written_or_stored(
    plan: &PassPlan,
    mem: &BTreeMap<InstanceKey, InstanceMemory>,
) -> InstanceMemory {
    after(mem, plan)[&key("ci-alice")].clone()
}

#[test]
fn native_changes_in_flight_close_when_seen_and_go_once_more_after_expiry() {
    let cfg = config(NATIVE);
    let mem = known();
    let mut o = alice(InstanceState::Running);
    o.native.idle_shutdown = Some("PT15M".into());
    let t0 = "2026-03-27T10:00:00Z";
    let plan = pass(&cfg, &mem).run(std::slice::from_ref(&o), t0);
    let [request] = plan.requests.as_slice() else {
        panic!("one request: {:?}", plan.requests);
    };
    let RequestKind::Native(changes) = &request.kind else {
        panic!("a native request: {request:?}");
    };
    let NativeChange::IdleShutdown { to, .. } = &changes[0] else {
        panic!("{changes:?}");
    };
    assert_eq!(
        plan.writes[0].intents[0].intent.action,
        Action::IdleShutdown
    );
    assert_eq!(plan.writes[0].intents[0].intent.reason, Reason::Native);
    assert!(plan.actions[0].native);
    assert_eq!(written(&plan, "ci-alice").native_pending.len(), 1);

    let mem = after(&mem, &plan);
    let rows = [row(8, "ci-alice", Action::IdleShutdown, Some("req-2"))];
    let p = Pass {
        pending: Some(&rows),
        ..pass(&cfg, &mem)
    };
    // A minute on, still differing: in flight, not sent again.
    let plan = p.run(std::slice::from_ref(&o), "2026-03-27T10:01:00Z");
    assert!(plan.requests.is_empty() && plan.writes[0].close.is_empty());
    assert_eq!(plan.rows[0].native_drift.len(), 1);
    // Seen: closed as succeeded, gone from memory.
    let mut seen = o.clone();
    seen.native.idle_shutdown = Some(to.clone());
    let plan = p.run(&[seen], "2026-03-27T10:02:00Z");
    assert_eq!(
        plan.writes[0].close,
        vec![Close {
            id: AuditId(8),
            outcome: Outcome::Succeeded,
            error: None,
        }]
    );
    assert!(written(&plan, "ci-alice").native_pending.is_empty());
    // Not seen within 10 minutes: closed as failed, and tried once more.
    let plan = p.run(std::slice::from_ref(&o), "2026-03-27T10:10:00Z");
    assert_eq!(
        plan.writes[0].close,
        vec![Close {
            id: AuditId(8),
            outcome: Outcome::Failed,
            error: Some(NATIVE_EXPIRED_ERROR),
        }]
    );
    assert_eq!(plan.requests.len(), 1);
    // A power pending row of the same instance is not the native change's to close.
    let both = [
        row(8, "ci-alice", Action::IdleShutdown, Some("req-2")),
        row(9, "ci-alice", Action::Stop, Some("req-3")),
    ];
    let plan = Pass {
        pending: Some(&both),
        ..p
    }
    .run(&[o.clone()], "2026-03-27T10:10:00Z");
    assert_eq!(plan.writes[0].close.len(), 1);
    assert_eq!(plan.writes[0].close[0].id, AuditId(8));
}

#[test]
fn instances_gone_from_an_observed_workspace_are_forgotten_and_only_those() {
    let cfg = config(OFFICE);
    let mut mem = known();
    mem.insert(key("ci-gone"), InstanceMemory::default());
    mem.insert(
        InstanceKey::new("lab", "ci-blind"),
        InstanceMemory::default(),
    );
    let plan = pass(&cfg, &mem).run(&[alice(InstanceState::Running)], "2026-03-27T12:00:00Z");
    assert_eq!(plan.writes[0].forget, vec![key("ci-gone")]);
    assert_eq!(plan.failed, vec!["lab".to_owned()]);
}

#[test]
fn rows_match_the_decision_of_each_instance_and_unchanged_memory_is_not_rewritten() {
    let cfg = config(OFFICE);
    let mem = known();
    let at = "2026-03-27T12:00:00Z";
    let plan = pass(&cfg, &mem).run(&[alice(InstanceState::Running)], at);
    let engine = Engine::new(&cfg.policies, ts(at));
    let d = engine.decide(&alice(InstanceState::Running), &mem[&key("ci-alice")]);
    assert_eq!(
        plan.rows,
        vec![PlanRow::new(&alice(InstanceState::Running), &d)]
    );
    // A second identical pass writes nothing for the instance.
    let mem = after(&mem, &plan);
    let again = pass(&cfg, &mem).run(&[alice(InstanceState::Running)], at);
    assert!(again.writes[0].is_empty(), "{:?}", again.writes[0]);
}

/// What became of one request in the random runs below.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Accepted: its row gets a request id and stays pending until settled.
    Accepted,
    /// Failed or refused: its row is closed, memory backs off.
    Failed,
    Refused,
    /// The daemon died between the intent and the send, and restarted.
    Crashed,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        Just(Fate::Accepted),
        Just(Fate::Failed),
        Just(Fate::Refused),
        Just(Fate::Crashed),
    ]
}

fn state() -> impl Strategy<Value = InstanceState> {
    prop_oneof![
        Just(InstanceState::Running),
        Just(InstanceState::Stopped),
        Just(InstanceState::Stopping),
        Just(InstanceState::Starting),
        Just(InstanceState::JobRunning),
    ]
}

/// The audit log's pending rows and the memory, carried from pass to pass as the daemon
/// carries them.
struct World {
    cfg: Config,
    memory: BTreeMap<InstanceKey, InstanceMemory>,
    pending: Vec<AuditRecord>,
    next_id: i64,
    started: Timestamp,
    now: Timestamp,
}

impl World {
    /// One pass; fails if a request goes out while an intent of the same kind for the same
    /// instance is still pending.
    fn pass(&mut self, observed: &[InstanceObservation], fate: Fate) -> Result<(), TestCaseError> {
        let obs = [Observed {
            alias: "research",
            instances: Some(observed),
        }];
        let plan = plan_pass(&PassInput {
            cfg: &self.cfg,
            observed: &obs,
            memory: &self.memory,
            pending: Some(&self.pending),
            started: self.started,
            now: self.now,
            dry_run: false,
        });
        let w = &plan.writes[0];
        self.pending
            .retain(|r| !w.close.iter().any(|c| c.id == r.id));
        for req in &plan.requests {
            let same = |r: &&AuditRecord| {
                InstanceKey::new(&r.workspace, &r.instance) == req.key
                    && match &req.kind {
                        RequestKind::Power(_) => !r.action.is_native(),
                        RequestKind::Native(c) => c.iter().any(|c| c.action() == r.action),
                    }
            };
            if let Some(r) = self.pending.iter().find(same) {
                return Err(TestCaseError::fail(format!(
                    "{req:?} sent while {r:?} is pending at {}",
                    self.now
                )));
            }
        }
        self.memory.extend(w.memory.iter().cloned());
        let mut ids = Vec::new();
        for i in &w.intents {
            ids.push(self.next_id);
            if !i.missed {
                let mut r = row(self.next_id, &i.intent.instance, i.intent.action, None);
                r.at = i.intent.at;
                self.pending.push(r);
            }
            self.next_id += 1;
        }
        for req in &plan.requests {
            let audits: Vec<i64> = req.intents.iter().map(|&i| ids[i]).collect();
            let mine = |r: &AuditRecord| audits.contains(&r.id.0);
            match fate {
                Fate::Accepted => self
                    .pending
                    .iter_mut()
                    .filter(|r| mine(r))
                    .for_each(|r| r.request_id = Some("req".into())),
                Fate::Failed | Fate::Refused => {
                    self.pending.retain(|r| !mine(r));
                    if let RequestKind::Power(_) = req.kind {
                        let m = self.memory.entry(req.key.clone()).or_default();
                        match fate {
                            Fate::Failed => m.operation_failed(self.now),
                            _ => m.operation_refused(self.now),
                        }
                    }
                }
                Fate::Crashed => {}
            }
        }
        if matches!(fate, Fate::Crashed) && !plan.requests.is_empty() {
            self.started = self.now + SignedDuration::from_secs(1);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever Azure shows and whatever becomes of each request (accepted, failed,
    /// refused, lost to a crash), no request goes out while an earlier intent for the
    /// same instance and kind is still pending.
    #[test]
    fn a_pending_intent_is_never_sent_twice(
        steps in proptest::collection::vec(
            (1i64..40, state(), state(), proptest::option::of(0usize..3), fate()),
            1..40,
        ),
    ) {
        // Notebooks get the native policy, everything else the office one.
        let notebooks = NATIVE.replace("name = \"native\"", "name = \"native\"\ninstances = [\"nb-*\"]");
        let mut world = World {
            cfg: config(&format!("{notebooks}\n{OFFICE}")),
            memory: known(),
            pending: Vec::new(),
            next_id: 1,
            started: ts(BOOT),
            now: ts("2026-03-27T17:30:00Z"),
        };
        let shutdown = ["PT15M", "PT60M", "PT5M"];
        for (mins, a, b, native, fate) in steps {
            world.now += SignedDuration::from_mins(mins);
            let mut alice = alice(a);
            alice.jupyter = JupyterActivity::Seen { last_activity: None, kernel_busy: false };
            let mut bob = obs("nb-bob", b);
            bob.native.idle_shutdown = native.map(|i| shutdown[i].to_owned());
            world.pass(&[alice, bob], fate)?;
        }
    }
}

/// The agent's view reaches the rows: what it said, how old, and a snooze as the policy's
/// `max_snooze` bounds it; a snoozed instance is not stopped at closing time.
#[test]
fn rows_carry_the_agents_view_and_a_snooze_holds_the_stop() {
    use crate::engine::heartbeat::{BusyReason, Snooze, VERDICT_VERSION, Verdict};
    use crate::engine::model::{AgentActivity, AgentUnknown};
    let cfg = config(&format!(
        "[agent]\naccount = \"mlwstorage\"\n{}",
        OFFICE
            .replace("signals = [\"arm\", \"jupyter\"]\n", "")
            .replace(
                "catch_up = \"1h\"\n",
                "catch_up = \"1h\"\nmax_snooze = \"2h\"\n"
            )
    ));
    let mem = known();
    let mut snoozed = alice(InstanceState::Running);
    snoozed.agent = AgentActivity::Seen(Verdict {
        v: VERDICT_VERSION,
        instance: "ci-alice".into(),
        at: ts("2026-03-27T17:59:30Z"),
        busy: false,
        reasons: Vec::new(),
        last_activity: Some(ts("2026-03-27T17:00:00Z")),
        interval_secs: 60,
        snooze: Some(Snooze {
            at: ts("2026-03-27T17:00:00Z"),
            until: ts("2026-03-28T17:00:00Z"),
            reason: Some("demo\nrun".into()),
            by: Some("azureuser".into()),
        }),
    });
    let mut busy = obs("ci-bob", InstanceState::Running);
    busy.agent = AgentActivity::Seen(Verdict {
        v: VERDICT_VERSION,
        instance: "ci-bob".into(),
        at: ts("2026-03-27T17:59:00Z"),
        busy: true,
        reasons: vec![BusyReason::Gpu],
        last_activity: None,
        interval_secs: 60,
        snooze: None,
    });
    let mut missing = obs("ci-carol", InstanceState::Running);
    missing.agent = AgentActivity::Unknown(AgentUnknown::Missing);
    let plan = pass(&cfg, &mem).run(&[snoozed, busy, missing], "2026-03-27T18:00:00.500Z");
    // Only the instance whose agent is unknown is stopped at closing time
    // (unknown_activity = "proceed"); the snoozed and the busy one are held.
    let stopped: Vec<&str> = plan
        .requests
        .iter()
        .map(|r| r.key.instance.as_str())
        .collect();
    assert_eq!(stopped, ["ci-carol"]);
    let a = plan.rows[0].agent.as_ref().expect("agent view");
    assert_eq!(plan.rows[0].skip, Some("snoozed"));
    assert_eq!(a.heartbeat, "seen");
    assert_eq!(a.heartbeat_age_seconds, Some(30));
    let s = a.snooze.as_ref().expect("snooze");
    assert_eq!(s.until, ts("2026-03-27T19:00:00Z"));
    assert_eq!(s.asked_until, ts("2026-03-28T17:00:00Z"));
    assert_eq!(s.reason.as_deref(), Some("demo\\nrun"));
    assert_eq!(plan.rows[1].skip, Some("busy"));
    assert_eq!(
        plan.rows[1].agent.as_ref().map(|a| a.summary()),
        Some("busy (gpu), heartbeat 1m ago".to_owned())
    );
    let c = plan.rows[2].agent.as_ref().expect("agent view");
    assert_eq!(c.heartbeat, "missing");
    assert_eq!(c.summary(), "heartbeat missing");
    // The snooze ends at max_snooze: the held closing transition is carried out then.
    let mem = after(&mem, &plan);
    let mut later = alice(InstanceState::Running);
    later.agent = AgentActivity::Seen(Verdict {
        v: VERDICT_VERSION,
        instance: "ci-alice".into(),
        at: ts("2026-03-27T19:00:00Z"),
        busy: false,
        reasons: Vec::new(),
        last_activity: Some(ts("2026-03-27T17:00:00Z")),
        interval_secs: 60,
        snooze: None,
    });
    let plan = pass(&cfg, &mem).run(&[later], "2026-03-27T19:00:01Z");
    assert_eq!(plan.requests.len(), 1, "{:?}", plan.rows);
}
