//! `lightsout doctor`: a checklist of everything the daemon needs from its environment: the
//! config, a token, ARM, and per workspace the RBAC actions this config uses (asked of Azure's
//! `Microsoft.Authorization/permissions` API). Every failure comes with its fix; any failure
//! makes the exit code non-zero (78 for a bad config, else 1).

use std::time::Duration;

use crate::azure::convert::{instance_observation, jupyter_base};
use crate::azure::wire::ComputeResource;
use crate::azure::{ArmClient, ArmClientConfig, AzureError, RetryPolicy};
use crate::cli::ConfigArg;
use crate::cli::doctor_rules::{self as doctor, Need, Verdict};
use crate::daemon::connect;
use crate::daemon::heartbeats::Heartbeats;
use crate::daemon::observe::probe_jupyter_once;
use crate::engine::config::auth::CredentialKind;
use crate::engine::config::{self, AzureSettings, Workspace};
use crate::engine::policy::Policy;

use super::validate::config_path;

/// One line of the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Ok,
    Fail,
    Warn,
    /// A fact worth knowing that is neither good nor bad.
    Info,
}

/// Prints the checklist on stdout and counts failures.
#[derive(Debug, Default)]
struct Checklist {
    failures: usize,
    warnings: usize,
}

impl Checklist {
    fn line(&mut self, mark: Mark, what: &str, fix: Option<&str>) {
        let tag = match mark {
            Mark::Ok => "[ ok ]",
            Mark::Fail => {
                self.failures += 1;
                "[FAIL]"
            }
            Mark::Warn => {
                self.warnings += 1;
                "[warn]"
            }
            Mark::Info => "[info]",
        };
        println!("{tag} {what}");
        if let Some(fix) = fix {
            println!("       fix: {fix}");
        }
    }

    fn finish(&self) -> anyhow::Result<()> {
        println!();
        if self.failures == 0 {
            println!(
                "all checks passed ({} warning{})",
                self.warnings,
                if self.warnings == 1 { "" } else { "s" }
            );
            Ok(())
        } else {
            anyhow::bail!(
                "{} check{} failed",
                self.failures,
                if self.failures == 1 { "" } else { "s" }
            )
        }
    }
}

/// Run every check; see the module doc.
pub async fn doctor(arg: &ConfigArg) -> anyhow::Result<()> {
    let mut list = Checklist::default();
    let path = config_path(arg);
    let cfg = match config::load(&path) {
        Ok((cfg, warnings)) => {
            list.line(
                Mark::Ok,
                &format!(
                    "config {}: valid ({} workspaces, {} policies)",
                    path.display(),
                    cfg.workspaces.len(),
                    cfg.policies.len()
                ),
                None,
            );
            for w in &warnings {
                list.line(Mark::Warn, &w.render(&path), None);
            }
            cfg
        }
        Err(e) => {
            list.line(
                Mark::Fail,
                &format!("config {}", path.display()),
                Some("correct the problems below (`lightsout validate` lists them all)"),
            );
            return Err(e.into());
        }
    };
    if cfg.workspaces.is_empty() {
        list.line(
            Mark::Fail,
            "no [[workspace]] configured",
            Some("add one [[workspace]] per Azure ML workspace to the config"),
        );
        return list.finish();
    }

    let client_config = ArmClientConfig {
        retry: RetryPolicy::try_new(
            2,
            Duration::from_millis(500),
            Duration::from_secs(5),
            0.2,
            Duration::from_secs(10),
        )
        .unwrap_or_default(),
        ..ArmClientConfig::default()
    };
    let client = match connect::arm_client(&cfg.azure, client_config) {
        Ok(c) => c,
        Err(e) => {
            list.line(
                Mark::Fail,
                &format!(
                    "credential ({}): {}",
                    cfg.azure.credential.as_str(),
                    crate::engine::text::chain(&e)
                ),
                Some(&credential_fix(&cfg.azure)),
            );
            return list.finish();
        }
    };

    match client.check_token().await {
        Ok(()) => list.line(
            Mark::Ok,
            &format!(
                "token: acquired for {} (credential {})",
                client.endpoint().scope(),
                cfg.azure.credential.as_str()
            ),
            None,
        ),
        Err(e) => {
            list.line(
                Mark::Fail,
                &format!(
                    "token ({}): {}",
                    cfg.azure.credential.as_str(),
                    crate::engine::text::chain(&e)
                ),
                Some(&credential_fix(&cfg.azure)),
            );
            return list.finish();
        }
    }

    let needs = doctor::needs(&cfg);
    let assignee = cfg
        .azure
        .client_id
        .clone()
        .or_else(|| std::env::var("AZURE_CLIENT_ID").ok())
        .unwrap_or_else(|| "<object id of the identity>".to_owned());
    let heartbeats = match connect::heartbeats(&cfg) {
        Ok(h) => h,
        Err(e) => {
            list.line(
                Mark::Fail,
                &format!(
                    "agent heartbeats: cannot set up the storage client: {}",
                    crate::engine::text::chain(&e)
                ),
                Some("check [agent] account and [azure] ca_file"),
            );
            None
        }
    };
    for ws in &cfg.workspaces {
        check_workspace(
            &mut list,
            &client,
            &cfg,
            ws,
            &needs,
            &assignee,
            heartbeats.as_ref(),
        )
        .await;
    }
    list.finish()
}

