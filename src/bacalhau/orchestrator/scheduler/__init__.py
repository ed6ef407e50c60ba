"""Schedulers, one per job type: each turns an evaluation into a plan for its job."""

from __future__ import annotations

from typing import Protocol

from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.orchestrator.broker import Delivery
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.scheduler.base import NodeSource, SchedulerBase, SchedulerConfig, stop_state
from bacalhau.orchestrator.scheduler.batch import BatchServiceScheduler
from bacalhau.orchestrator.scheduler.daemon import DaemonScheduler
from bacalhau.orchestrator.scheduler.ops import OpsScheduler
from bacalhau.orchestrator.selection import NodeSelector


class Scheduler(Protocol):
    def plan(
        self,
        delivery: Delivery,
        job: Job,
        executions: list[Execution],
        *,
        released: list[Execution] | None = None,
        placed_before: list[Execution] | None = None,
    ) -> Plan: ...


def schedulers(nodes: NodeSource, selector: NodeSelector, config: SchedulerConfig) -> dict[str, Scheduler]:
    """The scheduler for each job type."""
    batch = BatchServiceScheduler(nodes, selector, config)
    return {
        "batch": batch,
        "service": batch,
        "ops": OpsScheduler(nodes, selector, config),
        "daemon": DaemonScheduler(nodes, selector, config),
    }


__all__ = [
    "BatchServiceScheduler",
    "DaemonScheduler",
    "OpsScheduler",
    "Scheduler",
    "SchedulerBase",
    "SchedulerConfig",
    "schedulers",
    "stop_state",
]
