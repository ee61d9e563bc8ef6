//! Wire shapes into the engine's vocabulary. Pure.
//!
//! Lenient like the wire types: a compute that is not a compute instance, or whose name
//! breaks Azure's naming rules (it would go into URL paths), is skipped, an
//! unknown state is kept as `Other` (which the engine treats as "wait"), an unparsable
//! `lastOperation` time drops the last operation rather than the instance.

use url::Url;

use super::wire::{self, ComputeResource};
use crate::engine::model::{
    InstanceObservation, InstanceState, JupyterActivity, LastOperation, OperationKind,
    OperationTrigger,
};
use crate::engine::native::types::{NativeObserved, NativeSchedule, PowerAction, normalise_cron};

/// The engine's view of one compute, or `None` if it is not a compute instance.
pub fn instance_observation(
    workspace_alias: &str,
    r: &ComputeResource,
) -> Option<InstanceObservation> {
    let props = r.instance()?;
    let name = r.name.clone().or_else(|| {
        r.id.as_deref()
            .and_then(|id| id.rsplit('/').next())
            .map(str::to_owned)
    })?;
    // The name goes into the URL of every action on it: one that Azure's rules do not allow
    // (only a broken or hostile ARM could send it) is left alone, never acted on.
    if let Err(e) = crate::engine::names::check_instance(&name) {
        tracing::warn!(workspace = workspace_alias, error = %crate::engine::text::chain(&e), "skipping a compute instance whose name is outside Azure's rules");
        return None;
    }
    let state = props.state.as_ref().map_or(InstanceState::Unknown, |s| {
        InstanceState::from_azure(s.as_str())
    });
    Some(InstanceObservation {
        workspace: workspace_alias.to_owned(),
        name,
        state,
        vm_size: props.vm_size.clone().unwrap_or_default(),
        tags: r.tags.clone().unwrap_or_default(),
        last_operation: props.last_operation.as_ref().and_then(last_operation),
        jupyter: JupyterActivity::NotObserved,
        agent: crate::engine::model::AgentActivity::NotObserved,
        native: native_observed(props),
    })
}

/// The instance's own idle shutdown and schedules. Enabled cron schedules are kept as
/// [`NativeSchedule`]s; any other schedule (recurrence, disabled, unreadable) is described,
/// so that a policy that mirrors schedules sees it as a difference.
fn native_observed(props: &wire::ComputeInstanceProperties) -> NativeObserved {
    let mut out = NativeObserved {
        idle_shutdown: props.idle_time_before_shutdown.clone(),
        ..NativeObserved::default()
    };
    let list = props
        .schedules
        .as_ref()
        .and_then(|s| s.compute_start_stop.as_deref())
        .unwrap_or_default();
    for s in list {
        let action = s
            .action
            .as_ref()
            .and_then(|a| PowerAction::parse(a.as_str()));
        let enabled = !matches!(s.status, Some(wire::ScheduleStatus::Disabled));
        let cron = s
            .cron
            .as_ref()
            .filter(|_| matches!(s.trigger_type, Some(wire::TriggerType::Cron) | None));
        match (action, enabled, cron) {
            (Some(action), true, Some(c)) if c.expression.is_some() => {
                out.schedules.push(NativeSchedule {
                    action,
                    cron: normalise_cron(c.expression.as_deref().unwrap_or_default()),
                    time_zone: c.time_zone.clone().unwrap_or_else(|| "UTC".to_owned()),
                });
            }
            _ => out.other_schedules.push(format!(
                "{} {} schedule ({})",
                if enabled { "enabled" } else { "disabled" },
                s.trigger_type
                    .as_ref()
                    .map_or("untyped", |t| t.as_str())
                    .to_ascii_lowercase(),
                s.action.as_ref().map_or("no action", |a| a.as_str())
            )),
        }
    }
    out
}

/// The `schedules` of a compute that sets exactly `schedules` (enabled cron triggers).
pub fn schedules_body(schedules: &[NativeSchedule]) -> wire::ComputeSchedules {
    wire::ComputeSchedules {
        compute_start_stop: Some(
            schedules
                .iter()
                .map(|s| wire::ComputeStartStopSchedule {
                    status: Some(wire::ScheduleStatus::Enabled),
                    action: Some(wire::ComputePowerAction::from(s.action.as_str())),
                    trigger_type: Some(wire::TriggerType::Cron),
                    cron: Some(wire::CronTrigger {
                        expression: Some(s.cron.clone()),
                        start_time: None,
                        time_zone: Some(s.time_zone.clone()),
                    }),
                    ..wire::ComputeStartStopSchedule::default()
                })
                .collect(),
        ),
    }
}

