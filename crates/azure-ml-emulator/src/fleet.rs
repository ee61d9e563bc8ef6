//! The fleet file: which tenant, principals, workspaces and instances the emulator serves.
//!
//! Parsing has two stages (STYLE H3): [`raw`] mirrors the TOML with `deny_unknown_fields`,
//! then [`Fleet::from_raw`] validates it into domain values and reports every problem at once.
//! No I/O here except [`Fleet::load`], which only reads the file.
//!
//! Keys beyond the CONTRACT's example (all optional):
//!
//! ```toml
//! gateway_accepts_service_principals = true   # false: every instance's Jupyter refuses
//!                                              # service principals (403), users only
//! jupyter_audience = "https://ml.azure.com"    # the token audience instances' Jupyter
//!                                              # accepts (real Azure's is unverified)
//! [[principal]]
//! client_id = "…"                  # a user gets its token through the same form (an
//! client_secret = "…"              # emulator shortcut; real users sign in interactively)
//! object_id = "…"                  # `oid`; what createdBy / assignedUser name
//! user = true                      # a user, not a service principal
//! actions = ["Microsoft.MachineLearningServices/workspaces/computes/applicationaccess/action"]
//!
//! [timing]        # default: real Azure's magnitude (create 3m, start 2m, stop 45s,
//!                 # restart 2m45s, delete 1m); set shorter values for tests
//!
//! [limits]        # per (subscription, principal): read 250 + 25/s, write 200 + 10/s
//! delete_bucket = 200              # default: write_bucket
//! delete_refill_per_sec = 10.0     # default: write_refill_per_sec
//! global_factor = 15               # per-subscription global buckets = 15 × per-principal
//!
//! [[instance_identity]]           # a compute instance's managed identity (issue 15): the
//! instance = "ci-1"                # MSI_ENDPOINT / MSI_SECRET pair its agent uses
//! client_id = "…"                  # a [[principal]] with managed_identity = true
//! secret = "…"                     # MSI_SECRET; identities of one instance share it
//!
//! [[workspace.instance]]
//! application_sharing_policy = "Personal"   # default "Shared", as every recorded instance
//! created_by_object_id = "…"       # createdBy.userId (default: a person's, derived from the name)
//! assigned_user = "…"              # personalComputeInstanceSettings.assignedUser.objectId
//! ```

/// The token audience the emulated instances' Jupyter accepts unless the fleet says
/// otherwise: an assumption (Azure ML's data plane); real Azure's is not documented.
pub const DEFAULT_JUPYTER_AUDIENCE: &str = "https://ml.azure.com";

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;

/// Default duration of each long-running operation when `[timing]` omits it: real Azure's
/// magnitude, so that a client meets the waits it will meet in production. A fleet's
/// `[timing]` shortens them for tests.
/// Create: the recorded instances went from `createdOn` to their last `modifiedOn` after the
/// create in 2m15s (py-ml-stop-2024-12-signed-ao.excerpt.json) and 2m40s
/// (py-ml-stop-start-2022-10.excerpt.json).
const DEFAULT_CREATE: Duration = Duration::from_secs(180);
/// Start: polls InProgress at +0/+30/+60/+90 s, Succeeded at +121 s (2022-10 recording).
const DEFAULT_START: Duration = Duration::from_secs(120);
/// Stop: Succeeded at +61 s after InProgress at +31 s (2022-10), at +31 s (2024-12).
const DEFAULT_STOP: Duration = Duration::from_secs(45);
/// Restart: assumption (no recording polls a restart): about a stop plus a start.
const DEFAULT_RESTART: Duration = Duration::from_secs(165);
/// Delete: assumption (the recordings stop polling a delete at its first InProgress).
const DEFAULT_DELETE: Duration = Duration::from_secs(60);

/// ARM's documented token-bucket sizes and refill rates per subscription and principal
/// (Microsoft's "Request limits and throttling": reads 250 tokens at 25/s, writes 200 at
/// 10/s, deletes 200 at 10/s; deletes default to the write settings, which also keeps older
/// fleets, whose deletes spent the write bucket, behaving as before).
const DEFAULT_READ_BUCKET: u32 = 250;
const DEFAULT_READ_REFILL_PER_SEC: f64 = 25.0;
const DEFAULT_WRITE_BUCKET: u32 = 200;
const DEFAULT_WRITE_REFILL_PER_SEC: f64 = 10.0;
/// The global per-subscription limit is this many times the per-principal one (same page;
/// the Dec 2024 recording's counters agree: global-reads 16499 against reads 1099, i.e.
/// 16500 = 15 × 1100, and global-writes 11999 against writes 799).
const DEFAULT_GLOBAL_FACTOR: u32 = 15;
/// Entra ID's usual access-token lifetime.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Page size of the compute list when neither the fleet nor the options set one.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// How long before the emulator's clock start a fleet instance in `Running` state was started,
/// when the fleet does not say (so that `min_uptime` rules do not block every first action).
const DEFAULT_RUNNING_FOR: Duration = Duration::from_secs(3600);

/// Errors from loading or validating a fleet file.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The file could not be read.
    #[error("failed to read fleet file {path}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The TOML did not parse or has unknown keys or wrong types.
    #[error("{source_name}:{line}:{col}: {message}")]
    Parse {
        /// File name (or other label) of the text.
        source_name: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        col: usize,
        /// What toml said, e.g. "unknown field `foo`, expected one of …".
        message: String,
    },
    /// The TOML parsed but values are invalid; every problem, one per line.
    #[error("{source_name}: invalid fleet:\n{}", problems.join("\n"))]
    Invalid {
        /// File name (or other label) of the text.
        source_name: String,
        /// Each problem, prefixed with its key path.
        problems: Vec<String>,
    },
}

