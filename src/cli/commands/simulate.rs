//! `lightsout simulate`: print every action of a virtual-time run and the cost summary.

use azure_ml_emulator::Fleet;

use crate::cli::SimulateArgs;
use crate::{engine::config, sim::simulate as sim};

/// Run the simulation and print it as text or one JSON document.
pub async fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let (cfg, _) = config::load(&args.config)?;
    let fleet = Fleet::load(&args.fleet)?;
    let result = sim::simulate(cfg, fleet, args.from, args.to, &args.outage).await?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    for a in &result.actions {
        let late = if a.catch_up { " (catch-up)" } else { "" };
        // `as_str()`, not Display: Display ignores the `{:<8}` width.
        println!(
            "{}  {:<8} {}/{}  {}{late}  [{}]",
            a.at,
            a.action.as_str(),
            a.workspace,
            a.instance,
            a.reason,
            a.policy
        );
    }
    let c = &result.cost;
    println!(
        "cost ({}): spent {:.2}, avoided {:.2}, idle {:.2}, always-on {:.2} ({} actions, {} passes)",
        c.currency,
        c.spent,
        c.avoided,
        c.idle,
        c.always_on,
        result.actions.len(),
        result.passes
    );
    if !result.unpriced.is_empty() {
        println!(
            "unpriced vm sizes (not counted): {}",
            result.unpriced.join(", ")
        );
    }
    Ok(())
}
