"""Hostile jobs against a real node: none escapes its folders, none is half-stored, and a failure inside the server
is a 500 that a user can report (a request ID) and an operator can read (one traceback in the log)."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeProcess, wait_until
from tests.helpers import submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e

JOBS = "/api/v1/orchestrator/jobs"


def job_count(node: ServeProcess) -> int:
    return len(httpx.get(f"{node.url}{JOBS}", params={"namespace": "*"}).json()["Items"])


@pytest.mark.parametrize("name", ["/", "../../..", "/var/lib"])
def test_a_result_name_cannot_reach_the_host(
    hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path, name: str
) -> None:
    """``wasm run -o /:/outputs`` once mounted the host's / writable into the job: now it is refused, naming why."""
    module = tmp_path / "files.wasm"
    module.write_bytes(wasm("files"))
    sentinel = tmp_path / "sentinel"
    run = hybrid.cli(
        "wasm", "run", str(module), "-o", f"{name}:/outputs", "--", "write", f"/outputs{sentinel}", "x", check=False
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f'result name "{name}" must be one folder name' in run.stderr
    assert not sentinel.exists()
    assert job_count(hybrid) == 0


def test_a_job_may_write_only_its_own_result_folder(hybrid: ServeProcess, wasm: Callable[[str], bytes]) -> None:
    """The ordinary case still works: a named result is a folder of the execution's results."""
    job = wasm_job(wasm("files"), "write", "/outputs/out.txt", "hello", outputs={"outputs": "/outputs"})
    job_id = submit(hybrid.url, job)
    assert wait_for_state(hybrid.url, job_id)["State"]["StateType"] == "Completed"
    hybrid.cli("job", "get", job_id)
    assert (hybrid.data_dir.parent / f"job-{job_id}" / "outputs" / "out.txt").read_text() == "hello"


def test_a_count_above_the_maximum_is_refused_and_the_node_carries_on(hybrid: ServeProcess) -> None:
    """``Count=10**9`` once hung the orchestrator for good; now it is a 400, and the next job runs."""
    job = {"Type": "batch", "Count": 10**9, "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    response = httpx.put(f"{hybrid.url}{JOBS}", json={"Job": job})
    assert response.status_code == 400, response.text
    assert "exceeds the maximum of 1000" in response.json()["Message"]
    job["Count"] = 1
    assert wait_for_state(hybrid.url, submit(hybrid.url, job))["State"]["StateType"] == "Completed"


def test_an_unexpected_failure_is_a_500_with_a_request_id_logged_once_with_its_traceback(
    hybrid: ServeProcess,
) -> None:
    job_id = submit(hybrid.url, {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]})
    wait_for_state(hybrid.url, job_id)
    with sqlite3.connect(hybrid.data_dir / "orchestrator" / "jobs.db") as db:  # a store damaged behind our back
        db.execute("UPDATE jobs SET body = '{\"Tasks\": 5}' WHERE id = ?", (job_id,))

    response = httpx.get(f"{hybrid.url}{JOBS}/{job_id}")
    assert response.status_code == 500
    body = response.json()
    assert (body["Message"], body["Code"]) == ("Internal server error", "InternalError")
    request_id = response.headers["X-Request-Id"]
    assert body["RequestID"] == request_id and "report it with the request ID" in body["Hint"]

    log = wait_until(lambda: request_id in hybrid.log() and hybrid.log(), 10, "the failure to be logged")
    assert log.count(f"unexpected error serving GET {JOBS}/{job_id} (request {request_id})") == 1
    assert log.count("Traceback (most recent call last)") == 1
    assert "Exception in ASGI application" not in log


def test_a_client_that_hangs_up_mid_body_is_not_a_server_error(hybrid: ServeProcess) -> None:
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", hybrid.port)) as connection:
            connection.sendall(
                f"PUT {JOBS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                'Content-Length: 1000\r\n\r\n{"Job":'.encode()
            )
    assert httpx.get(f"{hybrid.url}/api/v1/agent/alive").status_code == 200
    assert " ERR " not in hybrid.log(), hybrid.log()
    assert job_count(hybrid) == 0
