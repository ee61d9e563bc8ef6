//! `lightsout emulator`: a local fake of Azure; one JSON ready line on stdout, logs on stderr.

use azure_ml_emulator::{Emulator, EmulatorOptions, Fleet};

use crate::cli::EmulatorArgs;
use crate::daemon::shutdown;

/// Start the emulator, print the ready line, serve until SIGINT or SIGTERM.
pub async fn emulator(args: EmulatorArgs) -> anyhow::Result<()> {
    let fleet = match &args.fleet {
        Some(path) => Fleet::load(path)?,
        None => Fleet::demo(),
    };
    let running = Emulator::start(EmulatorOptions {
        listen: args.listen,
        fleet,
        tls: args.tls,
        virtual_time: args.virtual_time,
        state_dir: args.state_dir,
        page_size: args.page_size,
    })
    .await?;
    println!("{}", serde_json::to_string(&running.ready())?);
    shutdown::signal().await;
    running.shutdown().await;
    Ok(())
}
