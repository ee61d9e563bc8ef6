//! Long-running operations (LRO): reading ARM's 201/202 answers and their poll responses.
//!
//! ARM rules implemented here (pure functions; the client does the HTTP):
//! - 200/204 without an `Azure-AsyncOperation` header: done synchronously ([`Accepted::Completed`]).
//! - Otherwise poll `Azure-AsyncOperation` if present, else `Location` (201/202 only).
//! - `Azure-AsyncOperation` answers `{"status": ...}`: `Succeeded`, `Failed`, `Canceled` are
//!   terminal, anything else is in progress.
//! - `Location` answers 202 while running and 200/201/204 once done.
//!
//! Poll URLs are used verbatim but only if they are absolute http(s) URLs on the same host and
//! port as the configured ARM endpoint (never downgraded from https), have no user info, and are
//! at most [`MAX_URL_LEN`] bytes: our bearer token must never go anywhere else. A 2xx whose poll
//! URL fails these checks was still accepted by Azure: it becomes [`AzureError::Untracked`], not
//! a failure to send.
//!
//! Poll bodies that cannot be read (not JSON, no `status`) are "in progress, unreadable" rather
//! than errors: the caller keeps polling until its deadline and reports the last body it saw.

use std::time::Duration;

use reqwest::header::HeaderMap;
use url::Url;

use super::error::AzureError;
use super::wire::ArmError;
use super::wire::{AsyncOperationStatus, OperationStatusBody};
use crate::engine::text::truncate_chars;

/// Longest poll or next-link URL we accept, in bytes. Real ARM's signed `Azure-AsyncOperation`
/// URLs are about 3.2 KB since late 2024 (`recorded/real-ao-url-signed-2024-12.txt`: 3,231
/// bytes); 16 KiB leaves room for longer signatures and stays far below hyper's header limits.
pub const MAX_URL_LEN: usize = 16 * 1024;

/// Header naming the operation-status resource.
pub const AZURE_ASYNC_OPERATION: &str = "azure-asyncoperation";

/// Which header a pending operation is polled through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollVia {
    /// The `Azure-AsyncOperation` status resource (`{"status": ...}` bodies).
    AzureAsyncOperation,
    /// The `Location` header (202 while running, 200/201/204 when done).
    Location,
}

/// What ARM answered to a mutating request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Done synchronously (200/204), or accepted without any way to track it (a 201/202 with no
    /// poll header): the level-triggered loop verifies the outcome on its next observation.
    Completed {
        /// The HTTP status.
        status: u16,
        /// `x-ms-request-id`.
        request_id: Option<String>,
    },
    /// Still running; poll `poll_url`.
    Pending {
        /// Validated absolute URL to poll, used verbatim.
        poll_url: Url,
        /// Which protocol the URL speaks.
        via: PollVia,
        /// Delay requested before the first poll.
        retry_after: Option<Duration>,
        /// `x-ms-request-id` of the accepting response.
        request_id: Option<String>,
    },
}

impl Accepted {
    /// True when nothing remains to poll.
    pub fn is_completed(&self) -> bool {
        matches!(self, Accepted::Completed { .. })
    }

    /// `x-ms-request-id` of the accepting response.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Accepted::Completed { request_id, .. } | Accepted::Pending { request_id, .. } => {
                request_id.as_deref()
            }
        }
    }
}

/// The result of one poll.
#[derive(Debug, Clone, PartialEq)]
pub enum PollOutcome {
    /// Still running; poll again after `retry_after` (or the client's default).
    InProgress {
        /// Server-requested delay before the next poll.
        retry_after: Option<Duration>,
        /// The status string the server reported, when it sent one.
        status: Option<AsyncOperationStatus>,
        /// The start of a poll body that could not be read (not JSON, or no `status`), kept
        /// so that a caller that gives up can say what it last saw.
        unreadable: Option<String>,
    },
    /// Finished successfully.
    Succeeded,
    /// Finished in `Failed` or `Canceled`.
    Failed {
        /// `Failed` or `Canceled`.
        status: AsyncOperationStatus,
        /// Why, when Azure said.
        error: Option<Box<ArmError>>,
    },
}

