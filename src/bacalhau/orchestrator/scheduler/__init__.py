"""Schedulers, one per job type: each turns an evaluation into a plan for its job."""

from __future__ import annotations

from typing import Protocol

from bacalhau.orchestrator.broker import Delivery
from bacalhau.orchestrator.scheduler.base import NodeSource, SchedulerBase, SchedulerConfig, stop_state
from bacalhau.orchestrator.scheduler.batch import BatchServiceScheduler
from bacalhau.orchestrator.scheduler.daemon import DaemonScheduler
from bacalhau.orchestrator.scheduler.ops import OpsScheduler
from bacalhau.orchestrator.selection import NodeSelector
from bacalhau.orchestrator.store import JobStore


class Scheduler(Protocol):
    async def process(self, delivery: Delivery) -> bool: ...


def schedulers(
    store: JobStore, nodes: NodeSource, selector: NodeSelector, config: SchedulerConfig
) -> dict[str, Scheduler]:
    """The scheduler for each job type."""
    batch = BatchServiceScheduler(store, nodes, selector, config)
    return {
        "batch": batch,
        "service": batch,
        "ops": OpsScheduler(store, nodes, selector, config),
        "daemon": DaemonScheduler(store, nodes, selector, config),
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
