//! Wire types: the JSON shapes of the Azure ML compute API as Azure Resource Manager sends them.
//!
//! These types mirror ARM, not our domain. They are deliberately lenient:
//! - no `deny_unknown_fields`: Azure adds fields and we must not break when it does;
//! - almost every field is optional, and `null` is accepted wherever a value may be absent;
//! - every enum keeps values it does not know as `Other(String)` and writes them back verbatim
//!   (known values are matched case-insensitively and written back in their canonical spelling);
//! - `properties.properties` is typed only for `ComputeInstance`; other compute types (AKS,
//!   AmlCompute, Kubernetes, ...) keep their inner properties as raw JSON.
//!
//! Serialisation skips absent fields, so a `ComputeResource` built for a PUT yields a minimal body.
//! Nothing here does I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::text::{ARM_TEXT_CHARS, cut_counted, display_text, snippet};

/// Declares a string enum that accepts unknown values as `Other(String)`.
///
/// Known values match case-insensitively; `Other` round-trips byte for byte.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`", $wire, "`")] $variant, )+
            /// A value this version of lightsout does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire spelling of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Other(s) => s.as_str(),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $( if s.eq_ignore_ascii_case($wire) { return Self::$variant; } )+
                Self::Other(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                match v {
                    $name::Other(s) => s,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    // Unknown values come from ARM: shown escaped and bounded.
                    Self::Other(s) => f.write_str(&display_text(s, 256)),
                    known => f.write_str(known.as_str()),
                }
            }
        }
    };
}

string_enum! {
    /// `properties.computeType`: the kind of compute.
    ComputeType {
        Aks = "AKS",
        Kubernetes = "Kubernetes",
        AmlCompute = "AmlCompute",
        ComputeInstance = "ComputeInstance",
        DataFactory = "DataFactory",
        VirtualMachine = "VirtualMachine",
        HdInsight = "HDInsight",
        Databricks = "Databricks",
        DataLakeAnalytics = "DataLakeAnalytics",
        SynapseSpark = "SynapseSpark",
    }
}

string_enum! {
    /// `properties.provisioningState`: ARM provisioning state of the compute resource.
    ProvisioningState {
        Unknown = "Unknown",
        Updating = "Updating",
        Creating = "Creating",
        Deleting = "Deleting",
        Succeeded = "Succeeded",
        Failed = "Failed",
        Canceled = "Canceled",
    }
}

string_enum! {
    /// `properties.properties.state`: power/lifecycle state of a compute instance.
    ComputeInstanceState {
        Creating = "Creating",
        CreateFailed = "CreateFailed",
        Deleting = "Deleting",
        Running = "Running",
        Restarting = "Restarting",
        Resizing = "Resizing",
        JobRunning = "JobRunning",
        SettingUp = "SettingUp",
        SetupFailed = "SetupFailed",
        Starting = "Starting",
        Stopped = "Stopped",
        Stopping = "Stopping",
        UserSettingUp = "UserSettingUp",
        UserSetupFailed = "UserSetupFailed",
        Unknown = "Unknown",
        Unusable = "Unusable",
    }
}

impl ComputeInstanceState {
    /// True while the instance moves between states; acting on it now would race Azure.
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            Self::Creating
                | Self::Deleting
                | Self::Restarting
                | Self::Resizing
                | Self::SettingUp
                | Self::Starting
                | Self::Stopping
                | Self::UserSettingUp
        )
    }

    /// True when the VM is up and billed for compute (`Running` or `JobRunning`).
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running | Self::JobRunning)
    }

    /// True when the instance is stopped (compute not billed).
    pub fn is_stopped(&self) -> bool {
        matches!(self, Self::Stopped)
    }
}

string_enum! {
    /// `lastOperation.operationName`.
    OperationName {
        Create = "Create",
        Start = "Start",
        Stop = "Stop",
        Restart = "Restart",
        Resize = "Resize",
        Reimage = "Reimage",
        Delete = "Delete",
    }
}

string_enum! {
    /// `lastOperation.operationStatus`.
    OperationStatus {
        InProgress = "InProgress",
        Succeeded = "Succeeded",
        CreateFailed = "CreateFailed",
        StartFailed = "StartFailed",
        StopFailed = "StopFailed",
        RestartFailed = "RestartFailed",
        ResizeFailed = "ResizeFailed",
        ReimageFailed = "ReimageFailed",
        DeleteFailed = "DeleteFailed",
    }
}

