//! Runs the emulator as `lightsout emulator` will: `--listen ADDR`, `--fleet FILE`, `--tls`,
//! `--virtual-time`. Prints the ready line on stdout, logs to stderr, runs until Ctrl-C or
//! SIGTERM. For manual testing and the Python SDK test until the CLI exists.

use std::net::SocketAddr;
use std::path::PathBuf;

use lightsout::emulator::{Emulator, EmulatorOptions, Fleet};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut opts = EmulatorOptions {
        tls: false,
        ..EmulatorOptions::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                let v = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--listen needs a value"))?;
                opts.listen = v.parse::<SocketAddr>()?;
            }
            "--fleet" => {
                let v = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--fleet needs a value"))?;
                opts.fleet = Fleet::load(&PathBuf::from(v))?;
            }
            "--state-dir" => {
                let v = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--state-dir needs a value"))?;
                opts.state_dir = Some(PathBuf::from(v));
            }
            "--tls" => opts.tls = true,
            "--virtual-time" => opts.virtual_time = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let running = Emulator::start(opts).await?;
    println!("{}", serde_json::to_string(&running.ready())?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    running.shutdown().await;
    Ok(())
}
