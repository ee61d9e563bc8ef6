//! Changing an existing compute instance's idle shutdown and schedules: the PUT body.
//!
//! Pure. How Microsoft's current tools do it (evidence, December 2026):
//! - azure-ai-ml 1.35 (`ComputeOperations.begin_update`) and `az ml compute update` (a GET,
//!   a merge, then the same call) send the whole compute again:
//!   `PUT …/computes/{name}?api-version=2023-08-01-preview` with
//!   `properties.properties.idleTimeBeforeShutdown` and
//!   `properties.properties.schedules.computeStartStop` (Azure/azure-sdk-for-python
//!   `sdk/ml/azure-ai-ml/azure/ai/ml/operations/_compute_operations.py`; `_ml_client.py`
//!   pins computes to 2023-08-01-preview; Azure/azure-cli-extensions
//!   `src/machinelearningservices/azext_mlv2/manual/custom/compute.py`).
//! - Neither has `updateIdleShutdownSetting` or `updateSchedules`: the first was removed from
//!   the 2023-04-01 stable spec before release ("a stop gap measure"; azure-rest-api-specs PR
//!   #23042) and lives only in preview specs; the second appears only as a 2021-07-01
//!   example. PATCH of a compute carries AmlCompute scale settings only.
//! - A field left out of the PUT is reset: the ML CLI 2.39.0 changelog fixes "compute update
//!   which caused Enable SSO property to reset". So the body is the compute as last read,
//!   with only the read-only parts taken out and the one setting changed.
//!
//! Doubt: no public recording shows this PUT on an existing compute *instance* (one shows it
//! on an existing AmlCompute, answered 201 with `Azure-AsyncOperation`), and
//! MicrosoftDocs/azure-docs#80695 reports that redeploying an instance's schedules through
//! an ARM template failed. Notes: `/work/notes/native-research.md` in the session that
//! made this (summarised in docs/operations.md).

use serde_json::{Map, Value};

/// The api-version Microsoft's current client uses for computes (azure-ai-ml 1.35
/// `_ml_client.py`), and the version of the real recordings of 2024
/// (`tests/fixtures/azure/recorded/py-ml-stop-2024-12-signed-ao.excerpt.json`).
pub const UPDATE_API_VERSION: &str = "2023-08-01-preview";

/// Top-level keys ARM fills in and a PUT does not carry.
const READ_ONLY_TOP: &[&str] = &["id", "name", "type", "systemData", "etag"];
/// `properties` keys the service fills in (2023-08-01-preview `Compute`).
const READ_ONLY_PROPS: &[&str] = &[
    "provisioningState",
    "createdOn",
    "modifiedOn",
    "provisioningErrors",
    "provisioningWarnings",
    "isAttachedCompute",
    "computeLocation",
];
/// `properties.properties` keys the service fills in (2023-08-01-preview
/// `ComputeInstanceProperties`, every one marked `readOnly` there).
const READ_ONLY_INSTANCE: &[&str] = &[
    "connectivityEndpoints",
    "applications",
    "createdBy",
    "errors",
    "state",
    "lastOperation",
    "containers",
    "dataDisks",
    "dataMounts",
    "versions",
    "osImageMetadata",
    "updateStatus",
];
/// Keys of one schedule the service fills in (recorded:
/// `real-get-with-schedules-2023-01.body.json` adds `id` and `provisioningStatus`).
const READ_ONLY_SCHEDULE: &[&str] = &["id", "provisioningStatus"];

/// What to change; `None` leaves a setting as it is. Both go in one request: two PUTs of
/// the same compute sent together would each carry the other's old value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NativeSetting {
    /// `idleTimeBeforeShutdown`, ISO 8601 (`PT60M`).
    pub idle_shutdown: Option<String>,
    /// `schedules` (`{"computeStartStop": [...]}`), replacing every schedule.
    pub schedules: Option<Value>,
}

impl NativeSetting {
    /// Only the idle shutdown.
    pub fn idle(iso: &str) -> NativeSetting {
        NativeSetting {
            idle_shutdown: Some(iso.to_owned()),
            schedules: None,
        }
    }

    /// Only the schedules.
    pub fn schedules(schedules: Value) -> NativeSetting {
        NativeSetting {
            idle_shutdown: None,
            schedules: Some(schedules),
        }
    }
}

