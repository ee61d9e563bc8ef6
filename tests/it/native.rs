//! Native settings (issue 6): Azure ML's own idle shutdown and start/stop schedules kept in
//! line with policy. Pins: drift is reported (`plan`) without writes in report mode and
//! fixed once, audited, in enforce mode; a mirrored policy's native schedules fire, in the
//! emulator, exactly when `lightsout preview` says, across both DST changes; a policy that
//! cannot be mirrored is rejected by `validate`, naming what; with the daemon down, the
//! instances' own idle shutdown and schedules still stop them.

use std::path::{Path, PathBuf};

use azure_ml_emulator::Fleet;
use azure_ml_emulator::machine::{Machine, OpKind, State, Trigger};
use jiff::Timestamp;
use lightsout::engine::preview::{ItemKind, preview};
use lightsout::sim::simulate::{Outage, simulate};
use serde_json::Value;

use crate::support::{ADMIN, EmulatorProcess, FAST, GENEROUS, fleet, run_lightsout, within};

fn policy_config(emu: &EmulatorProcess, policy: &str) -> PathBuf {
    let base = std::fs::read_to_string(emu.config(ADMIN.0)).unwrap();
    let state = emu.dir.path().join("lightsout-state");
    let text = format!(
        "[daemon]\nstate_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n{base}\n{policy}\n",
        state.display()
    );
    let path = emu.dir.path().join("native.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn native_policy(mode: &str) -> String {
    format!(
        r#"
[[policy]]
name = "office"
timezone = "Europe/Paris"
uptime = ["Mon-Fri 08:00-19:00"]

[policy.native]
mode = "{mode}"
idle_shutdown = "30m"
schedules = "mirror"
"#
    )
}

/// The native settings changes sent: one PUT of the whole compute per instance
/// (`PUT@name`), the way Microsoft's current tools change them (`azure::update`).
fn native_posts(calls: &[Value]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c["method"] == "PUT")
        .filter_map(|c| c["path"].as_str())
        .filter(|p| p.contains("/computes/"))
        .map(|p| format!("PUT@{}", p.rsplit('/').next().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn report_mode_shows_drift_and_changes_nothing() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(GENEROUS, FAST, &[("ci-a", "Running")])).await;
        let config = policy_config(&emu, &native_policy("report"));
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        assert!(native_posts(&emu.calls().await).is_empty());
        let plan = emu.run(&config, ADMIN.1, &["plan", "--json"]).await;
        plan.success();
        let rows = plan.json();
        let drift: Vec<&str> = rows[0]["native_drift"]
            .as_array()
            .expect("drift shown")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            drift,
            vec![
                "idle shutdown PT60M -> PT30M",
                "schedules [none] -> [stop at \"0 19 * * 1-5\" (Romance Standard Time)]"
            ]
        );
        // The table shows it too, below the decisions.
        let plan = emu.run(&config, ADMIN.1, &["plan"]).await;
        assert!(
            plan.stdout
                .contains("lab/ci-a: idle shutdown PT60M -> PT30M"),
            "{}",
            plan.stdout
        );
        let audit = emu.run(&config, ADMIN.1, &["audit", "--json"]).await;
        assert_eq!(audit.json().as_array().map(Vec::len), Some(0));
    })
    .await;
}

