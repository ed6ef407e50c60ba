"""Batch and service jobs: ``Count`` partitions, each needing one execution.

Nodes bid; the oldest accepted bid per partition is approved, extra executions are stopped. A batch job completes
when every partition has a completed execution; a service job runs until stopped, its executions replaced when they
fail or their node is lost. Where the original fails a job that cannot be placed at once, we queue it while nodes
are merely busy, and retries back off exponentially.

``Count`` is the client's number and may be huge: a round looks only at the partitions that have executions, counts
the others arithmetically and names only as many of them as there are nodes to take one, so its cost follows the
executions and nodes there are, never ``Count``.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Iterator
from itertools import islice

from bacalhau.models.evaluation import EvalStatus, EvalTrigger, new_evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.ids import short_id
from bacalhau.models.job import JobType
from bacalhau.models.node import NodeState
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.models.timefmt import after_ns, now_ns
from bacalhau.orchestrator import events
from bacalhau.orchestrator.plan import RETRYABLE, Plan
from bacalhau.orchestrator.scheduler.base import SchedulerBase, new_execution, stop_state
from bacalhau.orchestrator.selection import NodeRank, not_enough_nodes_message


class BatchServiceScheduler(SchedulerBase):
    def schedule(self, plan: Plan, executions: list[Execution], live: list[Execution], nodes: list[NodeState]) -> None:
        count = plan.job.desired_count
        live_ids = {e.id for e in live}
        placed = _by_partition(e for e in executions if 0 <= e.partition_index < count)
        emptied = [p for p in sorted(placed) if self._reconcile_partition(plan, placed[p], live_ids)]
        _stop_extra(plan, [e for e in live if not 0 <= e.partition_index < count])  # Count was lowered
        if emptied or len(placed) < count:
            self._place(plan, emptied, placed.keys(), executions, nodes)
        if plan.job_failed:
            return
        if plan.job.type == JobType.BATCH.value and sum(map(_has_completed, placed.values())) == count:
            plan.mark_job(JobStateType.COMPLETED, events.job_state_update(JobStateType.COMPLETED))
            return
        plan.mark_running_if_eligible(events.job_state_update(JobStateType.RUNNING))

    @staticmethod
    def _reconcile_partition(plan: Plan, group: list[Execution], live_ids: set[str]) -> bool:
        """Approve, keep or stop this partition's executions; True if it needs a new one."""
        ordered = sorted(group, key=lambda e: (e.create_time, e.id))
        live = [e for e in ordered if e.id in live_ids]
        if plan.job.type == JobType.BATCH.value and _has_completed(ordered):
            _stop_extra(plan, live)
            return False
        running = [e for e in live if e.desired == ExecutionDesiredStateType.RUNNING]
        if running:
            _stop_extra(plan, live, keep=running[0])
            return False
        accepted = [e for e in live if e.state == ExecutionStateType.ASK_FOR_BID_ACCEPTED]
        if accepted:
            plan.approve_execution(accepted[0], events.execution_running())
            _stop_extra(plan, live, keep=accepted[0])
            return False
        return not live

    def _place(
        self,
        plan: Plan,
        emptied: list[int],
        placed: Collection[int],
        executions: list[Execution],
        nodes: list[NodeState],
    ) -> None:
        """New executions for the partitions that need one: those whose executions all ended (once their retry
        backoff is over) and those that never had one, lowest first, one per matching node."""
        failures = _failures_by_partition(executions)
        ready: list[int] = []
        retry_at = 0
        for partition in emptied:
            failed_here = failures.get(partition, [])
            if failed_here and not self._may_retry(plan, failed_here):
                return
            wait_until = self.retry_wait_until(failed_here)
            if wait_until > now_ns():
                retry_at = max(retry_at, wait_until)
            else:
                ready.append(partition)
        if retry_at:
            retry = new_evaluation(plan.job, EvalTrigger.EXEC_FAILURE, wait_until=retry_at, comment="retry backoff")
            plan.new_evaluations.append(retry)

        count = plan.job.desired_count
        never_placed = count - len(placed)
        needed = len(ready) + never_placed  # one node each at most: the best this many are all it can use
        stopping, taking = [*plan.stopping(), *plan.released], plan.placed_before
        matched, rejected = self._selector.rank(
            plan.job, nodes, executions, stopping=stopping, taking=taking, limit=needed
        )
        chosen = islice(heapq.merge(ready, _never_placed(placed, count)), len(matched))
        for partition, rank in zip(chosen, matched, strict=False):
            new_execution(plan, rank.node_id, direct=False, partition=partition)
        unplaced = len(ready) + never_placed - len(matched)
        if unplaced > 0:
            retried = [failures[p][-1] for p in ready if p in failures]
            last_failure = max(retried, key=_failure_order, default=None)
            self._cannot_place(plan, unplaced, matched + rejected, last_failure)

    def _may_retry(self, plan: Plan, failed_here: list[Execution]) -> bool:
        """Fail the job if this partition's last failure cannot be fixed by retrying, or retries ran out."""
        last = failed_here[-1]
        reason = last.compute_state.message or "unknown error"
        if last.compute_state.details.get(RETRYABLE) != "true":
            message = f"execution {short_id(last.id)} failed: {reason}"
        elif len(failed_here) > self._config.max_retries and plan.job.type == JobType.BATCH.value:
            message = f"{events.JOB_RETRIES_EXHAUSTED}: execution {short_id(last.id)} failed: {reason}"
        else:
            return True
        plan.mark_job(JobStateType.FAILED, events.job_failed(message), message)
        return False

    def _cannot_place(self, plan: Plan, unplaced: int, ranks: list[NodeRank], last_failure: Execution | None) -> None:
        """Queue the job while it may still be placed; fail it when it never can."""
        job = plan.job
        reason = not_enough_nodes_message(unplaced, ranks)
        queue_timeout = job.task.timeouts_config.queue_timeout
        deadline = after_ns(job.create_time, queue_timeout) if queue_timeout > 0 else 0
        busy = any(rank.busy for rank in ranks)
        if (deadline and now_ns() >= deadline) or (not busy and not deadline):
            message = reason
            if last_failure is not None:
                message = (
                    f"execution {short_id(last_failure.id)} on node {short_id(last_failure.node_id)} failed: "
                    f"{last_failure.compute_state.message or 'unknown error'}\n{reason}"
                )
            plan.mark_job(JobStateType.FAILED, events.job_failed(message), message)
            return
        plan.outcome = EvalStatus.BLOCKED
        plan.evaluation.wait_until = deadline
        placed_any = bool(plan.new_executions)
        if not placed_any and job.state.state_type in (JobStateType.PENDING, JobStateType.RUNNING):
            event = events.job_queued(reason)
            plan.mark_job(JobStateType.QUEUED, event, event.message)


