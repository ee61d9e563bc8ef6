//! `lightsout hold NAME --for DURATION [--reason TEXT]` and `lightsout release NAME`: keep one
//! compute instance up tonight without editing the config.
//!
//! A hold is two tags on the compute: `lightsout-hold-until` (RFC 3339, UTC, whole seconds) and,
//! with `--reason`, `lightsout-hold-reason`. They are written through ARM's generic Tags API
//! (`ArmClient::update_tags`), which changes the tags and nothing else of the compute and needs
//! `Microsoft.Resources/tags/write` on it: a right of the person running the command, not of the
//! daemon, which only reads the tags on its next pass (a hold forbids stopping; idle time counts
//! from its end).
//!
//! Flow: resolve the workspace and build the client as `ci` does ([`Target`]), read the compute
//! (it must exist and be a compute instance), then `Merge` the tags (`hold`) or `Delete` them with
//! their current values (`release`). Errors read like `ci`'s, with the missing permission named.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use jiff::Timestamp;
use serde::Serialize;

use super::ci::Target;
use crate::azure::TagsOperation;
use crate::azure::wire::{ComputeResource, ComputeType};
use crate::cli::{HoldArgs, ReleaseArgs};
use crate::engine::model::{TAG_HOLD_REASON, TAG_HOLD_UNTIL};

/// What `hold --json` prints.
#[derive(Debug, Serialize)]
struct HoldReport<'a> {
    instance: &'a str,
    workspace: &'a str,
    /// RFC 3339, UTC.
    until: String,
    reason: Option<&'a str>,
    /// The hold this one replaced, if there was one.
    previous_until: Option<String>,
    /// The instance's state when it was held.
    state: Option<String>,
}

/// What `release --json` prints.
#[derive(Debug, Serialize)]
struct ReleaseReport<'a> {
    instance: &'a str,
    workspace: &'a str,
    /// False when there was no hold to remove.
    released: bool,
    /// The removed hold's end, as the tag had it.
    was_held_until: Option<String>,
    was_reason: Option<String>,
}

