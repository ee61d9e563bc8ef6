//! The command line, as clap derive types. Parsing only: `main` dispatches.

pub mod commands;
pub mod doctor_rules;
pub mod progress;
pub mod table;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::daemon::telemetry::LogFormat;

/// lightsout: stops idle and off-hours Azure ML compute instances and shows the money saved.
#[derive(Debug, Parser)]
#[command(name = "lightsout", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr (RUST_LOG sets the filter).
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// `--config F`, else `$LIGHTSOUT_CONFIG`, else /etc/lightsout/lightsout.toml.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: observe, decide, act and record, pass after pass.
    Run(RunArgs),
    /// Load and check the config; print every problem as FILE:LINE:COL: message.
    Validate(ConfigArg),
    /// Observe every instance once and print what lightsout would do and why. Acts on nothing.
    Plan(PlanArgs),
    /// The next schedule transitions and cron events of each policy, in local time.
    Preview(PreviewArgs),
    /// Run the real engine against the in-process emulator in virtual time; print every
    /// action and the cost summary. Deterministic.
    Simulate(SimulateArgs),
    /// Run a local emulator of the Azure endpoints lightsout uses.
    Emulator(EmulatorArgs),
    /// Manage single compute instances by hand (as the Azure ML SDK v1 does).
    #[command(subcommand)]
    Ci(CiCommand),
    /// Keep a compute instance up for a while: sets its `lightsout-hold-until` tag, which the
    /// daemon honours from its next pass (it will not stop the instance before then).
    Hold(HoldArgs),
    /// End a hold early: removes the instance's `lightsout-hold-until` tag.
    Release(ReleaseArgs),
    /// Start the emulator in-process and walk through what lightsout does.
    Demo(DemoArgs),
    /// The audit log: every action lightsout took or recorded, with its outcome.
    Audit(AuditArgs),
    /// Money accrued, avoided and burned idle, from the state database.
    Report(ReportArgs),
    /// Check config, credential, ARM, the identity's RBAC actions per workspace and whether
    /// each running instance's Jupyter answers it; print a checklist with the fix for each
    /// failure.
    Doctor(ConfigArg),
    /// Ask the running daemon's /healthz; exit 0 when healthy, 1 otherwise (for HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
    /// The on-instance agent: runs on a compute instance and tells the daemon, through a
    /// heartbeat blob, whether the instance is really in use.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// On a compute instance: keep it up for a while (`lightsout snooze 2h`), or end that
    /// (`lightsout snooze off`). The local agent publishes it; no Azure permission needed.
    Snooze(SnoozeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout.
    #[command(hide = true)]
    Manpage,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Observe once and print a snapshot: busy, why, last activity, every signal.
    Observe(AgentObserveArgs),
    /// The agent's loop (the `lightsout-agent.service` unit): observe every interval and
    /// write the heartbeat.
    Run(AgentRunArgs),
    /// Print the Azure ML setup script that installs the agent on a compute instance.
    SetupScript(AgentSetupScriptArgs),
}