async fn check_workspace(
    list: &mut Checklist,
    client: &ArmClient,
    cfg: &config::Config,
    ws: &Workspace,
    needs: &[Need],
    assignee: &str,
    heartbeats: Option<&Heartbeats>,
) {
    let (azure, policies) = (&cfg.azure, cfg.policies.as_slice());
    let scope = ws.reference.arm_path();
    println!();
    println!("workspace {} ({})", ws.name, ws.reference);
    let permissions = match client.workspace_permissions(&ws.reference).await {
        Ok(p) => {
            list.line(
                Mark::Ok,
                &format!("ARM reached at {}", azure.arm_endpoint),
                None,
            );
            p
        }
        Err(e) => {
            let fix = arm_fix(&e, azure, &scope, assignee);
            list.line(
                Mark::Fail,
                &format!(
                    "permissions at the workspace: {}",
                    crate::engine::text::chain(&e)
                ),
                Some(&fix),
            );
            return;
        }
    };
    let verdicts = doctor::evaluate(needs, &permissions);
    for (need, verdict) in &verdicts {
        match verdict {
            Verdict::Granted => list.line(
                Mark::Ok,
                &format!("{}: {}", need.action, need.feature),
                None,
            ),
            Verdict::Missing => list.line(
                Mark::Fail,
                &format!("{} missing, needed for: {}", need.action, need.feature),
                Some(&doctor::grant_fix(need.action)),
            ),
            Verdict::NotNeeded => list.line(
                Mark::Ok,
                &format!(
                    "{} not granted, not needed ({})",
                    need.action, need.unused_because
                ),
                None,
            ),
            Verdict::Excess => list.line(
                Mark::Warn,
                &format!(
                    "{} granted but unused ({})",
                    need.action, need.unused_because
                ),
                Some(&doctor::revoke_fix(need.action)),
            ),
        }
    }
    list.line(
        Mark::Info,
        &format!("the identity has {}", doctor::roles_held(&verdicts)),
        None,
    );
    let missing: Vec<&str> = verdicts
        .iter()
        .filter(|(_, v)| *v == Verdict::Missing)
        .map(|(n, _)| n.action)
        .collect();
    if !missing.is_empty() {
        println!("       to grant what this config needs here:");
        for command in doctor::role_fix(&scope, assignee, &missing) {
            println!("         {command}");
        }
    }
    let can_read = verdicts
        .iter()
        .any(|(n, v)| n.action == doctor::READ && *v == Verdict::Granted);
    if can_read {
        match client.list_computes(&ws.reference).await {
            Ok(computes) => {
                list.line(
                    Mark::Ok,
                    &format!("list computes: {} found", computes.len()),
                    None,
                );
                check_jupyter(list, client, ws, &computes, policies).await;
                if let Some(h) = heartbeats {
                    check_heartbeats(list, h, ws, &computes, policies, assignee).await;
                }
            }
            Err(e) => {
                let fix = arm_fix(&e, azure, &scope, assignee);
                list.line(
                    Mark::Fail,
                    &format!("list computes: {}", crate::engine::text::chain(&e)),
                    Some(&fix),
                );
            }
        }
    }
}

