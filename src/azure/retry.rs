//! Retry policy: which failures are retried, and how long to wait between attempts.
//!
//! Everything here is pure: backoff math takes the random draw as a parameter, and `Retry-After`
//! parsing takes `now`. The client's loop (`client.rs`) applies the decisions and does every sleep
//! through `tokio::time::sleep`, so tests can run it with paused time.
//!
//! Rules (STYLE.md H9): retry 429, 408, 5xx except 501/505, and connection failures/timeouts;
//! never other 4xx. A 401 refreshes the token once and retries; a second 401 fails.

use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::HeaderMap;

/// Default number of attempts per request (the first one included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default first backoff.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Default cap on one computed backoff.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Default jitter fraction.
pub const DEFAULT_JITTER: f64 = 0.2;
/// Default cap on the sum of all waits for one request.
pub const DEFAULT_MAX_TOTAL_WAIT: Duration = Duration::from_secs(120);
/// Longest delay a server may ask for: `Retry-After` is a number from outside, and
/// `18446744073709551615` must read as "a long time", not overflow the sum of waits.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(3600);

/// An invalid retry policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retry policy: {0}")]
pub struct InvalidRetryPolicy(&'static str);

/// How often and how patiently one request is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    jitter: f64,
    max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            jitter: DEFAULT_JITTER,
            max_total_wait: DEFAULT_MAX_TOTAL_WAIT,
        }
    }
}

impl RetryPolicy {
    /// Builds a policy.
    ///
    /// - `max_attempts`: total attempts including the first, at least 1;
    /// - `initial_backoff` ≤ `max_backoff`; the backoff doubles per retry up to `max_backoff`;
    /// - `jitter` in `0.0..=1.0`: each backoff is reduced by up to this fraction at random
    ///   ("equal jitter" style); 0 makes backoff deterministic (tests);
    /// - `max_total_wait`: the sum of all waits for one request, server-requested ones included;
    ///   a wait that would exceed it ends the request with the last error instead.
    pub fn try_new(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        jitter: f64,
        max_total_wait: Duration,
    ) -> Result<Self, InvalidRetryPolicy> {
        if max_attempts == 0 {
            return Err(InvalidRetryPolicy("max_attempts must be at least 1"));
        }
        if initial_backoff > max_backoff {
            return Err(InvalidRetryPolicy(
                "initial_backoff must not exceed max_backoff",
            ));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(InvalidRetryPolicy("jitter must be within 0.0..=1.0"));
        }
        Ok(RetryPolicy {
            max_attempts,
            initial_backoff,
            max_backoff,
            jitter,
            max_total_wait,
        })
    }

    /// A policy that never retries (one attempt). A 401 still gets its one token refresh.
    pub fn no_retries() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Total attempts including the first.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Cap on the sum of waits for one request.
    pub fn max_total_wait(&self) -> Duration {
        self.max_total_wait
    }

    /// Computed backoff before retry number `retry` (0 = the first retry).
    ///
    /// `unit_random` is a draw from `[0, 1)`; the result is
    /// `min(initial * 2^retry, max) * (1 - jitter * unit_random)`.
    pub fn backoff(&self, retry: u32, unit_random: f64) -> Duration {
        let factor = 2u32.checked_pow(retry.min(31)).unwrap_or(u32::MAX);
        let base = self
            .initial_backoff
            .checked_mul(factor)
            .map_or(self.max_backoff, |d| d.min(self.max_backoff));
        let cut = (self.jitter * unit_random.clamp(0.0, 1.0)).clamp(0.0, 1.0);
        base.mul_f64(1.0 - cut)
    }

    /// The wait before retry number `retry`: the server's hint when it gave one (a `Retry-After`
    /// is honoured as is, not capped by `max_backoff`), else the computed backoff.
    pub fn delay(&self, retry: u32, server_hint: Option<Duration>, unit_random: f64) -> Duration {
        server_hint.unwrap_or_else(|| self.backoff(retry, unit_random))
    }
}

/// Whether an HTTP status is worth retrying: 408, 429, and 5xx except 501 and 505.
pub fn status_is_retriable(status: u16) -> bool {
    matches!(status, 408 | 429) || ((500..=599).contains(&status) && !matches!(status, 501 | 505))
}

/// What to do after a non-success response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait, then send again.
    Retry,
    /// Get a fresh token (bypassing caches), then send again at once.
    RefreshTokenAndRetry,
    /// Give up with this response's error.
    Fail,
}

/// Classifies a non-success status. `token_refreshed` is whether this request already used its
/// one token refresh. Attempt counting is the caller's job.
pub fn classify_status(status: u16, token_refreshed: bool) -> RetryDecision {
    if status == 401 {
        if token_refreshed {
            RetryDecision::Fail
        } else {
            RetryDecision::RefreshTokenAndRetry
        }
    } else if status_is_retriable(status) {
        RetryDecision::Retry
    } else {
        RetryDecision::Fail
    }
}

