"""The queue drain, against a real SQLite job store and a real broker: the room an ending execution frees goes to the
waiting jobs in the transaction that records the end, highest priority first, in turns across jobs, and a job too
big for the room is left alone (not re-planned, nothing written for it)."""

from __future__ import annotations

from typing import Any

import pytest

from bacalhau.models.evaluation import EvalStatus, Evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.broker import Delivery, EvaluationBroker
from bacalhau.orchestrator.compute_handler import ComputeMessageHandler
from bacalhau.orchestrator.drain import QueueDrain
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.scheduler import SchedulerConfig, schedulers
from bacalhau.orchestrator.scheduling import ImmediatePlanner, SchedulingRound
from bacalhau.orchestrator.selection import CapacityTracker, NodeSelector
from bacalhau.orchestrator.store import CommitEffects, JobStore, Tx
from bacalhau.transport import messages
from tests.unit.test_scheduler import Nodes, node


class Orchestrator:
    """The parts the drain works with, wired as the orchestrator wires them: ``nodes`` compute nodes of ``cpu``
    cores each."""

    def __init__(self, store: JobStore, cpu: float, nodes: int = 1) -> None:
        self.store = store
        self.tracker = CapacityTracker()
        self.broker = EvaluationBroker()
        source = Nodes(*(node(f"n-{number}", cpu=cpu) for number in range(1, nodes + 1)))
        selector = NodeSelector(self.tracker, over_subscription=1.0, randomness=0)
        self.schedulers = schedulers(source, selector, SchedulerConfig())
        self.drain = QueueDrain(self.broker, self.schedulers, source, selector)
        self.handler = ComputeMessageHandler(ImmediatePlanner(self.schedulers), self.drain)
        self.commits: list[CommitEffects] = []
        store.on_commit(self._on_commit)

    def _on_commit(self, effects: CommitEffects) -> None:
        self.tracker.on_commit(effects)
        self.drain.after_commit(effects)
        self.commits.append(effects)

    async def submit(self, cpu: str, *, count: int = 1, priority: int = 0) -> str:
        """A batch job, scheduled by a round: placed if it fits, else waiting in the broker."""
        service = JobService(self.store, "n-orch", {"batch": TaskDefaults()})
        task = {"Name": "main", "Engine": {"Type": "noop"}, "Resources": {"CPU": cpu, "Memory": "1mb"}}
        spec: dict[str, Any] = {"Type": "batch", "Count": count, "Priority": priority, "Tasks": [task]}
        submitted = await service.submit(Job.model_validate(spec))
        [evaluation] = [e for e in await self.store.open_evaluations() if e.job_id == submitted.job_id]
        [outcome] = await SchedulingRound(self.store, self.schedulers, self.tracker).run([Delivery(evaluation)])
        assert outcome.error is None
        if outcome.blocked:
            self.broker.ack(outcome.delivery, blocked=True)
        return submitted.job_id

    async def finish(self, job_id: str) -> CommitEffects:
        """The node bids for the job's live executions and completes them; the commit of the completion."""
        live = [e for e in await self.store.get_executions(job_id) if not e.is_terminal]
        for execution in live:
            bid = messages.BidResult(execution_id=execution.id, job_id=job_id, accepted=True)
            await self.store.transact(
                lambda tx, b=bid, n=execution.node_id: self.handler.handle(tx, n, messages.wrap(b))
            )
        for execution in live:
            result = messages.RunResult(execution_id=execution.id, job_id=job_id)
            await self.store.transact(
                lambda tx, r=result, n=execution.node_id: self.handler.handle(tx, n, messages.wrap(r))
            )
        return self.commits[-1]

    async def placed(self, job_id: str) -> int:
        return len(await self.store.get_executions(job_id))

    def waiting(self) -> list[str]:
        return [e.job_id for e in self.broker.blocked_in_order(10)]


async def blocked_evaluation(store: JobStore, job_id: str) -> Evaluation:
    [evaluation] = [e for e in await store.open_evaluations() if e.job_id == job_id]
    assert evaluation.status == EvalStatus.BLOCKED.value
    return evaluation


