//! Domain vocabulary shared by the client, the engine and the CLI.
//!
//! Pure types only: no I/O, no clock. Wire shapes live in `azure::wire`.

use std::fmt;

/// The address of one Azure ML workspace in Azure Resource Manager.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceRef {
    /// Subscription id (a GUID).
    pub subscription_id: String,
    /// Resource group name.
    pub resource_group: String,
    /// The Azure ML workspace's own name.
    pub workspace: String,
}

impl WorkspaceRef {
    /// ARM path of the workspace, without a leading endpoint and without query.
    pub fn arm_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}",
            self.subscription_id, self.resource_group, self.workspace
        )
    }

    /// ARM path of the workspace's compute collection.
    pub fn computes_path(&self) -> String {
        format!("{}/computes", self.arm_path())
    }

    /// ARM path of one compute in the workspace.
    pub fn compute_path(&self, name: &str) -> String {
        format!("{}/computes/{}", self.arm_path(), name)
    }
}

impl fmt::Display for WorkspaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.subscription_id, self.resource_group, self.workspace
        )
    }
}
