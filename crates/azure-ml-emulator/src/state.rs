//! The emulator's shared state: instances, operations, tokens, buckets, faults, call log.
//!
//! One `std::sync::Mutex` guards everything mutable; handlers lock it briefly and never
//! across an `.await`. Instances are settled lazily: [`Inner::settle`] applies every
//! operation whose end has passed on the emulator clock before anything reads state.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::bucket::TokenBucket;
use super::clock::Clock;
use super::cron::NativeCron;
use super::fleet::{Fleet, InstanceSpec, Principal, Workspace};
use super::machine::{Machine, NativeRule, NativeSettings, OpKind, State};
use super::zones;

/// Most calls the call log keeps; older ones are dropped first.
const MAX_CALLS: usize = 100_000;
/// The OS image version every emulated instance reports.
const OS_IMAGE_VERSION: &str = "25.03.10";
/// The runtime version every emulated instance reports (recorded form "3.0.02853.0001").
const RUNTIME_VERSION: &str = "3.0.02853.0001";

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    /// The fleet as loaded.
    pub fleet: Fleet,
    /// `https://127.0.0.1:PORT` (or `http://`).
    pub endpoint: String,
    /// Emulator clock.
    pub clock: Clock,
    /// Compute list page size.
    pub page_size: usize,
    /// Signs and checks operation-status URLs (key held for this run).
    pub signer: super::opurl::Signer,
    /// Mutable state.
    pub inner: Mutex<Inner>,
}

impl Shared {
    /// Locks the mutable state, tolerating poisoning (a panicking handler must not wedge
    /// every later request).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Principal by client id (case-insensitive).
    pub fn principal(&self, client_id: &str) -> Option<(usize, &Principal)> {
        self.fleet
            .principals
            .iter()
            .enumerate()
            .find(|(_, p)| p.client_id.eq_ignore_ascii_case(client_id))
    }
}

/// Fault injection settings (`POST /_emulator/faults`). Rates are probabilities in 0..=1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Share of ARM requests answered with one of `statuses`.
    pub error_rate: f64,
    /// Statuses for injected errors (default 500 and 503).
    pub statuses: Vec<u16>,
    /// Share of ARM requests answered 429.
    pub throttle_rate: f64,
    /// Share of ARM requests whose connection is dropped without a response.
    pub reset_rate: f64,
    /// Delay added to every ARM request, in milliseconds.
    pub latency_ms: u64,
    /// Share of long-running operations that fail.
    pub lro_fail_rate: f64,
    /// Delay before every Jupyter answer, in milliseconds.
    pub jupyter_latency_ms: u64,
    /// Every Jupyter answer is this many bytes of padding instead (0: off), streamed
    /// without a length.
    pub jupyter_body_bytes: u64,
    /// Every Jupyter answer is a 307 to this URL instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jupyter_redirect: Option<String>,
    /// Seed of the fault RNG; reseeded on every POST.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Which of ARM's request budgets a request spends ("Request limits and throttling": reads,
/// writes and deletes are counted apart; recorded: a DELETE answers
/// `x-ms-ratelimit-remaining-subscription-deletes`, py-ml-stop-2024-12-signed-ao.excerpt.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKind {
    /// GET and HEAD.
    Read,
    /// PUT, POST, PATCH.
    Write,
    /// DELETE.
    Delete,
}

impl RateKind {
    /// The budget of a request method.
    pub fn of(method: &axum::http::Method) -> RateKind {
        use axum::http::Method;
        if method == Method::GET || method == Method::HEAD {
            RateKind::Read
        } else if method == Method::DELETE {
            RateKind::Delete
        } else {
            RateKind::Write
        }
    }

    /// The word ARM uses in its throttling message and header names.
    pub fn word(self) -> &'static str {
        match self {
            RateKind::Read => "read",
            RateKind::Write => "write",
            RateKind::Delete => "delete",
        }
    }

    /// `(per-principal, global)` remaining-count header names.
    pub fn headers(self) -> (&'static str, &'static str) {
        match self {
            RateKind::Read => (
                "x-ms-ratelimit-remaining-subscription-reads",
                "x-ms-ratelimit-remaining-subscription-global-reads",
            ),
            RateKind::Write => (
                "x-ms-ratelimit-remaining-subscription-writes",
                "x-ms-ratelimit-remaining-subscription-global-writes",
            ),
            RateKind::Delete => (
                "x-ms-ratelimit-remaining-subscription-deletes",
                "x-ms-ratelimit-remaining-subscription-global-deletes",
            ),
        }
    }
}