string_enum! {
    /// `lastOperation.operationTrigger`: who caused the last operation.
    OperationTrigger {
        User = "User",
        Schedule = "Schedule",
        IdleShutdown = "IdleShutdown",
    }
}

string_enum! {
    /// `Enabled` / `Disabled` of a start/stop schedule.
    ScheduleStatus {
        Enabled = "Enabled",
        Disabled = "Disabled",
    }
}

string_enum! {
    /// The action a start/stop schedule performs.
    ComputePowerAction {
        Start = "Start",
        Stop = "Stop",
    }
}

string_enum! {
    /// How a start/stop schedule is triggered.
    TriggerType {
        Recurrence = "Recurrence",
        Cron = "Cron",
    }
}

string_enum! {
    /// Frequency unit of a recurrence schedule.
    RecurrenceFrequency {
        Minute = "Minute",
        Hour = "Hour",
        Day = "Day",
        Week = "Week",
        Month = "Month",
    }
}

string_enum! {
    /// A day of the week in a recurrence schedule.
    WeekDay {
        Monday = "Monday",
        Tuesday = "Tuesday",
        Wednesday = "Wednesday",
        Thursday = "Thursday",
        Friday = "Friday",
        Saturday = "Saturday",
        Sunday = "Sunday",
    }
}

string_enum! {
    /// Provisioning status of a schedule on the instance.
    ScheduleProvisioningState {
        Completed = "Completed",
        Provisioning = "Provisioning",
        Failed = "Failed",
    }
}

string_enum! {
    /// `sshSettings.sshPublicAccess`.
    SshPublicAccess {
        Enabled = "Enabled",
        Disabled = "Disabled",
    }
}

string_enum! {
    /// `applicationSharingPolicy`.
    ApplicationSharingPolicy {
        Personal = "Personal",
        Shared = "Shared",
    }
}

string_enum! {
    /// `computeInstanceAuthorizationType`.
    ComputeInstanceAuthorizationType {
        Personal = "personal",
    }
}

string_enum! {
    /// `status` of an `Azure-AsyncOperation` status resource.
    ///
    /// ARM defines the terminal values `Succeeded`, `Failed` and `Canceled`; every other value
    /// (including RP-specific ones such as `Running` or `Accepted`) means "still in progress".
    AsyncOperationStatus {
        InProgress = "InProgress",
        Succeeded = "Succeeded",
        Failed = "Failed",
        Canceled = "Canceled",
    }
}

impl AsyncOperationStatus {
    /// True for `Succeeded`, `Failed` and `Canceled`.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

crate::engine::text_enum::text_enum! {
    what = "underlying resource action";
    /// What happens to the underlying Azure resource when a compute is deleted
    /// (`underlyingResourceAction` query parameter).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum UnderlyingResourceAction {
        /// Delete the underlying compute (for a compute instance: the VM).
        Delete = "Delete",
        /// Detach it from the workspace and leave it running.
        Detach = "Detach",
    }
}

/// One ARM compute resource (`Microsoft.MachineLearningServices/workspaces/computes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeResource {
    /// Full ARM id. Absent in create bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The compute's name (last path segment of `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ARM resource type, `Microsoft.MachineLearningServices/workspaces/computes`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Azure region, e.g. `eastus2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Resource tags; `null` and absent both mean none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Managed identity block, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    /// SKU block, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Value>,
    /// ARM `systemData`, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_data: Option<Value>,
    /// The compute's properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Compute>,
}

impl ComputeResource {
    /// The compute type, if the resource says.
    pub fn compute_type(&self) -> Option<&ComputeType> {
        self.properties.as_ref()?.compute_type.as_ref()
    }

    /// The compute-instance properties, when this is a compute instance.
    pub fn instance(&self) -> Option<&ComputeInstanceProperties> {
        match self.properties.as_ref()?.properties.as_ref()? {
            ComputeDetails::Instance(p) => Some(p),
            ComputeDetails::Other(_) => None,
        }
    }

    /// The instance's state, when this is a compute instance that reports one.
    pub fn instance_state(&self) -> Option<&ComputeInstanceState> {
        self.instance()?.state.as_ref()
    }

    /// A tag value by exact key.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.as_ref()?.get(key).map(String::as_str)
    }
}

