"""End to end: WebAssembly jobs on a hybrid node call a local HTTP server through ``wasi:http/requests``, as far as
their network allows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import ServeProcess
from tests.helpers import executions, submit, wait_for_state, wasm_job
from tests.http_recorder import Server

pytestmark = pytest.mark.e2e


@pytest.fixture
def server() -> Iterator[Server]:
    with Server.started() as running:
        yield running


def http_job(module: bytes, url: str, network: dict[str, Any]) -> dict[str, Any]:
    job = wasm_job(module, "0", url, publisher="")
    job["Tasks"][0]["Network"] = network
    return job


def test_allowed_refused_and_without_network(
    hybrid: ServeProcess, wasm: Callable[[str], bytes], server: Server
) -> None:
    module = wasm("http")
    allowed = submit(hybrid.url, http_job(module, server.url("/hello"), {"Type": "HTTP", "Domains": ["127.0.0.1"]}))
    refused = submit(hybrid.url, http_job(module, server.url("/hello"), {"Type": "HTTP", "Domains": ["example.com"]}))
    offline = submit(hybrid.url, http_job(module, server.url("/hello"), {"Type": "None"}))

    assert wait_for_state(hybrid.url, allowed)["State"]["StateType"] == "Completed"
    [execution] = executions(hybrid.url, allowed)
    assert execution["RunOutput"]["Stdout"] == "status=200\nhello from the server\n"

    assert wait_for_state(hybrid.url, refused)["State"]["StateType"] == "Completed"
    [execution] = executions(hybrid.url, refused)
    assert execution["RunOutput"]["ExitCode"] == 4, "host not allowed"

    job = wait_for_state(hybrid.url, offline)
    assert job["State"]["StateType"] == "Failed"
    assert 'unknown module "wasi:http/requests"' in job["State"]["Message"]
    assert len(server.requests) == 1, "only the allowed job reached the server"
