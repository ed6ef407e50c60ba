"""Checklist group G (§9, item 36): bacalhau-sdk end to end.

The SDK swallows errors: on any non-2xx status it prints the exception and returns None. So every check here also
asserts that nothing was printed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bacalhau_sdk.jobs import Jobs, PutJobRequest

from tests.api.support import JOB_ID, UUID, sdk_noop_job


@pytest.fixture
def jobs(sdk_env: None, capsys: pytest.CaptureFixture[str]) -> Iterator[Jobs]:
    """A ``Jobs()`` bound to the shared node; the test fails if the SDK printed an exception."""
    yield Jobs()
    printed = capsys.readouterr().out
    assert "Exception" not in printed, printed


def test_sdk_put(jobs: Jobs) -> None:
    """``Jobs().put`` submits a job and returns its ID."""
    response = jobs.put(PutJobRequest(job=sdk_noop_job()))
    assert response is not None
    assert JOB_ID.match(response.job_id), response.job_id


def test_sdk_get(jobs: Jobs, completed_job: str) -> None:
    """``Jobs().get`` returns the job."""
    response = jobs.get(completed_job)
    assert response is not None
    assert response.job.id == completed_job


def test_sdk_list(jobs: Jobs, completed_job: str) -> None:
    """``list()`` asks for the oldest 5 jobs of all namespaces."""
    response = jobs.list()
    assert response is not None
    assert isinstance(response.items, list)
    assert 1 <= len(response.items) <= 5


def test_sdk_executions(jobs: Jobs, completed_job: str) -> None:
    """``Jobs().executions`` (``order_by=`` empty, ``limit=5``) lists the job's execution."""
    response = jobs.executions(completed_job)
    assert response is not None
    assert isinstance(response.items, list)
    assert [execution.job_id for execution in response.items] == [completed_job]


def test_sdk_results(jobs: Jobs, completed_job: str) -> None:
    """``Jobs().results`` lists the published result."""
    response = jobs.results(completed_job)
    assert response is not None
    assert isinstance(response.items, list)
    assert response.items


def test_sdk_history(jobs: Jobs, completed_job: str) -> None:
    """``Jobs().history`` (``event_type=execution``, ``node_id=``) returns a list."""
    response = jobs.history(completed_job)
    assert response is not None
    assert isinstance(response.items, list)


def test_sdk_stop(jobs: Jobs, waiting_job: str) -> None:
    """``Jobs().stop`` on a non-terminal job returns the stop's evaluation ID."""
    response = jobs.stop(waiting_job, "done")
    assert response is not None
    assert UUID.match(response.evaluation_id), response.evaluation_id
