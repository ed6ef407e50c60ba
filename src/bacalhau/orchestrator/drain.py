"""The queue drain: room that an ending execution frees goes to the jobs waiting for room, in the transaction that
records the end.

A compute node's report that ends an execution (its result, its failure, a refused bid) frees room on that node.
Waking a blocked evaluation for a scheduling round would cost a read, a plan and a commit of its own after this
commit; planned here instead, the request for the next bid leaves with the commit that records the end.

Jobs are taken in the broker's release order (highest priority first, then the longest waiting; a job that took
room and still waits goes behind the others). Only a job whose resources fit the room there is now is planned: one
that does not fit is left as it is, with no evaluation run or written for it. At most ``EXAMINED`` waiting jobs are
looked at per report, however long the queue; the ones further back are released by the next ends, by a node
joining, or by the orchestrator's housekeeping. Room the drain did not give away is offered once more after the
commit (:meth:`QueueDrain.after_commit`), to the jobs that could fit it only.
"""

from __future__ import annotations

import logging

from bacalhau.errors import JobNotFound
from bacalhau.models.execution import Execution
from bacalhau.models.node import NodeState
from bacalhau.models.resources import Resources
from bacalhau.orchestrator.broker import Delivery, EvaluationBroker
from bacalhau.orchestrator.plan import apply_plan
from bacalhau.orchestrator.scheduler import Scheduler
from bacalhau.orchestrator.scheduler.base import NodeSource
from bacalhau.orchestrator.selection import NodeSelector, job_resources
from bacalhau.orchestrator.store import CommitEffects, Tx

log = logging.getLogger(__name__)

EXAMINED = 16
# After the commit, looking at a job whose needs are known costs no read: the queue is searched further for one that
# fits, so that small jobs behind many big ones still get the room.
EXAMINED_AFTER_COMMIT = 256
NEEDS_KEPT = 10_000


class QueueDrain:
    """Called, it runs on the store's writer thread, inside a report's transaction: it reads the broker's blocked queue
    (see :meth:`EvaluationBroker.blocked_in_order`), the node list and the capacity tracker, and changes only the
    store; the broker learns what was planned once the transaction commits (:meth:`after_commit`)."""

    def __init__(
        self, broker: EvaluationBroker, schedulers: dict[str, Scheduler], nodes: NodeSource, selector: NodeSelector
    ) -> None:
        self._broker = broker
        self._schedulers = schedulers
        self._nodes = nodes
        self._selector = selector
        # What each waiting evaluation's job needs, so that a job too big for the room is passed over without being
        # read again (a job's resources change only with a new version, which comes with a new evaluation).
        self._needs: dict[str, Resources] = {}

    def _remember(self, evaluation_id: str, need: Resources) -> Resources:
        if len(self._needs) >= NEEDS_KEPT:
            self._needs.clear()  # rebuilt as waiting jobs are looked at again
        self._needs[evaluation_id] = need
        return need

    def __call__(self, tx: Tx) -> None:
        """Plan waiting jobs into the room that the executions ended so far in ``tx`` free."""
        if not self._broker.blocked_count:
            return
        ended = list(tx.effects.ended_executions)
        nodes = self._freed_nodes(ended)
        planned = {evaluation.job_id for evaluation in tx.effects.drained}
        rooms = self._rooms(tx, nodes, ended)
        for waiting in self._broker.blocked_in_order(EXAMINED):
            if waiting.job_id in planned:
                continue
            known = self._needs.get(waiting.id)
            if known is not None and not any(known.fits_in(room) for room in rooms):
                continue  # not even read: what it needs is known, and no room fits it
            scheduler = self._schedulers.get(waiting.type)
            try:
                job = tx.get_job(waiting.job_id)
            except JobNotFound:
                continue
            if job.is_terminal or scheduler is None:
                continue  # its own run (released by the broker) closes it
            need = self._remember(waiting.id, job_resources(job))
            if not any(need.fits_in(room) for room in rooms):
                continue
            evaluation = waiting.model_copy(deep=True)  # the broker's copy belongs to the event loop
            placed = list(tx.effects.created_executions)
            try:
                with tx.part():
                    executions = tx.job_executions(job.id)
                    plan = scheduler.plan(Delivery(evaluation), job, executions, released=ended, placed_before=placed)
                    apply_plan(tx, plan)
                    tx.effects.drained.append(evaluation)
                    tx.effects.drained_placements += len(plan.new_executions)
            except Exception as exc:  # left to the evaluation's own run, which retries
                log.debug("planning waiting job %s into freed room failed: %s", job.id, exc)
            planned.add(job.id)
            rooms = self._rooms(tx, nodes, ended)

    def after_commit(self, effects: CommitEffects) -> None:
        """On the event loop, once the tracker has counted a commit: the broker learns what the drain planned, and
        the room the commit's ended executions freed that no drain gave away (an end recorded elsewhere, or room the
        drain did not see yet: the tracker counts a commit only after it) goes to the waiting jobs that could fit
        it, each released for a scheduling round. A job known to need more room than there is stays waiting."""
        self._broker.settle(effects.drained)
        unused = len(effects.ended_executions) - effects.drained_placements
        if unused <= 0 or not self._broker.blocked_count:
            return
        rooms = {n.info.node_id: self._selector.headroom(n) for n in self._freed_nodes(effects.ended_executions)}
        for waiting in self._broker.blocked_in_order(EXAMINED_AFTER_COMMIT):
            if unused == 0:
                return
            need = self._needs.get(waiting.id)
            if need is not None:
                fitting = next((node_id for node_id, room in rooms.items() if need.fits_in(room)), None)
                if fitting is None:
                    continue
                rooms[fitting] = rooms[fitting].sub(need)
            self._broker.release(waiting)
            unused -= 1

    def _freed_nodes(self, ended: list[Execution]) -> list[NodeState]:
        """The nodes these executions ran on (one lookup each: not a pass over every node of a large network)."""
        found = (self._nodes.get(node_id) for node_id in {execution.node_id for execution in ended})
        return [node for node in found if node is not None]

    def _rooms(self, tx: Tx, nodes: list[NodeState], ended: list[Execution]) -> list[Resources]:
        """The room on each node, as a plan in ``tx`` would see it now."""
        placed = tx.effects.created_executions
        return [self._selector.headroom(node, stopping=ended, taking=placed) for node in nodes]