/// `properties` of a compute resource: the fields common to every compute type plus the
/// type-specific inner `properties`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawCompute", into = "RawCompute")]
pub struct Compute {
    /// The kind of compute; decides how `properties` is read.
    pub compute_type: Option<ComputeType>,
    /// ARM provisioning state.
    pub provisioning_state: Option<ProvisioningState>,
    /// Free-text description.
    pub description: Option<String>,
    /// Creation time as sent (ISO 8601 with 7 fractional digits), not parsed.
    pub created_on: Option<String>,
    /// Last modification time as sent.
    pub modified_on: Option<String>,
    /// ARM id of the underlying resource (e.g. an AKS cluster).
    pub resource_id: Option<String>,
    /// Location of the underlying compute.
    pub compute_location: Option<String>,
    /// True when the compute was attached rather than created by Azure ML.
    pub is_attached_compute: Option<bool>,
    /// True when local (key) auth is disabled.
    pub disable_local_auth: Option<bool>,
    /// Provisioning errors, kept raw.
    pub provisioning_errors: Option<Value>,
    /// Type-specific properties.
    pub properties: Option<ComputeDetails>,
}

/// The type-specific inner `properties` of a compute.
#[derive(Debug, Clone, PartialEq)]
pub enum ComputeDetails {
    /// A compute instance (`computeType = ComputeInstance`).
    Instance(Box<ComputeInstanceProperties>),
    /// Any other compute type, kept as raw JSON.
    Other(Value),
}

/// Serde bridge for [`Compute`]: the same fields with the inner properties as raw JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCompute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compute_type: Option<ComputeType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provisioning_state: Option<ProvisioningState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    modified_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compute_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_attached_compute: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disable_local_auth: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provisioning_errors: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    properties: Option<Value>,
}

impl TryFrom<RawCompute> for Compute {
    type Error = serde_json::Error;

    fn try_from(raw: RawCompute) -> Result<Self, Self::Error> {
        let properties = match (raw.properties, &raw.compute_type) {
            (None | Some(Value::Null), _) => None,
            (Some(v), Some(ComputeType::ComputeInstance)) => Some(ComputeDetails::Instance(
                Box::new(serde_json::from_value(v)?),
            )),
            (Some(v), _) => Some(ComputeDetails::Other(v)),
        };
        Ok(Compute {
            compute_type: raw.compute_type,
            provisioning_state: raw.provisioning_state,
            description: raw.description,
            created_on: raw.created_on,
            modified_on: raw.modified_on,
            resource_id: raw.resource_id,
            compute_location: raw.compute_location,
            is_attached_compute: raw.is_attached_compute,
            disable_local_auth: raw.disable_local_auth,
            provisioning_errors: raw.provisioning_errors,
            properties,
        })
    }
}

impl From<Compute> for RawCompute {
    fn from(c: Compute) -> Self {
        let properties = match c.properties {
            None => None,
            // Serialising our own plain struct to a Value cannot fail (no maps with non-string
            // keys, no custom serialisers that error); fall back to null rather than panic.
            Some(ComputeDetails::Instance(p)) => {
                Some(serde_json::to_value(*p).unwrap_or(Value::Null))
            }
            Some(ComputeDetails::Other(v)) => Some(v),
        };
        RawCompute {
            compute_type: c.compute_type,
            provisioning_state: c.provisioning_state,
            description: c.description,
            created_on: c.created_on,
            modified_on: c.modified_on,
            resource_id: c.resource_id,
            compute_location: c.compute_location,
            is_attached_compute: c.is_attached_compute,
            disable_local_auth: c.disable_local_auth,
            provisioning_errors: c.provisioning_errors,
            properties,
        }
    }
}