/// `lightsout hold`.
pub async fn hold(args: &HoldArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let t = Target::connect(&args.ws)?;
    let current = t
        .client
        .get_compute(&t.ws, name)
        .await
        .map_err(|e| t.explain(&e, Some(name)))?;
    check_instance(&t, name, &current)?;
    let now = crate::clock::now();
    let until = hold_until(now, args.duration)?;
    let until_text = until.to_string();
    let previous = current.tag(TAG_HOLD_UNTIL).map(str::to_owned);

    let mut after = t
        .client
        .update_tags(
            &t.ws,
            name,
            TagsOperation::Merge,
            &hold_tags(&until_text, args.reason.as_deref()),
        )
        .await
        .map_err(|e| t.explain(&e, Some(name)))?;
    // A reason left by an earlier hold does not explain this one.
    if args.reason.is_none()
        && let Some(stale) = after.get(TAG_HOLD_REASON)
    {
        let stale = BTreeMap::from([(TAG_HOLD_REASON.to_owned(), stale.clone())]);
        after = t
            .client
            .update_tags(&t.ws, name, TagsOperation::Delete, &stale)
            .await
            .map_err(|e| t.explain(&e, Some(name)))?;
    }
    if after.get(TAG_HOLD_UNTIL) != Some(&until_text) {
        bail!(
            "Azure accepted the tags of '{name}' but does not show {TAG_HOLD_UNTIL} = {until_text} (it has {:?}); check with `lightsout ci show {name}`",
            after.get(TAG_HOLD_UNTIL)
        );
    }

    let state = current.instance_state().map(ToString::to_string);
    if args.ws.json {
        let report = HoldReport {
            instance: name,
            workspace: &t.label,
            until: until_text,
            reason: args.reason.as_deref(),
            previous_until: previous,
            state,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    match &args.reason {
        Some(r) => println!("{name} held until {until_text} ({r})"),
        None => println!("{name} held until {until_text}"),
    }
    if let Some(p) = previous.as_deref()
        && p.parse::<Timestamp>().is_ok_and(|p| p > until)
    {
        eprintln!("note: this shortens the earlier hold, which ran until {p}");
    }
    if state.as_deref() == Some("Stopped") {
        eprintln!(
            "note: {name} is Stopped; a hold keeps lightsout from stopping it, it does not start it"
        );
    }
    Ok(())
}

/// `lightsout release`.
pub async fn release(args: &ReleaseArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let t = Target::connect(&args.ws)?;
    let current = t
        .client
        .get_compute(&t.ws, name)
        .await
        .map_err(|e| t.explain(&e, Some(name)))?;
    check_instance(&t, name, &current)?;
    let held = hold_tags_of(&current);
    let was_held_until = held.get(TAG_HOLD_UNTIL).cloned();
    let was_reason = held.get(TAG_HOLD_REASON).cloned();

    if !held.is_empty() {
        // Delete with the current values: ARM removes name/value pairs.
        let after = t
            .client
            .update_tags(&t.ws, name, TagsOperation::Delete, &held)
            .await
            .map_err(|e| t.explain(&e, Some(name)))?;
        if let Some(now_until) = after.get(TAG_HOLD_UNTIL) {
            bail!(
                "the hold on '{name}' changed while releasing it (it now runs until {now_until}); run release again"
            );
        }
    }

    if args.ws.json {
        let report = ReleaseReport {
            instance: name,
            workspace: &t.label,
            released: !held.is_empty(),
            was_held_until,
            was_reason,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let now = crate::clock::now();
    match was_held_until {
        None if held.is_empty() => println!("{name} was not held; nothing to release"),
        None => println!("{name} released (it had a hold reason but no end)"),
        Some(u) => match u.parse::<Timestamp>() {
            Ok(end) if end <= now => println!("{name} released (its hold had ended at {u})"),
            Ok(_) => println!("{name} released (was held until {u})"),
            Err(_) => println!("{name} released (its hold tag {u:?} was not a valid time)"),
        },
    }
    Ok(())
}

/// A hold must be on a compute instance; other compute types are not lightsout's.
fn check_instance(t: &Target, name: &str, r: &ComputeResource) -> anyhow::Result<()> {
    if r.compute_type() != Some(&ComputeType::ComputeInstance) {
        bail!(
            "'{name}' in {} is {}, not a compute instance; lightsout holds only compute instances",
            t.describe(),
            r.compute_type()
                .map_or("of unknown type".to_owned(), |c| format!("an {c}"))
        );
    }
    Ok(())
}

/// `now + duration`, rounded up to a whole second (the tag is read back as RFC 3339).
fn hold_until(now: Timestamp, duration: Duration) -> anyhow::Result<Timestamp> {
    let secs = i64::try_from(duration.as_secs())
        .context("hold duration too long")?
        .saturating_add(i64::from(duration.subsec_nanos() > 0));
    let end = now
        .as_second()
        .saturating_add(i64::from(now.subsec_nanosecond() > 0))
        .saturating_add(secs);
    Timestamp::from_second(end).context("hold ends beyond the supported time range")
}

/// The tags `hold` merges.
fn hold_tags(until: &str, reason: Option<&str>) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([(TAG_HOLD_UNTIL.to_owned(), until.to_owned())]);
    if let Some(r) = reason {
        tags.insert(TAG_HOLD_REASON.to_owned(), r.to_owned());
    }
    tags
}

/// The instance's hold tags with their current values (what `release` deletes).
fn hold_tags_of(r: &ComputeResource) -> BTreeMap<String, String> {
    [TAG_HOLD_UNTIL, TAG_HOLD_REASON]
        .into_iter()
        .filter_map(|k| r.tag(k).map(|v| (k.to_owned(), v.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::tags::TagsPatch;
    use serde_json::json;

    #[test]
    fn until_is_whole_seconds_and_rounds_up() {
        let now: Timestamp = "2026-03-27T18:00:00.250Z".parse().unwrap();
        let u = hold_until(now, Duration::from_secs(3 * 3600)).unwrap();
        assert_eq!(u.to_string(), "2026-03-27T21:00:01Z");
        let now: Timestamp = "2026-03-27T18:00:00Z".parse().unwrap();
        let u = hold_until(now, Duration::from_millis(90_500)).unwrap();
        assert_eq!(u.to_string(), "2026-03-27T18:01:31Z");
        // What the daemon reads back.
        assert_eq!(u.to_string().parse::<Timestamp>().unwrap(), u);
    }

    #[test]
    fn hold_body() {
        let body = TagsPatch::new(
            TagsOperation::Merge,
            &hold_tags("2026-03-27T21:00:00Z", Some("demo tonight")),
        );
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({"operation": "Merge", "properties": {"tags": {
                "lightsout-hold-until": "2026-03-27T21:00:00Z",
                "lightsout-hold-reason": "demo tonight",
            }}})
        );
        let tags = hold_tags("2026-03-27T21:00:00Z", None);
        assert_eq!(tags.len(), 1);
    }

    #[test]
    fn release_deletes_current_values_only_of_hold_tags() {
        let r: ComputeResource = serde_json::from_value(json!({
            "name": "ci-x",
            "tags": {"team": "vision", "lightsout-hold-until": "2026-03-27T21:00:00Z"},
        }))
        .unwrap();
        let body = TagsPatch::new(TagsOperation::Delete, &hold_tags_of(&r));
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({"operation": "Delete", "properties": {"tags": {
                "lightsout-hold-until": "2026-03-27T21:00:00Z",
            }}})
        );
        let r: ComputeResource = serde_json::from_value(json!({"name": "ci-x"})).unwrap();
        assert!(hold_tags_of(&r).is_empty());
    }
}
