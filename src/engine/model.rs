//! Domain vocabulary shared by the client, the engine and the CLI.
//!
//! Pure types only: no I/O, no clock. Wire shapes live in `azure::wire`.

use std::fmt;

use serde::Serialize;

/// The address of one Azure ML workspace in Azure Resource Manager.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceRef {
    /// Subscription id (a GUID).
    pub subscription_id: String,
    /// Resource group name.
    pub resource_group: String,
    /// The Azure ML workspace's own name.
    pub workspace: String,
}

impl WorkspaceRef {
    /// ARM path of the workspace, without a leading endpoint and without query.
    pub fn arm_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}",
            self.subscription_id, self.resource_group, self.workspace
        )
    }

    /// ARM path of the workspace's compute collection.
    pub fn computes_path(&self) -> String {
        format!("{}/computes", self.arm_path())
    }

    /// ARM path of one compute in the workspace.
    pub fn compute_path(&self, name: &str) -> String {
        format!("{}/computes/{}", self.arm_path(), name)
    }
}

impl fmt::Display for WorkspaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.subscription_id, self.resource_group, self.workspace
        )
    }
}

/// A compute instance's state as Azure reports it, in the engine's terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InstanceState {
    Running,
    /// Running and executing a job: busy.
    JobRunning,
    Stopped,
    Starting,
    Stopping,
    Restarting,
    Creating,
    Deleting,
    SettingUp,
    UserSettingUp,
    Resizing,
    Unknown,
    CreateFailed,
    Unusable,
    /// A value this version does not know; treated as transitional (no action).
    Other(String),
}

impl InstanceState {
    /// Parse Azure's `state` string; unknown values are kept, not rejected.
    pub fn from_azure(s: &str) -> InstanceState {
        match s {
            "Running" => InstanceState::Running,
            "JobRunning" => InstanceState::JobRunning,
            "Stopped" => InstanceState::Stopped,
            "Starting" => InstanceState::Starting,
            "Stopping" => InstanceState::Stopping,
            "Restarting" => InstanceState::Restarting,
            "Creating" => InstanceState::Creating,
            "Deleting" => InstanceState::Deleting,
            "SettingUp" => InstanceState::SettingUp,
            "UserSettingUp" => InstanceState::UserSettingUp,
            "Resizing" => InstanceState::Resizing,
            "Unknown" => InstanceState::Unknown,
            "CreateFailed" => InstanceState::CreateFailed,
            "Unusable" => InstanceState::Unusable,
            other => InstanceState::Other(other.to_owned()),
        }
    }

    /// Azure's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            InstanceState::Running => "Running",
            InstanceState::JobRunning => "JobRunning",
            InstanceState::Stopped => "Stopped",
            InstanceState::Starting => "Starting",
            InstanceState::Stopping => "Stopping",
            InstanceState::Restarting => "Restarting",
            InstanceState::Creating => "Creating",
            InstanceState::Deleting => "Deleting",
            InstanceState::SettingUp => "SettingUp",
            InstanceState::UserSettingUp => "UserSettingUp",
            InstanceState::Resizing => "Resizing",
            InstanceState::Unknown => "Unknown",
            InstanceState::CreateFailed => "CreateFailed",
            InstanceState::Unusable => "Unusable",
            InstanceState::Other(s) => s,
        }
    }

    /// Billed as running: `Running` or `JobRunning`.
    pub fn is_running(&self) -> bool {
        matches!(self, InstanceState::Running | InstanceState::JobRunning)
    }

    /// `Stopped`.
    pub fn is_stopped(&self) -> bool {
        matches!(self, InstanceState::Stopped)
    }

    /// Neither settled running nor stopped: the decision waits (CONTRACT section 3). Failed
    /// and unknown states are included: acting on them is never safe.
    pub fn is_transitional(&self) -> bool {
        !self.is_running() && !self.is_stopped()
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // An unknown state is ARM's text: shown escaped and bounded.
            InstanceState::Other(s) => f.write_str(&crate::engine::text::display_text(s, 256)),
            known => f.write_str(known.as_str()),
        }
    }
}

/// The kinds of operation Azure records in `lastOperation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationKind {
    Create,
    Start,
    Stop,
    Restart,
    Reimage,
    Delete,
    Other(String),
}

/// Who triggered the last operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationTrigger {
    User,
    Schedule,
    IdleShutdown,
    Other(String),
}

/// Azure's `lastOperation` of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastOperation {
    pub kind: OperationKind,
    pub at: jiff::Timestamp,
    /// `operationStatus` was `Succeeded`.
    pub succeeded: bool,
    pub trigger: OperationTrigger,
}

/// Activity reported by the instance's Jupyter server, when that signal is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JupyterActivity {
    /// Not asked (signal off) or not applicable (instance not running).
    #[default]
    NotObserved,
    /// Asked but no answer: idle time cannot be known, so no idle stop.
    Unavailable,
    /// The server's answer.
    Seen {
        /// `last_activity` of the server (kernels, terminals, connections).
        last_activity: Option<jiff::Timestamp>,
        /// A kernel's `execution_state` is `busy`.
        kernel_busy: bool,
    },
}

/// What the on-instance agent's heartbeat says, when that signal is used
/// (`signals = ["agent"]`; see `engine::heartbeat`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgentActivity {
    /// Not asked (signal off) or not applicable (instance not running).
    #[default]
    NotObserved,
    /// Asked, but nothing usable: no heartbeat, a stale one, or the storage account did not
    /// answer. Activity is unknown, never idle.
    Unknown(AgentUnknown),
    /// A fresh heartbeat's verdict.
    Seen(crate::engine::heartbeat::Verdict),
}

