"""The Docker engine against a real Docker-compatible API (Podman): output, exit codes, mounts, env, limits,
networks, timeouts, stops, and no container left behind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import docker
from bacalhau.compute.executors.base import ExecutorError, Mount, RunOutcome, RunRequest
from bacalhau.compute.executors.docker import DockerExecutor, DockerParams
from bacalhau.models.history import Event
from bacalhau.models.resources import Resources
from bacalhau.models.spec import Network, NetworkConfig, Port, ResultPath, SpecConfig
from tests.docker.conftest import IMAGE, containers_labelled


def request(tmp_path: Path, *command: str, **extra: Any) -> RunRequest:
    params: dict[str, Any] = {"Image": IMAGE, "Parameters": list(command), **extra.pop("params", {})}
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    return RunRequest(
        execution_id=f"e-{time.monotonic_ns()}",
        job_id="j-docker",
        engine=SpecConfig(type="docker", params=params),
        results_dir=results,
        work_dir=tmp_path / "work",
        **extra,
    )


async def run(executor: DockerExecutor, req: RunRequest) -> RunOutcome:
    events: list[Event] = []

    async def report(event: Event) -> None:
        events.append(event)

    await executor.prepare(req, report)
    return await executor.run(req)


@pytest.fixture
def executor(engine: docker.DockerClient) -> DockerExecutor:
    """A node name of its own per test, so that what one test leaves cannot be counted by another."""
    return DockerExecutor(f"n-docker-test-{time.monotonic_ns()}")


async def test_output_and_exit_code(executor: DockerExecutor, tmp_path: Path, engine: docker.DockerClient) -> None:
    req = request(tmp_path, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert await run(executor, req) == RunOutcome(exit_code=3)
    assert (req.results_dir / "stdout").read_text() == "out\n"
    assert (req.results_dir / "stderr").read_text() == "err\n"
    assert containers_labelled(engine, f"bacalhau-executor={executor.node_id}") == []


async def test_inputs_outputs_env_and_workdir(executor: DockerExecutor, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("hello")
    script = 'cat /data/in.txt > /outputs/copy.txt; echo "$GREETING" > /outputs/env.txt; pwd; touch /data/x || echo ro'
    req = request(
        tmp_path, "sh", "-c", script,
        params={"WorkingDirectory": "/tmp", "EnvironmentVariables": ["GREETING=hi"]},
        inputs=[Mount(data, "/data")],
        outputs=[ResultPath(name="outputs", path="/outputs")],
        env={"BACALHAU_JOB_ID": "j-docker"},
    )  # fmt: skip
    assert (await run(executor, req)).exit_code == 0
    assert (req.results_dir / "outputs" / "copy.txt").read_text() == "hello"
    assert (req.results_dir / "outputs" / "env.txt").read_text() == "hi\n"
    assert (req.results_dir / "stdout").read_text().splitlines()[0] == "/tmp"
    assert "ro" in (req.results_dir / "stdout").read_text()
    assert not (data / "x").exists()


async def test_a_read_write_input_can_be_written(executor: DockerExecutor, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    req = request(tmp_path, "sh", "-c", "echo written > /data/new.txt", inputs=[Mount(data, "/data", read_write=True)])
    assert (await run(executor, req)).exit_code == 0
    assert (data / "new.txt").read_text() == "written\n"


async def test_memory_limit_is_enforced(executor: DockerExecutor, tmp_path: Path) -> None:
    req = request(tmp_path, "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1",
                  resources=Resources(memory=32 * 1024 * 1024))  # fmt: skip
    outcome = await run(executor, req)
    assert outcome.error == "memory limit exceeded"


@pytest.mark.parametrize(("network", "expect"), [(Network.NONE, "lo"), (Network.HOST, "eth")])
async def test_network_modes(executor: DockerExecutor, tmp_path: Path, network: Network, expect: str) -> None:
    req = request(tmp_path, "sh", "-c", "ls /sys/class/net", network=NetworkConfig(type=network))
    assert (await run(executor, req)).exit_code == 0
    interfaces = (req.results_dir / "stdout").read_text().split()
    if network == Network.NONE:
        assert interfaces == ["lo"]
    else:
        assert len(interfaces) > 1


@pytest.mark.parametrize("poll", [0.05, 0.001], ids=["while-it-runs", "as-the-engine-creates-it"])
async def test_cancelling_stops_and_removes_the_container(
    executor: DockerExecutor, tmp_path: Path, engine: docker.DockerClient, poll: float
) -> None:
    """Whenever the cancel lands. Polled every millisecond, it follows the engine's creation of the container so
    closely that the executor has not had the engine's answer yet."""
    req = request(tmp_path, "sleep", "600")
    task = asyncio.ensure_future(run(executor, req))
    label = f"bacalhau-executionID={req.execution_id}"
    for _ in range(int(10 / poll)):
        if containers_labelled(engine, label):
            break
        await asyncio.sleep(poll)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 20
    assert containers_labelled(engine, label) == []