#[derive(Debug, Args)]
pub struct AgentObserveArgs {
    /// Print JSON (the only format for now).
    #[arg(long)]
    pub json: bool,
    /// The instance's user whose work counts.
    #[arg(long, default_value = "azureuser")]
    pub user: String,
    /// How long CPU and GPU are sampled.
    #[arg(long, default_value = "10s", value_parser = parse_observe_window)]
    pub window: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct AgentRunArgs {
    /// The agent's configuration file.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "/etc/lightsout/agent.toml"
    )]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct AgentSetupScriptArgs {
    /// Where the script gets the lightsout binary: an https URL or an absolute path on the
    /// instance (e.g. in the workspace's file share); the default is `lightsout` next to the
    /// script, in its working directory. Plain http is refused.
    #[arg(
        long,
        value_name = "URL|PATH",
        default_value = crate::agent::setup::DEFAULT_FROM,
        value_parser = crate::agent::setup::parse_from
    )]
    pub from: String,
    /// Where the heartbeats go: a storage account name (its endpoint in Azure's public cloud,
    /// `https://NAME.blob.core.windows.net`) or the blob endpoint's https URL (needed for
    /// other clouds).
    #[arg(long, value_name = "NAME|URL", value_parser = crate::agent::setup::parse_account)]
    pub account: url::Url,
    /// The heartbeat container (made beforehand; the instance's identity needs Storage Blob
    /// Data Contributor on it): 3 to 63 lower-case letters, digits and single hyphens.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "lightsout-heartbeats",
        value_parser = crate::agent::setup::parse_container
    )]
    pub container: String,
    /// Client id of the instance's user-assigned identity; default the system-assigned one.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnoozeArgs {
    /// How long to keep the instance up (`2h`, `90m`; 1m to 7days), or `off`.
    #[arg(value_parser = parse_snooze)]
    pub duration: SnoozeFor,
    /// Why (shown in plan, status and the audit log); plain ASCII, at most 200 characters.
    #[arg(long)]
    pub reason: Option<String>,
    /// The agent's snooze socket.
    #[arg(
        long,
        value_name = "PATH",
        env = "LIGHTSOUT_AGENT_SOCKET",
        default_value = "/run/lightsout-agent/snooze.sock"
    )]
    pub socket: PathBuf,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// URL to ask instead of http://<[http] listen>/healthz from the config.
    #[arg(long, value_name = "URL")]
    pub url: Option<url::Url>,
    /// Give up after this long (100ms to 5m).
    #[arg(long, default_value = "3s", value_parser = parse_probe_timeout)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Which shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Decide and record, act on nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One full pass (observe, decide, act, record), then exit.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this policy.
    #[arg(long)]
    pub policy: Option<String>,
    /// Start of the period (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339")]
    pub from: Option<jiff::Timestamp>,
    /// Length of the period in days.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..=400))]
    pub days: u16,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only records at or after this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<jiff::Timestamp>,
    /// Only this compute instance (by name, in any workspace).
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Print a JSON array of records instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// How `lightsout report` groups its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportBy {
    Workspace,
    Instance,
    Day,
}

/// Output format of `lightsout report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only the UTC days from the one containing this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<jiff::Timestamp>,
    /// One row per workspace, per instance, or per day.
    #[arg(long, value_enum, default_value = "day")]
    pub by: ReportBy,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Configuration file (its workspaces must be in the fleet).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Fleet file (emulator format, with scripted activity).
    #[arg(long, value_name = "FILE")]
    pub fleet: PathBuf,
    /// Start of virtual time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub from: jiff::Timestamp,
    /// End of virtual time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub to: jiff::Timestamp,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// A period the daemon is down, FROM/TO in RFC 3339 (repeatable): to see catch-up.
    #[arg(long, value_name = "FROM/TO")]
    pub outage: Vec<crate::sim::simulate::Outage>,
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port (printed in the ready line).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Fleet file (TOML); default: a small built-in fleet.
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// Serve HTTPS with a generated CA (written to the state dir and named in the ready line).
    #[arg(long)]
    pub tls: bool,
    /// Time moves only through POST /_emulator/clock.
    #[arg(long)]
    pub virtual_time: bool,
    /// Where to write ca.pem; default a fresh temporary directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Instances per list page (small values exercise nextLink paging).
    #[arg(long)]
    pub page_size: Option<usize>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How much faster than real time the emulated clock runs.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub speed: u32,
    /// How long the daemon part runs, in emulated time.
    #[arg(long, default_value = "3h", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    /// Skip the by-hand lifecycle part.
    #[arg(long)]
    pub skip_lifecycle: bool,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    /// The compute instance.
    #[arg(value_parser = parse_instance_name)]
    pub name: String,
    /// How long to hold it, from now: "3h", "90min", "2days" (1 minute to 30 days).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_hold_for)]
    pub duration: std::time::Duration,
    /// Why, for whoever wonders tomorrow (at most 256 characters). Stored as a tag that anyone
    /// who can read the instance sees: never a secret.
    #[arg(long, value_name = "TEXT", value_parser = parse_hold_reason)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub ws: WorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The compute instance.
    #[arg(value_parser = parse_instance_name)]
    pub name: String,
    #[command(flatten)]
    pub ws: WorkspaceArgs,
}

