"""The history events the orchestrator records, with the original's topics and wording."""

from __future__ import annotations

from bacalhau.models.history import Event
from bacalhau.models.ids import short_id
from bacalhau.models.spec import go_duration
from bacalhau.models.state import JobStateType

TOPIC_SUBMISSION = "Submission"
TOPIC_STATE_UPDATE = "State Update"
TOPIC_SCHEDULING = "Scheduling"
TOPIC_QUEUEING = "Queueing"
TOPIC_EXEC_TIMEOUT = "Exec Timeout"
TOPIC_JOB_TIMEOUT = "Job Timeout"
TOPIC_EXECUTION = "Execution"

TIMEOUT_HINT = "Increase the task timeout or allocate more resources"


def job_submitted() -> Event:
    return Event.new(TOPIC_SUBMISSION, "Job submitted")


def job_updated() -> Event:
    return Event.new(TOPIC_SUBMISSION, "Job updated")


def job_rerun(reason: str) -> Event:
    return Event.new(TOPIC_SUBMISSION, "Job rerun requested", Reason=reason)


def job_state_update(state: JobStateType, message: str = "") -> Event:
    text = state.value + (f". {message}" if message else "")
    return Event.new(TOPIC_STATE_UPDATE, text, NewState=state.value)


def job_stopped(reason: str) -> Event:
    return Event.new(TOPIC_SCHEDULING, "Job requested to stop before completion", Reason=reason)


def job_queued(reason: str) -> Event:
    return Event.new(TOPIC_QUEUEING, "Job queued" + (f". {reason}" if reason else ""))


def job_timed_out(timeout_seconds: int) -> Event:
    return Event.error(
        TOPIC_JOB_TIMEOUT,
        f"Job timed out. Job took longer than {go_duration(timeout_seconds)}",
        hint=TIMEOUT_HINT,
        fails_execution=True,
    )


def job_failed(message: str) -> Event:
    return Event.error(TOPIC_SCHEDULING, message)


JOB_EXECUTIONS_FAILED = "Job failed because one or more executions failed"
JOB_RETRIES_EXHAUSTED = "Job failed because it has been retried too many times"


def execution_created(node_id: str) -> Event:
    return Event.new(TOPIC_SCHEDULING, f"Requested execution on {short_id(node_id)}", NodeID=node_id)


def execution_running() -> Event:
    return Event.new(TOPIC_EXECUTION, "Running")


def execution_completed() -> Event:
    return Event.new(TOPIC_EXECUTION, "Completed successfully")


def stopped_by_job_stop() -> Event:
    return Event.new(TOPIC_SCHEDULING, "Execution stop requested because job has been stopped")


def stopped_by_lost_node() -> Event:
    return Event.new(TOPIC_SCHEDULING, "Execution stop requested because node has disappeared", Retryable="true")


def stopped_by_rejected_node() -> Event:
    return Event.new(TOPIC_SCHEDULING, "Execution stop requested because node has been rejected")


def stopped_by_oversubscription() -> Event:
    return Event.new(TOPIC_SCHEDULING, "Execution stop requested because there are more executions than needed")


def stopped_for_job_update() -> Event:
    return Event.new(TOPIC_SCHEDULING, "Execution stopped for job update")


def stopped_by_job_failure() -> Event:
    return Event.new(TOPIC_SCHEDULING, "Execution stopped due to job failure")


def execution_timed_out(timeout_seconds: int) -> Event:
    return Event.error(
        TOPIC_EXEC_TIMEOUT,
        f"Execution timed out. Execution took longer than {go_duration(timeout_seconds)}",
        hint=TIMEOUT_HINT,
        fails_execution=True,
    )
