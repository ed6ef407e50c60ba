"""Schedulers: turn an evaluation into a plan for its job, given the job's executions and the nodes.

``BatchServiceScheduler`` follows the original's batch/service semantics: ``Count`` partitions, each needing one
execution; nodes bid, the oldest accepted bid per partition is approved, extra executions are stopped; a batch job
completes when every partition has a completed execution, a service job runs until stopped. Where the original
fails a job that cannot be placed at once, we queue it while nodes are merely busy (see DESIGN.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from bacalhau.errors import JobNotFound
from bacalhau.models.evaluation import EvalStatus
from bacalhau.models.execution import AllocatedResources, Execution
from bacalhau.models.ids import new_execution_id, short_id
from bacalhau.models.job import JobType
from bacalhau.models.node import NodeState
from bacalhau.models.state import (
    ExecutionDesiredState,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
    JobStateType,
)
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator import events
from bacalhau.orchestrator.broker import Delivery
from bacalhau.orchestrator.plan import RETRYABLE, Plan, apply_plan
from bacalhau.orchestrator.selection import NodeSelector, job_resources, not_enough_nodes_message
from bacalhau.orchestrator.store import JobStore

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_BIDDING = frozenset({ExecutionStateType.NEW, ExecutionStateType.ASK_FOR_BID, ExecutionStateType.ASK_FOR_BID_ACCEPTED})


@dataclass
class SchedulerConfig:
    max_retries: int = 2
    execution_timeout_grace: float = 30.0


class NodeSource(Protocol):
    def all(self) -> list[NodeState]: ...


class Scheduler(Protocol):
    async def process(self, delivery: Delivery) -> bool:
        """Plan and apply; True when the job is left waiting for capacity (the evaluation is blocked)."""
        ...


def stop_state(execution: Execution) -> ExecutionStateType:
    """How an execution ends when the orchestrator stops it: a bid is rejected, a run is cancelled."""
    return ExecutionStateType.BID_REJECTED if execution.state in _BIDDING else ExecutionStateType.CANCELLED


class BatchServiceScheduler:
    def __init__(self, store: JobStore, nodes: NodeSource, selector: NodeSelector, config: SchedulerConfig) -> None:
        self._store = store
        self._nodes = nodes
        self._selector = selector
        self._config = config

    async def process(self, delivery: Delivery) -> bool:
        evaluation = delivery.evaluation
        try:
            job = await self._store.get_job(evaluation.job_id)
        except JobNotFound:
            log.warning("evaluation %s refers to unknown job %s", evaluation.id, evaluation.job_id)
            await self._store.transact(lambda tx: tx.set_evaluation_status(evaluation, EvalStatus.COMPLETE))
            return False
        executions = await self._store.get_executions(job.id)
        plan = Plan(evaluation, job, delivery.superseded)
        self.build(plan, executions)
        await self._store.transact(lambda tx: apply_plan(tx, plan))
        return plan.outcome == EvalStatus.BLOCKED

    # ---- the decision, kept free of I/O so that it can be tested directly
    def build(self, plan: Plan, executions: list[Execution]) -> None:
        job = plan.job
        live = [e for e in executions if not e.is_terminal]
        if job.is_terminal:
            for execution in live:
                plan.stop_execution(execution, events.stopped_by_job_stop(), stop_state(execution))
            return

        nodes = {node.info.node_id: node for node in self._nodes.all()}
        healthy = []
        for execution in live:
            if nodes.get(execution.node_id) is None or not nodes[execution.node_id].is_schedulable:
                plan.stop_execution(execution, events.stopped_by_lost_node(), ExecutionStateType.FAILED)
            else:
                healthy.append(execution)
        live = self._handle_timeouts(plan, healthy)
        if plan.job_failed:
            self._stop_all(plan, live)
            return

        count = job.desired_count
        by_partition: dict[int, list[Execution]] = {}
        for execution in executions:
            by_partition.setdefault(execution.partition_index, []).append(execution)
        live_ids = {e.id for e in live}

        needs_new: list[int] = []
        for partition in range(count):
            self._reconcile_partition(plan, by_partition.get(partition, []), live_ids, needs_new, partition)
        for partition, group in by_partition.items():
            if partition >= count:
                for execution in group:
                    if execution.id in live_ids:
                        plan.stop_execution(execution, events.stopped_by_oversubscription(), stop_state(execution))

        if needs_new:
            self._place(plan, needs_new, executions, list(nodes.values()))
        if plan.job_failed:
            self._stop_all(plan, live)
            return
        if job.type == JobType.BATCH.value and not needs_new and self._all_completed(by_partition, count):
            plan.mark_job(JobStateType.COMPLETED, events.job_state_update(JobStateType.COMPLETED))
            return
        plan.mark_running_if_eligible(events.job_state_update(JobStateType.RUNNING))

    @staticmethod
    def _stop_all(plan: Plan, live: list[Execution]) -> None:
        for execution in live:
            if execution.id not in plan.updated:
                plan.stop_execution(execution, events.stopped_by_job_failure(), stop_state(execution))

    def _handle_timeouts(self, plan: Plan, live: list[Execution]) -> list[Execution]:
        job = plan.job
        if job.is_long_running:
            return live
        timeouts = job.task.timeouts_config
        now = now_ns()
        if timeouts.total_timeout > 0 and job.create_time < now - timeouts.total_timeout * _NS:
            plan.mark_job(JobStateType.FAILED, events.job_timed_out(timeouts.total_timeout), "Job timed out")
            return live
        limit = timeouts.effective_execution_timeout()
        if limit <= 0:
            return live
        expired_before = now - int((limit + self._config.execution_timeout_grace) * _NS)
        remaining = []
        for execution in live:
            if execution.state.is_executing and execution.modify_time < expired_before:
                plan.stop_execution(execution, events.execution_timed_out(limit), ExecutionStateType.FAILED)
            else:
                remaining.append(execution)
        return remaining

    def _reconcile_partition(
        self, plan: Plan, group: list[Execution], live_ids: set[str], needs_new: list[int], partition: int
    ) -> None:
        ordered = sorted(group, key=lambda e: (e.create_time, e.id))
        live = [e for e in ordered if e.id in live_ids]
        if plan.job.type == JobType.BATCH.value and any(e.state == ExecutionStateType.COMPLETED for e in ordered):
            for execution in live:
                plan.stop_execution(execution, events.stopped_by_oversubscription(), stop_state(execution))
            return
        running = [e for e in live if e.desired == ExecutionDesiredStateType.RUNNING]
        if running:
            for execution in [e for e in live if e is not running[0]]:
                plan.stop_execution(execution, events.stopped_by_oversubscription(), stop_state(execution))
            return
        accepted = [e for e in live if e.state == ExecutionStateType.ASK_FOR_BID_ACCEPTED]
        if accepted:
            plan.approve_execution(accepted[0], events.execution_running())
            for execution in live:
                if execution is not accepted[0]:
                    plan.stop_execution(execution, events.stopped_by_oversubscription(), stop_state(execution))
            return
        if not live:
            needs_new.append(partition)

    def _place(self, plan: Plan, partitions: list[int], executions: list[Execution], nodes: list[NodeState]) -> None:
        job = plan.job
        failures = sorted(
            (e for e in executions if e.state == ExecutionStateType.FAILED), key=lambda e: (e.modify_time, e.id)
        )
        for partition in partitions:
            failed_here = [e for e in failures if e.partition_index == partition]
            if not failed_here:
                continue
            last = failed_here[-1]
            reason = last.compute_state.message or "unknown error"
            if last.compute_state.details.get(RETRYABLE) != "true":
                message = f"execution {short_id(last.id)} failed: {reason}"
            elif len(failed_here) > self._config.max_retries:
                message = f"{events.JOB_RETRIES_EXHAUSTED}: execution {short_id(last.id)} failed: {reason}"
            else:
                continue
            plan.mark_job(JobStateType.FAILED, events.job_failed(message), message)
            return

        matched, rejected = self._selector.rank(job, nodes, executions)
        resources = job_resources(job)
        for partition, rank in zip(partitions, matched, strict=False):
            execution = Execution(
                id=new_execution_id(),
                namespace=job.namespace,
                eval_id=plan.evaluation.id,
                node_id=rank.node_id,
                job_id=job.id,
                allocated_resources=AllocatedResources(tasks={job.task.name: resources}),
                desired_state=ExecutionDesiredState(state_type=ExecutionDesiredStateType.PENDING),
                compute_state=ExecutionState(state_type=ExecutionStateType.NEW),
                partition_index=partition,
            )
            plan.add_execution(execution, events.execution_created(rank.node_id))

        unplaced = len(partitions) - len(matched)
        if unplaced <= 0:
            return
        reason = not_enough_nodes_message(unplaced, matched + rejected)
        queue_timeout = job.task.timeouts_config.queue_timeout
        deadline = job.create_time + queue_timeout * _NS if queue_timeout > 0 else 0
        busy = any(rank.busy for rank in rejected)
        if (deadline and now_ns() >= deadline) or (not busy and not deadline):
            failed_here = [e for e in failures if e.partition_index in partitions]
            message = reason
            if failed_here:
                last = failed_here[-1]
                message = (
                    f"execution {short_id(last.id)} on node {short_id(last.node_id)} failed: "
                    f"{last.compute_state.message or 'unknown error'}\n{reason}"
                )
            plan.mark_job(JobStateType.FAILED, events.job_failed(message), message)
            return
        plan.outcome = EvalStatus.BLOCKED
        plan.evaluation.wait_until = deadline
        if not matched and plan.job.state.state_type in (JobStateType.PENDING, JobStateType.RUNNING):
            event = events.job_queued(reason)
            plan.mark_job(JobStateType.QUEUED, event, event.message)

    @staticmethod
    def _all_completed(by_partition: dict[int, list[Execution]], count: int) -> bool:
        return all(any(e.state == ExecutionStateType.COMPLETED for e in by_partition.get(p, [])) for p in range(count))
