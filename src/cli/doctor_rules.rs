//! What `lightsout doctor` checks, as pure functions: which Azure RBAC actions a config needs
//! (and why), and how the identity's permissions measure up. The I/O lives in
//! `commands::doctor`.
//!
//! The action list is the single source of truth shared with `deploy/azure/lightsout-role.json`
//! (a test keeps the two in step) and with the operations guide's table.

use crate::azure::wire::{Permission, permissions_grant};
use crate::engine::config::Config;
use crate::engine::policy::StartMode;
use crate::engine::schedule::EventAction;

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

/// The minimal role every daemon needs, in role order (`deploy/azure/lightsout-role.json`).
pub const ROLE_ACTIONS: [&str; 5] = [READ, START, STOP, RESTART, PERMISSIONS_READ];
/// Name of the minimal custom role.
pub const ROLE_NAME: &str = "lightsout compute scheduler";

/// An optional role: one feature's extra action, granted only where a policy uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalRole {
    /// The role's `Name`.
    pub name: &'static str,
    /// Its file under `deploy/azure/`.
    pub file: &'static str,
    /// Its one action.
    pub action: &'static str,
}

/// `computes/write`, which also lets an identity create and reconfigure instances: only
/// for `[policy.native] mode = "enforce"`.
pub const NATIVE_ROLE: OptionalRole = OptionalRole {
    name: "lightsout native settings",
    file: "deploy/azure/lightsout-native-role.json",
    action: WRITE,
};
/// `applicationaccess/action`: only for the `jupyter` signal.
pub const JUPYTER_ROLE: OptionalRole = OptionalRole {
    name: "lightsout jupyter signal",
    file: "deploy/azure/lightsout-jupyter-role.json",
    action: APPLICATION_ACCESS,
};

/// The optional role that carries `action`, if any.
pub fn optional_role(action: &str) -> Option<OptionalRole> {
    [NATIVE_ROLE, JUPYTER_ROLE]
        .into_iter()
        .find(|r| r.action == action)
}

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
        .any(|p| p.native.mode == crate::engine::native::types::NativeMode::Enforce);
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
    /// Granted, and this config uses it.
    Granted,
    /// Not granted, and this config needs it: a failure.
    Missing,
    /// Not granted, and this config does not use it: as it should be.
    NotNeeded,
    /// Granted although this config does not use it, and it is an optional role's action
    /// (write, application access): more power than needed, a warning.
    Excess,
}

/// How each need fares against the identity's permissions at one scope.
pub fn evaluate(needs: &[Need], permissions: &[Permission]) -> Vec<(Need, Verdict)> {
    needs
        .iter()
        .map(|n| {
            let granted = permissions_grant(permissions, n.action);
            let verdict = match (granted, n.used) {
                (true, false) if optional_role(n.action).is_some() => Verdict::Excess,
                (true, _) => Verdict::Granted,
                (false, true) => Verdict::Missing,
                (false, false) => Verdict::NotNeeded,
            };
            (n.clone(), verdict)
        })
        .collect()
}

/// Which of the shipped roles the verdicts add up to, in words: what `doctor` says the
/// identity has.
pub fn roles_held(verdicts: &[(Need, Verdict)]) -> String {
    let has = |action: &str| {
        verdicts
            .iter()
            .any(|(n, v)| n.action == action && matches!(v, Verdict::Granted | Verdict::Excess))
    };
    let minimal = [READ, STOP].iter().all(|a| has(a));
    let mut parts = vec![if minimal {
        format!("the minimal role's actions (\"{ROLE_NAME}\")")
    } else {
        format!("less than the minimal role (\"{ROLE_NAME}\")")
    }];
    for role in [NATIVE_ROLE, JUPYTER_ROLE] {
        if has(role.action) {
            parts.push(format!("\"{}\" ({})", role.name, role.action));
        }
    }
    parts.join(" + ")
}

/// The fix for one missing action.
pub fn grant_fix(action: &str) -> String {
    let file = optional_role(action).map_or("deploy/azure/lightsout-role.json", |r| r.file);
    format!(
        "grant {action} to the identity at this workspace (the role in {file} has it; commands below)"
    )
}