/// The delay a response asks for: `x-ms-retry-after-ms` or `retry-after-ms` (milliseconds) if
/// present, else `Retry-After` as delta-seconds or an HTTP-date (relative to `now`; a past date
/// gives zero). Unparseable values are ignored; every value is capped at [`MAX_SERVER_DELAY`].
pub fn parse_retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms).min(MAX_SERVER_DELAY));
        }
    }
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after_value(v, now))
}

/// Parses one `Retry-After` value: delta-seconds (`"120"`) or an HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), relative to `now`, capped at [`MAX_SERVER_DELAY`].
pub fn parse_retry_after_value(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        // Longer than u64 is still "a long time", not garbage.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_SERVER_DELAY));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta = at.duration_since(now);
    Some(
        Duration::try_from(delta)
            .unwrap_or(Duration::ZERO)
            .min(MAX_SERVER_DELAY),
    )
}

/// The wall-clock `now` to resolve an HTTP-date `Retry-After` against: the response's own
/// `Date` header when present (so our clock skew does not matter), else `fallback`.
pub fn response_now(headers: &HeaderMap, fallback: Timestamp) -> Timestamp {
    headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| jiff::fmt::rfc2822::parse(v.trim()).ok())
        .map_or(fallback, |z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy(jitter: f64) -> RetryPolicy {
        RetryPolicy::try_new(
            5,
            Duration::from_millis(100),
            Duration::from_secs(1),
            jitter,
            Duration::from_secs(10),
        )
        .unwrap()
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = policy(0.0);
        let got: Vec<_> = (0..6).map(|r| p.backoff(r, 0.7).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX, 0.0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_reduces_within_fraction() {
        let p = policy(0.5);
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(100));
        assert_eq!(p.backoff(0, 1.0), Duration::from_millis(50));
        assert_eq!(p.backoff(1, 0.5), Duration::from_millis(150));
    }

    #[test]
    fn server_hint_wins() {
        let p = policy(0.0);
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(7)), 0.0),
            Duration::from_secs(7)
        );
        assert_eq!(p.delay(2, None, 0.0), Duration::from_millis(400));
    }

    #[test]
    fn invalid_policies_rejected() {
        let d = Duration::from_secs(1);
        assert!(RetryPolicy::try_new(0, d, d, 0.0, d).is_err());
        assert!(RetryPolicy::try_new(1, d * 2, d, 0.0, d).is_err());
        assert!(RetryPolicy::try_new(1, d, d, 1.5, d).is_err());
        assert!(RetryPolicy::try_new(1, d, d, 1.0, d).is_ok());
    }

    #[test]
    fn status_classification() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(classify_status(s, false), RetryDecision::Retry, "{s}");
        }
        for s in [400, 403, 404, 405, 409, 412, 422, 501, 505] {
            assert_eq!(classify_status(s, false), RetryDecision::Fail, "{s}");
        }
        assert_eq!(
            classify_status(401, false),
            RetryDecision::RefreshTokenAndRetry
        );
        assert_eq!(classify_status(401, true), RetryDecision::Fail);
    }

    fn now() -> Timestamp {
        "2015-10-21T07:27:00Z".parse().unwrap()
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("17"));
        assert_eq!(parse_retry_after(&h, now()), Some(Duration::from_secs(17)));
    }

    #[test]
    fn retry_after_http_date() {
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h, now()), Some(Duration::from_secs(60)));
        // A date in the past means "now".
        let later: Timestamp = "2015-10-21T08:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after(&h, later), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_ms_headers_take_precedence() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("17"));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(
            parse_retry_after(&h, now()),
            Some(Duration::from_millis(250))
        );
        h.insert("x-ms-retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(
            parse_retry_after(&h, now()),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn retry_after_is_capped() {
        for v in ["18446744073709551615", "99999999999999999999999", "86400"] {
            assert_eq!(
                parse_retry_after_value(v, now()),
                Some(MAX_SERVER_DELAY),
                "{v}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after-ms",
            HeaderValue::from_static("18446744073709551615"),
        );
        assert_eq!(parse_retry_after(&h, now()), Some(MAX_SERVER_DELAY));
        let far = "21 Oct 2099 07:28:00 GMT";
        assert_eq!(parse_retry_after_value(far, now()), Some(MAX_SERVER_DELAY));
    }

    #[test]
    fn retry_after_garbage_ignored() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now()), None);
        assert_eq!(parse_retry_after(&HeaderMap::new(), now()), None);
        assert_eq!(parse_retry_after_value("-5", now()), None);
    }

    #[test]
    fn response_date_used_as_now() {
        let mut h = HeaderMap::new();
        h.insert(
            "date",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:27:30 GMT"),
        );
        let fallback: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            response_now(&h, fallback),
            "2015-10-21T07:27:30Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(response_now(&HeaderMap::new(), fallback), fallback);
    }
}
