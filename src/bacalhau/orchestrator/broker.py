"""The evaluation broker: hands persisted evaluations to scheduler workers, highest priority first.

It holds no state of its own that matters: every evaluation it knows is also in the store (pending, delayed or
blocked), and the broker is refilled from there on start. Rules, as in the original (a Nomad port):
- at most one evaluation per job is in flight; evaluations arriving meanwhile wait, and are folded into the next run
  for that job (the scheduler always reads the job's current state, so one run covers them all);
- an evaluation with a future ``WaitUntil`` waits in a timer;
- a blocked evaluation (its job is queued for capacity) waits until capacity appears or its deadline passes;
- a failed run is retried with a growing delay, up to a limit.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from bacalhau.models.evaluation import EvalStatus, EvalTrigger, Evaluation
from bacalhau.models.timefmt import now_ns

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10


@dataclass
class Delivery:
    evaluation: Evaluation
    superseded: list[Evaluation] = field(default_factory=list)
    attempt: int = 1


# Evaluations that place new work. Within a priority they go after the ones that move placed work along (a bid to
# approve, a result to record, a stop, a timeout): those free capacity and finish jobs, while new placements in a
# burst mostly find the nodes full and wait for exactly that capacity.
_PLACEMENTS = frozenset(
    {
        EvalTrigger.JOB_REGISTER.value,
        EvalTrigger.JOB_UPDATE.value,
        EvalTrigger.JOB_QUEUE.value,
        EvalTrigger.NODE_JOIN.value,
    }
)


def _order(evaluation: Evaluation) -> tuple[int, bool, int]:
    return (-evaluation.priority, evaluation.triggered_by in _PLACEMENTS, evaluation.create_time)


def _release_order(evaluation: Evaluation) -> tuple[int, bool, int]:
    """Blocked jobs are released highest priority first, then in the order they started waiting: a job that took
    some freed room and still waits for more goes behind the others, so that jobs share freed room in turns."""
    return (-evaluation.priority, False, evaluation.modify_time or evaluation.create_time)


class EvaluationBroker:
    def __init__(self, *, max_attempts: int = MAX_ATTEMPTS, retry_delay: float = 0.1) -> None:
        self._ready: list[tuple[tuple[int, bool, int], int, Evaluation]] = []
        self._ready_jobs: set[str] = set()
        self._inflight: dict[str, Delivery] = {}
        self._waiting: dict[str, list[Evaluation]] = {}
        self._blocked: dict[str, Evaluation] = {}
        # The blocked evaluations in release order; entries no longer in ``_blocked`` are skipped when popped.
        self._blocked_order: list[tuple[tuple[int, bool, int], int, Evaluation]] = []
        self._attempts: dict[str, int] = {}
        self._counter = itertools.count()
        self._available = asyncio.Condition()
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._timers: set[asyncio.TimerHandle] = set()

    # ---- feeding
    def enqueue(self, evaluation: Evaluation) -> None:
        if evaluation.status == EvalStatus.BLOCKED.value:
            self._block(evaluation)
        elif evaluation.status != EvalStatus.PENDING.value:
            return
        elif evaluation.wait_until > now_ns():
            self._later(evaluation, evaluation.wait_until)
        else:
            self._make_ready(evaluation)

    def enqueue_all(self, evaluations: list[Evaluation]) -> None:
        for evaluation in evaluations:
            self.enqueue(evaluation)

    def unblock(self, limit: int | None = None) -> int:
        """Release blocked evaluations (highest priority, oldest first) because capacity may have appeared."""
        released = 0
        while self._blocked_order and (limit is None or released < limit):
            _, _, evaluation = heapq.heappop(self._blocked_order)
            if self._blocked.get(evaluation.job_id) is not evaluation:
                continue  # already released, or replaced by a newer evaluation
            del self._blocked[evaluation.job_id]
            self._make_ready(evaluation)
            released += 1
        return released

    def blocked_in_order(self, limit: int) -> Iterator[Evaluation]:
        """Up to ``limit`` blocked evaluations in release order, left blocked, found as the caller asks for the next:
        one that stops after the first few pays for those few, not for ``limit``.

        Safe to call from the store's writer thread: it copies the heap in one step (a list copy, atomic under the
        GIL) and only reads the rest, so what the event loop changes meanwhile shows as a slightly older picture.
        The heap keeps entries no longer blocked until they are popped or compacted away: however many come first,
        they are stepped over, and an evaluation blocked twice is given once."""
        entries = list(self._blocked_order)
        given: set[int] = set()
        while entries and len(given) < limit:  # popped from the copy, in order, past entries no longer blocked
            evaluation = heapq.heappop(entries)[2]
            if self._blocked.get(evaluation.job_id) is evaluation and id(evaluation) not in given:
                given.add(id(evaluation))
                yield evaluation

    def release(self, evaluation: Evaluation) -> None:
        """Make this blocked evaluation ready (room that may fit its job appeared), if it is still blocked."""
        if self._blocked.get(evaluation.job_id) is evaluation:
            self._unhold(evaluation.job_id)
            self._make_ready(evaluation)

    def settle(self, evaluations: list[Evaluation]) -> None:
        """Blocked evaluations were planned in a transaction that committed (see
        :mod:`bacalhau.orchestrator.drain`), each now with its status as planned: stop holding those that completed;
        one still blocked waits on, now behind the others of its priority, so that jobs take freed room in turns."""
        for evaluation in evaluations:
            held = self._blocked.get(evaluation.job_id)
            if held is None or held.id != evaluation.id:
                continue  # released meanwhile: its run will find the job as it is now
            self._unhold(evaluation.job_id)
            if evaluation.status == EvalStatus.BLOCKED.value:
                self._block(evaluation)

    @property
    def blocked_count(self) -> int:
        return len(self._blocked)

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def counts(self) -> dict[str, int]:
        """How many evaluations the broker holds in each state (for metrics and ``/agent/debug``): ready to run,
        in flight (a worker has it), blocked (its job is queued for capacity), waiting behind another of the same job,
        and timers (a retry or a ``WaitUntil`` due later, or a blocked evaluation's deadline)."""
        return {
            "ready": len(self._ready),
            "inflight": len(self._inflight),
            "blocked": len(self._blocked),
            "waiting": sum(len(waiting) for waiting in self._waiting.values()),
            "timers": len(self._timers),
        }

    def oldest_blocked_time(self) -> int:
        """When the longest-waiting blocked evaluation was created (Unix ns), 0 with none blocked: a pass over the
        blocked evaluations (the queue, not every job)."""
        return min((evaluation.create_time for evaluation in self._blocked.values()), default=0)

    # ---- consuming
    async def dequeue_batch(self, limit: int) -> list[Delivery]:
        """Up to ``limit`` ready evaluations (at least one: waits for it), each of a different job."""
        async with self._available:
            await self._available.wait_for(lambda: bool(self._ready))
            taken = [heapq.heappop(self._ready)[2] for _ in range(min(limit, len(self._ready)))]
        return [self._deliver(evaluation) for evaluation in taken]

    def _deliver(self, evaluation: Evaluation) -> Delivery:
        job_id = evaluation.job_id
        self._ready_jobs.discard(job_id)
        superseded = self._waiting.pop(job_id, [])
        blocked = self._unhold(job_id)
        if blocked is not None and blocked.id != evaluation.id:
            superseded.append(blocked)
        delivery = Delivery(evaluation, superseded, self._attempts.get(evaluation.id, 0) + 1)
        self._inflight[job_id] = delivery
        return delivery

    def ack(self, delivery: Delivery, *, blocked: bool = False) -> None:
        """The run succeeded; ``blocked`` means the job now waits for capacity."""
        job_id = delivery.evaluation.job_id
        self._inflight.pop(job_id, None)
        self._attempts.pop(delivery.evaluation.id, None)
        if blocked:
            delivery.evaluation.status = EvalStatus.BLOCKED.value
            self._block(delivery.evaluation)
        self._promote_waiting(job_id)

    def nack(self, delivery: Delivery) -> None:
        """The run failed: retry it later with a growing delay, unless it failed too often."""
        evaluation = delivery.evaluation
        job_id = evaluation.job_id
        self._inflight.pop(job_id, None)
        if delivery.attempt >= self._max_attempts:
            log.error("evaluation %s for job %s failed %d times; giving up", evaluation.id, job_id, delivery.attempt)
            self._attempts.pop(evaluation.id, None)
            self._promote_waiting(job_id)
            return
        self._attempts[evaluation.id] = delivery.attempt
        self._waiting.setdefault(job_id, []).extend(delivery.superseded)
        delay = self._retry_delay * (2 ** (delivery.attempt - 1))
        self._later(evaluation, now_ns() + int(min(delay, 30.0) * 1e9))

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # ---- internals
    def _make_ready(self, evaluation: Evaluation) -> None:
        job_id = evaluation.job_id
        if job_id in self._inflight or job_id in self._ready_jobs:
            self._waiting.setdefault(job_id, []).append(evaluation)
            return
        heapq.heappush(self._ready, (_order(evaluation), next(self._counter), evaluation))
        self._ready_jobs.add(job_id)
        asyncio.get_running_loop().create_task(self._notify())

    def _block(self, evaluation: Evaluation) -> None:
        job_id = evaluation.job_id
        previous = self._blocked.get(job_id)
        if previous is not None and previous.id != evaluation.id:
            self._waiting.setdefault(job_id, []).append(previous)
        self._blocked[job_id] = evaluation
        heapq.heappush(self._blocked_order, (_release_order(evaluation), next(self._counter), evaluation))
        if len(self._blocked_order) > 2 * len(self._blocked) + 64:  # drop the skipped entries now and then
            self._blocked_order = [
                entry for entry in self._blocked_order if self._blocked.get(entry[2].job_id) is entry[2]
            ]
            heapq.heapify(self._blocked_order)
        if evaluation.wait_until:
            self._later(evaluation, evaluation.wait_until, while_blocked=True)

    def _unhold(self, job_id: str) -> Evaluation | None:
        """Stop holding the job's blocked evaluation (if any). Its heap entry stays, skipped when met; those at the
        front of the heap are dropped now, as released evaluations are mostly the first in order: otherwise every
        reading of the queue (:meth:`blocked_in_order`, once per report) would step over all of them again."""
        evaluation = self._blocked.pop(job_id, None)
        order = self._blocked_order
        while order and self._blocked.get(order[0][2].job_id) is not order[0][2]:
            heapq.heappop(order)
        return evaluation

    def _promote_waiting(self, job_id: str) -> None:
        waiting = self._waiting.get(job_id)
        if waiting and job_id not in self._ready_jobs:
            first = waiting.pop(0)
            if not waiting:
                self._waiting.pop(job_id, None)
            self._make_ready(first)

    def _later(self, evaluation: Evaluation, when_ns: int, *, while_blocked: bool = False) -> None:
        """Make ``evaluation`` ready at ``when_ns``; with ``while_blocked``, only if it is still blocked then."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, (when_ns - now_ns()) / 1e9)
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            if not while_blocked:
                self._make_ready(evaluation)
            elif self._blocked.get(evaluation.job_id) is evaluation:
                self._unhold(evaluation.job_id)
                self._make_ready(evaluation)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _notify(self) -> None:
        async with self._available:
            self._available.notify(1)
