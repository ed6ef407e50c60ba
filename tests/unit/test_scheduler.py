"""The batch/service scheduler's decisions, given a job, its executions and the nodes (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from bacalhau.models.evaluation import EvalStatus, Evaluation
from bacalhau.models.execution import AllocatedResources, Execution
from bacalhau.models.job import Job
from bacalhau.models.node import ComputeNodeInfo, NodeInfo, NodeState
from bacalhau.models.resources import Resources
from bacalhau.models.spec import LabelSelectorRequirement
from bacalhau.models.state import (
    ExecutionDesiredState,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
    JobState,
    JobStateType,
)
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.scheduler import BatchServiceScheduler, DaemonScheduler, OpsScheduler, SchedulerConfig
from bacalhau.orchestrator.selection import CapacityTracker, NodeSelector
from bacalhau.orchestrator.store import CommitEffects

GIB = 1024**3


class Nodes:
    def __init__(self, *nodes: NodeState) -> None:
        self.nodes = list(nodes)

    def all(self) -> list[NodeState]:
        return self.nodes

    def get(self, node_id: str) -> NodeState | None:
        return next((node for node in self.nodes if node.info.node_id == node_id), None)


def node(node_id: str, cpu: float = 2.0, *, engines: tuple[str, ...] = ("wasm", "noop"), **labels: str) -> NodeState:
    capacity = Resources(cpu=cpu, memory=8 * GIB, disk=100 * GIB)
    info = NodeInfo(
        node_id=node_id,
        node_type="Compute",
        labels=labels,
        compute_node_info=ComputeNodeInfo(
            execution_engines=list(engines),
            publishers=["local", "noop"],
            storage_sources=["inline"],
            max_capacity=capacity,
            available_capacity=capacity,
            max_job_requirements=capacity,
        ),
    )
    return NodeState(info=info, membership="APPROVED", connection="CONNECTED")


def job(count: int = 1, *, state: JobStateType = JobStateType.PENDING, job_type: str = "batch", **task: Any) -> Job:
    spec = Job.model_validate(
        {
            "ID": "j-00000000-0000-4000-8000-000000000001",
            "Type": job_type,
            "Count": count,
            "Tasks": [
                {"Name": "main", "Engine": {"Type": "wasm"}, "Resources": {"CPU": "500m", "Memory": "1gb"}, **task}
            ],
        }
    )
    spec.normalize()
    spec.state = JobState(state_type=state)
    spec.create_time = now_ns()
    return spec


def execution(
    node_id: str,
    state: ExecutionStateType,
    desired: ExecutionDesiredStateType = ExecutionDesiredStateType.PENDING,
    *,
    partition: int = 0,
    created: int = 1,
    message: str = "",
    retryable: bool = False,
) -> Execution:
    return Execution(
        id=f"e-{node_id}-{created}",
        job_id="j-00000000-0000-4000-8000-000000000001",
        node_id=node_id,
        compute_state=ExecutionState(
            state_type=state, message=message, details={"Retryable": "true"} if retryable else {}
        ),
        desired_state=ExecutionDesiredState(state_type=desired),
        allocated_resources=AllocatedResources(tasks={"main": Resources(cpu=0.5, memory=GIB)}),
        partition_index=partition,
        create_time=created,
        modify_time=now_ns(),
        revision=1,
    )


def decide(spec: Job, executions: list[Execution], *nodes: NodeState, tracker: CapacityTracker | None = None) -> Plan:
    tracker = tracker or CapacityTracker()
    scheduler = BatchServiceScheduler(
        nodes=Nodes(*nodes),
        selector=NodeSelector(tracker, randomness=0),
        config=SchedulerConfig(max_retries=2),
    )
    plan = Plan(Evaluation(id="eval", job_id=spec.id, type=spec.type, triggered_by="job-register"), spec)
    scheduler.build(plan, executions)
    return plan


def test_a_new_job_gets_an_execution_that_asks_the_best_node_to_bid() -> None:
    plan = decide(job(), [], node("n-small", cpu=1.0), node("n-big", cpu=8.0))
    [created] = plan.new_executions
    assert created.node_id == "n-big"
    assert created.state == ExecutionStateType.NEW
    assert created.desired == ExecutionDesiredStateType.PENDING
    assert plan.execution_events[created.id][0].message == "Requested execution on n-big"
    assert plan.desired_job_state is None


def test_an_accepted_bid_is_approved_and_the_job_starts_running() -> None:
    bid = execution("n-1", ExecutionStateType.ASK_FOR_BID_ACCEPTED)
    plan = decide(job(), [bid], node("n-1"))
    assert plan.updated[bid.id].desired == ExecutionDesiredStateType.RUNNING
    assert plan.updated[bid.id].compute == ExecutionStateType.BID_ACCEPTED
    assert plan.desired_job_state == JobStateType.RUNNING
    assert not plan.new_executions


def test_a_completed_partition_completes_a_batch_job() -> None:
    done = execution("n-1", ExecutionStateType.COMPLETED, ExecutionDesiredStateType.STOPPED)
    plan = decide(job(state=JobStateType.RUNNING), [done], node("n-1"))
    assert plan.desired_job_state == JobStateType.COMPLETED
    assert plan.job_events[0].message == "Completed"


def test_a_service_job_never_completes() -> None:
    running = execution("n-1", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING)
    plan = decide(job(job_type="service", state=JobStateType.RUNNING), [running], node("n-1"))
    assert plan.desired_job_state is None
    assert plan.is_empty()


def test_each_partition_gets_its_own_node() -> None:
    plan = decide(job(count=3), [], node("n-1"), node("n-2"), node("n-3"))
    assert sorted(e.partition_index for e in plan.new_executions) == [0, 1, 2]
    assert len({e.node_id for e in plan.new_executions}) == 3


def test_no_suitable_node_fails_the_job_with_the_reasons() -> None:
    plan = decide(job(), [], node("n-1", engines=("docker",)))
    assert plan.desired_job_state == JobStateType.FAILED
    assert "not enough nodes to run job. requested: 1, available: 1, suitable: 0." in plan.job_state_message
    assert "does not support wasm, only docker" in plan.job_state_message


def test_constraints_select_nodes_by_label() -> None:
    spec = job()
    spec.constraints = [LabelSelectorRequirement(key="zone", operator="=", values=["eu"])]
    plan = decide(spec, [], node("n-us", zone="us"), node("n-eu", zone="eu"))
    assert [e.node_id for e in plan.new_executions] == ["n-eu"]


def test_a_busy_node_queues_the_job_instead_of_failing_it() -> None:
    tracker = CapacityTracker()
    hog = execution("n-1", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING, created=7)
    hog.allocated_resources = AllocatedResources(tasks={"main": Resources(cpu=3.0)})
    tracker.on_commit(CommitEffects(created_executions=[hog]))
    plan = decide(job(), [], node("n-1", cpu=2.0), tracker=tracker)
    assert plan.outcome == EvalStatus.BLOCKED
    assert plan.desired_job_state == JobStateType.QUEUED
    assert "node busy" in plan.job_state_message
    assert not plan.new_executions


def test_a_job_bigger_than_every_node_fails() -> None:
    plan = decide(job(Resources={"CPU": "64"}), [], node("n-1", cpu=2.0))
    assert plan.desired_job_state == JobStateType.FAILED
    assert "job requires more CPU (64) than the maximum available (2)" in plan.job_state_message


def test_with_a_queue_timeout_an_unplaceable_job_waits_in_queued() -> None:
    plan = decide(job(Resources={"CPU": "64"}, Timeouts={"QueueTimeout": 60}), [], node("n-1"))
    assert plan.desired_job_state == JobStateType.QUEUED
    assert plan.outcome == EvalStatus.BLOCKED
    assert plan.evaluation.wait_until > now_ns()


def test_an_execution_on_a_lost_node_fails_and_is_retried_elsewhere() -> None:
    running = execution("n-gone", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING)
    gone = node("n-gone")
    gone.connection = "DISCONNECTED"
    plan = decide(job(state=JobStateType.RUNNING), [running], gone, node("n-2"))
    update = plan.updated[running.id]
    assert update.compute == ExecutionStateType.FAILED
    assert update.event.message == "Execution stop requested because node has disappeared"
    assert [e.node_id for e in plan.new_executions] == ["n-2"]


def test_a_retryable_failure_is_retried_preferring_another_node() -> None:
    failed = execution("n-1", ExecutionStateType.FAILED, ExecutionDesiredStateType.STOPPED, message="x", retryable=True)
    plan = decide(job(state=JobStateType.RUNNING), [failed], node("n-1", cpu=8.0), node("n-2", cpu=1.0))
    assert [e.node_id for e in plan.new_executions] == ["n-2"]


def test_a_retryable_failure_may_run_again_on_the_same_node_once() -> None:
    failed = execution("n-1", ExecutionStateType.FAILED, ExecutionDesiredStateType.STOPPED, message="x", retryable=True)
    plan = decide(job(state=JobStateType.RUNNING), [failed], node("n-1"))
    assert [e.node_id for e in plan.new_executions] == ["n-1"]


def test_a_failure_that_a_retry_cannot_fix_fails_the_job_with_its_message() -> None:
    failed = execution(
        "n-1", ExecutionStateType.FAILED, ExecutionDesiredStateType.STOPPED, message="execution timed out after 1s"
    )
    plan = decide(job(state=JobStateType.RUNNING), [failed], node("n-1"), node("n-2"))
    assert plan.desired_job_state == JobStateType.FAILED
    assert plan.job_state_message.endswith("failed: execution timed out after 1s")
    assert not plan.new_executions


@pytest.mark.parametrize("failures", [3])
def test_retries_are_bounded(failures: int) -> None:
    failed = [
        execution(
            f"n-{i}",
            ExecutionStateType.FAILED,
            ExecutionDesiredStateType.STOPPED,
            created=i,
            message="lost",
            retryable=True,
        )
        for i in range(failures)
    ]
    plan = decide(job(state=JobStateType.RUNNING), failed, node("n-9"))
    assert plan.desired_job_state == JobStateType.FAILED
    assert plan.job_state_message.startswith("Job failed because it has been retried too many times")


def test_stopping_a_job_cancels_running_and_rejects_bidding_executions() -> None:
    running = execution("n-1", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING, created=1)
    bidding = execution("n-2", ExecutionStateType.ASK_FOR_BID_ACCEPTED, created=2)
    plan = decide(job(state=JobStateType.STOPPED), [running, bidding], node("n-1"), node("n-2"))
    assert plan.updated[running.id].compute == ExecutionStateType.CANCELLED
    assert plan.updated[bidding.id].compute == ExecutionStateType.BID_REJECTED
    assert all(u.desired == ExecutionDesiredStateType.STOPPED for u in plan.updated.values())


def test_extra_executions_of_a_partition_are_stopped() -> None:
    first = execution("n-1", ExecutionStateType.ASK_FOR_BID_ACCEPTED, created=1)
    second = execution("n-2", ExecutionStateType.ASK_FOR_BID_ACCEPTED, created=2)
    plan = decide(job(), [first, second], node("n-1"), node("n-2"))
    assert plan.updated[first.id].desired == ExecutionDesiredStateType.RUNNING
    assert plan.updated[second.id].desired == ExecutionDesiredStateType.STOPPED


def test_a_job_past_its_total_timeout_fails() -> None:
    spec = job(state=JobStateType.RUNNING, Timeouts={"TotalTimeout": 10})
    spec.create_time = now_ns() - 20 * 1_000_000_000
    running = execution("n-1", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING)
    plan = decide(spec, [running], node("n-1"))
    assert plan.desired_job_state == JobStateType.FAILED
    assert plan.job_events[0].message == "Job timed out. Job took longer than 10s"
    assert plan.updated[running.id].desired == ExecutionDesiredStateType.STOPPED


def test_partitions_beyond_a_shrunken_count_are_stopped() -> None:
    kept = execution("n-1", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING, partition=0, created=1)
    extra = execution("n-2", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING, partition=1, created=2)
    plan = decide(job(count=1, state=JobStateType.RUNNING), [kept, extra], node("n-1"), node("n-2"))
    assert list(plan.updated) == [extra.id]
    assert (
        plan.updated[extra.id].event.message == "Execution stop requested because there are more executions than needed"
    )
    assert not plan.new_executions and plan.desired_job_state is None


def test_a_partition_in_retry_backoff_waits_while_fresh_partitions_are_placed() -> None:
    failed = [
        execution(
            f"n-{i}",
            ExecutionStateType.FAILED,
            ExecutionDesiredStateType.STOPPED,
            created=i,
            message="lost",
            retryable=True,
        )
        for i in (1, 2)
    ]
    plan = decide(job(count=2, state=JobStateType.RUNNING), failed, node("n-3"))
    assert [(e.node_id, e.partition_index) for e in plan.new_executions] == [("n-3", 1)]
    [retry] = plan.new_evaluations
    assert retry.triggered_by == "exec-failure"
    assert retry.wait_until > now_ns()


def test_a_service_partition_that_failed_very_often_waits_the_longest_backoff() -> None:
    """Service retries are not counted: the backoff's doublings must stop before they overflow a float."""
    failed = [
        execution(
            f"n-{i}",
            ExecutionStateType.FAILED,
            ExecutionDesiredStateType.STOPPED,
            created=i,
            message="lost",
            retryable=True,
        )
        for i in range(1100)
    ]
    plan = decide(job(job_type="service", state=JobStateType.RUNNING), failed, node("n-new"))
    [retry] = plan.new_evaluations
    assert retry.wait_until == max(e.modify_time for e in failed) + 300 * 1_000_000_000
    assert not plan.new_executions


