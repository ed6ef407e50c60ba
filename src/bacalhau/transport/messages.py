"""Message payloads exchanged by orchestrator and compute nodes (the only thing the two sides share)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from bacalhau.lib.tracing import clean_parent
from bacalhau.models.base import OMIT_EMPTY, WireModel
from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.history import Event
from bacalhau.models.limits import MAX_PORTS
from bacalhau.models.node import NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.models.spec import Port, SpecConfig
from bacalhau.models.state import ExecutionStateField, ExecutionStateType

# The trace of the job an order belongs to (a W3C traceparent; see bacalhau.lib.tracing), absent when not tracing.
# Foreign input: anything but a short string reads as absent, never as a bad message.
TraceParent = Annotated[str, OMIT_EMPTY, BeforeValidator(clean_parent)]

# ---- orchestrator -> compute (reliable stream)


class AskForBid(WireModel):
    """Asks a node to bid for an execution; with ``wait_for_approval`` false the node runs it directly."""

    execution: Execution
    wait_for_approval: bool = True
    trace_parent: TraceParent = ""


class BidAccepted(WireModel):
    execution_id: str
    trace_parent: TraceParent = ""


class BidRejected(WireModel):
    execution_id: str
    reason: str = ""


class CancelExecution(WireModel):
    execution_id: str
    reason: str = ""


# ---- compute -> orchestrator (reliable stream)


class ComputeReport(WireModel):
    execution_id: str
    job_id: str = ""
    events: Annotated[list[Event], OMIT_EMPTY] = Field(default_factory=list)


class BidResult(ComputeReport):
    accepted: bool = False
    reason: str = ""
    allocated: Resources = Field(default_factory=Resources)


class ExecutionProgress(ComputeReport):
    """The node started running or publishing (the original sends nothing for these; users want to see them)."""

    state: ExecutionStateField = ExecutionStateType.RUNNING
    ports: Annotated[list[Port], OMIT_EMPTY, Field(max_length=MAX_PORTS)] = Field(default_factory=list)  # given to it
    allocated: Annotated[Resources, OMIT_EMPTY] = Field(default_factory=Resources)  # with the GPUs it holds


class RunResult(ComputeReport):
    published_result: SpecConfig = Field(default_factory=SpecConfig)
    run_output: RunCommandResult = Field(default_factory=RunCommandResult)


class ComputeError(ComputeReport):
    message: str = ""
    retryable: bool = False
    run_output: RunCommandResult | None = None


MESSAGE_TYPES: dict[str, type[WireModel]] = {
    cls.__name__: cls
    for cls in (
        AskForBid,
        BidAccepted,
        BidRejected,
        CancelExecution,
        BidResult,
        ExecutionProgress,
        RunResult,
        ComputeError,
    )
}


def wrap(message: WireModel) -> dict[str, Any]:
    """The stored and sent form of a stream message."""
    return {"Type": type(message).__name__, "Payload": message.to_wire()}


def unwrap(body: dict[str, Any]) -> WireModel:
    kind = MESSAGE_TYPES.get(str(body.get("Type")))
    if kind is None:
        raise ValueError(f"unknown message type {body.get('Type')!r}")
    return kind.model_validate(body.get("Payload") or {})


# ---- control plane (request/reply)


class HandshakeRequest(WireModel):
    node_info: NodeInfo
    start_time: int = 0
    epoch: str = ""
    orchestrator_epoch: str = ""
    last_orchestrator_seq_num: int = 0
    token: Annotated[str, OMIT_EMPTY] = ""


class HandshakeResponse(WireModel):
    accepted: bool = False
    reason: str = ""
    orchestrator_epoch: str = ""
    last_compute_seq_num: int = 0
    # The key this node verifies the links to its results and logs with (hex; see bacalhau.lib.links): a secret,
    # kept out of the model's repr so that logging a reply cannot show it.
    link_key: Annotated[str, OMIT_EMPTY] = Field(default="", repr=False)


class HeartbeatRequest(WireModel):
    node_id: str
    available_capacity: Resources = Field(default_factory=Resources)
    queue_used_capacity: Resources = Field(default_factory=Resources)
    running_executions: int = 0
    enqueued_executions: int = 0
    last_orchestrator_seq_num: int = 0


class HeartbeatResponse(WireModel):
    handshake_required: bool = False
    last_compute_seq_num: int = 0


class UpdateNodeInfoRequest(WireModel):
    node_info: NodeInfo


class ShutdownNotice(WireModel):
    node_id: str


class ControlReply(WireModel):
    ok: bool = True
    error: str = ""
