"""The CLI's import boundary: a command loads only what it needs, so that it starts in a fraction of a second. Each
check runs in a fresh interpreter (this test process has long imported everything)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_SIDE = (
    "bacalhau.orchestrator",
    "bacalhau.compute",
    "bacalhau.api",
    "bacalhau.node",
    "uvicorn",
    "fastapi",
    "wasmtime",
    "docker",
    "boto3",
    "nats",
    "cryptography",
    "opentelemetry",
)
WIRE_AND_HTTP = ("pydantic", "httpx", "bacalhau.models.job", "bacalhau.client.http")


def loaded_after(code: str) -> set[str]:
    """The top-level and bacalhau modules a fresh interpreter has loaded after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def present(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(name for name in names if any(m == name or m.startswith(name + ".") for m in modules))


def test_the_cli_and_its_job_commands_load_no_server_side_code() -> None:
    modules = loaded_after("import bacalhau.cli.main, bacalhau.cli.job, bacalhau.cli.agent, bacalhau.cli.output")
    assert present(modules, SERVER_SIDE) == []
    assert present(modules, WIRE_AND_HTTP) == []
    assert present(modules, ("yaml", "websockets")) == []  # for YAML output, specs and profiles, and logs: on use


def test_the_api_client_loads_websockets_only_to_stream_logs() -> None:
    assert present(loaded_after("import bacalhau.client.http"), ("websockets",)) == []


def test_version_of_the_client_alone_loads_neither_the_wire_models_nor_http() -> None:
    code = (
        "from bacalhau.cli.main import run\n"
        "try:\n    run(['version', '--client'])\nexcept SystemExit as done:\n    assert not done.code, done.code"
    )
    modules = loaded_after(code)
    assert present(modules, SERVER_SIDE + WIRE_AND_HTTP) == []


@pytest.mark.parametrize("command", [["job", "list", "--help"], ["job", "run", "--help"], ["node", "list", "--help"]])
def test_help_loads_no_server_side_code(command: list[str]) -> None:
    code = f"from bacalhau.cli.main import run\ntry:\n    run({command!r})\nexcept SystemExit:\n    pass"
    assert present(loaded_after(code), SERVER_SIDE) == []
