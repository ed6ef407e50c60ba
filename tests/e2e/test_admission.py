"""Admission control on real processes: an orchestrator and a compute node whose owner refuses networked jobs and
asks a script and an HTTP endpoint (both real, both the owner's) about every job. Refused jobs never run there and
their history says why; the rest run as usual."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import Cluster, settings
from tests.gpu_tools import script
from tests.helpers import executions, submit, wait_for_state

pytestmark = pytest.mark.e2e


class Moderator:
    """The owner's HTTP endpoint: it refuses jobs whose name starts with ``no-http``, and keeps what it was sent."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        moderator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                moderator.seen.append(request)
                refuse = request["Job"]["Name"].startswith("no-http")
                body = json.dumps({"ShouldBid": not refuse, "Reason": "the moderator says no"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/moderate"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def moderator() -> Iterator[Moderator]:
    endpoint = Moderator()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, moderator: Moderator) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("admission")
    probe = script(
        root / "owner",
        "probe",
        'if grep -q \'"Name":"no-exec\'; then echo "the owner\'s script says no" >&2; exit 1; fi; exit 0',
    )
    nodes = Cluster(root)
    try:
        nodes.start_orchestrator()
        nodes.add_compute(
            "strict",
            *settings(
                {
                    "JobAdmissionControl.RejectNetworkedJobs": True,
                    "JobAdmissionControl.ProbeExec": str(probe),
                    "JobAdmissionControl.ProbeHTTP": moderator.url,
                }
            ),
        )
        yield nodes
    finally:
        nodes.stop()


def noop_job(name: str, network: str = "") -> dict[str, Any]:
    task: dict[str, Any] = {"Name": "main", "Engine": {"Type": "noop"}}
    if network:
        task["Network"] = {"Type": network}
    return {"Name": name, "Type": "batch", "Count": 1, "Tasks": [task]}


def history(url: str, job_id: str) -> list[str]:
    response = httpx.get(f"{url}/api/v1/orchestrator/jobs/{job_id}/history", timeout=10)
    return [item["Event"]["Message"] for item in response.json()["Items"]]


def refused(cluster: Cluster, job: dict[str, Any], reason: str) -> None:
    job_id = submit(cluster.url, job)
    assert wait_for_state(cluster.url, job_id)["State"]["StateType"] == "Failed"
    assert any(reason in message for message in history(cluster.url, job_id)), history(cluster.url, job_id)
    runs = executions(cluster.url, job_id)
    assert runs and all(run["ComputeState"]["StateType"] == 4 for run in runs)  # AskForBidRejected: never ran


def test_a_networked_job_never_runs_there_and_the_history_says_why(cluster: Cluster) -> None:
    refused(
        cluster,
        noop_job("networked", network="Full"),
        "rejected bid: this node does not run jobs that require network access",
    )


def test_a_plain_job_still_runs_there(cluster: Cluster, moderator: Moderator) -> None:
    job_id = submit(cluster.url, noop_job("plain"))
    assert wait_for_state(cluster.url, job_id)["State"]["StateType"] == "Completed"
    assert [run["NodeID"] for run in executions(cluster.url, job_id)] == ["strict"]
    assert any(seen["Job"]["ID"] == job_id for seen in moderator.seen)  # the endpoint was asked, with the job


def test_the_owners_script_refuses_a_job(cluster: Cluster) -> None:
    refused(
        cluster,
        noop_job("no-exec-please"),
        "rejected bid: this node does not accept this job: the owner's script says no",
    )


def test_the_owners_endpoint_refuses_a_job(cluster: Cluster) -> None:
    refused(cluster, noop_job("no-http-please"), "rejected bid: the moderator says no")


def test_the_probes_files_stay_the_owners(cluster: Cluster, tmp_path: Path) -> None:
    """A job can put anything in its spec: none of it is run by the shell the owner's command runs in."""
    marker = tmp_path / "pwned"
    job_id = submit(cluster.url, noop_job(f"x$(touch {marker})`touch {marker}`"))
    wait_for_state(cluster.url, job_id)
    assert not marker.exists()
