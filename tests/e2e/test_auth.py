"""API users against a real node: the original's basic-auth scenario (test_integration/17_basic_auth_config_suite),
written our way, with the CLI as users run it, plain HTTP, the log WebSocket, and hostile Authorization headers."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.conftest import ServeProcess, wait_until
from tests.helpers import wasm_job
from tests.terminal import Terminal

pytestmark = pytest.mark.e2e

SNOOPY = {"BACALHAU_API_USERNAME": "snoopyusername", "BACALHAU_API_PASSWORD": "snoopypassword"}
READER = {"BACALHAU_API_USERNAME": "readonlyusername", "BACALHAU_API_PASSWORD": "readonlyuserpassword"}
WRITER_KEY = {"BACALHAU_API_KEY": "P7D4CBB284634DD081FAC33868436ECCL"}
READER_KEY = {"BACALHAU_API_KEY": "QWERTYHFGCBNSKFIREHFURHUFE7KEEFBN"}
HASHED_PASSWORD = "hashed-secret-password"
ADMIN = {"BACALHAU_API_USERNAME": "admin", "BACALHAU_API_PASSWORD": HASHED_PASSWORD}
NODE_TOKEN = "i_am_very_secret_token"
SECRETS = (
    "snoopypassword", "readonlyuserpassword", HASHED_PASSWORD, NODE_TOKEN,
    WRITER_KEY["BACALHAU_API_KEY"], READER_KEY["BACALHAU_API_KEY"],
)  # fmt: skip
READ = ["read:node", "read:agent", "read:job"]


def hash_password(password: str) -> str:
    """A bcrypt hash, made as an operator makes one: with ``bacalhau auth hash-password``."""
    result = subprocess.run(
        [sys.executable, "-m", "bacalhau", "auth", "hash-password"],
        input=password + "\n", capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert password not in result.stdout + result.stderr
    return result.stdout.strip()


def users_config(hashed: str) -> dict[str, Any]:
    return {
        "Orchestrator": {"Auth": {"Token": NODE_TOKEN}},
        "API": {
            "Auth": {
                "Users": [
                    {
                        "Alias": "snoopy",
                        "Username": "snoopyusername",
                        "Password": "snoopypassword",
                        "Capabilities": [{"Actions": [*READ, "write:job"]}],
                    },
                    {
                        "Alias": "readonlyuser",
                        "Username": "readonlyusername",
                        "Password": "readonlyuserpassword",
                        "Capabilities": [{"Actions": READ}],
                    },
                    {
                        "Alias": "snoopy-api-key",
                        "APIKey": WRITER_KEY["BACALHAU_API_KEY"],
                        "Capabilities": [{"Actions": [*READ, "write:job"]}],
                    },
                    {"APIKey": READER_KEY["BACALHAU_API_KEY"], "Capabilities": [{"Actions": READ}]},
                    {"Username": "admin", "Password": hashed, "Capabilities": [{"Actions": ["*"]}]},
                ]
            }
        },
    }


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    serve = ServeProcess(tmp_path_factory.mktemp("auth") / "node", "--orchestrator", "--compute")
    serve.with_config(users_config(hash_password(HASHED_PASSWORD))).start()
    yield serve
    serve.stop()


def authorization(env: dict[str, str]) -> dict[str, str]:
    """The header the CLI sends for these variables."""
    if "BACALHAU_API_KEY" in env:
        return {"Authorization": f"Bearer {env['BACALHAU_API_KEY']}"}
    pair = f"{env['BACALHAU_API_USERNAME']}:{env['BACALHAU_API_PASSWORD']}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def api(
    node: ServeProcess,
    method: str,
    path: str,
    env: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    headers = {**(authorization(env) if env else {}), **(headers or {})}
    return httpx.request(method, f"{node.url}{path}", headers=headers, timeout=10, **kwargs)


def job_count(node: ServeProcess) -> int:
    return len(api(node, "GET", "/api/v1/orchestrator/jobs", ADMIN, params={"limit": 1000}).json()["Items"])


@pytest.fixture(scope="module")
def hello_job(node: ServeProcess, wasm: Callable[[str], bytes]) -> str:
    """A completed job, submitted by the user that may write jobs."""
    response = api(node, "PUT", "/api/v1/orchestrator/jobs", SNOOPY, json={"Job": wasm_job(wasm("hello"), "auth")})
    job_id = str(response.json()["JobID"])
    state = lambda: api(node, "GET", f"/api/v1/orchestrator/jobs/{job_id}", READER).json()["Job"]["State"]  # noqa: E731
    wait_until(lambda: state()["StateType"] == "Completed", 30, "the job to complete")
    return job_id


def test_a_writer_runs_a_job_that_readers_describe_but_may_not_submit(
    node: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    spec = tmp_path / "hello.yaml"
    spec.write_text(yaml.safe_dump(wasm_job(wasm("hello"), "bacalhau world")))
    job_id = node.cli("job", "run", "--wait=false", "--id-only", str(spec), env=SNOOPY).stdout.strip()
    state = lambda: api(node, "GET", f"/api/v1/orchestrator/jobs/{job_id}", SNOOPY).json()["Job"]["State"]  # noqa: E731
    wait_until(lambda: state()["StateType"] == "Completed", 30, "the job to complete")
    for reader in (READER, READER_KEY):
        described = node.cli("job", "describe", job_id, env=reader).stdout
        assert job_id in described and "Hello, world! bacalhau world" in described
    for reader in (WRITER_KEY, SNOOPY):
        assert api(node, "GET", f"/api/v1/orchestrator/jobs/{job_id}", reader).status_code == 200

    before = job_count(node)
    for reader, name in ((READER, "readonlyuser"), (READER_KEY, "API key ending in ...EEFBN")):
        refused = node.cli("job", "run", str(spec), env=reader, check=False)
        assert refused.returncode == 1
        assert f"Request Forbidden: user '{name}' does not have the required capability 'write:job'" in refused.stderr
        assert "Check if user have access to this resource. Event has been recorded." in refused.stderr
        assert "BACALHAU_API_KEY, or BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD" in refused.stderr
    assert job_count(node) == before  # nothing was stored


def test_liveness_and_versions_need_nothing(node: ServeProcess) -> None:
    assert "Status: OK" in node.cli("agent", "alive").stdout
    assert "SERVER" in node.cli("version").stdout
    version = node.cli("agent", "version").stdout
    assert "BuildDate" in version and "GitCommit" in version
    for path in ("/api/v1/agent/alive", "/api/v1/agent/version", "/api/v1/livez", "/", "/openapi.json"):
        assert api(node, "GET", path).status_code == 200, path
    assert api(node, "GET", "/api/v1/agent/authconfig").json() == {"Version": "1.0.0", "Config": {}}


def test_browsers_may_ask_and_read_refusals(node: ServeProcess) -> None:
    """A CORS preflight carries no credentials: it is answered; a refusal says which origins may read it."""
    origin = {"Origin": "https://ui.example.com"}
    preflight = api(
        node, "OPTIONS", "/api/v1/orchestrator/jobs", headers={**origin, "Access-Control-Request-Method": "PUT"}
    )
    assert preflight.status_code == 204
    refused = api(node, "GET", "/api/v1/orchestrator/jobs", headers=origin)
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(("env", "flags"), [(SNOOPY, ("Not Set", "Set", "Set")), ({}, ("Not Set",) * 3)])
def test_auth_info(node: ServeProcess, env: dict[str, str], flags: tuple[str, str, str]) -> None:
    info = node.cli("auth", "info", env=env).stdout
    assert f"Target environment: {node.url}" in info
    expected = [
        "Environment Variables:",
        f"API Key: {flags[0]}",
        f"Username: {flags[1]}",
        f"Password: {flags[2]}",
        "",
        "Node SSO Authentication:",
        "Server does not support SSO login",
        "",
        "Note: Environment variables take precedence over other authentication mechanisms including SSO.",
        "To use SSO login, please unset Auth related environment variables first.",
    ]
    lines = info.splitlines()
    assert lines[lines.index("Environment Variables:") :] == expected
    assert "snoopypassword" not in info


def test_a_bcrypt_password_works(node: ServeProcess) -> None:
    for _ in range(3):  # checked once, then remembered (the CLI uses it in test_approving_a_node_needs_write_node)
        assert api(node, "GET", "/api/v1/orchestrator/nodes", ADMIN).status_code == 200
    assert (
        api(node, "GET", "/api/v1/orchestrator/nodes", {**ADMIN, "BACALHAU_API_PASSWORD": "wrong"}).status_code == 401
    )


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({}, "Missing Authorization header"),
        ({**SNOOPY, "BACALHAU_API_PASSWORD": "wrong-password"}, "invalid basic auth credentials"),
        ({**ADMIN, "BACALHAU_API_PASSWORD": "wrong-password"}, "invalid basic auth credentials"),
        ({"BACALHAU_API_KEY": "no-such-key-0123456789"}, "invalid API key"),
    ],
)
def test_unknown_credentials_are_unauthorized(node: ServeProcess, env: dict[str, str], reason: str) -> None:
    response = api(node, "GET", "/api/v1/orchestrator/jobs", env or None, headers={"X-Request-Id": "req-42"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="bacalhau", Bearer realm="bacalhau"'
    assert response.json() == {
        "Status": 401,
        "Message": "Request Unauthorized",
        "RequestID": "req-42",
        "Code": "Unauthorized",
        "Component": "Authorizer",
        "Hint": "Unauthorized principal. Event has been recorded.",
        "Details": {"reason": reason},
    }
    assert api(node, "HEAD", "/api/v1/orchestrator/jobs").status_code == 401


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "Request Unauthorized: Missing Authorization header"),
        ({**SNOOPY, "BACALHAU_API_PASSWORD": "wrong-password"}, "Request Unauthorized: invalid basic auth credentials"),
    ],
)
def test_the_cli_says_which_variables_to_set(node: ServeProcess, env: dict[str, str], says: str) -> None:
    refused = node.cli("job", "list", env=env, check=False)
    assert refused.returncode == 1
    [error, hint] = [line for line in refused.stderr.splitlines() if line]
    assert error == f"Error: {says}"
    assert hint.startswith("Hint:  Unauthorized principal. Event has been recorded.")
    assert hint.endswith("set BACALHAU_API_KEY, or BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD")


def test_approving_a_node_needs_write_node(node: ServeProcess) -> None:
    node_id = api(node, "GET", "/api/v1/agent/node", READER).json()["NodeID"]
    refused = node.cli("node", "approve", node_id, env=READER, check=False)
    assert refused.returncode == 1
    assert "user 'readonlyuser' does not have the required capability 'write:node'" in refused.stderr
    allowed = node.cli("node", "approve", node_id, env=ADMIN, check=False)  # already approved: the node says so
    assert "Request Forbidden" not in allowed.stderr and "Request Unauthorized" not in allowed.stderr
    forbidden = api(node, "PUT", f"/api/v1/orchestrator/nodes/{node_id}", WRITER_KEY, json={"Action": "approve"})
    assert forbidden.status_code == 403
    assert forbidden.json()["Details"]["reason"].endswith("does not have the required capability 'write:node'")


def test_the_log_stream_needs_credentials(node: ServeProcess, hello_job: str) -> None:
    refused = node.cli("job", "logs", hello_job, check=False)
    assert refused.returncode == 1
    assert "Request Unauthorized: Missing Authorization header" in refused.stderr
    assert "Hello, world! auth" in node.cli("job", "logs", hello_job, env=READER_KEY).stdout

    url = node.url.replace("http", "ws", 1) + f"/api/v1/orchestrator/jobs/{hello_job}/logs"
    for headers, status in (({}, 401), (authorization({**SNOOPY, "BACALHAU_API_PASSWORD": "nope"}), 401)):
        with pytest.raises(InvalidStatus) as raised, connect(url, additional_headers=headers, open_timeout=10):
            pass
        assert raised.value.response.status_code == status
        body = json.loads(raised.value.response.body)
        assert (body["Status"], body["Component"]) == (status, "Authorizer")
    with connect(url, additional_headers=authorization(READER), open_timeout=10) as socket:
        assert "Hello, world! auth" in json.loads(socket.recv(timeout=10))["value"]["Line"]
    assert "ASGI callable returned without completing handshake" not in node.log()


def test_browsers_stream_logs_with_credentials_offered_as_a_subprotocol(node: ServeProcess, hello_job: str) -> None:
    """A browser cannot set Authorization on a WebSocket: the web UI offers it as a subprotocol beside ours, and the
    server answers with ours alone (never echoing the credentials)."""
    url = node.url.replace("http", "ws", 1) + f"/api/v1/orchestrator/jobs/{hello_job}/logs"

    def offered(env: dict[str, str]) -> list[Subprotocol]:
        encoded = base64.urlsafe_b64encode(authorization(env)["Authorization"].encode()).rstrip(b"=").decode()
        return [Subprotocol("bacalhau.v1"), Subprotocol(f"bacalhau.auth.{encoded}")]

    with connect(url, subprotocols=offered(READER), open_timeout=10) as socket:
        assert socket.subprotocol == "bacalhau.v1"
        assert "Hello, world! auth" in json.loads(socket.recv(timeout=10))["value"]["Line"]
    refusals = (
        (offered({**SNOOPY, "BACALHAU_API_PASSWORD": "nope"}), {}, "invalid basic auth credentials"),
        (offered(READER), authorization(READER), "more than one Authorization header"),  # both ways: ambiguous
        ([Subprotocol("bacalhau.v1"), Subprotocol("bacalhau.auth.***")], {}, "unsupported authentication method"),
    )
    for protocols, headers, reason in refusals:
        with (
            pytest.raises(InvalidStatus) as raised,
            connect(url, subprotocols=protocols, additional_headers=headers, open_timeout=10),
        ):
            pass
        assert raised.value.response.status_code == 401
        assert json.loads(raised.value.response.body)["Details"]["reason"] == reason
    assert "snoopypassword" not in node.log() and "readonlyuserpassword" not in node.log()


def test_the_node_config_shows_no_secret(node: ServeProcess) -> None:
    shown = node.cli("agent", "config", env=SNOOPY).stdout
    assert shown.count("********") == 6  # five users' passwords and keys, and the node's token
    assert not [secret for secret in SECRETS if secret in shown]


def test_refusals_are_logged_once_each_and_without_secrets(node: ServeProcess) -> None:
    api(node, "PUT", "/api/v1/orchestrator/jobs", READER, json={})
    line = re.compile(
        r"WRN refused PUT '/api/v1/orchestrator/jobs' from 127\.0\.0\.1:\d+ \(403\): "
        r"user 'readonlyuser' does not have the required capability 'write:job' component=api\.auth\n"
    )
    wait_until(lambda: line.search(node.log()), 10, "the refusal to be logged")
    log = node.log()
    assert not [secret for secret in SECRETS if secret in log]
    assert "Basic " not in log and "Bearer " not in log
    assert "no API users" not in log


def test_an_open_node_says_so_once(shared_node: ServeProcess) -> None:
    assert shared_node.log().count("no API users (API.Auth.Users): anyone who can reach port") == 1


def test_a_bad_list_of_users_stops_serve(tmp_path: Path) -> None:
    users = [{"Alias": "shorty", "Username": "shorty", "Password": "tiny-pw", "Capabilities": [{"Actions": ["*"]}]}]
    serve = ServeProcess(tmp_path / "node", "--orchestrator", "--compute")
    serve.with_config({"API": {"Auth": {"Users": users}}}).launch()
    assert serve.process is not None
    assert serve.process.wait(30) == 1
    log = serve.log()
    assert "invalid API.Auth.Users: password for user 'shorty' is too short, minimum length is 10 characters" in log
    assert "tiny-pw" not in log
    assert not (tmp_path / "node" / "bacalhau.run").exists()


# ---- hostile Authorization headers, over a real connection

HEADER_BYTES = st.binary(max_size=80).map(lambda raw: bytes(b for b in raw if b == 9 or (b >= 32 and b != 127)))
VALID = [authorization(env)["Authorization"].encode() for env in (SNOOPY, READER, READER_KEY, ADMIN)]


def basic_of(username: bytes, password: bytes) -> bytes:
    return b"Basic " + base64.b64encode(username + b":" + password)


AUTHORIZATION = st.one_of(
    HEADER_BYTES,
    st.sampled_from(VALID),
    st.builds(
        basic_of,
        st.one_of(st.sampled_from([b"admin", b"SNOOPYUSERNAME", b"readonlyusername", b""]), st.binary(max_size=40)),
        st.one_of(st.sampled_from([b"snoopypassword", HASHED_PASSWORD.encode()]), st.binary(max_size=100)),
    ),
    st.builds(
        lambda scheme, spaces, rest: scheme + b" " * spaces + rest,
        st.sampled_from([b"Basic", b"basic", b"BEARER", b"Bearer", b"Negotiate", b""]),
        st.integers(0, 3),
        HEADER_BYTES,
    ),
)


def raw_get(node: ServeProcess, path: str, values: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    """A GET with these Authorization headers sent as they are (httpx would refuse some)."""
    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
    try:
        connection.putrequest("GET", path)
        for value in values:
            connection.putheader("Authorization", value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@given(
    values=st.lists(AUTHORIZATION, max_size=3),
    path=st.sampled_from(["/api/v1/orchestrator/jobs?limit=1", "/api/v1/agent/node", "/api/v1/agent/alive"]),
)
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_hostile_authorization_headers_are_refused_in_the_error_body(
    node: ServeProcess, values: list[bytes], path: str
) -> None:
    status, headers, body = raw_get(node, path, values)
    assert status in (200, 401, 403), (status, body)
    if status == 200:
        return
    error = json.loads(body)
    assert error["Status"] == status and error["Component"] == "Authorizer" and error["RequestID"]
    assert error["Code"] == ("Unauthorized" if status == 401 else "Forbidden")
    assert isinstance(error["Details"]["reason"], str) and error["Details"]["reason"]
    assert ("www-authenticate" in headers) == (status == 401)


def test_hash_password_at_a_terminal_does_not_echo(node: ServeProcess) -> None:
    typed = "typed-at-a-terminal"
    terminal = Terminal(node, "auth", "hash-password")
    terminal.wait_for("Enter password: ")
    os.write(terminal.master, typed.encode() + b"\r")
    assert terminal.finish() == 0
    assert typed not in terminal.screen
    [hashed] = [line for line in terminal.screen.split() if line.startswith("$2a$10$")]
    assert bcrypt.checkpw(typed.encode(), hashed.encode())
