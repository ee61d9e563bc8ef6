//! Sending start/stop/restart requests: at most `max_concurrent_actions` at once (the client
//! keeps each subscription within its request budget), with Azure's refusals told apart
//! from failures.
//!
//! I/O through [`ArmClient`]. The decision of *what* to send is made elsewhere; this module
//! only sends and classifies. Following the long-running operation is the caller's choice
//! (in the background for the daemon, pass by pass in virtual time).

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::azure::{Accepted, ArmClient, AzureError, NativeSetting};
use crate::engine::model::{Action, WorkspaceRef};
use crate::engine::report::ActionOutcome;

/// What became of one request.
#[derive(Debug)]
pub enum SendOutcome {
    /// Azure accepted it; the operation may still be running.
    Accepted(Accepted),
    /// Azure refused it for a reason that retrying will not fix (conflict, wrong state,
    /// permission, gone): recorded, not retried blindly.
    Refused(AzureError),
    /// It could not be delivered or Azure failed (after the client's own retries): worth
    /// another try later, with backoff.
    Failed(AzureError),
    /// Azure accepted it, but its operation cannot be followed (the poll URL was refused):
    /// like an accepted request whose end only the observed state will tell. Never sent
    /// again blindly.
    Unknown(AzureError),
}

impl SendOutcome {
    /// The `outcome` label of `lightsout_actions_total`.
    pub fn label(&self) -> ActionOutcome {
        match self {
            SendOutcome::Accepted(_) => ActionOutcome::Accepted,
            SendOutcome::Refused(_) => ActionOutcome::Refused,
            SendOutcome::Failed(_) => ActionOutcome::Failed,
            SendOutcome::Unknown(_) => ActionOutcome::Unknown,
        }
    }
}

/// Classify an error of a start/stop/restart request.
pub fn classify(error: AzureError) -> SendOutcome {
    if matches!(error, AzureError::Untracked { .. }) {
        return SendOutcome::Unknown(error);
    }
    if error.is_wrong_state() {
        return SendOutcome::Refused(error);
    }
    match error.status() {
        Some(400 | 403 | 404 | 409) => SendOutcome::Refused(error),
        _ => SendOutcome::Failed(error),
    }
}

/// How a followed operation ended, short of success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationEnd {
    /// Azure refused it because the instance was in the wrong state (nothing was done).
    Refused,
    /// It failed or was canceled for another reason.
    Failed,
}

/// Classify a long-running operation that ended `Failed` or `Canceled`: a wrong-state error
/// (`StartComputeInstanceOnlyAllowedInStoppedState`, any `*OnlyAllowedIn*State`; see
/// [`crate::azure::ArmError::is_wrong_state`]) is a refusal, anything else a failure.
pub fn classify_operation_end(error: Option<&crate::azure::ArmError>) -> OperationEnd {
    if error.is_some_and(crate::azure::ArmError::is_wrong_state) {
        OperationEnd::Refused
    } else {
        OperationEnd::Failed
    }
}

/// Sends requests with the concurrency limit (the client keeps the request budgets).
#[derive(Clone)]
pub struct Actuator {
    client: ArmClient,
    slots: Arc<Semaphore>,
}