impl FleetError {
    /// A short stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            FleetError::Read { .. } => "read",
            FleetError::Parse { .. } => "parse",
            FleetError::Invalid { .. } => "invalid",
        }
    }
}

/// Raw serde mirror of the fleet TOML. Every struct denies unknown keys.
pub mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    /// The whole file.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawFleet {
        /// Entra ID tenant of every principal.
        pub tenant_id: String,
        /// Principals that may get tokens.
        #[serde(default)]
        pub principal: Vec<RawPrincipal>,
        /// Operation durations.
        #[serde(default)]
        pub timing: RawTiming,
        /// Throttling and token settings.
        #[serde(default)]
        pub limits: RawLimits,
        /// Compute list page size.
        pub page_size: Option<usize>,
        /// Start of the virtual clock (RFC 3339); default: the wall clock at start.
        pub clock_start: Option<String>,
        /// Seed of the fault RNG.
        pub seed: Option<u64>,
        /// Whether instances' Jupyter gateways admit service principals at all.
        pub gateway_accepts_service_principals: Option<bool>,
        /// The token audience instances' Jupyter accepts.
        pub jupyter_audience: Option<String>,
        /// Workspaces and their instances.
        #[serde(default)]
        pub workspace: Vec<RawWorkspace>,
        /// Compute instances' managed identities (the `MSI_ENDPOINT` pair).
        #[serde(default)]
        pub instance_identity: Vec<RawInstanceIdentity>,
    }

    /// One `[[instance_identity]]`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawInstanceIdentity {
        /// The compute instance (a `[[workspace.instance]]` name).
        pub instance: String,
        /// A `[[principal]]` with `managed_identity = true`.
        pub client_id: String,
        /// The instance's `MSI_SECRET`.
        pub secret: String,
    }

    /// One `[[principal]]`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawPrincipal {
        /// Application (client) id.
        pub client_id: String,
        /// Secret for the client-credentials flow.
        pub client_secret: Option<String>,
        /// Azure RBAC action patterns granted over every workspace.
        #[serde(default)]
        pub actions: Vec<String>,
        /// Object id of the service principal; default derived from the client id.
        pub object_id: Option<String>,
        /// Whether this principal answers the managed-identity endpoints.
        #[serde(default)]
        pub managed_identity: bool,
        /// Display name (the emulator's logs and `/_emulator/state`).
        pub display_name: Option<String>,
        /// A user rather than a service principal.
        #[serde(default)]
        pub user: bool,
    }

    /// `[timing]`.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawTiming {
        /// Create duration.
        pub create: Option<String>,
        /// Start duration.
        pub start: Option<String>,
        /// Stop duration.
        pub stop: Option<String>,
        /// Restart duration.
        pub restart: Option<String>,
        /// Delete duration.
        pub delete: Option<String>,
    }

    /// `[limits]`.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawLimits {
        /// Read bucket size.
        pub read_bucket: Option<u32>,
        /// Read tokens added per second.
        pub read_refill_per_sec: Option<f64>,
        /// Write bucket size.
        pub write_bucket: Option<u32>,
        /// Write tokens added per second.
        pub write_refill_per_sec: Option<f64>,
        /// Delete bucket size (default: `write_bucket`).
        pub delete_bucket: Option<u32>,
        /// Delete tokens added per second (default: `write_refill_per_sec`).
        pub delete_refill_per_sec: Option<f64>,
        /// Global per-subscription buckets are this many times the per-principal ones.
        pub global_factor: Option<u32>,
        /// Access token lifetime.
        pub token_lifetime: Option<String>,
    }

    /// One `[[workspace]]`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawWorkspace {
        /// Subscription id.
        pub subscription_id: String,
        /// Resource group.
        pub resource_group: String,
        /// Azure workspace name.
        pub name: String,
        /// Azure region.
        pub location: String,
        /// Instances.
        #[serde(default)]
        pub instance: Vec<RawInstance>,
    }

    /// One `[[workspace.instance]]`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawInstance {
        /// Compute name.
        pub name: String,
        /// VM size.
        pub vm_size: String,
        /// Initial state.
        pub state: Option<String>,
        /// Resource tags.
        #[serde(default)]
        pub tags: BTreeMap<String, String>,
        /// ISO 8601 duration, e.g. "PT60M".
        pub idle_time_before_shutdown: Option<String>,
        /// When the running instance was started (RFC 3339).
        pub started_at: Option<String>,
        /// Last Jupyter activity (RFC 3339).
        pub last_activity: Option<String>,
        /// Creator's name; its object id is derived from it.
        pub created_by: Option<String>,
        /// Creator's object id (`createdBy.userId`).
        pub created_by_object_id: Option<String>,
        /// `applicationSharingPolicy`: `Shared` (default) or `Personal`.
        pub application_sharing_policy: Option<String>,
        /// Object id of the assigned user (`personalComputeInstanceSettings.assignedUser`).
        pub assigned_user: Option<String>,
        /// Scripted activity.
        #[serde(default)]
        pub activity: Vec<RawActivity>,
    }

    /// One `[[workspace.instance.activity]]`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawActivity {
        /// `job`, `kernel`, `silent_kernel`, `gpu_busy`, `terminal_input`, `ssh` or
        /// `vscode_connected` ([`super::ActivityKind`]).
        pub kind: String,
        /// Start (RFC 3339).
        pub from: String,
        /// End (RFC 3339).
        pub to: String,
        /// Whether the owner starts a stopped instance when this window opens.
        pub start: Option<bool>,
    }
}