/// An access token the emulator issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// Index of the principal in the fleet.
    pub principal: usize,
    /// Wall-clock expiry.
    pub expires: Timestamp,
    /// The `aud` it was issued for (the scope without `/.default`).
    pub audience: String,
}

/// A long-running operation, for its status and location URLs.
#[derive(Debug, Clone)]
pub struct OpRecord {
    /// What it does.
    pub kind: OpKind,
    /// When it was accepted.
    pub started: Timestamp,
    /// When it ends.
    pub ends: Timestamp,
    /// Whether it fails.
    pub fails: bool,
    /// Index of the workspace.
    pub workspace: usize,
    /// Instance name.
    pub instance: String,
    /// Region of the status URL.
    pub location: String,
    /// The error a failed operation reports (code, message); `None`: an injected failure.
    pub error: Option<(String, String)>,
}

/// One line of the call log.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Emulator-clock time of the request.
    pub time: Timestamp,
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Response status (0 when the connection was dropped).
    pub status: u16,
    /// Client id of the authenticated principal, if any.
    pub principal: Option<String>,
    /// `x-ms-request-id` of the response.
    pub request_id: String,
    /// The `Host` of a request to an instance host (Jupyter), where the path alone does
    /// not say which instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `createdBy` of an instance: ids only, no `userName` (every recorded body:
/// real-get-running-2024-12.body.json, real-list-2022-03.body.json).
#[derive(Debug, Clone)]
pub struct CreatedBy {
    /// Tenant id.
    pub user_org_id: String,
    /// Object id.
    pub user_id: String,
}

/// One compute instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Compute name, as created.
    pub name: String,
    /// VM size.
    pub vm_size: String,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
    /// Description.
    pub description: Option<String>,
    /// ISO 8601 idle shutdown, if set.
    pub idle_time_before_shutdown: Option<String>,
    /// `schedules` object, if set.
    pub schedules: Option<Value>,
    /// `sshSettings`.
    pub ssh_settings: Value,
    /// `subnet`, if any.
    pub subnet: Option<Value>,
    /// `personalComputeInstanceSettings`, if any.
    pub personal: Option<Value>,
    /// `applicationSharingPolicy`.
    pub sharing_policy: String,
    /// Creator.
    pub created_by: CreatedBy,
    /// Creation time.
    pub created_on: Timestamp,
    /// Last modification.
    pub modified_on: Timestamp,
    /// Private IP address (stable per instance).
    pub private_ip: String,
    /// `setupScripts` as created (echoed, never run), if any.
    pub setup_scripts: Option<Value>,
    /// Life cycle.
    pub machine: Machine,
}

impl Instance {
    /// Let the machine carry out the instance's `idleTimeBeforeShutdown` and `schedules`
    /// (call after either changes; values were checked when they came in).
    /// `now`: when the change is made (idle time counts from no earlier than a change of
    /// the idle setting).
    pub fn refresh_native(&mut self, fleet: &Fleet, now: Timestamp) {
        let idle = self
            .idle_time_before_shutdown
            .as_deref()
            .and_then(super::iso8601::parse_duration);
        let schedules = self
            .schedules
            .as_ref()
            .and_then(|s| s.get("computeStartStop"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|v| native_rule(v).ok().flatten())
                    .collect()
            })
            .unwrap_or_default();
        let idle_set_at = if idle == self.machine.native.idle {
            self.machine.native.idle_set_at
        } else {
            Some(now)
        };
        self.machine.native = NativeSettings {
            idle,
            idle_set_at,
            schedules,
            start_takes: fleet.timing.start,
            stop_takes: fleet.timing.stop,
        };
    }
}

