"""Ops jobs (``--target all``): run once on every matching node; fail if any execution fails."""

from __future__ import annotations

from bacalhau.models.execution import Execution
from bacalhau.models.node import NodeState
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.orchestrator import events
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.scheduler.base import SchedulerBase, new_execution
from bacalhau.orchestrator.selection import no_matching_nodes_message


class OpsScheduler(SchedulerBase):
    def schedule(self, plan: Plan, executions: list[Execution], live: list[Execution], nodes: list[NodeState]) -> None:
        matched, rejected = self._selector.rank(plan.job, nodes, executions, stopping=plan.stopping())
        if not matched and not executions:
            message = no_matching_nodes_message(rejected)
            plan.mark_job(JobStateType.FAILED, events.job_failed(message), message)
            return
        already = {e.node_id for e in executions}
        for rank in matched:
            if rank.node_id not in already:
                new_execution(plan, rank.node_id, direct=True)
        if not live and not plan.new_executions:
            failed = any(e.state == ExecutionStateType.FAILED for e in executions) or any(
                u.compute == ExecutionStateType.FAILED for u in plan.updated.values()
            )
            if failed:
                plan.mark_job(
                    JobStateType.FAILED, events.job_failed(events.JOB_EXECUTIONS_FAILED), events.JOB_EXECUTIONS_FAILED
                )
            else:
                plan.mark_job(JobStateType.COMPLETED, events.job_state_update(JobStateType.COMPLETED))
            return
        plan.mark_running_if_eligible(events.job_state_update(JobStateType.RUNNING))
