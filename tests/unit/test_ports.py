"""Published ports: the job spec's rules (the original's words), the compute node's port allocator, what the task is
told, and what the Docker engine is asked to publish."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute import ports
from bacalhau.compute.executors.base import Executor, RunOutcome, RunRequest
from bacalhau.compute.executors.docker import port_options
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.logs import LogStore
from bacalhau.compute.node import ComputeConfig, ComputeNode
from bacalhau.compute.ports import PortAllocator, PortError, is_bindable, port_env
from bacalhau.compute.runner import ExecutionRunner, RunnerConfig
from bacalhau.compute.secrets import EnvResolver
from bacalhau.compute.store import ExecutionStore
from bacalhau.errors import ConfigurationError
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.spec import Network, NetworkConfig, Port
from bacalhau.models.state import ExecutionStateType
from tests.unit.conftest import opened


def make_job(network: dict[str, Any], job_type: str = "service") -> Job:
    job = Job.model_validate(
        {
            "ID": "j-1",
            "Type": job_type,
            "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "x"}}, "Network": network}],
        }
    )
    job.normalize()
    return job


def network_error(network: dict[str, Any]) -> str:
    return "\n".join(make_job(network).validate_submission())


# --- the job spec -------------------------------------------------------------------------------------------------


PREFIX = "task main validation failed: network validation failed: "


@pytest.mark.parametrize(
    ("network", "error"),
    [
        ({"Type": "Bridge", "Ports": [{"Name": "HTTP", "Target": 80}, {"Name": "admin_2", "Static": 8081}]}, ""),
        ({"Type": "Host", "Ports": [{"Name": "WEB", "Static": 20080, "HostNetwork": "127.0.0.1"}]}, ""),
        ({"Type": "Full", "Ports": [{"Name": "WEB"}]}, ""),
        ({"Type": "None", "Ports": [{"Name": "WEB"}]}, "ports can only be set for Host or Bridge network modes"),
        ({"Type": "Default", "Ports": [{"Name": "WEB"}]}, "ports can only be set for Host or Bridge network modes"),
        (
            {"Type": "HTTP", "Domains": ["example.com"], "Ports": [{"Name": "WEB"}]},
            "ports can only be set for Host or Bridge network modes",
        ),
        ({"Type": "Bridge", "Ports": [{"Name": ""}]}, "port mapping name is required"),
        (
            {"Type": "Bridge", "Ports": [{"Name": "1WEB"}]},
            "port name must be a valid environment variable name: "
            "start with letter/underscore and contain only letters, numbers, and underscores",
        ),
        (
            {"Type": "Bridge", "Ports": [{"Name": "WEB\n"}]},
            "port name must be a valid environment variable name: "
            "start with letter/underscore and contain only letters, numbers, and underscores",
        ),
        ({"Type": "Bridge", "Ports": [{"Name": "P" * 238}]}, "port name too long (max 237 characters)"),
        (
            {"Type": "Bridge", "Ports": [{"Name": "WEB", "Static": 80}]},
            "static port 80 is in privileged port range (1-1023)",
        ),
        (
            {"Type": "Bridge", "Ports": [{"Name": "WEB", "Static": 70000}]},
            "static port 70000 is above maximum valid port 65535",
        ),
        ({"Type": "Bridge", "Ports": [{"Name": "WEB", "Target": -1}]}, "invalid target port -1"),
        ({"Type": "Bridge", "Ports": [{"Name": "WEB", "Target": 65536}]}, "invalid target port 65536"),
        (
            {"Type": "Bridge", "Ports": [{"Name": "WEB", "HostNetwork": "localhost"}]},
            "invalid host network IP address: localhost",
        ),
        (
            {"Type": "Bridge", "Ports": [{"Name": "WEB", "HostNetwork": "fe80::1%eth0"}]},
            "invalid host network IP address: fe80::1%eth0",
        ),
        (
            {
                "Type": "Bridge",
                "Ports": [{"Name": "A", "Static": 9000, "Target": 80}, {"Name": "A", "Static": 9000, "Target": 80}],
            },
            'duplicate port mapping name "A"\nduplicate port mapping static port 9000\n'
            "duplicate port mapping target port 80",
        ),
        ({"Type": "Host", "Ports": [{"Name": "A", "Target": 80}]}, "target ports cannot be set for Host network mode"),
        ({"Type": "Full", "Ports": [{"Name": "A", "Target": 80}]}, "target ports cannot be set for Host network mode"),
        (
            {"Type": "Bridge", "Ports": [{"Name": ""}, {"Name": "OK"}, {"Name": "OK"}]},
            'port mapping name is required\nduplicate port mapping name "OK"',
        ),
        ({"Type": "Full", "Domains": ["example.com"]}, "domains can only be set for HTTP network mode"),
    ],
)
def test_the_originals_port_rules(network: dict[str, Any], error: str) -> None:
    assert network_error(network) == (PREFIX + error if error else "")


def test_ports_are_bounded_at_decoding() -> None:
    with pytest.raises(ValueError, match="at most 32"):
        make_job({"Type": "Bridge", "Ports": [{"Name": f"P{i}"} for i in range(33)]})
    with pytest.raises(ValueError, match="HostNetwork"):
        make_job({"Type": "Bridge", "Ports": [{"Name": "P", "HostNetwork": "1" * 65}]})


def test_port_json_as_the_original() -> None:
    port = Port.model_validate({"name": "WEB", "static": 20000})
    assert port.to_wire() == {"Name": "WEB", "Static": 20000}
    network = NetworkConfig(type=Network.BRIDGE, ports=[Port(name="A", static=1, target=2, host_network="::1")])
    assert network.to_wire() == {
        "Type": "Bridge",
        "Ports": [{"Name": "A", "Static": 1, "Target": 2, "HostNetwork": "::1"}],
    }
    assert NetworkConfig(type=Network.NONE).to_wire() == {"Type": "None"}


# --- the allocator ------------------------------------------------------------------------------------------------


def new_process() -> None:
    """What a process starting afresh knows of ports: nothing but its store."""
    ports._process_held.clear()


@pytest.fixture(autouse=True)
def _fresh_process() -> Iterator[None]:
    new_process()
    yield
    new_process()


class Host:
    """Which ports something else on the machine listens on: the allocator's probe."""

    def __init__(self) -> None:
        self.busy: set[int] = set()

    def bindable(self, port: int) -> bool:
        return port not in self.busy