/// The rule a `computeStartStop` entry makes the instance follow: `None` for a disabled
/// schedule or a recurrence trigger (not carried out by the emulator); `Err` says why a
/// cron schedule is unusable (bad expression, unknown Windows time zone).
pub fn native_rule(v: &Value) -> Result<Option<NativeRule>, String> {
    if v.get("status").and_then(Value::as_str) == Some("Disabled")
        || v.get("triggerType").and_then(Value::as_str) != Some("Cron")
    {
        return Ok(None);
    }
    let kind = match v.get("action").and_then(Value::as_str) {
        Some("Start") => OpKind::Start,
        Some("Stop") => OpKind::Stop,
        _ => return Err("'action' must be 'Start' or 'Stop'.".to_owned()),
    };
    let cron = v.get("cron").unwrap_or(&Value::Null);
    let expr = cron
        .get("expression")
        .and_then(Value::as_str)
        .ok_or("'cron.expression' is required.")?;
    let cron_expr =
        NativeCron::parse(expr).map_err(|e| format!("'cron.expression' is invalid: {e}."))?;
    let zone = cron
        .get("timeZone")
        .and_then(Value::as_str)
        .unwrap_or("UTC");
    let tz = zones::iana_name(zone)
        .and_then(|iana| jiff::tz::TimeZone::get(iana).ok())
        .ok_or_else(|| format!("'cron.timeZone' '{zone}' is not a Windows time zone."))?;
    Ok(Some(NativeRule {
        kind,
        cron: cron_expr,
        tz,
    }))
}

/// A workspace and its instances.
#[derive(Debug, Clone)]
pub struct WsState {
    /// The fleet's workspace (its `instances` are only the initial set).
    pub spec: Workspace,
    /// Current instances, in creation order.
    pub instances: Vec<Instance>,
}

impl WsState {
    /// ARM id of the workspace.
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}",
            self.spec.subscription_id, self.spec.resource_group, self.spec.name
        )
    }

    /// Index of an instance by name (case-insensitive).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.instances
            .iter()
            .position(|i| i.name.eq_ignore_ascii_case(name))
    }
}

/// All mutable state.
#[derive(Debug)]
pub struct Inner {
    /// Workspaces, in fleet order.
    pub workspaces: Vec<WsState>,
    /// Operations by id.
    pub ops: HashMap<String, OpRecord>,
    /// Issued tokens.
    pub tokens: HashMap<String, IssuedToken>,
    /// Token buckets by (subscription, client id, kind); the client id is `None` for the
    /// subscription's global bucket of that kind.
    pub buckets: HashMap<(String, Option<String>, RateKind), TokenBucket>,
    /// Fault settings.
    pub faults: Faults,
    /// Fault RNG.
    pub rng: StdRng,
    /// Call log.
    pub calls: Vec<CallRecord>,
    /// Last call sequence number.
    pub seq: u64,
    /// Private IP counter.
    next_ip: u32,
    /// How long an owner's scripted start takes (the fleet's `timing.start`).
    user_start_took: std::time::Duration,
}

impl Inner {
    /// Builds the initial state from the fleet at clock time `now`.
    pub fn new(fleet: &Fleet, now: Timestamp) -> Inner {
        let mut inner = Inner {
            workspaces: Vec::new(),
            ops: HashMap::new(),
            tokens: HashMap::new(),
            buckets: HashMap::new(),
            faults: Faults::default(),
            rng: StdRng::seed_from_u64(fleet.seed),
            calls: Vec::new(),
            seq: 0,
            next_ip: 4,
            user_start_took: fleet.timing.start,
        };
        for w in &fleet.workspaces {
            let mut ws = WsState {
                spec: w.clone(),
                instances: Vec::new(),
            };
            for spec in &w.instances {
                let inst = inner.instance_from_spec(fleet, spec, now);
                ws.instances.push(inst);
            }
            inner.workspaces.push(ws);
        }
        inner
    }

