"""How much this compute node offers, and how much of it running executions hold."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bacalhau.models.resources import Resources, parse_bytes, parse_cpu

# What a task gets on the compute side when it leaves a resource unset (the original's defaults).
DEFAULT_TASK_RESOURCES = Resources(cpu=0.1, memory=100 * 1024 * 1024)


@dataclass
class AllocatedCapacity:
    """``Compute.AllocatedCapacity``: a percentage of the machine (``80%``) or an absolute amount (``4``, ``8Gi``)."""

    cpu: str = "80%"
    memory: str = "80%"
    disk: str = "80%"
    gpu: str = "100%"


def machine_resources(data_dir: Path) -> Resources:
    data_dir.mkdir(parents=True, exist_ok=True)
    return Resources(
        cpu=float(os.cpu_count() or 1),
        memory=psutil.virtual_memory().total,
        disk=shutil.disk_usage(data_dir).free,
        gpu=0,
    )


def _percent(setting: str) -> float | None:
    text = setting.strip()
    return float(text[:-1]) / 100 if text.endswith("%") else None


def allocate(machine: Resources, setting: AllocatedCapacity) -> Resources:
    """The share of the machine this node offers to jobs."""
    cpu, memory, disk, gpu = (_percent(v) for v in (setting.cpu, setting.memory, setting.disk, setting.gpu))
    return Resources(
        cpu=round(machine.cpu * cpu, 3) if cpu is not None else parse_cpu(setting.cpu),
        memory=int(machine.memory * memory) if memory is not None else parse_bytes(setting.memory.lower()),
        disk=int(machine.disk * disk) if disk is not None else parse_bytes(setting.disk.lower()),
        gpu=int(-(-(machine.gpu * gpu) // 1)) if gpu is not None else int(setting.gpu),
    )


def task_usage(requested: Resources) -> Resources:
    """A task's request with the compute-side defaults filled in."""
    return Resources(
        cpu=requested.cpu or DEFAULT_TASK_RESOURCES.cpu,
        memory=requested.memory or DEFAULT_TASK_RESOURCES.memory,
        disk=requested.disk,
        gpu=requested.gpu,
    )


@dataclass
class CapacityTracker:
    maximum: Resources
    running: dict[str, Resources] = field(default_factory=dict)
    queued: dict[str, Resources] = field(default_factory=dict)

    def used(self) -> Resources:
        total = Resources()
        for usage in self.running.values():
            total = total.add(usage)
        return total

    def queued_total(self) -> Resources:
        total = Resources()
        for usage in self.queued.values():
            total = total.add(usage)
        return total

    def available(self) -> Resources:
        return self.maximum.sub(self.used())

    def try_reserve(self, execution_id: str, usage: Resources) -> bool:
        if not self.used().add(usage).fits_in(self.maximum):
            return False
        self.running[execution_id] = usage
        return True

    def release(self, execution_id: str) -> None:
        self.running.pop(execution_id, None)