/// A validated fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// Entra ID tenant id.
    pub tenant_id: String,
    /// Principals, in file order; the first one is named on the ready line.
    pub principals: Vec<Principal>,
    /// Operation durations.
    pub timing: Timing,
    /// Throttling and token settings.
    pub limits: Limits,
    /// Compute list page size, if the fleet sets one.
    pub page_size: Option<usize>,
    /// Virtual clock start, if the fleet sets one.
    pub clock_start: Option<Timestamp>,
    /// Seed of the fault RNG (default 0).
    pub seed: u64,
    /// Whether instances' Jupyter gateways admit service principals (default true); false
    /// stands for a gateway that only lets users in, so every service principal gets 403.
    pub gateway_accepts_service_principals: bool,
    /// The token audience instances' Jupyter accepts (default [`DEFAULT_JUPYTER_AUDIENCE`]);
    /// a token for another audience, ARM's included, gets 401.
    pub jupyter_audience: String,
    /// Workspaces, in file order. Azure names are unique.
    pub workspaces: Vec<Workspace>,
    /// Compute instances' managed identities, in file order.
    pub instance_identities: Vec<InstanceIdentity>,
}

/// A compute instance's managed identity as its `MSI_ENDPOINT` serves it.
#[derive(Clone, PartialEq)]
pub struct InstanceIdentity {
    /// The compute instance's name.
    pub instance: String,
    /// Index into [`Fleet::principals`].
    pub principal: usize,
    /// `MSI_SECRET` (never printed: `Debug` redacts it).
    pub secret: String,
}

impl std::fmt::Debug for InstanceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceIdentity")
            .field("instance", &self.instance)
            .field("principal", &self.principal)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A principal that can get tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret, if the client-credentials-with-secret flow is allowed.
    pub client_secret: Option<String>,
    /// RBAC action patterns.
    pub actions: Vec<String>,
    /// Object id (the `oid` claim and the id in ARM's 403 messages).
    pub object_id: String,
    /// Whether the managed-identity endpoints issue tokens for this principal.
    pub managed_identity: bool,
    /// Display name (logs and `/_emulator/state` only; ARM bodies carry no user names).
    pub display_name: String,
    /// A user (who signs in) rather than a service principal or managed identity: the
    /// Jupyter gateway may refuse service principals but not users.
    pub user: bool,
}

/// How long each operation takes on the emulator clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Create.
    pub create: Duration,
    /// Start.
    pub start: Duration,
    /// Stop.
    pub stop: Duration,
    /// Restart.
    pub restart: Duration,
    /// Delete.
    pub delete: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            create: DEFAULT_CREATE,
            start: DEFAULT_START,
            stop: DEFAULT_STOP,
            restart: DEFAULT_RESTART,
            delete: DEFAULT_DELETE,
        }
    }
}

/// Throttling and token settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Read bucket capacity (requests).
    pub read_bucket: u32,
    /// Read refill (requests per second).
    pub read_refill_per_sec: f64,
    /// Write bucket capacity (requests).
    pub write_bucket: u32,
    /// Write refill (requests per second).
    pub write_refill_per_sec: f64,
    /// Delete bucket capacity; `None` follows `write_bucket`.
    pub delete_bucket: Option<u32>,
    /// Delete refill; `None` follows `write_refill_per_sec`.
    pub delete_refill_per_sec: Option<f64>,
    /// The global per-subscription bucket of each kind is this many times the
    /// per-principal one (capacity and refill).
    pub global_factor: u32,
    /// Lifetime of issued access tokens.
    pub token_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            read_bucket: DEFAULT_READ_BUCKET,
            read_refill_per_sec: DEFAULT_READ_REFILL_PER_SEC,
            write_bucket: DEFAULT_WRITE_BUCKET,
            write_refill_per_sec: DEFAULT_WRITE_REFILL_PER_SEC,
            delete_bucket: None,
            delete_refill_per_sec: None,
            global_factor: DEFAULT_GLOBAL_FACTOR,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
        }
    }
}

impl Limits {
    /// `(capacity, refill per second)` of one principal's bucket of `kind`.
    pub fn per_principal(&self, kind: crate::state::RateKind) -> (u32, f64) {
        use crate::state::RateKind;
        match kind {
            RateKind::Read => (self.read_bucket, self.read_refill_per_sec),
            RateKind::Write => (self.write_bucket, self.write_refill_per_sec),
            RateKind::Delete => (
                self.delete_bucket.unwrap_or(self.write_bucket),
                self.delete_refill_per_sec
                    .unwrap_or(self.write_refill_per_sec),
            ),
        }
    }

    /// `(capacity, refill per second)` of the subscription's global bucket of `kind`.
    pub fn global(&self, kind: crate::state::RateKind) -> (u32, f64) {
        let (cap, refill) = self.per_principal(kind);
        (
            cap.saturating_mul(self.global_factor),
            refill * f64::from(self.global_factor),
        )
    }
}

/// One workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    /// Subscription id.
    pub subscription_id: String,
    /// Resource group.
    pub resource_group: String,
    /// Azure workspace name (unique in the fleet; the control API names workspaces by it).
    pub name: String,
    /// Azure region, e.g. "eastus2".
    pub location: String,
    /// Instances, in file order.
    pub instances: Vec<InstanceSpec>,
}