    fn instance_from_spec(
        &mut self,
        fleet: &Fleet,
        spec: &InstanceSpec,
        now: Timestamp,
    ) -> Instance {
        let state = State::from_fleet(&spec.state);
        let started_at = spec.started_at.unwrap_or_else(|| {
            jiff::SignedDuration::try_from(super::fleet::default_running_for())
                .ok()
                .and_then(|d| now.checked_sub(d).ok())
                .unwrap_or(now)
        });
        let mut machine = Machine::new(state, now, Some(started_at));
        if spec.state == "JobRunning" {
            machine.manual_job = true;
        }
        if let Some(a) = spec.last_activity {
            machine.last_activity = a;
        }
        machine.script = spec.activity.clone();
        // `Machine::settle_scripted` walks the script in time order.
        machine.script.sort_by_key(|a| a.from);
        // A transitional fleet state is an operation already in progress.
        let op = match state {
            State::Starting => Some(OpKind::Start),
            State::Stopping => Some(OpKind::Stop),
            State::Restarting => Some(OpKind::Restart),
            _ => None,
        };
        if let Some(kind) = op {
            let prev = if kind == OpKind::Start {
                State::Stopped
            } else {
                State::Running
            };
            machine.state = prev;
            let took = duration_of(fleet, kind);
            // Cannot be refused: no operation is pending and the state fits.
            let _refused = machine.begin(
                kind,
                now,
                took,
                uuid::Uuid::new_v4().to_string(),
                false,
                super::machine::Trigger::User,
            );
        }
        // A settled fleet instance got where it is by a user's start or stop that succeeded
        // (at `started_at`), as lastOperation on a real instance would show.
        if machine.pending.is_none() && matches!(state, State::Running | State::Stopped) {
            machine.last_operation = Some(super::machine::LastOperation {
                kind: if state == State::Running {
                    OpKind::Start
                } else {
                    OpKind::Stop
                },
                time: started_at,
                status: super::machine::OpStatus::Succeeded,
                trigger: super::machine::Trigger::User,
            });
        }
        if state == State::Creating {
            machine = Machine::creating(
                now,
                fleet.timing.create,
                uuid::Uuid::new_v4().to_string(),
                false,
            );
        }
        // A fleet's instances stand for people's: by default a person derived from the
        // instance's name created it, never the daemon's principal (which would make a
        // Personal instance's Jupyter answer the daemon, as real Azure does not).
        let user_id = match (&spec.created_by_object_id, &spec.created_by) {
            (Some(id), _) => id.clone(),
            (None, Some(n)) => derived_user_id(n),
            (None, None) => derived_user_id(&format!("owner of {}", spec.name)),
        };
        let created_by = CreatedBy {
            user_org_id: fleet.tenant_id.clone(),
            user_id,
        };
        let created_on = started_at.min(now);
        let mut inst = Instance {
            name: spec.name.clone(),
            vm_size: spec.vm_size.clone(),
            tags: spec.tags.clone(),
            description: None,
            idle_time_before_shutdown: spec.idle_time_before_shutdown.clone(),
            schedules: None,
            ssh_settings: super::arm::default_ssh_settings(),
            subnet: None,
            // Recorded instances are Shared with null personal settings
            // (real-get-running-2024-12.body.json); a fleet may make one Personal.
            personal: spec
                .assigned_user
                .as_ref()
                .map(|oid| json!({"assignedUser": {"objectId": oid, "tenantId": fleet.tenant_id}})),
            sharing_policy: spec.application_sharing_policy.clone(),
            created_by,
            created_on,
            modified_on: created_on,
            private_ip: self.alloc_ip(),
            setup_scripts: None,
            machine,
        };
        inst.refresh_native(fleet, now);
        inst
    }

