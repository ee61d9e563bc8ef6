//! Errors of the Azure boundary: [`AzureError`]. The ARM error body it carries
//! ([`ArmError`], parsed tolerantly) is a wire shape and lives in `wire`; the helpers that
//! bound and escape text for errors and logs live in `text`.
//!
//! [`AzureError`] is the one error type of `crate::azure`. Its `Display` is lowercase, names the
//! operation and never repeats the message of its `source()`; `kind()` gives a bounded label for
//! metrics; `is_retriable()` and `retry_after()` drive the retry loop and the caller's back-off.

use std::fmt;
use std::time::Duration;

use super::wire::{ArmError, AsyncOperationStatus};

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Could not connect (DNS, refused, TLS handshake).
    Connect,
    /// Connect or request timeout.
    Timeout,
    /// The connection broke while sending or reading (reset, truncated body).
    Io,
    /// The request could not be built (a bug or a bad URL); not retried.
    Build,
    /// The server answered with a redirect, which we never follow: a bearer token or a
    /// client secret must not travel to a host we did not choose. Not retried.
    Redirect,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connection failed",
            Self::Timeout => "timed out",
            Self::Io => "connection broken",
            Self::Build => "request could not be built",
            Self::Redirect => "redirect refused (credentials never follow redirects)",
        })
    }
}

impl TransportKind {
    /// Classifies a reqwest error.
    pub fn of(e: &reqwest::Error) -> TransportKind {
        if e.is_builder() {
            TransportKind::Build
        } else if e.is_redirect() {
            TransportKind::Redirect
        } else if e.is_timeout() {
            TransportKind::Timeout
        } else if e.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Io
        }
    }
}

/// The error type of every ARM call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AzureError {
    /// ARM answered with a non-success status.
    #[error("{operation}: HTTP {status} from Azure Resource Manager: {error}")]
    Arm {
        /// Which client operation.
        operation: &'static str,
        /// HTTP status.
        status: u16,
        /// `x-ms-request-id` of the failed response, for support tickets.
        request_id: Option<String>,
        /// The parsed error body (boxed to keep `Result`s small).
        error: Box<ArmError>,
        /// Server-requested delay (`Retry-After` and friends), if any.
        retry_after: Option<Duration>,
    },
    /// The request did not get an HTTP response.
    #[error("{operation}: {kind} talking to Azure Resource Manager")]
    Transport {
        /// Which client operation.
        operation: &'static str,
        /// Classification.
        kind: TransportKind,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// No access token could be acquired. The source carries the credential's message (never a
    /// secret).
    #[error("{operation}: could not acquire an access token")]
    Auth {
        /// Which client operation.
        operation: &'static str,
        /// The credential's error.
        #[source]
        source: azure_core::Error,
    },
    /// A success response whose body is not what the API promises.
    #[error("{operation}: could not decode {what}; body starts with {snippet:?}")]
    Decode {
        /// Which client operation.
        operation: &'static str,
        /// What was being decoded, e.g. "compute list page".
        what: &'static str,
        /// At most [`BODY_SNIPPET_CHARS`](crate::engine::text::BODY_SNIPPET_CHARS) characters of the body.
        snippet: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A long-running operation ended in `Failed` or `Canceled`.
    #[error("long-running operation ended {status}{}", fmt_opt_error(.error))]
    OperationFailed {
        /// `Failed` or `Canceled` (or the status a Location poll implied).
        status: AsyncOperationStatus,
        /// Why, when Azure said (boxed to keep `Result`s small).
        error: Option<Box<ArmError>>,
    },
    /// A URL we refuse to use (poll or next link on another host, not absolute, too long...).
    #[error("{operation}: refusing URL {url_prefix:?}: {reason}")]
    InvalidUrl {
        /// Which client operation.
        operation: &'static str,
        /// Why.
        reason: &'static str,
        /// At most 100 characters of the URL.
        url_prefix: String,
    },
    /// A name outside Azure's naming rules: refused before any request is built from it.
    #[error("{operation}: refusing to send a request")]
    InvalidName {
        /// Which client operation.
        operation: &'static str,
        /// The rule it breaks.
        #[source]
        source: crate::engine::names::NameError,
    },
    /// ARM broke its own protocol (a nextLink loop, too many pages).
    #[error("{operation}: {reason}")]
    Protocol {
        /// Which client operation.
        operation: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A deadline passed (waiting for a long-running operation, or the retry budget).
    #[error("{operation}: gave up after {after:?}{}", fmt_last_seen(.last_seen))]
    Timeout {
        /// Which client operation.
        operation: &'static str,
        /// How long we waited.
        after: Duration,
        /// What the last poll said (a status, or the start of a body we could not read).
        last_seen: Option<String>,
    },
    /// Azure accepted a mutating request (2xx) but its poll URL is one we refuse to follow
    /// (another host, plain http, user info, longer than 16 KiB): the operation runs on, and
    /// only the resource's state can tell how it ended. Never a reason to send it again.
    #[error(
        "{operation}: accepted (HTTP {status}) but not followed: refusing poll URL {url_prefix:?}: {reason}"
    )]
    Untracked {
        /// Which client operation.
        operation: &'static str,
        /// HTTP status of the accepting response.
        status: u16,
        /// `x-ms-request-id` of the accepting response.
        request_id: Option<String>,
        /// Why the poll URL was refused.
        reason: &'static str,
        /// At most 100 characters of the URL.
        url_prefix: String,
    },
}

