"""Scheduling: in rounds of ready evaluations, or at once inside the transaction that changed a job.

A round reads several evaluations' jobs in one query, plans each, and applies the plans in one transaction. Each
plan is a part of it: one that conflicts (its job or an execution changed since the read) is undone alone and
retried by the broker, while the others commit. A burst of evaluations so costs a read and a commit per round
rather than one of each per evaluation.

A compute node's report (a bid, a result, an error) is planned for at once instead, in the transaction that records
it, which sees the job's current state: the decision it calls for (approve the bid, complete the job, retry) commits
with the report, with no evaluation stored and no second transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bacalhau.models.evaluation import EvalStatus, EvalTrigger, new_evaluation
from bacalhau.models.job import Job
from bacalhau.orchestrator.broker import Delivery
from bacalhau.orchestrator.plan import Plan, apply_plan
from bacalhau.orchestrator.scheduler import Scheduler
from bacalhau.orchestrator.selection import CapacityTracker
from bacalhau.orchestrator.store import JobStore, Tx

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """How one delivered evaluation fared: ``error`` set means retry it. ``plan`` is None when there is nothing to
    apply but closing the evaluation (its job is gone)."""

    delivery: Delivery
    plan: Plan | None = None
    error: Exception | None = None

    @property
    def blocked(self) -> bool:
        """The plan was applied and leaves its job waiting for capacity."""
        return self.error is None and self.plan is not None and self.plan.outcome == EvalStatus.BLOCKED


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
                await self._store.transact(lambda tx: _apply_each(tx, to_apply), background=True)
            except Exception as exc:
                for outcome in to_apply:
                    outcome.error = outcome.error or exc
        for outcome in to_apply:
            if outcome.plan is not None and outcome.error is not None:
                self._tracker.cancel_reservation(outcome.plan.new_executions)
        return outcomes


class ImmediatePlanner:
    """Plans for a job inside a transaction (run on the store's writer thread: it only reads the node list and
    the capacity tracker, which the event loop changes)."""

    def __init__(self, schedulers: dict[str, Scheduler]) -> None:
        self._schedulers = schedulers

    def __call__(self, tx: Tx, job: Job, trigger: EvalTrigger) -> None:
        evaluation = new_evaluation(job, trigger)
        scheduler = self._schedulers.get(job.type)
        if scheduler is not None:
            try:
                with tx.part():
                    plan = scheduler.plan(Delivery(evaluation), job, tx.job_executions(job.id))
                    plan.evaluation_stored = False
                    apply_plan(tx, plan)
                return
            except Exception as exc:  # left to a scheduling round, which retries
                log.debug("planning job %s at once failed (%s); storing the evaluation instead", job.id, exc)
        tx.insert_evaluation(evaluation)


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
