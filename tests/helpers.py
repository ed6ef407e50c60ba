"""Small helpers for tests that drive a node over HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from bacalhau.lib.links import KEY_FILE, Grant, Purpose, node_key, sign, with_grant
from tests.conftest import wait_until

TERMINAL = ("Completed", "Failed", "Stopped")


def data_url(content: bytes, media_type: str = "application/octet-stream") -> str:
    return f"data:{media_type};base64," + base64.b64encode(content).decode()


def wasm_job(
    module: bytes,
    *parameters: str,
    inputs: dict[str, bytes] | None = None,
    outputs: dict[str, str] | None = None,
    publisher: str = "local",
    timeouts: dict[str, int] | None = None,
    job_type: str = "batch",
    **job_fields: Any,
) -> dict[str, Any]:
    """A WebAssembly job whose module (and any files) travel inline; ``outputs`` maps result names to paths."""
    sources = [{"Target": "/app/main.wasm", "Source": {"Type": "inline", "Params": {"URL": data_url(module)}}}]
    for target, content in (inputs or {}).items():
        sources.append({"Target": target, "Source": {"Type": "inline", "Params": {"URL": data_url(content)}}})
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {"EntryModule": "/app/main.wasm", "Parameters": list(parameters)}},
        "InputSources": sources,
    }
    if publisher:
        task["Publisher"] = {"Type": publisher}
    if outputs:
        task["ResultPaths"] = [{"Name": name, "Path": path} for name, path in outputs.items()]
    if timeouts:
        task["Timeouts"] = timeouts
    return {"Type": job_type, "Count": 1, "Tasks": [task], **job_fields}


def submit(base_url: str, job: dict[str, Any]) -> str:
    response = httpx.put(f"{base_url}/api/v1/orchestrator/jobs", json={"Job": job}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["JobID"])


def get_job(base_url: str, job_id: str, include: str = "") -> dict[str, Any]:
    response = httpx.get(f"{base_url}/api/v1/orchestrator/jobs/{job_id}", params={"include": include}, timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_for_state(
    base_url: str, job_id: str, states: tuple[str, ...] = TERMINAL, timeout: float = 30
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = get_job(base_url, job_id)["Job"]
        return job if job["State"]["StateType"] in states else None

    result: dict[str, Any] = wait_until(reached, timeout, f"job {job_id} to reach {states}")
    return result


def executions(base_url: str, job_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/api/v1/orchestrator/jobs/{job_id}/executions", timeout=10)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["Items"]
    return items


def logs_socket(base_url: str, job_id: str, **params: str) -> ClientConnection:
    """A job's logs over a WebSocket (``follow="true"`` to follow a running one)."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return connect(base_url.replace("http", "ws", 1) + f"/api/v1/orchestrator/jobs/{job_id}/logs?{query}")


def frames(socket: ClientConnection) -> list[dict[str, object]]:
    """Every frame until the server closes the stream, which it must do normally."""
    received = []
    try:
        while True:
            received.append(json.loads(socket.recv(timeout=30)))
    except ConnectionClosedOK:
        pass
    assert socket.close_code == 1000
    return received


def link_key(orchestrator_dir: Path, node_id: str) -> bytes:
    """The key a compute node checks its links with, derived as the orchestrator derives it from the master key in
    its data dir: what lets a test sign links of its own (expired ones, say)."""
    return node_key((orchestrator_dir / "orchestrator" / KEY_FILE).read_bytes(), node_id)


def signed_url(url: str, key: bytes, execution_id: str, expires: int) -> str:
    """An unsigned results URL of a local publisher, signed by the test for ``execution_id`` until ``expires``."""
    return with_grant(url, Grant(expires, sign(key, execution_id, Purpose.RESULTS, expires)))