/// `[agent]`: whether the daemon can list the workspace's heartbeats (role Storage Blob
/// Data Reader on the container), and which running instances that count the agent have
/// no heartbeat at all (the agent is not installed, or cannot write).
async fn check_heartbeats(
    list: &mut Checklist,
    heartbeats: &Heartbeats,
    ws: &Workspace,
    computes: &[ComputeResource],
    policies: &[Policy],
    assignee: &str,
) {
    let Some(client) = heartbeats.client_for(ws) else {
        return;
    };
    let container = &heartbeats.settings().container;
    let account = ws
        .agent_account
        .as_ref()
        .and_then(|u| u.host_str())
        .and_then(|h| h.split('.').next())
        .unwrap_or("ACCOUNT");
    let prefix = crate::engine::heartbeat::workspace_prefix(&ws.reference.workspace);
    let listed = match client.list(&prefix).await {
        Ok(listed) => {
            list.line(
                Mark::Ok,
                &format!(
                    "agent heartbeats: {} listed in {}",
                    listed.len(),
                    client.container_url()
                ),
                None,
            );
            listed
        }
        Err(e) => {
            let fix = format!(
                "grant the daemon's identity Storage Blob Data Reader on the container: \
                 az role assignment create --assignee {assignee} --role \"Storage Blob Data Reader\" \
                 --scope \"$(az storage account show --name {account} --query id -o tsv)/blobServices/default/containers/{container}\" \
                 (see deploy/azure/README.md; a missing container is created by the first agent)"
            );
            list.line(
                Mark::Fail,
                &format!(
                    "agent heartbeats: cannot list {}: {}",
                    client.container_url(),
                    crate::engine::text::chain(&e)
                ),
                Some(&fix),
            );
            return;
        }
    };
    let names: std::collections::BTreeSet<&str> = listed
        .iter()
        .filter_map(|b| b.name.strip_prefix(&prefix)?.strip_suffix(".json"))
        .collect();
    let silent: Vec<String> = computes
        .iter()
        .filter_map(|r| instance_observation(&ws.name, r))
        .filter(|o| crate::daemon::heartbeats::wants_agent(o, policies))
        .filter(|o| !names.contains(o.name.as_str()))
        .map(|o| o.name)
        .collect();
    if silent.is_empty() {
        list.line(
            Mark::Ok,
            "agent heartbeats: every running instance that counts the agent has one",
            None,
        );
    } else {
        list.line(
            Mark::Warn,
            &format!(
                "agent heartbeats never arrived from {} running instance{}: {} (their activity is unknown, never idle)",
                silent.len(),
                if silent.len() == 1 { "" } else { "s" },
                silent.join(", ")
            ),
            Some(
                "install the agent on them (lightsout agent setup-script) and grant each instance's identity \
                 Storage Blob Data Contributor on the container (docs/operations.md, \"The on-instance agent: daemon side\")",
            ),
        );
    }
}

