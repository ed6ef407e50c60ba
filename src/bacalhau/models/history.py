"""Job history and the events recorded in it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from bacalhau.models.base import OMIT_EMPTY, WireModel, text_enum_member
from bacalhau.models.timefmt import Timestamp, now_ns


class JobHistoryType(StrEnum):
    UNDEFINED = "Undefined"
    JOB_LEVEL = "JobLevel"
    EXECUTION_LEVEL = "ExecutionLevel"

    @classmethod
    def parse(cls, value: Any) -> JobHistoryType:
        """Go's UnmarshalText: trimmed and case-insensitive; an unknown name is Undefined; a number is an error."""
        if isinstance(value, JobHistoryType):
            return value
        if not isinstance(value, str):
            raise ValueError("job history type must be a string")
        return text_enum_member(cls, value) or cls.UNDEFINED


class Event(WireModel):
    message: str = ""
    topic: str = ""
    timestamp: Timestamp = 0
    details: Annotated[dict[str, str], OMIT_EMPTY] = Field(default_factory=dict)

    @classmethod
    def new(cls, topic: str, message: str, **details: str) -> Event:
        return cls(topic=topic, message=message, timestamp=now_ns(), details=dict(details))

    @classmethod
    def error(
        cls, topic: str, message: str, *, hint: str = "", fails_execution: bool = False, retryable: bool = False
    ) -> Event:
        """An error event with the detail keys the original's CLI reads (IsError, Hint, ...)."""
        details = {"IsError": "true"}
        if hint:
            details["Hint"] = hint
        if fails_execution:
            details["FailsExecution"] = "true"
        if retryable:
            details["Retryable"] = "true"
        return cls(topic=topic, message=message, timestamp=now_ns(), details=details)

    @property
    def is_error(self) -> bool:
        return self.details.get("IsError") == "true"


class StateChange(WireModel):
    """Deprecated v1.4 history fields, filled only for old clients."""

    previous: Annotated[str | int, OMIT_EMPTY] = ""
    new: Annotated[str | int, OMIT_EMPTY] = ""


class JobHistory(WireModel):
    seq_num: int = 0
    type: Annotated[JobHistoryType, BeforeValidator(JobHistoryType.parse)] = JobHistoryType.UNDEFINED
    job_id: str = ""
    job_version: int = 0
    execution_id: Annotated[str, OMIT_EMPTY] = ""
    event: Event = Field(default_factory=Event)
    time: Timestamp = 0
    job_state: Annotated[StateChange | None, OMIT_EMPTY] = None
    execution_state: Annotated[StateChange | None, OMIT_EMPTY] = None
