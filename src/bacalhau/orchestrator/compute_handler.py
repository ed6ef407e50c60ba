"""Applies what compute nodes report (bids, progress, results, errors) to the job store.

Each report is one transaction guarded by the execution's expected state, so a duplicated or replayed report finds
the execution already moved on and changes nothing. Reports that matter to scheduling are evaluated in the same
transaction: by ``evaluate``, which plans for the job at once, or else by storing an ``exec-update`` evaluation for
the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bacalhau.errors import Conflict, NotFound
from bacalhau.models.evaluation import EvalTrigger
from bacalhau.models.execution import Execution
from bacalhau.models.history import Event
from bacalhau.models.job import Job, JobType
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType
from bacalhau.orchestrator import events
from bacalhau.orchestrator.plan import RETRYABLE
from bacalhau.orchestrator.store import Tx
from bacalhau.transport import messages

log = logging.getLogger(__name__)

_EXPECT_BIDDING = (ExecutionStateType.NEW, ExecutionStateType.ASK_FOR_BID)
# NEW: an execution the node was told to run directly (ops, daemon) reports nothing before it runs.
_EXPECT_EXECUTING = (
    ExecutionStateType.NEW,
    ExecutionStateType.BID_ACCEPTED,
    ExecutionStateType.RUNNING,
    ExecutionStateType.PUBLISHING,
)
_LIVE_DESIRED = (ExecutionDesiredStateType.PENDING, ExecutionDesiredStateType.RUNNING)


Evaluate = Callable[[Tx, Job, EvalTrigger], None]


def store_evaluation(tx: Tx, job: Job, trigger: EvalTrigger) -> None:
    tx.new_evaluation(job, trigger.value)


class ComputeMessageHandler:
    def __init__(self, evaluate: Evaluate = store_evaluation, drain: Callable[[Tx], None] | None = None) -> None:
        """``drain``: called in the transaction after a report that ended an execution, to give the room it frees
        to waiting jobs (see :mod:`bacalhau.orchestrator.drain`)."""
        self._evaluate_job = evaluate
        self._drain = drain

    def handle(self, tx: Tx, node_id: str, body: dict[str, Any]) -> None:
        """Apply one report inside ``tx`` (the stream applies a whole batch of reports in one transaction)."""
        ended = len(tx.effects.ended_executions)
        self._apply(tx, node_id, body)
        if self._drain is not None and len(tx.effects.ended_executions) > ended:
            self._drain(tx)

    def _apply(self, tx: Tx, node_id: str, body: dict[str, Any]) -> None:
        message = messages.unwrap(body)
        try:
            with tx.part():
                if isinstance(message, messages.BidResult):
                    self._bid_result(tx, node_id, message)
                elif isinstance(message, messages.ExecutionProgress):
                    self._progress(tx, node_id, message)
                elif isinstance(message, messages.RunResult):
                    self._run_result(tx, node_id, message)
                elif isinstance(message, messages.ComputeError):
                    self._compute_error(tx, node_id, message)
                else:
                    log.warning("node %s sent an unexpected %s message", node_id, type(message).__name__)
        except (NotFound, Conflict) as exc:
            # The execution moved on (a replay, or the orchestrator already decided otherwise): nothing to do.
            log.debug("ignoring %s from %s: %s", type(message).__name__, node_id, exc)

    @staticmethod
    def _own(tx: Tx, node_id: str, execution_id: str) -> Execution:
        execution = tx.get_execution(execution_id)
        if execution is None or execution.node_id != node_id:
            raise NotFound(f"execution {execution_id} is not assigned to node {node_id}")
        return execution

    def _bid_result(self, tx: Tx, node_id: str, report: messages.BidResult) -> None:
        execution = self._own(tx, node_id, report.execution_id)

        def apply(e: Execution) -> None:
            if report.accepted:
                e.compute_state.state_type = ExecutionStateType.ASK_FOR_BID_ACCEPTED
                e.compute_state.message = ""
            else:
                e.compute_state.state_type = ExecutionStateType.ASK_FOR_BID_REJECTED
                e.compute_state.message = report.reason
                e.desired_state.state_type = ExecutionDesiredStateType.STOPPED
                e.desired_state.message = "bid rejected"
            if not report.allocated.is_zero():
                task = next(iter(e.allocated_resources.tasks), "main")
                e.allocated_resources.tasks[task] = report.allocated

        tx.update_execution(execution, expected_states=_EXPECT_BIDDING, expected_desired=_LIVE_DESIRED, update=apply)
        self._record(tx, execution, report.events)
        self._evaluate(tx, tx.get_job(execution.job_id))

    def _progress(self, tx: Tx, node_id: str, report: messages.ExecutionProgress) -> None:
        execution = self._own(tx, node_id, report.execution_id)
        if report.state not in (ExecutionStateType.RUNNING, ExecutionStateType.PUBLISHING):
            return

        def apply(e: Execution) -> None:
            e.compute_state.state_type = report.state
            e.compute_state.message = ""
            if report.ports:  # where the task's published ports listen on its node
                e.allocated_ports = report.ports
            if report.allocated.gpus:  # the GPUs the node gave the execution
                task = next(iter(e.allocated_resources.tasks), "main")
                e.allocated_resources.tasks[task] = report.allocated

        tx.update_execution(
            execution,
            expected_states=_EXPECT_EXECUTING,
            expected_desired=(ExecutionDesiredStateType.RUNNING,),
            update=apply,
        )
        self._record(tx, execution, report.events)

    def _run_result(self, tx: Tx, node_id: str, report: messages.RunResult) -> None:
        execution = self._own(tx, node_id, report.execution_id)
        job = tx.get_job(execution.job_id)
        long_running = job.type in (JobType.SERVICE.value, JobType.DAEMON.value)

        def apply(e: Execution) -> None:
            e.published_result = report.published_result
            e.run_output = report.run_output
            e.desired_state.state_type = ExecutionDesiredStateType.STOPPED
            if long_running:
                e.compute_state.state_type = ExecutionStateType.FAILED
                e.compute_state.message = "execution completed unexpectedly"
                e.desired_state.message = "execution failed"
            else:
                e.compute_state.state_type = ExecutionStateType.COMPLETED
                e.compute_state.message = ""
                e.desired_state.message = "execution completed"

        tx.update_execution(
            execution,
            expected_states=_EXPECT_EXECUTING,
            expected_desired=(ExecutionDesiredStateType.RUNNING,),
            update=apply,
        )
        final = [events.execution_completed()] if not long_running else []
        self._record(tx, execution, [*report.events, *final])
        self._evaluate(tx, job)

    def _compute_error(self, tx: Tx, node_id: str, report: messages.ComputeError) -> None:
        execution = self._own(tx, node_id, report.execution_id)
        if execution.is_terminal:
            return

        def apply(e: Execution) -> None:
            e.compute_state.state_type = ExecutionStateType.FAILED
            e.compute_state.message = report.message
            e.compute_state.details = {RETRYABLE: "true"} if report.retryable else {}
            e.desired_state.state_type = ExecutionDesiredStateType.STOPPED
            e.desired_state.message = "execution failed"
            if report.run_output is not None:
                e.run_output = report.run_output

        tx.update_execution(execution, update=apply)
        recorded = report.events or [Event.error(events.TOPIC_EXECUTION, report.message)]
        self._record(tx, execution, recorded)
        self._evaluate(tx, tx.get_job(execution.job_id))

    @staticmethod
    def _record(tx: Tx, execution: Execution, reported: list[Event]) -> None:
        if reported:
            tx.add_history(execution.job_id, execution.job_version, reported, execution.id)

    def _evaluate(self, tx: Tx, job: Job) -> None:
        if not job.is_terminal:
            self._evaluate_job(tx, job, EvalTrigger.EXEC_UPDATE)