/// Whether each running instance's Jupyter answers the daemon's identity: what decides if
/// the `jupyter` signal can work there. On real Azure a Personal instance opens to its
/// assigned user only; a Shared one to workspace users "depending on their role", and
/// whether a service principal's token is accepted at all is documented nowhere: this
/// check is how to find out before opting in.
async fn check_jupyter(
    list: &mut Checklist,
    client: &ArmClient,
    ws: &Workspace,
    computes: &[ComputeResource],
    policies: &[Policy],
) {
    if !client.jupyter_enabled() {
        // No scope for instance hosts: the probe never sends a token (the ARM one least).
        list.line(
            Mark::Info,
            "jupyter probe: off (azure.jupyter_token_scope is not set); no instance's Jupyter is asked",
            None,
        );
        return;
    }
    for r in computes {
        let Some(obs) = instance_observation(&ws.name, r) else {
            continue;
        };
        if !obs.state.is_running() {
            continue;
        }
        let sharing = r
            .instance()
            .and_then(|i| i.application_sharing_policy.as_ref())
            .map_or("sharing unknown", |s| s.as_str());
        let what = format!("jupyter of {} ({sharing})", obs.name);
        if obs.excluded() {
            list.line(
                Mark::Info,
                &format!("{what}: not probed; opted out (lightsout = \"off\")"),
                None,
            );
            continue;
        }
        let opted_in =
            crate::engine::policy::select(policies, &obs.workspace, &obs.name, &obs.tags)
                .is_some_and(|p| p.signals().jupyter);
        let answer = match jupyter_base(r) {
            None => Err("no Jupyter application listed".to_owned()),
            // The instance's gateway answered, not ARM: say the status, not the client's
            // wording for an ARM error.
            Some(base) => probe_jupyter_once(client, &base)
                .await
                .map_err(|e| match e.status() {
                    Some(status) => format!("HTTP {status} from the instance"),
                    None => crate::engine::text::truncate_chars(&e.to_string(), 160),
                }),
        };
        let fix = if sharing == "Shared" {
            "remove \"jupyter\" from the policy's signals for such instances, or grant the identity Microsoft.MachineLearningServices/workspaces/computes/applicationaccess/action (whether a Shared instance's gateway accepts a service principal at all is undocumented)"
        } else {
            "remove \"jupyter\" from the policy's signals for such instances: a Personal instance opens its applications to its assigned user only"
        };
        match (answer, opted_in) {
            (Ok(_), true) => list.line(Mark::Ok, &format!("{what}: answered"), None),
            (Ok(_), false) => list.line(
                Mark::Info,
                &format!("{what}: answered; its policy does not use the jupyter signal"),
                None,
            ),
            (Err(why), true) => list.line(
                Mark::Warn,
                &format!("{what}: not answered ({why}); its policy counts the jupyter signal, which is unknown here"),
                Some(fix),
            ),
            (Err(why), false) => list.line(
                Mark::Info,
                &format!("{what}: not answered ({why}); not used by its policy"),
                None,
            ),
        }
    }
}

/// What to do when no credential or token could be had, by credential kind.
fn credential_fix(azure: &AzureSettings) -> String {
    let secret = "service principal: set tenant_id and client_id, and the secret in \
                  AZURE_CLIENT_SECRET or the file named by client_secret_file (under systemd: \
                  /etc/lightsout/client-secret with client_secret_file = \"client-secret\"; \
                  outside the service run `CREDENTIALS_DIRECTORY=/etc/lightsout lightsout doctor` \
                  as root so that the relative name resolves the same way)";
    let managed = "managed identity: enable a system-assigned identity on the VM, or attach a \
                   user-assigned one and set client_id to its client id";
    let workload = "workload identity: annotate the service account with \
                    azure.workload.identity/client-id, label the pod \
                    azure.workload.identity/use: \"true\", and check that AZURE_FEDERATED_TOKEN_FILE \
                    is set in the container";
    let cli = "Azure CLI: run `az login` as the user that runs lightsout";
    match azure.credential {
        CredentialKind::ClientSecret => secret.to_owned(),
        CredentialKind::ManagedIdentity => managed.to_owned(),
        CredentialKind::WorkloadIdentity => workload.to_owned(),
        CredentialKind::AzureCli => cli.to_owned(),
        CredentialKind::Auto => format!(
            "credential = \"auto\" tried each in turn; set the one you mean explicitly. {secret}; {workload}; {managed}; {cli}"
        ),
    }
}

/// What to do about a failed ARM call at `scope`.
fn arm_fix(e: &AzureError, azure: &AzureSettings, scope: &str, assignee: &str) -> String {
    match e.status() {
        Some(401) => format!(
            "ARM refused the token: check that tenant_id is the tenant of the subscription, and that arm_endpoint ({}) matches the cloud of authority_host",
            azure.arm_endpoint
        ),
        Some(403) => {
            let action = e
                .missing_action()
                .unwrap_or_else(|| doctor::PERMISSIONS_READ.to_owned());
            let commands = doctor::role_fix(scope, assignee, &[action.as_str()]).join("; then ");
            format!("grant {action} to the identity at this workspace: {commands}")
        }
        Some(404) => "check subscription_id, resource_group and workspace of this [[workspace]] (the workspace's own name, not its alias)".to_owned(),
        Some(429) => "ARM is throttling this subscription; try again in a minute".to_owned(),
        Some(_) => "ARM answered with an error; try again, and quote the request id above to Azure support if it persists".to_owned(),
        None => match e {
            AzureError::Auth { .. } => credential_fix(azure),
            _ => format!(
                "cannot talk to {}: check DNS, the firewall or proxy (HTTPS_PROXY), and for a private CA set ca_file",
                azure.arm_endpoint
            ),
        },
    }
}
