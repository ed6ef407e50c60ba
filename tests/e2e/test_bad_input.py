"""Bad submissions get a 400 in the original's error format, and nothing is stored for them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ServeProcess

pytestmark = pytest.mark.e2e

ERROR_KEYS = {"Status", "Message", "RequestID", "Code", "Component"}


def _task(**overrides: Any) -> dict[str, Any]:
    return {"Name": "main", "Engine": {"Type": "wasm", "Params": {"EntryModule": "/app/main.wasm"}}, **overrides}


BAD_SUBMISSIONS = {
    "unknown engine": {"Job": {"Type": "batch", "Tasks": [_task(Engine={"Type": "vroomvroom"})]}},
    "invalid cpu": {"Job": {"Type": "batch", "Tasks": [_task(Resources={"CPU": "abc"})]}},
    "invalid memory": {"Job": {"Type": "batch", "Tasks": [_task(Resources={"Memory": "10 zb"})]}},
    "missing tasks": {"Job": {"Type": "batch"}},
    "missing type": {"Job": {"Tasks": [_task()]}},
    "no job at all": {},
}


def _count_jobs(node: ServeProcess) -> int:
    return len(httpx.get(f"{node.url}/api/v1/orchestrator/jobs").json()["Items"])


@pytest.mark.parametrize("case", sorted(BAD_SUBMISSIONS))
def test_invalid_jobs_are_refused_with_the_error_format(hybrid: ServeProcess, case: str) -> None:
    before = _count_jobs(hybrid)
    response = httpx.put(f"{hybrid.url}/api/v1/orchestrator/jobs", json=BAD_SUBMISSIONS[case])
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) >= ERROR_KEYS
    assert body["Status"] == 400 and body["Message"]
    assert _count_jobs(hybrid) == before


def test_malformed_json_is_a_400(hybrid: ServeProcess) -> None:
    response = httpx.put(
        f"{hybrid.url}/api/v1/orchestrator/jobs",
        content=b'{"Job": {"Type": "batch",',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert set(response.json()) >= ERROR_KEYS
    assert "Syntax error" in response.json()["Message"]
    assert _count_jobs(hybrid) == 0


def test_unknown_engine_message_names_the_engine(hybrid: ServeProcess) -> None:
    response = httpx.put(f"{hybrid.url}/api/v1/orchestrator/jobs", json=BAD_SUBMISSIONS["unknown engine"])
    assert "unknown engine type 'vroomvroom'" in response.json()["Message"]