fn fmt_last_seen(last: &Option<String>) -> String {
    match last {
        Some(l) => format!(" (last seen: {l})"),
        None => String::new(),
    }
}

fn fmt_opt_error(e: &Option<Box<ArmError>>) -> String {
    match e {
        Some(e) => format!(": {e}"),
        None => String::new(),
    }
}

impl AzureError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Arm { status, .. } => match *status {
                400 => "bad_request",
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                408 => "request_timeout",
                409 => "conflict",
                429 => "throttled",
                402 | 405..=407 | 410..=428 | 430..=499 => "client_error",
                500..=599 => "server_error",
                _ => "unexpected_status",
            },
            Self::Transport { .. } => "transport",
            Self::Auth { .. } => "auth",
            Self::Decode { .. } => "decode",
            Self::OperationFailed { .. } => "operation_failed",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::InvalidName { .. } => "invalid_name",
            Self::Protocol { .. } => "protocol",
            Self::Timeout { .. } => "timeout",
            Self::Untracked { .. } => "untracked",
        }
    }

    /// Whether trying the same request again later may succeed.
    ///
    /// True for 408, 429, 5xx except 501/505, and transport failures other than request-build
    /// errors. Never for other 4xx.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Arm { status, .. } => super::retry::status_is_retriable(*status),
            Self::Transport { kind, .. } => {
                !matches!(kind, TransportKind::Build | TransportKind::Redirect)
            }
            Self::Timeout { .. } => true,
            Self::Auth { .. }
            | Self::Decode { .. }
            | Self::OperationFailed { .. }
            | Self::InvalidUrl { .. }
            | Self::InvalidName { .. }
            | Self::Untracked { .. }
            | Self::Protocol { .. } => false,
        }
    }

    /// The delay the server asked for, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Arm { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// HTTP status of an ARM error response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Arm { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The ARM error code (`AuthorizationFailed`, `ResourceNotFound`, ...), if there is one.
    pub fn arm_code(&self) -> Option<&str> {
        match self {
            Self::Arm { error, .. } => Some(error.code.as_str()).filter(|c| !c.is_empty()),
            Self::OperationFailed { error: Some(e), .. } => {
                Some(e.code.as_str()).filter(|c| !c.is_empty())
            }
            _ => None,
        }
    }

    /// The parsed ARM error, for ARM responses and failed operations.
    pub fn arm_error(&self) -> Option<&ArmError> {
        match self {
            Self::Arm { error, .. } => Some(error),
            Self::OperationFailed { error, .. } => error.as_deref(),
            _ => None,
        }
    }

    /// `x-ms-request-id` of the failing response.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Arm { request_id, .. } | Self::Untracked { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }

    /// True when Azure refused because the instance was in the wrong state for the action
    /// (see [`ArmError::is_wrong_state`]), whether it said so at once (a 4xx) or at the end of
    /// an accepted operation (`Failed` with that error).
    pub fn is_wrong_state(&self) -> bool {
        self.arm_error().is_some_and(ArmError::is_wrong_state)
    }

    /// For a 403 `AuthorizationFailed`: the RBAC action our identity lacks, e.g.
    /// `Microsoft.MachineLearningServices/workspaces/computes/stop/action`.
    pub fn missing_action(&self) -> Option<String> {
        match self {
            Self::Arm {
                status: 403, error, ..
            } => error.missing_action(),
            _ => None,
        }
    }

    /// True for 404 (the compute or workspace does not exist).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::text::{
        ARM_TEXT_CHARS, BODY_SNIPPET_CHARS, display_text, snippet, truncate_chars,
    };

    #[test]
    fn arm_envelope_parses() {
        let body = br#"{"error":{"code":"ResourceNotFound","message":"The Resource 'x' was not found.","target":"computes","details":[{"code":"Inner","message":"m"}]}}"#;
        let e = ArmError::from_body(404, body);
        assert_eq!(e.code, "ResourceNotFound");
        assert_eq!(e.target.as_deref(), Some("computes"));
        assert_eq!(e.details.len(), 1);
        assert_eq!(e.details[0].code, "Inner");
    }

    #[test]
    fn top_level_code_parses() {
        let e = ArmError::from_body(400, br#"{"code":"BadRequest","message":"nope"}"#);
        assert_eq!(e.code, "BadRequest");
        assert_eq!(e.message, "nope");
    }

    #[test]
    fn html_body_becomes_message_snippet() {
        let html = format!("<html><body>{}</body></html>", "x".repeat(1000));
        let e = ArmError::from_body(502, html.as_bytes());
        assert_eq!(e.code, "");
        assert!(e.message.starts_with("<html>"));
        assert!(e.message.chars().count() <= BODY_SNIPPET_CHARS + 1);
    }

    #[test]
    fn arm_text_is_escaped_and_cut_with_the_true_count() {
        let message = format!("a\u{1b}[2J\nb{}", "x".repeat(5_000_000));
        let body = serde_json::json!({"error": {"code": "C\r", "message": message}});
        let e = ArmError::from_body(400, body.to_string().as_bytes());
        assert!(e.message.chars().count() < ARM_TEXT_CHARS + 40);
        let shown = e.to_string();
        assert!(
            shown.starts_with("C\\r: a\\u{1b}[2J\\nb"),
            "{}",
            &shown[..40]
        );
        assert!(
            shown.ends_with(&format!(
                "… [{} more characters]",
                5_000_007 - ARM_TEXT_CHARS
            )),
            "{}",
            &shown[shown.len() - 60..]
        );
        assert!(!shown.contains(['\u{1b}', '\n', '\r']));
        assert_eq!(display_text("ok ünïcode", 100), "ok ünïcode");
        assert_eq!(display_text("\u{202e}evil", 100), "\\u{202e}evil");
    }

    #[test]
    fn empty_body_names_status() {
        let e = ArmError::from_body(503, b"");
        assert_eq!(e.message, "HTTP 503");
        let e = ArmError::from_body(503, b"  \n");
        assert_eq!(e.message, "HTTP 503");
    }

    #[test]
    fn null_fields_tolerated() {
        let e = ArmError::from_body(
            500,
            br#"{"error":{"code":null,"message":"m","details":null}}"#,
        );
        assert_eq!(e.code, "");
        assert_eq!(e.message, "m");
    }

    #[test]
    fn missing_action_extracted() {
        let body = br#"{"error":{"code":"AuthorizationFailed","message":"The client 'abc' with object id 'abc' does not have authorization to perform action 'Microsoft.MachineLearningServices/workspaces/computes/stop/action' over scope '/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/computes/c' or the scope is invalid. If access was recently granted, please refresh your credentials."}}"#;
        let err = AzureError::Arm {
            operation: "stop",
            status: 403,
            request_id: Some("rid".into()),
            error: Box::new(ArmError::from_body(403, body)),
            retry_after: None,
        };
        assert_eq!(
            err.missing_action().as_deref(),
            Some("Microsoft.MachineLearningServices/workspaces/computes/stop/action")
        );
        assert_eq!(err.kind(), "forbidden");
        assert_eq!(err.arm_code(), Some("AuthorizationFailed"));
        assert_eq!(err.request_id(), Some("rid"));
        assert!(!err.is_retriable());
    }

    #[test]
    fn missing_action_absent_for_other_messages() {
        let e = ArmError::from_body(403, br#"{"error":{"code":"Forbidden","message":"no"}}"#);
        assert_eq!(e.missing_action(), None);
    }

    #[test]
    fn classification() {
        let arm = |status| AzureError::Arm {
            operation: "get_compute",
            status,
            request_id: None,
            error: Box::default(),
            retry_after: Some(Duration::from_secs(3)),
        };
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(arm(s).is_retriable(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 501, 505] {
            assert!(!arm(s).is_retriable(), "{s}");
        }
        assert_eq!(arm(429).kind(), "throttled");
        assert_eq!(arm(429).retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(arm(404).status(), Some(404));
        assert!(arm(404).is_not_found());
    }

    #[test]
    fn display_is_lowercase_and_names_operation() {
        let e = AzureError::Arm {
            operation: "get_compute",
            status: 404,
            request_id: None,
            error: Box::new(ArmError {
                code: "ResourceNotFound".into(),
                message: "gone".into(),
                ..ArmError::default()
            }),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "get_compute: HTTP 404 from Azure Resource Manager: ResourceNotFound: gone"
        );
    }

    #[test]
    fn decode_display_does_not_repeat_source() {
        let source = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let source_msg = source.to_string();
        let e = AzureError::Decode {
            operation: "list_computes",
            what: "compute list page",
            snippet: snippet("{"),
            source,
        };
        assert!(!e.to_string().contains(&source_msg));
        assert!(e.to_string().contains("list_computes"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(300);
        let t = snippet(&s);
        assert_eq!(t.chars().count(), BODY_SNIPPET_CHARS + 1);
        assert_eq!(truncate_chars("abc", 5), "abc");
    }

    #[test]
    fn wrong_state_errors_are_recognised() {
        // The code and message of microsoft/vscode-tools-for-ai#2096 (see the recordings'
        // README), as a failed operation and as a 400.
        let start = ArmError {
            code: "StartComputeInstanceOnlyAllowedInStoppedState".into(),
            message: "Start Azure ML Compute Instance is only allowed when the instance ci-1 is in 'stopped' state".into(),
            ..ArmError::default()
        };
        assert!(start.is_wrong_state());
        let failed = AzureError::OperationFailed {
            status: AsyncOperationStatus::Failed,
            error: Some(Box::new(start.clone())),
        };
        assert!(failed.is_wrong_state());
        // Any `*OnlyAllowedIn*State` code, whatever the case, and the message alone.
        for code in [
            "StopComputeInstanceOnlyAllowedInRunningState",
            "restartcomputeinstanceonlyallowedinrunningstate",
        ] {
            let e = ArmError {
                code: code.into(),
                ..ArmError::default()
            };
            assert!(e.is_wrong_state(), "{code}");
        }
        let message_only = ArmError {
            message: start.message.clone(),
            ..ArmError::default()
        };
        assert!(message_only.is_wrong_state());
        // #2605: a stop refused because the disk is full.
        let disk = ArmError::from_body(
            400,
            br#"{"error":{"code":"BadRequest","message":"StopCompute is not allowed when ComputeInstance disk is full."}}"#,
        );
        assert!(disk.is_wrong_state());
        // Nested in details.
        let nested = ArmError {
            code: "OperationFailed".into(),
            details: vec![start],
            ..ArmError::default()
        };
        assert!(nested.is_wrong_state());
        // Failures that are not about the state: #1921's timeout, quota, internal errors.
        for (code, message) in [
            (
                "",
                "Compute instance ci-1 was timed out for operation Start",
            ),
            ("QuotaExceeded", "not enough cores"),
            ("InternalServerError", "An unexpected error occurred"),
            ("ComputeStartFailed", "quota"),
        ] {
            let e = ArmError {
                code: code.into(),
                message: message.into(),
                ..ArmError::default()
            };
            assert!(!e.is_wrong_state(), "{code} {message}");
        }
        let no_error = AzureError::OperationFailed {
            status: AsyncOperationStatus::Canceled,
            error: None,
        };
        assert!(!no_error.is_wrong_state());
    }

    #[test]
    fn subscription_throttling_is_retried_after_its_delay() {
        // ARM's throttling answer (velero-io/velero#9171, quoted in the recordings' README).
        let body = br#"{"error":{"code":"SubscriptionRequestsThrottled","message":"Number of 'read' requests for subscription 'sub' actor 'actor' exceeded. Please try again after '1' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information."}}"#;
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "retry-after",
            reqwest::header::HeaderValue::from_static("1"),
        );
        let now: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let err = AzureError::Arm {
            operation: "list_computes",
            status: 429,
            request_id: None,
            error: Box::new(ArmError::from_body(429, body)),
            retry_after: super::super::retry::parse_retry_after(&h, now),
        };
        assert_eq!(err.arm_code(), Some("SubscriptionRequestsThrottled"));
        assert_eq!(err.kind(), "throttled");
        assert!(err.is_retriable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(
            super::super::retry::classify_status(429, false),
            super::super::retry::RetryDecision::Retry
        );
        assert!(!err.is_wrong_state());
    }

    #[test]
    fn timeout_says_what_it_last_saw() {
        let e = AzureError::Timeout {
            operation: "wait_operation",
            after: Duration::from_secs(60),
            last_seen: Some("status InProgress".into()),
        };
        assert_eq!(
            e.to_string(),
            "wait_operation: gave up after 60s (last seen: status InProgress)"
        );
    }
}
