//! `lightsout ci list|show|create|start|stop|restart|delete`: one compute instance by hand, as
//! the Azure ML SDK v1 does.
//!
//! Flow: resolve the workspace (an alias from the config, or the three Azure ids), build one
//! [`ArmClient`], make the call, print the result on stdout (text, or JSON with `--json`).
//! `--wait` follows the long-running operation to its end, polling at the server's
//! `Retry-After` (real ARM sends none: then every `--poll-interval`, 5 s by default) and
//! reading the instance's state each time, with progress on stderr (`crate::cli::progress`). An
//! operation that ends saying the instance was in the wrong state is shown as refused, like a
//! 400 refusal (exit 1).
//!
//! Errors read like Azure's own (`AuthorizationFailed: … (missing permission: …)`, the request
//! id) and go up to `main` as `anyhow` (exit 1). A config that is needed but missing or invalid
//! stays a [`crate::engine::config::ConfigError`] (exit 78). Tokens and secrets are never printed: only
//! ARM error bodies and credential messages are shown.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use tokio::time::{Instant, sleep};

use super::validate::config_path;
use crate::azure::wire::{
    ComputeInstanceProperties, ComputeResource, ComputeStartStopSchedule, ComputeType, Recurrence,
    UnderlyingResourceAction,
};
use crate::azure::{Accepted, ArmClient, ArmClientConfig, ArmError, AzureError, PollOutcome};
use crate::cli::progress::{Progress, short_duration};
use crate::cli::{CiCommand, CreateArgs, WaitArgs, WorkspaceArgs};
use crate::daemon::connect;
use crate::engine::config::{self, AzureSettings};
use crate::engine::model::WorkspaceRef;

/// Longest delay between two polls, whatever `Retry-After` says: progress must stay alive.
const MAX_POLL: Duration = Duration::from_secs(30);

/// Runs one `ci` subcommand.
pub async fn ci(cmd: CiCommand) -> anyhow::Result<()> {
    match cmd {
        CiCommand::List { ws } => list(&ws).await,
        CiCommand::Show { name, ws } => show(&name, &ws).await,
        CiCommand::Create(args) => create(args).await,
        CiCommand::Start { name, ws, wait } => act(Action::Start, &name, &ws, &wait).await,
        CiCommand::Stop { name, ws, wait } => act(Action::Stop, &name, &ws, &wait).await,
        CiCommand::Restart { name, ws, wait } => act(Action::Restart, &name, &ws, &wait).await,
        CiCommand::Delete {
            name,
            ws,
            wait,
            detach,
        } => act(Action::Delete { detach }, &name, &ws, &wait).await,
    }
}

/// A lifecycle operation on one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Start,
    Stop,
    Restart,
    /// `detach`: `underlyingResourceAction=Detach` (the VM is left alone).
    Delete {
        detach: bool,
    },
}

impl Action {
    /// Lowercase verb, as in the JSON `action` field.
    fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Delete { detach: false } => "delete",
            Action::Delete { detach: true } => "detach",
        }
    }

    /// True when the instance is expected to be gone at the end.
    fn removes(self) -> bool {
        matches!(self, Action::Delete { .. })
    }
}

/// The state shown for an instance that no longer exists (after a delete).
const GONE: &str = "Deleted";

/// A resolved workspace and a client for it (also used by `hold` and `release`).
pub(crate) struct Target {
    pub(crate) client: ArmClient,
    pub(crate) ws: WorkspaceRef,
    /// How messages name the workspace: the alias, else the Azure workspace name.
    pub(crate) label: String,
    /// The workspace's region from the config, if known (default location for `create`).
    region: Option<String>,
}

impl Target {
    /// Resolves the workspace and builds the client.
    pub(crate) fn connect(args: &WorkspaceArgs) -> anyhow::Result<Target> {
        let (settings, ws, label, region) = resolve(args)?;
        let client = connect::arm_client(&settings, ArmClientConfig::default())
            .context("cannot connect to Azure")?;
        Ok(Target {
            client,
            ws,
            label,
            region,
        })
    }

    /// `workspace 'lab' (testrg123/workspaces123)`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "workspace '{}' ({}/{})",
            self.label, self.ws.resource_group, self.ws.workspace
        )
    }

    /// Turns an ARM client error into the message a user sees, in Azure's own terms.
    pub(crate) fn explain(&self, err: &AzureError, instance: Option<&str>) -> anyhow::Error {
        anyhow!(explain(err, instance, &self.describe()))
    }
}