#[tokio::test]
async fn enforce_mode_fixes_drift_once_and_audits_it() {
    within(120, async {
        let emu = EmulatorProcess::start(&fleet(
            GENEROUS,
            FAST,
            &[("ci-a", "Running"), ("ci-b", "Stopped")],
        ))
        .await;
        let config = policy_config(&emu, &native_policy("enforce"));
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        let mut posts = native_posts(&emu.calls().await);
        posts.sort();
        assert_eq!(
            posts,
            vec!["PUT@ci-a", "PUT@ci-b"],
            "one request per instance carries both settings"
        );
        // The instances now carry the policy's settings.
        let state: Value = emu.state().await;
        let a = &state["workspaces"][0]["instances"][0]["resource"]["properties"]["properties"];
        assert_eq!(a["idleTimeBeforeShutdown"], "PT30M");
        // As Azure returns a schedule (recorded/cli-ml-ci-with-schedules-2023-01): what was
        // sent, plus a service-assigned id, provisioningStatus and the unused trigger as null.
        let mut sched = a["schedules"]["computeStartStop"][0].clone();
        let id = sched.as_object_mut().unwrap().remove("id").unwrap();
        assert!(uuid::Uuid::parse_str(id.as_str().unwrap()).is_ok(), "{id}");
        assert_eq!(
            sched,
            serde_json::json!({"status": "Enabled", "action": "Stop", "triggerType": "Cron",
                "cron": {"expression": "0 19 * * 1-5", "timeZone": "Romance Standard Time"},
                "recurrence": null, "provisioningStatus": "Completed"})
        );
        // Azure accepted each PUT with 201 and an operation to follow (as recorded for an
        // update of an existing compute): the rows are pending until a pass sees the change.
        let audit = emu.run(&config, ADMIN.1, &["audit", "--json"]).await;
        assert!(
            audit.json().as_array().unwrap().iter().all(|r| r["outcome"] == "pending"),
            "{}",
            audit.stdout
        );
        emu.clear_calls().await;
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        assert!(
            native_posts(&emu.calls().await).is_empty(),
            "seen in line: nothing sent again"
        );
        // Audited like any action, reason native.
        let audit = emu.run(&config, ADMIN.1, &["audit", "--json"]).await;
        let records = audit.json();
        let mut seen: Vec<(String, String, String, String)> = records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["instance"].as_str().unwrap().to_owned(),
                    r["action"].as_str().unwrap().to_owned(),
                    r["reason"].as_str().unwrap().to_owned(),
                    r["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        seen.sort();
        let want = |i: &str, a: &str| {
            (
                i.to_owned(),
                a.to_owned(),
                "native".to_owned(),
                "succeeded".to_owned(),
            )
        };
        assert_eq!(
            seen,
            vec![
                want("ci-a", "idle_shutdown"),
                want("ci-a", "schedules"),
                want("ci-b", "idle_shutdown"),
                want("ci-b", "schedules"),
            ]
        );
        // Idempotent: a second pass sends nothing, and plan shows no drift.
        emu.clear_calls().await;
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        assert!(native_posts(&emu.calls().await).is_empty());
        let plan = emu.run(&config, ADMIN.1, &["plan", "--json"]).await;
        assert!(
            plan.json()
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r.get("native_drift").is_none()),
            "{}",
            plan.stdout
        );
        // Someone changes an instance by hand (the preview-only call, as the VS Code
        // extension may): the next pass puts it back, once.
        emu.http
            .post(format!(
                "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}/computes/ci-a/updateIdleShutdownSetting?api-version=2024-10-01-preview",
                emu.ready.endpoint,
                crate::support::SUB,
                crate::support::RG,
                crate::support::WS
            ))
            .bearer_auth(token(&emu).await)
            .json(&serde_json::json!({"idleTimeBeforeShutdown": "PT180M"}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        emu.clear_calls().await;
        emu.run(&config, ADMIN.1, &["run", "--once"])
            .await
            .success();
        assert_eq!(native_posts(&emu.calls().await), vec!["PUT@ci-a"]);
    })
    .await;
}

/// A token for the admin principal from the emulator's Entra ID endpoint.
async fn token(emu: &EmulatorProcess) -> String {
    let r: Value = emu
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.ready.endpoint, emu.ready.tenant_id
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", ADMIN.0)
                .append_pair("client_secret", ADMIN.1)
                .append_pair("scope", "https://management.azure.com/.default")
                .finish(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn validate_rejects_a_policy_that_cannot_be_mirrored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"[[policy]]
name = "xmas"
timezone = "Europe/Paris"
uptime = ["Mon-Fri 08:00-19:00"]
holidays = ["2026-12-25"]

[[policy.event]]
cron = "0 3 * * Sun"
action = "restart"

[policy.native]
mode = "enforce"
schedules = "mirror"
idle_shutdown = "5m"
"#,
    )
    .unwrap();
    let run = run_lightsout(&["validate", "--config", path.to_str().unwrap()], None, &[]).await;
    run.code(78);
    let err = &run.stderr;
    for needle in [
        "bad.toml:13:13: policy[0] (xmas).native.schedules: policy cannot be mirrored: holidays (1) cannot be mirrored",
        "policy[0] (xmas).native.schedules: policy cannot be mirrored: event \"0 3 * * Sun\" (restart) cannot be mirrored: Azure schedules only start or stop",
        "bad.toml:14:17: policy[0] (xmas).native.idle_shutdown: Azure accepts 15m to 3days, got \"5m\"",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in\n{err}");
    }
    // Mode off: nothing is mirrored, so the same policy is fine.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("mode = \"enforce\"", "mode = \"off\"")
        .replace("\"5m\"", "\"45m\"");
    std::fs::write(&path, text).unwrap();
    run_lightsout(&["validate", "--config", path.to_str().unwrap()], None, &[])
        .await
        .success();
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The emulator's schedule firings (a machine carrying the mirrored schedules, stepped in
/// virtual time) against `preview` for the same policy, over `from..to`.
fn firings_match_preview(policy_toml: &str, from: &str, to: &str) -> usize {
    let (cfg, _) = lightsout::engine::config::parse(policy_toml, Path::new("p.toml")).unwrap();
    let policy = &cfg.policies[0];
    let schedules = policy.native.schedules.clone().expect("mirrored");
    // Through the wire body and the emulator's own reading of it.
    let body = serde_json::to_value(lightsout::azure::convert::schedules_body(&schedules)).unwrap();
    let rules: Vec<_> = body["computeStartStop"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| azure_ml_emulator::state::native_rule(v).unwrap().unwrap())
        .collect();
    let (from, to) = (ts(from), ts(to));
    let state = match policy.schedule.desired_at(from) {
        Some(lightsout::engine::schedule::Desired::Up) => State::Running,
        _ => State::Stopped,
    };
    let mut m = Machine::new(state, from, Some(from));
    m.native.schedules = rules;
    m.native.start_takes = std::time::Duration::from_secs(2);
    m.native.stop_takes = std::time::Duration::from_secs(2);
    let mut fired: Vec<(Timestamp, &'static str)> = Vec::new();
    let mut now = from;
    while now < to {
        now = now
            .checked_add(jiff::SignedDuration::from_mins(10))
            .unwrap()
            .min(to);
        m.settle(now);
        if let Some(lo) = &m.last_operation
            && lo.trigger == Trigger::Schedule
            && fired.last().map(|(t, _)| *t) != Some(lo.time)
        {
            fired.push((
                lo.time,
                if lo.kind == OpKind::Start {
                    "up"
                } else {
                    "down"
                },
            ));
        }
    }
    let expected: Vec<(Timestamp, &'static str)> = preview(policy, from, to)
        .into_iter()
        .filter_map(|i| match i.kind {
            ItemKind::Transition { to } => Some((i.at, if to == "up" { "up" } else { "down" })),
            _ => None,
        })
        .collect();
    assert_eq!(fired, expected);
    fired.len()
}

const ACROSS_DST: &str = r#"
[[policy]]
name = "dst"
timezone = "Europe/Paris"
start = "window"
uptime = ["Mon-Fri 08:00-19:00", "Sat 22:00-02:30"]

[policy.native]
mode = "enforce"
schedules = "mirror"
"#;

#[test]
fn mirrored_schedules_fire_when_preview_says_across_dst_changes() {
    // Spring: Sunday 2026-03-29 02:00 -> 03:00 in Paris; the Saturday window closes at
    // 02:30, which does not exist that night and moves to 03:30 (+02:00).
    let n = firings_match_preview(ACROSS_DST, "2026-03-25T00:00:00Z", "2026-04-02T00:00:00Z");
    assert!(n >= 14, "{n}");
    // Autumn: Sunday 2026-10-25 03:00 -> 02:00; 02:30 happens twice, the first counts.
    let n = firings_match_preview(ACROSS_DST, "2026-10-21T00:00:00Z", "2026-10-29T00:00:00Z");
    assert!(n >= 14, "{n}");
    // And a zone on the other side of the world (Sydney's April change).
    let sydney = ACROSS_DST.replace("Europe/Paris", "Australia/Sydney");
    firings_match_preview(&sydney, "2026-04-01T00:00:00Z", "2026-04-09T00:00:00Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_daemon_down_native_settings_still_stop_instances() {
    // Monday 2026-03-30 09:00 Paris. The daemon makes one pass (enforcing the native
    // settings), then is down for a day. No [policy.idle]: lightsout itself never idles
    // anything out, and it is down when the window closes.
    let config = r#"
[[policy]]
name = "office"
timezone = "Europe/Paris"
uptime = ["Mon-Fri 08:00-19:00"]

[policy.native]
mode = "enforce"
idle_shutdown = "30m"
schedules = "mirror"
"#;
    let fleet_text = format!(
        "{}\n[[workspace.instance.activity]]\nkind = \"kernel\"\nfrom = \"2026-03-30T07:00:00Z\"\nto = \"2026-03-30T16:50:00Z\"\n",
        r#"tenant_id = "00000000-0000-0000-0000-0000000000aa"

[[principal]]
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = "s3cret"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]

[[workspace]]
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "testrg123"
name = "workspaces123"
location = "eastus2"

[[workspace.instance]]
name = "ci-idle"
vm_size = "Standard_DS3_v2"
state = "Running"
started_at = "2026-03-30T06:50:00Z"
last_activity = "2026-03-30T07:00:00Z"
idle_time_before_shutdown = "PT180M"

[[workspace.instance]]
name = "ci-late"
vm_size = "Standard_DS3_v2"
state = "Running"
started_at = "2026-03-30T06:50:00Z"
last_activity = "2026-03-30T07:00:00Z"
"#
    );
    let cfg_text = format!(
        "[[workspace]]\nname = \"lab\"\nsubscription_id = \"34adfa4f-cedf-4dc0-ba29-b6d1a69ab345\"\nresource_group = \"testrg123\"\nworkspace = \"workspaces123\"\n{config}"
    );
    let (cfg, _) = lightsout::engine::config::parse(&cfg_text, Path::new("c.toml")).unwrap();
    let fleet = Fleet::from_toml_str(&fleet_text, "fleet.toml").unwrap();
    let from = ts("2026-03-30T07:00:00Z");
    let to = ts("2026-03-31T07:00:00Z");
    let outage = Outage {
        from: ts("2026-03-30T07:00:30Z"),
        to,
    };
    let sim = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        simulate(cfg, fleet, from, to, &[outage]),
    )
    .await
    .unwrap()
    .unwrap();
    // The one pass set both instances' native settings (and did nothing else).
    let mut acts: Vec<(String, &str, &str)> = sim
        .actions
        .iter()
        .map(|a| (a.instance.clone(), a.action.as_str(), a.reason.as_str()))
        .collect();
    acts.sort();
    assert_eq!(
        acts,
        vec![
            ("ci-idle".to_owned(), "idle_shutdown", "native"),
            ("ci-idle".to_owned(), "schedules", "native"),
            ("ci-late".to_owned(), "idle_shutdown", "native"),
            ("ci-late".to_owned(), "schedules", "native"),
        ]
    );
    let instances = sim.final_state["workspaces"][0]["instances"]
        .as_array()
        .unwrap()
        .clone();
    let last = |name: &str| {
        let i = instances.iter().find(|i| i["name"] == name).unwrap();
        let op = &i["resource"]["properties"]["properties"]["lastOperation"];
        (
            i["state"].as_str().unwrap().to_owned(),
            op["operationName"].as_str().unwrap().to_owned(),
            op["operationTrigger"].as_str().unwrap().to_owned(),
            op["operationTime"].as_str().unwrap().to_owned(),
        )
    };
    // ci-idle: no activity since 07:00Z, idle shutdown 30 minutes: stopped itself at 07:30Z.
    // operationTime in ARM's millisecond form, trailing zeros dropped (recorded
    // "…09:05:40.468+00:00"; a whole second has no fraction).
    assert_eq!(
        last("ci-idle"),
        (
            "Stopped".to_owned(),
            "Stop".to_owned(),
            "IdleShutdown".to_owned(),
            "2026-03-30T07:30:00+00:00".to_owned()
        )
    );
    // ci-late: a kernel busy until 16:50Z; the mirrored 19:00 Paris (17:00Z) stop comes
    // before the idle shutdown (17:20Z).
    assert_eq!(
        last("ci-late"),
        (
            "Stopped".to_owned(),
            "Stop".to_owned(),
            "Schedule".to_owned(),
            "2026-03-30T17:00:00+00:00".to_owned()
        )
    );
}
