"""Scheduling against a real SQLite job store: rounds of several evaluations in one read and one commit, each applied
or failed alone, with capacity counted across a round's plans; and reports planned for in the transaction that
records them."""

from __future__ import annotations

import json

from bacalhau.errors import StateConflict
from bacalhau.models.evaluation import EvalStatus, Evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.broker import Delivery
from bacalhau.orchestrator.compute_handler import ComputeMessageHandler
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.scheduler import Scheduler, SchedulerConfig, schedulers
from bacalhau.orchestrator.scheduling import ImmediatePlanner, SchedulingRound
from bacalhau.orchestrator.selection import CapacityTracker, NodeSelector
from bacalhau.orchestrator.store import CommitEffects, JobStore, Tx
from bacalhau.transport import messages
from tests.unit.test_scheduler import Nodes, node


async def submit(store: JobStore, count: int, cpu: str = "1") -> list[Evaluation]:
    """``count`` batch jobs, each asking for ``cpu`` cores; their registration evaluations."""
    service = JobService(store, "n-orch", {"batch": TaskDefaults()})
    task = {"Name": "main", "Engine": {"Type": "noop"}, "Resources": {"CPU": cpu, "Memory": "1mb"}}
    for _ in range(count):
        await service.submit(Job.model_validate({"Type": "batch", "Tasks": [task]}))
    return sorted(await store.open_evaluations(), key=lambda e: e.create_time)


def scheduling_round(store: JobStore, tracker: CapacityTracker, cpu: float = 2.0) -> SchedulingRound:
    selector = NodeSelector(tracker, over_subscription=1.0, randomness=0)
    return SchedulingRound(store, schedulers(Nodes(node("n-1", cpu=cpu)), selector, SchedulerConfig()), tracker)


async def test_a_round_places_every_job_in_one_commit(store: JobStore) -> None:
    evaluations = await submit(store, 3, cpu="0.5")
    commits = []
    store.on_commit(commits.append)
    outcomes = await scheduling_round(store, CapacityTracker()).run([Delivery(e) for e in evaluations])
    assert [(o.error, o.blocked) for o in outcomes] == [(None, False)] * 3
    assert len(commits) == 1
    assert len(commits[0].created_executions) == 3
    assert await store.open_evaluations() == []


async def test_capacity_taken_by_one_plan_is_seen_by_the_next_of_the_same_round(store: JobStore) -> None:
    evaluations = await submit(store, 3)
    tracker = CapacityTracker()
    outcomes = await scheduling_round(store, tracker, cpu=2.0).run([Delivery(e) for e in evaluations])
    assert [o.blocked for o in outcomes] == [False, False, True]
    assert tracker.used("n-1").cpu == 2.0
    queued = await store.get_job(evaluations[2].job_id)
    assert queued.state.state_type == JobStateType.QUEUED


async def test_a_conflicting_plan_fails_alone_and_gives_back_its_capacity(store: JobStore) -> None:
    evaluations = await submit(store, 2)
    tracker = CapacityTracker()
    round_ = scheduling_round(store, tracker, cpu=1.0)  # room for the first job; the second is to be queued
    original = store.jobs_with_executions

    async def read_then_change(job_ids: list[str]) -> dict[str, tuple[Job, list[Execution]]]:
        """The second job changes between the round's read and its commit, so that its plan's revision check
        fails."""
        found = await original(job_ids)
        await store.transact(lambda tx: tx.update_job_state(evaluations[1].job_id, JobStateType.RUNNING))
        return found

    store.jobs_with_executions = read_then_change  # type: ignore[method-assign]
    outcomes = await round_.run([Delivery(e) for e in evaluations])
    assert outcomes[0].error is None
    assert isinstance(outcomes[1].error, StateConflict)
    assert [e.job_id for e in await store.open_evaluations()] == [evaluations[1].job_id]
    assert [len(await store.get_executions(e.job_id)) for e in evaluations] == [1, 0]
    assert tracker.used("n-1").cpu == 1.0