    /// Allocates a private IP address in 10.0.0.0/16.
    pub fn alloc_ip(&mut self) -> String {
        let n = self.next_ip;
        self.next_ip = self.next_ip.wrapping_add(1);
        format!("10.0.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }

    /// Applies every operation that has ended by `now`; removes deleted instances.
    pub fn settle(&mut self, now: Timestamp) {
        for ws in &mut self.workspaces {
            for inst in &mut ws.instances {
                if let Some(p) = &inst.machine.pending
                    && p.ends <= now
                {
                    inst.modified_on = p.ends;
                }
                inst.machine.settle_scripted(now, self.user_start_took);
            }
            ws.instances.retain(|i| i.machine.state != State::Deleted);
        }
    }

    /// Index of a workspace by subscription, resource group and name (case-insensitive).
    pub fn find_ws(&self, sub: &str, rg: &str, name: &str) -> Option<usize> {
        self.workspaces.iter().position(|w| {
            w.spec.subscription_id.eq_ignore_ascii_case(sub)
                && w.spec.resource_group.eq_ignore_ascii_case(rg)
                && w.spec.name.eq_ignore_ascii_case(name)
        })
    }

    /// Index of a workspace by Azure name only (the control API's key).
    pub fn find_ws_by_name(&self, name: &str) -> Option<usize> {
        self.workspaces
            .iter()
            .position(|w| w.spec.name.eq_ignore_ascii_case(name))
    }

    /// Appends to the call log, dropping the oldest entries past the cap.
    pub fn record_call(&mut self, mut c: CallRecord) {
        self.seq += 1;
        c.seq = self.seq;
        if self.calls.len() >= MAX_CALLS {
            self.calls.drain(..MAX_CALLS / 10);
        }
        self.calls.push(c);
    }
}

/// The configured duration of an operation.
pub fn duration_of(fleet: &Fleet, kind: OpKind) -> std::time::Duration {
    match kind {
        OpKind::Create => fleet.timing.create,
        OpKind::Start => fleet.timing.start,
        OpKind::Stop => fleet.timing.stop,
        OpKind::Restart => fleet.timing.restart,
        OpKind::Delete => fleet.timing.delete,
    }
}

/// ARM's timestamp form in the fixtures: `2021-04-01T22:00:00.0000000+00:00`.
pub fn arm_time(t: Timestamp) -> String {
    format!(
        "{}.{:07}+00:00",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_nanosecond() / 100
    )
}

/// ARM's form of `lastOperation.operationTime`: milliseconds without trailing zeros
/// (recorded: `2024-12-18T09:05:40.468+00:00`, `2022-10-04T05:56:13.75+00:00`).
pub fn arm_time_ms(t: Timestamp) -> String {
    let ms = format!("{:03}", t.subsec_nanosecond() / 1_000_000);
    let ms = ms.trim_end_matches('0');
    let dot = if ms.is_empty() { "" } else { "." };
    format!("{}{dot}{ms}+00:00", t.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// Jupyter's timestamp form: `2026-03-30T09:00:00.000000Z`.
pub fn jupyter_time(t: Timestamp) -> String {
    format!(
        "{}.{:06}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_nanosecond() / 1000
    )
}

/// The domain of the emulated instances' hosts, as real Azure's public cloud names them.
pub const INSTANCE_DOMAIN: &str = "instances.azureml.ms";

/// Base URL of an instance's Jupyter server on the emulator: real-shaped,
/// `https://{instance}.{region}.instances.azureml.ms:{port}` (recorded `endpointUri`s), on
/// the emulator's port; a client reaches it by resolving the name to the emulator's address.
pub fn jupyter_base(endpoint: &str, region: &str, inst: &str) -> String {
    let (scheme, port) = match url::Url::parse(endpoint) {
        Ok(u) => (
            u.scheme().to_owned(),
            u.port_or_known_default().unwrap_or(443),
        ),
        Err(_) => ("https".to_owned(), 443),
    };
    format!(
        "{scheme}://{}.{}.{INSTANCE_DOMAIN}:{port}",
        inst.to_ascii_lowercase(),
        region.to_ascii_lowercase().replace(' ', "")
    )
}

/// A deterministic GUID-shaped id for a user name.
fn derived_user_id(name: &str) -> String {
    let h = fnv(name.as_bytes());
    let h2 = fnv(&h.to_le_bytes());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) as u16,
        h & 0xfff,
        (h2 >> 52) & 0xfff,
        h2 & 0xffff_ffff_ffff
    )
}

/// 64-bit FNV-1a, for stable made-up identifiers.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The ARM resource JSON of an instance at `now` (settled).
pub fn instance_json(endpoint: &str, ws: &WsState, inst: &Instance, now: Timestamp) -> Value {
    let m = &inst.machine;
    let shown = m.shown_state(now);
    let provisioning = match m.state {
        State::Creating => "Creating",
        State::Deleting => "Deleting",
        State::CreateFailed => "Failed",
        _ => "Succeeded",
    };
    let base = jupyter_base(endpoint, &ws.spec.location, &inst.name);
    let last_operation = m.last_operation.as_ref().map(|lo| {
        json!({
            "operationName": lo.kind.name(),
            "operationTime": arm_time_ms(lo.time),
            "operationStatus": lo.status_name(),
            "operationTrigger": lo.trigger.name(),
        })
    });
    // Recorded: `errors` is `[]` on a healthy instance (real-get-running-2024-12.body.json).
    let errors = if m.state == State::CreateFailed {
        json!([{"error": {"code": "ComputeInstanceCreateFailed", "message": "The compute instance failed to provision."}}])
    } else {
        json!([])
    };
    // The key set and the constant values follow real-get-running-2024-12.body.json (Dec
    // 2024, api-version 2023-08-01-preview); tests/it/conformance.rs compares them.
    let mut props = json!({
        "vmSize": inst.vm_size,
        "imageVersion": Value::Null,
        "imageSku": Value::Null,
        "subnet": inst.subnet,
        "sshSettings": inst.ssh_settings,
        "autologgerSettings": Value::Null,
        "errors": errors,
        // A stopped instance keeps its public address (py-ml-stop-start-2022-10: the GET
        // after stop still shows it).
        "connectivityEndpoints": {
            "publicIpAddress": "20.0.0.1",
            "privateIpAddress": inst.private_ip,
        },
        // Names and URL shapes as recorded (`…/tree/` and `…/lab`, "Jupyter Lab" with a
        // space), on a real-shaped instance host: `https://{instance}.{region}.instances.azureml.ms:{port}/…`.
        "applications": [
            {"displayName": "Jupyter", "endpointUri": format!("{base}/tree/")},
            {"displayName": "Jupyter Lab", "endpointUri": format!("{base}/lab")},
        ],
        "state": shown,
        "enableRootAccess": true,
        "lastOperation": last_operation,
        "createdBy": {
            "userOrgId": inst.created_by.user_org_id,
            "userId": inst.created_by.user_id,
        },
        "applicationSharingPolicy": inst.sharing_policy,
        "computeInstanceAuthorizationType": "personal",
        "personalComputeInstanceSettings": inst.personal,
        // Null when none was given (every recording); else as created (assumption: no
        // recording or spec example shows a non-null setupScripts on GET). The REST spec's
        // ScriptReference: {scriptSource: inline|workspace, scriptData, scriptArguments,
        // timeout} (Bicep types of Microsoft.MachineLearningServices, 2023-04-01).
        "setupScripts": inst.setup_scripts.clone().unwrap_or(Value::Null),
        "schedules": inst.schedules.clone().unwrap_or_else(|| json!({"computeStartStop": []})),
        "enableNodePublicIp": true,
        "enableBatchPrivateLink": false,
        "enableOSPatching": false,
        "releaseQuotaOnStop": false,
        "enableSSO": true,
        "dataMounts": Value::Null,
        "dataDisks": Value::Null,
        "containers": Value::Null,
        "updateStatus": Value::Null,
        "versions": {"runtime": RUNTIME_VERSION},
        "customServices": [],
        "osImageMetadata": {
            "currentImageVersion": OS_IMAGE_VERSION,
            "latestImageVersion": OS_IMAGE_VERSION,
            "isLatestOsImageVersion": true,
            "osPatchingStatus": Value::Null,
        },
    });
    // Present only when set (real-get-with-schedules-2023-01.body.json has it, the
    // 2024 body of an instance without it does not).
    if let Some(i) = &inst.idle_time_before_shutdown {
        props["idleTimeBeforeShutdown"] = Value::from(i.clone());
    }
    json!({
        "id": format!("{}/computes/{}", ws.id(), inst.name),
        "name": inst.name,
        "type": "Microsoft.MachineLearningServices/workspaces/computes",
        "location": ws.spec.location,
        "tags": inst.tags,
        "identity": {
            "type": "SystemAssigned",
            "principalId": derived_user_id(&format!("{}/computes/{}", ws.id(), inst.name)),
            "tenantId": inst.created_by.user_org_id,
        },
        "properties": {
            "createdOn": arm_time(inst.created_on),
            "modifiedOn": arm_time(inst.modified_on),
            "disableLocalAuth": false,
            "description": inst.description,
            "resourceId": Value::Null,
            "computeType": "ComputeInstance",
            "computeLocation": ws.spec.location,
            "provisioningState": provisioning,
            "provisioningErrors": Value::Null,
            "provisioningWarnings": {},
            "isAttachedCompute": false,
            "properties": props,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_time_matches_fixture_shape() {
        let t: Timestamp = "2021-04-01T22:00:00Z".parse().unwrap();
        assert_eq!(arm_time(t), "2021-04-01T22:00:00.0000000+00:00");
        assert_eq!(jupyter_time(t), "2021-04-01T22:00:00.000000Z");
        assert_eq!(arm_time_ms(t), "2021-04-01T22:00:00+00:00");
        let t: Timestamp = "2022-10-04T05:56:13.7501Z".parse().unwrap();
        assert_eq!(arm_time_ms(t), "2022-10-04T05:56:13.75+00:00");
    }

    #[test]
    fn fleet_builds_instances() {
        let f = Fleet::demo();
        let now: Timestamp = "2026-03-30T09:00:00Z".parse().unwrap();
        let inner = Inner::new(&f, now);
        let ws = &inner.workspaces[0];
        let carol = &ws.instances[ws.find("ci-carol").unwrap()];
        assert_eq!(carol.machine.shown_state(now), "JobRunning");
        let v = instance_json("https://127.0.0.1:8443", ws, carol, now);
        assert_eq!(v["properties"]["properties"]["state"], "JobRunning");
        assert_eq!(
            v["properties"]["properties"]["applications"][0]["endpointUri"],
            "https://ci-carol.eastus2.instances.azureml.ms:8443/tree/"
        );
    }
}