/// Azure settings, workspace, label and region for the command line.
///
/// `--workspace ALIAS` needs the config. The three ids use the config's `[azure]` when the file
/// exists and fall back to the defaults (public cloud, `auto` credential) when it does not, unless
/// `--config` named it explicitly.
fn resolve(
    args: &WorkspaceArgs,
) -> anyhow::Result<(AzureSettings, WorkspaceRef, String, Option<String>)> {
    let path = config_path(&args.config);
    if let Some(alias) = &args.workspace {
        let (cfg, _warnings) = config::load(&path)?;
        let Some(w) = cfg.workspace(alias) else {
            let known: Vec<&str> = cfg.workspaces.iter().map(|w| w.name.as_str()).collect();
            bail!(
                "no workspace '{alias}' in {} (known: {})",
                path.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
        };
        return Ok((
            cfg.azure.clone(),
            w.reference.clone(),
            alias.clone(),
            w.region.clone(),
        ));
    }
    let (Some(sub), Some(rg), Some(name)) = (
        &args.subscription,
        &args.resource_group,
        &args.workspace_name,
    ) else {
        // clap enforces this; kept for callers that build the args by hand.
        bail!(
            "name the workspace: --workspace ALIAS, or --subscription, --resource-group and --workspace-name"
        );
    };
    crate::engine::names::check_subscription(sub)?;
    crate::engine::names::check_resource_group(rg)?;
    crate::engine::names::check_workspace(name)?;
    let reference = WorkspaceRef {
        subscription_id: sub.clone(),
        resource_group: rg.clone(),
        workspace: name.clone(),
    };
    if args.config.config.is_none() && !path.exists() {
        return Ok((AzureSettings::default(), reference, name.clone(), None));
    }
    let (cfg, _warnings) = config::load(&path)?;
    // The same workspace may be in the config under an alias: use its region.
    let known = cfg.workspaces.iter().find(|w| {
        w.reference
            .subscription_id
            .eq_ignore_ascii_case(&reference.subscription_id)
            && w.reference
                .resource_group
                .eq_ignore_ascii_case(&reference.resource_group)
            && w.reference
                .workspace
                .eq_ignore_ascii_case(&reference.workspace)
    });
    let region = known.and_then(|w| w.region.clone());
    Ok((cfg.azure.clone(), reference, name.clone(), region))
}

/// The message for a failed ARM call: `CODE: message (missing permission: …) (request id: …)`.
fn explain(err: &AzureError, instance: Option<&str>, workspace: &str) -> String {
    let mut msg = match err {
        AzureError::Arm {
            status: 404, error, ..
        } if instance.is_some() => format!(
            "compute instance '{}' was not found in {workspace}: {error}",
            instance.unwrap_or_default()
        ),
        AzureError::Arm { status, error, .. } if error.code.is_empty() => {
            format!("HTTP {status} from Azure Resource Manager: {error}")
        }
        AzureError::Arm { error, .. } => error.to_string(),
        AzureError::OperationFailed { status, error } => match error {
            Some(e) => format!("operation ended {status}: {e}"),
            None => format!("operation ended {status}"),
        },
        // The credential's own message says why (wrong secret, unknown tenant...); it never
        // contains the secret.
        AzureError::Auth { source, .. } => {
            format!(
                "could not get an access token: {}",
                crate::engine::text::chain(source)
            )
        }
        other => crate::engine::text::chain(other),
    };
    if let Some(action) = err.missing_action() {
        msg.push_str(&format!(" (missing permission: {action})"));
    }
    if let Some(id) = err.request_id() {
        // A header from ARM: escaped like its other text.
        let id = crate::engine::text::display_text(id, 128);
        msg.push_str(&format!(" (request id: {id})"));
    }
    msg
}

// ---- list and show ----------------------------------------------------------------------------

/// `ci list`.
async fn list(args: &WorkspaceArgs) -> anyhow::Result<()> {
    let t = Target::connect(args)?;
    let all = t
        .client
        .list_computes(&t.ws)
        .await
        .map_err(|e| t.explain(&e, None))?;
    let now = crate::clock::now();
    let views: Vec<InstanceView> = all
        .iter()
        .filter(|c| c.compute_type() == Some(&ComputeType::ComputeInstance))
        .map(InstanceView::from_resource)
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else if views.is_empty() {
        println!("No compute instances in {}.", t.describe());
    } else {
        print!("{}", table(&views, now));
    }
    Ok(())
}

/// `ci show NAME`.
async fn show(name: &str, args: &WorkspaceArgs) -> anyhow::Result<()> {
    let t = Target::connect(args)?;
    let r = t
        .client
        .get_compute(&t.ws, name)
        .await
        .map_err(|e| t.explain(&e, Some(name)))?;
    let view = InstanceView::from_resource(&r);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", details(&view, &t.describe()));
    }
    Ok(())
}