/// Inner `properties` of a compute instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeInstanceProperties {
    /// Lifecycle/power state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ComputeInstanceState>,
    /// VM size, e.g. `STANDARD_NC6` (case varies; compare case-insensitively).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    /// The last operation Azure ran on the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_operation: Option<LastOperation>,
    /// Azure-side start/stop schedules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedules: Option<ComputeSchedules>,
    /// Azure's own idle shutdown, ISO 8601 duration such as `PT60M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_time_before_shutdown: Option<String>,
    /// Applications (Jupyter, ...) the instance exposes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<Application>>,
    /// The user a personal instance is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_compute_instance_settings: Option<PersonalComputeInstanceSettings>,
    /// Who created the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<CreatedBy>,
    /// SSH settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_settings: Option<SshSettings>,
    /// Subnet the instance lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<ResourceId>,
    /// Public and private IP addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity_endpoints: Option<ConnectivityEndpoints>,
    /// `personal` for personal instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_instance_authorization_type: Option<ComputeInstanceAuthorizationType>,
    /// Who may use the applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_sharing_policy: Option<ApplicationSharingPolicy>,
    /// Errors reported by the instance (`null` when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ErrorResponseBody>>,
    /// Whether the node has a public IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_node_public_ip: Option<bool>,
    /// Custom services (RStudio, ...), kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_services: Option<Vec<Value>>,
    /// OS image versions, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_image_metadata: Option<Value>,
    /// Setup scripts, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_scripts: Option<Value>,
}

/// `lastOperation` of a compute instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastOperation {
    /// What ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<OperationName>,
    /// When it ran, as sent (RFC 3339), not parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_time: Option<String>,
    /// How it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_status: Option<OperationStatus>,
    /// Who triggered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_trigger: Option<OperationTrigger>,
}

/// `schedules` of a compute instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeSchedules {
    /// Start/stop schedules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_start_stop: Option<Vec<ComputeStartStopSchedule>>,
}

/// One Azure-side start/stop schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeStartStopSchedule {
    /// Schedule id assigned by Azure (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Provisioning status (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_status: Option<ScheduleProvisioningState>,
    /// Enabled or disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ScheduleStatus>,
    /// Start or stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ComputePowerAction>,
    /// Which of `cron` / `recurrence` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<TriggerType>,
    /// Cron trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronTrigger>,
    /// Recurrence trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Recurrence>,
    /// Deprecated `schedule` block, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Value>,
}

/// A cron trigger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronTrigger {
    /// 5-field cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Local start time without offset, e.g. `2021-04-23T01:30:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Windows time-zone name, e.g. `Pacific Standard Time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A recurrence trigger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recurrence {
    /// Frequency unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<RecurrenceFrequency>,
    /// Number of frequency units between runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Local start time without offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Windows time-zone name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// At which hours/minutes/days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<RecurrenceSchedule>,
}

/// The when of a recurrence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurrenceSchedule {
    /// Hours of the day (0-23).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<Vec<i32>>,
    /// Minutes of the hour (0-59).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<Vec<i32>>,
    /// Days of the week; `null` means every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub week_days: Option<Vec<WeekDay>>,
    /// Days of the month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month_days: Option<Vec<i32>>,
}

/// An application endpoint on a compute instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// E.g. `Jupyter`, `JupyterLab`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Absolute URL of the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_uri: Option<String>,
}

/// `personalComputeInstanceSettings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonalComputeInstanceSettings {
    /// The assigned user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_user: Option<AssignedUser>,
}

/// An Entra ID user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedUser {
    /// Object id (GUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Tenant id (GUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// `createdBy` of a compute instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedBy {
    /// User principal name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Tenant id of the creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_org_id: Option<String>,
    /// Object id of the creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `sshSettings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshSettings {
    /// Whether the SSH port is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_public_access: Option<SshPublicAccess>,
    /// Admin user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user_name: Option<String>,
    /// SSH port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_port: Option<u16>,
    /// Admin public key (a public key, not a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_public_key: Option<String>,
}

/// A `{ "id": ... }` reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceId {
    /// ARM id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `connectivityEndpoints`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectivityEndpoints {
    /// Public IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip_address: Option<String>,
    /// Private IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
}

/// `{ "error": {...} }`: the ARM error envelope, also used in instance `errors` lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponseBody {
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ArmError>,
}

/// One page of `GET .../computes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeList {
    /// The computes on this page (`null` or absent = none).
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: Vec<ComputeResource>,
    /// Absolute URL of the next page; absent or empty on the last page. Followed verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// One entry of `GET {scope}/providers/Microsoft.Authorization/permissions`: what one role