async def test_a_failed_plan_gives_back_the_capacity_it_reserved(store: JobStore) -> None:
    evaluations = await submit(store, 1)
    tracker = CapacityTracker()
    round_ = scheduling_round(store, tracker)

    def forget(tx: Tx) -> None:  # the evaluation vanishes: closing it fails, so the whole plan is undone
        tx.conn.execute("DROP TABLE evaluations")

    await store.transact(forget)
    [outcome] = await round_.run([Delivery(e) for e in evaluations])
    assert outcome.error is not None
    assert tracker.used("n-1").is_zero()
    assert await store.get_executions(evaluations[0].job_id) == []


async def test_an_evaluation_of_a_deleted_job_is_closed(store: JobStore) -> None:
    [evaluation] = await submit(store, 1)

    def forget(tx: Tx) -> None:
        tx.conn.execute("DELETE FROM jobs WHERE id = ?", (evaluation.job_id,))

    await store.transact(forget)
    [outcome] = await scheduling_round(store, CapacityTracker()).run([Delivery(evaluation)])
    assert outcome.error is None and not outcome.blocked
    assert await store.open_evaluations() == []
    assert evaluation.status == EvalStatus.COMPLETE.value


async def placed(store: JobStore, schedulers_: dict[str, Scheduler]) -> tuple[str, Execution]:
    """A job placed on n-1 by a scheduling round, its execution waiting for the node's bid."""
    [evaluation] = await submit(store, 1, cpu="0.5")
    round_ = SchedulingRound(store, schedulers_, CapacityTracker())
    [outcome] = await round_.run([Delivery(evaluation)])
    assert outcome.error is None
    [execution] = await store.get_executions(evaluation.job_id)
    return evaluation.job_id, execution


async def test_reports_are_planned_for_in_the_transaction_that_records_them(store: JobStore) -> None:
    schedulers_ = schedulers(Nodes(node("n-1")), NodeSelector(CapacityTracker(), randomness=0), SchedulerConfig())
    job_id, execution = await placed(store, schedulers_)
    handler = ComputeMessageHandler(ImmediatePlanner(schedulers_))
    commits: list[CommitEffects] = []
    store.on_commit(commits.append)

    bid = messages.BidResult(execution_id=execution.id, job_id=job_id, accepted=True)
    await store.transact(lambda tx: handler.handle(tx, "n-1", messages.wrap(bid)))
    [approved] = await store.get_executions(job_id)
    assert approved.desired == ExecutionDesiredStateType.RUNNING
    assert (await store.get_job(job_id)).state.state_type == JobStateType.RUNNING
    assert [json.loads(body)["Type"] for _, _, body in commits[-1].outbox] == ["BidAccepted"]
    assert await store.open_evaluations() == []

    result = messages.RunResult(execution_id=execution.id, job_id=job_id)
    await store.transact(lambda tx: handler.handle(tx, "n-1", messages.wrap(result)))
    assert (await store.get_job(job_id)).state.state_type == JobStateType.COMPLETED
    assert await store.open_evaluations() == []
    assert len(commits) == 2


class BrokenScheduler:
    def plan(self, delivery: Delivery, job: Job, executions: list[Execution]) -> Plan:
        raise RuntimeError("a fault in planning")


async def test_a_report_that_cannot_be_planned_for_at_once_leaves_an_evaluation(store: JobStore) -> None:
    working = schedulers(Nodes(node("n-1")), NodeSelector(CapacityTracker(), randomness=0), SchedulerConfig())
    job_id, execution = await placed(store, working)
    handler = ComputeMessageHandler(ImmediatePlanner({"batch": BrokenScheduler()}))
    bid = messages.BidResult(execution_id=execution.id, job_id=job_id, accepted=True)
    await store.transact(lambda tx: handler.handle(tx, "n-1", messages.wrap(bid)))
    [recorded] = await store.get_executions(job_id)
    assert recorded.state == ExecutionStateType.ASK_FOR_BID_ACCEPTED  # the report itself is kept
    assert [e.triggered_by for e in await store.open_evaluations()] == ["exec-update"]
