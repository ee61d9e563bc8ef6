//! `lightsout snooze`: a user on the instance asks the local agent, over a unix socket, to
//! keep the instance up for a while; the agent records who asked (the socket's peer uid),
//! persists the snooze and publishes it with an immediate heartbeat. No Azure permission is
//! needed by the user: the agent's identity writes the heartbeat.
//!
//! The wire is one JSON line each way ([`Ask`] then [`Answer`]). The checks here are pure and
//! shared by both ends, so the CLI can say what is wrong before it connects.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::engine::heartbeat::{MAX_SNOOZE_REASON, Snooze};

/// Shortest snooze: anything shorter is a typo (`2` for `2h`).
pub const MIN_SNOOZE: Duration = Duration::from_secs(60);
/// Longest snooze the agent records. The daemon bounds it further by the policy's
/// `max_snooze` (default 12 h), counted from when it was asked.
pub const MAX_SNOOZE: Duration = Duration::from_secs(7 * 86_400);
/// Beyond this the CLI warns: the daemon's default `max_snooze`.
pub const DEFAULT_MAX_SNOOZE: Duration = Duration::from_secs(12 * 3600);
/// Longest request or answer line on the socket.
pub const MAX_LINE: usize = 4096;
/// How long either side waits for the other.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// The environment variable naming the socket for `lightsout snooze`.
pub const SOCKET_ENV: &str = "LIGHTSOUT_AGENT_SOCKET";

/// What the user asks for.
#[derive(Debug, Clone)]
pub enum SnoozeRequest {
    /// Keep the instance up this long from now.
    For {
        duration: Duration,
        reason: Option<String>,
    },
    /// End the snooze.
    Off,
}

/// The request line on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Ask {
    /// Snooze for `secs` seconds from when the agent receives it.
    Set {
        secs: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// End the snooze.
    Off,
}

/// The answer line on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The snooze now in force (`None` after `off`).
    pub snooze: Option<Snooze>,
    /// A heartbeat carrying it was written before the agent answered.
    pub published: bool,
    /// Why the request was refused (then nothing changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks a request: the duration within [`MIN_SNOOZE`]..=[`MAX_SNOOZE`], the reason printable
/// ASCII of at most [`MAX_SNOOZE_REASON`] characters (it travels in blob metadata, an HTTP
/// header). An empty reason counts as none.
pub fn check(request: &SnoozeRequest) -> Result<Ask, String> {
    match request {
        SnoozeRequest::Off => Ok(Ask::Off),
        SnoozeRequest::For { duration, reason } => {
            if *duration < MIN_SNOOZE || *duration > MAX_SNOOZE {
                return Err(format!(
                    "a snooze lasts from 1m to 7days, got {}",
                    humantime::format_duration(*duration)
                ));
            }
            let reason = reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
            if let Some(r) = reason {
                if r.len() > MAX_SNOOZE_REASON {
                    return Err(format!(
                        "the reason is {} characters; at most {MAX_SNOOZE_REASON}",
                        r.len()
                    ));
                }
                if !r.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                    return Err(
                        "the reason must be plain ASCII text (letters, digits, punctuation, spaces)"
                            .to_owned(),
                    );
                }
            }
            Ok(Ask::Set {
                secs: duration.as_secs(),
                reason: reason.map(str::to_owned),
            })
        }
    }
}

/// The snooze an [`Ask::Set`] makes, asked at `now` by `by` (checked again here: the socket
/// is open to every local user).
pub fn snooze_from(
    ask: &Ask,
    now: Timestamp,
    by: Option<String>,
) -> Result<Option<Snooze>, String> {
    match ask {
        Ask::Off => Ok(None),
        Ask::Set { secs, reason } => {
            let Ask::Set { secs, reason } = check(&SnoozeRequest::For {
                duration: Duration::from_secs(*secs),
                reason: reason.clone(),
            })?
            else {
                return Ok(None);
            };
            let until = now
                .checked_add(jiff::SignedDuration::from_secs(
                    i64::try_from(secs).unwrap_or(i64::MAX),
                ))
                .map_err(|e| format!("snooze end out of range: {e}"))?;
            Ok(Some(Snooze {
                at: now,
                until,
                reason,
                by,
            }))
        }
    }
}