def test_a_batch_job_completes_when_every_partition_below_its_count_has_completed() -> None:
    def done(partition: int) -> Execution:
        return execution(
            f"n-{partition}",
            ExecutionStateType.COMPLETED,
            ExecutionDesiredStateType.STOPPED,
            partition=partition,
            created=partition,
        )

    stale = decide(job(count=2, state=JobStateType.RUNNING), [done(0), done(5)], node("n-0"), node("n-9"))
    assert stale.desired_job_state is None
    assert [(e.node_id, e.partition_index) for e in stale.new_executions] == [("n-9", 1)]
    complete = decide(job(count=2, state=JobStateType.RUNNING), [done(0), done(1), done(5)], node("n-1"))
    assert complete.desired_job_state == JobStateType.COMPLETED


@pytest.mark.parametrize("count", [4, 2**62])
def test_not_enough_nodes_counts_the_partitions_left_unplaced(count: int) -> None:
    live = [
        execution(f"n-{i}", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING, partition=i, created=i)
        for i in (0, 1)
    ]
    plan = decide(job(count=count, state=JobStateType.RUNNING), live, node("n-0"), node("n-1"), node("n-2"))
    assert plan.desired_job_state == JobStateType.FAILED
    assert plan.job_state_message.startswith(
        f"not enough nodes to run job. requested: {count - 3}, available: 3, suitable: 1."
    )


