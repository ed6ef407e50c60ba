"""GPU jobs on a cluster of real processes: an orchestrator, a compute node with two (fake) NVIDIA GPUs and one
without. GPU work lands only where the GPUs are, each execution on its own GPU; work that wants more GPUs than any
node has fails with the reason. The GPU node's engine is reached through a recording proxy, which shows the device
request each container was created with (and holds the creations until both executions are under way, so they
hold their GPUs at the same time). Podman ignores device requests, so the node fails the runs, saying why."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServeProcess, wait_until
from tests.docker.conftest import IMAGE
from tests.docker.recording_proxy import RecordingProxy
from tests.e2e.cluster import FAST_COMPUTE, Cluster
from tests.gpu_tools import fake_nvidia_smi
from tests.helpers import executions, submit, wait_for_state

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gpu-cluster")


@pytest.fixture(scope="module")
def proxy(docker_host: str, root: Path) -> Iterator[RecordingProxy]:
    recorder = RecordingProxy(docker_host, root / "docker.sock", hold_creates=2).start()
    yield recorder
    recorder.stop()


@pytest.fixture(scope="module")
def cluster(root: Path, proxy: RecordingProxy) -> Iterator[Cluster]:
    tmp_path = root
    nodes = Cluster(tmp_path)
    try:
        nodes.start_orchestrator()
        tools = tmp_path / "gpu-tools"
        fake_nvidia_smi(tools)
        gpu_node = ServeProcess(
            tmp_path / "gpu-node",
            *("--compute", "--name", "gpu-node", "--orchestrators", nodes.nats_url),
            env={"PATH": f"{tools}:{os.environ['PATH']}", "DOCKER_HOST": proxy.url},
        )
        gpu_node.config = [*FAST_COMPUTE]
        nodes.computes["gpu-node"] = gpu_node.launch()
        plain = nodes._launch_compute("plain-node", cpu="2")
        for node in (gpu_node, plain):
            node.wait_ready()
        for name in ("gpu-node", "plain-node"):
            nodes.wait_for_node(name, "CONNECTED")
        yield nodes
    finally:
        nodes.stop()


def gpu_job(gpus: int, name: str = "") -> dict[str, Any]:
    return {
        "Name": name or f"gpu-{gpus}",
        "Type": "batch",
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "docker", "Params": {"Image": IMAGE, "Parameters": ["true"]}},
                "Resources": {"CPU": "100m", "Memory": "64Mb", "GPU": str(gpus)},
            }
        ],
    }


def test_the_gpu_node_reports_its_gpus(cluster: Cluster) -> None:
    nodes = cluster.nodes()
    info = nodes["gpu-node"]["Info"]
    maximum = info["ComputeNodeInfo"]["MaxCapacity"]
    assert maximum["GPU"] == 2
    assert maximum["GPUs"] == [
        {"Index": 0, "Name": "Tesla T4", "Vendor": "NVIDIA", "Memory": 15360, "PCIAddress": ""},
        {"Index": 1, "Name": "Tesla T4", "Vendor": "NVIDIA", "Memory": 15360, "PCIAddress": ""},
    ]
    labels = info["Labels"]
    assert labels["GPU-0"] == labels["GPU-1"] == "Tesla-T4"
    assert labels["GPU-0-Memory"] == labels["GPU-1-Memory"] == "15360-MiB"
    plain = nodes["plain-node"]["Info"]
    assert not plain["ComputeNodeInfo"]["MaxCapacity"].get("GPU")
    assert "GPU-0" not in plain["Labels"]


def test_gpu_work_lands_on_the_gpu_node_each_execution_on_its_own_gpu(cluster: Cluster, proxy: RecordingProxy) -> None:
    job_ids = [submit(cluster.url, gpu_job(1, name=f"gpu-{i}")) for i in range(2)]
    runs = []
    for job_id in job_ids:
        job = wait_for_state(cluster.url, job_id, timeout=90)
        assert job["State"]["StateType"] == "Failed", job["State"]  # Podman ignores device requests: not run
        runs += executions(cluster.url, job_id)
    assert {run["NodeID"] for run in runs} == {"gpu-node"}
    assert all("did not apply the request for NVIDIA GPUs" in run["ComputeState"]["Message"] for run in runs)
    first, second = [c for c in proxy.creates() if c["HostConfig"].get("DeviceRequests")][:2]  # held at once
    requested = [c["HostConfig"]["DeviceRequests"][0]["DeviceIDs"] for c in (first, second)]
    assert sorted(requested) == [["0"], ["1"]]
    for created in (first, second):
        [index] = created["HostConfig"]["DeviceRequests"][0]["DeviceIDs"]
        assert f"NVIDIA_VISIBLE_DEVICES={index}" in created["Env"]
    held = [[gpu["Index"] for gpu in run["AllocatedResources"]["Tasks"]["main"]["GPUs"]] for run in runs]
    assert all(gpus in ([0], [1]) for gpus in held)  # the API shows which GPU each execution held


def test_more_gpus_than_any_node_has_fails_with_the_reason(cluster: Cluster) -> None:
    job_id = submit(cluster.url, gpu_job(3))
    job = wait_for_state(cluster.url, job_id, timeout=30)
    assert job["State"]["StateType"] == "Failed"
    assert "more GPUs (3) than the maximum available (2)" in job["State"]["Message"]
    assert executions(cluster.url, job_id) == []


def test_work_without_gpus_still_runs_anywhere(cluster: Cluster) -> None:
    job = gpu_job(0)
    job["Tasks"][0]["Resources"].pop("GPU")
    job_id = submit(cluster.url, job)
    assert wait_for_state(cluster.url, job_id, timeout=60)["State"]["StateType"] == "Completed"
    wait_until(lambda: executions(cluster.url, job_id), 10, "the execution to be listed")