/// Hands the request to the local agent at `socket` and returns its answer. The errors say
/// what to do: no agent there, the agent refused, or it did not answer.
pub async fn request(socket: &Path, request: &SnoozeRequest) -> anyhow::Result<Answer> {
    let ask = check(request).map_err(|e| anyhow::anyhow!("snooze: {e}"))?;
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await.map_err(|e| {
            anyhow::anyhow!(
                "no lightsout agent is listening at {} ({e}); is `lightsout-agent.service` running on this instance? (systemctl status lightsout-agent)",
                socket.display()
            )
        })?;
        let mut line = serde_json::to_string(&ask)?;
        line.push('\n');
        stream.write_all(line.as_bytes()).await?;
        let mut reader = BufReader::new(stream).take(MAX_LINE as u64);
        let mut answer = String::new();
        reader.read_line(&mut answer).await?;
        let answer: Answer = serde_json::from_str(&answer).map_err(|e| {
            anyhow::anyhow!(
                "the agent at {} gave no valid answer ({e})",
                socket.display()
            )
        })?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(SOCKET_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the lightsout agent at {} did not answer within {}s",
                socket.display(),
                SOCKET_TIMEOUT.as_secs()
            )
        })??;
    if let Some(e) = &answer.error {
        anyhow::bail!("the lightsout agent refused the snooze: {e}");
    }
    Ok(answer)
}

/// What `lightsout snooze` prints: the end in local time and UTC, the reason, and whether the
/// heartbeat already carries it.
pub fn describe(answer: &Answer, zone: &jiff::tz::TimeZone) -> String {
    let publish = if answer.published {
        "published in the heartbeat"
    } else {
        "saved by the agent; it publishes it as soon as it can write its heartbeat"
    };
    match &answer.snooze {
        None => format!("snooze off ({publish})"),
        Some(s) => {
            let local = s.until.to_zoned(zone.clone());
            let utc = s.until.strftime("%Y-%m-%d %H:%M UTC").to_string();
            let shown = local.strftime("%Y-%m-%d %H:%M %Z").to_string();
            // A zone that is UTC already says it once.
            let mut line = if local.offset() == jiff::tz::Offset::UTC {
                format!("snoozed until {utc}")
            } else {
                format!("snoozed until {shown} ({utc})")
            };
            if let Some(r) = &s.reason {
                line.push_str(&format!(", reason: {r}"));
            }
            line.push_str(&format!(" ({publish})"));
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(secs: u64, reason: Option<&str>) -> SnoozeRequest {
        SnoozeRequest::For {
            duration: Duration::from_secs(secs),
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn durations_and_reasons_are_bounded() {
        assert_eq!(
            check(&set(7200, Some("  training run  "))),
            Ok(Ask::Set {
                secs: 7200,
                reason: Some("training run".into())
            })
        );
        assert_eq!(
            check(&set(7200, Some("   "))),
            Ok(Ask::Set {
                secs: 7200,
                reason: None
            })
        );
        assert!(check(&set(59, None)).is_err());
        assert!(check(&set(7 * 86_400 + 1, None)).is_err());
        assert!(check(&set(3600, Some(&"x".repeat(201)))).is_err());
        assert!(check(&set(3600, Some(&"x".repeat(200)))).is_ok());
        assert!(check(&set(3600, Some("résumé"))).is_err());
        assert!(check(&set(3600, Some("a\nb"))).is_err());
        assert_eq!(check(&SnoozeRequest::Off), Ok(Ask::Off));
    }

    #[test]
    fn a_snooze_starts_when_the_agent_receives_it() {
        let now: Timestamp = "2026-12-07T10:00:00Z".parse().expect("ts");
        let s = snooze_from(
            &Ask::Set {
                secs: 7200,
                reason: Some("x".into()),
            },
            now,
            Some("azureuser".into()),
        )
        .expect("valid")
        .expect("some");
        assert_eq!(
            s.until,
            "2026-12-07T12:00:00Z".parse::<Timestamp>().expect("ts")
        );
        assert_eq!(s.by.as_deref(), Some("azureuser"));
        // The socket is open to everyone: the agent checks again.
        let forged = Ask::Set {
            secs: 10 * 86_400,
            reason: None,
        };
        assert!(snooze_from(&forged, now, None).is_err());
        assert_eq!(snooze_from(&Ask::Off, now, None), Ok(None));
    }

    #[test]
    fn the_answer_shows_local_time_and_utc() {
        let answer = Answer {
            snooze: Some(Snooze {
                at: "2026-12-07T10:00:00Z".parse().expect("ts"),
                until: "2026-12-07T12:00:00Z".parse().expect("ts"),
                reason: Some("x".into()),
                by: None,
            }),
            published: true,
            error: None,
        };
        let zone = jiff::tz::TimeZone::get("Europe/Paris").expect("tz");
        assert_eq!(
            describe(&answer, &zone),
            "snoozed until 2026-12-07 13:00 CET (2026-12-07 12:00 UTC), reason: x (published in the heartbeat)"
        );
        assert_eq!(
            describe(&answer, &jiff::tz::TimeZone::UTC),
            "snoozed until 2026-12-07 12:00 UTC, reason: x (published in the heartbeat)"
        );
    }
}