/// The initial description of one compute instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// Compute name.
    pub name: String,
    /// VM size, e.g. "Standard_DS3_v2".
    pub vm_size: String,
    /// Initial ARM state, e.g. "Running".
    pub state: String,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
    /// ISO 8601 idle shutdown setting, e.g. "PT60M".
    pub idle_time_before_shutdown: Option<String>,
    /// When a running instance was started; default one hour before the clock start.
    pub started_at: Option<Timestamp>,
    /// Last Jupyter activity; default the start time.
    pub last_activity: Option<Timestamp>,
    /// Creator's name; default the fleet's first principal.
    pub created_by: Option<String>,
    /// Creator's object id; default derived from `created_by`, else the first principal's.
    pub created_by_object_id: Option<String>,
    /// `applicationSharingPolicy`: "Shared" (as every recorded instance) or "Personal".
    pub application_sharing_policy: String,
    /// Object id of the assigned user of a personal instance, if any.
    pub assigned_user: Option<String>,
    /// Scripted activity windows.
    pub activity: Vec<Activity>,
}

/// A scripted activity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// What kind of activity.
    pub kind: ActivityKind,
    /// Inclusive start.
    pub from: Timestamp,
    /// Exclusive end.
    pub to: Timestamp,
    /// The owner starts the instance when the window opens if it is stopped then (or as
    /// soon as a stop in progress ends), as a person does before working; the instance is
    /// not started otherwise, and activity on a stopped instance does not happen.
    pub start: bool,
}

/// Kind of scripted activity. Each kind is seen differently by the instance's Jupyter
/// server, by Azure's own idle shutdown and by an on-instance agent (lightsout's); the
/// README's table "Activity kinds" says which sees what, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActivityKind {
    /// A job: the instance shows `JobRunning`.
    Job,
    /// A busy Jupyter kernel that keeps the server's `last_activity` fresh.
    Kernel,
    /// A busy Jupyter kernel running a silent cell: `execution_state` busy, every
    /// `last_activity` frozen at the cell's start (observed, AGENT.md section 1.3).
    SilentKernel,
    /// A GPU computing, e.g. a training started from a terminal.
    GpuBusy,
    /// Typing in a Jupyter terminal.
    TerminalInput,
    /// Typing in an SSH session (or a tmux/screen pane reached over SSH).
    Ssh,
    /// A VS Code window connected through Azure ML's VS Code integration.
    VscodeConnected,
}

impl ActivityKind {
    /// Every kind, in the order the fleet file's error message lists them.
    pub const ALL: [ActivityKind; 7] = [
        ActivityKind::Job,
        ActivityKind::Kernel,
        ActivityKind::SilentKernel,
        ActivityKind::GpuBusy,
        ActivityKind::TerminalInput,
        ActivityKind::Ssh,
        ActivityKind::VscodeConnected,
    ];

    /// The name in the fleet file.
    pub fn name(self) -> &'static str {
        match self {
            ActivityKind::Job => "job",
            ActivityKind::Kernel => "kernel",
            ActivityKind::SilentKernel => "silent_kernel",
            ActivityKind::GpuBusy => "gpu_busy",
            ActivityKind::TerminalInput => "terminal_input",
            ActivityKind::Ssh => "ssh",
            ActivityKind::VscodeConnected => "vscode_connected",
        }
    }

    /// The kind named `name` in the fleet file.
    pub fn parse(name: &str) -> Option<ActivityKind> {
        ActivityKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the Jupyter server's `/api/status` `last_activity` moves with it: a kernel
    /// that prints does, a silent cell does not (observed, AGENT.md section 1.3), a Jupyter
    /// terminal does (its `/api/terminals` entry has a `last_activity`, AGENT.md 1.3; that
    /// the server-wide value follows it is an assumption); a GPU, SSH and VS Code are not
    /// the Jupyter server's business. A job keeps the emulator's earlier rule that it counts
    /// (an assumption).
    pub fn moves_jupyter(self) -> bool {
        matches!(
            self,
            ActivityKind::Job | ActivityKind::Kernel | ActivityKind::TerminalInput
        )
    }

    /// Whether Azure's own idle shutdown counts it as activity. Microsoft's definition
    /// (AGENT.md [A1], `how-to-create-compute-instance.md`): idle means no active kernel
    /// sessions, no Jupyter terminal sessions, no Azure ML runs, no VS Code connections and
    /// no custom applications; "VS Code SSH connections" are named as not tracked. That
    /// plain SSH and GPU or CPU use do not count either is inferred from their absence in
    /// that list (and Azure/azure-sdk-for-python#28182, a tmux training stopped after an
    /// hour idle). Simplification: an open Jupyter terminal counts only while typed in
    /// (`terminal_input`), where [A1] counts the open session itself. A silent cell is an assumption: the native check is taken to read the
    /// server's `last_activity`, which a silent cell freezes (AGENT.md section 0 item 3,
    /// UNVERIFIED inference); so a tmux training over SSH and a silent cell look idle.
    pub fn counts_natively(self) -> bool {
        self.moves_jupyter() || self == ActivityKind::VscodeConnected
    }
}

/// States a fleet instance may start in.
pub const INITIAL_STATES: &[&str] = &[
    "Running",
    "Stopped",
    "JobRunning",
    "Starting",
    "Stopping",
    "Restarting",
    "Creating",
    "CreateFailed",
    "SettingUp",
    "UserSettingUp",
    "Resizing",
    "Unusable",
    "Unknown",
];

