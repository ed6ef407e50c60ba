"""Orchestrators that outlive a machine: three ``serve --orchestrator`` processes sharing one PostgreSQL store, their
NATS servers clustered, and two compute nodes that know all three.

Any orchestrator answers the API, one leads; when the leader is killed another takes over, and every job an
orchestrator acknowledged completes, exactly once. A restarted orchestrator rejoins; a database that goes away for a
moment deposes the leader without any job placed twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bacalhau.models.state import ExecutionStateType
from bacalhau.transport.natsserver import free_port
from tests.conftest import ServeProcess, wait_until
from tests.e2e.cluster import FAST_COMPUTE, FAST_ORCHESTRATOR, settings
from tests.e2e.test_cluster import noop_job
from tests.helpers import executions, submit, wait_for_state
from tests.postgres import PostgresServer

pytestmark = pytest.mark.e2e

LOCAL = "127.0.0.1"
ORCHESTRATORS = ("o1", "o2", "o3")
COMPUTES = ("c1", "c2")


class HaCluster:
    """The processes, each started and stopped as a machine would be."""

    def __init__(self, root: Path, store_url: str) -> None:
        self.root = root
        self.store_url = store_url
        self.nats = {name: free_port(LOCAL) for name in ORCHESTRATORS}
        self.routes = {name: free_port(LOCAL) for name in ORCHESTRATORS}
        self.orchestrators: dict[str, ServeProcess] = {}
        self.computes: dict[str, ServeProcess] = {}

    def orchestrator_process(self, name: str) -> ServeProcess:
        peers = ",".join(f"nats://{LOCAL}:{self.routes[other]}" for other in ORCHESTRATORS if other != name)
        node = ServeProcess(self.root / name, "--orchestrator", "--name", name)
        node.config = [
            *FAST_ORCHESTRATOR,
            *settings(
                {
                    "Orchestrator.Host": LOCAL,
                    "Orchestrator.Port": self.nats[name],
                    "Orchestrator.JobStore.Type": "postgres",
                    "Orchestrator.JobStore.URL": self.store_url,
                    "Orchestrator.Cluster.Name": "ha",
                    "Orchestrator.Cluster.Host": LOCAL,
                    "Orchestrator.Cluster.Port": self.routes[name],
                    "Orchestrator.Cluster.Peers": peers,
                }
            ),
        ]
        self.orchestrators[name] = node
        return node

    def start(self) -> None:
        launched = [self.orchestrator_process(name).launch() for name in ORCHESTRATORS]
        for node in launched:
            node.wait_ready()
        servers = ",".join(f"nats://{LOCAL}:{self.nats[name]}" for name in ORCHESTRATORS)
        for name in COMPUTES:
            node = ServeProcess(self.root / name, "--compute", "--name", name, "--orchestrators", servers)
            node.config = [*FAST_COMPUTE, "-c", "Compute.AllocatedCapacity.CPU=2"]
            self.computes[name] = node.launch()
        for node in self.computes.values():
            node.wait_ready()
        for name in COMPUTES:
            wait_until(lambda name=name: self.node_status(self.any_url(), name) == "CONNECTED", 30, f"{name} joins")

    def stop(self) -> None:
        for node in [*self.computes.values(), *self.orchestrators.values()]:
            node.stop()

    def urls(self) -> dict[str, str]:
        return {
            name: node.url for name, node in self.orchestrators.items() if node.process and node.process.poll() is None
        }

    def any_url(self) -> str:
        return next(iter(self.urls().values()))

    @staticmethod
    def node_status(url: str, name: str) -> str:
        nodes = httpx.get(f"{url}/api/v1/orchestrator/nodes", timeout=10).json()["Nodes"]
        return next((node["Connection"] for node in nodes if node["Info"]["NodeID"] == name), "")

    @staticmethod
    def leadership(url: str) -> dict[str, Any]:
        debug = httpx.get(f"{url}/api/v1/agent/debug", timeout=10).json()
        result: dict[str, Any] = debug["Orchestrator"]["Leadership"]
        return result

    def leader(self, timeout: float = 30) -> str:
        def found() -> str | None:
            leading = []
            for name, url in self.urls().items():
                try:
                    if self.leadership(url)["Leading"]:
                        leading.append(name)
                except httpx.HTTPError:
                    continue
            return leading[0] if len(leading) == 1 else None

        name: str = wait_until(found, timeout, "exactly one leader")
        return name


@pytest.fixture
def ha(tmp_path: Path, postgres_url: str) -> Iterator[HaCluster]:
    cluster = HaCluster(tmp_path, postgres_url)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def completed_once(url: str, job_id: str) -> None:
    """The job completed, and exactly one of its executions ran to completion (none was placed twice)."""
    assert wait_for_state(url, job_id, timeout=60)["State"]["StateType"] == "Completed"
    states = [execution["ComputeState"]["StateType"] for execution in executions(url, job_id)]
    assert states.count(ExecutionStateType.COMPLETED) == 1, states


def listing(url: str, what: str) -> list[tuple[str, ...]]:
    """What every orchestrator must say alike: the jobs (ID, state, version) or the nodes (ID, approval, status)."""
    if what == "jobs":
        body = httpx.get(f"{url}/api/v1/orchestrator/jobs", params={"limit": 1000}, timeout=10).json()
        return sorted((job["ID"], job["State"]["StateType"], str(job["Version"])) for job in body["Items"])
    body = httpx.get(f"{url}/api/v1/orchestrator/nodes", params={"limit": 1000}, timeout=10).json()
    return sorted(
        (n["Info"]["NodeID"], n["Membership"], n["Connection"], _free(n["Info"].get("ComputeNodeInfo")))
        for n in body["Nodes"]
    )


def _free(compute: dict[str, Any] | None) -> str:
    """The free capacity ``node list`` shows (what heartbeats change)."""
    return "" if not compute else str(sorted((compute.get("AvailableCapacity") or {}).items()))


def test_any_orchestrator_takes_jobs_and_all_of_them_say_the_same(ha: HaCluster) -> None:
    leader = ha.leader()
    urls = ha.urls()
    job_ids = [submit(url, noop_job()) for url in urls.values()]  # one through each, the leader's followers included
    for job_id in job_ids:
        for url in urls.values():
            completed_once(url, job_id)
    for what in ("jobs", "nodes"):  # alike once the last heartbeats are in
        wait_until(lambda what=what: len({tuple(listing(url, what)) for url in urls.values()}) == 1, 10, what)
    views = [ha.leadership(url) for url in urls.values()]
    assert {(view["LeaderID"], view["Term"]) for view in views} == {(leader, 1)}
    metrics = httpx.get(f"{urls[leader]}/metrics", timeout=10).text
    assert "bacalhau_orchestrator_leader 1.0" in metrics and "bacalhau_orchestrator_leader_term 1.0" in metrics


def test_killing_the_leader_during_a_burst_loses_no_job_and_runs_none_twice(ha: HaCluster) -> None:
    old = ha.leader()
    urls = ha.urls()
    acknowledged: list[tuple[str, str]] = []
    stop = threading.Event()

    def burst(name: str, url: str) -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.put(f"{url}/api/v1/orchestrator/jobs", json={"Job": noop_job()})
                except httpx.HTTPError:
                    continue  # the killed one refuses: nothing acknowledged, nothing owed
                if response.status_code == 200:
                    acknowledged.append((name, response.json()["JobID"]))

    threads = [threading.Thread(target=burst, args=item) for item in urls.items()]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 30, 30, "a burst of submissions")
        killed = ha.orchestrators[old]
        assert killed.process is not None
        os.killpg(killed.process.pid, signal.SIGKILL)  # the machine is gone: the process and its NATS server
        killed_at = time.monotonic()
        killed.process.wait(10)
        new = ha.leader()
        took_over = time.monotonic() - killed_at
        wait_until(lambda: len(acknowledged) >= 90, 60, "submissions after the failover")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert new != old
    survivor = ha.urls()[new]
    for _, job_id in acknowledged:
        completed_once(survivor, job_id)
    wait_until(lambda: ha.node_status(survivor, old) == "DISCONNECTED", 20, f"{old} listed as gone")
    first_done = time.monotonic() - killed_at
    print(
        f"failover: new leader after {took_over:.2f}s; {len(acknowledged)} jobs acknowledged, all completed once "
        f"({first_done:.1f}s after the kill)"
    )

    # The killed orchestrator comes back as a follower and says what the others say.
    restarted = ha.orchestrator_process(old).start()
    assert not ha.leadership(restarted.url)["Leading"]
    assert ha.leadership(restarted.url)["LeaderID"] == new
    assert listing(restarted.url, "jobs") == listing(survivor, "jobs")
    wait_until(lambda: ha.node_status(survivor, old) == "CONNECTED", 20, f"{old} listed as back")


def test_a_database_gone_for_a_moment_deposes_the_leader_without_placing_twice(
    ha: HaCluster, postgres_server: PostgresServer
) -> None:
    url = ha.urls()[ha.leader()]
    before = [submit(url, noop_job()) for _ in range(10)]
    postgres_server.stop()
    for address in ha.urls().values():  # every API answers, with the original's error body
        response = httpx.put(f"{address}/api/v1/orchestrator/jobs", json={"Job": noop_job()}, timeout=20)
        assert response.status_code == 503, response.text
        assert response.json()["Code"] == "DatastoreFailure"
        assert httpx.get(f"{address}/api/v1/orchestrator/jobs", timeout=20).status_code == 503
        assert "bacalhau_orchestrator_leader " in httpx.get(f"{address}/metrics", timeout=20).text
    wait_until(
        lambda: not any(ha.leadership(address)["Leading"] for address in ha.urls().values()), 30, "nobody to lead"
    )
    postgres_server.start()
    leader = ha.leader()
    assert ha.leadership(ha.urls()[leader])["Term"] >= 2
    after = [submit(ha.urls()[leader], noop_job()) for _ in range(10)]
    for job_id in before + after:
        completed_once(ha.urls()[leader], job_id)


def test_node_actions_through_a_follower_take_effect_on_the_leader(ha: HaCluster) -> None:
    leader = ha.leader()
    first, second = (url for name, url in ha.urls().items() if name != leader)

    def everywhere(status: tuple[str, str]) -> bool:
        return all(next(n[1:3] for n in listing(url, "nodes") if n[0] == "c2") == status for url in ha.urls().values())

    action = {"NodeID": "c2", "Action": "reject", "Message": "maintenance"}
    assert httpx.post(f"{first}/api/v1/orchestrator/nodes", json=action, timeout=10).status_code == 200
    wait_until(lambda: everywhere(("REJECTED", "DISCONNECTED")), 30, "c2 rejected and cut off, as every one says")
    action["Action"] = "approve"
    assert httpx.post(f"{second}/api/v1/orchestrator/nodes", json=action, timeout=10).status_code == 200
    wait_until(lambda: everywhere(("APPROVED", "CONNECTED")), 30, "c2 back, as every one says")
    completed_once(second, submit(second, noop_job(task={"Resources": {"CPU": "2"}})))  # needs a whole node