def execution(execution_id: str, ports: list[dict[str, Any]], network: str = "Bridge") -> Execution:
    return Execution(id=execution_id, job_id="j-1", node_id="n-1", job=make_job({"Type": network, "Ports": ports}))


async def allocate(store: ExecutionStore, allocator: PortAllocator, item: Execution) -> list[Port]:
    def change(tx: Any) -> list[Port]:
        if tx.get(item.id) is None:
            tx.insert(item)
        ports = allocator.allocate(tx, item)
        item.allocate_ports(ports)
        tx.save(item)
        return ports

    return await store.transact(change)


def statics(ports: list[Port]) -> list[int]:
    return [port.static for port in ports]


async def test_dynamic_ports_come_round_robin_from_the_range_and_never_twice(
    execution_store: ExecutionStore,
) -> None:
    host = Host()
    allocator = PortAllocator(30000, 30004, probe=host.bindable)
    first = await allocate(execution_store, allocator, execution("e-1", [{"Name": "A"}, {"Name": "B"}]))
    assert statics(first) == [30000, 30001]
    assert [port.target for port in first] == [30000, 30001], "a bridge task listens on its host port when no Target"
    host.busy.add(30002)  # something else on the machine took it
    second = await allocate(execution_store, allocator, execution("e-2", [{"Name": "A", "Target": 80}]))
    assert statics(second) == [30003] and second[0].target == 80
    await execution_store.release_ports("e-1")
    allocator.release("e-1")
    third = await allocate(execution_store, allocator, execution("e-3", [{"Name": "A"}, {"Name": "B"}]))
    assert statics(third) == [30004, 30000], "round robin: the next one after the last given, wrapping around"
    with pytest.raises(PortError, match=r"^no available ports in range 30000-30004$"):
        await allocate(execution_store, allocator, execution("e-4", [{"Name": "A"}, {"Name": "B"}]))
    assert await execution_store.db.read(lambda c: c.execute("SELECT count(*) FROM ports").fetchone()[0]) == 3, (
        "a failed allocation holds nothing"
    )


async def test_static_ports_are_given_as_asked_or_refused(execution_store: ExecutionStore) -> None:
    host = Host()
    allocator = PortAllocator(30000, 30010, probe=host.bindable)
    given = await allocate(execution_store, allocator, execution("e-1", [{"Name": "A", "Static": 40000}], "Host"))
    assert statics(given) == [40000] and given[0].target == 0, "outside the range is fine; Host mode has no Target"
    with pytest.raises(PortError, match=r"^port 40000 is already in use$"):
        await allocate(execution_store, allocator, execution("e-2", [{"Name": "A", "Static": 40000}]))
    host.busy.add(40001)
    with pytest.raises(PortError, match=r"^port 40001 is in use$"):
        await allocate(execution_store, allocator, execution("e-3", [{"Name": "A"}, {"Name": "B", "Static": 40001}]))
    rogue = execution("e-4", [])
    assert rogue.job is not None
    rogue.job.task.network_config.ports = [Port(name="A", static=22)]  # not from a validated submission
    with pytest.raises(PortError, match="outside the valid range 1024-65535"):
        await allocate(execution_store, allocator, rogue)


