"""Checklist group A (§9, items 1-10): submitting jobs and reading them back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bacalhau_apiclient import (
    ApiPutJobRequest,
    InputSource,
    Job,
    NetworkConfig,
    OrchestratorApi,
    ResourcesConfig,
    ResultPath,
    SpecConfig,
    Task,
    TimeoutConfig,
)
from bacalhau_apiclient.rest import ApiException

from tests.api.support import (
    JOB_ID,
    JOBS,
    TIMEOUT,
    UUID,
    assert_api_error,
    assert_api_error_body,
    docker_job,
    finish,
    get,
    noop_job,
    put_job,
    queued_job,
    stop,
    unique,
)
from tests.helpers import executions, get_job, submit


def docker_engine() -> SpecConfig:
    return SpecConfig(type="docker", params={"Image": "ubuntu"})


def client_job(**task_fields: Any) -> Job:
    """The checklist's batch job, built with the generated client's models."""
    return Job(type="batch", count=1, tasks=[Task(name="main", engine=docker_engine(), **task_fields)])


def put_with_client(orchestrator: OrchestratorApi, job: Job) -> Any:
    return orchestrator.orchestratorput_job(ApiPutJobRequest(job=job))


# ---- item 1: submit


def test_put_job_returns_job_id_and_evaluation_id(orchestrator: OrchestratorApi) -> None:
    """The client's put returns a ``j-<uuid>`` job ID and a non-empty evaluation ID."""
    response = put_with_client(orchestrator, client_job())
    assert JOB_ID.match(response.job_id), response.job_id
    assert response.evaluation_id


def test_a_job_id_can_be_submitted_once(base_url: str) -> None:
    """A daemon job keeps the ID it was given (a batch job's is ignored), and a job of another name may not take it
    (one of the same name is a new version of it)."""
    job_id = f"j-{uuid.uuid4()}"
    assert put_job(base_url, queued_job(ID=job_id, Type="daemon")).json()["JobID"] == job_id
    try:
        again = put_job(base_url, queued_job(ID=job_id, Name="another", Type="daemon"))
        body = assert_api_error_body(again.content, 409)
        assert body["Code"] == "ResourceInUse" and body["Message"] == f"job already exists: {job_id}"
    finally:
        stop(base_url, job_id)


def test_put_job_raw_response_has_null_warnings(base_url: str) -> None:
    """A clean submission answers 200 with ``"Warnings": null`` and a bare-UUID evaluation ID."""
    response = put_job(base_url, docker_job())
    assert response.status_code == 200, response.text
    body = response.json()
    assert "Warnings" in body and body["Warnings"] is None, body
    assert UUID.match(body["EvaluationID"]), body


# ---- item 2: get, through the client


@pytest.fixture(scope="module")
def got(orchestrator: OrchestratorApi) -> tuple[str, Any]:
    """A docker job submitted and read back with the client: (job ID, Job model)."""
    job_id = put_with_client(orchestrator, client_job()).job_id
    return job_id, orchestrator.orchestratorget_job(job_id).job


def test_get_job_identity_fields(got: tuple[str, Any]) -> None:
    """ID, Name (defaults to the ID), Namespace (``default``) and Type come back as submitted or defaulted."""
    job_id, job = got
    assert (job.id, job.name, job.namespace, job.type) == (job_id, job_id, "default", "batch")


def test_get_job_state_type_is_a_string(got: tuple[str, Any]) -> None:
    """``State.StateType`` is a job-state name, not a number."""
    state_type = got[1].state.state_type
    assert isinstance(state_type, str)
    assert state_type in {"Pending", "Queued", "Running", "Completed", "Failed"}


def test_get_job_create_time_is_unix_nanoseconds(got: tuple[str, Any]) -> None:
    """``CreateTime`` is an int64 count of nanoseconds."""
    create_time = got[1].create_time
    assert isinstance(create_time, int)
    assert create_time > 1.6e18


def test_get_job_revision_starts_at_one(got: tuple[str, Any]) -> None:
    """The store sets Revision 1 on create and increments it on each change."""
    assert got[1].revision >= 1


def test_get_job_default_resources(got: tuple[str, Any]) -> None:
    """Unset resources get the defaults, stored lowercased: CPU ``500m``, memory ``512mb`` (v1.7+)."""
    resources = got[1].tasks[0].resources
    assert resources.cpu == "500m"
    assert resources.memory == "512mb"


def test_get_job_orchestrator_meta(got: tuple[str, Any]) -> None:
    """The orchestrator ID is recorded under both the current and the legacy Meta key."""
    meta = got[1].meta
    assert meta["bacalhau.org/orchestrator.id"]
    assert meta["bacalhau.org/requester.id"] == meta["bacalhau.org/orchestrator.id"]


