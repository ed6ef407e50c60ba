"""The v1.8+ job routes over real HTTP: update by name, /versions, /rerun, /diff, references by name, and the
job_version / all_job_versions parameters, with their exact shapes and errors; and the official client naming a job
by its name."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from bacalhau_apiclient.api.orchestrator_api import OrchestratorApi

from tests.api.support import (
    JOBS,
    TIMEOUT,
    assert_api_error,
    finish,
    get,
    noop_job,
    put_job,
    unique,
)


def put(base_url: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
    return httpx.put(f"{base_url}{JOBS}{path}", json=body, params=params, timeout=TIMEOUT)


def named_job(name: str, value: str = "1", **fields: Any) -> dict[str, Any]:
    return noop_job(Name=name, task={"Env": {"VALUE": value}}, **fields)


def completed(base_url: str, name: str, value: str = "1") -> str:
    response = put_job(base_url, named_job(name, value))
    assert response.status_code == 200, response.text
    job_id = str(response.json()["JobID"])
    finish(base_url, job_id, "Completed")
    return job_id


def test_a_known_name_makes_a_new_version_of_the_same_job(base_url: str) -> None:
    name = unique("update")
    job_id = completed(base_url, name)
    second = put_job(base_url, named_job(name, "2"))
    assert second.status_code == 200, second.text
    assert second.json()["JobID"] == job_id and second.json()["Warnings"] is None
    finish(base_url, job_id, "Completed")
    latest = get(base_url, f"{JOBS}/{name}").json()["Job"]
    assert (latest["ID"], latest["Version"], latest["Tasks"][0]["Env"]["VALUE"]) == (job_id, 2, "2")
    first = get(base_url, f"{JOBS}/{job_id}", job_version=1).json()["Job"]
    assert (first["Version"], first["Tasks"][0]["Env"]["VALUE"]) == (1, "1")
    assert_api_error(get(base_url, f"{JOBS}/{job_id}", job_version=3), 404)
    assert_api_error(get(base_url, f"{JOBS}/{job_id}", job_version="-1"), 400)
    assert_api_error(get(base_url, f"{JOBS}/{job_id}", job_version=2**64), 400)

    versions = get(base_url, f"{JOBS}/{name}/versions").json()
    assert versions["NextToken"] == "" and [v["Version"] for v in versions["Items"]] == [1, 2]

    latest_executions = get(base_url, f"{JOBS}/{name}/executions").json()["Items"]
    every = get(base_url, f"{JOBS}/{name}/executions", all_job_versions="true").json()["Items"]
    assert {e["JobVersion"] for e in latest_executions} == {2}
    assert sorted(e["JobVersion"] for e in every) == [1, 2]
    history = get(base_url, f"{JOBS}/{name}/history", job_version=1).json()["Items"]
    assert history and {h["JobVersion"] for h in history} == {1}
    included = get(base_url, f"{JOBS}/{job_id}", include="history,executions", job_version=1).json()
    assert {e["JobVersion"] for e in included["Executions"]["Items"]} == {1}
    assert {h["JobVersion"] for h in included["History"]["Items"]} == {1}


def test_an_unchanged_spec_is_refused_unless_forced(base_url: str) -> None:
    name = unique("same")
    job_id = completed(base_url, name)
    refused = assert_api_error(put_job(base_url, named_job(name)), 400)
    assert refused["Message"] == f"no changes detected for new job spec. Job Name: '{name}', Job Id: '{job_id}'"
    assert refused["Hint"] == "Use the --force flag to override this warning"
    forced = httpx.put(f"{base_url}{JOBS}", json={"Job": named_job(name), "Force": True}, timeout=TIMEOUT)
    assert forced.status_code == 200 and forced.json()["JobID"] == job_id
    assert_api_error(httpx.put(f"{base_url}{JOBS}", json={"Job": named_job(name), "Force": "yes"}), 400)


def test_rerun_answers_the_new_version(base_url: str) -> None:
    name = unique("rerun")
    job_id = completed(base_url, name)
    response = put(base_url, f"/{name}/rerun", {"JobVersion": 1, "Reason": "again"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"EvaluationID", "JobID", "JobVersion", "Warnings"}
    assert (body["JobID"], body["JobVersion"], body["Warnings"]) == (job_id, 2, None)
    finish(base_url, job_id, "Completed")
    assert_api_error(put(base_url, f"/{job_id}/rerun", {"JobVersion": 7}), 404)
    for bad in ({"JobVersion": -1}, {"JobVersion": "1"}, {"JobVersion": 2**64}, {"Reason": 5}):
        assert_api_error(put(base_url, f"/{job_id}/rerun", bad), 400)
    assert_api_error(put(base_url, f"/{unique('nobody')}/rerun", {}), 404)


def test_diff_compares_with_the_stored_job_of_that_name(base_url: str) -> None:
    name = unique("diff")
    completed(base_url, name)
    same = put(base_url, "/diff", {"Job": named_job(name)})
    assert same.status_code == 200 and same.json() == {"Diff": "", "Warnings": None}
    changed = put(base_url, "/diff", {"Job": named_job(name, "2")}).json()["Diff"]
    assert "-    VALUE: '1'" in changed and "+    VALUE: '2'" in changed
    assert_api_error(put(base_url, "/diff", {"Job": named_job(unique("nobody"))}), 404)
    assert_api_error(put(base_url, "/diff", {}), 400)


def test_names_are_looked_up_in_the_namespace_asked_for(base_url: str) -> None:
    name = unique("ns")
    job_id = completed(base_url, name)
    assert get(base_url, f"{JOBS}/{name}", namespace="default").json()["Job"]["ID"] == job_id
    assert_api_error(get(base_url, f"{JOBS}/{name}", namespace="other"), 404)
    assert get(base_url, f"{JOBS}/{job_id}", namespace="other").json()["Job"]["ID"] == job_id  # an ID is an ID


@pytest.mark.parametrize("route", ["", "/executions", "/history", "/results", "/versions"])
def test_every_read_takes_a_name(base_url: str, route: str) -> None:
    name = unique("read")
    completed(base_url, name)
    response = get(base_url, f"{JOBS}/{name}{route}")
    assert response.status_code == 200, response.text


def test_the_official_client_names_a_job_by_its_name(base_url: str, orchestrator: OrchestratorApi) -> None:
    name = unique("sdk")
    job_id = completed(base_url, name)
    assert orchestrator.orchestratorget_job(name).job.id == job_id
