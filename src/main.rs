//! The `lightsout` binary: parse the command line, set up logs, dispatch, pick the exit code.
//!
//! Everything else lives in the library; nothing below `main` calls `process::exit`.

use std::process::ExitCode;

use clap::Parser;
use lightsout::cli::{AgentCommand, Cli, Command};
use lightsout::engine::config::ConfigError;
use lightsout::{cli::commands, daemon::telemetry};

/// EX_CONFIG from sysexits.h: the configuration is bad; systemd must not restart-loop on it.
const EXIT_CONFIG: u8 = 78;

/// The daemon runs on one thread: it waits on the network almost all the time, and one
/// thread keeps its allocations in one malloc arena (at 10,000 instances the worker
/// threads' arenas held about 5 MiB more at the peak). So does the on-instance agent, which
/// must stay small beside the user's work. The other commands get the multi-threaded
/// runtime (the emulator serves many clients).
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    match command {
        Command::Run(_) | Command::Agent(AgentCommand::Run(_)) => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        _ => tokio::runtime::Runtime::new(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.command {
        Command::Demo(_) | Command::Simulate(_) => telemetry::QUIET_FILTER,
        _ => telemetry::DEFAULT_FILTER,
    };
    telemetry::init(cli.log_format, filter);
    let runtime = match runtime_for(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run(&args).await,
            Command::Validate(args) => commands::validate(&args),
            Command::Plan(args) => commands::plan(&args).await,
            Command::Preview(args) => commands::preview(&args),
            Command::Simulate(args) => commands::simulate(&args).await,
            Command::Emulator(args) => commands::emulator(args).await,
            Command::Ci(cmd) => commands::ci(cmd).await,
            Command::Hold(args) => commands::hold(&args).await,
            Command::Release(args) => commands::release(&args).await,
            Command::Demo(args) => commands::demo(args).await,
            Command::Audit(args) => commands::audit(&args),
            Command::Report(args) => commands::report(&args),
            Command::Doctor(args) => commands::doctor(&args).await,
            Command::Healthcheck(args) => commands::healthcheck(&args).await,
            Command::Agent(cmd) => commands::agent(cmd).await,
            Command::Snooze(args) => commands::snooze(&args).await,
            Command::Completions(args) => commands::completions(&args),
            Command::Manpage => commands::manpage(),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(config_error) = e.downcast_ref::<ConfigError>() {
                match config_error {
                    // Already one `FILE:LINE:COL: message` per line.
                    ConfigError::Invalid { .. } => eprintln!("{config_error}"),
                    ConfigError::Read { .. } => eprintln!("error: {e:#}"),
                }
                return ExitCode::from(EXIT_CONFIG);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