impl Fleet {
    /// Parses fleet TOML; `source_name` labels errors (usually the file path).
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Fleet, FleetError> {
        let raw: raw::RawFleet = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            FleetError::Parse {
                source_name: source_name.to_owned(),
                line,
                col,
                message: e.message().to_owned(),
            }
        })?;
        Fleet::from_raw(raw).map_err(|problems| FleetError::Invalid {
            source_name: source_name.to_owned(),
            problems,
        })
    }

    /// Reads and parses a fleet file.
    pub fn load(path: &Path) -> Result<Fleet, FleetError> {
        let text = std::fs::read_to_string(path).map_err(|source| FleetError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Fleet::from_toml_str(&text, &path.display().to_string())
    }

    /// A small fleet for demos and tests: two workspaces, five instances, one full-rights
    /// principal, one read-only principal and one managed identity.
    pub fn demo() -> Fleet {
        // The text is a constant that the unit tests parse; a failure here is a bug in it.
        match Fleet::from_toml_str(DEMO_FLEET, "<demo fleet>") {
            Ok(f) => f,
            Err(e) => unreachable!("built-in demo fleet is invalid: {e}"),
        }
    }

    /// Finds a workspace by its Azure name (case-insensitive, as ARM names are).
    pub fn workspace(&self, name: &str) -> Option<&Workspace> {
        self.workspaces
            .iter()
            .find(|w| w.name.eq_ignore_ascii_case(name))
    }

    fn from_raw(raw: raw::RawFleet) -> Result<Fleet, Vec<String>> {
        let mut problems = Vec::new();
        if raw.tenant_id.trim().is_empty() {
            problems.push("tenant_id: must not be empty".to_owned());
        }
        let principals = principals(raw.principal, &mut problems);
        let timing = timing(raw.timing, &mut problems);
        let limits = limits(raw.limits, &mut problems);
        if raw.page_size == Some(0) {
            problems.push("page_size: must be at least 1".to_owned());
        }
        let clock_start = timestamp("clock_start", raw.clock_start, &mut problems);
        let workspaces = workspaces(raw.workspace, &mut problems);
        let instance_identities = instance_identities(
            raw.instance_identity,
            &principals,
            &workspaces,
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Fleet {
            tenant_id: raw.tenant_id,
            principals,
            timing,
            limits,
            page_size: raw.page_size,
            clock_start,
            seed: raw.seed.unwrap_or(0),
            gateway_accepts_service_principals: raw
                .gateway_accepts_service_principals
                .unwrap_or(true),
            jupyter_audience: raw
                .jupyter_audience
                .unwrap_or_else(|| DEFAULT_JUPYTER_AUDIENCE.to_owned()),
            workspaces,
            instance_identities,
        })
    }
}

/// The `[[instance_identity]]` tables, checked: a known instance, a managed-identity
/// principal, a non-empty secret, one secret per instance (it is the instance's, not the
/// identity's) and no secret shared between instances.
fn instance_identities(
    raw: Vec<raw::RawInstanceIdentity>,
    principals: &[Principal],
    workspaces: &[Workspace],
    problems: &mut Vec<String>,
) -> Vec<InstanceIdentity> {
    let mut out: Vec<InstanceIdentity> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = format!("instance_identity[{i}]");
        let known = workspaces
            .iter()
            .flat_map(|w| &w.instances)
            .any(|x| x.name.eq_ignore_ascii_case(&r.instance));
        if !known {
            problems.push(format!(
                "{key}.instance: no instance named \"{}\"",
                r.instance
            ));
        }
        let principal = principals
            .iter()
            .position(|p| p.client_id.eq_ignore_ascii_case(&r.client_id));
        match principal {
            None => problems.push(format!(
                "{key}.client_id: no [[principal]] with client id \"{}\"",
                r.client_id
            )),
            Some(p) if !principals[p].managed_identity => problems.push(format!(
                "{key}.client_id: principal \"{}\" needs managed_identity = true",
                r.client_id
            )),
            Some(_) => {}
        }
        if r.secret.trim().is_empty() {
            problems.push(format!("{key}.secret: must not be empty"));
        }
        for o in &out {
            let same_instance = o.instance.eq_ignore_ascii_case(&r.instance);
            if same_instance && o.secret != r.secret {
                problems.push(format!(
                    "{key}.secret: differs from another identity of instance \"{}\" (one MSI_SECRET per instance)",
                    r.instance
                ));
            }
            if !same_instance && o.secret == r.secret {
                problems.push(format!(
                    "{key}.secret: already the secret of instance \"{}\"",
                    o.instance
                ));
            }
        }
        out.push(InstanceIdentity {
            instance: r.instance,
            principal: principal.unwrap_or(0),
            secret: r.secret,
        });
    }
    out
}

/// The `[[principal]]` tables, checked (at least one, unique client ids, a way to sign in,
/// well-formed action patterns), with their derived object ids and display names.
fn principals(raw: Vec<raw::RawPrincipal>, problems: &mut Vec<String>) -> Vec<Principal> {
    if raw.is_empty() {
        problems.push("principal: at least one [[principal]] is required".to_owned());
    }
    let mut principals = Vec::new();
    let mut seen_clients = HashSet::new();
    for (i, p) in raw.into_iter().enumerate() {
        if p.client_id.trim().is_empty() {
            problems.push(format!("principal[{i}].client_id: must not be empty"));
        }
        if !seen_clients.insert(p.client_id.to_ascii_lowercase()) {
            problems.push(format!(
                "principal[{i}].client_id: duplicate client id \"{}\"",
                p.client_id
            ));
        }
        if p.client_secret.is_none() && !p.managed_identity {
            problems.push(format!(
                "principal[{i}]: needs client_secret or managed_identity = true"
            ));
        }
        for a in &p.actions {
            if a.trim().is_empty() || a.contains(' ') {
                problems.push(format!("principal[{i}].actions: invalid pattern \"{a}\""));
            }
        }
        let object_id = p
            .object_id
            .unwrap_or_else(|| derived_object_id(&p.client_id));
        let display_name = p
            .display_name
            .unwrap_or_else(|| format!("app-{}", short(&p.client_id)));
        principals.push(Principal {
            client_id: p.client_id,
            client_secret: p.client_secret,
            actions: p.actions,
            object_id,
            managed_identity: p.managed_identity,
            display_name,
            user: p.user,
        });
    }
    principals
}

