"""Starts a kernel on a running jupyter_server and leaves it running a silent cell.

Usage: jupyter_busy_kernel.py BASE_URL TOKEN RUNTIME_DIR SECONDS

Used by tests/it/agent_observe.rs: the kernel reports execution_state "busy" while its
last_activity stays frozen (AGENT.md 1.3). Prints the kernel id. The token comes on the
command line of a test-only process with a throwaway value.

The cell is sent the way a notebook sends it: over the server's kernel websocket
(`/api/kernels/{id}/channels`). A client talking ZeroMQ to the kernel directly races the
server's own IOPub subscription: the server may miss the kernel's status messages and keep
reporting "starting" (seen with jupyter_server 2.21.1 and ipykernel 7.4.0).
"""

import json
import sys
import time
import urllib.request
import uuid

from tornado import ioloop, websocket


def get(base: str, token: str, path: str):
    req = urllib.request.Request(base + path, headers={"Authorization": "token " + token})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def execute_request(code: str) -> str:
    msg_id = uuid.uuid4().hex
    return json.dumps(
        {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "test",
                "session": uuid.uuid4().hex,
                "version": "5.3",
                "date": "",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "buffers": [],
            "channel": "shell",
        }
    )


async def run(base: str, token: str, seconds: str) -> str:
    req = urllib.request.Request(
        base + "/api/kernels",
        data=json.dumps({"name": "python3"}).encode(),
        headers={"Authorization": "token " + token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        kernel_id = json.load(resp)["id"]
    ws_url = base.replace("http://", "ws://", 1) + "/api/kernels/%s/channels" % kernel_id
    conn = await websocket.websocket_connect(
        websocket.httpclient.HTTPRequest(
            ws_url, headers={"Authorization": "token " + token}, connect_timeout=60
        )
    )
    await conn.write_message(execute_request("import time; time.sleep(%s)" % seconds))
    # Until the server itself says busy, which is what the agent reads.
    deadline = time.monotonic() + 90
    while get(base, token, "/api/kernels/" + kernel_id)["execution_state"] != "busy":
        if time.monotonic() > deadline:
            sys.exit("the kernel never went busy")
        time.sleep(0.2)
    # Leaving the websocket open or closing it does not end the cell.
    conn.close()
    return kernel_id


def main() -> None:
    base, token, _runtime_dir, seconds = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], sys.argv[4]
    kernel_id = ioloop.IOLoop.current().run_sync(lambda: run(base, token, seconds))
    print(kernel_id, flush=True)


if __name__ == "__main__":
    main()