async def test_no_ports_for_networks_without_them(execution_store: ExecutionStore) -> None:
    allocator = PortAllocator(30000, 30010, probe=Host().bindable)
    assert await allocate(execution_store, allocator, execution("e-1", [{"Name": "A"}], "None")) == []
    assert await allocate(execution_store, allocator, execution("e-2", [], "Bridge")) == []


async def test_a_restarted_node_keeps_the_ports_of_what_it_restarts_and_frees_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "executions.db"
    async with opened(ExecutionStore(path, durable=False)) as store:
        allocator = PortAllocator(30000, 30003, probe=Host().bindable)
        service = execution("e-service", [{"Name": "A"}])
        assert statics(await allocate(store, allocator, service)) == [30000]
        batch = execution("e-batch", [{"Name": "A"}])
        assert statics(await allocate(store, allocator, batch)) == [30001]
        service_state = ExecutionStateType.RUNNING
        for item, state in ((service, service_state), (batch, ExecutionStateType.FAILED)):
            item.compute_state.state_type = state
            await store.transact(lambda tx, item=item: tx.save(item))
    new_process()
    async with opened(ExecutionStore(path, durable=False)) as store:
        await store.release_ports()  # as a compute node does once it has recovered its executions
        allocator = PortAllocator(30000, 30003, probe=Host().bindable)  # its round robin starts again
        other = await allocate(store, allocator, execution("e-new", [{"Name": "A"}, {"Name": "B"}]))
        assert statics(other) == [30001, 30002], "the running service's port is not given again; the failed one's is"
        again = await store.get("e-service")
        assert again is not None
        assert statics(await allocate(store, allocator, again)) == [30000], "a restarted execution keeps its port"


async def test_nodes_of_one_process_never_give_the_same_port(tmp_path: Path) -> None:
    """A devstack's compute nodes have stores of their own, and a port is bound only once its container starts."""
    async with (
        opened(ExecutionStore(tmp_path / "a.db", durable=False)) as first,
        opened(ExecutionStore(tmp_path / "b.db", durable=False)) as second,
    ):
        one = PortAllocator(30000, 30003, probe=Host().bindable)
        other = PortAllocator(30000, 30003, probe=Host().bindable)
        assert statics(await allocate(first, one, execution("e-1", [{"Name": "A"}]))) == [30000]
        assert statics(await allocate(second, other, execution("e-2", [{"Name": "A"}]))) == [30001]
        with pytest.raises(PortError, match=r"^port 30000 is already in use$"):
            await allocate(second, other, execution("e-3", [{"Name": "A", "Static": 30000}]))
        one.release("e-1")
        await first.release_ports("e-1")
        assert statics(await allocate(second, other, execution("e-4", [{"Name": "A", "Static": 30000}]))) == [30000]


def test_the_range_is_checked_as_the_original() -> None:
    with pytest.raises(ValueError, match="start port must be >= 1024"):
        PortAllocator(80, 2000)
    with pytest.raises(ValueError, match="end port must be <= 65535"):
        PortAllocator(2000, 70000)
    with pytest.raises(ValueError, match="start port must be less than end port"):
        PortAllocator(3000, 3000)


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_a_port_something_listens_on_is_not_bindable(listener: int) -> None:
    assert not is_bindable(listener)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    free = int(probe.getsockname()[1])
    probe.close()
    assert is_bindable(free)


# --- what the task is told and given --------------------------------------------------------------------------------


def test_the_task_is_told_its_ports_as_the_original() -> None:
    ports = [Port(name="WEB", static=20001, target=80), Port(name="API", static=20002)]
    assert port_env(ports) == {
        "BACALHAU_HOST_PORT_WEB": "20001",
        "BACALHAU_PORT_WEB": "80",
        "BACALHAU_HOST_PORT_API": "20002",
    }


def test_docker_publishes_bridge_ports_only() -> None:
    ports = [Port(name="WEB", static=20001, target=80), Port(name="API", static=20002, host_network="127.0.0.1")]
    bridge = NetworkConfig(type=Network.BRIDGE, ports=ports)
    assert port_options(bridge) == {"ports": {"80/tcp": 20001, "20002/tcp": ("127.0.0.1", 20002)}}
    assert port_options(NetworkConfig(type=Network.HOST, ports=ports)) == {}
    assert port_options(NetworkConfig(type=Network.NONE)) == {}
    assert port_options(NetworkConfig(type=Network.BRIDGE)) == {}


