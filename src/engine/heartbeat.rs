//! The agent's heartbeat as it travels through Azure Blob Storage: one block blob per
//! instance, `{container}/{workspace}/{instance}.json`, whose body is the agent's snapshot
//! (for people) and whose metadata carries the verdict (for the daemon).
//!
//! The daemon reads a whole workspace with one List Blobs call per 5,000 instances
//! (`include=metadata`), so everything it decides on must be in the metadata: the verdict is
//! one compact JSON value under [`METADATA_KEY`]. Pure: parsing and checks take `now`.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

crate::engine::text_enum::text_enum! {
    what = "busy reason";
    /// Why the agent calls an instance busy (CONTRACT section 0: a fixed list).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum BusyReason {
        /// A Jupyter kernel's `execution_state` is busy (even with `last_activity` frozen).
        KernelBusy = "kernel_busy",
        /// Fresh input on a terminal: SSH, tmux, screen, a Jupyter or VS Code terminal.
        TerminalInput = "terminal_input",
        /// The user's processes use a core.
        Cpu = "cpu",
        /// A GPU computes.
        Gpu = "gpu",
        /// A container (custom application, job) uses a core.
        Container = "container",
        /// A VS Code window is connected (with input or CPU, or always under the policy switch).
        Vscode = "vscode",
        /// An Azure ML job runs on the instance.
        Job = "job",
    }
}

/// The one metadata key of a heartbeat blob; its value is a [`Verdict`] as compact JSON.
/// Metadata names must be C# identifiers (Blob service REST reference, "Set Blob Metadata").
pub const METADATA_KEY: &str = "lightsoutverdict";
/// The version of the verdict format this build writes and reads.
pub const VERDICT_VERSION: u32 = 1;
/// A heartbeat blob larger than this is not read (the agent writes a few KiB).
pub const MAX_BLOB_BYTES: u64 = 64 * 1024;
/// A verdict longer than this is not parsed (all metadata of a blob is at most 8 KiB).
pub const MAX_VERDICT_BYTES: usize = 4 * 1024;
/// How far in the future a heartbeat may claim to be (clock skew between instance and daemon).
pub const FUTURE_SKEW: Duration = Duration::from_secs(5 * 60);
/// Longest snooze reason kept; the rest is cut.
pub const MAX_SNOOZE_REASON: usize = 200;

/// A snooze asked for on the instance (`lightsout snooze 2h`): a hold, bounded by the
/// policy's `max_snooze` from the moment it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snooze {
    /// When the user asked.
    pub at: Timestamp,
    /// Until when the user asked.
    pub until: Timestamp,
    /// Free text from `--reason`, ASCII only, at most [`MAX_SNOOZE_REASON`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The local user who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl Snooze {
    /// Until when the daemon honours it: `until`, but no longer than `max` after it was asked.
    pub fn effective_until(&self, max: Duration) -> Timestamp {
        let cap = jiff::SignedDuration::try_from(max)
            .ok()
            .and_then(|d| self.at.checked_add(d).ok())
            .unwrap_or(Timestamp::MAX);
        self.until.min(cap)
    }
}

/// What the agent concluded at `at`: the part of a heartbeat the daemon decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Format version ([`VERDICT_VERSION`]).
    pub v: u32,
    /// The compute instance's name (`CI_NAME`); must match the blob's name.
    pub instance: String,
    /// When the agent observed.
    pub at: Timestamp,
    /// Some signal says the instance is in use.
    pub busy: bool,
    /// Which signals say so (empty when not busy).
    #[serde(default)]
    pub reasons: Vec<BusyReason>,
    /// The last moment any signal showed use; `None`: none since the agent started.
    pub last_activity: Option<Timestamp>,
    /// The agent's interval: a heartbeat older than three of them is stale.
    pub interval_secs: u64,
    /// A snooze in force, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snooze: Option<Snooze>,
}

impl Verdict {
    /// The metadata value: compact JSON, ASCII only (metadata travels as HTTP headers).
    pub fn to_metadata(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        json.chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }

    /// The interval after which this heartbeat counts as stale: three intervals, but at
    /// least `floor` (the configured staleness), so a tiny interval cannot shrink it.
    pub fn stale_after(&self, floor: Duration) -> Duration {
        Duration::from_secs(self.interval_secs.saturating_mul(3)).max(floor)
    }
}

/// The blob name of an instance's heartbeat: `{workspace}/{instance}.json`, where workspace is
/// the Azure ML workspace's own name (`CI_WORKSPACE`), not the config's alias.
pub fn blob_name(workspace: &str, instance: &str) -> String {
    format!("{workspace}/{instance}.json")
}

/// The List Blobs prefix of one workspace's heartbeats.
pub fn workspace_prefix(workspace: &str) -> String {
    format!("{workspace}/")
}

/// Why a listed heartbeat blob is ignored (counted, said once; never read as idle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejected {
    /// The name is not `{workspace}/{instance}.json`.
    BadName,
    /// Larger than [`MAX_BLOB_BYTES`].
    TooLarge,
    /// No verdict metadata.
    NoVerdict,
    /// The verdict is not valid JSON of this format, or names another instance.
    BadVerdict,
    /// Observed more than [`FUTURE_SKEW`] after `now`.
    FromTheFuture,
}

