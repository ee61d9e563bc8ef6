//! `lightsout agent …` and `lightsout snooze`: the command line of the on-instance agent.

use crate::agent;
use crate::cli::{AgentCommand, AgentObserveArgs, SnoozeArgs, SnoozeFor};

/// `lightsout agent observe|run|setup-script`.
pub async fn agent(cmd: AgentCommand) -> anyhow::Result<()> {
    match cmd {
        AgentCommand::Observe(args) => observe(&args).await,
        AgentCommand::Run(args) => agent::heartbeat::run(&args.config).await,
        AgentCommand::SetupScript(args) => {
            print!(
                "{}",
                agent::setup::script(&agent::setup::SetupOptions {
                    from: Some(args.from),
                    account: args.account,
                    container: args.container,
                    client_id: args.client_id,
                })
            );
            Ok(())
        }
    }
}

/// `lightsout agent observe --json`: one snapshot on stdout.
async fn observe(args: &AgentObserveArgs) -> anyhow::Result<()> {
    let snapshot = agent::collect::observe(&agent::collect::ObserveOptions {
        user: args.user.clone(),
        window: args.window,
        jupyter_runtime_dir: std::env::var_os("JUPYTER_RUNTIME_DIR").map(Into::into),
    })
    .await?;
    println!("{}", serde_json::to_string_pretty(&snapshot)?);
    Ok(())
}

/// `lightsout snooze 2h [--reason …]` or `lightsout snooze off`.
pub async fn snooze(args: &SnoozeArgs) -> anyhow::Result<()> {
    let request = match args.duration {
        SnoozeFor::Off => agent::snooze::SnoozeRequest::Off,
        SnoozeFor::Duration(duration) => agent::snooze::SnoozeRequest::For {
            duration,
            reason: args.reason.clone(),
        },
    };
    if let agent::snooze::SnoozeRequest::For { duration, .. } = &request
        && *duration > agent::snooze::DEFAULT_MAX_SNOOZE
    {
        eprintln!(
            "warning: lightsout honours a snooze for at most the policy's max_snooze (12h unless your administrator changed it), counted from now"
        );
    }
    let answer = agent::snooze::request(&args.socket, &request).await?;
    println!(
        "{}",
        agent::snooze::describe(&answer, &jiff::tz::TimeZone::system())
    );
    Ok(())
}
