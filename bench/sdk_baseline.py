"""The community tools' approach, as the baseline of `bench/scale.py`.

Microsoft's Python SDK (azure-identity + azure-mgmt-machinelearningservices, the versions of
tests/python/requirements.txt) lists the computes of each workspace, then gets each compute
instance to read its state, one request at a time, as the open-source idle-stop scripts and
Azure Functions samples do. It decides nothing and stops nothing: this is only the cost of
looking, the part every tool has to pay.

Usage: python3 bench/sdk_baseline.py READY.json WORKSPACES.json
(READY: the emulator's ready line; WORKSPACES: [[alias, subscription, rg, workspace], ...]).
Prints one JSON line: {"instances": N, "running": N, "seconds": S}.
"""

import json
import sys
import time

from azure.identity import ClientSecretCredential
from azure.mgmt.machinelearningservices import MachineLearningServicesMgmtClient


def main():
    ready = json.load(open(sys.argv[1]))
    workspaces = json.load(open(sys.argv[2]))
    began = time.monotonic()
    credential = ClientSecretCredential(
        ready["tenant_id"],
        ready["client_id"],
        ready["client_secret"],
        authority=ready["endpoint"],
        disable_instance_discovery=True,
        connection_verify=ready["ca_file"],
    )
    clients = {}
    instances = running = 0
    for _alias, sub, rg, ws in workspaces:
        client = clients.get(sub)
        if client is None:
            client = clients[sub] = MachineLearningServicesMgmtClient(
                credential,
                sub,
                base_url=ready["endpoint"],
                credential_scopes=["https://management.azure.com/.default"],
                connection_verify=ready["ca_file"],
            )
        ops = client.machine_learning_compute
        names = [
            c.name
            for c in ops.list_by_workspace(rg, ws)
            if c.properties is not None and c.properties.compute_type == "ComputeInstance"
        ]
        for name in names:
            c = ops.get(rg, ws, name)
            instances += 1
            if c.properties.properties.state == "Running":
                running += 1
    print(json.dumps({"instances": instances, "running": running,
                      "seconds": round(time.monotonic() - began, 3)}))


if __name__ == "__main__":
    main()
