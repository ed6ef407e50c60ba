"""Helpers for the API conformance suite: job specs, raw requests, and checks on response bodies.

Section numbers refer to the API reference (/work/shared/reference/api-models.md).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import httpx
from bacalhau_apiclient import Job, SpecConfig, Task

from tests.helpers import wait_for_state

JOBS = "/api/v1/orchestrator/jobs"
TIMEOUT = 10.0

API_ERROR_KEYS = {"Status", "Message", "RequestID", "Code", "Component"}
JOB_ID = re.compile(r"^j-[0-9a-f-]{36}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")

NOOP = {"Type": "noop"}
DOCKER = {"Type": "docker", "Params": {"Image": "ubuntu"}}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def job_spec(engine: dict[str, Any], *, task: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A one-task batch job (Count 1); ``task`` adds fields to the task, ``fields`` to the job."""
    return {"Type": "batch", "Count": 1, "Tasks": [{"Name": "main", "Engine": engine, **(task or {})}], **fields}


def noop_job(*, task: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """Runs on the noop engine and completes at once."""
    return job_spec(NOOP, task=task, **fields)


def docker_job(*, task: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """Accepted at submit, then Failed at scheduling: this node has no docker engine."""
    return job_spec(DOCKER, task=task, **fields)


def queued_job(**fields: Any) -> dict[str, Any]:
    """Asks for more CPU than the node has, with a long QueueTimeout: it stays Queued until stopped."""
    return noop_job(task={"Resources": {"CPU": "1000"}, "Timeouts": {"QueueTimeout": 600}}, **fields)


def sdk_noop_job() -> Job:
    """A noop batch job as the official client's models build it."""
    return Job(type="batch", count=1, tasks=[Task(name="main", engine=SpecConfig(type="noop"))])


def put_job(base_url: str, job: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.put(f"{base_url}{JOBS}", json={"Job": job}, timeout=TIMEOUT, **kwargs)


def get(base_url: str, path: str, query: str | list[tuple[str, str]] | None = None, **params: Any) -> httpx.Response:
    """GET ``path`` with the keyword arguments as query, or with ``query``: a list of pairs (for repeated keys) or a
    raw query string, sent byte for byte (for keys without a value)."""
    if isinstance(query, str):
        return httpx.get(f"{base_url}{path}?{query}", timeout=TIMEOUT)
    return httpx.get(f"{base_url}{path}", params=query if query is not None else params, timeout=TIMEOUT)


def stop(base_url: str, job_id: str, body: dict[str, Any] | None = None, **params: Any) -> httpx.Response:
    """DELETE a job; the body is JSON (``{}`` as the Python client sends it, unless given)."""
    return httpx.request(
        "DELETE", f"{base_url}{JOBS}/{job_id}", json=body if body is not None else {}, params=params, timeout=TIMEOUT
    )


def finish(base_url: str, job_id: str, expected: str) -> dict[str, Any]:
    """Wait until the job is terminal and check that it ended in ``expected``."""
    job = wait_for_state(base_url, job_id)
    assert job["State"]["StateType"] == expected, job["State"]
    return job


def assert_api_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an APIError (§1.4) with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    return assert_api_error_body(response.content, status)


def assert_api_error_body(raw: bytes | str, status: int) -> dict[str, Any]:
    body = json.loads(raw)
    assert isinstance(body, dict), body
    assert body.keys() >= API_ERROR_KEYS, body
    assert body["Status"] == status, body
    assert all(isinstance(body[key], str) for key in API_ERROR_KEYS - {"Status"}), body
    return body


def decode_token(token: str) -> str:
    """Paging tokens are unpadded base64url (§3.1)."""
    assert "=" not in token, token
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def history(base_url: str, job_id: str, **params: Any) -> dict[str, Any]:
    response = get(base_url, f"{JOBS}/{job_id}/history", **params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page