def _stop_extra(plan: Plan, executions: list[Execution], keep: Execution | None = None) -> None:
    """Stop these live executions, all but ``keep``: their partition has more than it needs, or is gone."""
    for execution in executions:
        if execution is not keep:
            plan.stop_execution(execution, events.stopped_by_oversubscription(), stop_state(execution))


def _by_partition(executions: Iterable[Execution]) -> dict[int, list[Execution]]:
    partitions: dict[int, list[Execution]] = {}
    for execution in executions:
        partitions.setdefault(execution.partition_index, []).append(execution)
    return partitions


def _failures_by_partition(executions: list[Execution]) -> dict[int, list[Execution]]:
    """Each partition's failed executions, oldest failure first."""
    failed = sorted((e for e in executions if e.state == ExecutionStateType.FAILED), key=_failure_order)
    return _by_partition(failed)


def _failure_order(execution: Execution) -> tuple[int, str]:
    return execution.modify_time, execution.id


def _has_completed(group: list[Execution]) -> bool:
    return any(e.state == ExecutionStateType.COMPLETED for e in group)


def _never_placed(placed: Collection[int], count: int) -> Iterator[int]:
    """The partitions below ``count`` that have no execution, lowest first, named only as they are taken: reaching
    the n-th costs n steps plus one per placed partition it skips, however large ``count`` is."""
    partition = 0
    while partition < count:
        if partition not in placed:
            yield partition
        partition += 1