/// The fix for an action granted but unused.
pub fn revoke_fix(action: &str) -> String {
    match optional_role(action) {
        Some(r) => format!(
            "least privilege: remove the role \"{}\" ({}) from the identity, or whichever broader role grants {action}",
            r.name, r.file
        ),
        None => format!("least privilege: {action} is not needed by this config"),
    }
}

/// The commands that grant the shipped minimal role at `scope` to `assignee`, plus the
/// optional roles among `missing` actions.
pub fn role_fix(scope: &str, assignee: &str, missing: &[&str]) -> Vec<String> {
    let mut roles = vec![("deploy/azure/lightsout-role.json", ROLE_NAME)];
    for action in missing {
        if let Some(r) = optional_role(action) {
            roles.push((r.file, r.name));
        }
    }
    let mut out = Vec::new();
    for (file, name) in roles {
        out.push(format!(
            "az role definition create --role-definition {file}   # once; edit AssignableScopes first"
        ));
        out.push(format!(
            "az role assignment create --assignee {assignee} --role \"{name}\" --scope {scope}"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        crate::engine::config::parse(text, Path::new("t.toml"))
            .unwrap()
            .0
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
        let text = include_str!("../../config/lightsout.example.toml");
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
        assert_eq!(of(WRITE), Verdict::NotNeeded);
        let admin = vec![Permission {
            actions: vec!["Microsoft.MachineLearningServices/workspaces/computes/*".to_owned()],
            ..Permission::default()
        }];
        // Everything granted; the optional roles' actions are more than this config uses.
        assert!(evaluate(&needs(&c), &admin).iter().all(|(n, v)| {
            *v == if optional_role(n.action).is_some() {
                Verdict::Excess
            } else {
                Verdict::Granted
            }
        }));
    }

    #[test]
    fn write_granted_but_unused_is_excess() {
        let c = cfg(WS);
        let contributor = vec![Permission {
            actions: vec!["*".to_owned()],
            ..Permission::default()
        }];
        let v = evaluate(&needs(&c), &contributor);
        let of = |a: &str| v.iter().find(|(n, _)| n.action == a).unwrap().1;
        assert_eq!(of(WRITE), Verdict::Excess);
        assert_eq!(of(APPLICATION_ACCESS), Verdict::Excess);
        // Unused minimal-role actions are not nagged about.
        assert_eq!(of(START), Verdict::Granted);
        assert_eq!(
            roles_held(&v),
            "the minimal role's actions (\"lightsout compute scheduler\") + \"lightsout native settings\" (Microsoft.MachineLearningServices/workspaces/computes/write) + \"lightsout jupyter signal\" (Microsoft.MachineLearningServices/workspaces/computes/applicationaccess/action)"
        );
        assert!(revoke_fix(WRITE).contains("lightsout-native-role.json"));
    }

    #[test]
    fn role_fix_adds_only_the_missing_optional_roles() {
        let fix = role_fix("/s", "me", &[STOP, WRITE]);
        assert_eq!(fix.len(), 4);
        assert!(fix[0].contains("lightsout-role.json"));
        assert!(fix[2].contains("lightsout-native-role.json"));
        assert!(fix[3].contains("\"lightsout native settings\""));
    }

    fn role_file(text: &str) -> (String, Vec<String>) {
        let role: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(role["NotActions"].as_array().unwrap().len(), 0);
        assert!(role["DataActions"].as_array().unwrap().is_empty());
        let actions = role["Actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        (role["Name"].as_str().unwrap().to_owned(), actions)
    }

    #[test]
    fn the_shipped_roles_have_exactly_these_actions() {
        let (name, actions) = role_file(include_str!("../../deploy/azure/lightsout-role.json"));
        assert_eq!(actions, ROLE_ACTIONS);
        assert_eq!(name, ROLE_NAME);
        assert!(
            !actions
                .iter()
                .any(|a| a == WRITE || a == APPLICATION_ACCESS)
        );
        for (text, role) in [
            (
                include_str!("../../deploy/azure/lightsout-native-role.json"),
                NATIVE_ROLE,
            ),
            (
                include_str!("../../deploy/azure/lightsout-jupyter-role.json"),
                JUPYTER_ROLE,
            ),
        ] {
            let (name, actions) = role_file(text);
            assert_eq!(name, role.name);
            assert_eq!(actions, [role.action]);
        }
    }
}