/// Shortest hold `lightsout hold --for` accepts.
pub const MIN_HOLD: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest hold `lightsout hold --for` accepts: a hold is for tonight or this week, not a
/// standing exception (those belong in the config).
pub const MAX_HOLD: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// Longest `--reason`: Azure's limit on a tag value.
pub const MAX_HOLD_REASON_CHARS: usize = crate::azure::tags::MAX_TAG_VALUE_CHARS;

/// A humantime duration between [`MIN_HOLD`] and [`MAX_HOLD`] (a usage error, exit 2, otherwise).
fn parse_hold_for(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (try \"3h\" or \"2days\")"))?;
    if (MIN_HOLD..=MAX_HOLD).contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "a hold lasts from 1 minute to 30 days, got {s:?} (for longer, use a policy exception in the config)"
        ))
    }
}

/// Free text for the `lightsout-hold-reason` tag: trimmed, not empty, at most
/// [`MAX_HOLD_REASON_CHARS`] characters, no control characters.
fn parse_hold_reason(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("the reason is empty; leave --reason out instead".to_owned());
    }
    let n = t.chars().count();
    if n > MAX_HOLD_REASON_CHARS {
        return Err(format!(
            "the reason has {n} characters; Azure allows at most {MAX_HOLD_REASON_CHARS} in a tag value"
        ));
    }
    if t.chars().any(char::is_control) {
        return Err("the reason must be one line of text (no control characters)".to_owned());
    }
    Ok(t.to_owned())
}