def test_get_job_empty_constraints_and_labels(got: tuple[str, Any]) -> None:
    """Normalize turns absent constraints and labels into ``[]`` and ``{}``."""
    assert got[1].constraints == []
    assert got[1].labels == {}


# ---- item 3: the stored task's raw JSON


@pytest.fixture(scope="module")
def raw_task(base_url: str) -> tuple[str, dict[str, Any]]:
    """The raw body of GET /jobs/<id> for a minimal job, and its task."""
    job_id = submit(base_url, docker_job())
    response = get(base_url, f"{JOBS}/{job_id}")
    assert response.status_code == 200, response.text
    return response.text, response.json()["Job"]["Tasks"][0]


def test_stored_task_has_empty_publisher(raw_task: tuple[str, dict[str, Any]]) -> None:
    """``Publisher`` has no omitempty: an unset publisher is written as ``{"Type":""}``."""
    assert '"Publisher":{"Type":""}' in raw_task[0]


def test_stored_task_has_network_and_timeouts(raw_task: tuple[str, dict[str, Any]]) -> None:
    """Normalize fills every task pointer, so ``Network`` and ``Timeouts`` are always objects."""
    task = raw_task[1]
    assert isinstance(task["Network"], dict) and "Type" in task["Network"], task
    assert isinstance(task["Timeouts"], dict), task


def test_stored_task_omits_empty_env_meta_inputs_and_result_paths(raw_task: tuple[str, dict[str, Any]]) -> None:
    """These keys are omitempty."""
    task = raw_task[1]
    assert not {"Env", "Meta", "InputSources", "ResultPaths"} & task.keys(), task


# ---- item 4: Count


def test_batch_job_without_count_is_stored_with_count_one(base_url: str) -> None:
    """A missing ``Count`` means 1 for batch jobs."""
    job = docker_job()
    del job["Count"]
    job_id = submit(base_url, job)
    assert get_job(base_url, job_id)["Job"]["Count"] == 1


def test_daemon_job_with_count_three_is_rejected(base_url: str) -> None:
    """Daemon jobs run on every matching node; ``Count > 1`` is invalid."""
    assert_api_error(put_job(base_url, docker_job(Type="daemon", Count=3)), 400)


# ---- item 5: sanitization


RESERVED_META = "bacalhau.org/foo"
SANITIZATION_WARNINGS = {
    "job ID is ignored when submitting a batch job",
    "job state is ignored when submitting a job",
    "job revision is ignored when submitting a job",
    f'job meta key "{RESERVED_META}" is reserved and will be ignored',
}