/// A humantime duration from the fleet file, or the default `d` when absent (or invalid,
/// with a problem noted), so one bad value still lets every other one be checked.
fn duration(key: &str, v: Option<String>, d: Duration, problems: &mut Vec<String>) -> Duration {
    match v {
        None => d,
        Some(s) => match humantime::parse_duration(&s) {
            Ok(x) => x,
            Err(e) => {
                problems.push(format!("{key}: invalid duration \"{s}\": {e}"));
                d
            }
        },
    }
}

/// An RFC 3339 time from the fleet file, if present and valid (a problem is noted if not).
fn timestamp(key: &str, v: Option<String>, problems: &mut Vec<String>) -> Option<Timestamp> {
    v.and_then(|s| match s.parse::<Timestamp>() {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(format!("{key}: invalid RFC 3339 time \"{s}\": {e}"));
            None
        }
    })
}

/// The `[timing]` table: how long each operation takes, defaults filling the gaps.
fn timing(raw: raw::RawTiming, problems: &mut Vec<String>) -> Timing {
    Timing {
        create: duration("timing.create", raw.create, DEFAULT_CREATE, problems),
        start: duration("timing.start", raw.start, DEFAULT_START, problems),
        stop: duration("timing.stop", raw.stop, DEFAULT_STOP, problems),
        restart: duration("timing.restart", raw.restart, DEFAULT_RESTART, problems),
        delete: duration("timing.delete", raw.delete, DEFAULT_DELETE, problems),
    }
}

/// The `[limits]` table (throttling buckets, token lifetime), defaults filling the gaps,
/// checked for a usable global factor and non-negative refill rates.
fn limits(raw: raw::RawLimits, problems: &mut Vec<String>) -> Limits {
    let d = Limits::default();
    let limits = Limits {
        read_bucket: raw.read_bucket.unwrap_or(d.read_bucket),
        read_refill_per_sec: raw.read_refill_per_sec.unwrap_or(d.read_refill_per_sec),
        write_bucket: raw.write_bucket.unwrap_or(d.write_bucket),
        write_refill_per_sec: raw.write_refill_per_sec.unwrap_or(d.write_refill_per_sec),
        delete_bucket: raw.delete_bucket,
        delete_refill_per_sec: raw.delete_refill_per_sec,
        global_factor: raw.global_factor.unwrap_or(d.global_factor),
        token_lifetime: duration(
            "limits.token_lifetime",
            raw.token_lifetime,
            d.token_lifetime,
            problems,
        ),
    };
    if limits.global_factor == 0 {
        problems.push("limits.global_factor: must be at least 1".to_owned());
    }
    if limits.read_refill_per_sec < 0.0
        || limits.write_refill_per_sec < 0.0
        || limits.delete_refill_per_sec.is_some_and(|r| r < 0.0)
    {
        problems.push("limits: refill rates must not be negative".to_owned());
    }
    limits
}

/// The `[[workspace]]` tables: ARM-safe ids, names unique (the control API names
/// workspaces by them), each with its instances.
fn workspaces(raw: Vec<raw::RawWorkspace>, problems: &mut Vec<String>) -> Vec<Workspace> {
    let mut workspaces = Vec::new();
    let mut seen_ws = HashSet::new();
    for (wi, w) in raw.into_iter().enumerate() {
        let wkey = format!("workspace[{wi}]");
        for (k, v) in [
            ("subscription_id", &w.subscription_id),
            ("resource_group", &w.resource_group),
            ("name", &w.name),
            ("location", &w.location),
        ] {
            if v.trim().is_empty() || v.contains('/') {
                problems.push(format!("{wkey}.{k}: invalid value \"{v}\""));
            }
        }
        if !seen_ws.insert(w.name.to_ascii_lowercase()) {
            problems.push(format!(
                "{wkey}.name: duplicate workspace name \"{}\" (the control API names workspaces by it)",
                w.name
            ));
        }
        let mut seen_inst = HashSet::new();
        let instances = w
            .instance
            .into_iter()
            .enumerate()
            .map(|(ii, inst)| {
                instance(
                    &format!("{wkey}.instance[{ii}]"),
                    inst,
                    &mut seen_inst,
                    problems,
                )
            })
            .collect();
        workspaces.push(Workspace {
            subscription_id: w.subscription_id,
            resource_group: w.resource_group,
            name: w.name,
            location: w.location,
            instances,
        });
    }
    workspaces
}