/// A compute instance name as Azure ML allows them (see `azure::names`): it goes into URL
/// paths, so anything else is a usage error before a request exists.
fn parse_instance_name(s: &str) -> Result<String, String> {
    crate::engine::names::check_instance(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

/// Which workspace a `ci` command talks to: `--workspace` or the three ids (one is required).
#[derive(Debug, Clone, Args)]
#[group(id = "target", required = true, multiple = true, args = ["workspace", "subscription"])]
pub struct WorkspaceArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Workspace alias from the config file.
    #[arg(long, short = 'w', conflicts_with_all = ["subscription", "resource_group", "workspace_name"])]
    pub workspace: Option<String>,
    /// Subscription id (with --resource-group and --workspace-name, instead of --workspace).
    #[arg(long, requires_all = ["resource_group", "workspace_name"])]
    pub subscription: Option<String>,
    /// Resource group of the workspace.
    #[arg(long, requires_all = ["subscription", "workspace_name"])]
    pub resource_group: Option<String>,
    /// The Azure ML workspace's own name.
    #[arg(long, requires_all = ["subscription", "resource_group"])]
    pub workspace_name: Option<String>,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--wait` and how long to wait.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Follow the operation to its end, showing progress.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long (the operation itself carries on in Azure). 100ms to 7d.
    #[arg(long, default_value = "30m", value_parser = parse_wait_timeout)]
    pub timeout: std::time::Duration,
    /// With --wait: how often to poll the operation when Azure sends no Retry-After (it
    /// sends none; operations take 30 s to a few minutes). 1s to 5m.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_poll_interval)]
    pub poll_interval: std::time::Duration,
}

/// A humantime duration within `min..=max` (a usage error, exit 2, otherwise): a number that
/// large would overflow the clock when added to it.
fn bounded_duration(
    s: &str,
    min: std::time::Duration,
    max: std::time::Duration,
    bounds: &str,
) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if (min..=max).contains(&d) {
        Ok(d)
    } else {
        Err(format!("must be from {bounds}, got {s:?}"))
    }
}

/// `ci … --timeout`: 100 ms to 7 days.
fn parse_wait_timeout(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    bounded_duration(
        s,
        Duration::from_millis(100),
        Duration::from_secs(7 * 86_400),
        "100ms to 7d",
    )
}

/// `agent observe --window`: 1 s to 5 minutes.
fn parse_observe_window(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    bounded_duration(
        s,
        Duration::from_secs(1),
        Duration::from_secs(300),
        "1s to 5m",
    )
}

/// What `lightsout snooze` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnoozeFor {
    /// Keep the instance up this long from now.
    Duration(std::time::Duration),
    /// End the snooze.
    Off,
}

/// `snooze DURATION|off`: a usage error (exit 2) for anything else, with the bounds the
/// agent enforces.
fn parse_snooze(s: &str) -> Result<SnoozeFor, String> {
    use crate::agent::snooze::{MAX_SNOOZE, MIN_SNOOZE};
    if s.eq_ignore_ascii_case("off") {
        return Ok(SnoozeFor::Off);
    }
    let d = humantime::parse_duration(s)
        .map_err(|_| format!("{s:?} is not a duration (try 2h, 90m or off)"))?;
    if (MIN_SNOOZE..=MAX_SNOOZE).contains(&d) {
        Ok(SnoozeFor::Duration(d))
    } else {
        Err(format!("{s:?}: a snooze lasts from 1m to 7days"))
    }
}

/// `healthcheck --timeout`: 100 ms to 5 minutes.
fn parse_probe_timeout(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    bounded_duration(
        s,
        Duration::from_millis(100),
        Duration::from_secs(300),
        "100ms to 5m",
    )
}

/// A humantime duration from 1 s to 5 min for `--poll-interval` (a usage error, exit 2,
/// otherwise), the bounds of `[daemon] operation_poll_interval`.
fn parse_poll_interval(s: &str) -> Result<std::time::Duration, String> {
    use crate::engine::config::validate::{
        MAX_OPERATION_POLL_INTERVAL, MIN_OPERATION_POLL_INTERVAL,
    };
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (try \"5s\")"))?;
    if (MIN_OPERATION_POLL_INTERVAL..=MAX_OPERATION_POLL_INTERVAL).contains(&d) {
        Ok(d)
    } else {
        Err(format!("the poll interval is from 1s to 5m, got {s:?}"))
    }
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// List the compute instances of a workspace.
    List {
        #[command(flatten)]
        ws: WorkspaceArgs,
    },
    /// Show one compute instance: state, last operation, idle shutdown, schedules, size, user.
    Show {
        /// The compute instance's name.
        #[arg(value_parser = parse_instance_name)]
        name: String,
        #[command(flatten)]
        ws: WorkspaceArgs,
    },
    /// Create a compute instance, or reuse the existing one of that name.
    Create(CreateArgs),
    /// Start a stopped compute instance.
    Start {
        /// The compute instance's name.
        #[arg(value_parser = parse_instance_name)]
        name: String,
        #[command(flatten)]
        ws: WorkspaceArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop a running compute instance.
    Stop {
        /// The compute instance's name.
        #[arg(value_parser = parse_instance_name)]
        name: String,
        #[command(flatten)]
        ws: WorkspaceArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Restart a running compute instance.
    Restart {
        /// The compute instance's name.
        #[arg(value_parser = parse_instance_name)]
        name: String,
        #[command(flatten)]
        ws: WorkspaceArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Delete a compute instance (or only detach it from the workspace).
    Delete {
        /// The compute instance's name.
        #[arg(value_parser = parse_instance_name)]
        name: String,
        #[command(flatten)]
        ws: WorkspaceArgs,
        #[command(flatten)]
        wait: WaitArgs,
        /// Detach from the workspace instead of deleting the underlying VM.
        #[arg(long)]
        detach: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The compute instance's name (3 to 24 letters, digits and hyphens, starting with a letter).
    #[arg(value_parser = parse_instance_name)]
    pub name: String,
    #[command(flatten)]
    pub ws: WorkspaceArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// VM size, e.g. Standard_DS3_v2.
    #[arg(long, default_value = "Standard_DS3_v2")]
    pub vm_size: String,
    /// Azure region; default the workspace's `region` from the config.
    #[arg(long)]
    pub location: Option<String>,
    /// Allow SSH from the internet (needs --admin-public-key).
    #[arg(long, requires = "admin_public_key")]
    pub ssh_public_access: bool,
    /// SSH public key for the admin user: the key text or a path to a .pub file.
    #[arg(long, value_name = "KEY|FILE")]
    pub admin_public_key: Option<String>,
    /// Subnet resource id to place the instance in.
    #[arg(long, value_name = "RESOURCE_ID")]
    pub subnet: Option<String>,
    /// Native idle shutdown, e.g. "60m" (Azure accepts 15 minutes to 3 days).
    #[arg(long, value_parser = parse_idle_time)]
    pub idle_time_before_shutdown: Option<std::time::Duration>,
    /// A bash script Azure runs once when the instance is created (attached inline), e.g.
    /// the output of `lightsout agent setup-script`.
    #[arg(long, value_name = "FILE")]
    pub setup_script: Option<PathBuf>,
}

/// Shortest idle shutdown Azure accepts (`idleTimeBeforeShutdown`).
pub const MIN_IDLE_TIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Longest idle shutdown Azure accepts.
pub const MAX_IDLE_TIME: std::time::Duration = std::time::Duration::from_secs(3 * 24 * 3600);

/// A humantime duration within Azure's idle-shutdown bounds, so a bad value is a usage error
/// (exit 2) before anything is sent.
fn parse_idle_time(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if (MIN_IDLE_TIME..=MAX_IDLE_TIME).contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "must be between 15m and 3days (Azure's bounds), got {s:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn poll_interval_defaults_to_5s_and_is_bounded() {
        let wait = |extra: &[&str]| {
            let mut args = vec![
                "lightsout",
                "ci",
                "stop",
                "ci-1",
                "--workspace",
                "a",
                "--wait",
            ];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).map(|c| match c.command {
                Command::Ci(CiCommand::Stop { wait, .. }) => wait.poll_interval,
                _ => unreachable!(),
            })
        };
        assert_eq!(wait(&[]).unwrap(), std::time::Duration::from_secs(5));
        assert_eq!(
            wait(&["--poll-interval", "2s"]).unwrap(),
            std::time::Duration::from_secs(2)
        );
        assert!(wait(&["--poll-interval", "100ms"]).is_err());
        assert!(wait(&["--poll-interval", "10m"]).is_err());
    }

    #[test]
    fn workspace_flags_conflict_with_alias() {
        let r = Cli::try_parse_from([
            "lightsout",
            "ci",
            "list",
            "--workspace",
            "a",
            "--subscription",
            "s",
            "--resource-group",
            "r",
            "--workspace-name",
            "w",
        ]);
        assert!(r.is_err());
    }

    #[test]
    fn ci_needs_a_workspace() {
        let r = Cli::try_parse_from(["lightsout", "ci", "list"]);
        let e = r.unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn hold_arguments_are_checked() {
        let parse = |args: &[&str]| {
            let mut a = vec!["lightsout", "hold", "ci-x", "-w", "lab"];
            a.extend_from_slice(args);
            Cli::try_parse_from(a)
        };
        let Ok(Cli {
            command: Command::Hold(h),
            ..
        }) = parse(&["--for", "3h", "--reason", "  demo tonight "])
        else {
            panic!("hold parses");
        };
        assert_eq!(h.duration, std::time::Duration::from_secs(3 * 3600));
        assert_eq!(h.reason.as_deref(), Some("demo tonight"));
        assert!(parse(&["--for", "30days"]).is_ok());
        assert!(parse(&["--for", "1m"]).is_ok());
        for bad in ["0s", "59s", "31days", "soon", "-3h", ""] {
            let e = parse(&[&format!("--for={bad}")]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        let e = parse(&[]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let long = "x".repeat(257);
        for bad in ["", "   ", long.as_str(), "two\nlines"] {
            assert!(parse(&["--for", "1h", "--reason", bad]).is_err(), "{bad:?}");
        }
        assert!(parse(&["--for", "1h", "--reason", &"é".repeat(256)]).is_ok());
        let e = Cli::try_parse_from(["lightsout", "hold", "../x", "-w", "lab", "--for", "1h"])
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(Cli::try_parse_from(["lightsout", "release", "ci-x", "-w", "lab"]).is_ok());
        let e = Cli::try_parse_from(["lightsout", "release", "ci-x"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn idle_time_within_azure_bounds() {
        let parse = |v: &str| {
            Cli::try_parse_from([
                "lightsout",
                "ci",
                "create",
                "ci-x",
                "-w",
                "lab",
                "--idle-time-before-shutdown",
                v,
            ])
        };
        assert!(parse("15m").is_ok());
        assert!(parse("3days").is_ok());
        assert!(parse("14m").is_err());
        assert!(parse("3days 1s").is_err());
        assert!(parse("soon").is_err());
    }
}