async def test_a_missing_image_is_a_clear_error(executor: DockerExecutor, tmp_path: Path) -> None:
    req = request(tmp_path, "true", params={"Image": "localhost/no-such-image:1"})
    with pytest.raises(ExecutorError, match=r"could not pull image localhost/no-such-image:1|not found"):
        await run(executor, req)


def test_parameters_are_validated(executor: DockerExecutor) -> None:
    none = NetworkConfig()
    assert executor.validate(SpecConfig(type="docker", params={}), none) == ["docker engine requires Image"]
    problems = executor.validate(
        SpecConfig(
            type="docker", params={"Image": "x", "WorkingDirectory": "rel", "EnvironmentVariables": ["BACALHAU_X=1"]}
        ),
        none,
    )
    assert len(problems) == 2


@pytest.mark.parametrize("domains", [[], ["example.com"]])
def test_an_http_network_is_refused_rather_than_run_open(executor: DockerExecutor, domains: list[str]) -> None:
    """Network type HTTP asks for outbound HTTP to listed domains only; this engine cannot enforce that, and must
    not silently give the container an unrestricted bridge instead."""
    network = NetworkConfig(type=Network.HTTP, domains=domains)
    [problem] = executor.validate(SpecConfig(type="docker", params={"Image": "x"}), network)
    assert problem.startswith("network type HTTP (outbound HTTP to the job's Domains only) is not enforced")
    for other in (Network.NONE, Network.FULL, Network.HOST, Network.BRIDGE):
        assert executor.validate(SpecConfig(type="docker", params={"Image": "x"}), NetworkConfig(type=other)) == []


async def test_run_refuses_an_http_network_too(executor: DockerExecutor, tmp_path: Path) -> None:
    """Whoever sent the run request: the container is never created."""
    req = request(tmp_path, "true")
    req.network = NetworkConfig(type=Network.HTTP, domains=["example.com"])
    with pytest.raises(ExecutorError, match="network type HTTP"):
        await run(executor, req)


def test_leftover_containers_of_this_node_are_removed(executor: DockerExecutor, engine: docker.DockerClient) -> None:
    engine.containers.create(IMAGE, ["true"], labels={"bacalhau-executor": executor.node_id})
    assert executor.remove_leftovers() == 1
    assert containers_labelled(engine, f"bacalhau-executor={executor.node_id}") == []


def test_published_ports_are_bound_on_a_bridge_network(executor: DockerExecutor, tmp_path: Path) -> None:
    """The container as the engine made it: each Target published on its host port, at HostNetwork."""
    ports = [Port(name="WEB", static=20001, target=8080), Port(name="API", static=20002, host_network="127.0.0.1")]
    req = request(tmp_path, "true", network=NetworkConfig(type=Network.BRIDGE, ports=ports))
    container = executor._create(req, DockerParams(req.engine))
    try:
        bindings = container.attrs["HostConfig"]["PortBindings"]
        assert {key: [(b["HostIp"], b["HostPort"]) for b in value] for key, value in bindings.items()} == {
            "8080/tcp": [("", "20001")],  # every interface
            "20002/tcp": [("127.0.0.1", "20002")],
        }
        assert container.attrs["HostConfig"]["NetworkMode"] == "bridge"
    finally:
        container.remove(force=True)
    host = request(tmp_path, "true", network=NetworkConfig(type=Network.HOST, ports=ports))
    container = executor._create(host, DockerParams(host.engine))
    try:
        assert not container.attrs["HostConfig"].get("PortBindings")
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    finally:
        container.remove(force=True)
