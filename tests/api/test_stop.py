"""Checklist group C (§9, item 22): stopping jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from bacalhau_apiclient import OrchestratorApi
from bacalhau_apiclient.rest import ApiException
from bacalhau_sdk.jobs import Jobs

from tests.api.support import UUID, assert_api_error_body, history, stop, unique
from tests.conftest import wait_until
from tests.helpers import executions, get_job, submit, wait_for_state, wasm_job

STOP_MESSAGE = "Job requested to stop before completion"


def test_stop_non_terminal_job_returns_an_evaluation_id(sdk_env: None, waiting_job: str) -> None:
    """Stopping a Queued job through the SDK returns the new evaluation's ID."""
    response = Jobs().stop(waiting_job, "r")
    assert response is not None
    assert UUID.match(response.evaluation_id), response.evaluation_id


def test_stopping_a_stopped_job_again_returns_no_evaluation(sdk_env: None, waiting_job: str) -> None:
    """A second stop is a 200 with an empty ``EvaluationID``."""
    jobs = Jobs()
    assert jobs.stop(waiting_job, "first").evaluation_id
    again = jobs.stop(waiting_job, "second")
    assert again is not None, "the second stop must succeed (200)"
    assert again.evaluation_id == ""


def test_stopped_job_is_in_state_stopped(base_url: str, waiting_job: str) -> None:
    """The state changes as part of the stop request."""
    assert stop(base_url, waiting_job).status_code == 200
    assert get_job(base_url, waiting_job)["Job"]["State"]["StateType"] == "Stopped"


def test_stop_adds_a_job_level_history_event(base_url: str, waiting_job: str) -> None:
    """The stop is recorded with its reason (Topic ``Scheduling``)."""
    assert stop(base_url, waiting_job, {"reason": "no longer needed"}).status_code == 200
    events = [item["Event"] for item in history(base_url, waiting_job, event_type="job")["Items"]]
    [event] = [event for event in events if event["Message"] == STOP_MESSAGE]
    assert event["Topic"] == "Scheduling"
    assert event["Details"]["Reason"] == "no longer needed"


def test_stop_reason_from_the_body(base_url: str, waiting_job: str) -> None:
    """The Go client sends ``{"reason": ...}``; it becomes the Stopped state's message."""
    response = stop(base_url, waiting_job, {"reason": "x"})
    assert response.status_code == 200, response.text
    assert get_job(base_url, waiting_job)["Job"]["State"]["Message"] == "x"


def test_stop_reason_from_the_query(base_url: str, waiting_job: str) -> None:
    """Our extension: the Python client's ``?reason=`` (with body ``{}``) is honoured too."""
    response = stop(base_url, waiting_job, reason="x")
    assert response.status_code == 200, response.text
    assert get_job(base_url, waiting_job)["Job"]["State"]["Message"] == "x"


def test_stop_by_short_id(base_url: str, waiting_job: str) -> None:
    """Stop resolves an ID prefix like get does (fixed in v1.5.1)."""
    response = stop(base_url, waiting_job[:10])
    assert response.status_code == 200, response.text
    assert get_job(base_url, waiting_job)["Job"]["State"]["StateType"] == "Stopped"


@pytest.fixture
def running_job(base_url: str, wasm: Callable[[str], bytes]) -> Iterator[str]:
    """A WebAssembly job that loops forever (until its one-minute execution timeout)."""
    job_id = submit(base_url, wasm_job(wasm("spin"), timeouts={"ExecutionTimeout": 60}, Namespace=unique("spin")))
    wait_for_state(base_url, job_id, ("Running",))
    yield job_id
    stop(base_url, job_id)


def test_stop_running_job_cancels_its_execution(base_url: str, running_job: str) -> None:
    """Stopping a Running job stops it and cancels its execution (11, Cancelled)."""
    response = stop(base_url, running_job, {"reason": "enough"})
    assert response.status_code == 200, response.text
    assert response.json()["EvaluationID"]
    state = get_job(base_url, running_job)["Job"]["State"]
    assert (state["StateType"], state["Message"]) == ("Stopped", "enough")
    wait_until(
        lambda: [e["ComputeState"]["StateType"] for e in executions(base_url, running_job)] == [11],
        10,
        "the execution to be Cancelled (11)",
    )


def test_stop_completed_job_is_a_409(orchestrator: OrchestratorApi, completed_job: str) -> None:
    """A Completed job cannot be stopped (§1.4): the original's 500 is a 409 here (a client's mistake, not ours)."""
    with pytest.raises(ApiException) as raised:
        orchestrator.orchestratorstop_job(completed_job, reason="r")
    assert raised.value.status == 409
    body = assert_api_error_body(raised.value.body, 409)
    assert body["Message"] == "cannot stop job in state Completed", body


def test_stop_failed_job_is_a_conflict_job_state_409(orchestrator: OrchestratorApi, failed_job: str) -> None:
    """Nor can a Failed one; the store reports the conflicting transition (§1.4; a 500 in the original)."""
    with pytest.raises(ApiException) as raised:
        orchestrator.orchestratorstop_job(failed_job, reason="r")
    assert raised.value.status == 409
    body = assert_api_error_body(raised.value.body, 409)
    assert body["Code"] == "ConflictJobState", body
    assert body["Message"] == f"job {failed_job} is in terminal state Failed and cannot transition to Stopped", body
