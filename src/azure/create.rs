//! The body of a new compute instance's PUT (`lightsout ci create`, and the demo's lifecycle
//! part): only what the caller means to set, since the wire types skip absent fields.

use crate::azure::wire::{
    Compute, ComputeDetails, ComputeInstanceProperties, ComputeResource, ComputeType, ResourceId,
    SshPublicAccess, SshSettings,
};

/// The PUT body: only what we mean to set (wire types skip absent fields).
pub fn create_body(
    location: &str,
    vm_size: &str,
    idle: Option<String>,
    ssh_public_access: bool,
    admin_key: Option<String>,
    subnet: Option<String>,
) -> ComputeResource {
    let ssh_settings = (ssh_public_access || admin_key.is_some()).then(|| SshSettings {
        ssh_public_access: Some(if ssh_public_access {
            SshPublicAccess::Enabled
        } else {
            SshPublicAccess::Disabled
        }),
        admin_public_key: admin_key,
        ..SshSettings::default()
    });
    let instance = ComputeInstanceProperties {
        vm_size: Some(vm_size.to_owned()),
        idle_time_before_shutdown: idle,
        ssh_settings,
        subnet: subnet.map(|id| ResourceId { id: Some(id) }),
        ..ComputeInstanceProperties::default()
    };
    ComputeResource {
        location: Some(location.to_owned()),
        properties: Some(Compute {
            compute_type: Some(ComputeType::ComputeInstance),
            properties: Some(ComputeDetails::Instance(Box::new(instance))),
            ..Compute::default()
        }),
        ..ComputeResource::default()
    }
}

/// Longest inline `scriptData` (base64 characters) known to be accepted: a public setup note
/// reports that Azure refuses more than 4096 (index id 53386339752; UNVERIFIED by a
/// Microsoft source). Longer scripts go to the workspace's file share instead.
pub const INLINE_SCRIPT_LIMIT: usize = 4096;

/// Attaches `script` as the instance's creation script, inline:
/// `properties.properties.setupScripts.scripts.creationScript = {scriptSource: "inline",
/// scriptData: base64(script)}`. The shape is the REST spec's `ScriptReference` (Bicep types
/// of Microsoft.MachineLearningServices 2023-04-01: "scriptSource: The storage source of the
/// script: inline, workspace"); base64 for inline data as users send it (public notes, index
/// ids 53386339752, 53294994072). No timeout: Azure's default applies (15 minutes, AGENT.md
/// section 1.6). Returns the length of `scriptData`.
pub fn attach_creation_script(body: &mut ComputeResource, script: &[u8]) -> usize {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(script);
    let len = data.len();
    if let Some(Compute {
        properties: Some(ComputeDetails::Instance(instance)),
        ..
    }) = body.properties.as_mut()
    {
        instance.setup_scripts = Some(serde_json::json!({
            "scripts": {"creationScript": {"scriptSource": "inline", "scriptData": data}}
        }));
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creation_script_travels_inline_in_base64() {
        let mut b = create_body("x", "s", None, false, None, None);
        let len = attach_creation_script(&mut b, b"#!/bin/bash\necho hi\n");
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(
            v["properties"]["properties"]["setupScripts"],
            serde_json::json!({"scripts": {"creationScript": {
                "scriptSource": "inline",
                "scriptData": "IyEvYmluL2Jhc2gKZWNobyBoaQo="
            }}})
        );
        assert_eq!(len, 28);
    }

    #[test]
    fn create_body_is_minimal() {
        let b = create_body(
            "eastus2",
            "Standard_DS3_v2",
            Some("PT30M".into()),
            true,
            Some("ssh-ed25519 AAAA me".into()),
            Some("/subnets/x".into()),
        );
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "location": "eastus2",
                "properties": {
                    "computeType": "ComputeInstance",
                    "properties": {
                        "vmSize": "Standard_DS3_v2",
                        "idleTimeBeforeShutdown": "PT30M",
                        "sshSettings": {"sshPublicAccess": "Enabled", "adminPublicKey": "ssh-ed25519 AAAA me"},
                        "subnet": {"id": "/subnets/x"}
                    }
                }
            })
        );
        let plain = serde_json::to_value(create_body("x", "s", None, false, None, None)).unwrap();
        assert!(
            plain["properties"]["properties"]
                .get("sshSettings")
                .is_none()
        );
    }
}