/// One `[[workspace.instance]]`: a unique ARM-safe name, a known initial state and sharing
/// policy (spelled as Azure spells them), valid durations, times and activity.
fn instance(
    ikey: &str,
    inst: raw::RawInstance,
    seen_inst: &mut HashSet<String>,
    problems: &mut Vec<String>,
) -> InstanceSpec {
    if inst.name.trim().is_empty() || inst.name.contains('/') {
        problems.push(format!("{ikey}.name: invalid value \"{}\"", inst.name));
    }
    if !seen_inst.insert(inst.name.to_ascii_lowercase()) {
        problems.push(format!("{ikey}.name: duplicate instance \"{}\"", inst.name));
    }
    let state = inst.state.unwrap_or_else(|| "Running".to_owned());
    let canonical = INITIAL_STATES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(&state));
    let state = match canonical {
        Some(s) => (*s).to_owned(),
        None => {
            problems.push(format!(
                "{ikey}.state: unknown state \"{state}\", expected one of {}",
                INITIAL_STATES.join(", ")
            ));
            state
        }
    };
    if let Some(i) = &inst.idle_time_before_shutdown
        && crate::iso8601::parse_duration(i).is_none()
    {
        problems.push(format!(
            "{ikey}.idle_time_before_shutdown: invalid ISO 8601 duration \"{i}\""
        ));
    }
    let started_at = timestamp(&format!("{ikey}.started_at"), inst.started_at, problems);
    let last_activity = timestamp(
        &format!("{ikey}.last_activity"),
        inst.last_activity,
        problems,
    );
    let activity = activity(ikey, inst.activity, problems);
    let policy = inst
        .application_sharing_policy
        .unwrap_or_else(|| "Shared".to_owned());
    let application_sharing_policy = match ["Shared", "Personal"]
        .iter()
        .find(|p| p.eq_ignore_ascii_case(&policy))
    {
        Some(p) => (*p).to_owned(),
        None => {
            problems.push(format!(
                "{ikey}.application_sharing_policy: unknown policy \"{policy}\", expected Shared or Personal"
            ));
            policy
        }
    };
    InstanceSpec {
        name: inst.name,
        vm_size: inst.vm_size,
        state,
        tags: inst.tags,
        idle_time_before_shutdown: inst.idle_time_before_shutdown,
        started_at,
        last_activity,
        created_by: inst.created_by,
        created_by_object_id: inst.created_by_object_id,
        application_sharing_policy,
        assigned_user: inst.assigned_user,
        activity,
    }
}

/// An instance's scripted `[[...activity]]` spans (jobs, kernels, …); only well-formed ones
/// are kept, so a bad span is reported rather than half-simulated.
fn activity(ikey: &str, raw: Vec<raw::RawActivity>, problems: &mut Vec<String>) -> Vec<Activity> {
    let mut activity = Vec::new();
    for (ai, a) in raw.into_iter().enumerate() {
        let akey = format!("{ikey}.activity[{ai}]");
        let kind = ActivityKind::parse(&a.kind);
        if kind.is_none() {
            let names: Vec<&str> = ActivityKind::ALL.iter().map(|k| k.name()).collect();
            problems.push(format!(
                "{akey}.kind: unknown kind \"{}\", expected one of {}",
                a.kind,
                names.join(", ")
            ));
        }
        let from = timestamp(&format!("{akey}.from"), Some(a.from), problems);
        let to = timestamp(&format!("{akey}.to"), Some(a.to), problems);
        if let (Some(kind), Some(from), Some(to)) = (kind, from, to) {
            if to <= from {
                problems.push(format!("{akey}: `to` must be after `from`"));
            }
            activity.push(Activity {
                kind,
                from,
                to,
                start: a.start.unwrap_or(false),
            });
        }
    }
    activity
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::demo()
    }
}

/// How long before the clock start a `Running` fleet instance is taken to have started.
pub(crate) fn default_running_for() -> Duration {
    DEFAULT_RUNNING_FOR
}

/// A stable object id for a principal that names none: the client id with its first
/// group flipped, so the two differ (as they do in Entra ID) but runs are reproducible.
fn derived_object_id(client_id: &str) -> String {
    let flipped: String = client_id
        .chars()
        .enumerate()
        .map(|(i, c)| match (i < 8, c.to_digit(16)) {
            (true, Some(d)) => char::from_digit(15 - d, 16).unwrap_or(c),
            _ => c,
        })
        .collect();
    flipped
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The built-in demo fleet (also what `Fleet::default()` gives).
pub const DEMO_FLEET: &str = r#"
tenant_id = "00000000-0000-0000-0000-0000000000aa"

[[principal]]
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = "s3cret"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]
display_name = "lightsout-demo"

[[principal]]
client_id = "22222222-2222-2222-2222-222222222222"
client_secret = "readonly"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/read", "Microsoft.MachineLearningServices/workspaces/read"]

[[principal]]
client_id = "33333333-3333-3333-3333-333333333333"
managed_identity = true
actions = ["*"]

[timing]
create = "3s"
start = "2s"
stop = "2s"
restart = "3s"
delete = "1s"

[[workspace]]
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "testrg123"
name = "workspaces123"
location = "eastus2"

[[workspace.instance]]
name = "ci-alice"
vm_size = "Standard_DS3_v2"
state = "Running"
tags = { team = "vision" }
idle_time_before_shutdown = "PT60M"

[[workspace.instance]]
name = "ci-bob"
vm_size = "Standard_DS3_v2"
state = "Stopped"
tags = { team = "vision" }

[[workspace.instance]]
name = "ci-carol"
vm_size = "Standard_NC6s_v3"
state = "JobRunning"
tags = { team = "nlp" }

[[workspace]]
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "rg-research"
name = "mlw-research"
location = "westeurope"

[[workspace.instance]]
name = "ci-dave"
vm_size = "Standard_E4ds_v4"
state = "Running"