impl PollOutcome {
    /// True for `Succeeded` and `Failed`.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, PollOutcome::InProgress { .. })
    }
}

/// Validates a poll URL or `nextLink` against the configured ARM endpoint.
pub fn check_url(operation: &'static str, raw: &str, endpoint: &Url) -> Result<Url, AzureError> {
    let refuse = |reason: &'static str| AzureError::InvalidUrl {
        operation,
        reason,
        url_prefix: truncate_chars(raw, 100),
    };
    if raw.len() > MAX_URL_LEN {
        return Err(refuse("longer than 16 KiB"));
    }
    let url = Url::parse(raw).map_err(|_| refuse("not an absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if endpoint.scheme() == "http" => {}
        "http" => return Err(refuse("plain http while the ARM endpoint uses https")),
        _ => return Err(refuse("scheme is not http or https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("contains user info"));
    }
    let same_host = match (url.host_str(), endpoint.host_str()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    if !same_host || url.port_or_known_default() != endpoint.port_or_known_default() {
        return Err(refuse("not on the configured ARM endpoint's host"));
    }
    Ok(url)
}

/// Reads a mutating request's success response (any 2xx) into an [`Accepted`].
pub fn accepted_from_response(
    operation: &'static str,
    status: u16,
    headers: &HeaderMap,
    retry_after: Option<Duration>,
    request_id: Option<String>,
    endpoint: &Url,
) -> Result<Accepted, AzureError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (raw, via) = if let Some(v) = header(AZURE_ASYNC_OPERATION) {
        (v, PollVia::AzureAsyncOperation)
    } else if matches!(status, 201 | 202)
        && let Some(v) = header("location")
    {
        (v, PollVia::Location)
    } else {
        return Ok(Accepted::Completed { status, request_id });
    };
    // Azure accepted the request whatever we think of its poll URL: say so, so that callers
    // record it as accepted-but-unfollowable rather than as a failed request to retry.
    let poll_url = check_url(operation, raw, endpoint).map_err(|e| match e {
        AzureError::InvalidUrl {
            operation,
            reason,
            url_prefix,
        } => AzureError::Untracked {
            operation,
            status,
            request_id: request_id.clone(),
            reason,
            url_prefix,
        },
        other => other,
    })?;
    Ok(Accepted::Pending {
        poll_url,
        via,
        retry_after,
        request_id,
    })
}

/// Reads an `Azure-AsyncOperation` poll response (already known to be 2xx).
pub fn outcome_from_async_operation(
    operation: &'static str,
    http_status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<PollOutcome, AzureError> {
    match serde_json::from_slice::<OperationStatusBody>(body) {
        Ok(b) => Ok(match b.status {
            AsyncOperationStatus::Succeeded => PollOutcome::Succeeded,
            s @ (AsyncOperationStatus::Failed | AsyncOperationStatus::Canceled) => {
                PollOutcome::Failed {
                    status: s,
                    error: b.error.map(Box::new),
                }
            }
            s => PollOutcome::InProgress {
                retry_after,
                status: Some(s),
                unreadable: None,
            },
        }),
        // Some services answer 202 with an empty body while still working.
        Err(_) if http_status == 202 && body.iter().all(u8::is_ascii_whitespace) => {
            Ok(PollOutcome::InProgress {
                retry_after,
                status: None,
                unreadable: None,
            })
        }
        // A proxy's HTML page or a body without `status` says nothing about the operation,
        // which may well still be running: keep following it rather than lose track (and
        // send the request again) on one odd answer.
        Err(_) => {
            tracing::debug!(
                operation,
                http_status,
                "operation status body unreadable; still following"
            );
            Ok(PollOutcome::InProgress {
                retry_after,
                status: None,
                unreadable: Some(crate::engine::text::snippet(&String::from_utf8_lossy(body))),
            })
        }
    }
}

/// Reads a `Location` poll response (already known to be 2xx).
pub fn outcome_from_location(http_status: u16, retry_after: Option<Duration>) -> PollOutcome {
    if http_status == 202 {
        PollOutcome::InProgress {
            retry_after,
            status: None,
            unreadable: None,
        }
    } else {
        PollOutcome::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn endpoint() -> Url {
        Url::parse("https://management.azure.com").unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn async_operation_preferred_over_location() {
        // delete.json 202 example: both headers present.
        let h = headers(&[
            (
                "Azure-AsyncOperation",
                "https://management.azure.com/subscriptions/...pathToOperationStatus...",
            ),
            (
                "Location",
                "https://management.azure.com/subscriptions/...pathToOperationResult...",
            ),
        ]);
        let a = accepted_from_response("delete_compute", 202, &h, None, None, &endpoint()).unwrap();
        match a {
            Accepted::Pending { poll_url, via, .. } => {
                assert_eq!(via, PollVia::AzureAsyncOperation);
                assert!(poll_url.as_str().contains("pathToOperationStatus"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn location_used_when_alone() {
        let h = headers(&[("Location", "https://management.azure.com/op/1?x=y")]);
        let a = accepted_from_response(
            "stop",
            202,
            &h,
            Some(Duration::from_secs(3)),
            Some("rid".into()),
            &endpoint(),
        )
        .unwrap();
        assert_eq!(
            a,
            Accepted::Pending {
                poll_url: Url::parse("https://management.azure.com/op/1?x=y").unwrap(),
                via: PollVia::Location,
                retry_after: Some(Duration::from_secs(3)),
                request_id: Some("rid".into()),
            }
        );
    }

    #[test]
    fn sync_completion() {
        let a = accepted_from_response("stop", 200, &HeaderMap::new(), None, None, &endpoint())
            .unwrap();
        assert!(a.is_completed());
        // Location on a 200 is not a poll target.
        let h = headers(&[("Location", "https://management.azure.com/op")]);
        assert!(
            accepted_from_response("stop", 200, &h, None, None, &endpoint())
                .unwrap()
                .is_completed()
        );
        // 202 without headers: untracked, reported as completed with its status.
        assert_eq!(
            accepted_from_response("stop", 202, &HeaderMap::new(), None, None, &endpoint())
                .unwrap(),
            Accepted::Completed {
                status: 202,
                request_id: None
            }
        );
    }

    #[test]
    fn async_operation_on_200_is_pending() {
        // patch.json: 200 with Azure-AsyncOperation and provisioningState Updating.
        let h = headers(&[(
            "Azure-AsyncOperation",
            "https://management.azure.com/subscriptions/...pathToOperationStatus...",
        )]);
        let a = accepted_from_response("create_compute", 200, &h, None, None, &endpoint()).unwrap();
        assert!(!a.is_completed());
    }

    #[test]
    fn relative_location_refused() {
        // start.json / restart.json use the placeholder "example_location".
        let h = headers(&[("Location", "example_location")]);
        let e = accepted_from_response("start", 202, &h, None, Some("rid".into()), &endpoint())
            .unwrap_err();
        // Accepted by Azure all the same: not a failed request.
        assert_eq!(e.kind(), "untracked");
        assert_eq!(e.request_id(), Some("rid"));
    }

    #[test]
    fn refused_poll_urls_are_untracked_not_failed() {
        let long = format!("https://management.azure.com/{}", "a".repeat(MAX_URL_LEN));
        for bad in [
            "https://evil.example.com/op",
            "http://management.azure.com/op",
            long.as_str(),
        ] {
            let h = headers(&[("Azure-AsyncOperation", bad)]);
            let e = accepted_from_response("stop", 202, &h, None, None, &endpoint()).unwrap_err();
            assert_eq!(e.kind(), "untracked", "{bad}");
            assert!(!e.is_retriable());
            assert!(e.to_string().len() < 400, "{e}");
        }
    }

    #[test]
    fn poll_url_safety() {
        let ep = endpoint();
        assert!(check_url("p", "https://management.azure.com/a?b=c", &ep).is_ok());
        assert!(check_url("p", "https://MANAGEMENT.azure.com/a", &ep).is_ok());
        assert!(check_url("p", "https://management.azure.com:443/a", &ep).is_ok());
        for bad in [
            "https://evil.example.com/a",
            "https://management.azure.com.evil.com/a",
            "https://management.azure.com:8443/a",
            "http://management.azure.com/a",
            "ftp://management.azure.com/a",
            "https://user:pw@management.azure.com/a",
            "/subscriptions/x",
            "",
        ] {
            let e = check_url("p", bad, &ep).unwrap_err();
            assert_eq!(e.kind(), "invalid_url", "{bad}");
        }
        // http endpoint (local fake) accepts http on the same host and port only.
        let local = Url::parse("http://127.0.0.1:8080").unwrap();
        assert!(check_url("p", "http://127.0.0.1:8080/op", &local).is_ok());
        assert!(check_url("p", "http://127.0.0.1:9090/op", &local).is_err());
    }

    #[test]
    fn huge_url_is_a_clear_error() {
        let raw = format!("https://management.azure.com/{}", "a".repeat(MAX_URL_LEN));
        let e = check_url("poll_operation", &raw, &endpoint()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("longer than 16 KiB"), "{msg}");
        assert!(msg.len() < 300, "{msg}");
        // Exactly at the limit is fine.
        let path = "a".repeat(MAX_URL_LEN - "https://management.azure.com/".len());
        let raw = format!("https://management.azure.com/{path}");
        assert_eq!(raw.len(), MAX_URL_LEN);
        assert!(check_url("poll_operation", &raw, &endpoint()).is_ok());
    }

    #[test]
    fn real_signed_async_operation_url_is_kept_verbatim() {
        // recorded/real-ao-url-signed-2024-12.txt: 3,231 bytes, real ARM, December 2024.
        let raw =
            include_str!("../../tests/fixtures/azure/recorded/real-ao-url-signed-2024-12.txt")
                .trim();
        assert_eq!(raw.len(), 3231);
        let h = headers(&[("Azure-AsyncOperation", raw)]);
        match accepted_from_response("stop", 202, &h, None, None, &endpoint()).unwrap() {
            Accepted::Pending {
                poll_url,
                via,
                retry_after,
                ..
            } => {
                assert_eq!(poll_url.as_str(), raw);
                assert_eq!(via, PollVia::AzureAsyncOperation);
                assert_eq!(retry_after, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn async_operation_bodies() {
        let r = Some(Duration::from_secs(1));
        assert_eq!(
            outcome_from_async_operation("p", 200, br#"{"status":"InProgress"}"#, r).unwrap(),
            PollOutcome::InProgress {
                retry_after: r,
                status: Some(AsyncOperationStatus::InProgress),
                unreadable: None,
            }
        );
        assert_eq!(
            outcome_from_async_operation("p", 200, br#"{"status":"succeeded"}"#, None).unwrap(),
            PollOutcome::Succeeded
        );
        match outcome_from_async_operation(
            "p",
            200,
            br#"{"status":"Failed","error":{"code":"VmStopFailed","message":"boom"}}"#,
            None,
        )
        .unwrap()
        {
            PollOutcome::Failed { status, error } => {
                assert_eq!(status, AsyncOperationStatus::Failed);
                assert_eq!(error.unwrap().code, "VmStopFailed");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outcome_from_async_operation("p", 200, br#"{"status":"Canceled"}"#, None).unwrap(),
            PollOutcome::Failed {
                status: AsyncOperationStatus::Canceled,
                ..
            }
        ));
        // Unknown non-terminal status means in progress, and keeps its spelling.
        match outcome_from_async_operation("p", 200, br#"{"status":"Deallocating"}"#, None).unwrap()
        {
            PollOutcome::InProgress { status, .. } => {
                assert_eq!(status.unwrap().as_str(), "Deallocating")
            }
            other => panic!("{other:?}"),
        }
        assert!(outcome_from_async_operation("p", 202, b"", None).is_ok());
    }

    #[test]
    fn unreadable_status_bodies_keep_the_operation_in_progress() {
        for body in [
            &b"<html>gateway</html>"[..],
            br#"{"percentComplete":50}"#,
            b"",
        ] {
            match outcome_from_async_operation("p", 200, body, None).unwrap() {
                PollOutcome::InProgress {
                    status: None,
                    unreadable: Some(seen),
                    ..
                } => assert_eq!(seen, String::from_utf8_lossy(body)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn location_statuses() {
        assert!(!outcome_from_location(202, None).is_terminal());
        for s in [200, 201, 204] {
            assert_eq!(outcome_from_location(s, None), PollOutcome::Succeeded);
        }
    }
}
