"""A job's Count is a client's number: scheduling must cost what the work placed costs, never what was asked for.

Against a real SQLite job store, a batch or service job asking for a billion partitions (or 2**62) gets, in one quick
scheduling round, one execution per node that can take one, and a state that says what happened to the rest.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bacalhau.models.base import WireModel
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.job import Job
from bacalhau.models.limits import INT64_MAX, MAX_DURATION_SECONDS
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.broker import Delivery
from bacalhau.orchestrator.compute_handler import ComputeMessageHandler
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.scheduler import Scheduler, SchedulerConfig, schedulers
from bacalhau.orchestrator.scheduling import ImmediatePlanner, Outcome, SchedulingRound
from bacalhau.orchestrator.selection import CapacityTracker, NodeSelector
from bacalhau.orchestrator.store import JobStore
from bacalhau.transport import messages
from tests.unit.test_scheduler import Nodes, node

HUGE = [10**9, 2**62]
NODES = ("n-1", "n-2", "n-3")
# A round here takes milliseconds; enumerating a billion partitions took about half an hour (and all the memory).
ROUND_BUDGET = 1.0


async def submit(store: JobStore, job_type: str, count: int, **timeouts: int) -> Evaluation:
    service = JobService(store, "n-orch", {job_type: TaskDefaults()}, max_count=INT64_MAX)  # an operator's choice
    task: dict[str, Any] = {"Name": "main", "Engine": {"Type": "noop"}, "Resources": {"CPU": "500m", "Memory": "1mb"}}
    if timeouts:
        task["Timeouts"] = timeouts
    await service.submit(Job.model_validate({"Type": job_type, "Count": count, "Tasks": [task]}))
    [evaluation] = await store.open_evaluations()
    return evaluation


class Orchestrator:
    """The scheduling half of an orchestrator over three idle nodes: rounds for evaluations, and compute reports
    planned for at once."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.tracker = CapacityTracker()
        selector = NodeSelector(self.tracker, randomness=0)
        self.schedulers: dict[str, Scheduler] = schedulers(
            Nodes(*(node(n) for n in NODES)), selector, SchedulerConfig()
        )
        self.reports = ComputeMessageHandler(ImmediatePlanner(self.schedulers))

    async def round(self, evaluation: Evaluation) -> tuple[Outcome, float]:
        """The evaluation's round, and how long it took in seconds."""
        started = time.perf_counter()
        [outcome] = await SchedulingRound(self.store, self.schedulers, self.tracker).run([Delivery(evaluation)])
        return outcome, time.perf_counter() - started

    async def report(self, node_id: str, message: WireModel) -> float:
        """A compute node's report, recorded and planned for in one transaction; how long that took."""
        started = time.perf_counter()
        await self.store.transact(lambda tx: self.reports.handle(tx, node_id, messages.wrap(message)))
        return time.perf_counter() - started


@pytest.mark.parametrize("count", HUGE)
@pytest.mark.parametrize("job_type", ["batch", "service"])
async def test_one_round_places_one_execution_per_free_node_whatever_the_count(
    store: JobStore, job_type: str, count: int
) -> None:
    evaluation = await submit(store, job_type, count, QueueTimeout=3600)
    outcome, elapsed = await Orchestrator(store).round(evaluation)
    assert elapsed < ROUND_BUDGET
    assert outcome.error is None
    assert outcome.blocked  # waiting for nodes to take the other partitions
    placed = await store.get_executions(evaluation.job_id)
    assert sorted(e.partition_index for e in placed) == [0, 1, 2]
    assert sorted(e.node_id for e in placed) == list(NODES)
    assert (await store.get_job(evaluation.job_id)).state.state_type == JobStateType.PENDING  # it has work placed


@pytest.mark.parametrize("count", HUGE)
@pytest.mark.parametrize("job_type", ["batch", "service"])
async def test_without_a_queue_timeout_a_count_beyond_the_nodes_fails_at_once_saying_how_many(
    store: JobStore, job_type: str, count: int
) -> None:
    evaluation = await submit(store, job_type, count)
    outcome, elapsed = await Orchestrator(store).round(evaluation)
    assert elapsed < ROUND_BUDGET
    assert outcome.error is None and not outcome.blocked
    job = await store.get_job(evaluation.job_id)
    assert job.state.state_type == JobStateType.FAILED
    assert job.state.message == f"not enough nodes to run job. requested: {count - 3}, available: 3, suitable: 3."
    assert await store.get_executions(evaluation.job_id) == []


@pytest.mark.parametrize("count", HUGE)
async def test_a_huge_batch_job_runs_what_it_placed_queues_the_rest_and_does_not_complete(
    store: JobStore, count: int
) -> None:
    orchestrator = Orchestrator(store)
    evaluation = await submit(store, "batch", count, QueueTimeout=3600)
    await orchestrator.round(evaluation)
    placed = await store.get_executions(evaluation.job_id)

    for execution in placed:  # each bid is approved in the transaction that records it
        bid = messages.BidResult(execution_id=execution.id, job_id=execution.job_id, accepted=True)
        assert await orchestrator.report(execution.node_id, bid) < ROUND_BUDGET
    approved = await store.get_executions(evaluation.job_id)
    assert [e.desired for e in approved] == [ExecutionDesiredStateType.RUNNING] * 3
    job = await store.get_job(evaluation.job_id)
    assert job.state.state_type == JobStateType.QUEUED  # every node has its partition: the rest wait
    assert job.state.message.startswith(
        f"Job queued. not enough nodes to run job. requested: {count - 3}, available: 3, suitable: 0."
    )

    for execution in placed:
        result = messages.RunResult(execution_id=execution.id, job_id=execution.job_id)
        assert await orchestrator.report(execution.node_id, result) < ROUND_BUDGET
    finished = await store.get_executions(evaluation.job_id)
    assert [e.state for e in finished] == [ExecutionStateType.COMPLETED] * 3
    assert (await store.get_job(evaluation.job_id)).state.state_type == JobStateType.QUEUED  # 3 of `count` done


@pytest.mark.parametrize("job_type", ["batch", "service"])
async def test_the_longest_timeouts_give_deadlines_that_fit_the_store(store: JobStore, job_type: str) -> None:
    """Timeouts up to Go's longest duration are accepted; their deadlines (Unix nanoseconds) saturate at int64's
    maximum instead of overflowing the store in every round, which left such a job Pending for ever."""
    half = MAX_DURATION_SECONDS // 2  # execution + queue may not exceed the total
    timeouts = {"ExecutionTimeout": half, "QueueTimeout": half, "TotalTimeout": MAX_DURATION_SECONDS}
    if job_type == "service":
        timeouts = {"QueueTimeout": MAX_DURATION_SECONDS}
    evaluation = await submit(store, job_type, 5, **timeouts)
    orchestrator = Orchestrator(store)
    outcome, _ = await orchestrator.round(evaluation)
    assert outcome.error is None
    waiting = [e.wait_until for e in await store.open_evaluations()]
    assert waiting and max(waiting) == INT64_MAX
    job = await store.get_job(evaluation.job_id)
    assert job.state.state_type in (JobStateType.PENDING, JobStateType.QUEUED)
