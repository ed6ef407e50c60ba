"""Scheduling rounds: several ready evaluations read in one query, planned, and applied in one transaction.

Each evaluation still gets a plan of its own, applied as a part of the transaction: one that conflicts (its job or
an execution changed since the read) is undone alone and retried by the broker, while the others commit. A burst of
evaluations so costs a read and a commit per round rather than one of each per evaluation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bacalhau.models.evaluation import EvalStatus
from bacalhau.orchestrator.broker import Delivery
from bacalhau.orchestrator.plan import Plan, apply_plan
from bacalhau.orchestrator.scheduler import Scheduler
from bacalhau.orchestrator.selection import CapacityTracker
from bacalhau.orchestrator.store import JobStore, Tx

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """How one delivered evaluation fared: ``error`` set means retry it; ``blocked`` means its job waits for
    capacity. ``plan`` is None when there is nothing to apply but closing the evaluation (its job is gone)."""

    delivery: Delivery
    plan: Plan | None = None
    error: Exception | None = None
    blocked: bool = False


class SchedulingRound:
    def __init__(self, store: JobStore, schedulers: dict[str, Scheduler], tracker: CapacityTracker) -> None:
        self._store = store
        self._schedulers = schedulers
        self._tracker = tracker

    async def run(self, deliveries: list[Delivery]) -> list[Outcome]:
        outcomes = [Outcome(delivery) for delivery in deliveries]
        state = await self._store.jobs_with_executions([d.evaluation.job_id for d in deliveries])
        to_apply: list[Outcome] = []
        for outcome in outcomes:
            evaluation = outcome.delivery.evaluation
            scheduler = self._schedulers.get(evaluation.type)
            if scheduler is None:
                log.error("no scheduler for job type %r", evaluation.type)
                continue
            found = state.get(evaluation.job_id)
            if found is None:
                log.warning("evaluation %s refers to unknown job %s", evaluation.id, evaluation.job_id)
            else:
                try:
                    outcome.plan = scheduler.plan(outcome.delivery, *found)
                except Exception as exc:  # a fault in planning one job must not stop the others
                    outcome.error = exc
                    continue
                self._tracker.reserve(outcome.plan.new_executions)
            to_apply.append(outcome)
        if to_apply:
            try:
                await self._store.transact(lambda tx: _apply_each(tx, to_apply))
            except Exception as exc:
                for outcome in to_apply:
                    outcome.error = outcome.error or exc
        for outcome in to_apply:
            if outcome.plan is None:
                continue
            if outcome.error is not None:
                self._tracker.cancel_reservation(outcome.plan.new_executions)
            else:
                outcome.blocked = outcome.plan.outcome == EvalStatus.BLOCKED
        return outcomes


def _apply_each(tx: Tx, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        try:
            with tx.part():
                if outcome.plan is None:
                    tx.set_evaluation_status(outcome.delivery.evaluation, EvalStatus.COMPLETE)
                else:
                    apply_plan(tx, outcome.plan)
        except Exception as exc:
            outcome.error = exc