fn last_operation(op: &wire::LastOperation) -> Option<LastOperation> {
    let at = op
        .operation_time
        .as_deref()?
        .parse::<jiff::Timestamp>()
        .ok()?;
    let kind = match op.operation_name.as_ref()? {
        wire::OperationName::Create => OperationKind::Create,
        wire::OperationName::Start => OperationKind::Start,
        wire::OperationName::Stop => OperationKind::Stop,
        wire::OperationName::Restart => OperationKind::Restart,
        wire::OperationName::Reimage => OperationKind::Reimage,
        wire::OperationName::Delete => OperationKind::Delete,
        other => OperationKind::Other(other.as_str().to_owned()),
    };
    let trigger = match op.operation_trigger.as_ref() {
        Some(wire::OperationTrigger::User) => OperationTrigger::User,
        Some(wire::OperationTrigger::Schedule) => OperationTrigger::Schedule,
        Some(wire::OperationTrigger::IdleShutdown) => OperationTrigger::IdleShutdown,
        Some(other) => OperationTrigger::Other(other.as_str().to_owned()),
        None => OperationTrigger::Other(String::new()),
    };
    Some(LastOperation {
        kind,
        at,
        succeeded: matches!(op.operation_status, Some(wire::OperationStatus::Succeeded)),
        trigger,
    })
}

/// Base URL of the instance's Jupyter Server API (ends with `/`), from its `applications`:
/// the Jupyter or JupyterLab URL without its trailing `tree`/`lab` page.
pub fn jupyter_base(r: &ComputeResource) -> Option<Url> {
    let apps = r.instance()?.applications.as_ref()?;
    let app = apps
        .iter()
        .find(|a| a.display_name.as_deref().is_some_and(is_jupyter_app))?;
    let mut url = Url::parse(app.endpoint_uri.as_deref()?).ok()?;
    let path = url.path().trim_end_matches('/');
    let base = path
        .strip_suffix("/tree")
        .or_else(|| path.strip_suffix("/lab"))
        .unwrap_or(path)
        .to_owned();
    url.set_path(&format!("{base}/"));
    url.set_query(None);
    Some(url)
}

