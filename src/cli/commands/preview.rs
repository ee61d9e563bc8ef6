//! `lightsout preview`: the next transitions of each policy; needs no Azure.

use std::fmt::Write as _;

use anyhow::Context as _;
use jiff::SignedDuration;

use super::validate::config_path;
use crate::cli::PreviewArgs;
use crate::engine::preview::{ItemKind, PreviewItem, preview as preview_items};
use crate::{clock, engine::config};

#[derive(serde::Serialize)]
struct PolicyPreview<'a> {
    policy: &'a str,
    timezone: String,
    items: Vec<PreviewItem>,
}

/// Print each policy's upcoming changes as text or JSON.
pub fn preview(args: &PreviewArgs) -> anyhow::Result<()> {
    let path = config_path(&args.config);
    let (cfg, _) = config::load(&path)?;
    let from = args.from.unwrap_or_else(clock::now);
    let until = from
        .checked_add(SignedDuration::from_hours(i64::from(args.days) * 24))
        .context("--from plus --days is out of range")?;
    let selected: Vec<_> = cfg
        .policies
        .iter()
        .filter(|p| args.policy.as_deref().is_none_or(|n| n == p.name))
        .collect();
    if let Some(name) = &args.policy
        && selected.is_empty()
    {
        anyhow::bail!("no policy named {name:?} in {}", path.display());
    }
    let previews: Vec<PolicyPreview<'_>> = selected
        .iter()
        .map(|p| PolicyPreview {
            policy: &p.name,
            timezone: p.schedule.tz.iana_name().unwrap_or("UTC").to_owned(),
            items: preview_items(p, from, until),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&previews)?);
        return Ok(());
    }
    let mut out = String::new();
    for p in &previews {
        writeln!(out, "policy {} ({})", p.policy, p.timezone)?;
        if p.items.is_empty() {
            writeln!(out, "  nothing in the next {} days", args.days)?;
        }
        for i in &p.items {
            let what = match &i.kind {
                ItemKind::Transition { to } => format!("{to:<8} schedule"),
                ItemKind::Event { action, cron } => format!("{action:<8} cron \"{cron}\""),
                ItemKind::DstChange { from_offset } => {
                    format!("DST      offset {from_offset} -> {}", i.offset)
                }
            };
            let mark = if i.after_dst_change {
                "  (after DST change)"
            } else {
                ""
            };
            writeln!(
                out,
                "  {} {} {}  {what}{mark}",
                i.weekday,
                i.local.replace('T', " "),
                i.offset
            )?;
        }
    }
    print!("{out}");
    Ok(())
}
