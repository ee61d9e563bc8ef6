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

#[cfg(test)]
mod tests {
    use super::*;

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