/// The PUT body that changes the given settings of the compute `current` (its GET body)
/// and keeps everything else as it was. Errors say why the GET body cannot be used.
pub fn put_body(current: &Value, setting: &NativeSetting) -> Result<Value, String> {
    let mut body = current.clone();
    let top = body
        .as_object_mut()
        .ok_or("the compute is not a JSON object")?;
    for k in READ_ONLY_TOP {
        top.remove(*k);
    }
    let props = object(top, "properties")?;
    match props.get("computeType").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("ComputeInstance") => {}
        other => return Err(format!("not a compute instance (computeType {other:?})")),
    }
    for k in READ_ONLY_PROPS {
        props.remove(*k);
    }
    let instance = object(props, "properties")?;
    for k in READ_ONLY_INSTANCE {
        instance.remove(*k);
    }
    // Schedules already there go back without their read-only keys, unless replaced.
    if let Some(list) = instance
        .get_mut("schedules")
        .and_then(|s| s.get_mut("computeStartStop"))
        .and_then(Value::as_array_mut)
    {
        for s in list.iter_mut().filter_map(Value::as_object_mut) {
            for k in READ_ONLY_SCHEDULE {
                s.remove(*k);
            }
        }
    }
    if let Some(iso) = &setting.idle_shutdown {
        instance.insert("idleTimeBeforeShutdown".into(), Value::from(iso.as_str()));
    }
    if let Some(s) = &setting.schedules {
        instance.insert("schedules".into(), s.clone());
    }
    Ok(body)
}

/// `map[key]` as an object (created empty when absent or null).
fn object<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    let slot = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| format!("`{key}` is not an object"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recorded(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/azure/recorded/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The recorded running instance of 2024: the idle time changes, every writable key
    /// stays exactly as read, and nothing read-only goes back.
    #[test]
    fn idle_change_keeps_every_writable_key_of_the_recorded_instance() {
        let get = recorded("real-get-running-2024-12.body.json");
        let body = put_body(&get, &NativeSetting::idle("PT45M")).unwrap();
        let inst = &body["properties"]["properties"];
        assert_eq!(inst["idleTimeBeforeShutdown"], "PT45M");
        for k in READ_ONLY_INSTANCE {
            assert!(inst.get(*k).is_none(), "{k} sent back");
        }
        for k in READ_ONLY_TOP {
            assert!(body.get(*k).is_none(), "{k} sent back");
        }
        assert!(body["properties"].get("provisioningState").is_none());
        // Every other key of the GET is in the PUT, with its value.
        let (got, sent) = (
            get["properties"]["properties"].as_object().unwrap(),
            inst.as_object().unwrap(),
        );
        for (k, v) in got {
            if READ_ONLY_INSTANCE.contains(&k.as_str()) || k == "idleTimeBeforeShutdown" {
                continue;
            }
            assert_eq!(sent.get(k), Some(v), "{k} changed or lost");
        }
        assert_eq!(body["location"], get["location"]);
        assert_eq!(body["properties"]["computeType"], "ComputeInstance");
    }

    /// The recorded instance with schedules: replacing them sends the new list only; keeping
    /// them (an idle change) sends them back without `id` and `provisioningStatus`.
    #[test]
    fn schedules_are_replaced_or_sent_back_without_read_only_keys() {
        let get = recorded("real-get-with-schedules-2023-01.body.json");
        assert!(
            get["properties"]["properties"]["schedules"]["computeStartStop"][0]
                .get("id")
                .is_some(),
            "the recording has schedule ids"
        );
        let idle = put_body(&get, &NativeSetting::idle("PT60M")).unwrap();
        for s in idle["properties"]["properties"]["schedules"]["computeStartStop"]
            .as_array()
            .unwrap()
        {
            assert!(s.get("id").is_none() && s.get("provisioningStatus").is_none());
            assert!(s.get("action").is_some());
        }
        let new = json!({"computeStartStop": [{"status": "Enabled", "action": "Stop",
            "triggerType": "Cron", "cron": {"expression": "0 19 * * 1-5", "timeZone": "Romance Standard Time"}}]});
        let body = put_body(&get, &NativeSetting::schedules(new.clone())).unwrap();
        assert_eq!(body["properties"]["properties"]["schedules"], new);
        assert_eq!(
            body["properties"]["properties"]["idleTimeBeforeShutdown"],
            get["properties"]["properties"]["idleTimeBeforeShutdown"]
        );
    }

    #[test]
    fn only_a_compute_instance_is_changed() {
        let list = recorded("real-list-2022-03.body.json");
        let aml = list["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["properties"]["computeType"] == "AmlCompute")
            .unwrap();
        let e = put_body(aml, &NativeSetting::idle("PT60M")).unwrap_err();
        assert!(e.contains("not a compute instance"), "{e}");
        assert!(put_body(&json!([1]), &NativeSetting::idle("PT60M")).is_err());
        assert!(
            put_body(
                &json!({"properties": {"computeType": "ComputeInstance", "properties": 3}}),
                &NativeSetting::idle("PT60M")
            )
            .is_err()
        );
    }
}
