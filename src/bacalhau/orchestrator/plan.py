"""Plans: what a scheduler decided for one evaluation, applied to the store in one transaction.

Applying a plan also queues the messages its execution changes imply (ask for a bid, accept or reject a bid,
cancel) in the outbox of each affected node, in the same transaction, so a decision and its delivery can never be
separated by a crash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bacalhau.lib import tracing
from bacalhau.models.evaluation import EvalStatus, Evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.history import Event
from bacalhau.models.job import META_ORCHESTRATOR_ID, Job
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.store import Tx
from bacalhau.transport import messages

RETRYABLE = "Retryable"
_BIDDING_STATES = frozenset(
    {ExecutionStateType.NEW, ExecutionStateType.ASK_FOR_BID, ExecutionStateType.ASK_FOR_BID_ACCEPTED}
)


@dataclass
class ExecutionUpdate:
    execution: Execution
    desired: ExecutionDesiredStateType
    compute: ExecutionStateType | None
    event: Event


@dataclass
class Plan:
    evaluation: Evaluation
    job: Job
    superseded: list[Evaluation] = field(default_factory=list)
    new_executions: list[Execution] = field(default_factory=list)
    updated: dict[str, ExecutionUpdate] = field(default_factory=dict)
    desired_job_state: JobStateType | None = None
    job_state_message: str = ""
    new_evaluations: list[Evaluation] = field(default_factory=list)
    job_events: list[Event] = field(default_factory=list)
    execution_events: dict[str, list[Event]] = field(default_factory=dict)
    outcome: EvalStatus = EvalStatus.COMPLETE
    # False for an evaluation planned at once in the transaction that called for it: it is stored only if it has
    # to stay open (its job waits for capacity).
    evaluation_stored: bool = True
    # Planned inside a transaction that changed capacity before the plan: executions that ended in it (their room is
    # free) and executions placed in it (their room is taken), which the capacity tracker counts only after commit.
    released: list[Execution] = field(default_factory=list)
    placed_before: list[Execution] = field(default_factory=list)
    # When planning began (Unix ns): the start of the plan's span when tracing (see _trace).
    started: int = field(default_factory=time.time_ns)

    def add_execution(self, execution: Execution, event: Event) -> None:
        self.new_executions.append(execution)
        self.execution_events.setdefault(execution.id, []).append(event)

    def stop_execution(self, execution: Execution, event: Event, compute: ExecutionStateType) -> None:
        self.updated[execution.id] = ExecutionUpdate(execution, ExecutionDesiredStateType.STOPPED, compute, event)
        self.execution_events.setdefault(execution.id, []).append(event)

    def stopping(self) -> list[Execution]:
        """The executions this plan stops (their room is free once it commits)."""
        return [u.execution for u in self.updated.values() if u.desired == ExecutionDesiredStateType.STOPPED]

    def approve_execution(self, execution: Execution, event: Event) -> None:
        self.updated[execution.id] = ExecutionUpdate(
            execution, ExecutionDesiredStateType.RUNNING, ExecutionStateType.BID_ACCEPTED, event
        )
        self.execution_events.setdefault(execution.id, []).append(event)

    def mark_job(self, state: JobStateType, event: Event, message: str = "") -> None:
        self.desired_job_state = state
        self.job_state_message = message
        self.job_events.append(event)
        if state in (JobStateType.FAILED, JobStateType.COMPLETED):
            self.new_executions = []
            self.updated = {
                key: update
                for key, update in self.updated.items()
                if update.desired == ExecutionDesiredStateType.STOPPED
            }

    @property
    def job_failed(self) -> bool:
        return self.desired_job_state == JobStateType.FAILED

    def has_running_executions(self) -> bool:
        return any(e.desired == ExecutionDesiredStateType.RUNNING for e in self.new_executions) or any(
            u.desired == ExecutionDesiredStateType.RUNNING for u in self.updated.values()
        )

    def mark_running_if_eligible(self, event: Event) -> None:
        if self.desired_job_state is not None:
            return
        if self.job.state.state_type not in (JobStateType.PENDING, JobStateType.QUEUED):
            return
        if self.has_running_executions():
            self.mark_job(JobStateType.RUNNING, event)

    def is_empty(self) -> bool:
        return not (self.new_executions or self.updated or self.new_evaluations or self.desired_job_state)


def apply_plan(tx: Tx, plan: Plan) -> None:
    job = plan.job
    if plan.new_executions:
        tx.effects.placements.append(plan.evaluation.create_time or tx.now)
    trace = _trace(tx, plan) if tracing.ENABLED else ""
    for execution in plan.new_executions:
        tx.insert_execution(execution)
        wait = execution.desired == ExecutionDesiredStateType.PENDING
        outgoing = execution.model_copy(update={"job": job})
        ask = messages.AskForBid(execution=outgoing, wait_for_approval=wait)
        if trace:
            ask.trace_parent = trace
        tx.enqueue_message(execution.node_id, messages.wrap(ask))

    for update in plan.updated.values():
        _notify_node(tx, update, trace)  # first: it looks at the execution as it was, which the update changes in place
        _apply_update(tx, update)

    if plan.desired_job_state is not None and plan.desired_job_state != job.state.state_type:
        tx.update_job_state(job, plan.desired_job_state, plan.job_state_message)

    for evaluation in plan.new_evaluations:
        tx.insert_evaluation(evaluation)
    if plan.job_events:
        tx.add_history(job.id, job.version, plan.job_events)
    versions = {e.id: e.job_version for e in plan.new_executions}
    versions.update((key, update.execution.job_version) for key, update in plan.updated.items())
    for execution_id, events in plan.execution_events.items():
        tx.add_history(job.id, versions.get(execution_id, job.version), events, execution_id)

    if plan.evaluation_stored:
        tx.set_evaluation_status(plan.evaluation, plan.outcome)
    elif plan.outcome != EvalStatus.COMPLETE:
        plan.evaluation.status = plan.outcome.value
        tx.insert_evaluation(plan.evaluation)
    for superseded in plan.superseded:
        tx.set_evaluation_status(superseded, EvalStatus.COMPLETE, f"superseded by {plan.evaluation.id}")


def _apply_update(tx: Tx, update: ExecutionUpdate) -> None:
    def change(execution: Execution) -> None:
        execution.desired_state.state_type = update.desired
        execution.desired_state.message = update.event.message
        execution.desired_state.details = dict(update.event.details)
        if update.compute is not None and not execution.is_terminal:
            execution.compute_state.state_type = update.compute
            execution.compute_state.message = update.event.message
            retryable = update.event.details.get(RETRYABLE)
            execution.compute_state.details = {RETRYABLE: retryable} if retryable else {}

    tx.update_execution(update.execution, update=change)


def job_span_attributes(job: Job, orchestrator_id: str) -> dict[str, str | int | bool]:
    """What the orchestrator's spans of a job's work say of it."""
    return {
        tracing.JOB_ID: job.id,
        tracing.JOB_TYPE: job.type,
        tracing.JOB_VERSION: job.version,
        tracing.NODE_ID: orchestrator_id,
    }


def _trace(tx: Tx, plan: Plan) -> str:
    """A ``job.schedule`` span for this plan in its job's trace (and ``job.complete`` under it if the plan ends the
    job), ended when the transaction commits; its ``traceparent``, for the messages the plan sends."""
    job = plan.job
    evaluation = plan.evaluation
    common = job_span_attributes(job, job.meta.get(META_ORCHESTRATOR_ID, ""))
    decision: dict[str, str | int | bool] = {
        **common,
        tracing.EVALUATION_ID: evaluation.id,
        "bacalhau.evaluation.trigger": evaluation.triggered_by,
        "bacalhau.evaluation.outcome": plan.outcome.value,
        "bacalhau.executions.placed": len(plan.new_executions),
        "bacalhau.executions.updated": len(plan.updated),
    }
    # From the start of planning (before this transaction, for a scheduling round) to the commit.
    schedule = tracing.start_span("job.schedule", tx.trace_parent(job.id), decision, start_time=plan.started)
    tx.effects.spans.append(schedule)
    state = plan.desired_job_state
    if state is not None and state.is_terminal and state != job.state.state_type:
        ending = {**common, tracing.JOB_STATE: state.value}
        complete = tracing.start_span("job.complete", schedule.traceparent, ending)
        if state == JobStateType.FAILED:
            complete.fail(plan.job_state_message or "job failed")
        tx.effects.spans.append(complete)
    return schedule.traceparent


def _notify_node(tx: Tx, update: ExecutionUpdate, trace: str = "") -> None:
    """Queue the message that tells the execution's node about this change, if it needs one (a run it starts is part
    of the ``trace`` given)."""
    previous = update.execution
    node_id, execution_id = previous.node_id, previous.id
    if update.desired == ExecutionDesiredStateType.RUNNING and previous.desired == ExecutionDesiredStateType.PENDING:
        accepted = messages.BidAccepted(execution_id=execution_id)
        if trace:
            accepted.trace_parent = trace
        tx.enqueue_message(node_id, messages.wrap(accepted))
    elif update.desired == ExecutionDesiredStateType.STOPPED and not previous.is_terminal:
        if previous.state in _BIDDING_STATES and previous.desired == ExecutionDesiredStateType.PENDING:
            message: messages.BidRejected | messages.CancelExecution = messages.BidRejected(
                execution_id=execution_id, reason=update.event.message
            )
        else:
            message = messages.CancelExecution(execution_id=execution_id, reason=update.event.message)
        tx.enqueue_message(node_id, messages.wrap(message))