@pytest.fixture(scope="module")
def sanitized(base_url: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """A batch job submitted with server-owned fields set: (put response, stored job read right after)."""
    job = queued_job(
        ID="x", State={"StateType": "Running"}, Revision=5, Meta={RESERVED_META: "bar", "keep": "me"}
    )  # stays Queued, so any Running state could only come from the client
    response = put_job(base_url, job)
    assert response.status_code == 200, response.text
    body = response.json()
    yield body, get_job(base_url, body["JobID"])["Job"]
    stop(base_url, body["JobID"])


def test_sanitization_warnings(sanitized: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Each ignored field is reported with the original's warning text (§5.3)."""
    warnings = sanitized[0]["Warnings"]
    assert isinstance(warnings, list), warnings
    assert set(warnings) >= SANITIZATION_WARNINGS


def test_sanitized_batch_job_gets_a_generated_id(sanitized: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """A batch job's client-supplied ID is replaced by a ``j-<uuid>``."""
    response, job = sanitized
    assert JOB_ID.match(response["JobID"]), response
    assert job["ID"] == response["JobID"]


def test_sanitized_job_state_and_revision_are_the_servers(sanitized: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The client's ``Running`` state and revision 5 are dropped: the stored job starts Pending at revision 1."""
    job = sanitized[1]
    assert job["State"]["StateType"] in {"Pending", "Queued"}, job["State"]
    assert job["Revision"] <= 2, job["Revision"]


def test_sanitized_job_drops_reserved_meta_keys(sanitized: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Meta keys under ``bacalhau.org/`` are reserved; the others are kept."""
    meta = sanitized[1]["Meta"]
    assert RESERVED_META not in meta
    assert meta["keep"] == "me"


def test_service_job_keeps_its_client_supplied_id(base_url: str) -> None:
    """Only batch and ops jobs have their ID replaced; a service job keeps the one it brings."""
    job_id = unique("my-service")
    response = put_job(base_url, docker_job(Type="service", ID=job_id))
    assert response.status_code == 200, response.text
    assert response.json()["JobID"] == job_id
    assert not any("job ID is ignored" in warning for warning in response.json()["Warnings"] or [])
    assert get_job(base_url, job_id)["Job"]["ID"] == job_id


# ---- item 6: validation failures


def invalid_jobs() -> list[Any]:
    engine = docker_engine()
    url = SpecConfig(type="urlDownload", params={"URL": "http://example.com/data"})
    return [
        pytest.param(Job(count=1, tasks=[Task(name="main", engine=engine)]), id="missing-type"),
        pytest.param(Job(type="Batch", count=1, tasks=[Task(name="main", engine=engine)]), id="type-Batch"),
        pytest.param(Job(type="batch", count=1, tasks=[]), id="no-tasks"),
        pytest.param(Job(type="batch", count=1, tasks=[Task(name="main")]), id="task-without-engine"),
        pytest.param(client_job(timeouts=TimeoutConfig(execution_timeout=-1)), id="negative-timeout"),
        pytest.param(client_job(resources=ResourcesConfig(cpu="abc")), id="cpu-abc"),
        pytest.param(client_job(resources=ResourcesConfig(memory="10 zb")), id="memory-10-zb"),
        pytest.param(
            client_job(publisher=SpecConfig(type="local"), result_paths=[ResultPath(name="out", path="out")]),
            id="relative-result-path",
        ),
        pytest.param(
            client_job(
                input_sources=[
                    InputSource(alias="a", source=url, target="/inputs"),
                    InputSource(alias="b", source=url, target="/inputs"),
                ]
            ),
            id="duplicate-input-targets",
        ),
        pytest.param(client_job(network=NetworkConfig(type="Bogus")), id="network-Bogus"),
    ]


@pytest.mark.parametrize("job", invalid_jobs())
def test_invalid_submission_is_a_400_api_error(orchestrator: OrchestratorApi, job: Job) -> None:
    """Each invalid job is refused with a 400 whose body is an APIError."""
    with pytest.raises(ApiException) as raised:
        put_with_client(orchestrator, job)
    assert raised.value.status == 400
    assert_api_error_body(raised.value.body, 400)


# ---- item 7: store-level validation


def test_result_paths_without_publisher_is_a_job_store_bad_request(orchestrator: OrchestratorApi) -> None:
    """This check runs in the store, after defaults (§5.1 step 8), hence its own Code and Component."""
    with pytest.raises(ApiException) as raised:
        put_with_client(orchestrator, client_job(result_paths=[ResultPath(name="out", path="/outputs")]))
    assert raised.value.status == 400
    body = assert_api_error_body(raised.value.body, 400)
    assert (body["Code"], body["Component"]) == ("BadRequest", "JobStore"), body
    assert "publisher must be set if result paths are set" in body["Message"]


# ---- item 8: resource parsing, seen in the stored job and in the allocation of its execution


def allocated(base_url: str, resources: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run a noop job with these resources: (stored task resources, resources allocated to its execution)."""
    job_id = submit(base_url, noop_job(task={"Resources": resources}, Namespace=unique("resources")))
    job = finish(base_url, job_id, "Completed")
    [execution] = executions(base_url, job_id)
    return job["Tasks"][0]["Resources"], execution["AllocatedResources"]["Tasks"]["main"]


def test_cpu_in_millicores(base_url: str) -> None:
    """``100m`` is a tenth of a core."""
    stored, allocation = allocated(base_url, {"CPU": "100m"})
    assert stored["CPU"] == "100m"
    assert allocation["CPU"] == pytest.approx(0.1)


def test_cpu_in_decimal_cores(base_url: str) -> None:
    """A plain number is in cores."""
    _, allocation = allocated(base_url, {"CPU": "0.1"})
    assert allocation["CPU"] == pytest.approx(0.1)


def test_fractional_millicores_are_rejected(base_url: str) -> None:
    """Millicores must be a whole number: ``1.5m`` is invalid."""
    assert_api_error(put_job(base_url, docker_job(task={"Resources": {"CPU": "1.5m"}})), 400)


def test_memory_in_si_units(base_url: str) -> None:
    """``mb`` is 10^6 bytes."""
    _, allocation = allocated(base_url, {"Memory": "10mb"})
    assert allocation["Memory"] == 10_000_000


@pytest.mark.parametrize("memory", ["1Gi", "1gib"])
def test_memory_in_iec_units(base_url: str, memory: str) -> None:
    """``Gi`` and ``gib`` are 2^30 bytes, whatever the case."""
    _, allocation = allocated(base_url, {"Memory": memory})
    assert allocation["Memory"] == 1_073_741_824


def test_memory_is_stored_lowercase(base_url: str) -> None:
    """``1GB`` is stored as ``1gb`` and still means 10^9 bytes."""
    stored, allocation = allocated(base_url, {"Memory": "1GB"})
    assert stored["Memory"] == "1gb"
    assert allocation["Memory"] == 1_000_000_000


# ---- item 9: ID prefixes and unknown IDs


def test_get_job_by_short_id(orchestrator: OrchestratorApi) -> None:
    """``j-`` plus the first 8 hex digits (the CLI's short form) resolves to the job."""
    job_id = put_with_client(orchestrator, client_job()).job_id
    assert orchestrator.orchestratorget_job(job_id[:10]).job.id == job_id


def test_an_id_prefix_of_several_jobs_is_a_409(base_url: str) -> None:
    """The original v1.5 answers 500; an ambiguous prefix is the client's to resolve, as for nodes."""
    for _ in range(2):
        submit(base_url, noop_job())
    response = get(base_url, f"{JOBS}/j-")
    body = assert_api_error_body(response.content, 409)
    assert (body["Code"], body["Hint"]) == ("MultipleJobsFound", "Use full job ID")
    message, candidates = body["Message"].split(": ", 1)
    assert message == "multiple jobs found for id j-"
    assert candidates.endswith(", ...") or all(c.startswith("j-") for c in candidates.split(", "))


def test_get_unknown_job_is_a_job_store_404(orchestrator: OrchestratorApi) -> None:
    """A full ID that matches no job is a 404 from the job store."""
    job_id = f"j-{uuid.uuid4()}"
    with pytest.raises(ApiException) as raised:
        orchestrator.orchestratorget_job(job_id)
    assert raised.value.status == 404
    body = assert_api_error_body(raised.value.body, 404)
    assert (body["Code"], body["Component"]) == ("NotFound", "JobStore"), body
    assert body["Message"] == f"job not found: {job_id}"


# ---- item 10: include=history,executions


def test_get_job_includes_history_and_executions(base_url: str, completed_job: str) -> None:
    """``include=history,executions`` adds both lists; history starts with the submission."""
    response = get(base_url, f"{JOBS}/{completed_job}", include="history,executions")
    assert response.status_code == 200, response.text
    body = response.json()
    first = body["History"]["Items"][0]
    assert first["Type"] == "JobLevel", first
    assert (first["Event"]["Topic"], first["Event"]["Message"]) == ("Submission", "Job submitted"), first
    assert isinstance(body["Executions"]["Items"], list)
    assert [e["JobID"] for e in body["Executions"]["Items"]] == [completed_job]


def test_get_job_omits_history_and_executions_by_default(base_url: str, completed_job: str) -> None:
    """Without ``include`` neither key is present."""
    body = get(base_url, f"{JOBS}/{completed_job}").json()
    assert "History" not in body and "Executions" not in body, body.keys()


# ---- request decoding (§1.2), as every submission relies on it


def test_post_submits_like_put(base_url: str) -> None:
    """Submit is served on POST as well as PUT (§2.1)."""
    response = httpx.post(f"{base_url}{JOBS}", json={"Job": docker_job()}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert JOB_ID.match(response.json()["JobID"])


def test_request_body_keys_match_case_insensitively(base_url: str) -> None:
    """Go's decoder matches keys case-insensitively at every level (the Python client sends some in lowercase)."""
    job = {
        "type": "batch",
        "count": 1,
        "labels": {"Tier": "web"},
        "tasks": [{"name": "main", "engine": {"type": "noop"}}],
    }
    response = httpx.put(f"{base_url}{JOBS}", json={"job": job, "idempotencyToken": "t"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    stored = get_job(base_url, response.json()["JobID"])["Job"]
    assert (stored["Type"], stored["Tasks"][0]["Name"], stored["Tasks"][0]["Engine"]["Type"]) == (
        "batch",
        "main",
        "noop",
    )
    assert stored["Labels"] == {"Tier": "web"}


def test_unknown_body_keys_are_ignored(base_url: str) -> None:
    """Unknown keys, at any level, are ignored (§1.2)."""
    job = docker_job(Colour="blue", task={"Flavour": "mint"})
    response = httpx.put(f"{base_url}{JOBS}", json={"Job": job, "Extra": 1}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    stored = get_job(base_url, response.json()["JobID"])["Job"]
    assert "Colour" not in stored and "Flavour" not in stored["Tasks"][0]
