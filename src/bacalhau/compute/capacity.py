"""How much this compute node offers, and how much of it running executions hold."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bacalhau.models.resources import GPU, Resources, parse_bytes, parse_cpu

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


def _gpu_count(machine: Resources, setting: str) -> int:
    """As the original: a percentage of the GPUs found, truncated to whole GPUs but never below one GPU when there
    is any; or a count (which may exceed the GPUs found: the rest are GPUs without details)."""
    text = setting.strip()
    if not text.endswith("%"):
        if not text.isascii() or not text.isdigit():
            raise ValueError(f"invalid GPU value {setting!r} for Compute.AllocatedCapacity.GPU")
        return int(text)
    try:
        share = _percent(text)
    except ValueError:
        share = None
    if share is None or not 0 <= share <= 1:
        raise ValueError(f"percentage must be between 0% and 100%, got {setting} (Compute.AllocatedCapacity.GPU)")
    count = machine.gpu * share
    return 1 if count < 1 <= machine.gpu else int(count)


def allocate(machine: Resources, setting: AllocatedCapacity) -> Resources:
    """The share of the machine this node offers to jobs: its GPUs are the first of those found."""
    cpu, memory, disk = (_percent(v) for v in (setting.cpu, setting.memory, setting.disk))
    gpu = _gpu_count(machine, setting.gpu)
    return Resources(
        cpu=round(machine.cpu * cpu, 3) if cpu is not None else parse_cpu(setting.cpu),
        memory=int(machine.memory * memory) if memory is not None else parse_bytes(setting.memory.lower()),
        disk=int(machine.disk * disk) if disk is not None else parse_bytes(setting.disk.lower()),
        gpu=gpu,
        gpus=[machine.gpus[i] if i < len(machine.gpus) else GPU() for i in range(gpu)],
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
    """What running executions hold, and which of the node's GPUs each has: a GPU (by its place in
    ``maximum.gpus``) is held by one execution at a time."""

    maximum: Resources
    running: dict[str, Resources] = field(default_factory=dict)
    queued: dict[str, Resources] = field(default_factory=dict)
    gpu_slots: dict[str, list[int]] = field(default_factory=dict)

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
        free = self.maximum.sub(self.used())
        free.gpus = [self.maximum.gpus[slot] for slot in self._free_gpu_slots()]
        return free

    def _free_gpu_slots(self) -> list[int]:
        held = {slot for slots in self.gpu_slots.values() for slot in slots}
        return [slot for slot in range(len(self.maximum.gpus)) if slot not in held]

    def try_reserve(self, execution_id: str, usage: Resources) -> bool:
        """Hold ``usage`` for an execution if it fits beside what runs, with GPUs no other execution holds."""
        if not self.used().add(usage).fits_in(self.maximum):
            return False
        slots = self._free_gpu_slots()[: usage.gpu]
        if len(slots) < usage.gpu:
            return False
        self.running[execution_id] = usage
        if slots:
            self.gpu_slots[execution_id] = slots
        return True

    def gpus_of(self, execution_id: str) -> list[GPU]:
        """The GPUs an execution holds (in the node's order)."""
        return [self.maximum.gpus[slot] for slot in self.gpu_slots.get(execution_id, [])]

    def release(self, execution_id: str) -> None:
        self.running.pop(execution_id, None)
        self.gpu_slots.pop(execution_id, None)
