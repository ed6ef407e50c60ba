"""Checklist group C (§9, items 20-21): a job's executions and its published results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from bacalhau_apiclient import OrchestratorApi
from bacalhau_apiclient.rest import ApiException

from tests.api.support import JOBS, assert_api_error_body, docker_job, finish, get, unique
from tests.helpers import submit, wasm_job


def execution_items(base_url: str, job_id: str, **params: Any) -> list[dict[str, Any]]:
    response = get(base_url, f"{JOBS}/{job_id}/executions", **params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["Items"]
    return items


@pytest.fixture(scope="module")
def retried_job(base_url: str, wasm: Callable[[str], bytes]) -> str:
    """A job with two executions: its S3 input's endpoint refuses connections, a failure that another attempt could
    get past, so the job is retried on the same node before it fails."""
    job = wasm_job(wasm("hello"), Namespace=unique("retried"))
    unreachable = {"Bucket": "data", "Key": "input.txt", "Endpoint": "http://127.0.0.1:9"}
    job["Tasks"][0]["InputSources"].append({"Source": {"Type": "s3", "Params": unreachable}, "Target": "/data"})
    job_id = submit(base_url, job)
    finish(base_url, job_id, "Failed")
    assert len(execution_items(base_url, job_id)) >= 2, "this check needs a job with at least two executions"
    return job_id


# ---- item 20: executions


def test_execution_states_are_integers(orchestrator: OrchestratorApi, completed_job: str) -> None:
    """Execution states are numbers (v1.5.2 numbering, 0-11), unlike job states; IDs are ``e-<uuid>``."""
    items = orchestrator.orchestratorjob_executions(completed_job, "", limit=5).items
    assert items
    for execution in items:
        compute, desired = execution.compute_state.state_type, execution.desired_state.state_type
        assert type(compute) is int and 0 <= compute <= 11, compute
        assert type(desired) is int and desired in {0, 1, 2}, desired
        assert execution.id.startswith("e-")


def test_completed_execution_states(base_url: str, completed_job: str) -> None:
    """A finished execution is Completed (9) with desired state Stopped (2)."""
    [execution] = execution_items(base_url, completed_job)
    assert execution["ComputeState"]["StateType"] == 9
    assert execution["DesiredState"]["StateType"] == 2


def test_run_output_uses_lowercase_stderr(base_url: str, completed_job: str) -> None:
    """``stderr`` is the one lowercase key of RunCommandResult (§6.4)."""
    [execution] = execution_items(base_url, completed_job)
    assert "stderr" in execution["RunOutput"] and "Stderr" not in execution["RunOutput"], execution["RunOutput"]


def test_executions_sorted_by_modify_time_descending(base_url: str, retried_job: str) -> None:
    """``order_by=modified_at&reverse=True`` lists the most recently changed execution first."""
    items = execution_items(base_url, retried_job, order_by="modified_at", reverse="True")
    modify_times = [execution["ModifyTime"] for execution in items]
    assert modify_times == sorted(modify_times, reverse=True)


def test_executions_sorted_by_create_time_by_default(base_url: str, retried_job: str) -> None:
    """Without ``order_by`` executions come in creation order (§2.2.5)."""
    create_times = [execution["CreateTime"] for execution in execution_items(base_url, retried_job)]
    assert create_times == sorted(create_times)


def test_executions_limit_truncates_after_sorting(base_url: str, retried_job: str) -> None:
    """``limit`` keeps the first items of the sorted list."""
    newest_first = execution_items(base_url, retried_job, reverse="true")
    assert execution_items(base_url, retried_job, reverse="true", limit=1) == newest_first[:1]


# ---- item 21: results


def test_results_of_a_completed_job_are_url_downloads(orchestrator: OrchestratorApi, completed_job: str) -> None:
    """The local publisher's result is a ``urlDownload`` of the execution's tarball, signed for this request: the
    client downloads it as it is."""
    items = orchestrator.orchestratorjob_results(completed_job).items
    assert items
    for result in items:
        assert result.type == "urlDownload"
        assert urlsplit(result.params["URL"]).path.endswith(".tar.gz"), result.params
        download = httpx.get(result.params["URL"], timeout=10)
        assert download.status_code == 200 and download.content[:2] == b"\x1f\x8b"


def test_results_of_a_service_job_are_a_bad_request(orchestrator: OrchestratorApi, base_url: str) -> None:
    """Only batch and ops jobs have results (§2.2.7). The original answers 500, as if the server had failed; asking
    is the client's mistake, so we answer 400 with the same message."""
    job_id = submit(base_url, docker_job(Type="service"))
    with pytest.raises(ApiException) as raised:
        orchestrator.orchestratorjob_results(job_id)
    body = assert_api_error_body(raised.value.body, 400)
    assert body["Code"] == "BadRequest" and body["Message"] == "job type service does not support results"


def test_results_without_completed_executions_are_empty(base_url: str, failed_job: str) -> None:
    """``Items`` is an empty list, not null, when nothing was published."""
    response = get(base_url, f"{JOBS}/{failed_job}/results")
    assert response.status_code == 200, response.text
    assert response.json() == {"NextToken": "", "Items": []}
