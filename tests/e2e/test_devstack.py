"""``bacalhau devstack``: one command, an orchestrator and N compute nodes on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.helpers import submit, wait_for_state

pytestmark = pytest.mark.e2e


@pytest.fixture
def devstack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    log = tmp_path / "devstack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bacalhau", "devstack", "--computes", "2", "--stack-repo", str(tmp_path / "stack")],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
        )  # fmt: skip
    yield process, log
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_devstack_runs_an_orchestrator_and_compute_nodes(devstack: tuple[subprocess.Popen[str], Path]) -> None:
    process, log = devstack
    wait_until(lambda: "Devstack is ready!" in log.read_text(), 60, "the devstack to start")
    port = log.read_text().split("export BACALHAU_API_PORT=")[1].split()[0]
    url = f"http://127.0.0.1:{port}"
    nodes = httpx.get(f"{url}/api/v1/orchestrator/nodes").json()["Nodes"]
    assert sorted(n["Info"]["NodeID"] for n in nodes) == ["node-0", "node-1", "node-2"]
    assert all(n["Info"]["Labels"]["env"] == "devstack" for n in nodes)

    job = {"Type": "ops", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    job_id = submit(url, job)
    assert wait_for_state(url, job_id)["State"]["StateType"] == "Completed"
    executions = httpx.get(f"{url}/api/v1/orchestrator/jobs/{job_id}/executions").json()["Items"]
    assert sorted(e["NodeID"] for e in executions) == ["node-1", "node-2"]
    # Each node has its own metrics registry, though the nodes share a process: the orchestrator shows its jobs and
    # none of the compute nodes' metrics.
    metrics = httpx.get(f"{url}/metrics").text
    assert 'bacalhau_jobs_completed_total{type="ops"} 1.0' in metrics
    assert "bacalhau_compute_" not in metrics

    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(30) == 0
    assert "Shutting down devstack" in log.read_text()
