"""A real cluster: an orchestrator process and compute processes over NATS, and what real clusters suffer."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from bacalhau.transport.natsserver import free_port
from tests.certs import TestCA
from tests.conftest import wait_until
from tests.e2e.cluster import Cluster, orchestrator_tls, settings
from tests.helpers import TERMINAL, executions, get_job, submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e

COMPLETED, FAILED, CANCELLED = 9, 10, 11


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    stack = Cluster(tmp_path)
    yield stack
    stack.stop()


def noop_job(job_type: str = "batch", **fields: Any) -> dict[str, Any]:
    task = {"Name": "main", "Engine": {"Type": "noop"}, "Resources": {"CPU": "500m", "Memory": "100mb"}}
    task.update(fields.pop("task", {}))
    return {"Type": job_type, "Tasks": [task], **fields}


def sleep_job(wasm: Callable[[str], bytes], millis: int, **fields: Any) -> dict[str, Any]:
    job = wasm_job(wasm("sleep"), str(millis), **fields)
    job["Tasks"][0]["Resources"] = {"CPU": "500m", "Memory": "100mb"}
    return job


def nodes_of(url: str, job_id: str) -> list[str]:
    return sorted(e["NodeID"] for e in executions(url, job_id))


def test_node_list_shows_compute_nodes_with_labels_and_capacity(cluster: Cluster) -> None:
    cluster.start_orchestrator()
    cluster.add_compute("eu-1", labels="zone=eu,gpu=false")
    node = cluster.nodes()["eu-1"]
    assert node["Info"]["NodeType"] == "Compute"
    assert node["Info"]["Labels"]["zone"] == "eu"
    assert node["Membership"] == "APPROVED" and node["Connection"] == "CONNECTED"
    assert node["Info"]["ComputeNodeInfo"]["MaxCapacity"]["CPU"] == 1
    listed = cluster.orchestrator.cli("node", "list")  # type: ignore[union-attr]
    assert "eu-1" in listed.stdout and "zone=eu" in listed.stdout and "CONNECTED" in listed.stdout


def test_batch_count_spreads_partitions_over_nodes(cluster: Cluster) -> None:
    cluster.start_orchestrator()
    cluster.add_computes("a", "b", "c")
    job_id = submit(cluster.url, noop_job(Count=2))
    assert wait_for_state(cluster.url, job_id)["State"]["StateType"] == "Completed"
    placed = executions(cluster.url, job_id)
    assert len(placed) == 2 and len({e["NodeID"] for e in placed}) == 2
    assert sorted(e.get("PartitionIndex", 0) for e in placed) == [0, 1]


def test_constraints_and_resources_decide_placement(cluster: Cluster) -> None:
    cluster.start_orchestrator()
    cluster.add_compute("us-small", labels="zone=us", cpu="1")
    cluster.add_compute("eu-small", labels="zone=eu", cpu="1")
    cluster.add_compute("eu-big", labels="zone=eu", cpu="4")
    constraint = {"Constraints": [{"Key": "zone", "Operator": "=", "Values": ["eu"]}]}
    eu = submit(cluster.url, noop_job(**constraint))
    big = submit(cluster.url, noop_job(task={"Resources": {"CPU": "2"}}))
    wait_for_state(cluster.url, eu)
    wait_for_state(cluster.url, big)
    assert nodes_of(cluster.url, eu)[0].startswith("eu-")
    assert nodes_of(cluster.url, big) == ["eu-big"]


def test_ops_runs_on_every_matching_node(cluster: Cluster) -> None:
    cluster.start_orchestrator()
    for name, zone in (("a", "eu"), ("b", "eu"), ("c", "us")):
        cluster.add_compute(name, labels=f"zone={zone}")
    job_id = submit(cluster.url, noop_job("ops", Constraints=[{"Key": "zone", "Operator": "=", "Values": ["eu"]}]))
    assert wait_for_state(cluster.url, job_id)["State"]["StateType"] == "Completed"
    assert nodes_of(cluster.url, job_id) == ["a", "b"]
    assert all(e["ComputeState"]["StateType"] == COMPLETED for e in executions(cluster.url, job_id))


def test_daemon_runs_everywhere_including_nodes_that_join_later(cluster: Cluster, wasm: Callable[[str], bytes]) -> None:
    cluster.start_orchestrator()
    cluster.add_compute("a")
    job_id = submit(cluster.url, sleep_job(wasm, 600_000, job_type="daemon", Count=0))
    wait_for_state(cluster.url, job_id, ("Running",))
    cluster.add_compute("b")
    wait_until(lambda: nodes_of(cluster.url, job_id) == ["a", "b"], 20, "the daemon to start on the new node")
    httpx.delete(f"{cluster.url}/api/v1/orchestrator/jobs/{job_id}", params={"reason": "done"})
    wait_until(
        lambda: all(e["ComputeState"]["StateType"] == CANCELLED for e in executions(cluster.url, job_id)),
        20, "daemon executions to be cancelled",
    )  # fmt: skip
    for execution in executions(cluster.url, job_id):
        node, execution_id = execution["NodeID"], execution["ID"]
        wait_until(lambda: cluster.local_execution_state(node, execution_id) == CANCELLED, 10, "node to cancel")  # noqa: B023


def test_service_keeps_count_executions_running_until_stopped(cluster: Cluster, wasm: Callable[[str], bytes]) -> None:
    cluster.start_orchestrator()
    cluster.add_computes("a", "b", "c")
    job_id = submit(cluster.url, sleep_job(wasm, 600_000, job_type="service", Count=2))
    wait_for_state(cluster.url, job_id, ("Running",))
    wait_until(
        lambda: sum(e["ComputeState"]["StateType"] == 6 for e in executions(cluster.url, job_id)) == 2,
        20, "two running executions",
    )  # fmt: skip
    httpx.delete(f"{cluster.url}/api/v1/orchestrator/jobs/{job_id}", params={"reason": "done"})
    assert wait_for_state(cluster.url, job_id)["State"]["StateType"] == "Stopped"


def test_a_job_too_big_for_every_node_waits_queued_until_a_bigger_node_joins(cluster: Cluster) -> None:
    cluster.start_orchestrator()
    cluster.add_compute("small", cpu="1")
    job_id = submit(cluster.url, noop_job(task={"Resources": {"CPU": "3"}, "Timeouts": {"QueueTimeout": 120}}))
    queued = wait_for_state(cluster.url, job_id, ("Queued",))
    assert "job requires more CPU" in queued["State"]["Message"]
    cluster.add_compute("big", cpu="4")
    assert wait_for_state(cluster.url, job_id)["State"]["StateType"] == "Completed"
    assert nodes_of(cluster.url, job_id) == ["big"]


def test_a_queue_timeout_fails_the_job_with_the_reason(cluster: Cluster) -> None:
    cluster.start_orchestrator()
    cluster.add_compute("small", cpu="1")
    job_id = submit(cluster.url, noop_job(task={"Resources": {"CPU": "3"}, "Timeouts": {"QueueTimeout": 2}}))
    failed = wait_for_state(cluster.url, job_id, timeout=30)
    assert failed["State"]["StateType"] == "Failed"
    assert "not enough nodes to run job" in failed["State"]["Message"]
    assert "job requires more CPU (3) than the maximum available (1)" in failed["State"]["Message"]


def test_a_busy_cluster_queues_work_and_drains_it(cluster: Cluster, wasm: Callable[[str], bytes]) -> None:
    cluster.start_orchestrator()
    cluster.add_compute("only", cpu="1")
    job_ids = [submit(cluster.url, sleep_job(wasm, 200)) for _ in range(8)]
    states = [wait_for_state(cluster.url, job_id, timeout=60)["State"]["StateType"] for job_id in job_ids]
    assert states == ["Completed"] * 8


def test_work_on_a_killed_compute_node_completes_elsewhere(cluster: Cluster, wasm: Callable[[str], bytes]) -> None:
    cluster.start_orchestrator()
    cluster.add_compute("doomed", cpu="4")
    cluster.add_compute("spare", cpu="1")
    job_id = submit(cluster.url, sleep_job(wasm, 3000, Constraints=[]))
    wait_until(lambda: any(e["ComputeState"]["StateType"] == 6 for e in executions(cluster.url, job_id)), 20, "run")
    victim = executions(cluster.url, job_id)[0]["NodeID"]
    cluster.computes[victim].kill()
    cluster.wait_for_node(victim, "DISCONNECTED", timeout=10)
    assert wait_for_state(cluster.url, job_id, timeout=30)["State"]["StateType"] == "Completed"
    by_state = {e["NodeID"]: e["ComputeState"] for e in executions(cluster.url, job_id)}
    assert by_state[victim]["StateType"] == FAILED
    assert "node has disappeared" in by_state[victim]["Message"]
    survivor = next(name for name in by_state if name != victim)
    assert by_state[survivor]["StateType"] == COMPLETED


def test_a_paused_node_converges_after_it_comes_back(cluster: Cluster, wasm: Callable[[str], bytes]) -> None:
    cluster.start_orchestrator()
    node = cluster.add_compute("paused", cpu="2")
    job = sleep_job(wasm, 600_000)
    job["Tasks"][0]["Timeouts"] = {"QueueTimeout": 600}  # with its only node gone, the job waits for another
    job_id = submit(cluster.url, job)
    wait_until(lambda: any(e["ComputeState"]["StateType"] == 6 for e in executions(cluster.url, job_id)), 20, "run")
    [execution] = executions(cluster.url, job_id)
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGSTOP)
    try:
        cluster.wait_for_node("paused", "DISCONNECTED", timeout=10)
        httpx.delete(f"{cluster.url}/api/v1/orchestrator/jobs/{job_id}", params={"reason": "stop while away"})
        assert wait_for_state(cluster.url, job_id)["State"]["StateType"] == "Stopped"
    finally:
        os.kill(node.process.pid, signal.SIGCONT)
    cluster.wait_for_node("paused", "CONNECTED", timeout=20)
    wait_until(
        lambda: cluster.local_execution_state("paused", execution["ID"]) == CANCELLED,
        20, "the node to cancel the execution the orchestrator gave up on",
    )  # fmt: skip
    assert get_job(cluster.url, job_id)["Job"]["State"]["StateType"] == "Stopped"


def test_jobs_survive_an_orchestrator_crash(cluster: Cluster, wasm: Callable[[str], bytes]) -> None:
    nats_port = free_port("127.0.0.1")
    orchestrator = cluster.start_orchestrator(nats_port=nats_port)
    cluster.add_computes("a", "b")
    job_ids = [submit(cluster.url, sleep_job(wasm, 700)) for _ in range(10)]
    wait_until(
        lambda: any(get_job(cluster.url, j)["Job"]["State"]["StateType"] == "Running" for j in job_ids), 20, "work"
    )
    orchestrator.kill()
    orchestrator.start()
    states = [wait_for_state(cluster.url, job_id, timeout=90)["State"]["StateType"] for job_id in job_ids]
    assert all(state in TERMINAL for state in states)
    assert states == ["Completed"] * len(job_ids), states
    for job_id in job_ids:
        completed = [e for e in executions(cluster.url, job_id) if e["ComputeState"]["StateType"] == COMPLETED]
        assert len(completed) == 1, f"job {job_id} completed {len(completed)} times"


def test_manual_approval(cluster: Cluster) -> None:
    cluster.start_orchestrator("-c", "Orchestrator.NodeManager.ManualApproval=true")
    cluster.add_compute("newcomer", wait=False)
    node = cluster.wait_for_node("newcomer", "CONNECTED")
    assert node["Membership"] == "PENDING"
    job_id = submit(cluster.url, noop_job(task={"Timeouts": {"QueueTimeout": 60}}))
    assert wait_for_state(cluster.url, job_id, ("Queued",))["State"]["StateType"] == "Queued"
    assert cluster.orchestrator.cli("node", "approve", "newcomer").stdout.strip() == "Ok"  # type: ignore[union-attr]
    assert wait_for_state(cluster.url, job_id)["State"]["StateType"] == "Completed"

    again = cluster.orchestrator.cli("node", "approve", "newcomer", check=False)  # type: ignore[union-attr]
    assert again.returncode == 1 and "already approved" in again.stderr
    assert cluster.orchestrator.cli("node", "reject", "newcomer").stdout.strip() == "Ok"  # type: ignore[union-attr]
    rejected = submit(cluster.url, noop_job(task={"Timeouts": {"QueueTimeout": 2}}))
    assert wait_for_state(cluster.url, rejected)["State"]["StateType"] == "Failed"
    assert executions(cluster.url, rejected) == []


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_node_auth_token(cluster: Cluster, tmp_path: Path, tls: bool) -> None:
    """A wrong token is refused, and said on both sides, whether NATS is in clear or over TLS."""
    token = 's3cret" }\nauthorization { token: "wrong" } \\ $HOME # é'  # must not end or inject nats-server config
    ca = TestCA(tmp_path / "pki")
    server_tls, node_tls = (orchestrator_tls(ca), settings({"Compute.TLS.CACert": ca.cert})) if tls else ((), ())
    orchestrator = cluster.start_orchestrator("-c", f"Orchestrator.Auth.Token={token}", *server_tls)
    assert orchestrator.process is not None
    [nats_server] = [p for p in psutil.Process(orchestrator.process.pid).children() if p.name() == "nats-server"]
    config_file = orchestrator.data_dir / "orchestrator" / "nats-server.conf"
    assert nats_server.cmdline()[1:] == ["-c", str(config_file)]  # ps shows every user the command line
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600

    good = cluster.add_compute("good", "-c", f"Compute.Auth.Token={token}", *node_tls)
    assert good.process is not None
    bad = cluster.add_compute("bad", "-c", "Compute.Auth.Token=wrong", *node_tls, wait=False)
    wait_until(lambda: "the orchestrator refused this node" in bad.log(), 20, "the refused node to say why")
    assert "Compute.Auth.Token" in bad.log()
    assert "bad" not in cluster.nodes()
    assert "wrong or missing node token" in orchestrator.log()
    orchestrator.stop()
    assert not config_file.exists()
