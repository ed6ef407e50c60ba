"""GPUs given to containers, seen through the Docker API: what the executor asks the engine for (recorded on the
way to it: Podman's inspection leaves out the device requests it ignores), and what the created container has."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import docker
from bacalhau.compute.executors import gpu_devices
from bacalhau.compute.executors.base import ExecutorError
from bacalhau.compute.executors.docker import DockerExecutor, DockerParams
from bacalhau.models.resources import GPU, Resources
from tests.docker.conftest import containers_labelled
from tests.docker.recording_proxy import RecordingProxy
from tests.docker.test_docker_executor import request, run


@pytest.fixture
def proxy(docker_host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    recorder = RecordingProxy(docker_host, tmp_path / "docker.sock").start()
    monkeypatch.setenv("DOCKER_HOST", recorder.url)
    yield recorder
    recorder.stop()


@pytest.fixture
def executor(engine: docker.DockerClient) -> DockerExecutor:
    return DockerExecutor(f"n-gpu-test-{time.monotonic_ns()}")


def t4(index: int) -> GPU:
    return GPU(index=index, name="Tesla T4", vendor="NVIDIA", memory=15360)


async def test_nvidia_gpus_are_requested_by_index_and_an_engine_that_ignores_that_fails_the_run(
    proxy: RecordingProxy, executor: DockerExecutor, engine: docker.DockerClient, tmp_path: Path
) -> None:
    req = request(tmp_path, "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES", resources=Resources(gpu=1, gpus=[t4(1)]))
    started = time.monotonic()
    with pytest.raises(ExecutorError, match="did not apply the request for NVIDIA GPUs 1"):
        await asyncio.wait_for(run(executor, req), 60)
    assert time.monotonic() - started < 30  # a clear failure, not a hang
    [created] = proxy.creates()
    [device_request] = created["HostConfig"]["DeviceRequests"]
    assert device_request["Driver"] == "nvidia"
    assert device_request["DeviceIDs"] == ["1"]
    assert device_request["Capabilities"] == [["gpu"]]
    assert "NVIDIA_VISIBLE_DEVICES=1" in created["Env"] and "CUDA_VISIBLE_DEVICES=0" in created["Env"]
    assert containers_labelled(engine, f"bacalhau-executor={executor.node_id}") == []  # removed at once


async def test_a_job_without_gpus_asks_for_none(
    proxy: RecordingProxy, executor: DockerExecutor, tmp_path: Path
) -> None:
    req = request(tmp_path, "true")
    assert (await run(executor, req)).exit_code == 0
    [created] = proxy.creates()
    assert not created["HostConfig"].get("DeviceRequests")
    assert not any(e.startswith(("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")) for e in created.get("Env") or [])


def test_intel_gpus_are_their_dri_nodes_in_the_created_container(
    executor: DockerExecutor, engine: docker.DockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created, not started, and inspected: the engine took the GPU's card and render nodes (stood in for by
    /dev/null and /dev/zero, linked by PCI address as udev links the real ones)."""
    dev = tmp_path / "dev"
    by_path = dev / "dri" / "by-path"
    by_path.mkdir(parents=True)
    (by_path / "pci-0000:4d:00.0-card").symlink_to("/dev/null")
    (by_path / "pci-0000:4d:00.0-render").symlink_to("/dev/zero")
    monkeypatch.setattr(gpu_devices, "DEV", dev)
    intel = GPU(index=0, name="Intel(R) Data Center GPU Flex 170", vendor="Intel", pci_address="0000:4d:00.0")
    req = request(tmp_path, "true", resources=Resources(gpu=1, gpus=[intel]))
    container = executor._create(req, DockerParams(req.engine))
    try:
        devices = engine.api.inspect_container(container.id)["HostConfig"]["Devices"]
        assert {(d["PathOnHost"], d["PathInContainer"]) for d in devices} == {
            ("/dev/null", "/dev/null"),
            ("/dev/zero", "/dev/zero"),
        }
        assert not engine.api.inspect_container(container.id)["HostConfig"].get("DeviceRequests")
    finally:
        container.remove(force=True)
