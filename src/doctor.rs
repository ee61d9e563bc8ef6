//! What `lightsout doctor` checks, as pure functions: which Azure RBAC actions a config needs
//! (and why), and how the identity's permissions measure up. The I/O lives in
//! `commands::doctor`.
//!
//! The action list is the single source of truth shared with `deploy/azure/lightsout-role.json`
//! (a test keeps the two in step) and with the operations guide's table.

use crate::azure::wire::{Permission, permissions_grant};
use crate::config::Config;
use crate::policy::StartMode;
use crate::schedule::EventAction;

/// Read compute instances (list, get): every observation pass.
pub const READ: &str = "Microsoft.MachineLearningServices/workspaces/computes/read";
/// Stop a compute instance.
pub const STOP: &str = "Microsoft.MachineLearningServices/workspaces/computes/stop/action";
/// Start a compute instance.
pub const START: &str = "Microsoft.MachineLearningServices/workspaces/computes/start/action";
/// Restart a compute instance.
pub const RESTART: &str = "Microsoft.MachineLearningServices/workspaces/computes/restart/action";
/// Reach an instance's applications (Jupyter) with the ARM token: the `jupyter` signal.
pub const APPLICATION_ACCESS: &str =
    "Microsoft.MachineLearningServices/workspaces/computes/applicationaccess/action";
/// Change an instance's settings: native idle shutdown and schedules (`native.mode = "enforce"`).
pub const WRITE: &str = "Microsoft.MachineLearningServices/workspaces/computes/write";
/// Read one's own permissions: what `doctor` itself asks.
pub const PERMISSIONS_READ: &str = "Microsoft.Authorization/permissions/read";

/// Every action in the shipped least-privilege role, in role order.
pub const ROLE_ACTIONS: [&str; 7] = [
    READ,
    START,
    STOP,
    RESTART,
    APPLICATION_ACCESS,
    WRITE,
    PERMISSIONS_READ,
];

/// Name of the custom role in `deploy/azure/lightsout-role.json`.
pub const ROLE_NAME: &str = "lightsout compute scheduler";

/// One action the daemon may need, with the feature that needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The RBAC action.
    pub action: &'static str,
    /// What it is for, in words.
    pub feature: &'static str,
    /// Whether this config uses the feature; a missing unused action is only reported.
    pub used: bool,
    /// Why it is unused, when it is.
    pub unused_because: &'static str,
}

/// The daemon's actions for `cfg`, each marked used or not by this configuration.
pub fn needs(cfg: &Config) -> Vec<Need> {
    let policies = &cfg.policies;
    let starts = policies.iter().any(|p| {
        p.start == StartMode::Window || p.events.iter().any(|e| e.action == EventAction::Start)
    });
    let restarts = policies
        .iter()
        .any(|p| p.events.iter().any(|e| e.action == EventAction::Restart));
    let jupyter = policies.iter().any(|p| p.signals().jupyter);
    let native_writes = policies
        .iter()
        .any(|p| p.native.mode == crate::native::NativeMode::Enforce);
    vec![
        Need {
            action: READ,
            feature: "observe instances (every pass, plan, ci list/show)",
            used: true,
            unused_because: "",
        },
        Need {
            action: STOP,
            feature: "stop idle and off-hours instances",
            used: true,
            unused_because: "",
        },
        Need {
            action: START,
            feature: "start instances when a window opens (start = \"window\") or on a start event",
            used: starts,
            unused_because: "no policy has start = \"window\" or a start event",
        },
        Need {
            action: RESTART,
            feature: "restart events ([[policy.event]] action = \"restart\")",
            used: restarts,
            unused_because: "no policy has a restart event",
        },
        Need {
            action: APPLICATION_ACCESS,
            feature: "the jupyter activity signal (kernels, last_activity)",
            used: jupyter,
            unused_because: "no policy uses the jupyter signal",
        },
        Need {
            action: WRITE,
            feature: "keep Azure ML's own idle shutdown and schedules in line ([policy.native] mode = \"enforce\")",
            used: native_writes,
            unused_because: "no policy has native mode = \"enforce\"",
        },
    ]
}

/// The verdict on one needed action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Granted.
    Granted,
    /// Not granted, and this config needs it: a failure.
    Missing,
    /// Not granted, but this config does not use it: reported, not a failure.
    NotNeeded,
}

/// How each need fares against the identity's permissions at one scope.
pub fn evaluate(needs: &[Need], permissions: &[Permission]) -> Vec<(Need, Verdict)> {
    needs
        .iter()
        .map(|n| {
            let verdict = if permissions_grant(permissions, n.action) {
                Verdict::Granted
            } else if n.used {
                Verdict::Missing
            } else {
                Verdict::NotNeeded
            };
            (n.clone(), verdict)
        })
        .collect()
}

/// The fix for one missing action.
pub fn grant_fix(action: &str) -> String {
    format!(
        "grant {action} to the identity at this workspace (the role in deploy/azure/lightsout-role.json has it; commands below)"
    )
}

/// The commands that grant the shipped role at `scope` to `assignee`.
pub fn role_fix(scope: &str, assignee: &str) -> [String; 2] {
    [
        "az role definition create --role-definition deploy/azure/lightsout-role.json   # once; edit AssignableScopes first".to_owned(),
        format!(
            "az role assignment create --assignee {assignee} --role \"{ROLE_NAME}\" --scope {scope}"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        crate::config::parse(text, Path::new("t.toml")).unwrap().0
    }

    const WS: &str = r#"
[[workspace]]
name = "lab"
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "rg"
workspace = "ws1"
"#;

    #[test]
    fn a_config_without_policies_needs_read_and_stop_only() {
        let c = cfg(WS);
        let used: Vec<&str> = needs(&c)
            .iter()
            .filter(|n| n.used)
            .map(|n| n.action)
            .collect();
        assert_eq!(used, [READ, STOP]);
    }

    #[test]
    fn the_example_config_needs_everything() {
        let text = include_str!("../config/lightsout.example.toml");
        let c = cfg(text);
        assert!(needs(&c).iter().all(|n| n.used), "{:#?}", needs(&c));
    }

    #[test]
    fn verdicts() {
        let c = cfg(WS);
        let reader = vec![Permission {
            actions: vec![READ.to_owned()],
            ..Permission::default()
        }];
        let v = evaluate(&needs(&c), &reader);
        let of = |a: &str| v.iter().find(|(n, _)| n.action == a).unwrap().1;
        assert_eq!(of(READ), Verdict::Granted);
        assert_eq!(of(STOP), Verdict::Missing);
        assert_eq!(of(START), Verdict::NotNeeded);
        let admin = vec![Permission {
            actions: vec!["Microsoft.MachineLearningServices/workspaces/computes/*".to_owned()],
            ..Permission::default()
        }];
        assert!(
            evaluate(&needs(&c), &admin)
                .iter()
                .all(|(_, v)| *v == Verdict::Granted)
        );
    }

    #[test]
    fn the_shipped_role_has_exactly_these_actions() {
        let text = include_str!("../deploy/azure/lightsout-role.json");
        let role: serde_json::Value = serde_json::from_str(text).unwrap();
        let actions: Vec<&str> = role["Actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(actions, ROLE_ACTIONS);
        assert_eq!(role["Name"], ROLE_NAME);
        assert_eq!(role["NotActions"].as_array().unwrap().len(), 0);
        assert!(role["DataActions"].as_array().unwrap().is_empty());
    }
}
