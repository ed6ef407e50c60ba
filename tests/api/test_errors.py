"""Checklist group E (§9, items 30-34): error bodies, middleware and legacy routes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from bacalhau_apiclient import MiscApi, SharedVersionRequest, UtilsApi

from tests.api.support import JOBS, TIMEOUT, assert_api_error, get

NODE_INFO = "/api/v1/agent/node"
REQUESTER_GONE = (
    "This endpoint is deprecated. See the migration guide at "
    "https://docs.bacalhau.org/references/cli-reference/command-migration for more information"
)
BUILD_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? [+-]\d{4} \w+$")  # Go's time.String()


def request(base_url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{base_url}{path}", timeout=TIMEOUT, **kwargs)


def node_id(base_url: str) -> str:
    body = get(base_url, NODE_INFO).json()
    return str(body.get("NodeID") or body["Info"]["NodeID"])


def server_version(base_url: str) -> str:
    return str(get(base_url, "/api/v1/agent/version").json()["GitVersion"])


# ---- item 30: unknown routes and methods


def test_unknown_route_is_a_404_api_error(base_url: str) -> None:
    """Unknown routes get an APIError from the API server itself (item 30)."""
    body = assert_api_error(get(base_url, "/api/v1/no/such/route"), 404)
    assert body["Component"] == "APIServer", body


def test_unknown_route_answers_head_without_a_body(base_url: str) -> None:
    """For HEAD only the status is sent (§1.4)."""
    response = request(base_url, "HEAD", "/api/v1/no/such/route")
    assert response.status_code == 404
    assert response.content == b""


def test_wrong_method_is_a_405_api_error(base_url: str) -> None:
    """A framework error: ``Code`` is ``InternalError`` even though it is the client's fault (§1.4)."""
    body = assert_api_error(request(base_url, "POST", f"{JOBS}/x"), 405)
    assert (body["Code"], body["Component"]) == ("InternalError", "APIServer"), body


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", "/history"), ("GET", "/executions"), ("GET", "/results"), ("DELETE", "")]
)
def test_unknown_job_is_a_404_on_every_job_route(base_url: str, method: str, suffix: str) -> None:
    """Every per-job route resolves the ID the same way as get (§3.3)."""
    job_id = f"j-{uuid.uuid4()}"
    body = assert_api_error(request(base_url, method, f"{JOBS}/{job_id}{suffix}"), 404)
    assert (body["Code"], body["Message"]) == ("NotFound", f"job not found: {job_id}"), body


# ---- item 31: bodies


def test_body_over_10_mb_is_a_413(base_url: str) -> None:
    """The body limit is 10 MB (item 31)."""
    body = b'{"Job":"' + b"a" * (10 * 1024 * 1024) + b'"}'
    response = request(base_url, "PUT", JOBS, content=body, headers={"Content-Type": "application/json"})
    assert assert_api_error(response, 413)["Message"] == "Request Entity Too Large"


def test_malformed_json_is_a_400(base_url: str) -> None:
    """A binding error: re-raised by the handler as a 400 from the framework (``InternalError``, §1.4)."""
    response = request(base_url, "PUT", JOBS, content=b'{"Job": x}', headers={"Content-Type": "application/json"})
    body = assert_api_error(response, 400)
    assert (body["Code"], body["Component"]) == ("InternalError", "APIServer"), body


def test_non_json_content_type_is_a_400(base_url: str) -> None:
    """A non-empty body that is not ``application/json`` is a binding error too (§1.2)."""
    response = request(base_url, "PUT", JOBS, content=b'{"Job": {}}', headers={"Content-Type": "text/plain"})
    assert_api_error(response, 400)


# ---- item 32: the client-version check


def test_outdated_client_version_is_a_403(base_url: str) -> None:
    """Clients older than v1.4.0 are turned away with the version middleware's own body (item 32)."""
    response = get_with_version(base_url, "v1.3.0")
    assert response.status_code == 403, response.text
    assert response.json() == {
        "Error": "Client version is outdated. Update your client",
        "MinVersion": "1.4.0",
        "ClientVersion": "1.3.0",
        "ServerVersion": server_version(base_url).removeprefix("v"),
    }


def test_unparseable_client_version_is_a_400(base_url: str) -> None:
    """Not the APIError shape: the version middleware writes its own body."""
    response = get_with_version(base_url, "garbage")
    assert response.status_code == 400, response.text
    assert response.json() == {"Error": "Invalid client version garbage"}


@pytest.mark.parametrize("version", [None, "", "v0.0.0", "v0.0.0-abc1234", "v1.4.0", "v1.5.2", "v9.9.9"])
def test_development_current_and_missing_versions_pass(base_url: str, version: str | None) -> None:
    """No header, development builds and any version from v1.4.0 up pass (mismatches are only logged)."""
    assert get_with_version(base_url, version).status_code == 200