/// Why the agent's view of an instance is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentUnknown {
    /// No heartbeat blob for the instance.
    Missing,
    /// The newest heartbeat is older than the staleness limit.
    Stale,
    /// The storage account could not be listed this pass.
    Unreachable,
    /// The heartbeat blob was ignored (see `heartbeat::Rejected`).
    Rejected,
}

/// Everything observed of one instance in one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceObservation {
    /// Workspace alias from the config.
    pub workspace: String,
    pub name: String,
    pub state: InstanceState,
    pub vm_size: String,
    pub tags: std::collections::BTreeMap<String, String>,
    pub last_operation: Option<LastOperation>,
    pub jupyter: JupyterActivity,
    /// The on-instance agent's heartbeat.
    pub agent: AgentActivity,
    /// Azure's own idle shutdown and start/stop schedules on the instance.
    pub native: crate::engine::native::types::NativeObserved,
}

impl InstanceObservation {
    /// The `lightsout = "off"` tag excludes the instance from every policy.
    pub fn excluded(&self) -> bool {
        self.tags
            .get(TAG_EXCLUDE)
            .is_some_and(|v| v.eq_ignore_ascii_case("off"))
    }

    /// `lightsout-hold-until` as an instant; `Err` carries the bad value.
    pub fn hold_until(&self) -> Option<Result<jiff::Timestamp, String>> {
        self.tags
            .get(TAG_HOLD_UNTIL)
            .map(|v| v.parse::<jiff::Timestamp>().map_err(|_| v.clone()))
    }

    /// Why `lightsout-hold-until` cannot be read, when it is set but unreadable (a date
    /// without a time, no offset, a stray space, a year beyond what we can represent). Such
    /// a hold still holds: someone meant to keep the instance up and wrote it wrong.
    pub fn invalid_hold(&self) -> Option<String> {
        let value = self.hold_until()?.err()?;
        let shown: String = value.chars().take(64).collect();
        let more = if value.chars().count() > 64 {
            "…"
        } else {
            ""
        };
        Some(format!(
            "{TAG_HOLD_UNTIL} = {shown:?}{more} is not an RFC 3339 instant with an offset \
             (e.g. 2030-01-31T18:00:00Z); held until the tag is fixed or removed"
        ))
    }
}

/// Tag that excludes an instance when set to `off`.
pub const TAG_EXCLUDE: &str = "lightsout";
/// Tag holding an RFC 3339 instant before which the instance must not be stopped.
pub const TAG_HOLD_UNTIL: &str = "lightsout-hold-until";
/// Tag with the free-text reason of a hold (`lightsout hold --reason`); informational only.
pub const TAG_HOLD_REASON: &str = "lightsout-hold-reason";

crate::engine::text_enum::text_enum! {
    what = "action";
    /// What lightsout asks Azure to do to an instance: a power action, or a change of its
    /// native settings (`[policy.native]`).
    #[derive(
        Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
    )]
    #[serde(rename_all = "snake_case")]
    pub enum Action {
        Start = "start",
        Stop = "stop",
        Restart = "restart",
        /// Azure's own idle shutdown (`idleTimeBeforeShutdown`, set by a PUT of the compute).
        IdleShutdown = "idle_shutdown",
        /// Azure's own start/stop schedules (set by a PUT of the compute).
        Schedules = "schedules",
        /// A snooze asked on the instance and honoured (a hold): only ever an audit row,
        /// never a request to Azure.
        Snooze = "snooze",
    }
}

impl Action {
    /// A change of native settings rather than of the power state.
    pub fn is_native(self) -> bool {
        matches!(self, Action::IdleShutdown | Action::Schedules)
    }

    /// A request Azure is ever sent for (all but [`Action::Snooze`], which is recorded only).
    pub fn is_request(self) -> bool {
        self != Action::Snooze
    }
}

impl From<crate::engine::native::types::NativeKind> for Action {
    fn from(kind: crate::engine::native::types::NativeKind) -> Action {
        use crate::engine::native::types::NativeKind;
        match kind {
            NativeKind::IdleShutdown => Action::IdleShutdown,
            NativeKind::Schedules => Action::Schedules,
        }
    }
}

crate::engine::text_enum::text_enum! {
    what = "reason";
    /// Why an action is planned (the `reason` of logs, the audit log and metric labels).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Reason {
        /// A window closed, or a holiday or `down` exception began.
        OutsideWindow = "outside_window",
        /// A window opened (`start = "window"`).
        WindowOpen = "window_open",
        /// Idle past the policy's timeout.
        Idle = "idle",
        /// Running past `max_uptime`.
        MaxUptime = "max_uptime",
        /// A cron event.
        Event = "event",
        /// Native settings reconciled.
        Native = "native",
        /// A snooze from the instance (the reason of a `snooze` audit row).
        Snooze = "snooze",
    }
}

/// Which instance a memory belongs to: workspace alias (from the config) and instance name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct InstanceKey {
    /// Workspace alias from the config.
    pub workspace: String,
    /// Compute instance name.
    pub instance: String,
}

impl InstanceKey {
    pub fn new(workspace: impl Into<String>, instance: impl Into<String>) -> InstanceKey {
        InstanceKey {
            workspace: workspace.into(),
            instance: instance.into(),
        }
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.workspace, self.instance)
    }
}