class Recorder(NoopExecutor):
    name = "docker"

    def __init__(self) -> None:
        self.requests: list[RunRequest] = []

    async def run(self, request: RunRequest) -> RunOutcome:
        self.requests.append(request)
        return RunOutcome(exit_code=0)


async def test_the_runner_gives_records_reports_and_frees_the_ports(
    tmp_path: Path, execution_store: ExecutionStore
) -> None:
    recorder = Recorder()
    executors: dict[str, Executor] = {"docker": recorder}
    logs = LogStore(tmp_path / "executions", tmp_path / "logs", 60)
    allocator = PortAllocator(30000, 30010, probe=Host().bindable)
    config = RunnerConfig(tmp_path / "executions", logs, EnvResolver([]), allocator)
    runner = ExecutionRunner(execution_store, executors, {}, {}, config)
    item = execution("e-1", [{"Name": "WEB", "Target": 80}], network="Bridge")
    assert item.job is not None
    item.job.type = "batch"
    await execution_store.transact(lambda tx: tx.insert(item))
    await runner.run(item)

    request = recorder.requests[0]
    assert request.network.ports == [Port(name="WEB", static=30000, target=80)]
    assert request.env["BACALHAU_HOST_PORT_WEB"] == "30000" and request.env["BACALHAU_PORT_WEB"] == "80"
    finished = await execution_store.get("e-1")
    assert finished is not None and finished.state == ExecutionStateType.COMPLETED
    assert finished.allocated_ports == [Port(name="WEB", static=30000, target=80)]
    assert finished.job is not None and finished.job.task.network_config.ports == finished.allocated_ports
    reports = [json.loads(body) for _, body in await execution_store.outbox("", 0, 100, 1 << 20)]
    progress = [r["Payload"] for r in reports if r["Type"] == "ExecutionProgress"]
    assert any(p.get("Ports") == [{"Name": "WEB", "Static": 30000, "Target": 80}] for p in progress)
    assert await execution_store.db.read(lambda c: c.execute("SELECT count(*) FROM ports").fetchone()[0]) == 0


async def test_an_execution_whose_ports_cannot_be_given_fails_retryably(
    tmp_path: Path, execution_store: ExecutionStore
) -> None:
    host = Host()
    host.busy.add(40000)
    logs = LogStore(tmp_path / "executions", tmp_path / "logs", 60)
    config = RunnerConfig(
        tmp_path / "executions", logs, EnvResolver([]), PortAllocator(30000, 30010, probe=host.bindable)
    )
    recorder = Recorder()
    runner = ExecutionRunner(execution_store, {"docker": recorder}, {}, {}, config)
    item = execution("e-1", [{"Name": "WEB", "Static": 40000}])
    await execution_store.transact(lambda tx: tx.insert(item))
    await runner.run(item)
    finished = await execution_store.get("e-1")
    assert finished is not None and finished.state == ExecutionStateType.FAILED
    assert finished.compute_state.message == "allocating ports: port 40000 is in use"
    assert recorder.requests == []


def test_a_node_with_a_bad_port_range_does_not_start(tmp_path: Path) -> None:
    config = ComputeConfig(tmp_path, "n-1", [], port_range=(80, 2000), disabled_engines=["docker"])
    with pytest.raises(ConfigurationError, match=r"invalid Compute\.Network port range: start port must be >= 1024"):
        ComputeNode(config)


def test_job_describe_shows_where_each_execution_listens(capsys: pytest.CaptureFixture[str]) -> None:
    from bacalhau.cli.job import _print_description
    from bacalhau.cli.output import OutputOptions

    job = make_job({"Type": "Bridge", "Ports": [{"Name": "WEB", "Target": 8080}]})
    running = Execution(id="e-0123456789", job_id="j-1", node_id="n-abcdef123", create_time=1, modify_time=1)
    running.compute_state.state_type = ExecutionStateType.RUNNING
    running.allocated_ports = [Port(name="WEB", static=20001, target=8080), Port(name="API", static=20002)]
    _print_description(job, [], [running], OutputOptions(wide=True))
    out = capsys.readouterr().out
    section = out[out.index("Published Ports") :]
    assert "e-0123456789" in section and "n-abcdef123" in section
    assert any(line.split()[2:6] == ["WEB", "20001", "8080", "0.0.0.0"] for line in section.splitlines()[1:] if line)
    assert any(line.split()[2:5] == ["API", "20002", "0.0.0.0"] for line in section.splitlines()[1:] if line)
