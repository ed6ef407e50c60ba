"""Batch and service jobs: ``Count`` partitions, each needing one execution.

Nodes bid; the oldest accepted bid per partition is approved, extra executions are stopped. A batch job completes
when every partition has a completed execution; a service job runs until stopped, its executions replaced when they
fail or their node is lost. Where the original fails a job that cannot be placed at once, we queue it while nodes
are merely busy, and retries back off exponentially.
"""

from __future__ import annotations

from bacalhau.models.evaluation import EvalStatus, EvalTrigger, new_evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.ids import short_id
from bacalhau.models.job import JobType
from bacalhau.models.node import NodeState
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator import events
from bacalhau.orchestrator.plan import RETRYABLE, Plan
from bacalhau.orchestrator.scheduler.base import NS, SchedulerBase, new_execution, stop_state
from bacalhau.orchestrator.selection import NodeRank, not_enough_nodes_message


class BatchServiceScheduler(SchedulerBase):
    def schedule(self, plan: Plan, executions: list[Execution], live: list[Execution], nodes: list[NodeState]) -> None:
        count = plan.job.desired_count
        by_partition: dict[int, list[Execution]] = {}
        for execution in executions:
            by_partition.setdefault(execution.partition_index, []).append(execution)
        live_ids = {e.id for e in live}

        needs_new: list[int] = []
        for partition in range(count):
            if self._reconcile_partition(plan, by_partition.get(partition, []), live_ids):
                needs_new.append(partition)
        for partition, group in by_partition.items():
            if partition >= count:
                for execution in group:
                    if execution.id in live_ids:
                        plan.stop_execution(execution, events.stopped_by_oversubscription(), stop_state(execution))

        if needs_new:
            self._place(plan, needs_new, executions, nodes)
        if plan.job_failed:
            return
        if plan.job.type == JobType.BATCH.value and not needs_new and self._all_completed(by_partition, count):
            plan.mark_job(JobStateType.COMPLETED, events.job_state_update(JobStateType.COMPLETED))
            return
        plan.mark_running_if_eligible(events.job_state_update(JobStateType.RUNNING))

    def _reconcile_partition(self, plan: Plan, group: list[Execution], live_ids: set[str]) -> bool:
        """Approve, keep or stop this partition's executions; True if it needs a new one."""
        ordered = sorted(group, key=lambda e: (e.create_time, e.id))
        live = [e for e in ordered if e.id in live_ids]
        if plan.job.type == JobType.BATCH.value and any(e.state == ExecutionStateType.COMPLETED for e in ordered):
            for execution in live:
                plan.stop_execution(execution, events.stopped_by_oversubscription(), stop_state(execution))
            return False
        running = [e for e in live if e.desired == ExecutionDesiredStateType.RUNNING]
        if running:
            for execution in live:
                if execution is not running[0]:
                    plan.stop_execution(execution, events.stopped_by_oversubscription(), stop_state(execution))
            return False
        accepted = [e for e in live if e.state == ExecutionStateType.ASK_FOR_BID_ACCEPTED]
        if accepted:
            plan.approve_execution(accepted[0], events.execution_running())
            for execution in live:
                if execution is not accepted[0]:
                    plan.stop_execution(execution, events.stopped_by_oversubscription(), stop_state(execution))
            return False
        return not live

    def _place(self, plan: Plan, partitions: list[int], executions: list[Execution], nodes: list[NodeState]) -> None:
        failures = sorted(
            (e for e in executions if e.state == ExecutionStateType.FAILED), key=lambda e: (e.modify_time, e.id)
        )
        ready: list[int] = []
        retry_at = 0
        for partition in partitions:
            failed_here = [e for e in failures if e.partition_index == partition]
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

        matched, rejected = self._selector.rank(plan.job, nodes, executions)
        for partition, rank in zip(ready, matched, strict=False):
            new_execution(plan, rank.node_id, direct=False, partition=partition)
        unplaced = len(ready) - len(matched)
        if unplaced > 0:
            self._cannot_place(plan, unplaced, matched + rejected, [e for e in failures if e.partition_index in ready])

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

    def _cannot_place(self, plan: Plan, unplaced: int, ranks: list[NodeRank], failures: list[Execution]) -> None:
        """Queue the job while it may still be placed; fail it when it never can."""
        job = plan.job
        reason = not_enough_nodes_message(unplaced, ranks)
        queue_timeout = job.task.timeouts_config.queue_timeout
        deadline = job.create_time + queue_timeout * NS if queue_timeout > 0 else 0
        busy = any(rank.busy for rank in ranks)
        if (deadline and now_ns() >= deadline) or (not busy and not deadline):
            message = reason
            if failures:
                last = failures[-1]
                message = (
                    f"execution {short_id(last.id)} on node {short_id(last.node_id)} failed: "
                    f"{last.compute_state.message or 'unknown error'}\n{reason}"
                )
            plan.mark_job(JobStateType.FAILED, events.job_failed(message), message)
            return
        plan.outcome = EvalStatus.BLOCKED
        plan.evaluation.wait_until = deadline
        placed_any = bool(plan.new_executions)
        if not placed_any and job.state.state_type in (JobStateType.PENDING, JobStateType.RUNNING):
            event = events.job_queued(reason)
            plan.mark_job(JobStateType.QUEUED, event, event.message)

    @staticmethod
    def _all_completed(by_partition: dict[int, list[Execution]], count: int) -> bool:
        return all(any(e.state == ExecutionStateType.COMPLETED for e in by_partition.get(p, [])) for p in range(count))
