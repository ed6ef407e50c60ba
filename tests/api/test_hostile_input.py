"""Odd and hostile requests are 4xx answers in the original's error body, never a 500 (each of these was a 500)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.api.support import JOBS, TIMEOUT, assert_api_error, get, noop_job, put_job, stop, unique
from tests.helpers import get_job, submit


def put_raw(base_url: str, body: bytes) -> httpx.Response:
    return httpx.put(f"{base_url}{JOBS}", content=body, headers={"Content-Type": "application/json"}, timeout=TIMEOUT)


def test_json_nested_100k_deep_is_a_400(base_url: str) -> None:
    body = assert_api_error(put_raw(base_url, b'{"Job":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), 400)
    assert "nests too deeply" in body["Message"]


def test_deep_engine_parameters_are_a_400_naming_the_field(base_url: str) -> None:
    params = {"P": json.loads("[" * 40 + "]" * 40)}
    body = assert_api_error(put_job(base_url, noop_job(task={"Engine": {"Type": "noop", "Params": params}})), 400)
    assert "engine parameters nest deeper than 32 levels" in body["Message"]


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_numbers_are_a_400(base_url: str, constant: bytes) -> None:
    body = b'{"Job":{"Type":"batch","Priority":' + constant + b',"Tasks":[{"Name":"t","Engine":{"Type":"noop"}}]}}'
    assert "Syntax error" in assert_api_error(put_raw(base_url, body), 400)["Message"]


def test_a_lone_surrogate_becomes_the_replacement_character_as_in_go(base_url: str) -> None:
    """Go's decoder replaces an unpaired UTF-16 surrogate with U+FFFD; it used to fail storing the job (500)."""
    engine = {"Type": "noop", "Params": {"Free": "PLACEHOLDER"}}  # free-form: once stored as is, then unencodable
    job = noop_job(task={"Engine": engine}, Namespace=unique("surrogate"), Labels={"k": "PLACEHOLDER"})
    body = json.dumps({"Job": job}).replace("PLACEHOLDER", "a\\ud800b").encode()
    response = put_raw(base_url, body)
    assert response.status_code == 200, response.text
    stored = get_job(base_url, response.json()["JobID"])["Job"]
    assert stored["Labels"] == {"k": "a\ufffdb"}
    assert stored["Tasks"][0]["Engine"]["Params"] == {"Free": "a\ufffdb"}


@pytest.mark.parametrize(
    "priority", [2**63, -(2**63) - 1, 2**70], ids=["int64-max-plus-one", "int64-min-minus-one", "2^70"]
)
def test_integers_beyond_int64_are_a_400_naming_the_field(base_url: str, priority: int) -> None:
    body = assert_api_error(put_job(base_url, noop_job(Priority=priority)), 400)
    assert "Priority" in body["Message"]


@pytest.mark.parametrize("field", ["ExecutionTimeout", "QueueTimeout", "TotalTimeout"])
def test_timeouts_beyond_gos_duration_are_a_400_naming_the_field(base_url: str, field: str) -> None:
    body = assert_api_error(put_job(base_url, noop_job(task={"Timeouts": {field: 2**63}})), 400)
    assert f"Tasks.0.Timeouts.{field}" in body["Message"]


def test_cpu_beyond_int64_millicores_is_a_400(base_url: str) -> None:
    body = assert_api_error(put_job(base_url, noop_job(task={"Resources": {"CPU": "1e306"}})), 400)
    assert "invalid CPU value: 1e306" in body["Message"]


def test_a_result_name_that_escapes_the_results_folder_is_a_400(base_url: str) -> None:
    task = {"Publisher": {"Type": "local"}, "ResultPaths": [{"Name": "/", "Path": "/outputs"}]}
    body = assert_api_error(put_job(base_url, noop_job(task=task)), 400)
    assert 'result name "/" must be one folder name' in body["Message"]


def test_count_above_the_maximum_is_a_400(base_url: str) -> None:
    body = assert_api_error(put_job(base_url, noop_job(Count=10**9)), 400)
    assert "job count 1000000000 exceeds the maximum of 1000" in body["Message"]
    assert "Orchestrator.JobLimits.MaxCount" in body["Hint"]


@pytest.mark.parametrize("value", ["\u00b2", "\u0661", "1_0", " 1", "+1"])
def test_non_ascii_digits_in_a_limit_are_a_400(base_url: str, value: str) -> None:
    """``str.isdigit`` is true for superscripts; strconv.ParseUint takes ASCII digits only."""
    body = assert_api_error(get(base_url, JOBS, limit=value), 400)
    assert "strconv.ParseUint" in body["Message"]


def test_history_since_beyond_int64_is_a_400(base_url: str) -> None:
    job_id = submit(base_url, noop_job(Namespace=unique("since")))
    body = assert_api_error(get(base_url, f"{JOBS}/{job_id}/history", since=str(2**63)), 400)
    assert "value out of range" in body["Message"]


def test_a_paging_token_beyond_int64_is_a_400(base_url: str) -> None:
    token = base64.urlsafe_b64encode(f"created_at:N:10:10:{2**63}:j-x".encode()).decode().rstrip("=")
    body = assert_api_error(get(base_url, JOBS, next_token=token), 400)
    assert "malformed token" in body["Message"]


def test_a_stop_reason_must_be_a_short_string(base_url: str) -> None:
    job_id = submit(base_url, noop_job(Namespace=unique("reason")))
    assert "reason" in assert_api_error(stop(base_url, job_id, {"reason": {"nested": [1, 2]}}), 400)["Message"]
    assert "at most 4096 characters" in assert_api_error(stop(base_url, job_id, {"reason": "r" * 5000}), 400)["Message"]


def test_a_request_id_is_always_in_an_error_body(base_url: str) -> None:
    """The original copies only the client's header (usually empty); ours is the ID in the response header."""
    response = get(base_url, f"{JOBS}/j-does-not-exist")
    assert assert_api_error(response, 404)["RequestID"] == response.headers["X-Request-Id"] != ""


@pytest.mark.parametrize("request_id", ["x" * 200, "caf\u00e9", "a\tb"])
def test_an_unusable_client_request_id_is_replaced(base_url: str, request_id: str) -> None:
    response = httpx.get(
        f"{base_url}{JOBS}/j-does-not-exist",
        headers=[(b"X-Request-Id", request_id.encode())],
        timeout=TIMEOUT,
    )
    assert response.headers["X-Request-Id"] != request_id
    assert len(response.headers["X-Request-Id"]) == 32


@pytest.mark.parametrize("body", [{"NodeID": {"a": 1}, "Action": "approve"}, {"NodeID": "n", "Action": ["approve"]}])
def test_node_actions_take_strings_only(base_url: str, body: dict[str, object]) -> None:
    response = httpx.post(f"{base_url}/api/v1/orchestrator/nodes", json=body, timeout=TIMEOUT)
    assert "Input should be a valid string" in assert_api_error(response, 400)["Message"]
