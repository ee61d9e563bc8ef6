//! What a policy's calendar will do next: schedule changes, cron events and the DST changes
//! between them, in local time with the UTC offset.
//!
//! Pure: takes the period to list; `commands::preview` prints it.

use jiff::Timestamp;
use jiff::tz::Offset;
use serde::Serialize;

use crate::engine::policy::Policy;
use crate::engine::schedule::Desired;

/// One line of a preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewItem {
    /// The instant, UTC.
    pub at: Timestamp,
    /// Local wall-clock time, `YYYY-MM-DDTHH:MM`.
    pub local: String,
    /// Local weekday, `Mon`…`Sun`.
    pub weekday: String,
    /// UTC offset in force from this instant, e.g. `+02:00`.
    pub offset: String,
    #[serde(flatten)]
    pub kind: ItemKind,
    /// This item is the first after a DST (offset) change since the previous item.
    pub after_dst_change: bool,
}

/// What happens at a preview item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ItemKind {
    /// The desired state changes (`up`, `down`, or `any` when no schedule applies).
    Transition { to: String },
    /// A cron event fires.
    Event { action: String, cron: String },
    /// The zone's UTC offset changes.
    DstChange { from_offset: String },
}

fn fmt_offset(o: Offset) -> String {
    let secs = o.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
}

/// Everything `policy` does in `(from, until]`, in time order.
pub fn preview(policy: &Policy, from: Timestamp, until: Timestamp) -> Vec<PreviewItem> {
    let tz = &policy.schedule.tz;
    let mut raw: Vec<(Timestamp, ItemKind)> = Vec::new();
    for t in policy.schedule.transitions(from, until) {
        let to = match t.to {
            Some(Desired::Up) => "up",
            Some(Desired::Down) => "down",
            None => "any",
        };
        raw.push((t.at, ItemKind::Transition { to: to.to_owned() }));
    }
    for ev in &policy.events {
        for at in ev.cron.fire_times(tz, from, until) {
            raw.push((
                at,
                ItemKind::Event {
                    action: ev.action.as_str().to_owned(),
                    cron: ev.cron.as_str().to_owned(),
                },
            ));
        }
    }
    for tr in tz.following(from) {
        if tr.timestamp() > until {
            break;
        }
        let before = tz.to_offset(
            tr.timestamp()
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap_or(tr.timestamp()),
        );
        if before != tr.offset() {
            raw.push((
                tr.timestamp(),
                ItemKind::DstChange {
                    from_offset: fmt_offset(before),
                },
            ));
        }
    }
    // DST lines sort before what happens at the same instant.
    raw.sort_by_key(|(at, kind)| (*at, !matches!(kind, ItemKind::DstChange { .. })));
    let mut last_offset = tz.to_offset(from);
    raw.into_iter()
        .map(|(at, kind)| {
            let offset = tz.to_offset(at);
            let after_dst_change =
                offset != last_offset && !matches!(kind, ItemKind::DstChange { .. });
            if !matches!(kind, ItemKind::DstChange { .. }) {
                last_offset = offset;
            }
            let local = tz.to_datetime(at);
            PreviewItem {
                at,
                local: local.strftime("%Y-%m-%dT%H:%M").to_string(),
                weekday: local.strftime("%a").to_string(),
                offset: fmt_offset(offset),
                kind,
                after_dst_change,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(toml: &str) -> Policy {
        let (cfg, _) = crate::engine::config::validate::from_str(toml).unwrap();
        cfg.policies.into_iter().next().unwrap()
    }

    #[test]
    fn marks_dst_changes_in_paris_spring() {
        let p = policy(
            "[[policy]]\nname = \"o\"\ntimezone = \"Europe/Paris\"\nuptime = [\"Mon-Fri 08:00-19:00\"]\n[[policy.event]]\ncron = \"0 3 * * Sun\"\naction = \"restart\"\n",
        );
        let items = preview(
            &p,
            "2026-03-27T12:00:00Z".parse().unwrap(),
            "2026-03-30T12:00:00Z".parse().unwrap(),
        );
        let lines: Vec<String> = items
            .iter()
            .map(|i| {
                format!(
                    "{} {} {} {:?} {}",
                    i.weekday, i.local, i.offset, i.kind, i.after_dst_change
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                "Fri 2026-03-27T19:00 +01:00 Transition { to: \"down\" } false",
                "Sun 2026-03-29T03:00 +02:00 DstChange { from_offset: \"+01:00\" } false",
                "Sun 2026-03-29T03:00 +02:00 Event { action: \"restart\", cron: \"0 3 * * Sun\" } true",
                "Mon 2026-03-30T08:00 +02:00 Transition { to: \"up\" } false",
            ]
        );
    }
}
