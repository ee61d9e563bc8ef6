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
    # No heartbeat and no wait_for_ready: on a loaded machine a late heartbeat reads as a
    # dead kernel. The request waits in its queue until the kernel takes it.
    client.start_channels(hb=False)
    client.execute("import time; time.sleep(%s)" % seconds, silent=True)
    # Until the server itself says busy, which is what the agent reads.
    deadline = time.monotonic() + 60
    while True:
        req = urllib.request.Request(
            base.rstrip("/") + "/api/kernels/" + kernel_id,
            headers={"Authorization": "token " + token},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            if json.load(resp)["execution_state"] == "busy":
                break
        if time.monotonic() > deadline:
            sys.exit("the kernel never went busy")
        time.sleep(0.2)
    client.stop_channels()
    print(kernel_id, flush=True)


if __name__ == "__main__":
    main()
