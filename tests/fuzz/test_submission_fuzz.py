"""Property-based fuzzing of the submission pipeline with hostile job specs (tests/strategies.py).

Whatever a client sends: the answer is a 2xx, or a 4xx in the original's error body (never a 5xx); a refused job
leaves nothing stored, an accepted one is stored whole (readable, with its evaluation); and afterwards the node still
runs an ordinary job to completion.

The examples are drawn the same way on every run (``derandomize``) so that the suite's result depends on the code
alone. For a longer exploration after changing the submission path, raise the count and let Hypothesis vary them:
``BACALHAU_FUZZ_EXAMPLES=20000 BACALHAU_FUZZ_RANDOM=1 .venv/bin/pytest tests/fuzz``.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import wait_until
from tests.fuzz.conftest import InProcessNode
from tests.strategies import job_spec

EXAMPLES = int(os.environ.get("BACALHAU_FUZZ_EXAMPLES", "500"))
JOBS = "/api/v1/orchestrator/jobs"
ERROR_KEYS = {"Status", "Message", "RequestID", "Code", "Component"}
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("BACALHAU_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def client(fuzz_node: InProcessNode) -> httpx.Client:
    return httpx.Client(base_url=fuzz_node.url, timeout=30)


@FUZZ
@given(spec=job_spec())
def test_every_submission_is_answered_cleanly_and_stored_whole_or_not_at_all(
    fuzz_node: InProcessNode, client: httpx.Client, spec: dict[str, Any]
) -> None:
    before = fuzz_node.count("jobs")
    body = json.dumps({"Job": spec}).encode()
    response = client.put(JOBS, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        answer = response.json()
        assert answer.keys() >= ERROR_KEYS and answer["Status"] == response.status_code, answer
        assert fuzz_node.count("jobs") == before, f"a refused job was stored: {answer['Message']}"
        return
    assert response.status_code == 200, response.text
    job_id = response.json()["JobID"]
    stored = client.get(f"{JOBS}/{job_id}", params={"include": "history"})
    assert stored.status_code == 200, stored.text
    first_event = stored.json()["History"]["Items"][0]["Event"]["Message"]
    if fuzz_node.count("jobs") == before:  # its name was taken: it is that job's next version
        assert stored.json()["Job"]["Version"] > 1 and first_event == "Job updated"
    else:
        assert fuzz_node.count("jobs") == before + 1 and first_event == "Job submitted"


READ_ROUTES = ("", "/executions", "/history", "/results", "/versions", "/logs")


@FUZZ
@given(
    reference=st.text(max_size=300),
    route=st.sampled_from(READ_ROUTES),
    params=st.dictionaries(
        st.sampled_from(["namespace", "job_version", "all_job_versions", "limit", "next_token", "include"]),
        st.one_of(st.text(max_size=100), st.integers(min_value=-(2**70), max_value=2**70).map(str)),
        max_size=4,
    ),
)
def test_every_reference_to_a_job_is_answered_cleanly(
    client: httpx.Client, reference: str, route: str, params: dict[str, str]
) -> None:
    """Any text as a job reference (ID, name or prefix) and any values of the version and namespace parameters get
    an answer, never a server error."""
    path = f"{JOBS}/{quote(reference, safe='')}{route}"
    response = client.get(path, params=params)
    assert response.status_code < 500, response.text
    rerun = client.put(f"{path.removesuffix(route)}/rerun", json={"JobVersion": params.get("job_version", 0)})
    assert rerun.status_code < 500, rerun.text


def test_after_the_fuzzing_an_ordinary_job_still_completes(fuzz_node: InProcessNode, client: httpx.Client) -> None:
    """Runs after the property above (file order): whatever it left behind, the node still works."""
    task = {"Name": "main", "Engine": {"Type": "noop"}, "Resources": {"CPU": "1m", "Memory": "1mb"}}
    response = client.put(JOBS, json={"Job": {"Type": "batch", "Tasks": [task]}})
    assert response.status_code == 200, response.text
    job_id = response.json()["JobID"]

    def state() -> str:
        return str(client.get(f"{JOBS}/{job_id}").json()["Job"]["State"]["StateType"])

    wait_until(lambda: state() in ("Completed", "Failed"), 30, "the ordinary job to end")
    assert state() == "Completed"
