"""Microsoft's Python SDK against the lightsout emulator, over HTTPS.

Starts the emulator (``$LIGHTSOUT_BIN emulator ...``, default ``target/debug/lightsout``),
reads its ready line, then uses ``azure-identity`` and
``azure-mgmt-machinelearningservices`` to list, get, create, start, stop, restart and delete
compute instances, checking the state after each long-running operation.

Run: ``make test-python`` (installs tests/python/requirements.txt, builds, runs pytest).
"""

import json
import os
import pathlib
import subprocess
import tempfile
import time

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential
from azure.mgmt.core.polling.arm_polling import ARMPolling
from azure.mgmt.machinelearningservices import MachineLearningServicesMgmtClient
from azure.mgmt.machinelearningservices import models

REPO = pathlib.Path(__file__).resolve().parents[2]
SUB = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
RG = "testrg123"
WS = "workspaces123"
NEW_API = "2025-12-01"

FLEET = f"""
tenant_id = "00000000-0000-0000-0000-0000000000aa"
page_size = 2

[[principal]]
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = "s3cret"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]

[[principal]]
client_id = "22222222-2222-2222-2222-222222222222"
client_secret = "readonly"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/read"]

[timing]
create = "2s"
start = "1s"
stop = "1s"
restart = "1s"
delete = "1s"

[[workspace]]
subscription_id = "{SUB}"
resource_group = "{RG}"
name = "{WS}"
location = "eastus2"

[[workspace.instance]]
name = "ci-alice"
vm_size = "Standard_DS3_v2"
state = "Running"
tags = {{ team = "vision" }}
idle_time_before_shutdown = "PT60M"

[[workspace.instance]]
name = "ci-bob"
vm_size = "Standard_DS3_v2"
state = "Stopped"

[[workspace.instance]]
name = "ci-carol"
vm_size = "Standard_NC6s_v3"
state = "JobRunning"
"""


def _command(fleet_path):
    """The emulator command line of the real CLI."""
    args = ["--listen", "127.0.0.1:0", "--tls", "--fleet", str(fleet_path)]
    binary = os.environ.get("LIGHTSOUT_BIN")
    if not binary:
        target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        binary = str(target / "debug" / "lightsout")
    return [binary, "emulator", *args]


@pytest.fixture(scope="module")
def emulator():
    with tempfile.TemporaryDirectory() as tmp:
        fleet = pathlib.Path(tmp) / "fleet.toml"
        fleet.write_text(FLEET)
        proc = subprocess.Popen(
            _command(fleet),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            assert line, "emulator exited without a ready line"
            ready = json.loads(line)
            assert ready["event"] == "ready"
            assert ready["endpoint"].startswith("https://127.0.0.1:")
            yield ready
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _credential(ready, client_id=None, secret=None):
    return ClientSecretCredential(
        ready["tenant_id"],
        client_id or ready["client_id"],
        secret or ready["client_secret"],
        authority=ready["endpoint"],
        disable_instance_discovery=True,
        connection_verify=ready["ca_file"],
    )


def _client(ready, credential=None):
    return MachineLearningServicesMgmtClient(
        credential or _credential(ready),
        SUB,
        base_url=ready["endpoint"],
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=ready["ca_file"],
        polling_interval=0.2,
    )


def _state(client, name):
    return client.machine_learning_compute.get(RG, WS, name).properties.properties.state


def _wait_state(client, name, want, timeout=15.0):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = _state(client, name)
        if seen == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name}: wanted {want}, last saw {seen}")


def _lro_post(client, name, action):
    """A 202 start/stop/restart at the current api-version, polled by azure-mgmt-core."""
    path = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices"
        f"/workspaces/{WS}/computes/{name}/{action}"
    )
    request = HttpRequest("POST", path, params={"api-version": NEW_API})
    request.url = client._client.format_url(request.url)
    response = client._client._pipeline.run(request, stream=False)
    assert response.http_response.status_code == 202, response.http_response.text()
    headers = response.http_response.headers
    # As real Azure answers (tests/fixtures/azure/recorded/py-ml-stop-2024-12-signed-ao):
    # only a signed Azure-AsyncOperation URL of some 3 KB, no Location, no Retry-After.
    assert "Azure-AsyncOperation" in headers
    assert len(headers["Azure-AsyncOperation"]) > 3000
    assert "Location" not in headers and "Retry-After" not in headers
    poller = LROPoller(
        client._client, response, lambda r: None, ARMPolling(0.2)
    )
    poller.result(timeout=20)
    assert poller.status() == "Succeeded"


