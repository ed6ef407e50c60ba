"""``bacalhau serve`` start-up: clear errors for taken ports, busy data dirs and stores from a newer release, and the
node's own endpoints."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


def serve_once(
    data_dir: Path, *config: str, roles: tuple[str, ...] = ("--orchestrator",)
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bacalhau", "--data-dir", str(data_dir), "-c", "API.Port=0"]
    for item in config:
        command += ["-c", item]
    return subprocess.run([*command, "serve", *roles], capture_output=True, text=True, timeout=60)


def test_a_taken_nats_port_is_a_clear_error(tmp_path: Path, taken_port: int) -> None:
    result = serve_once(tmp_path / "node", f"Orchestrator.Port={taken_port}")
    assert result.returncode == 1
    assert f"port {taken_port} is already in use" in result.stderr
    assert "Orchestrator.Port" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_api_port_is_a_clear_error(tmp_path: Path, taken_port: int) -> None:
    result = serve_once(tmp_path / "node", "Orchestrator.Port=0", f"API.Port={taken_port}")
    assert result.returncode == 1
    assert "cannot start the API server" in result.stderr and "--api-port" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("Orchestrator.Scheduler.HousekeepingInterval=soon", "invalid configuration: invalid duration 'soon'"),
        ("InputSources.Types.IPFS.Endpoint=localhost:5001", "IPFS endpoint 'localhost:5001' is neither a multiaddr"),
        ("InputSources.MaxDownloadSize=lots", "invalid configuration:"),
        ("Publishers.Types.Local.Address=192.0.2.1", "cannot start the local publisher on 192.0.2.1:0"),
        ("Orchestrator.TLS.ServerCert=/nowhere.pem", "ServerCert and Orchestrator.TLS.ServerKey must be set together"),
        ("Compute.TLS.RequireTLS=true", "Compute.TLS.RequireTLS is set, but this node's own NATS server serves no TLS"),
    ],
)
def test_meaningless_settings_are_clear_errors(tmp_path: Path, setting: str, message: str) -> None:
    result = serve_once(
        tmp_path / "node", "Orchestrator.Port=0", "Publishers.Types.Local.Port=0", setting,
        roles=("--orchestrator", "--compute"),
    )  # fmt: skip
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_data_dir_can_serve_only_one_node(hybrid: ServeProcess) -> None:
    result = serve_once(hybrid.data_dir, "Orchestrator.Port=0")
    assert result.returncode == 1
    assert "in use by another bacalhau process" in result.stderr


@pytest.mark.parametrize("store", ["orchestrator/jobs.db", "compute/executions.db"])
def test_a_store_from_a_newer_release_is_a_clear_error_and_stays_as_it_was(tmp_path: Path, store: str) -> None:
    path = tmp_path / "node" / store
    path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    before = path.read_bytes()
    result = serve_once(
        tmp_path / "node", "Orchestrator.Port=0", "Publishers.Types.Local.Port=0", roles=("--orchestrator", "--compute")
    )
    assert result.returncode == 1
    assert f"the store {path} has schema version 99, but this release of bacalhau knows versions up to" in result.stderr
    assert "upgrade bacalhau" in result.stderr and "another data dir" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == before


def test_without_roles_serve_starts_an_orchestrator(serve_factory: Callable[..., ServeProcess]) -> None:
    node = serve_factory()
    assert "neither --orchestrator nor --compute" in node.log()
    info = httpx.get(f"{node.url}/api/v1/agent/node").json()
    assert info["NodeType"] == "Requester" and info["Info"]["NodeType"] == "Requester"


def test_agent_endpoints_and_cli(hybrid: ServeProcess) -> None:
    assert httpx.get(f"{hybrid.url}/api/v1/agent/alive").json() == {"Status": "OK"}
    version = httpx.get(f"{hybrid.url}/api/v1/agent/version").json()
    assert version["GitVersion"].startswith("v")
    assert hybrid.cli("agent", "alive").stdout.strip() == "Status: OK"
    assert "Bacalhau v" in hybrid.cli("agent", "version").stdout
    versions = hybrid.cli("version").stdout
    assert "CLIENT" in versions and "SERVER" in versions


def test_the_run_file_tells_clients_where_the_api_is(hybrid: ServeProcess) -> None:
    lines = (hybrid.data_dir / "bacalhau.run").read_text().splitlines()
    assert "export BACALHAU_API_HOST=127.0.0.1" in lines
    assert f"export BACALHAU_API_PORT={hybrid.port}" in lines


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("WebUI.Listen=8438", "invalid WebUI.Listen '8438': expected host:port"),
        ("WebUI.Backend=ftp://api.example", "invalid WebUI.Backend 'ftp://api.example'"),
        ("WebUI.Backend=http://admin:secret@api.example", "a URL with credentials in it would show them"),
        ("WebUI.Listen=127.0.0.1:{taken}", "cannot start the web UI on 127.0.0.1:{taken}"),
    ],
)
def test_web_ui_settings_are_clear_errors(tmp_path: Path, taken_port: int, setting: str, message: str) -> None:
    result = serve_once(
        tmp_path / "node", "Orchestrator.Port=0", "WebUI.Enabled=true", setting.format(taken=taken_port)
    )
    assert result.returncode == 1
    assert message.format(taken=taken_port) in result.stderr
    assert "Traceback" not in result.stderr and "secret" not in result.stderr
