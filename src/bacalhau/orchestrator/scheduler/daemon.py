"""Daemon jobs: one long-running execution on every matching node, including nodes that join later."""

from __future__ import annotations

from bacalhau.models.execution import Execution
from bacalhau.models.node import NodeState
from bacalhau.models.state import JobStateType
from bacalhau.orchestrator import events
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.scheduler.base import SchedulerBase, new_execution


class DaemonScheduler(SchedulerBase):
    def schedule(self, plan: Plan, executions: list[Execution], live: list[Execution], nodes: list[NodeState]) -> None:
        running_on = {e.node_id for e in live}
        # Only nodes without a live execution are candidates; a node where the daemon failed may restart it.
        matched, _ = self._selector.rank(plan.job, nodes, live, stopping=plan.stopping())
        for rank in matched:
            if rank.node_id not in running_on:
                new_execution(plan, rank.node_id, direct=True)
        plan.mark_running_if_eligible(events.job_state_update(JobStateType.RUNNING))
