"""The official Python client against a node with API users, on a node of its own.

bacalhau-apiclient 1.4.1 declares no security for any operation, so its ``Configuration.api_key`` and ``username``
are never sent; what it does send is its ``ApiClient``'s default headers, which is how a user of it passes an API key
or HTTP Basic credentials (``Configuration.get_basic_auth_token()`` makes the latter). bacalhau-sdk 1.4.2 builds
that ``ApiClient`` inside ``Jobs()``, where the same default header reaches it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bacalhau_apiclient import ApiClient, ApiPutJobRequest, Configuration, OpsApi, OrchestratorApi
from bacalhau_apiclient.rest import ApiException
from bacalhau_sdk.jobs import Jobs, PutJobRequest

from tests.api.support import JOB_ID, sdk_noop_job
from tests.conftest import ServeProcess

KEY = "sdk-api-key-0123456789abcdef"
READ_KEY = "sdk-read-only-key-0123456789"
USERNAME, PASSWORD = "sdkuser", "sdk-user-password"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    users = [
        {"APIKey": KEY, "Capabilities": [{"Actions": ["*"]}]},
        {"APIKey": READ_KEY, "Capabilities": [{"Actions": ["read:*"]}]},
        {"Username": USERNAME, "Password": PASSWORD, "Capabilities": [{"Actions": ["read:job", "write:job"]}]},
    ]
    serve = ServeProcess(tmp_path_factory.mktemp("sdk-auth") / "node", "--orchestrator", "--compute")
    serve.with_config({"API": {"Auth": {"Users": users}}}).start()
    yield serve
    serve.stop()


def client(node: ServeProcess, authorization: str | None = None) -> ApiClient:
    configuration = Configuration()
    configuration.host = node.url
    if authorization is None:
        return ApiClient(configuration)
    return ApiClient(configuration, header_name="Authorization", header_value=authorization)


def basic() -> str:
    configuration = Configuration()
    configuration.username, configuration.password = USERNAME, PASSWORD
    return str(configuration.get_basic_auth_token())


@pytest.mark.parametrize("authorization", [f"Bearer {KEY}", "basic"])
def test_the_generated_client_submits_and_reads_with_credentials(node: ServeProcess, authorization: str) -> None:
    api = OrchestratorApi(client(node, basic() if authorization == "basic" else authorization))
    job_id = api.orchestratorput_job(ApiPutJobRequest(job=sdk_noop_job())).job_id
    assert JOB_ID.match(job_id)
    assert api.orchestratorget_job(job_id).job.id == job_id
    assert job_id in [job.id for job in api.orchestratorlist_jobs(limit=100).items]


def test_the_generated_client_is_refused_without_credentials_or_rights(node: ServeProcess) -> None:
    with pytest.raises(ApiException) as raised:
        OrchestratorApi(client(node)).orchestratorlist_jobs()
    assert raised.value.status == 401
    assert json.loads(raised.value.body)["Details"] == {"reason": "Missing Authorization header"}
    with pytest.raises(ApiException) as raised:
        OrchestratorApi(client(node, f"Bearer {READ_KEY}")).orchestratorput_job(ApiPutJobRequest(job=sdk_noop_job()))
    assert raised.value.status == 403
    assert json.loads(raised.value.body)["Message"] == "Request Forbidden"
    # What is open to all stays open to it.
    assert "OK" in OpsApi(client(node)).agentalive()
    assert OpsApi(client(node)).agentversion().git_version.startswith("v")


@pytest.fixture
def sdk_env(node: ServeProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACALHAU_API_HOST", "127.0.0.1")
    monkeypatch.setenv("BACALHAU_API_PORT", str(node.port))
    monkeypatch.setenv("BACALHAU_DIR", str(tmp_path))
    monkeypatch.delenv("BACALHAU_HTTPS", raising=False)


def test_the_sdk_passes_an_api_key_in_its_client_headers(sdk_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = Jobs()
    jobs.orchestrator_service.api_client.set_default_header("Authorization", f"Bearer {KEY}")
    put = jobs.put(PutJobRequest(job=sdk_noop_job()))
    assert put is not None and JOB_ID.match(put.job_id)
    assert jobs.get(put.job_id).job.id == put.job_id
    assert "Exception" not in capsys.readouterr().out

    # Without it, the SDK prints the refusal and returns None, as it does with every error.
    assert Jobs().put(PutJobRequest(job=sdk_noop_job())) is None
    printed = capsys.readouterr().out
    assert "(401)" in printed and "Request Unauthorized" in printed
