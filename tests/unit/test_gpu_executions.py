"""Executions that ask for GPUs on a compute node: each holds GPUs no other running execution holds, the engine is
given those, the orchestrator is told which, and they are free again when the execution ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacalhau.compute.bidder import Bidder
from bacalhau.compute.buffer import ExecutorBuffer
from bacalhau.compute.capacity import AllocatedCapacity, CapacityTracker, allocate
from bacalhau.compute.executors.base import RunOutcome, RunRequest
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.compute.handler import OrchestratorMessageHandler
from bacalhau.compute.logs import LogStore
from bacalhau.compute.runner import ExecutionRunner, RunnerConfig
from bacalhau.compute.secrets import EnvResolver
from bacalhau.compute.store import ExecutionStore
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.resources import GPU, Resources
from bacalhau.models.state import ExecutionStateType
from bacalhau.transport import messages


class HeldExecutor(NoopExecutor):
    """An engine whose runs last until the test lets them end; it records the GPUs each run was given."""

    def __init__(self) -> None:
        self.given: dict[str, list[int]] = {}
        self.release = asyncio.Event()

    async def run(self, request: RunRequest) -> RunOutcome:
        self.given[request.execution_id] = [gpu.index for gpu in request.resources.gpus]
        await self.release.wait()
        return RunOutcome(exit_code=0)


@dataclass
class Node:
    store: ExecutionStore
    handler: OrchestratorMessageHandler
    buffer: ExecutorBuffer
    capacity: CapacityTracker
    engine: HeldExecutor

    async def run(self, execution: Execution) -> None:
        body = messages.wrap(messages.AskForBid(execution=execution, wait_for_approval=False))
        await self.store.transact(lambda tx: self.handler.handle(tx, "", body))


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    store = ExecutionStore(tmp_path / "executions.db", durable=False)
    await store.open()
    found = [GPU(index=i, name="Tesla T4", vendor="NVIDIA", memory=15360) for i in range(2)]
    machine = Resources(cpu=4, memory=2**32, disk=2**32, gpu=2, gpus=found)
    maximum = allocate(machine, AllocatedCapacity(cpu="100%", memory="100%", disk="100%"))
    engine = HeldExecutor()
    executors = {"noop": engine, "wasm": WasmExecutor()}
    logs = LogStore(tmp_path / "executions", tmp_path / "logs", 60)
    runner = ExecutionRunner(store, executors, {}, {}, RunnerConfig(tmp_path / "executions", logs, EnvResolver([])))  # type: ignore[arg-type]
    capacity = CapacityTracker(maximum)
    buffer = ExecutorBuffer(runner, capacity)
    bidder = Bidder(executors, {}, {}, maximum, EnvResolver([]))  # type: ignore[arg-type]
    handler = OrchestratorMessageHandler(store, bidder, buffer)
    try:
        yield Node(store, handler, buffer, capacity, engine)
    finally:
        engine.release.set()
        await buffer.stop()
        store.close()


def gpu_execution(execution_id: str, gpus: int, engine: str = "noop") -> Execution:
    job = Job.model_validate(
        {
            "ID": f"j-{execution_id}",
            "Type": "batch",
            "Tasks": [{"Name": "main", "Engine": {"Type": engine}, "Resources": {"GPU": str(gpus)}}],
        }
    )
    job.normalize()
    return Execution(id=execution_id, job_id=job.id, node_id="n-1", job=job)


async def until(condition: object, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_two_one_gpu_executions_get_different_gpus_and_a_third_waits(node: Node) -> None:
    for name in ("e-1", "e-2", "e-3"):
        await node.run(gpu_execution(name, 1))
    await until(lambda: len(node.engine.given) == 2)
    assert sorted(node.engine.given.values()) == [[0], [1]]
    assert node.buffer.queued_count == 1  # no GPU left for the third
    stored = await node.store.get("e-1")
    assert stored is not None
    assert [g.index for g in stored.allocated_resources.tasks["main"].gpus] == node.engine.given["e-1"]
    reports = [json.loads(body) for _, body in await node.store.outbox("", 0, 100, 1 << 20)]
    progress = [r for r in reports if "ExecutionProgress" in json.dumps(r)]
    assert any("Tesla T4" in json.dumps(r) for r in progress)  # the orchestrator is told which GPUs
    node.engine.release.set()
    await until(lambda: len(node.engine.given) == 3)
    await until(lambda: node.buffer.running_count == 0)
    assert node.capacity.gpu_slots == {}
    for name in ("e-1", "e-2", "e-3"):
        done = await node.store.get(name)
        assert done is not None and done.state == ExecutionStateType.COMPLETED


async def test_more_gpus_than_the_node_has_is_refused(node: Node) -> None:
    await node.run(gpu_execution("e-big", 3))
    stored = await node.store.get("e-big")
    assert stored is not None and stored.state == ExecutionStateType.ASK_FOR_BID_REJECTED
    assert "needs more GPU than this node offers" in stored.compute_state.message


async def test_the_wasm_engine_does_not_bid_for_gpu_work(node: Node) -> None:
    await node.run(gpu_execution("e-wasm", 1, engine="wasm"))
    stored = await node.store.get("e-wasm")
    assert stored is not None and stored.state == ExecutionStateType.ASK_FOR_BID_REJECTED
    assert "the wasm engine cannot give GPUs to a task, and the job asks for 1" in stored.compute_state.message


# ---- a compute node that restarts


async def test_after_a_restart_no_gpu_is_held_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executions that held GPUs when the node stopped: the batch one is failed, the service one starts again and
    takes a GPU like any other; new work gets the GPU left, and nothing gets one a running execution holds."""
    from bacalhau.compute.node import RESTART_MESSAGE, ComputeConfig, ComputeNode
    from tests.gpu_tools import fake_nvidia_smi

    fake_nvidia_smi(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    stale = Resources(cpu=0.1, memory=1, gpu=1, gpus=[GPU(index=1, name="Tesla T4", vendor="NVIDIA", memory=15360)])

    def was_running(execution_id: str, job_type: str) -> Execution:
        execution = gpu_execution(execution_id, 1)
        assert execution.job is not None
        execution.job.type = job_type
        execution.compute_state.state_type = ExecutionStateType.RUNNING
        execution.allocated_resources.tasks["main"] = stale  # what it held before the restart
        return execution

    store = ExecutionStore(tmp_path / "compute" / "executions.db", durable=False)
    await store.open()
    previous = [was_running("e-batch", "batch"), was_running("e-service", "service")]
    await store.transact(lambda tx: [tx.insert(e) for e in previous])
    store.close()

    node = ComputeNode(ComputeConfig(tmp_path, "n-gpu", ["nats://127.0.0.1:9"], local_publisher_port=0, durable=False))
    engine = HeldExecutor()
    node.executors["noop"] = engine  # the runner and the bidder share this table
    await node.start()
    try:
        assert node.maximum.gpu == 2 and node.node_info().labels["GPU-1"] == "Tesla-T4"
        batch = await node.store.get("e-batch")
        assert batch is not None and batch.state == ExecutionStateType.FAILED
        assert batch.compute_state.message == RESTART_MESSAGE
        await until(lambda: "e-service" in engine.given)
        assert engine.given["e-service"] == [0]  # the first GPU free now, whatever it held before
        for name in ("e-new", "e-waits"):
            body = messages.wrap(messages.AskForBid(execution=gpu_execution(name, 1), wait_for_approval=False))
            await node.store.transact(lambda tx, body=body: node.handler.handle(tx, "", body))  # type: ignore[misc]
        await until(lambda: "e-new" in engine.given)
        assert engine.given["e-new"] == [1]
        assert "e-waits" not in engine.given and node.buffer.queued_count == 1
    finally:
        engine.release.set()
        await node.stop()