impl Actuator {
    /// At most `max_concurrent` requests in flight.
    pub fn new(client: ArmClient, max_concurrent: usize) -> Actuator {
        Actuator {
            client,
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// The client, for following operations.
    pub fn client(&self) -> &ArmClient {
        &self.client
    }

    /// Send one request.
    pub async fn send(&self, ws: &WorkspaceRef, instance: &str, action: Action) -> SendOutcome {
        let Ok(_slot) = self.slots.acquire().await else {
            return SendOutcome::Failed(AzureError::Protocol {
                operation: "actuate",
                reason: "actuator closed".to_owned(),
            });
        };
        let result = match action {
            Action::Start => self.client.start(ws, instance).await,
            Action::Stop => self.client.stop(ws, instance).await,
            Action::Restart => self.client.restart(ws, instance).await,
            Action::IdleShutdown | Action::Schedules => {
                return SendOutcome::Failed(AzureError::Protocol {
                    operation: "actuate",
                    reason: "a native settings change needs its settings: use send_native"
                        .to_owned(),
                });
            }
            // Never planned as a request (see `Action::is_request`); refused here all the same.
            Action::Snooze => {
                debug_assert!(false, "a snooze is never sent to Azure");
                return SendOutcome::Failed(AzureError::Protocol {
                    operation: "actuate",
                    reason: "a snooze is recorded, never sent to Azure".to_owned(),
                });
            }
        };
        match result {
            Ok(accepted) => SendOutcome::Accepted(accepted),
            Err(e) => classify(e),
        }
    }

    /// Send the native changes of one instance (a GET and one PUT of the whole compute, see
    /// [`crate::azure::update`]), within the same concurrency bound as power actions; the
    /// client's budgets apply as to any read and write.
    pub async fn send_native(
        &self,
        ws: &WorkspaceRef,
        instance: &str,
        changes: &[crate::engine::native::NativeChange],
    ) -> SendOutcome {
        use crate::engine::native::NativeChange;
        let Ok(_slot) = self.slots.acquire().await else {
            return SendOutcome::Failed(AzureError::Protocol {
                operation: "actuate",
                reason: "actuator closed".to_owned(),
            });
        };
        let mut setting = NativeSetting::default();
        for change in changes {
            match change {
                NativeChange::IdleShutdown { to, .. } => setting.idle_shutdown = Some(to.clone()),
                NativeChange::Schedules { to, .. } => {
                    match serde_json::to_value(crate::azure::convert::schedules_body(to)) {
                        Ok(v) => setting.schedules = Some(v),
                        Err(e) => {
                            return SendOutcome::Failed(AzureError::Protocol {
                                operation: "actuate",
                                reason: format!("cannot encode schedules: {e}"),
                            });
                        }
                    }
                }
            }
        }
        match self.client.update_native(ws, instance, &setting).await {
            Ok(accepted) => SendOutcome::Accepted(accepted),
            Err(e) => classify(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::ArmError;

    fn arm(status: u16, code: &str) -> AzureError {
        AzureError::Arm {
            operation: "stop",
            status,
            request_id: None,
            error: Box::new(ArmError {
                code: code.into(),
                message: "m".into(),
                ..ArmError::default()
            }),
            retry_after: None,
        }
    }

    #[test]
    fn refusals_are_told_apart_from_failures() {
        for (status, code) in [
            (409, "Conflict"),
            (400, "StartComputeInstanceOnlyAllowedInStoppedState"),
            (400, "DiskFull"),
            (403, "AuthorizationFailed"),
            (404, "ResourceNotFound"),
        ] {
            assert!(
                matches!(classify(arm(status, code)), SendOutcome::Refused(_)),
                "{status} {code}"
            );
        }
        for status in [429, 500, 503] {
            assert!(
                matches!(classify(arm(status, "x")), SendOutcome::Failed(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn wrong_state_is_a_refusal_whatever_the_status() {
        assert!(matches!(
            classify(arm(500, "StartComputeInstanceOnlyAllowedInStoppedState")),
            SendOutcome::Refused(_)
        ));
    }

    #[test]
    fn an_accepted_request_we_cannot_follow_is_unknown() {
        let e = AzureError::Untracked {
            operation: "stop",
            status: 202,
            request_id: Some("rid".into()),
            reason: "not on the configured ARM endpoint's host",
            url_prefix: "https://evil.example.com/op".into(),
        };
        let o = classify(e);
        assert_eq!(o.label(), "unknown");
        assert!(matches!(o, SendOutcome::Unknown(_)));
    }

    #[test]
    fn failed_operations_in_the_wrong_state_are_refusals() {
        let err = |code: &str, message: &str| ArmError {
            code: code.into(),
            message: message.into(),
            ..ArmError::default()
        };
        // The code and message the recordings' README quotes (vscode-tools-for-ai#2096).
        let start = err(
            "StartComputeInstanceOnlyAllowedInStoppedState",
            "Start Azure ML Compute Instance is only allowed when the instance ci-1 is in 'stopped' state",
        );
        assert_eq!(classify_operation_end(Some(&start)), OperationEnd::Refused);
        assert_eq!(
            classify_operation_end(Some(&err(
                "StopComputeInstanceOnlyAllowedInRunningState",
                ""
            ))),
            OperationEnd::Refused
        );
        assert_eq!(
            classify_operation_end(Some(&err(
                "",
                "StopCompute is not allowed when ComputeInstance disk is full."
            ))),
            OperationEnd::Refused
        );
        // #1921's asynchronous timeout is a failure (worth another try later).
        assert_eq!(
            classify_operation_end(Some(&err(
                "",
                "Compute instance ci-1 was timed out for operation Start"
            ))),
            OperationEnd::Failed
        );
        assert_eq!(classify_operation_end(None), OperationEnd::Failed);
    }
}
