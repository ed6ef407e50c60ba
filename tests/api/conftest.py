"""Fixtures for the API conformance suite (checklist groups A, B, C, E and G, §9 of the API reference).

Every test talks to the session's ``shared_node``. Other tests share that node, so nothing here assumes an empty job
list: tests that count jobs submit them in a namespace of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bacalhau_apiclient import ApiClient, Configuration, MiscApi, OrchestratorApi, UtilsApi

from tests.api.support import docker_job, finish, noop_job, queued_job, stop, unique
from tests.conftest import ServeProcess, wait_until
from tests.helpers import get_job, submit


@pytest.fixture(scope="session")
def base_url(shared_node: ServeProcess) -> str:
    return shared_node.url


@pytest.fixture(scope="session")
def api_client(base_url: str) -> ApiClient:
    """The generated client (bacalhau-apiclient 1.4.1), pointed at the shared node."""
    configuration = Configuration()
    configuration.host = base_url
    return ApiClient(configuration)


@pytest.fixture(scope="session")
def orchestrator(api_client: ApiClient) -> OrchestratorApi:
    return OrchestratorApi(api_client)


@pytest.fixture(scope="session")
def utils_api(api_client: ApiClient) -> UtilsApi:
    return UtilsApi(api_client)


@pytest.fixture(scope="session")
def misc_api(api_client: ApiClient) -> MiscApi:
    return MiscApi(api_client)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses."""
    return unique("api")


@pytest.fixture
def sdk_env(shared_node: ServeProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point bacalhau-sdk at the shared node (it reads the environment whenever a ``Jobs()`` is created)."""
    monkeypatch.setenv("BACALHAU_API_HOST", "127.0.0.1")
    monkeypatch.setenv("BACALHAU_API_PORT", str(shared_node.port))
    monkeypatch.setenv("BACALHAU_DIR", str(tmp_path))
    monkeypatch.delenv("BACALHAU_HTTPS", raising=False)


@pytest.fixture(scope="session")
def completed_job(base_url: str) -> str:
    """A Completed noop batch job whose (empty) result the local publisher published."""
    publish = {"Publisher": {"Type": "local"}, "ResultPaths": [{"Name": "out", "Path": "/outputs"}]}
    job_id = submit(base_url, noop_job(task=publish, Namespace=unique("completed")))
    finish(base_url, job_id, "Completed")
    return job_id


@pytest.fixture(scope="session")
def failed_job(base_url: str) -> str:
    """A docker job, Failed at scheduling without any execution."""
    job_id = submit(base_url, docker_job(Namespace=unique("failed")))
    finish(base_url, job_id, "Failed")
    return job_id


@pytest.fixture
def waiting_job(base_url: str) -> Iterator[str]:
    """A job that stays Queued (non-terminal) for the whole test; stopped afterwards."""
    job_id = submit(base_url, queued_job(Namespace=unique("queued")))
    wait_until(
        lambda: get_job(base_url, job_id)["Job"]["State"]["StateType"] == "Queued", 10, f"job {job_id} to be Queued"
    )
    yield job_id
    stop(base_url, job_id)
