"""Job and execution states, with the wire encodings the original uses (strings for jobs, integers for executions)."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from bacalhau.models.base import OMIT_EMPTY, JsonIntEnum, WireModel, text_enum_member


class JobStateType(StrEnum):
    UNDEFINED = "Undefined"
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStateType.COMPLETED, JobStateType.FAILED, JobStateType.STOPPED)

    @classmethod
    def parse(cls, value: Any) -> JobStateType:
        """Case-insensitive; an unknown string is Undefined, as in Go; a number is an error."""
        if isinstance(value, JobStateType):
            return value
        if not isinstance(value, str):
            raise ValueError("job state must be a string")
        return text_enum_member(cls, value) or cls.UNDEFINED


class ExecutionStateType(IntEnum):
    """Observed execution states, numbered as from v1.5.2 on."""

    UNDEFINED = 0
    NEW = 1
    ASK_FOR_BID = 2
    ASK_FOR_BID_ACCEPTED = 3
    ASK_FOR_BID_REJECTED = 4
    BID_ACCEPTED = 5
    RUNNING = 6
    PUBLISHING = 7
    BID_REJECTED = 8
    COMPLETED = 9
    FAILED = 10
    CANCELLED = 11

    @property
    def label(self) -> str:
        return _EXECUTION_LABELS[self]

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_EXECUTION_STATES

    @property
    def is_discarded(self) -> bool:
        return self in _DISCARDED_EXECUTION_STATES

    @property
    def is_executing(self) -> bool:
        return self in (ExecutionStateType.BID_ACCEPTED, ExecutionStateType.RUNNING, ExecutionStateType.PUBLISHING)


_EXECUTION_LABELS = {
    ExecutionStateType.UNDEFINED: "Undefined",
    ExecutionStateType.NEW: "New",
    ExecutionStateType.ASK_FOR_BID: "AskForBid",
    ExecutionStateType.ASK_FOR_BID_ACCEPTED: "AskForBidAccepted",
    ExecutionStateType.ASK_FOR_BID_REJECTED: "AskForBidRejected",
    ExecutionStateType.BID_ACCEPTED: "BidAccepted",
    ExecutionStateType.RUNNING: "Running",
    ExecutionStateType.PUBLISHING: "Publishing",
    ExecutionStateType.BID_REJECTED: "BidRejected",
    ExecutionStateType.COMPLETED: "Completed",
    ExecutionStateType.FAILED: "Failed",
    ExecutionStateType.CANCELLED: "Cancelled",
}
_TERMINAL_EXECUTION_STATES = frozenset(
    {
        ExecutionStateType.BID_REJECTED,
        ExecutionStateType.COMPLETED,
        ExecutionStateType.FAILED,
        ExecutionStateType.CANCELLED,
        ExecutionStateType.ASK_FOR_BID_REJECTED,
    }
)
_DISCARDED_EXECUTION_STATES = frozenset(
    {
        ExecutionStateType.ASK_FOR_BID_REJECTED,
        ExecutionStateType.BID_REJECTED,
        ExecutionStateType.CANCELLED,
        ExecutionStateType.FAILED,
    }
)


class ExecutionDesiredStateType(IntEnum):
    PENDING = 0
    RUNNING = 1
    STOPPED = 2

    @property
    def label(self) -> str:
        return self.name.capitalize()


# Execution states travel as JSON integers.
ExecutionStateField = Annotated[ExecutionStateType, JsonIntEnum()]
ExecutionDesiredStateField = Annotated[ExecutionDesiredStateType, JsonIntEnum()]


class JobState(WireModel):
    state_type: Annotated[JobStateType, BeforeValidator(JobStateType.parse)] = JobStateType.UNDEFINED
    message: Annotated[str, OMIT_EMPTY] = ""
    details: Annotated[dict[str, str], OMIT_EMPTY] = Field(default_factory=dict)


class ExecutionState(WireModel):
    state_type: ExecutionStateField = ExecutionStateType.UNDEFINED
    message: Annotated[str, OMIT_EMPTY] = ""
    details: Annotated[dict[str, str], OMIT_EMPTY] = Field(default_factory=dict)


class ExecutionDesiredState(WireModel):
    state_type: ExecutionDesiredStateField = ExecutionDesiredStateType.PENDING
    message: Annotated[str, OMIT_EMPTY] = ""
    details: Annotated[dict[str, str], OMIT_EMPTY] = Field(default_factory=dict)