/// assignment (or deny assignment) lets the caller do at that scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// Allowed control-plane action patterns (`*` wildcards).
    #[serde(default, deserialize_with = "null_as_default")]
    pub actions: Vec<String>,
    /// Patterns carved out of `actions` of this same entry.
    #[serde(default, deserialize_with = "null_as_default")]
    pub not_actions: Vec<String>,
    /// Data-plane actions (unused by lightsout; kept for completeness).
    #[serde(default, deserialize_with = "null_as_default")]
    pub data_actions: Vec<String>,
    /// Data-plane carve-outs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub not_data_actions: Vec<String>,
}

impl Permission {
    /// Whether this entry grants `action`: some `actions` pattern matches and no `notActions`
    /// pattern does (ARM's evaluation, per entry; case-insensitive, `*` matches any run).
    pub fn grants(&self, action: &str) -> bool {
        self.actions.iter().any(|p| action_matches(p, action))
            && !self.not_actions.iter().any(|p| action_matches(p, action))
    }
}

/// Whether the caller's permissions grant `action` through any entry.
pub fn permissions_grant(permissions: &[Permission], action: &str) -> bool {
    permissions.iter().any(|p| p.grants(action))
}

/// Whether the RBAC action pattern `pattern` covers `action` (`*` matches any run of characters,
/// ASCII case ignored), as in role definitions.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let p = pattern.to_ascii_lowercase().into_bytes();
    let s = action.to_ascii_lowercase().into_bytes();
    // Iterative wildcard match, backtracking to the last `*`.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if p.get(pi) == Some(&b'*') {
            star = Some((pi, si));
            pi += 1;
        } else if p.get(pi) == s.get(si) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// One page of the permissions list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionList {
    /// The entries on this page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: Vec<Permission>,
    /// Absolute URL of the next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// Body of `updateIdleShutdownSetting`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleShutdownSetting {
    /// ISO 8601 duration such as `PT60M`.
    pub idle_time_before_shutdown: String,
}

/// Body of an `Azure-AsyncOperation` status resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatusBody {
    /// Operation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Operation name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Current status.
    pub status: AsyncOperationStatus,
    /// Percent complete (0-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<f64>,
    /// Start time as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// End time as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Why the operation failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ArmError>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An ARM error (`ErrorDetail` in the ARM common types).
///
/// Parsed tolerantly ([`ArmError::from_body`]): the standard `{"error": {...}}` envelope, a
/// bare `{"code", "message"}` object, and anything else (HTML from a proxy, an empty body)
/// become an `ArmError` rather than a second error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmError {
    /// Machine-readable code, e.g. `AuthorizationFailed`. Empty when the body had none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub code: String,
    /// Human-readable message. For non-JSON bodies: the first characters of the body.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub message: String,
    /// The field or resource the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Nested errors.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_vec"
    )]
    pub details: Vec<ArmError>,
    /// Additional info, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<Vec<Value>>,
}

impl ArmError {
    /// Parses an error body tolerantly.
    ///
    /// Accepts `{"error": {...}}`, a top-level `{"code": ..., "message": ...}`, and falls back to
    /// an `ArmError` with an empty code whose message is the first
    /// [`BODY_SNIPPET_CHARS`](crate::engine::text::BODY_SNIPPET_CHARS) characters of the (trimmed)
    /// body, or `HTTP <status>` for an empty body.
    pub fn from_body(status: u16, body: &[u8]) -> ArmError {
        #[derive(Deserialize)]
        struct Envelope {
            error: Option<ArmError>,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
            if let Some(e) = env.error {
                return e.bounded(0);
            }
            if (env.code.is_some() || env.message.is_some())
                && let Ok(e) = serde_json::from_slice::<ArmError>(body)
            {
                return e.bounded(0);
            }
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            format!("HTTP {status}")
        } else {
            snippet(text)
        };
        ArmError {
            message,
            ..ArmError::default()
        }
    }

    /// Cuts every text to [`ARM_TEXT_CHARS`] and nesting to a few levels: what ARM sends is
    /// kept in memory, logged and shown, so its size is ours to bound.
    fn bounded(mut self, depth: usize) -> ArmError {
        const MAX_DEPTH: usize = 4;
        const MAX_DETAILS: usize = 16;
        self.code = cut_counted(&self.code, ARM_TEXT_CHARS);
        self.message = cut_counted(&self.message, ARM_TEXT_CHARS);
        self.target = self.target.map(|t| cut_counted(&t, ARM_TEXT_CHARS));
        if let Some(info) = &mut self.additional_info {
            info.truncate(MAX_DETAILS);
        }
        if depth >= MAX_DEPTH {
            self.details.clear();
        }
        self.details.truncate(MAX_DETAILS);
        self.details = std::mem::take(&mut self.details)
            .into_iter()
            .map(|d| d.bounded(depth + 1))
            .collect();
        self
    }

