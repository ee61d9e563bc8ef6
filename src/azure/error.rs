//! Errors of the Azure boundary: ARM error bodies and [`AzureError`].
//!
//! ARM error bodies are parsed tolerantly ([`ArmError::from_body`]): the standard
//! `{"error": {...}}` envelope, a bare `{"code", "message"}` object, and anything else (HTML from
//! a proxy, an empty body) become an `ArmError` rather than a second error.
//!
//! [`AzureError`] is the one error type of `crate::azure`. Its `Display` is lowercase, names the
//! operation and never repeats the message of its `source()`; `kind()` gives a bounded label for
//! metrics; `is_retriable()` and `retry_after()` drive the retry loop and the caller's back-off.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wire::AsyncOperationStatus;

/// Maximum number of body characters kept in errors.
pub const BODY_SNIPPET_CHARS: usize = 200;
/// Most characters of an ARM-provided text (error code, message, target) kept or shown: a
/// 5 MB message must not become a 5 MB log line.
pub const ARM_TEXT_CHARS: usize = 2048;

/// An ARM error (`ErrorDetail` in the ARM common types).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmError {
    /// Machine-readable code, e.g. `AuthorizationFailed`. Empty when the body had none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub code: String,
    /// Human-readable message. For non-JSON bodies: the first characters of the body.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub message: String,
    /// The field or resource the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Nested errors.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_vec"
    )]
    pub details: Vec<ArmError>,
    /// Additional info, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<Vec<Value>>,
}

impl ArmError {
    /// Parses an error body tolerantly.
    ///
    /// Accepts `{"error": {...}}`, a top-level `{"code": ..., "message": ...}`, and falls back to
    /// an `ArmError` with an empty code whose message is the first [`BODY_SNIPPET_CHARS`]
    /// characters of the (trimmed) body, or `HTTP <status>` for an empty body.
    pub fn from_body(status: u16, body: &[u8]) -> ArmError {
        #[derive(Deserialize)]
        struct Envelope {
            error: Option<ArmError>,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
            if let Some(e) = env.error {
                return e.bounded(0);
            }
            if (env.code.is_some() || env.message.is_some())
                && let Ok(e) = serde_json::from_slice::<ArmError>(body)
            {
                return e.bounded(0);
            }
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            format!("HTTP {status}")
        } else {
            snippet(text)
        };
        ArmError {
            message,
            ..ArmError::default()
        }
    }

    /// Cuts every text to [`ARM_TEXT_CHARS`] and nesting to a few levels: what ARM sends is
    /// kept in memory, logged and shown, so its size is ours to bound.
    fn bounded(mut self, depth: usize) -> ArmError {
        const MAX_DEPTH: usize = 4;
        const MAX_DETAILS: usize = 16;
        self.code = cut_counted(&self.code, ARM_TEXT_CHARS);
        self.message = cut_counted(&self.message, ARM_TEXT_CHARS);
        self.target = self.target.map(|t| cut_counted(&t, ARM_TEXT_CHARS));
        if let Some(info) = &mut self.additional_info {
            info.truncate(MAX_DETAILS);
        }
        if depth >= MAX_DEPTH {
            self.details.clear();
        }
        self.details.truncate(MAX_DETAILS);
        self.details = std::mem::take(&mut self.details)
            .into_iter()
            .map(|d| d.bounded(depth + 1))
            .collect();
        self
    }

    /// For `AuthorizationFailed`: the RBAC action the caller lacks, parsed from
    /// `"... does not have authorization to perform action 'X' over scope ..."`.
    /// Also looks in `details`.
    pub fn missing_action(&self) -> Option<String> {
        const MARKER: &str = "perform action '";
        if let Some(start) = self.message.find(MARKER) {
            let rest = &self.message[start + MARKER.len()..];
            if let Some(end) = rest.find('\'') {
                let action = &rest[..end];
                if !action.is_empty() {
                    // Shown to the user as is: escaped like the rest of ARM's text.
                    return Some(display_text(action, 256));
                }
            }
        }
        self.details.iter().find_map(ArmError::missing_action)
    }
}

impl ArmError {
    /// Does this error say the instance was in the wrong state for the action? Such an error
    /// is a refusal (nothing was done, and sending it again will not help until the state
    /// changes), not a failure. Looks at nested `details` too.
    ///
    /// Known from public reports (no recording holds one; see
    /// `tests/fixtures/azure/recorded/README.md`): code
    /// `StartComputeInstanceOnlyAllowedInStoppedState`, message "Start Azure ML Compute
    /// Instance is only allowed when the instance {name} is in 'stopped' state", reported as a
    /// failed long-running operation (microsoft/vscode-tools-for-ai#2096, #1100, #2439); and
    /// "StopCompute is not allowed when ComputeInstance disk is full." (#2605). Codes for stop
    /// and restart are not documented, so any `*OnlyAllowedIn*State` code counts.
    pub fn is_wrong_state(&self) -> bool {
        let code = self.code.to_ascii_lowercase();
        let code_says = code.contains("onlyallowedin") && code.ends_with("state");
        let message = self.message.to_ascii_lowercase();
        let message_says = (message.contains("is only allowed when") && message.contains("state"))
            || message.contains("is not allowed when computeinstance");
        code_says || message_says || self.details.iter().any(ArmError::is_wrong_state)
    }
}

impl fmt::Display for ArmError {
    // ARM's text reaches terminals and line-based logs: escape it, never print it raw.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Room for the marker `from_body` may have added.
        const SHOWN: usize = ARM_TEXT_CHARS + 40;
        let code = display_text(&self.code, SHOWN);
        let message = display_text(&self.message, SHOWN);
        match (code.is_empty(), message.is_empty()) {
            (false, false) => write!(f, "{code}: {message}"),
            (false, true) => f.write_str(&code),
            (true, false) => f.write_str(&message),
            (true, true) => f.write_str("no error details"),
        }
    }
}

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
        /// At most [`BODY_SNIPPET_CHARS`] characters of the body.
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
        source: super::names::NameError,
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

/// At most [`BODY_SNIPPET_CHARS`] characters of `text`, cut on a char boundary, with `…` when
/// cut.
pub fn snippet(text: &str) -> String {
    truncate_chars(text, BODY_SNIPPET_CHARS)
}

/// At most `max` characters of `text`, then `… [N more characters]` when cut.
fn cut_counted(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => {
            let rest = text[idx..].chars().count();
            format!("{}… [{rest} more characters]", &text[..idx])
        }
        None => text.to_owned(),
    }
}

/// `text` made safe to print on a terminal or in a one-line log record: control characters
/// (ESC, CR, LF, DEL, C1 and the like) are written as escapes (`\u{1b}`, `\n`), and the result
/// is cut to `max` characters with a marker saying how much was left out.
pub fn display_text(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (shown, (i, ch)) in text.char_indices().enumerate() {
        if shown >= max {
            out.push_str(&cut_counted(&text[i..], 0));
            break;
        }
        if ch.is_control()
            || matches!(ch, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// At most `max` characters of `text`, with `…` appended when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_owned(),
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn null_as_vec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ArmError>, D::Error> {
    Ok(Option::<Vec<ArmError>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let source = serde_json::from_str::<Value>("{").unwrap_err();
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