def test_token_and_list_pages(emulator):
    client = _client(emulator)
    names = [c.name for c in client.machine_learning_compute.list_by_workspace(RG, WS)]
    # Three instances at page size 2: the SDK followed a nextLink.
    assert names == ["ci-alice", "ci-bob", "ci-carol"]


def test_get_shapes(emulator):
    client = _client(emulator)
    alice = client.machine_learning_compute.get(RG, WS, "ci-alice")
    assert alice.tags == {"team": "vision"}
    assert alice.properties.compute_type == "ComputeInstance"
    props = alice.properties.properties
    assert props.state == "Running"
    assert props.vm_size == "Standard_DS3_v2"
    # On the instance's own host, shaped as Azure's (NAME.REGION.instances.azureml.ms).
    port = emulator["endpoint"].rsplit(":", 1)[1]
    assert props.applications[0].endpoint_uri == (
        f"https://ci-alice.eastus2.instances.azureml.ms:{port}/tree/"
    )
    assert _state(client, "ci-carol") == "JobRunning"


def test_create_start_stop_restart_delete(emulator):
    client = _client(emulator)
    ops = client.machine_learning_compute
    body = models.ComputeResource(
        location="eastus2",
        tags={"team": "sdk"},
        properties=models.ComputeInstance(
            properties=models.ComputeInstanceProperties(
                vm_size="Standard_DS3_v2",
                ssh_settings=models.ComputeInstanceSshSettings(ssh_public_access="Disabled"),
            )
        ),
    )
    created = ops.begin_create_or_update(RG, WS, "ci-sdk", body).result(timeout=30)
    assert created.properties.provisioning_state == "Succeeded"
    assert created.properties.properties.state == "Running"
    last = created.properties.properties.last_operation
    assert last.operation_name == "Create" and last.operation_status == "Succeeded"

    # The 2020-08-01 SDK's start/stop/restart expect 200; the emulator answers so for
    # api-versions before 2021-01-01, and the operation still takes its time.
    ops.stop(RG, WS, "ci-sdk")
    assert _state(client, "ci-sdk") == "Stopping"
    _wait_state(client, "ci-sdk", "Stopped")
    ops.start(RG, WS, "ci-sdk")
    _wait_state(client, "ci-sdk", "Running")
    ops.restart(RG, WS, "ci-sdk")
    assert _state(client, "ci-sdk") == "Restarting"
    _wait_state(client, "ci-sdk", "Running")

    # Current api-version: 202 + Azure-AsyncOperation, polled by azure-mgmt-core.
    _lro_post(client, "ci-sdk", "stop")
    assert _state(client, "ci-sdk") == "Stopped"
    _lro_post(client, "ci-sdk", "start")
    assert _state(client, "ci-sdk") == "Running"
    _lro_post(client, "ci-sdk", "restart")
    assert _state(client, "ci-sdk") == "Running"

    ops.begin_delete(RG, WS, "ci-sdk", "Delete").result(timeout=30)
    names = [c.name for c in ops.list_by_workspace(RG, WS)]
    assert "ci-sdk" not in names
    with pytest.raises(HttpResponseError) as e:
        ops.get(RG, WS, "ci-sdk")
    assert e.value.status_code == 404


def test_conflict_and_wrong_state(emulator):
    client = _client(emulator)
    ops = client.machine_learning_compute
    with pytest.raises(HttpResponseError) as e:
        ops.start(RG, WS, "ci-alice")
    assert e.value.status_code == 400
    assert e.value.error.code == "StartComputeInstanceOnlyAllowedInStoppedState"
    ops.start(RG, WS, "ci-bob")
    with pytest.raises(HttpResponseError) as e:
        ops.stop(RG, WS, "ci-bob")
    assert e.value.status_code == 409
    _wait_state(client, "ci-bob", "Running")


def test_read_only_principal_gets_403(emulator):
    cred = _credential(emulator, "22222222-2222-2222-2222-222222222222", "readonly")
    client = _client(emulator, cred)
    assert _state(client, "ci-alice") in ("Running", "JobRunning")
    with pytest.raises(HttpResponseError) as e:
        client.machine_learning_compute.stop(RG, WS, "ci-alice")
    assert e.value.status_code == 403
    assert e.value.error.code == "AuthorizationFailed"
    assert "does not have authorization to perform action" in e.value.error.message


def test_wrong_secret_is_refused(emulator):
    from azure.core.exceptions import ClientAuthenticationError

    cred = _credential(emulator, secret="wrong")
    with pytest.raises(ClientAuthenticationError) as e:
        cred.get_token("https://management.azure.com/.default")
    assert "AADSTS7000215" in str(e.value)