impl Rejected {
    /// The label in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::BadName => "bad_name",
            Rejected::TooLarge => "too_large",
            Rejected::NoVerdict => "no_verdict",
            Rejected::BadVerdict => "bad_verdict",
            Rejected::FromTheFuture => "from_the_future",
        }
    }
}

/// One heartbeat blob as List Blobs shows it.
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    pub name: &'a str,
    pub size: u64,
    /// The value of [`METADATA_KEY`], if present.
    pub verdict: Option<&'a str>,
}

/// Reads one listed heartbeat of `prefix` (`{workspace}/`): the instance it is for and its
/// verdict, or why it is ignored.
pub fn read(listed: Listed<'_>, prefix: &str, now: Timestamp) -> Result<Verdict, Rejected> {
    let instance = listed
        .name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(".json"))
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or(Rejected::BadName)?;
    if listed.size > MAX_BLOB_BYTES {
        return Err(Rejected::TooLarge);
    }
    let text = listed.verdict.ok_or(Rejected::NoVerdict)?;
    if text.len() > MAX_VERDICT_BYTES {
        return Err(Rejected::BadVerdict);
    }
    let verdict: Verdict = serde_json::from_str(text).map_err(|_| Rejected::BadVerdict)?;
    if verdict.v != VERDICT_VERSION || verdict.instance != instance {
        return Err(Rejected::BadVerdict);
    }
    let skew = jiff::SignedDuration::try_from(FUTURE_SKEW).unwrap_or_default();
    if verdict.at > now.checked_add(skew).unwrap_or(Timestamp::MAX) {
        return Err(Rejected::FromTheFuture);
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn verdict() -> Verdict {
        Verdict {
            v: VERDICT_VERSION,
            instance: "ci-alice".into(),
            at: ts("2026-12-07T10:00:00Z"),
            busy: true,
            reasons: vec![BusyReason::Cpu, BusyReason::TerminalInput],
            last_activity: Some(ts("2026-12-07T09:59:30Z")),
            interval_secs: 60,
            snooze: Some(Snooze {
                at: ts("2026-12-07T09:00:00Z"),
                until: ts("2026-12-08T09:00:00Z"),
                reason: Some("training — résumé".into()),
                by: Some("azureuser".into()),
            }),
        }
    }

    fn listed<'a>(name: &'a str, verdict: Option<&'a str>) -> Listed<'a> {
        Listed {
            name,
            size: 900,
            verdict,
        }
    }

    #[test]
    fn a_verdict_round_trips_through_ascii_metadata() {
        let v = verdict();
        let meta = v.to_metadata();
        assert!(meta.is_ascii(), "{meta}");
        let back = read(
            listed("ws/ci-alice.json", Some(&meta)),
            "ws/",
            ts("2026-12-07T10:00:10Z"),
        )
        .expect("read");
        assert_eq!(back.reasons, v.reasons);
        assert_eq!(back.last_activity, v.last_activity);
        assert_eq!(
            back.snooze.as_ref().and_then(|s| s.reason.clone()),
            Some("training ? r?sum?".into())
        );
    }

    #[test]
    fn bad_heartbeats_are_rejected_with_their_reason() {
        let now = ts("2026-12-07T10:00:10Z");
        let good = verdict().to_metadata();
        let other = Verdict {
            instance: "ci-bob".into(),
            ..verdict()
        }
        .to_metadata();
        let future = Verdict {
            at: ts("2026-12-07T10:06:00Z"),
            ..verdict()
        }
        .to_metadata();
        let cases: Vec<(Listed<'_>, Rejected)> = vec![
            (listed("ws/ci-alice.txt", Some(&good)), Rejected::BadName),
            (listed("ws/x/ci-alice.json", Some(&good)), Rejected::BadName),
            (
                listed("other/ci-alice.json", Some(&good)),
                Rejected::BadName,
            ),
            (listed("ws/ci-alice.json", None), Rejected::NoVerdict),
            (
                listed("ws/ci-alice.json", Some("{not json")),
                Rejected::BadVerdict,
            ),
            (
                listed("ws/ci-alice.json", Some(&other)),
                Rejected::BadVerdict,
            ),
            (
                listed("ws/ci-alice.json", Some(&future)),
                Rejected::FromTheFuture,
            ),
            (
                Listed {
                    size: MAX_BLOB_BYTES + 1,
                    ..listed("ws/ci-alice.json", Some(&good))
                },
                Rejected::TooLarge,
            ),
        ];
        for (l, want) in cases {
            assert_eq!(read(l, "ws/", now).err(), Some(want), "{}", l.name);
        }
    }

    #[test]
    fn a_snooze_is_bounded_by_max_snooze_from_when_it_was_asked() {
        let s = verdict().snooze.expect("snooze");
        assert_eq!(
            s.effective_until(Duration::from_secs(12 * 3600)),
            ts("2026-12-07T21:00:00Z")
        );
        assert_eq!(s.effective_until(Duration::from_secs(48 * 3600)), s.until);
    }

    #[test]
    fn staleness_is_three_intervals_or_the_configured_floor() {
        let v = verdict();
        assert_eq!(
            v.stale_after(Duration::from_secs(60)),
            Duration::from_secs(180)
        );
        assert_eq!(
            v.stale_after(Duration::from_secs(600)),
            Duration::from_secs(600)
        );
    }
}