[[workspace.instance]]
name = "ci-erin"
vm_size = "Standard_DS11_v2"
state = "Running"
tags = { lightsout-hold-until = "2030-01-01T00:00:00Z" }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// A fleet with a secret principal, a managed identity, instance ci-1, and `extra`.
    fn with_identities(extra: &str) -> Result<Fleet, FleetError> {
        let text = format!(
            r#"
tenant_id = "t"
[[principal]]
client_id = "sp"
client_secret = "s"
[[principal]]
client_id = "mi"
managed_identity = true
[[principal]]
client_id = "mi2"
managed_identity = true
[[workspace]]
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "rg"
name = "ws"
location = "eastus2"
[[workspace.instance]]
name = "ci-1"
vm_size = "Standard_DS3_v2"
state = "Running"
[[workspace.instance]]
name = "ci-2"
vm_size = "Standard_DS3_v2"
state = "Running"
{extra}
"#
        );
        Fleet::from_toml_str(&text, "f.toml")
    }

    #[test]
    fn instance_identities_parse_and_are_checked() {
        let f = with_identities(
            "[[instance_identity]]\ninstance = \"ci-1\"\nclient_id = \"mi\"\nsecret = \"x\"\n\
             [[instance_identity]]\ninstance = \"ci-1\"\nclient_id = \"mi2\"\nsecret = \"x\"\n",
        )
        .unwrap();
        assert_eq!(f.instance_identities.len(), 2);
        assert_eq!(f.instance_identities[1].principal, 2);
        assert!(!format!("{:?}", f.instance_identities[0]).contains("\"x\""));
        let bad = |extra: &str| with_identities(extra).unwrap_err().to_string();
        let e =
            bad("[[instance_identity]]\ninstance = \"nope\"\nclient_id = \"sp\"\nsecret = \"\"\n");
        assert!(
            e.contains("instance_identity[0].instance: no instance named"),
            "{e}"
        );
        assert!(e.contains("needs managed_identity = true"), "{e}");
        assert!(
            e.contains("instance_identity[0].secret: must not be empty"),
            "{e}"
        );
        let e = bad(
            "[[instance_identity]]\ninstance = \"ci-1\"\nclient_id = \"mi\"\nsecret = \"x\"\n\
             [[instance_identity]]\ninstance = \"ci-2\"\nclient_id = \"mi2\"\nsecret = \"x\"\n",
        );
        assert!(e.contains("already the secret of instance"), "{e}");
        assert!(!e.contains("\"x\""), "{e}");
    }

    #[test]
    fn demo_parses() {
        let f = Fleet::demo();
        assert_eq!(f.workspaces.len(), 2);
        assert_eq!(
            f.workspaces
                .iter()
                .map(|w| w.instances.len())
                .sum::<usize>(),
            5
        );
        assert_eq!(f.principals[0].client_secret.as_deref(), Some("s3cret"));
        assert_ne!(f.principals[0].object_id, f.principals[0].client_id);
        assert_eq!(f.timing.restart, Duration::from_secs(3));
        assert!(f.gateway_accepts_service_principals);
        assert!(
            f.workspaces[0]
                .instances
                .iter()
                .all(|i| i.application_sharing_policy == "Shared")
        );
    }

    #[test]
    fn contract_example_parses() {
        let text = r#"
tenant_id = "00000000-0000-0000-0000-0000000000aa"
[[principal]]
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = "s3cret"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]
[timing]
create = "3s"
start = "2s"
[[workspace]]
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "testrg123"
name = "workspaces123"
location = "eastus2"
[[workspace.instance]]
name = "ci-alice"
vm_size = "Standard_DS3_v2"
state = "Running"
tags = { team = "vision" }
idle_time_before_shutdown = "PT60M"
[[workspace.instance.activity]]
kind = "job"
from = "2026-03-30T09:00:00Z"
to = "2026-03-30T11:30:00Z"
"#;
        let f = Fleet::from_toml_str(text, "f.toml").unwrap();
        let i = &f.workspaces[0].instances[0];
        assert_eq!(i.activity.len(), 1);
        assert_eq!(i.activity[0].kind, ActivityKind::Job);
        assert_eq!(f.timing.stop, DEFAULT_STOP);
    }

    #[test]
    fn every_activity_kind_parses_and_an_unknown_one_lists_them() {
        let base = "tenant_id = \"t\"\n[[principal]]\nclient_id = \"a\"\nclient_secret = \"b\"\n[[workspace]]\nsubscription_id = \"s\"\nresource_group = \"r\"\nname = \"w\"\nlocation = \"l\"\n[[workspace.instance]]\nname = \"x\"\nvm_size = \"v\"\n";
        let with = |kind: &str| {
            format!(
                "{base}[[workspace.instance.activity]]\nkind = \"{kind}\"\nfrom = \"2026-03-30T09:00:00Z\"\nto = \"2026-03-30T10:00:00Z\"\n"
            )
        };
        for k in ActivityKind::ALL {
            let f = Fleet::from_toml_str(&with(k.name()), "f.toml").unwrap();
            assert_eq!(f.workspaces[0].instances[0].activity[0].kind, k);
        }
        let msg = Fleet::from_toml_str(&with("tmux"), "f.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown kind \"tmux\""), "{msg}");
        assert!(
            msg.contains("gpu_busy, terminal_input, ssh, vscode_connected"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let text = "tenant_id = \"t\"\nbogus = 1\n";
        let e = Fleet::from_toml_str(text, "fleet.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("fleet.toml:2:"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn unknown_nested_key_is_rejected() {
        let text = "tenant_id = \"t\"\n[[principal]]\nclient_id = \"a\"\nclient_secret = \"b\"\nrole = \"x\"\n";
        let msg = Fleet::from_toml_str(text, "f.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("role"), "{msg}");
    }

    #[test]
    fn collects_every_problem() {
        let text = r#"
tenant_id = "t"
[[principal]]
client_id = "a"
[timing]
start = "soon"
[[workspace]]
subscription_id = "s"
resource_group = "r"
name = "w"
location = "l"
[[workspace.instance]]
name = "x"
vm_size = "v"
state = "Sleeping"
"#;
        match Fleet::from_toml_str(text, "f.toml").unwrap_err() {
            FleetError::Invalid { problems, .. } => {
                assert_eq!(problems.len(), 3, "{problems:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