/// "Jupyter", "JupyterLab", or "Jupyter Lab" as real ARM spells it (with a space:
/// `recorded/real-get-running-2024-12.body.json`), in any case.
fn is_jupyter_app(display_name: &str) -> bool {
    let squeezed: String = display_name
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    squeezed == "jupyter" || squeezed == "jupyterlab"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> ComputeResource {
        let full = format!("{}/tests/fixtures/azure/{path}", env!("CARGO_MANIFEST_DIR"));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap();
        serde_json::from_value(doc["responses"]["200"]["body"].clone()).unwrap()
    }

    #[test]
    fn compute_instance_fixture_converts() {
        let r = fixture("2025-12-01/Compute/get/ComputeInstance.json");
        let o = instance_observation("research", &r).unwrap();
        assert_eq!(o.name, "compute123");
        assert_eq!(o.state, InstanceState::Running);
        assert_eq!(o.vm_size, "STANDARD_NC6");
        assert_eq!(o.workspace, "research");
        assert_eq!(
            jupyter_base(&r).unwrap().as_str(),
            "https://compute123.eastus2.azureml.net/jupyter/"
        );
    }

    #[test]
    fn native_settings_are_read_from_the_schedules_fixture() {
        let full = format!(
            "{}/tests/fixtures/azure/2025-12-01/Compute/createOrUpdate/ComputeInstanceWithSchedules.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap();
        let mut r: ComputeResource =
            serde_json::from_value(doc["parameters"]["parameters"].clone()).unwrap();
        r.name = Some("compute123".into());
        let o = instance_observation("research", &r).unwrap();
        assert_eq!(
            o.native.schedules,
            vec![NativeSchedule {
                action: PowerAction::Stop,
                cron: "0 18 * * *".into(),
                time_zone: "Pacific Standard Time".into()
            }]
        );
        assert!(o.native.other_schedules.is_empty());
        // And the body we send has the fixture's shape (without the start time).
        let body = serde_json::to_value(schedules_body(&o.native.schedules)).unwrap();
        let mut want =
            doc["parameters"]["parameters"]["properties"]["properties"]["schedules"].clone();
        want["computeStartStop"][0]["cron"]
            .as_object_mut()
            .unwrap()
            .remove("startTime");
        assert_eq!(body, want);
    }

    #[test]
    fn recurrence_schedules_are_described_not_dropped() {
        let r: ComputeResource = serde_json::from_value(serde_json::json!({
            "name": "ci-x",
            "properties": {"computeType": "ComputeInstance", "properties": {
                "state": "Running", "idleTimeBeforeShutdown": "PT60M",
                "schedules": {"computeStartStop": [{"status": "Enabled", "action": "Start",
                    "triggerType": "Recurrence", "recurrence": {"frequency": "Day", "interval": 1}}]}
            }}
        }))
        .unwrap();
        let o = instance_observation("a", &r).unwrap();
        assert_eq!(o.native.idle_shutdown.as_deref(), Some("PT60M"));
        assert!(o.native.schedules.is_empty());
        assert_eq!(
            o.native.other_schedules,
            vec!["enabled recurrence schedule (Start)"]
        );
    }

    #[test]
    fn instances_named_outside_azure_rules_are_skipped() {
        let mut r = fixture("2025-12-01/Compute/get/ComputeInstance.json");
        for bad in ["victim/start?x=", "ab", "ci\u{1b}[2J", "../x"] {
            r.name = Some(bad.into());
            assert!(instance_observation("research", &r).is_none(), "{bad:?}");
        }
        r.name = Some("ci-ok".into());
        assert!(instance_observation("research", &r).is_some());
    }

    #[test]
    fn other_compute_types_are_skipped() {
        let r = fixture("2025-12-01/Compute/get/AKSCompute.json");
        assert!(instance_observation("research", &r).is_none());
    }

    #[test]
    fn unknown_state_and_last_operation() {
        let r: ComputeResource = serde_json::from_value(serde_json::json!({
            "name": "ci-x",
            "tags": {"lightsout": "off"},
            "properties": {"computeType": "ComputeInstance", "properties": {
                "state": "Hibernating", "vmSize": "Standard_DS3_v2",
                "lastOperation": {"operationName": "Start", "operationTime": "2026-03-27T08:00:00Z",
                                  "operationStatus": "Succeeded", "operationTrigger": "Schedule"},
                "applications": [{"displayName": "Jupyter", "endpointUri": "https://127.0.0.1:8443/instances/w/ci-x/tree/"}]
            }}
        }))
        .unwrap();
        let o = instance_observation("a", &r).unwrap();
        assert_eq!(o.state, InstanceState::Other("Hibernating".into()));
        assert!(o.state.is_transitional());
        assert!(o.excluded());
        let op = o.last_operation.unwrap();
        assert_eq!(
            (op.kind, op.succeeded, op.trigger),
            (OperationKind::Start, true, OperationTrigger::Schedule)
        );
        assert_eq!(
            jupyter_base(&r).unwrap().as_str(),
            "https://127.0.0.1:8443/instances/w/ci-x/"
        );
    }

    fn recorded(name: &str) -> serde_json::Value {
        let full = format!(
            "{}/tests/fixtures/azure/recorded/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
    }

    #[test]
    fn jupyter_lab_with_a_space_is_found() {
        assert!(is_jupyter_app("Jupyter Lab"));
        assert!(is_jupyter_app("jupyterlab"));
        assert!(is_jupyter_app(" Jupyter "));
        assert!(!is_jupyter_app("RStudio"));
        assert!(!is_jupyter_app("VS Code"));
        // The recorded GET has "Jupyter" then "Jupyter Lab"; without "Jupyter", the lab
        // entry alone must still give the base URL.
        let mut doc = recorded("real-get-running-2024-12.body.json");
        let r: ComputeResource = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(
            jupyter_base(&r).unwrap().as_str(),
            "https://test72249821874.westus.instances.azureml.ms/"
        );
        let apps = doc["properties"]["properties"]["applications"]
            .as_array_mut()
            .unwrap();
        apps.retain(|a| a["displayName"] == "Jupyter Lab");
        assert_eq!(apps.len(), 1);
        let r: ComputeResource = serde_json::from_value(doc).unwrap();
        assert_eq!(
            jupyter_base(&r).unwrap().as_str(),
            "https://test72249821874.westus.instances.azureml.ms/"
        );
    }

    #[test]
    fn jupyter_base_of_every_recorded_list_instance() {
        let doc = recorded("real-list-2022-03.body.json");
        let list: wire::ComputeList = serde_json::from_value(doc).unwrap();
        let bases: Vec<_> = list
            .value
            .iter()
            .filter(|r| r.instance().is_some())
            .map(|r| jupyter_base(r).map(|u| u.to_string()))
            .collect();
        assert_eq!(
            bases,
            vec![
                Some("https://testcomp007ci3.eastus.instances.azureml.ms/".to_owned()),
                Some("https://testcomp007ci4.eastus.instances.azureml.ms/".to_owned()),
            ]
        );
    }
}
