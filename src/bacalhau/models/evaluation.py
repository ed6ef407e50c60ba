"""Evaluations: persisted requests to run the scheduler for a job."""

from __future__ import annotations

import uuid
from enum import StrEnum

from bacalhau.models.base import WireModel
from bacalhau.models.job import Job
from bacalhau.models.timefmt import Timestamp


class EvalStatus(StrEnum):
    BLOCKED = "blocked"
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELED = "canceled"


class EvalTrigger(StrEnum):
    JOB_REGISTER = "job-register"
    JOB_UPDATE = "job-update"
    JOB_RERUN = "job-rerun"
    JOB_CANCEL = "job-cancel"
    JOB_QUEUE = "job-queue"
    JOB_TIMEOUT = "job-timeout"
    EXEC_FAILURE = "exec-failure"
    EXEC_UPDATE = "exec-update"
    EXEC_TIMEOUT = "exec-timeout"
    EXEC_LIMIT = "exec-limit"
    NODE_JOIN = "node-join"
    NODE_LEAVE = "node-leave"


class Evaluation(WireModel):
    """A request to run the scheduler for a job (the API shows only its ID, a bare UUID)."""

    id: str = ""
    namespace: str = ""
    job_id: str = ""
    triggered_by: str = ""
    priority: int = 0
    type: str = ""
    status: str = EvalStatus.PENDING.value
    comment: str = ""
    wait_until: Timestamp = 0
    create_time: int = 0
    modify_time: int = 0


def new_evaluation(job: Job, triggered_by: EvalTrigger | str, *, wait_until: int = 0, comment: str = "") -> Evaluation:
    return Evaluation(
        id=str(uuid.uuid4()),
        namespace=job.namespace,
        job_id=job.id,
        triggered_by=str(getattr(triggered_by, "value", triggered_by)),
        priority=job.priority,
        type=job.type,
        status=EvalStatus.PENDING.value,
        comment=comment,
        wait_until=wait_until,
    )
