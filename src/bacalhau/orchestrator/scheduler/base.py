"""What every scheduler shares: the steps common to all job types, around each type's own decisions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

from bacalhau.models.evaluation import EvalTrigger, new_evaluation
from bacalhau.models.execution import AllocatedResources, Execution
from bacalhau.models.ids import new_execution_id
from bacalhau.models.job import Job
from bacalhau.models.node import NodeState
from bacalhau.models.state import (
    ExecutionDesiredState,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
    JobStateType,
)
from bacalhau.models.timefmt import after_ns, now_ns
from bacalhau.orchestrator import events
from bacalhau.orchestrator.broker import Delivery
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.selection import NodeSelector, job_resources

NS = 1_000_000_000
_BIDDING = frozenset({ExecutionStateType.NEW, ExecutionStateType.ASK_FOR_BID, ExecutionStateType.ASK_FOR_BID_ACCEPTED})


@dataclass
class SchedulerConfig:
    max_retries: int = 2
    retry_backoff: float = 1.0
    max_retry_backoff: float = 300.0
    execution_timeout_grace: float = 30.0


class NodeSource(Protocol):
    def all(self) -> list[NodeState]: ...

    def get(self, node_id: str) -> NodeState | None: ...


def stop_state(execution: Execution) -> ExecutionStateType:
    """How an execution ends when the orchestrator stops it: a pending bid is rejected, a run is cancelled."""
    if execution.state in _BIDDING and execution.desired == ExecutionDesiredStateType.PENDING:
        return ExecutionStateType.BID_REJECTED
    return ExecutionStateType.CANCELLED


def new_execution(plan: Plan, node_id: str, *, direct: bool, partition: int = 0) -> Execution:
    """An execution of the plan's job on a node: a bid request, or (``direct``) an order to run it."""
    job = plan.job
    execution = Execution(
        id=new_execution_id(),
        namespace=job.namespace,
        eval_id=plan.evaluation.id,
        node_id=node_id,
        job_id=job.id,
        allocated_resources=AllocatedResources(tasks={job.task.name: job_resources(job)}),
        desired_state=ExecutionDesiredState(
            state_type=ExecutionDesiredStateType.RUNNING if direct else ExecutionDesiredStateType.PENDING
        ),
        compute_state=ExecutionState(state_type=ExecutionStateType.NEW),
        partition_index=partition,
        job_version=job.version,
    )
    plan.add_execution(execution, events.execution_created(node_id))
    return execution


def _retire_old_versions(
    plan: Plan, executions: list[Execution], live: list[Execution]
) -> tuple[list[Execution], list[Execution]]:
    """Stop what still runs of the job's earlier versions: the job type's decisions concern its current version only
    (its executions, completions and retries), so a new version starts afresh on every node it needs."""
    version = plan.job.version
    for execution in live:
        if execution.job_version != version:
            plan.stop_execution(execution, events.stopped_for_job_update(), stop_state(execution))
    return [e for e in executions if e.job_version == version], [e for e in live if e.job_version == version]


