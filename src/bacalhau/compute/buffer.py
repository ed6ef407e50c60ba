"""The executor buffer: accepted executions wait here until the node has room, highest priority first.

A smaller execution may overtake a bigger one that does not fit yet, so one large job never blocks the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from dataclasses import dataclass, field

from bacalhau.compute.capacity import CapacityTracker, task_usage
from bacalhau.compute.runner import ExecutionRunner
from bacalhau.models.execution import Execution
from bacalhau.models.resources import GPU, Resources

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Queued:
    sort_key: tuple[int, int]
    execution: Execution = field(compare=False)
    usage: Resources = field(compare=False)


class ExecutorBuffer:
    def __init__(self, runner: ExecutionRunner, capacity: CapacityTracker) -> None:
        self._runner = runner
        self._capacity = capacity
        self._queue: list[_Queued] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._counter = itertools.count()

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def queued_count(self) -> int:
        return len(self._queue)

    def enqueue(self, execution: Execution) -> None:
        if execution.id in self._running or any(q.execution.id == execution.id for q in self._queue):
            return
        job = execution.job
        assert job is not None
        requested, _ = job.task.resources_config.parse()
        usage = task_usage(requested)
        self._queue.append(_Queued((-job.priority, next(self._counter)), execution, usage))
        self._queue.sort()
        self._capacity.queued[execution.id] = usage
        self._dispatch()

    def cancel(self, execution_id: str) -> bool:
        """Stop an execution that is queued or running; True if it was here."""
        for index, queued in enumerate(self._queue):
            if queued.execution.id == execution_id:
                del self._queue[index]
                self._capacity.queued.pop(execution_id, None)
                return True
        task = self._running.get(execution_id)
        if task is not None:
            task.cancel()
            return True
        return False

    async def stop(self) -> None:
        self._queue.clear()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _dispatch(self) -> None:
        remaining = []
        for queued in self._queue:
            execution_id = queued.execution.id
            if self._capacity.try_reserve(execution_id, queued.usage):
                self._capacity.queued.pop(execution_id, None)
                _hold_gpus(queued, self._capacity.gpus_of(execution_id))
                task = asyncio.get_running_loop().create_task(
                    self._runner.run(queued.execution), name=f"execution-{execution_id}"
                )
                self._running[execution_id] = task
                task.add_done_callback(functools.partial(self._finished, execution_id))
            else:
                remaining.append(queued)
        self._queue = remaining

    def _finished(self, execution_id: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(execution_id, None)
        self._capacity.release(execution_id)
        self._dispatch()


def _hold_gpus(queued: _Queued, gpus: list[GPU]) -> None:
    """Record on the execution which of the node's GPUs it holds: the runner gives them to the engine."""
    execution = queued.execution
    assert execution.job is not None
    name = execution.job.task.name
    held = execution.allocated_resources.tasks.get(name) or queued.usage
    execution.allocated_resources.tasks[name] = held.model_copy(update={"gpus": gpus})