def get_with_version(base_url: str, version: str | None) -> httpx.Response:
    headers = {} if version is None else {"X-Bacalhau-Git-Version": version}
    return httpx.get(f"{base_url}{JOBS}", params={"limit": 1}, headers=headers, timeout=TIMEOUT)


# ---- item 33: response headers and CORS


RESPONSES: dict[str, Callable[[str], httpx.Response]] = {
    "alive": lambda url: get(url, "/api/v1/agent/alive"),
    "list-jobs": lambda url: get(url, JOBS, limit=1),
    "unknown-route": lambda url: get(url, "/api/v1/no/such/route"),
    "bad-body": lambda url: request(url, "PUT", JOBS, content=b"{", headers={"Content-Type": "application/json"}),
    "outdated-client": lambda url: get_with_version(url, "v1.3.0"),
}


@pytest.mark.parametrize("name", RESPONSES)
def test_responses_carry_request_id_and_build_headers(base_url: str, name: str) -> None:
    """Successes and errors alike carry ``X-Request-Id`` and the ``X-Bacalhau-*`` build headers (item 33)."""
    headers = RESPONSES[name](base_url).headers
    assert headers.get("X-Request-Id")
    for header in ("Git-Version", "Git-Commit", "Build-OS", "Arch"):
        assert headers.get(f"X-Bacalhau-{header}"), header
    assert headers["X-Bacalhau-Git-Version"].startswith("v")
    assert BUILD_DATE.match(headers["X-Bacalhau-Build-Date"]), headers["X-Bacalhau-Build-Date"]


def test_request_id_is_echoed(base_url: str) -> None:
    """The request's ``X-Request-Id`` is echoed, and an error body copies it into ``RequestID``."""
    response = httpx.get(f"{base_url}{JOBS}/j-does-not-exist", headers={"X-Request-Id": "req-42"}, timeout=TIMEOUT)
    assert response.headers["X-Request-Id"] == "req-42"
    assert assert_api_error(response, 404)["RequestID"] == "req-42"


def preflight(base_url: str) -> httpx.Response:
    headers = {"Origin": "http://example.com", "Access-Control-Request-Method": "PUT"}
    return request(base_url, "OPTIONS", JOBS, headers=headers)


def test_cors_preflight_allows_any_origin_and_the_default_methods(base_url: str) -> None:
    """The allowed origin is ``*`` and the methods are echo's defaults (§1.1)."""
    headers = preflight(base_url).headers
    assert headers["Access-Control-Allow-Origin"] == "*"
    methods = {method.strip() for method in headers["Access-Control-Allow-Methods"].split(",")}
    assert methods >= {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"}


def test_cors_preflight_is_204_no_content(base_url: str) -> None:
    """echo's CORS middleware answers a preflight with 204 No Content (§1.1)."""
    assert preflight(base_url).status_code == 204


def test_cors_simple_request_allows_any_origin(base_url: str) -> None:
    """A plain cross-origin request is allowed too."""
    response = httpx.get(f"{base_url}{JOBS}", params={"limit": 1}, headers={"Origin": "http://example.com"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"


# ---- item 34: legacy routes


def test_requester_api_is_gone_with_a_json_string(base_url: str) -> None:
    """The retired requester API answers 410 with a JSON string literal, not an object (§2.7)."""
    response = request(base_url, "POST", "/api/v1/requester/submit", json={})
    assert response.status_code == 410
    assert json.loads(response.text) == REQUESTER_GONE


def test_legacy_livez(utils_api: UtilsApi) -> None:
    """v1.4's ``/api/v1/livez`` is text/plain ``OK``; the client returns it as a string."""
    assert "OK" in utils_api.livez()


def test_legacy_id(base_url: str, utils_api: UtilsApi) -> None:
    """v1.4's ``/api/v1/id`` is the node ID as text/plain."""
    assert node_id(base_url) in utils_api.id()


def test_legacy_node_info_through_the_client(utils_api: UtilsApi) -> None:
    """The client declares NodeInfo; it reads the NodeState body without error."""
    assert utils_api.node_info() is not None


def test_legacy_node_info_is_a_node_state(base_url: str) -> None:
    """v1.4's node_info returns the node's NodeState: its ID is under ``Info`` (§2.7)."""
    response = get(base_url, "/api/v1/node_info")
    assert response.status_code == 200, response.text
    assert response.json()["Info"]["NodeID"] == node_id(base_url)


def test_legacy_server_version(base_url: str, misc_api: MiscApi) -> None:
    """v1.4's ``POST /api/v1/version`` wraps the build info in ``build_version_info``."""
    info = misc_api.api_serverversion(SharedVersionRequest(client_id="x")).build_version_info
    assert info.git_version == server_version(base_url)
    assert info.git_version.startswith("v")


def test_legacy_healthz(utils_api: UtilsApi) -> None:
    """v1.4's healthz reports free space of ``root`` and ``tmp`` in bytes."""
    free_space = utils_api.healthz().free_space
    assert free_space is not None
    for mount in (free_space.root, free_space.tmp):
        assert mount.all > 0 and mount.free >= 0
