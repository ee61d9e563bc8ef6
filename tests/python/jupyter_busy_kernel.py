"""Starts a kernel on a running jupyter_server and leaves it running a silent cell.

Usage: jupyter_busy_kernel.py BASE_URL TOKEN RUNTIME_DIR SECONDS

Used by tests/it/agent_observe.rs: the kernel reports execution_state "busy" while its
last_activity stays frozen (AGENT.md 1.3). Prints the kernel id. The token comes on the
command line of a test-only process with a throwaway value.
"""

import json
import os
import sys
import time
import urllib.request

import jupyter_client


def main() -> None:
    base, token, runtime_dir, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    req = urllib.request.Request(
        base.rstrip("/") + "/api/kernels",
        data=json.dumps({"name": "python3"}).encode(),
        headers={"Authorization": "token " + token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        kernel_id = json.load(resp)["id"]
    connection = os.path.join(runtime_dir, "kernel-%s.json" % kernel_id)
    deadline = time.monotonic() + 30
    while not os.path.exists(connection):
        if time.monotonic() > deadline:
            sys.exit("no connection file " + connection)
        time.sleep(0.1)
    client = jupyter_client.BlockingKernelClient(connection_file=connection)
    client.load_connection_file()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    msg_id = client.execute("import time; time.sleep(%s)" % seconds, silent=True)
    # Wait until the kernel says it started the cell, so the caller sees "busy".
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=30)
        if (
            msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "busy"
            and msg["parent_header"].get("msg_id") == msg_id
        ):
            break
    client.stop_channels()
    print(kernel_id, flush=True)


if __name__ == "__main__":
    main()
