"""Applies the orchestrator's messages on a compute node: bid requests, bid decisions and cancellations.

Handlers are idempotent by execution ID: a replayed message finds the execution already past the step it asks for
and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bacalhau.compute.bidder import BidDecision, Bidder
from bacalhau.compute.buffer import ExecutorBuffer
from bacalhau.compute.runner import span_attributes
from bacalhau.compute.store import ComputeEffects, ComputeTx, ExecutionStore
from bacalhau.lib import tracing
from bacalhau.models.execution import AllocatedResources, Execution
from bacalhau.models.history import Event
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType
from bacalhau.transport import messages

log = logging.getLogger(__name__)

TOPIC_SCANNING = "Exec Scanning"


class OrchestratorMessageHandler:
    def __init__(self, store: ExecutionStore, bidder: Bidder, buffer: ExecutorBuffer) -> None:
        self._bidder = bidder
        self._buffer = buffer
        self._store = store
        self._admitting: dict[str, asyncio.Task[None]] = {}
        self._open_bids: dict[str, tracing.Span] = {}  # bids waiting for admission control, when tracing
        store.on_commit(self._after_commit)

    def handle(self, tx: ComputeTx, _peer: str, body: dict[str, Any]) -> None:
        """Apply one message inside ``tx`` (the stream applies a whole batch in one transaction)."""
        message = messages.unwrap(body)
        if isinstance(message, messages.AskForBid):
            self._ask_for_bid(tx, message)
        elif isinstance(message, messages.BidAccepted):
            self._bid_accepted(tx, message.execution_id)
            tracing.hand_over(message.execution_id, message.trace_parent)  # the run's place in the job's trace
        elif isinstance(message, messages.BidRejected):
            self._stop(tx, message.execution_id, message.reason, bid_rejected=True)
        elif isinstance(message, messages.CancelExecution):
            self._stop(tx, message.execution_id, message.reason)
        else:
            log.warning("unexpected %s message from the orchestrator", type(message).__name__)

    def _after_commit(self, effects: ComputeEffects) -> None:
        for execution in effects.to_run:
            self._buffer.enqueue(execution)
        for execution_id in effects.to_cancel:
            self._buffer.cancel(execution_id)
        for execution in effects.to_admit:
            self.admit(execution)

    def admit(self, execution: Execution) -> None:
        """Let admission control finish deciding a bid that waits for it (in the background; at start, for those a
        restart interrupted)."""
        if execution.id in self._admitting or execution.job is None or self._bidder.admission is None:
            return
        task = asyncio.get_running_loop().create_task(self._admit(execution), name=f"admit-{execution.id}")
        self._admitting[execution.id] = task
        task.add_done_callback(lambda _: self._admitting.pop(execution.id, None))

    async def _admit(self, execution: Execution) -> None:
        assert execution.job is not None and self._bidder.admission is not None
        reasons = await self._bidder.admission.ask(execution.job)

        def decide(tx: ComputeTx) -> None:
            current = tx.get(execution.id)
            if current is None or current.state != ExecutionStateType.NEW:
                return  # stopped meanwhile, or decided already
            pending = current.desired_state.state_type == ExecutionDesiredStateType.PENDING
            decision = BidDecision(not reasons, "; ".join(reasons))
            self._decided(tx, current, decision, pending, stored=True)
            if self._open_bids:
                _end_bid(tx, self._open_bids.pop(execution.id, tracing.NO_SPAN), execution, decision, pending)

        try:
            await self._store.transact(decide)
        except Exception:
            log.exception("could not record the bid decision for execution %s", execution.id)

    async def stop(self) -> None:
        """Stop asking: a bid left undecided is decided again at the next start."""
        tasks = list(self._admitting.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _ask_for_bid(self, tx: ComputeTx, request: messages.AskForBid) -> None:
        execution = request.execution
        if tx.get(execution.id) is not None:
            return
        decision = self._bidder.decide(execution)
        bid = _start_bid(request) if tracing.ENABLED else tracing.NO_SPAN
        admission = self._bidder.admission
        if (
            decision.accepted
            and execution.job is not None
            and admission is not None
            and admission.must_ask(execution.job)
        ):
            execution.compute_state.state_type = ExecutionStateType.NEW
            if not request.wait_for_approval:
                execution.desired_state.state_type = ExecutionDesiredStateType.RUNNING
            if decision.usage is not None:
                execution.allocated_resources = AllocatedResources(tasks={execution.job.task.name: decision.usage})
            tx.insert(execution)
            tx.admit_after_commit(execution)
            if bid is not tracing.NO_SPAN:
                self._keep_open(execution.id, bid)
            return
        self._decided(tx, execution, decision, request.wait_for_approval, stored=False)
        if bid is not tracing.NO_SPAN:
            _end_bid(tx, bid, execution, decision, request.wait_for_approval)

    def _keep_open(self, execution_id: str, bid: tracing.Span) -> None:
        """Keep a bid's span until admission control decides (a bounded number: a decision lost to a restart is
        never ended, and its span never exported)."""
        self._open_bids[execution_id] = bid
        while len(self._open_bids) > tracing.HANDED_OVER_KEPT:
            del self._open_bids[next(iter(self._open_bids))]

    @staticmethod
    def _decided(
        tx: ComputeTx, execution: Execution, decision: BidDecision, wait_for_approval: bool, *, stored: bool
    ) -> None:
        """Record the bid decision (and report it, or run the execution at once when it was not a bid request)."""
        write = tx.save if stored else tx.insert
        job_id = execution.job_id
        if not decision.accepted:
            execution.compute_state.state_type = ExecutionStateType.ASK_FOR_BID_REJECTED
            execution.compute_state.message = decision.reason
            write(execution)
            event = Event.error(TOPIC_SCANNING, decision.reason)
            tx.report(
                messages.wrap(
                    messages.BidResult(
                        execution_id=execution.id, job_id=job_id, accepted=False, reason=decision.reason, events=[event]
                    )
                )
            )
            return
        if decision.usage is not None and execution.job is not None:
            execution.allocated_resources = AllocatedResources(tasks={execution.job.task.name: decision.usage})
        if wait_for_approval:
            execution.compute_state.state_type = ExecutionStateType.ASK_FOR_BID_ACCEPTED
            write(execution)
            tx.report(messages.wrap(messages.BidResult(execution_id=execution.id, job_id=job_id, accepted=True)))
        else:
            execution.compute_state.state_type = ExecutionStateType.BID_ACCEPTED
            execution.desired_state.state_type = ExecutionDesiredStateType.RUNNING
            write(execution)
            tx.run_after_commit(execution)

    @staticmethod
    def _bid_accepted(tx: ComputeTx, execution_id: str) -> None:
        execution = tx.get(execution_id)
        if execution is None or execution.state != ExecutionStateType.ASK_FOR_BID_ACCEPTED:
            return
        execution.compute_state.state_type = ExecutionStateType.BID_ACCEPTED
        execution.desired_state.state_type = ExecutionDesiredStateType.RUNNING
        tx.save(execution)
        tx.run_after_commit(execution)

    @staticmethod
    def _stop(tx: ComputeTx, execution_id: str, reason: str, *, bid_rejected: bool = False) -> None:
        """End an execution on the orchestrator's word: cancelled (and its run stopped), or, for a rejected bid
        that has not started, simply rejected. A rejection that raced the execution's start stops it too."""
        execution = tx.get(execution_id)
        if execution is None or execution.is_terminal:
            return
        cancel = not bid_rejected or execution.state.is_executing
        execution.compute_state.state_type = ExecutionStateType.CANCELLED if cancel else ExecutionStateType.BID_REJECTED
        execution.compute_state.message = reason
        execution.desired_state.state_type = ExecutionDesiredStateType.STOPPED
        tx.save(execution)
        if cancel:
            tx.cancel_after_commit(execution_id)


def _start_bid(request: messages.AskForBid) -> tracing.Span:
    """``execution.bid``, in the job's trace (under the decision that asked), from the request's arrival."""
    return tracing.start("execution.bid", request.trace_parent, **span_attributes(request.execution))


def _end_bid(
    tx: ComputeTx, bid: tracing.Span, execution: Execution, decision: BidDecision, wait_for_approval: bool
) -> None:
    """The bid's outcome on its span, which ends when the decision commits; an execution run at once (no approval
    asked) runs under it."""
    bid.set(**{"bacalhau.bid.accepted": decision.accepted})
    if not decision.accepted:
        bid.set(**{"bacalhau.bid.reason": decision.reason[:1024]})
    elif not wait_for_approval:
        tracing.hand_over(execution.id, bid.traceparent)
    tx.effects.spans.append(bid)
