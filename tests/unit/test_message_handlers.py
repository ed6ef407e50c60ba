"""Both sides' message handlers are idempotent: a duplicated or replayed message changes nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute.bidder import Bidder
from bacalhau.compute.buffer import ExecutorBuffer
from bacalhau.compute.capacity import CapacityTracker
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.handler import OrchestratorMessageHandler
from bacalhau.compute.inputs.inline import InlineInput
from bacalhau.compute.logs import LogStore
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.compute.runner import ExecutionRunner, RunnerConfig
from bacalhau.compute.secrets import EnvResolver
from bacalhau.compute.store import ExecutionStore
from bacalhau.errors import StateConflict
from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.job import Job
from bacalhau.models.resources import Resources
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType
from bacalhau.orchestrator.compute_handler import ComputeMessageHandler
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.plan import Plan, apply_plan
from bacalhau.orchestrator.scheduler.base import new_execution
from bacalhau.orchestrator.store import JobStore
from bacalhau.transport import messages


async def placed_execution(store: JobStore) -> tuple[Job, Execution]:
    """A submitted job with one execution asked to bid on node n-1, as the scheduler would leave it."""
    service = JobService(store, "n-orch", {"batch": TaskDefaults()})
    spec = Job.model_validate({"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]})
    job = await store.get_job((await service.submit(spec)).job_id)
    [evaluation] = await store.open_evaluations()
    plan = Plan(evaluation, job)
    execution = new_execution(plan, "n-1", direct=False)
    await store.transact(lambda tx: apply_plan(tx, plan))
    return job, execution


async def snapshot(store: JobStore, job: Job) -> tuple[Any, ...]:
    [execution] = await store.get_executions(job.id)
    history = [h.event.message for h in await store.history(job.id)]
    evaluations = sorted(e.triggered_by for e in await store.open_evaluations())
    return execution.state, execution.revision, history, evaluations


async def twice(store: JobStore, handler: ComputeMessageHandler, message: messages.ComputeReport) -> None:
    for _ in range(2):
        await store.transact(lambda tx: handler.handle(tx, "n-1", messages.wrap(message)))


async def test_orchestrator_applies_each_report_once(store: JobStore) -> None:
    job, execution = await placed_execution(store)
    handler = ComputeMessageHandler()

    await twice(store, handler, messages.BidResult(execution_id=execution.id, job_id=job.id, accepted=True))
    state, revision, history, evaluations = await snapshot(store, job)
    assert state == ExecutionStateType.ASK_FOR_BID_ACCEPTED and revision == 2
    assert evaluations.count("exec-update") == 1

    def approve(tx: Any) -> None:
        tx.update_execution(
            execution.id,
            update=lambda e: (
                setattr(e.desired_state, "state_type", ExecutionDesiredStateType.RUNNING),
                setattr(e.compute_state, "state_type", ExecutionStateType.BID_ACCEPTED),
            ),
        )

    await store.transact(approve)
    await twice(store, handler, messages.ExecutionProgress(execution_id=execution.id, job_id=job.id))
    await twice(
        store,
        handler,
        messages.RunResult(execution_id=execution.id, job_id=job.id, run_output=RunCommandResult(stdout="hi")),
    )
    state, _, history, evaluations = await snapshot(store, job)
    assert state == ExecutionStateType.COMPLETED
    assert history.count("Completed successfully") == 1
    assert evaluations.count("exec-update") == 2

    await twice(store, handler, messages.ComputeError(execution_id=execution.id, job_id=job.id, message="late"))
    assert (await snapshot(store, job))[0] == ExecutionStateType.COMPLETED


async def test_an_execution_read_earlier_is_updated_only_if_unchanged_since(store: JobStore) -> None:
    job, execution = await placed_execution(store)
    first, second = await store.get_execution(execution.id), await store.get_execution(execution.id)
    assert first is not None and second is not None

    def accept(e: Execution) -> None:
        e.compute_state.state_type = ExecutionStateType.ASK_FOR_BID_ACCEPTED

    await store.transact(lambda tx: tx.update_execution(first, update=accept))
    with pytest.raises(StateConflict, match="changed since revision 1"):
        await store.transact(lambda tx: tx.update_execution(second, update=accept))
    [stored] = await store.get_executions(job.id)
    assert stored.revision == 2 and stored.state == ExecutionStateType.ASK_FOR_BID_ACCEPTED


async def test_reports_from_another_node_are_ignored(store: JobStore) -> None:
    job, execution = await placed_execution(store)
    handler = ComputeMessageHandler()
    report = messages.wrap(messages.BidResult(execution_id=execution.id, accepted=True))
    await store.transact(lambda tx: handler.handle(tx, "n-impostor", report))
    assert (await snapshot(store, job))[0] == ExecutionStateType.NEW


@dataclass
class ComputeSide:
    store: ExecutionStore
    handler: OrchestratorMessageHandler
    buffer: ExecutorBuffer

    async def ask_for_bid(self, execution: Execution) -> None:
        body = messages.wrap(messages.AskForBid(execution=execution))
        await self.store.transact(lambda tx: self.handler.handle(tx, "", body))


@pytest.fixture
async def compute(tmp_path: Path) -> AsyncIterator[ComputeSide]:
    """A compute node's store, bidder, runner and buffer, with the noop engine."""
    store = ExecutionStore(tmp_path / "executions.db", durable=False)
    await store.open()
    maximum = Resources(cpu=2, memory=2**30, disk=2**30)
    executors, inputs, publishers = {"noop": NoopExecutor()}, {"inline": InlineInput()}, {"noop": NoopPublisher()}
    runner = ExecutionRunner(
        store,
        executors,
        inputs,
        publishers,
        RunnerConfig(
            tmp_path / "executions", LogStore(tmp_path / "executions", tmp_path / "logs", 60), EnvResolver([])
        ),
    )
    buffer = ExecutorBuffer(runner, CapacityTracker(maximum))
    handler = OrchestratorMessageHandler(store, Bidder(executors, inputs, publishers, maximum, EnvResolver([])), buffer)
    try:
        yield ComputeSide(store, handler, buffer)
    finally:
        store.close()