@pytest.fixture
def orchestrator(store: JobStore) -> Orchestrator:
    return Orchestrator(store, cpu=1.0)


async def test_the_room_a_completion_frees_goes_to_the_next_job_in_the_same_commit(orchestrator: Orchestrator) -> None:
    first = await orchestrator.submit("1")
    second, third = await orchestrator.submit("1"), await orchestrator.submit("1")
    assert orchestrator.waiting() == [second, third]

    commit = await orchestrator.finish(first)
    assert [e.job_id for e in commit.ended_executions] == [first]
    assert [e.job_id for e in commit.created_executions] == [second]  # placed with the end, not in a later round
    assert commit.drained_placements == 1
    assert orchestrator.waiting() == [third]
    assert await orchestrator.store.open_evaluations() == [await blocked_evaluation(orchestrator.store, third)]
    assert (await orchestrator.store.get_job(first)).state.state_type == JobStateType.COMPLETED


async def test_higher_priority_jobs_take_freed_room_first(orchestrator: Orchestrator) -> None:
    first = await orchestrator.submit("1")
    low = await orchestrator.submit("1", priority=1)
    high = await orchestrator.submit("1", priority=50)
    commit = await orchestrator.finish(first)
    assert [e.job_id for e in commit.created_executions] == [high]
    commit = await orchestrator.finish(high)
    assert [e.job_id for e in commit.created_executions] == [low]


async def test_a_job_too_big_for_the_room_is_left_alone_while_a_smaller_one_takes_it(store: JobStore) -> None:
    orchestrator = Orchestrator(store, cpu=2.0)
    running = await orchestrator.submit("1")
    await orchestrator.submit("1")
    big = await orchestrator.submit("2")
    small = await orchestrator.submit("1")
    big_before = await blocked_evaluation(store, big)
    history_before = await store.history(big)

    commit = await orchestrator.finish(running)
    assert [e.job_id for e in commit.created_executions] == [small]
    assert await blocked_evaluation(store, big) == big_before  # not planned again: not even its ModifyTime changed
    assert await store.history(big) == history_before
    assert orchestrator.waiting() == [big]


async def test_a_job_that_took_room_and_still_waits_goes_behind_the_others(store: JobStore) -> None:
    orchestrator = Orchestrator(store, cpu=1.0, nodes=2)
    first, second = await orchestrator.submit("1"), await orchestrator.submit("1")
    wide = await orchestrator.submit("1", count=2)  # a partition per node
    other = await orchestrator.submit("1")
    commit = await orchestrator.finish(first)
    assert [e.job_id for e in commit.created_executions] == [wide]  # one of its two partitions
    assert orchestrator.waiting() == [other, wide]
    commit = await orchestrator.finish(wide)
    assert [e.job_id for e in commit.created_executions] == [other]
    commit = await orchestrator.finish(second)
    assert [e.job_id for e in commit.created_executions] == [wide]
    assert await orchestrator.placed(wide) == 2


async def test_room_freed_outside_a_report_goes_after_the_commit_to_a_job_that_fits_it(store: JobStore) -> None:
    orchestrator = Orchestrator(store, cpu=2.0)
    first, second = await orchestrator.submit("1"), await orchestrator.submit("1")
    big = await orchestrator.submit("2")
    small, other = await orchestrator.submit("1"), await orchestrator.submit("1")
    commit = await orchestrator.finish(first)  # the drain gives the room to `small`, and learns that `big` needs 2
    assert [e.job_id for e in commit.created_executions] == [small]
    assert orchestrator.waiting() == [big, other]

    [running] = await store.get_executions(second)

    def stop(tx: Tx) -> None:  # ended by the orchestrator itself (a user's stop, say): no drain runs in this
        def cancel(execution: Execution) -> None:
            execution.compute_state.state_type = ExecutionStateType.CANCELLED
            execution.desired_state.state_type = ExecutionDesiredStateType.STOPPED

        tx.update_execution(running, update=cancel)

    await store.transact(stop)
    assert orchestrator.broker.ready_count == 1  # released for a round: `other` fits the core `second` freed
    assert orchestrator.waiting() == [big]  # `big` does not, and is left alone