def decide_type(scheduler_type: type, spec: Job, executions: list[Execution], *nodes: NodeState) -> Plan:
    scheduler = scheduler_type(Nodes(*nodes), NodeSelector(CapacityTracker(), randomness=0), SchedulerConfig())
    plan = Plan(Evaluation(id="eval", job_id=spec.id, type=spec.type, triggered_by="job-register"), spec)
    scheduler.build(plan, executions)
    return plan


def test_ops_runs_directly_on_every_matching_node() -> None:
    plan = decide_type(
        OpsScheduler, job(job_type="ops"), [], node("n-1"), node("n-2"), node("n-3", engines=("docker",))
    )
    assert sorted(e.node_id for e in plan.new_executions) == ["n-1", "n-2"]
    assert all(e.desired == ExecutionDesiredStateType.RUNNING for e in plan.new_executions)
    assert plan.desired_job_state == JobStateType.RUNNING


def test_ops_with_no_matching_node_fails() -> None:
    plan = decide_type(OpsScheduler, job(job_type="ops"), [], node("n-1", engines=("docker",)))
    assert plan.desired_job_state == JobStateType.FAILED
    assert plan.job_state_message.startswith("not matching nodes to run job out of 1 available nodes.")


def test_ops_completes_when_all_are_done_and_fails_if_any_failed() -> None:
    done = [
        execution(f"n-{i}", ExecutionStateType.COMPLETED, ExecutionDesiredStateType.STOPPED, created=i) for i in (1, 2)
    ]
    ok = decide_type(OpsScheduler, job(job_type="ops", state=JobStateType.RUNNING), done, node("n-1"), node("n-2"))
    assert ok.desired_job_state == JobStateType.COMPLETED
    done[1].compute_state.state_type = ExecutionStateType.FAILED
    bad = decide_type(OpsScheduler, job(job_type="ops", state=JobStateType.RUNNING), done, node("n-1"), node("n-2"))
    assert bad.desired_job_state == JobStateType.FAILED
    assert bad.job_state_message == "Job failed because one or more executions failed"


def test_daemon_adds_nodes_without_a_live_execution_and_never_completes() -> None:
    running = execution("n-1", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING)
    plan = decide_type(
        DaemonScheduler, job(job_type="daemon", state=JobStateType.RUNNING), [running], node("n-1"), node("n-2")
    )
    assert [e.node_id for e in plan.new_executions] == ["n-2"]
    assert plan.desired_job_state is None


@pytest.mark.parametrize("scheduler_type", [DaemonScheduler, OpsScheduler])
def test_daemon_and_ops_jobs_go_by_nodes_whatever_count_a_stored_job_carries(scheduler_type: type) -> None:
    spec = job(job_type="daemon" if scheduler_type is DaemonScheduler else "ops")
    spec.count = 10**9  # submission forces 0; a job stored otherwise must not change anything
    plan = decide_type(scheduler_type, spec, [], node("n-1"), node("n-2"))
    assert sorted((e.node_id, e.partition_index) for e in plan.new_executions) == [("n-1", 0), ("n-2", 0)]