class SchedulerBase(ABC):
    def __init__(self, nodes: NodeSource, selector: NodeSelector, config: SchedulerConfig) -> None:
        self._nodes = nodes
        self._selector = selector
        self._config = config

    def plan(
        self,
        delivery: Delivery,
        job: Job,
        executions: list[Execution],
        *,
        released: list[Execution] | None = None,
        placed_before: list[Execution] | None = None,
    ) -> Plan:
        """What to do about the delivered evaluation, given its job's current state (and, planned inside a
        transaction that changed capacity first, what it released and placed: see :class:`Plan`)."""
        plan = Plan(
            delivery.evaluation, job, delivery.superseded, released=released or [], placed_before=placed_before or []
        )
        self.build(plan, executions)
        return plan

    def build(self, plan: Plan, executions: list[Execution]) -> None:
        """The decision, free of I/O so that it can be tested directly."""
        live = [e for e in executions if not e.is_terminal]
        if plan.job.is_terminal:
            for execution in live:
                plan.stop_execution(execution, events.stopped_by_job_stop(), stop_state(execution))
            return
        executions, live = _retire_old_versions(plan, executions, live)
        live = self._fail_lost(plan, live)
        if not plan.job.is_long_running:
            live = self._handle_timeouts(plan, live)
        if plan.job_failed:
            self.stop_all(plan, live)
            return
        self.schedule(plan, executions, live, self._nodes.all())
        if plan.job_failed:
            self.stop_all(plan, live)
        elif not plan.job.is_long_running:
            self._set_timeout_timers(plan)

    @abstractmethod
    def schedule(self, plan: Plan, executions: list[Execution], live: list[Execution], nodes: list[NodeState]) -> None:
        """The job type's own decisions, for a job that is not terminal."""

    @staticmethod
    def stop_all(plan: Plan, live: list[Execution]) -> None:
        for execution in live:
            if execution.id not in plan.updated:
                plan.stop_execution(execution, events.stopped_by_job_failure(), stop_state(execution))

    def _fail_lost(self, plan: Plan, live: list[Execution]) -> list[Execution]:
        healthy = []
        for execution in live:
            node = self._nodes.get(execution.node_id)
            if node is None or not node.is_schedulable:
                plan.stop_execution(execution, events.stopped_by_lost_node(), ExecutionStateType.FAILED)
            else:
                healthy.append(execution)
        return healthy

    def _handle_timeouts(self, plan: Plan, live: list[Execution]) -> list[Execution]:
        job = plan.job
        timeouts = job.task.timeouts_config
        now = now_ns()
        if timeouts.total_timeout > 0 and job.create_time < now - timeouts.total_timeout * NS:
            plan.mark_job(JobStateType.FAILED, events.job_timed_out(timeouts.total_timeout), "Job timed out")
            return live
        limit = timeouts.effective_execution_timeout()
        if limit <= 0:
            return live
        expired_before = now - int((limit + self._config.execution_timeout_grace) * NS)
        remaining = []
        for execution in live:
            if execution.state.is_executing and execution.modify_time < expired_before:
                plan.stop_execution(execution, events.execution_timed_out(limit), ExecutionStateType.FAILED)
            else:
                remaining.append(execution)
        return remaining

    def _set_timeout_timers(self, plan: Plan) -> None:
        """Persisted wake-ups, so that timeouts are enforced even when nothing else happens to the job.

        The compute node enforces an execution's timeout itself; these are the orchestrator's backstop, and the
        only enforcement of a job's total timeout while it waits in a queue.
        """
        job = plan.job
        timeouts = job.task.timeouts_config
        if plan.evaluation.triggered_by == EvalTrigger.JOB_REGISTER.value and timeouts.total_timeout > 0:
            deadline = after_ns(job.create_time, timeouts.total_timeout + 1)
            plan.new_evaluations.append(new_evaluation(job, EvalTrigger.JOB_TIMEOUT, wait_until=deadline))
        limit = timeouts.effective_execution_timeout()
        if limit > 0 and plan.has_running_executions():
            grace = self._config.execution_timeout_grace
            deadline = after_ns(now_ns(), limit + 2 * grace)
            plan.new_evaluations.append(new_evaluation(job, EvalTrigger.EXEC_TIMEOUT, wait_until=deadline))

    def retry_wait_until(self, failures: list[Execution]) -> int:
        """When the next attempt may start, given the failed attempts so far (exponential backoff, capped)."""
        if len(failures) <= 1:
            return 0
        # Service retries are not counted: past 64 doublings the cap has long applied, and 2**1024 is no float.
        doublings = min(len(failures) - 2, 64)
        delay = min(self._config.retry_backoff * 2**doublings, self._config.max_retry_backoff)
        return max(e.modify_time for e in failures) + int(delay * NS)