/// One compute as `list --json` and `show --json` print it (snake_case, absent fields `null`).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct InstanceView {
    name: String,
    /// `ComputeInstance`, or another compute type (then most fields are empty).
    compute_type: Option<String>,
    state: Option<String>,
    provisioning_state: Option<String>,
    vm_size: Option<String>,
    location: Option<String>,
    last_operation: Option<LastOperationView>,
    /// ISO 8601 as Azure has it, e.g. `PT60M`.
    idle_time_before_shutdown: Option<String>,
    schedules: Vec<ScheduleView>,
    created_by: Option<String>,
    /// Object id of the assigned user of a personal instance.
    assigned_user: Option<String>,
    ssh: Option<SshView>,
    subnet: Option<String>,
    applications: Vec<ApplicationView>,
    created_on: Option<String>,
    modified_on: Option<String>,
    tags: std::collections::BTreeMap<String, String>,
    id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct LastOperationView {
    name: Option<String>,
    status: Option<String>,
    trigger: Option<String>,
    time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct ScheduleView {
    action: Option<String>,
    /// `Cron` or `Recurrence`.
    trigger: Option<String>,
    cron: Option<String>,
    /// A readable summary of a recurrence, e.g. `every 1 Week on Monday, Friday at 18:00`.
    recurrence: Option<String>,
    time_zone: Option<String>,
    status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct SshView {
    public_access: Option<String>,
    admin_user: Option<String>,
    port: Option<u16>,
    public_ip: Option<String>,
    private_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct ApplicationView {
    name: Option<String>,
    url: Option<String>,
}

fn opt_str<T: std::fmt::Display>(v: Option<&T>) -> Option<String> {
    v.map(ToString::to_string)
}

impl InstanceView {
    /// Pure mapping from the wire type.
    fn from_resource(r: &ComputeResource) -> InstanceView {
        let props = r.properties.as_ref();
        let ci = r.instance();
        let default = ComputeInstanceProperties::default();
        let p = ci.unwrap_or(&default);
        InstanceView {
            name: r.name.clone().unwrap_or_default(),
            compute_type: opt_str(r.compute_type()),
            state: opt_str(p.state.as_ref()),
            provisioning_state: opt_str(props.and_then(|c| c.provisioning_state.as_ref())),
            vm_size: p.vm_size.clone(),
            location: r.location.clone(),
            last_operation: p.last_operation.as_ref().map(|o| LastOperationView {
                name: opt_str(o.operation_name.as_ref()),
                status: opt_str(o.operation_status.as_ref()),
                trigger: opt_str(o.operation_trigger.as_ref()),
                time: o.operation_time.clone(),
            }),
            idle_time_before_shutdown: p.idle_time_before_shutdown.clone(),
            schedules: p
                .schedules
                .as_ref()
                .and_then(|s| s.compute_start_stop.as_ref())
                .map(|v| v.iter().map(schedule_view).collect())
                .unwrap_or_default(),
            // Real bodies since 2024 carry only the creator's object id, no `userName`
            // (recorded/real-get-running-2024-12.body.json).
            created_by: p
                .created_by
                .as_ref()
                .and_then(|c| c.user_name.clone().or_else(|| c.user_id.clone())),
            assigned_user: p
                .personal_compute_instance_settings
                .as_ref()
                .and_then(|s| s.assigned_user.as_ref())
                .and_then(|u| u.object_id.clone()),
            ssh: p.ssh_settings.as_ref().map(|s| SshView {
                public_access: opt_str(s.ssh_public_access.as_ref()),
                admin_user: s.admin_user_name.clone(),
                port: s.ssh_port,
                public_ip: p
                    .connectivity_endpoints
                    .as_ref()
                    .and_then(|c| c.public_ip_address.clone()),
                private_ip: p
                    .connectivity_endpoints
                    .as_ref()
                    .and_then(|c| c.private_ip_address.clone()),
            }),
            subnet: p.subnet.as_ref().and_then(|s| s.id.clone()),
            applications: p
                .applications
                .iter()
                .flatten()
                .map(|a| ApplicationView {
                    name: a.display_name.clone(),
                    url: a.endpoint_uri.clone(),
                })
                .collect(),
            created_on: props.and_then(|c| c.created_on.clone()),
            modified_on: props.and_then(|c| c.modified_on.clone()),
            tags: r.tags.clone().unwrap_or_default(),
            id: r.id.clone(),
        }
    }
}

fn schedule_view(s: &ComputeStartStopSchedule) -> ScheduleView {
    let cron = s.cron.as_ref();
    let rec = s.recurrence.as_ref();
    ScheduleView {
        action: opt_str(s.action.as_ref()),
        trigger: opt_str(s.trigger_type.as_ref()),
        cron: cron.and_then(|c| c.expression.clone()),
        recurrence: rec.map(recurrence_text),
        time_zone: cron
            .and_then(|c| c.time_zone.clone())
            .or_else(|| rec.and_then(|r| r.time_zone.clone())),
        status: opt_str(s.status.as_ref()),
    }
}

/// `every 1 Week on Monday, Friday at 18:00`.
fn recurrence_text(r: &Recurrence) -> String {
    let mut out = format!(
        "every {} {}",
        r.interval.unwrap_or(1),
        r.frequency.as_ref().map_or("?", |f| f.as_str())
    );
    if let Some(s) = &r.schedule {
        if let Some(days) = s.week_days.as_ref().filter(|d| !d.is_empty()) {
            let days: Vec<&str> = days.iter().map(|d| d.as_str()).collect();
            out.push_str(&format!(" on {}", days.join(", ")));
        }
        if let Some(md) = s.month_days.as_ref().filter(|d| !d.is_empty()) {
            let md: Vec<String> = md.iter().map(ToString::to_string).collect();
            out.push_str(&format!(" on day {}", md.join(", ")));
        }
        let hours = s.hours.as_deref().unwrap_or_default();
        let minutes = s.minutes.as_deref().unwrap_or_default();
        let times: Vec<String> = hours
            .iter()
            .flat_map(|h| {
                let ms: Vec<i32> = if minutes.is_empty() {
                    vec![0]
                } else {
                    minutes.to_vec()
                };
                ms.into_iter().map(move |m| format!("{h:02}:{m:02}"))
            })
            .collect();
        if !times.is_empty() {
            out.push_str(&format!(" at {}", times.join(", ")));
        }
    }
    out
}

/// `PT1H30M` → `1h 30m`, in the units Azure used (`PT60M` stays `60m`: a span, not a
/// balanced duration); a zero or anything unparsable is shown as Azure sent it.
fn iso_duration_text(iso: &str) -> String {
    match iso.parse::<jiff::Span>() {
        // jiff also reads its friendly format; only ISO 8601 is Azure's.
        Ok(span) if iso.starts_with(['P', 'p']) && !span.is_zero() => format!("{span:#}"),
        _ => iso.to_owned(),
    }
}

/// `Stop Succeeded (User, 12m ago)`.
fn last_operation_text(op: &LastOperationView, now: jiff::Timestamp) -> String {
    let mut out = [op.name.as_deref(), op.status.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let when = op
        .time
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| ago(now, t));
    let extra: Vec<String> = [op.trigger.clone(), when].into_iter().flatten().collect();
    if !extra.is_empty() {
        out.push_str(&format!(" ({})", extra.join(", ")));
    }
    if out.is_empty() { "-".to_owned() } else { out }
}

/// `12m ago`, `3h ago`, `2d ago`.
fn ago(now: jiff::Timestamp, then: jiff::Timestamp) -> String {
    let secs = now.duration_since(then).as_secs().max(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// The `ci list` table.
fn table(views: &[InstanceView], now: jiff::Timestamp) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let mut rows = Vec::new();
    for v in views {
        rows.push([
            v.name.clone(),
            dash(&v.state),
            dash(&v.vm_size),
            v.last_operation
                .as_ref()
                .map_or_else(|| "-".to_owned(), |o| last_operation_text(o, now)),
            v.idle_time_before_shutdown
                .as_deref()
                .map_or_else(|| "-".to_owned(), iso_duration_text),
            dash(&v.created_by.clone().or_else(|| v.assigned_user.clone())),
        ]);
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    crate::cli::table::render(
        &[
            "NAME",
            "STATE",
            "VM SIZE",
            "LAST OPERATION",
            "IDLE SHUTDOWN",
            "USER",
        ],
        &rows,
    )
}

/// `  key             value`, one line of `ci show`.
fn kv(key: &str, value: &str) -> String {
    format!("  {key:<16}{value}").trim_end().to_owned()
}

/// The `ci show` text.
fn details(v: &InstanceView, workspace: &str) -> String {
    let dash = |s: Option<&str>| s.unwrap_or("-").to_owned();
    let mut out = vec![format!("{} in {workspace}", v.name)];
    if v.compute_type.as_deref() != Some(ComputeType::ComputeInstance.as_str()) {
        out.push(kv("compute type", &dash(v.compute_type.as_deref())));
    }
    out.push(kv("state", &dash(v.state.as_deref())));
    out.push(kv("provisioning", &dash(v.provisioning_state.as_deref())));
    out.push(kv("vm size", &dash(v.vm_size.as_deref())));
    out.push(kv("location", &dash(v.location.as_deref())));
    let last = v.last_operation.as_ref().map_or_else(
        || "-".to_owned(),
        |o| {
            let mut s = [o.name.as_deref(), o.status.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if let Some(t) = &o.trigger {
                s.push_str(&format!(" by {t}"));
            }
            if let Some(t) = &o.time {
                s.push_str(&format!(" at {t}"));
            }
            s
        },
    );
    out.push(kv("last operation", &last));
    let idle = v.idle_time_before_shutdown.as_deref().map_or_else(
        || "off".to_owned(),
        |i| format!("{} ({i})", iso_duration_text(i)),
    );
    out.push(kv("idle shutdown", &idle));
    out.push(kv(
        "schedules",
        if v.schedules.is_empty() { "none" } else { "" },
    ));
    for s in &v.schedules {
        let how = match (&s.cron, &s.recurrence) {
            (Some(c), _) => format!("cron \"{c}\""),
            (None, Some(r)) => r.clone(),
            (None, None) => "-".to_owned(),
        };
        out.push(format!(
            "    - {} {how} ({}), {}",
            dash(s.action.as_deref()),
            s.time_zone.as_deref().unwrap_or("UTC"),
            dash(s.status.as_deref())
        ));
    }
    out.push(kv("created by", &dash(v.created_by.as_deref())));
    out.push(kv("assigned user", &dash(v.assigned_user.as_deref())));
    out.push(kv("created on", &dash(v.created_on.as_deref())));
    let ssh = v.ssh.as_ref().map_or_else(
        || "-".to_owned(),
        |s| {
            let mut t = format!("public access {}", dash(s.public_access.as_deref()));
            if let Some(u) = &s.admin_user {
                let host = s.public_ip.as_deref().or(s.private_ip.as_deref());
                match (host, s.port) {
                    (Some(h), Some(p)) => t.push_str(&format!(", {u}@{h} port {p}")),
                    (Some(h), None) => t.push_str(&format!(", {u}@{h}")),
                    _ => t.push_str(&format!(", user {u}")),
                }
            }
            t
        },
    );
    out.push(kv("ssh", &ssh));
    out.push(kv("subnet", &dash(v.subnet.as_deref())));
    out.push(kv(
        "applications",
        if v.applications.is_empty() { "-" } else { "" },
    ));
    for a in &v.applications {
        out.push(format!(
            "    - {}: {}",
            dash(a.name.as_deref()),
            dash(a.url.as_deref())
        ));
    }
    // Every value above is Azure's text: escape each line so none can add lines or drive
    // the terminal.
    let lines: Vec<String> = out
        .iter()
        .map(|l| crate::engine::text::display_text(l, 4096))
        .collect();
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

// ---- create -----------------------------------------------------------------------------------

/// `ci create NAME`: reuse an existing instance of that name, else PUT a new one.
async fn create(args: CreateArgs) -> anyhow::Result<()> {
    // Local checks first: a bad key file should not cost a round trip.
    let admin_key = args
        .admin_public_key
        .as_deref()
        .map(read_public_key)
        .transpose()?;
    let idle = args.idle_time_before_shutdown.map(idle_iso);
    let setup_script = args
        .setup_script
        .as_deref()
        .map(read_setup_script)
        .transpose()?;
    let t = Target::connect(&args.ws)?;
    let name = args.name.as_str();
    let started = Instant::now();

    // As the SDK v1 example does ("Found existing instance, use it"): never PUT over it.
    match t.client.get_compute(&t.ws, name).await {
        Ok(existing) => return reuse(&t, name, &existing, &args, started),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(t.explain(&e, None)),
    }

    let Some(location) = args.location.clone().or_else(|| t.region.clone()) else {
        bail!(
            "no location for {name}: pass --location, or set `region` for this workspace in the config"
        );
    };
    let mut body = crate::azure::create::create_body(
        &location,
        &args.vm_size,
        idle,
        args.ssh_public_access,
        admin_key,
        args.subnet.clone(),
    );
    if let Some(script) = &setup_script {
        let len = crate::azure::create::attach_creation_script(&mut body, script);
        if len > crate::azure::create::INLINE_SCRIPT_LIMIT {
            eprintln!(
                "warning: the setup script is {len} base64 characters inline; Azure is reported to refuse more than {} (put it in the workspace's file share and reference it there if the create fails)",
                crate::azure::create::INLINE_SCRIPT_LIMIT
            );
        }
    }
    let accepted = t
        .client
        .create_compute(&t.ws, name, &body)
        .await
        .map_err(|e| t.explain(&e, None))?;
    conclude(
        &t,
        name,
        Action::Create,
        &accepted,
        &args.wait,
        args.ws.json,
        started,
    )
    .await
}

/// A setup script file: read, and refused when it is not a script (no `#!` line) or empty.
fn read_setup_script(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read the setup script {}: {e}", path.display()))?;
    if !bytes.starts_with(b"#!") {
        bail!(
            "{} is not a script (it does not start with #!); Azure runs setup scripts with their interpreter line",
            path.display()
        );
    }
    Ok(bytes)
}

/// Reports an instance that already exists and leaves it as it is.
fn reuse(
    t: &Target,
    name: &str,
    existing: &ComputeResource,
    args: &CreateArgs,
    started: Instant,
) -> anyhow::Result<()> {
    if existing.compute_type() != Some(&ComputeType::ComputeInstance) {
        bail!(
            "a compute named '{name}' already exists in {} and is {}, not a compute instance",
            t.describe(),
            existing
                .compute_type()
                .map_or("of unknown type".to_owned(), |c| format!("an {c}"))
        );
    }
    let state = existing.instance_state().map(|s| s.to_string());
    if args.ws.json {
        print_report(&Report {
            instance: name,
            action: Action::Create.name(),
            status: "Succeeded",
            state,
            elapsed_seconds: seconds(started.elapsed()),
            request_id: None,
            existing: Some(true),
            error: None,
        })?;
    } else {
        let vm = existing
            .instance()
            .and_then(|p| p.vm_size.as_deref())
            .map_or_else(
                || "-".to_owned(),
                |v| crate::engine::text::display_text(v, 128),
            );
        println!(
            "Found existing instance {name} ({}, {vm}) in {}; using it.",
            state.as_deref().unwrap_or("state unknown"),
            t.describe()
        );
    }
    Ok(())
}

/// `PT60M` for 60 minutes; seconds only when the duration is not whole minutes.
fn idle_iso(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(60) {
        format!("PT{}M", s / 60)
    } else {
        format!("PT{s}S")
    }
}

/// `--admin-public-key`: a path to a `.pub` file, or the key text itself.
fn read_public_key(arg: &str) -> anyhow::Result<String> {
    let looks_like_key = |s: &str| {
        let s = s.trim_start();
        s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-")
    };
    if looks_like_key(arg) {
        return Ok(arg.trim().to_owned());
    }
    let path = Path::new(arg);
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("--admin-public-key: {arg:?} is neither an OpenSSH public key nor a readable file")
    })?;
    let key = text.trim();
    if !looks_like_key(key) {
        bail!(
            "--admin-public-key: {} does not hold an OpenSSH public key (ssh-rsa, ssh-ed25519, ecdsa-…)",
            path.display()
        );
    }
    Ok(key.to_owned())
}

// ---- start, stop, restart, delete -------------------------------------------------------------

/// `ci start|stop|restart|delete NAME`.
async fn act(
    action: Action,
    name: &str,
    args: &WorkspaceArgs,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let t = Target::connect(args)?;
    let started = Instant::now();
    let result = match action {
        Action::Start => t.client.start(&t.ws, name).await,
        Action::Stop => t.client.stop(&t.ws, name).await,
        Action::Restart => t.client.restart(&t.ws, name).await,
        Action::Delete { detach } => {
            let how = if detach {
                UnderlyingResourceAction::Detach
            } else {
                UnderlyingResourceAction::Delete
            };
            t.client.delete_compute(&t.ws, name, how).await
        }
        Action::Create => bail!("create goes through `ci create`"),
    };
    let accepted = match result {
        Ok(a) => a,
        // Accepted by Azure, but its poll URL is one we will not send the token to.
        Err(e @ AzureError::Untracked { .. }) => {
            return untracked(&t, name, action, &e, wait, args.json, started);
        }
        Err(e) => return Err(t.explain(&e, Some(name))),
    };
    // ARM answers 204 to a DELETE of something that is not there (an existing instance gets
    // 202): say so rather than "accepted".
    if action.removes() && matches!(accepted, Accepted::Completed { status: 204, .. }) && !args.json
    {
        println!("{name}: not found in {}; nothing to delete.", t.describe());
        return Ok(());
    }
    conclude(&t, name, action, &accepted, wait, args.json, started).await
}

/// An accepted request whose operation cannot be followed: say so; with `--wait` that is
/// an error (we cannot tell how it ends), without it the request was accepted all the same.
fn untracked(
    t: &Target,
    name: &str,
    action: Action,
    err: &AzureError,
    wait: &WaitArgs,
    json: bool,
    started: Instant,
) -> anyhow::Result<()> {
    let why = explain(err, Some(name), &t.describe());
    if json {
        print_report(&Report {
            instance: name,
            action: action.name(),
            status: "Accepted",
            state: None,
            elapsed_seconds: seconds(started.elapsed()),
            request_id: err.request_id().map(str::to_owned),
            existing: None,
            error: None,
        })?;
    }
    if wait.wait {
        bail!(
            "{} of {name} accepted by Azure, but it cannot be followed ({why}); check with `lightsout ci show {name}`",
            action.name()
        );
    }
    if !json {
        println!(
            "{} of {name} accepted by Azure; its operation cannot be followed ({why}).",
            capitalise(action.name())
        );
    }
    Ok(())
}

/// The final JSON object of a lifecycle command.
#[derive(Debug, Serialize)]
struct Report<'a> {
    instance: &'a str,
    action: &'static str,
    /// `Accepted` (not waited for, or the wait timed out), `Succeeded`, `Failed`, or
    /// `Refused` (the operation ended saying the instance was in the wrong state).
    status: &'static str,
    /// The instance's state at the end (`Deleted` once gone); `null` when not known.
    state: Option<String>,
    elapsed_seconds: f64,
    /// `x-ms-request-id` of the accepting response.
    request_id: Option<String>,
    /// `create` only: true when an existing instance was reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    existing: Option<bool>,
    /// Why the operation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ArmError>,
}

fn print_report(r: &Report<'_>) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(r)?);
    Ok(())
}

/// Seconds with millisecond precision.
fn seconds(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// How a followed operation ended, short of success.
enum WaitEnd {
    /// Azure says the operation failed or was canceled.
    Failed {
        status: String,
        error: Option<Box<ArmError>>,
        state: Option<String>,
    },
    /// `--timeout` passed first; `last_seen` is what the last poll said, when it said
    /// something other than a plain status (an unreadable body).
    TimedOut {
        state: Option<String>,
        last_seen: Option<String>,
    },
    /// A call failed (after the client's retries).
    Error(AzureError),
}

/// Prints the outcome of an accepted operation, following it first with `--wait`.
async fn conclude(
    t: &Target,
    name: &str,
    action: Action,
    accepted: &Accepted,
    wait: &WaitArgs,
    json: bool,
    started: Instant,
) -> anyhow::Result<()> {
    let request_id = accepted.request_id().map(str::to_owned);
    let report = |status, state, error| Report {
        instance: name,
        action: action.name(),
        status,
        state,
        elapsed_seconds: seconds(started.elapsed()),
        request_id: request_id.clone(),
        existing: (action == Action::Create).then_some(false),
        error,
    };
    if !wait.wait {
        if json {
            print_report(&report("Accepted", None, None))?;
        } else {
            let rid = request_id
                .as_deref()
                .map(|r| format!(" (request id: {r})"))
                .unwrap_or_default();
            println!(
                "{} of {name} accepted by Azure{rid}. Use --wait to follow it, or `lightsout ci show {name}`.",
                capitalise(action.name())
            );
        }
        return Ok(());
    }

    let mut progress = Progress::new(action.name(), name, started);
    let end = follow(
        t,
        name,
        action,
        accepted,
        (wait.timeout, wait.poll_interval),
        &mut progress,
    )
    .await;
    let after = short_duration(progress.elapsed());
    match end {
        Ok(state) => {
            let shown = state.clone().unwrap_or_else(|| "done".to_owned());
            let line = format!("{name}: {shown} after {after}");
            // The final line is the result: on stdout in text mode, beside the JSON otherwise.
            if json {
                progress.finish(Some(&line));
                print_report(&report("Succeeded", state, None))?;
            } else {
                progress.finish(None);
                println!("{line}");
            }
            Ok(())
        }
        Err(WaitEnd::Failed { error, state, .. })
            if crate::daemon::actuate::classify_operation_end(error.as_deref())
                == crate::daemon::actuate::OperationEnd::Refused =>
        {
            // Nothing was done: the instance was in the wrong state. Shown (and exiting) as a
            // 400 refusal would.
            progress.finish(Some(&format!(
                "{name}: {} refused after {after}",
                action.name()
            )));
            let why = error
                .as_deref()
                .map(ToString::to_string)
                .unwrap_or_default();
            if json {
                print_report(&report("Refused", state, error.map(|e| *e)))?;
            }
            bail!("{} of {name} refused by Azure: {why}", action.name())
        }
        Err(WaitEnd::Failed {
            status,
            error,
            state,
        }) => {
            progress.finish(Some(&format!(
                "{name}: {} {status} after {after}",
                action.name()
            )));
            let why = error
                .as_deref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "Azure gave no reason".to_owned());
            if json {
                print_report(&report("Failed", state, error.map(|e| *e)))?;
            }
            bail!(
                "{} of {name} {} after {after}: {why}",
                action.name(),
                status.to_lowercase()
            )
        }
        Err(WaitEnd::TimedOut { state, last_seen }) => {
            let last = state.clone().unwrap_or_else(|| "unknown".to_owned());
            progress.finish(Some(&format!("{name}: still {last} after {after}")));
            if json {
                print_report(&report("Accepted", state, None))?;
            }
            let seen = last_seen
                .map(|s| format!("; the operation's last answer: {s}"))
                .unwrap_or_default();
            bail!(
                "gave up waiting for the {} of {name} after {} (last state: {last}{seen}); the operation carries on in Azure",
                action.name(),
                humantime::format_duration(wait.timeout)
            )
        }
        Err(WaitEnd::Error(e)) => {
            progress.finish(Some(&format!("{name}: stopped following after {after}")));
            Err(t.explain(&e, Some(name)))
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Follows an operation to its end; returns the instance's final state.
///
/// Polls the operation at the server's `Retry-After` (else every `every` of `(timeout,
/// every)`, at most [`MAX_POLL`]) and reads the instance's state after each poll, for the
/// progress display. An operation Azure answered synchronously (nothing to poll) is followed
/// through the instance's state until it leaves its transitional states. A poll body that
/// cannot be read keeps the operation in progress until the timeout, which then quotes it.
async fn follow(
    t: &Target,
    name: &str,
    action: Action,
    op: &Accepted,
    (timeout, every): (Duration, Duration),
    progress: &mut Progress,
) -> Result<Option<String>, WaitEnd> {
    let deadline = Instant::now() + timeout;
    let mut state = current_state(t, name).await;
    if let Some(s) = &state {
        progress.state(s);
    }
    let mut delay = match op {
        Accepted::Pending { retry_after, .. } => retry_after.unwrap_or(every),
        Accepted::Completed { .. } => every,
    };
    let mut last_seen: Option<String> = None;
    loop {
        if op.is_completed() && settled(action, state.as_deref()) {
            return Ok(state);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitEnd::TimedOut { state, last_seen });
        }
        sleep(delay.min(MAX_POLL).min(deadline - now)).await;
        if Instant::now() >= deadline {
            return Err(WaitEnd::TimedOut { state, last_seen });
        }
        let outcome = if op.is_completed() {
            None
        } else {
            Some(t.client.poll_operation(op).await.map_err(WaitEnd::Error)?)
        };
        if let Some(s) = current_state(t, name).await {
            // The final state goes on the final line, not on a progress line of its own.
            if !outcome.as_ref().is_some_and(PollOutcome::is_terminal) {
                progress.state(&s);
            }
            state = Some(s);
        }
        match outcome {
            None => delay = every,
            Some(PollOutcome::Succeeded) => return Ok(state),
            Some(PollOutcome::Failed { status, error }) => {
                return Err(WaitEnd::Failed {
                    status: status.to_string(),
                    error,
                    state,
                });
            }
            Some(PollOutcome::InProgress {
                retry_after,
                status,
                unreadable,
            }) => {
                last_seen = match (status, unreadable) {
                    (Some(s), _) => Some(format!("status {s}")),
                    (None, Some(body)) => Some(format!("unreadable status body {body:?}")),
                    (None, None) => None,
                };
                delay = retry_after.unwrap_or(every);
            }
        }
    }
}

/// For an operation with nothing to poll: has the instance reached a resting state?
fn settled(action: Action, state: Option<&str>) -> bool {
    use crate::azure::wire::ComputeInstanceState as S;
    match state {
        Some(GONE) => action.removes(),
        Some(s) => !action.removes() && !S::from(s).is_transitional(),
        None => false,
    }
}

/// The instance's state now (`Deleted` once it is gone), or `None` when it could not be read.
///
/// A failed read only costs one progress update, so it is logged, not returned.
async fn current_state(t: &Target, name: &str) -> Option<String> {
    match t.client.get_compute(&t.ws, name).await {
        Ok(r) => r.instance_state().map(|s| s.to_string()).or_else(|| {
            r.properties
                .as_ref()
                .and_then(|c| c.provisioning_state.as_ref())
                .map(|p| p.to_string())
        }),
        Err(e) if e.is_not_found() => Some(GONE.to_owned()),
        Err(e) => {
            tracing::debug!(instance = name, error = %crate::engine::text::chain(&e), "Could not read the instance's state.");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str =
        include_str!("../../../tests/fixtures/azure/2025-12-01/Compute/get/ComputeInstance.json");

    fn fixture() -> ComputeResource {
        let v: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        serde_json::from_value(v["responses"]["200"]["body"].clone()).unwrap()
    }

    #[test]
    fn view_of_the_fixture_instance() {
        let v = InstanceView::from_resource(&fixture());
        assert_eq!(v.name, "compute123");
        assert_eq!(v.vm_size.as_deref(), Some("STANDARD_NC6"));
        assert_eq!(v.subnet.as_deref(), Some("test-subnet-resource-id"));
        assert_eq!(v.created_by.as_deref(), Some("foobar@microsoft.com"));
        let ssh = v.ssh.as_ref().unwrap();
        assert_eq!(ssh.public_access.as_deref(), Some("Enabled"));
        assert_eq!(ssh.port, Some(22));
        let text = details(&v, "workspace 'lab'");
        assert!(text.contains("STANDARD_NC6"), "{text}");
    }

    /// Real 2024 bodies name the creator by object id only.
    #[test]
    fn view_of_the_recorded_instance_names_its_creator_by_object_id() {
        let body = include_str!(
            "../../../tests/fixtures/azure/recorded/real-get-running-2024-12.body.json"
        );
        let r: ComputeResource = serde_json::from_str(body).unwrap();
        let v = InstanceView::from_resource(&r);
        let raw: serde_json::Value = serde_json::from_str(body).unwrap();
        let oid = raw["properties"]["properties"]["createdBy"]["userId"].as_str();
        assert!(oid.is_some(), "the recording has the creator's object id");
        assert_eq!(v.created_by.as_deref(), oid);
    }

    #[test]
    fn iso_durations_read_well() {
        assert_eq!(iso_duration_text("PT60M"), "60m");
        assert_eq!(iso_duration_text("PT1H30M"), "1h 30m");
        assert_eq!(iso_duration_text("P3D"), "3d");
        assert_eq!(iso_duration_text("P1DT2H"), "1d 2h");
        assert_eq!(iso_duration_text("weird"), "weird");
        assert_eq!(iso_duration_text("PT5X"), "PT5X");
        assert_eq!(iso_duration_text("PT0S"), "PT0S");
        assert_eq!(iso_duration_text("2h"), "2h");
    }

    #[test]
    fn idle_time_is_iso8601() {
        assert_eq!(idle_iso(Duration::from_secs(3600)), "PT60M");
        assert_eq!(idle_iso(Duration::from_secs(15 * 60 + 30)), "PT930S");
    }

    #[test]
    fn forbidden_names_the_missing_action_and_request_id() {
        let body = br#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' with object id 'x' does not have authorization to perform action 'Microsoft.MachineLearningServices/workspaces/computes/stop/action' over scope '/s' or the scope is invalid."}}"#;
        let e = AzureError::Arm {
            operation: "stop",
            status: 403,
            request_id: Some("rid-1".into()),
            error: Box::new(ArmError::from_body(403, body)),
            retry_after: None,
        };
        let m = explain(&e, Some("ci-a"), "workspace 'lab'");
        assert!(m.starts_with("AuthorizationFailed: The client 'x'"), "{m}");
        assert!(
            m.contains("(missing permission: Microsoft.MachineLearningServices/workspaces/computes/stop/action)"),
            "{m}"
        );
        assert!(m.ends_with("(request id: rid-1)"), "{m}");
    }

    #[test]
    fn not_found_names_the_workspace() {
        let e = AzureError::Arm {
            operation: "get_compute",
            status: 404,
            request_id: None,
            error: Box::new(ArmError {
                code: "ResourceNotFound".into(),
                message: "gone".into(),
                ..ArmError::default()
            }),
            retry_after: None,
        };
        let m = explain(&e, Some("ci-a"), "workspace 'lab' (rg/ws)");
        assert_eq!(
            m,
            "compute instance 'ci-a' was not found in workspace 'lab' (rg/ws): ResourceNotFound: gone"
        );
    }

    #[test]
    fn table_lines_up() {
        let mut v = InstanceView::from_resource(&fixture());
        v.last_operation = Some(LastOperationView {
            name: Some("Stop".into()),
            status: Some("Succeeded".into()),
            trigger: Some("User".into()),
            time: Some("2026-03-30T09:00:00.0000000+00:00".into()),
        });
        v.idle_time_before_shutdown = Some("PT60M".into());
        let now: jiff::Timestamp = "2026-03-30T09:12:00Z".parse().unwrap();
        let t = table(&[v], now);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{t}");
        assert!(lines[1].contains("Stop Succeeded (User, 12m ago)"), "{t}");
        assert!(lines[1].contains("60m"), "{t}");
        assert_eq!(lines[0].find("STATE"), lines[1].find(v_state(lines[1])));
    }

    fn v_state(line: &str) -> &str {
        line.split_whitespace().nth(1).unwrap()
    }

    #[test]
    fn settled_states() {
        assert!(settled(Action::Stop, Some("Stopped")));
        assert!(!settled(Action::Stop, Some("Stopping")));
        assert!(settled(Action::Delete { detach: false }, Some(GONE)));
        assert!(!settled(Action::Delete { detach: false }, Some("Deleting")));
        assert!(!settled(Action::Start, None));
    }
}