    /// For `AuthorizationFailed`: the RBAC action the caller lacks, parsed from
    /// `"... does not have authorization to perform action 'X' over scope ..."`.
    /// Also looks in `details`.
    pub fn missing_action(&self) -> Option<String> {
        const MARKER: &str = "perform action '";
        if let Some(start) = self.message.find(MARKER) {
            let rest = &self.message[start + MARKER.len()..];
            if let Some(end) = rest.find('\'') {
                let action = &rest[..end];
                if !action.is_empty() {
                    // Shown to the user as is: escaped like the rest of ARM's text.
                    return Some(display_text(action, 256));
                }
            }
        }
        self.details.iter().find_map(ArmError::missing_action)
    }
}

impl ArmError {
    /// Does this error say the instance was in the wrong state for the action? Such an error
    /// is a refusal (nothing was done, and sending it again will not help until the state
    /// changes), not a failure. Looks at nested `details` too.
    ///
    /// Known from public reports (no recording holds one; see
    /// `tests/fixtures/azure/recorded/README.md`): code
    /// `StartComputeInstanceOnlyAllowedInStoppedState`, message "Start Azure ML Compute
    /// Instance is only allowed when the instance {name} is in 'stopped' state", reported as a
    /// failed long-running operation (microsoft/vscode-tools-for-ai#2096, #1100, #2439); and
    /// "StopCompute is not allowed when ComputeInstance disk is full." (#2605). Codes for stop
    /// and restart are not documented, so any `*OnlyAllowedIn*State` code counts.
    pub fn is_wrong_state(&self) -> bool {
        let code = self.code.to_ascii_lowercase();
        let code_says = code.contains("onlyallowedin") && code.ends_with("state");
        let message = self.message.to_ascii_lowercase();
        let message_says = (message.contains("is only allowed when") && message.contains("state"))
            || message.contains("is not allowed when computeinstance");
        code_says || message_says || self.details.iter().any(ArmError::is_wrong_state)
    }
}

impl fmt::Display for ArmError {
    // ARM's text reaches terminals and line-based logs: escape it, never print it raw.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Room for the marker `from_body` may have added.
        const SHOWN: usize = ARM_TEXT_CHARS + 40;
        let code = display_text(&self.code, SHOWN);
        let message = display_text(&self.message, SHOWN);
        match (code.is_empty(), message.is_empty()) {
            (false, false) => write!(f, "{code}: {message}"),
            (false, true) => f.write_str(&code),
            (true, false) => f.write_str(&message),
            (true, true) => f.write_str("no error details"),
        }
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn null_as_vec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ArmError>, D::Error> {
    Ok(Option::<Vec<ArmError>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod permission_tests {
    use super::*;

    const START: &str = "Microsoft.MachineLearningServices/workspaces/computes/start/action";
    const READ: &str = "Microsoft.MachineLearningServices/workspaces/computes/read";

    #[test]
    fn patterns() {
        assert!(action_matches("*", START));
        assert!(action_matches(
            "microsoft.machinelearningservices/workspaces/computes/*",
            START
        ));
        assert!(action_matches("*/read", READ));
        assert!(!action_matches("*/read", START));
        assert!(!action_matches(READ, START));
        assert!(action_matches(
            "Microsoft.MachineLearningServices/*/action",
            START
        ));
    }

    #[test]
    fn not_actions_carve_out_of_their_own_entry_only() {
        let body = br#"{"value":[
            {"actions":["*"],"notActions":["Microsoft.MachineLearningServices/workspaces/computes/start/action"],"dataActions":[],"notDataActions":[]},
            {"actions":null,"notActions":[]}
        ]}"#;
        let list: PermissionList = serde_json::from_slice(body).unwrap();
        assert!(permissions_grant(&list.value, READ));
        assert!(!permissions_grant(&list.value, START));
        let more = Permission {
            actions: vec![START.to_owned()],
            ..Permission::default()
        };
        let mut all = list.value.clone();
        all.push(more);
        assert!(permissions_grant(&all, START));
        assert!(!permissions_grant(&[], READ));
    }
}