def noop_execution(execution_id: str = "e-1", **task: Any) -> Execution:
    job = Job.model_validate(
        {"ID": "j-1", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, **task}]}
    )
    job.normalize()
    return Execution(id=execution_id, job_id="j-1", node_id="n-1", job=job)


async def test_compute_applies_each_order_once(compute: ComputeSide) -> None:
    store, handler, buffer = compute.store, compute.handler, compute.buffer
    for _ in range(2):
        await compute.ask_for_bid(noop_execution())
    [report] = await store.outbox("", 0, 10, 1 << 20)
    assert '"BidResult"' in report[1]
    assert (await store.get("e-1")).state == ExecutionStateType.ASK_FOR_BID_ACCEPTED  # type: ignore[union-attr]

    for _ in range(2):
        await store.transact(
            lambda tx: handler.handle(tx, "", messages.wrap(messages.CancelExecution(execution_id="e-1")))
        )
    assert (await store.get("e-1")).state == ExecutionStateType.CANCELLED  # type: ignore[union-attr]
    await store.transact(lambda tx: handler.handle(tx, "", messages.wrap(messages.BidAccepted(execution_id="e-1"))))
    assert (await store.get("e-1")).state == ExecutionStateType.CANCELLED  # type: ignore[union-attr]
    assert buffer.running_count == 0 and buffer.queued_count == 0


@pytest.mark.parametrize(
    ("execution", "reason"),
    [
        (noop_execution(ResultPaths=[{"Name": "/", "Path": "/outputs"}]), "result name '/' must be one folder name"),
        (noop_execution(ResultPaths=[{"Name": "../..", "Path": "/o"}]), "result name '../..' must be one folder name"),
        (noop_execution("../../escape"), "invalid execution ID '../../escape'"),
    ],
)
async def test_compute_refuses_work_that_would_leave_its_folder(
    compute: ComputeSide, tmp_path: Path, execution: Execution, reason: str
) -> None:
    """Defence in depth: the orchestrator refuses these at submission, but a compute node trusts no sender."""
    await compute.ask_for_bid(execution)
    stored = await compute.store.get(execution.id)
    assert stored is not None and stored.state == ExecutionStateType.ASK_FOR_BID_REJECTED
    assert reason in stored.compute_state.message
    assert compute.buffer.running_count == 0 and compute.buffer.queued_count == 0
    assert not (tmp_path / "executions").exists()
