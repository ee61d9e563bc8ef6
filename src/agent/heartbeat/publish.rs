//! What one heartbeat says: the blob body (the snapshot for people, with the instance and
//! the snooze) and the verdict in its metadata (for the daemon). Pure: built from what the
//! agent holds; and the retry schedule when storage fails.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::azure::retry::RetryPolicy;
use crate::engine::activity::Snapshot;
use crate::engine::heartbeat::{MAX_BLOB_BYTES, Snooze, VERDICT_VERSION, Verdict};

/// The first wait after a failed write.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between writes while storage fails (AGENT.md section 5.5: 1 s → 5 min).
pub const MAX_RETRY: Duration = Duration::from_secs(5 * 60);
/// Each wait is cut by up to this fraction at random, so a fleet of agents that lost the
/// same storage account does not come back in step.
pub const RETRY_JITTER: f64 = 0.5;

/// The wait before retry number `retry` (0 = the first) with the random draw `unit_random`
/// in `[0, 1)`: doubling from [`FIRST_RETRY`] to [`MAX_RETRY`], jittered. The agent never
/// gives up: heartbeats are level-based, the next write carries the latest state.
pub fn retry_delay(retry: u32, unit_random: f64) -> Duration {
    RetryPolicy::try_new(
        u32::MAX,
        FIRST_RETRY,
        MAX_RETRY,
        RETRY_JITTER,
        Duration::MAX,
    )
    .map_or(MAX_RETRY, |p| p.backoff(retry, unit_random))
}

/// Who and where the agent is, for every heartbeat.
#[derive(Debug, Clone)]
pub struct Identity {
    pub workspace: String,
    pub instance: String,
    pub interval: Duration,
}

/// The body of the heartbeat blob: the snapshot's fields at the top level (as
/// `lightsout agent observe --json` prints them), `last_activity` carried across
/// observations, plus who wrote it and the snooze.
#[derive(Debug, Serialize)]
struct Body<'a> {
    agent: &'static str,
    workspace: &'a str,
    instance: &'a str,
    interval_secs: u64,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    snooze: Option<&'a Snooze>,
    /// The `signals` were dropped to keep the body within 64 KiB.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    signals_truncated: bool,
}

/// One heartbeat, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub body: Vec<u8>,
    pub verdict: Verdict,
}

/// Builds the heartbeat from the latest snapshot, the carried `last_activity` and the
/// snooze; a snooze that has ended by the snapshot's time is left out.
pub fn heartbeat(
    who: &Identity,
    snapshot: &Snapshot,
    last_activity: Option<Timestamp>,
    snooze: Option<&Snooze>,
) -> Heartbeat {
    let snooze = snooze.filter(|s| s.until > snapshot.at);
    let snapshot = Snapshot {
        last_activity,
        ..snapshot.clone()
    };
    let mut body = Body {
        agent: env!("CARGO_PKG_VERSION"),
        workspace: &who.workspace,
        instance: &who.instance,
        interval_secs: who.interval.as_secs(),
        snapshot: &snapshot,
        snooze,
        signals_truncated: false,
    };
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    if bytes.len() as u64 > MAX_BLOB_BYTES {
        // The daemon skips bodies over 64 KiB; the verdict is in the metadata anyway.
        let bare = Snapshot {
            signals: Default::default(),
            ..snapshot.clone()
        };
        body.snapshot = &bare;
        body.signals_truncated = true;
        bytes = serde_json::to_vec(&body).unwrap_or_default();
    }
    let verdict = Verdict {
        v: VERDICT_VERSION,
        instance: who.instance.clone(),
        at: snapshot.at,
        busy: snapshot.busy,
        reasons: if snapshot.busy {
            snapshot.reasons.clone()
        } else {
            Vec::new()
        },
        last_activity,
        interval_secs: who.interval.as_secs(),
        snooze: snooze.cloned(),
    };
    Heartbeat {
        body: bytes,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::activity::SignalsSeen;
    use crate::engine::heartbeat::{BusyReason, Listed, read};

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    #[test]
    fn retries_double_from_one_second_to_five_minutes_with_jitter() {
        let plain: Vec<u64> = (0..12).map(|r| retry_delay(r, 0.0).as_secs()).collect();
        assert_eq!(plain, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(retry_delay(u32::MAX, 0.0), MAX_RETRY);
        // The draw cuts up to half.
        assert_eq!(retry_delay(9, 0.999_999).as_secs(), 150);
        assert_eq!(retry_delay(0, 0.5), Duration::from_millis(750));
    }

    #[test]
    fn the_verdict_in_the_metadata_reads_back_as_the_daemon_reads_it() {
        let who = Identity {
            workspace: "ws".into(),
            instance: "ci-alice".into(),
            interval: Duration::from_secs(60),
        };
        let snapshot = Snapshot {
            at: ts("2026-12-07T10:00:00Z"),
            busy: true,
            reasons: vec![BusyReason::TerminalInput],
            last_activity: Some(ts("2026-12-07T09:59:00Z")),
            signals: SignalsSeen::default(),
        };
        let snooze = Snooze {
            at: ts("2026-12-07T09:00:00Z"),
            until: ts("2026-12-07T11:00:00Z"),
            reason: Some("x".into()),
            by: Some("azureuser".into()),
        };
        let hb = heartbeat(&who, &snapshot, Some(snapshot.at), Some(&snooze));
        let meta = hb.verdict.to_metadata();
        let back = read(
            Listed {
                name: "ws/ci-alice.json",
                size: hb.body.len() as u64,
                verdict: Some(&meta),
            },
            "ws/",
            ts("2026-12-07T10:00:01Z"),
        )
        .expect("the daemon accepts it");
        assert_eq!(back, hb.verdict);
        assert_eq!(back.snooze, Some(snooze.clone()));
        let body: serde_json::Value = serde_json::from_slice(&hb.body).expect("json");
        assert_eq!(body["instance"], "ci-alice");
        assert_eq!(body["busy"], true);
        assert_eq!(body["reasons"], serde_json::json!(["terminal_input"]));
        assert_eq!(body["last_activity"], "2026-12-07T10:00:00Z");
        assert_eq!(body["snooze"]["reason"], "x");
        // Ended by the snapshot's time: left out.
        let later = Snapshot {
            at: ts("2026-12-07T11:00:00Z"),
            ..snapshot
        };
        assert_eq!(
            heartbeat(&who, &later, None, Some(&snooze)).verdict.snooze,
            None
        );
    }
}
